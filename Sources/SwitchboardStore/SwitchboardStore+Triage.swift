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
            try Row.fetchAll(db, cachedSQL: """
                SELECT m.id, m.conversation_id, m.channel, m.body_text,
                       (SELECT group_concat(DISTINCT i.kind) FROM contact_identities i WHERE i.contact_id = c.contact_id) AS kinds,
                       EXISTS (SELECT 1 FROM email_messages e WHERE e.message_id = m.id AND e.auto_reply IS NOT NULL) AS automatic
                FROM messages m JOIN conversations c ON c.id = m.conversation_id
                WHERE m.direction = 'inbound' AND m.triaged_at IS NULL ORDER BY m.created_at, m.rowid LIMIT ?
                """, arguments: [limit]).map { row in
                UntriagedMessage(messageID: row["id"], conversationID: row["conversation_id"],
                                 channel: Channel(rawValue: row["channel"]) ?? .portal, text: row["body_text"],
                                 contactIdentityKinds: Set(((row["kinds"] as String?) ?? "").split(separator: ",").map(String.init)),
                                 automatic: row["automatic"])
            }
        }
    }

    /// Stores one message's triage and applies it. `safetyReply` is queued (at most once per
    /// conversation a day) and `emergencyTeam` assigned only for an emergency; the rules'
    /// effects follow (an emergency's team wins over a rule's; replies at most once per
    /// conversation in 12 hours).
    public func recordTriage(messageID: String, conversationID: String, triage: TriageRecord,
                             safetyReply: String?, emergencyTeam: String?, rules: RuleEffects = .none,
                             now: Int64 = Timestamp.now()) async throws -> TriageOutcome {
        try await write { db in
            try db.execute(cachedSQL: """
                UPDATE messages SET triage_intent = ?, triage_urgency = ?, triage_language = ?, triage_evidence = ?, triaged_at = ?
                WHERE id = ? AND triaged_at IS NULL
                """, arguments: [triage.intent, triage.urgency, triage.language, triage.evidenceJSON, now, messageID])
            guard db.changesCount == 1 else { return TriageOutcome(priorityRaised: false, safetyReplyQueued: false, teamAssigned: false) }
            try Self.signal(db, conversationID: conversationID, kind: "triaged", now: now)
            let fromUrgency: Priority = triage.urgency == "emergency" ? .emergency : triage.urgency == "urgent" ? .urgent : .normal
            let target = [fromUrgency, rules.priority ?? .low].min { Self.rank($0) > Self.rank($1) } ?? fromUrgency
            try db.execute(cachedSQL: """
                UPDATE conversations SET intent = ?, language = ?, updated_at = ?,
                    priority = CASE
                        WHEN ? = 'emergency' THEN 'emergency'
                        WHEN ? = 'urgent' AND priority IN ('normal','low') THEN 'urgent'
                        WHEN ? = 'normal' AND priority = 'low' THEN 'normal'
                        ELSE priority END
                WHERE id = ?
                """, arguments: [triage.intent, triage.language, now, target.rawValue, target.rawValue, target.rawValue, conversationID])
            let raised = db.changesCount == 1 && target != .normal && target != .low
            let ruleOutcome = try Self.applyRules(db, rules, conversationID: conversationID, messageID: messageID,
                                                  teamAllowed: fromUrgency != .emergency, now: now)
            guard fromUrgency == .emergency else {
                return TriageOutcome(priorityRaised: raised, safetyReplyQueued: false, teamAssigned: ruleOutcome.teamAssigned,
                                     repliesQueued: ruleOutcome.replies)
            }

            try Self.audit(db, actorKind: "system", actorID: "triage", action: "triage.emergency",
                           conversationID: conversationID, messageID: messageID, now: now)
            var teamAssigned = false
            if let emergencyTeam, !emergencyTeam.isEmpty {
                teamAssigned = try Self.assignTeam(db, name: emergencyTeam, conversationID: conversationID, now: now)
            }
            var queued = false
            if let safetyReply, !safetyReply.isEmpty {
                queued = try Self.queueSystemReplies(db, [safetyReply], conversationID: conversationID, senderKind: "system",
                                                     purpose: .compliance, auditAction: "triage.safety_reply",
                                                     notWithin: 86_400_000, now: now) > 0
            }
            return TriageOutcome(priorityRaised: raised, safetyReplyQueued: queued, teamAssigned: teamAssigned,
                                 repliesQueued: ruleOutcome.replies)
        }
    }

    /// Queues automatic replies on the conversation's channel unless one of the same kind
    /// (`auditAction`) went out within `notWithin` milliseconds; each is audited. Returns how
    /// many were queued.
    private static func queueSystemReplies(_ db: Database, _ texts: [String], conversationID: String, senderKind: String,
                                           purpose: OutboxPurpose, auditAction: String, notWithin: Int64, now: Int64) throws -> Int {
        let texts = texts.filter { !$0.isEmpty }
        guard !texts.isEmpty else { return 0 }
        let recent = try Bool.fetchOne(db, cachedSQL: """
            SELECT 1 FROM audit_events WHERE conversation_id = ? AND action = ? AND at > ? LIMIT 1
            """, arguments: [conversationID, auditAction, now - notWithin]) ?? false
        guard !recent else { return 0 }
        let channel = try String.fetchOne(db, cachedSQL: "SELECT channel FROM conversations WHERE id = ?", arguments: [conversationID])
            .flatMap(Channel.init(rawValue:)) ?? .portal
        for text in texts {
            let replyID = try queueOutbound(db, conversationID: conversationID, channel: channel, senderKind: senderKind,
                                            agentID: nil, text: text, purpose: purpose, now: now)
            try audit(db, actorKind: "system", actorID: auditAction.split(separator: ".").first.map(String.init),
                      action: auditAction, conversationID: conversationID, messageID: replyID, now: now)
        }
        return texts.count
    }

    private static func rank(_ priority: Priority) -> Int {
        switch priority {
        case .low: 0
        case .normal: 1
        case .urgent: 2
        case .emergency: 3
        }
    }

    /// Moves the conversation to the named team (created if missing). True if it moved.
    private static func assignTeam(_ db: Database, name: String, conversationID: String, now: Int64) throws -> Bool {
        var teamID = try String.fetchOne(db, cachedSQL: "SELECT id FROM teams WHERE name = ?", arguments: [name])
        if teamID == nil {
            let id = Identifier.make(prefix: "tem")
            try db.execute(cachedSQL: "INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)", arguments: [id, name, now])
            teamID = id
        }
        try db.execute(cachedSQL: "UPDATE conversations SET team_id = ? WHERE id = ? AND team_id IS NOT ?",
                       arguments: [teamID, conversationID, teamID])
        return db.changesCount == 1
    }

    private static func applyRules(_ db: Database, _ rules: RuleEffects, conversationID: String, messageID: String,
                                   teamAllowed: Bool, now: Int64) throws -> (teamAssigned: Bool, replies: Int) {
        var teamAssigned = false
        if teamAllowed, let team = rules.team, !team.isEmpty {
            teamAssigned = try assignTeam(db, name: team, conversationID: conversationID, now: now)
        }
        if !rules.skills.isEmpty {
            let current = try String.fetchOne(db, cachedSQL: "SELECT required_skills FROM conversations WHERE id = ?", arguments: [conversationID]) ?? "[]"
            var skills = (try? JSONSerialization.jsonObject(with: Data(current.utf8))) as? [String] ?? []
            skills += rules.skills.filter { !skills.contains($0) }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: skills), as: UTF8.self)
            try db.execute(cachedSQL: "UPDATE conversations SET required_skills = ? WHERE id = ?", arguments: [json, conversationID])
        }
        for tag in rules.tags {
            try db.execute(cachedSQL: "INSERT INTO conversation_tags (conversation_id, tag, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                           arguments: [conversationID, tag, now])
        }
        let replies = try queueSystemReplies(db, rules.replies, conversationID: conversationID, senderKind: "bot",
                                             purpose: .reply, auditAction: "rules.auto_reply", notWithin: 12 * 3_600_000, now: now)
        return (teamAssigned, replies)
    }
}
