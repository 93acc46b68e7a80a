import Foundation
import GRDB
import SwitchboardCore

/// What agents do to conversations. Visibility is one rule, applied in SQL everywhere:
/// an `agent` sees conversations that are unassigned or assigned to them; supervisors and
/// admins see all. A conversation an agent may not see is indistinguishable from one that
/// does not exist (`StoreError.notFound`).
extension SwitchboardStore {
    private static let conversationColumns = """
        c.id, c.status, c.priority, c.intent, c.language, c.channel, c.assignee_id, c.team_id, c.contact_id, c.created_at, c.updated_at, c.last_message_at
        """

    private static let visibleTo = "(? OR c.assignee_id IS NULL OR c.assignee_id = ?)"

    private static func visibility(_ agent: Agent) -> StatementArguments {
        [agent.role.seesAllConversations, agent.id]
    }

    public func listConversations(for agent: Agent, status: ConversationListStatus, assignee: AssigneeFilter,
                                  limit: Int = 100) async throws -> [ConversationSummary] {
        var sql = "SELECT \(Self.conversationColumns) FROM conversations c WHERE \(Self.visibleTo)"
        var arguments = Self.visibility(agent)
        if status != .any {
            sql += " AND c.status = ?"
            arguments += [status.rawValue]
        }
        switch assignee {
        case .me:
            sql += " AND c.assignee_id = ?"
            arguments += [agent.id]
        case .unassigned:
            sql += " AND c.assignee_id IS NULL"
        case .any:
            break
        }
        sql += " ORDER BY c.last_message_at DESC, c.id LIMIT ?"
        arguments += [limit]
        let finalSQL = sql
        let finalArguments = arguments
        return try await pool.read { db in
            try Row.fetchAll(db, sql: finalSQL, arguments: finalArguments).map(Self.summary)
        }
    }

    /// The conversation, its contact and its messages — and an audit event recording who
    /// read it, from where, in the same transaction: no read goes unrecorded.
    public func readConversation(id: String, by agent: Agent, sourceAddress: String?,
                                 now: Int64 = Timestamp.now()) async throws -> ConversationDetail {
        try await pool.write { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            let contactRow = try Row.fetchOne(db, sql: "SELECT id, display_name FROM contacts WHERE id = ?",
                                              arguments: [conversation.contactID])
            let identities = try Row.fetchAll(db, sql: """
                SELECT kind, value FROM contact_identities WHERE contact_id = ? ORDER BY kind, id
                """, arguments: [conversation.contactID]).compactMap { row -> ContactView.Identity? in
                guard let kind = IdentityKind(rawValue: row["kind"]) else { return nil }
                return ContactView.Identity(kind: kind, value: row["value"])
            }
            var attachments: [String: [AttachmentView]] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT a.message_id, a.url, a.content_type, a.filename, a.size_bytes FROM attachments a
                JOIN messages m ON m.id = a.message_id WHERE m.conversation_id = ? ORDER BY a.id
                """, arguments: [id]) {
                attachments[row["message_id"], default: []].append(
                    AttachmentView(url: row["url"], contentType: row["content_type"], filename: row["filename"], sizeBytes: row["size_bytes"]))
            }
            let messages = try Row.fetchAll(db, sql: """
                SELECT id, direction, sender_agent_id, channel, body_text, sent_at, created_at, delivery_status, failure_reason,
                       triage_intent, triage_urgency, triage_language, triage_evidence
                FROM messages WHERE conversation_id = ? ORDER BY created_at, rowid
                """, arguments: [id]).map { row in
                MessageView(id: row["id"], direction: MessageDirection(rawValue: row["direction"]) ?? .inbound,
                            senderAgentID: row["sender_agent_id"], channel: Channel(rawValue: row["channel"]) ?? .portal,
                            text: row["body_text"], sentAt: row["sent_at"], createdAt: row["created_at"],
                            deliveryStatus: (row["delivery_status"] as String?).flatMap(DeliveryStatus.init(rawValue:)),
                            failureReason: row["failure_reason"], attachments: attachments[row["id"]] ?? [],
                            triage: (row["triage_intent"] as String?).map { intent in
                                TriageRecord(intent: intent, urgency: row["triage_urgency"] ?? "routine",
                                             language: row["triage_language"] ?? "en", evidenceJSON: row["triage_evidence"] ?? "{}")
                            })
            }
            var smsNumber: String?
            if conversation.channel == .sms {
                smsNumber = try String.fetchOne(db, sql: "SELECT remote_address FROM conversations WHERE id = ?", arguments: [id])
            }
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "conversation.read",
                           conversationID: id, sourceAddress: sourceAddress, now: now)
            let tags = try String.fetchAll(db, sql: "SELECT tag FROM conversation_tags WHERE conversation_id = ? ORDER BY created_at, tag",
                                           arguments: [id])
            let skillsJSON = try String.fetchOne(db, sql: "SELECT required_skills FROM conversations WHERE id = ?", arguments: [id]) ?? "[]"
            let skills = (try? JSONSerialization.jsonObject(with: Data(skillsJSON.utf8))) as? [String] ?? []
            return ConversationDetail(
                conversation: conversation,
                contact: ContactView(id: conversation.contactID, name: contactRow?["display_name"], identities: identities),
                messages: messages, smsNumber: smsNumber,
                smsConsent: try smsNumber.flatMap { try Self.consent(db, phone: $0) }, tags: tags, requiredSkills: skills)
        }
    }

    /// Assigns the conversation to the agent. Claiming one's own is a no-op; one held by
    /// another agent is a conflict for everyone (handing work over is a transfer, not a claim).
    public func claimConversation(id: String, by agent: Agent, now: Int64 = Timestamp.now()) async throws -> ConversationSummary {
        try await pool.write { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            if conversation.assigneeID == agent.id { return conversation }
            if conversation.assigneeID != nil {
                throw StoreError.conflict("the conversation is assigned to another agent")
            }
            try db.execute(sql: "UPDATE conversations SET assignee_id = ?, updated_at = ? WHERE id = ?",
                           arguments: [agent.id, now, id])
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "conversation.claimed", conversationID: id, now: now)
            return try Self.visibleConversation(db, id: id, agent: agent)
        }
    }

    public func resolveConversation(id: String, by agent: Agent, now: Int64 = Timestamp.now()) async throws -> ConversationSummary {
        try await pool.write { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            if conversation.status == .resolved { return conversation }
            try db.execute(sql: "UPDATE conversations SET status = 'resolved', resolved_at = ?, updated_at = ? WHERE id = ?",
                           arguments: [now, now, id])
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "conversation.resolved", conversationID: id, now: now)
            return try Self.visibleConversation(db, id: id, agent: agent)
        }
    }

    public func reopenConversation(id: String, by agent: Agent, now: Int64 = Timestamp.now()) async throws -> ConversationSummary {
        try await pool.write { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            if conversation.status != .resolved { return conversation }
            try Self.reopen(db, conversationID: id, actorKind: "agent", actorID: agent.id, now: now)
            return try Self.visibleConversation(db, id: id, agent: agent)
        }
    }

    /// Stores an agent's reply and queues it for delivery through the conversation's channel,
    /// in one transaction. An unassigned conversation becomes the replying agent's.
    public func reply(conversationID id: String, by agent: Agent, text: String,
                      now: Int64 = Timestamp.now()) async throws -> MessageView {
        try await pool.write { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            if conversation.assigneeID != nil, conversation.assigneeID != agent.id, !agent.role.seesAllConversations {
                throw StoreError.conflict("the conversation is assigned to another agent")
            }
            if conversation.channel == .sms, let phone = try String.fetchOne(db, sql: "SELECT remote_address FROM conversations WHERE id = ?", arguments: [id]),
               let consent = try Self.consent(db, phone: phone), consent.optedOut {
                throw StoreError.conflict("the patient opted out of SMS (replied \(consent.keyword) at \(Timestamp.format(consent.updatedAt))); no SMS can be sent until they reply START")
            }
            let messageID = try Self.queueOutbound(db, conversationID: id, channel: conversation.channel, senderKind: "agent",
                                                   agentID: agent.id, text: text, purpose: .reply, now: now)
            try db.execute(sql: """
                UPDATE conversations SET assignee_id = COALESCE(assignee_id, ?), updated_at = ?, last_message_at = ? WHERE id = ?
                """, arguments: [agent.id, now, now, id])
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "message.sent", conversationID: id,
                           messageID: messageID, now: now)
            return MessageView(id: messageID, direction: .outbound, senderAgentID: agent.id, channel: conversation.channel,
                               text: text, sentAt: now, createdAt: now, deliveryStatus: .queued, failureReason: nil)
        }
    }

    /// Inserts an outbound message and its outbox item; returns the message id.
    @discardableResult
    static func queueOutbound(_ db: Database, conversationID: String, channel: Channel, senderKind: String, agentID: String?,
                              text: String, purpose: OutboxPurpose, now: Int64) throws -> String {
        let messageID = Identifier.make(prefix: "msg")
        try db.execute(sql: """
            INSERT INTO messages (id, conversation_id, direction, sender_kind, sender_agent_id, channel, body_text,
                                  sent_at, created_at, delivery_status, delivery_updated_at)
            VALUES (?, ?, 'outbound', ?, ?, ?, ?, ?, ?, 'queued', ?)
            """, arguments: [messageID, conversationID, senderKind, agentID, channel.rawValue, text, now, now, now])
        try db.execute(sql: """
            INSERT INTO outbox (message_id, conversation_id, channel, next_attempt_at, created_at, purpose) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [messageID, conversationID, channel.rawValue, now, now, purpose.rawValue])
        return messageID
    }

    private static func visibleConversation(_ db: Database, id: String, agent: Agent) throws -> ConversationSummary {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT \(conversationColumns) FROM conversations c WHERE c.id = ? AND \(visibleTo)
            """, arguments: [id] + visibility(agent)) else {
            throw StoreError.notFound
        }
        return summary(row)
    }

    private static func summary(_ row: Row) -> ConversationSummary {
        ConversationSummary(
            id: row["id"],
            status: ConversationStatus(rawValue: row["status"]) ?? .open,
            priority: Priority(rawValue: row["priority"]) ?? .normal,
            intent: row["intent"], language: row["language"],
            channel: Channel(rawValue: row["channel"]) ?? .portal,
            assigneeID: row["assignee_id"], teamID: row["team_id"], contactID: row["contact_id"],
            createdAt: row["created_at"], updatedAt: row["updated_at"], lastMessageAt: row["last_message_at"])
    }
}
