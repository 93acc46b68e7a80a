import Foundation
import GRDB
import SwitchboardCore

/// Triage results and what they set in motion. The classifier lives elsewhere; the store
/// records its answer and applies its consequences in one transaction: the message's labels,
/// the conversation's intent, language and priority (which only ever rises), and for an
/// emergency the on-call team, the safety reply and an audit event for supervisors.
extension SwitchboardStore {
    /// Inbound messages not triaged yet, oldest first.
    public func untriagedMessages(limit: Int) async throws -> [UntriagedMessage] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, conversation_id, channel, body_text FROM messages
                WHERE direction = 'inbound' AND triaged_at IS NULL ORDER BY created_at, rowid LIMIT ?
                """, arguments: [limit]).map { row in
                UntriagedMessage(messageID: row["id"], conversationID: row["conversation_id"],
                                 channel: Channel(rawValue: row["channel"]) ?? .portal, text: row["body_text"])
            }
        }
    }

    /// Stores one message's triage and applies it. `safetyReply` is queued (at most once per
    /// conversation a day) and `emergencyTeam` assigned only for an emergency.
    public func recordTriage(messageID: String, conversationID: String, triage: TriageRecord,
                             safetyReply: String?, emergencyTeam: String?, now: Int64 = Timestamp.now()) async throws -> TriageOutcome {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE messages SET triage_intent = ?, triage_urgency = ?, triage_language = ?, triage_evidence = ?, triaged_at = ?
                WHERE id = ? AND triaged_at IS NULL
                """, arguments: [triage.intent, triage.urgency, triage.language, triage.evidenceJSON, now, messageID])
            guard db.changesCount == 1 else { return TriageOutcome(priorityRaised: false, safetyReplyQueued: false, teamAssigned: false) }
            let target: Priority = triage.urgency == "emergency" ? .emergency : triage.urgency == "urgent" ? .urgent : .normal
            try db.execute(sql: """
                UPDATE conversations SET intent = ?, language = ?, updated_at = ?,
                    priority = CASE
                        WHEN ? = 'emergency' THEN 'emergency'
                        WHEN ? = 'urgent' AND priority IN ('normal','low') THEN 'urgent'
                        ELSE priority END
                WHERE id = ?
                """, arguments: [triage.intent, triage.language, now, target.rawValue, target.rawValue, conversationID])
            let raised = db.changesCount == 1 && target != .normal
            guard target == .emergency else { return TriageOutcome(priorityRaised: raised, safetyReplyQueued: false, teamAssigned: false) }

            try Self.audit(db, actorKind: "system", actorID: "triage", action: "triage.emergency",
                           conversationID: conversationID, messageID: messageID, now: now)
            var teamAssigned = false
            if let emergencyTeam, !emergencyTeam.isEmpty {
                var teamID = try String.fetchOne(db, sql: "SELECT id FROM teams WHERE name = ?", arguments: [emergencyTeam])
                if teamID == nil {
                    let id = Identifier.make(prefix: "tem")
                    try db.execute(sql: "INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)", arguments: [id, emergencyTeam, now])
                    teamID = id
                }
                try db.execute(sql: "UPDATE conversations SET team_id = ? WHERE id = ? AND team_id IS NOT ?",
                               arguments: [teamID, conversationID, teamID])
                teamAssigned = db.changesCount == 1
            }
            var queued = false
            if let safetyReply, !safetyReply.isEmpty {
                let recent = try Bool.fetchOne(db, sql: """
                    SELECT 1 FROM audit_events WHERE conversation_id = ? AND action = 'triage.safety_reply' AND at > ? LIMIT 1
                    """, arguments: [conversationID, now - 86_400_000]) ?? false
                if !recent {
                    let channel = try String.fetchOne(db, sql: "SELECT channel FROM conversations WHERE id = ?", arguments: [conversationID])
                        .flatMap(Channel.init(rawValue:)) ?? .portal
                    let replyID = try Self.queueOutbound(db, conversationID: conversationID, channel: channel, senderKind: "system",
                                                         agentID: nil, text: safetyReply, purpose: .compliance, now: now)
                    try Self.audit(db, actorKind: "system", actorID: "triage", action: "triage.safety_reply",
                                   conversationID: conversationID, messageID: replyID, now: now)
                    queued = true
                }
            }
            return TriageOutcome(priorityRaised: raised, safetyReplyQueued: queued, teamAssigned: teamAssigned)
        }
    }
}
