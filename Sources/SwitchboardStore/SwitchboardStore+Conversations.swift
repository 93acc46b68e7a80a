import Foundation
import GRDB
import SwitchboardCore

/// What agents do to conversations. Visibility is one rule, applied in SQL everywhere:
/// an `agent` sees the conversations assigned or offered to them and the unassigned ones of
/// their teams (or of no team); a `supervisor` also sees their teams' assigned ones; an
/// `admin` sees all. A conversation one may not see is indistinguishable from one that does
/// not exist (`StoreError.notFound`), and the attempt is audited.
extension SwitchboardStore {
    private static let conversationColumns = """
        c.id, c.status, c.priority, c.intent, c.language, c.channel, c.assignee_id, c.team_id, c.contact_id, c.created_at, c.updated_at, c.last_message_at,
        c.first_response_due_at, c.first_response_at, c.next_response_due_at
        """

    static let visibleTo = """
        (? OR c.assignee_id = ?
         OR EXISTS (SELECT 1 FROM offers o WHERE o.conversation_id = c.id AND o.agent_id = ? AND o.state = 'pending')
         OR ((c.assignee_id IS NULL OR ?) AND (c.team_id IS NULL OR c.team_id IN (SELECT team_id FROM agent_teams WHERE agent_id = ?))))
        """

    static func visibility(_ agent: Agent) -> StatementArguments {
        [agent.role == .admin, agent.id, agent.id, agent.role == .supervisor, agent.id]
    }

    /// Runs `body` (which checks visibility) in a write transaction; when it answers
    /// "not found" for a conversation that exists, records the denied attempt.
    func scoped<T: Sendable>(_ conversationID: String, agent: Agent, sourceAddress: String?, now: Int64,
                             _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await write(body)
        } catch StoreError.notFound {
            try await write { db in
                if try Bool.fetchOne(db, cachedSQL: "SELECT 1 FROM conversations WHERE id = ?", arguments: [conversationID]) == true {
                    try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "conversation.access_denied",
                                   conversationID: conversationID, sourceAddress: sourceAddress, now: now)
                }
            }
            throw StoreError.notFound
        }
    }

    /// `contactID` narrows the list to one patient's conversations (their history across
    /// channels).
    public func listConversations(for agent: Agent, status: ConversationListStatus, assignee: AssigneeFilter,
                                  contactID: String? = nil, limit: Int = 100) async throws -> [ConversationSummary] {
        var sql = "SELECT \(Self.conversationColumns) FROM conversations c WHERE \(Self.visibleTo)"
        var arguments = Self.visibility(agent)
        if let contactID {
            sql += " AND c.contact_id = ?"
            arguments += [contactID]
        }
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
            try Row.fetchAll(db, cachedSQL: finalSQL, arguments: finalArguments).map(Self.summary)
        }
    }

    /// The conversation, its contact and its messages — and an audit event recording who
    /// read it, from where, in the same transaction: no read goes unrecorded.
    public func readConversation(id: String, by agent: Agent, sourceAddress: String?,
                                 now: Int64 = Timestamp.now()) async throws -> ConversationDetail {
        try await scoped(id, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            let contactRow = try Row.fetchOne(db, cachedSQL: "SELECT id, display_name FROM contacts WHERE id = ?",
                                              arguments: [conversation.contactID])
            let identities = try Row.fetchAll(db, cachedSQL: """
                SELECT kind, value FROM contact_identities WHERE contact_id = ? ORDER BY kind, id
                """, arguments: [conversation.contactID]).compactMap { row -> ContactView.Identity? in
                guard let kind = IdentityKind(rawValue: row["kind"]) else { return nil }
                return ContactView.Identity(kind: kind, value: row["value"])
            }
            var attachments: [String: [AttachmentView]] = [:]
            for row in try Row.fetchAll(db, cachedSQL: """
                SELECT a.id, a.message_id, a.url, a.content_type, a.filename, a.size_bytes, a.data IS NOT NULL AS kept FROM attachments a
                JOIN messages m ON m.id = a.message_id WHERE m.conversation_id = ? ORDER BY a.id
                """, arguments: [id]) {
                attachments[row["message_id"], default: []].append(
                    AttachmentView(id: (row["kept"] as Bool) ? row["id"] : nil, url: row["url"], contentType: row["content_type"],
                                   filename: row["filename"], sizeBytes: row["size_bytes"]))
            }
            var emails: [String: EmailView] = [:]
            for row in try Row.fetchAll(db, cachedSQL: """
                SELECT e.message_id, e.subject, e.from_address, e.rfc_message_id, e.quoted_text, e.auto_reply, m.body_html
                FROM email_messages e JOIN messages m ON m.id = e.message_id WHERE m.conversation_id = ?
                """, arguments: [id]) {
                emails[row["message_id"]] = EmailView(subject: row["subject"], fromAddress: row["from_address"],
                                                      rfcMessageID: row["rfc_message_id"], quoted: row["quoted_text"],
                                                      html: row["body_html"], autoReply: row["auto_reply"])
            }
            let messages = try Row.fetchAll(db, cachedSQL: """
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
                            }, email: emails[row["id"]])
            }
            var smsNumber: String?
            if conversation.channel == .sms {
                smsNumber = try String.fetchOne(db, cachedSQL: "SELECT remote_address FROM conversations WHERE id = ?", arguments: [id])
            }
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "conversation.read",
                           conversationID: id, sourceAddress: sourceAddress, now: now)
            let tags = try String.fetchAll(db, cachedSQL: "SELECT tag FROM conversation_tags WHERE conversation_id = ? ORDER BY created_at, tag",
                                           arguments: [id])
            let skillsJSON = try String.fetchOne(db, cachedSQL: "SELECT required_skills FROM conversations WHERE id = ?", arguments: [id]) ?? "[]"
            let skills = (try? JSONSerialization.jsonObject(with: Data(skillsJSON.utf8))) as? [String] ?? []
            return ConversationDetail(
                conversation: conversation,
                contact: ContactView(id: conversation.contactID, name: contactRow?["display_name"], identities: identities),
                messages: messages, smsNumber: smsNumber,
                smsConsent: try smsNumber.flatMap { try Self.consent(db, phone: $0) }, tags: tags, requiredSkills: skills)
        }
    }

    /// One attachment's bytes, if the conversation is visible to the agent and the
    /// attachment belongs to it (an id from another conversation is simply not found).
    /// The download is audited like a read.
    public func readAttachment(conversationID id: String, attachmentID: Int64, by agent: Agent, sourceAddress: String?,
                               now: Int64 = Timestamp.now()) async throws -> AttachmentContent {
        try await scoped(id, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            _ = try Self.visibleConversation(db, id: id, agent: agent)
            guard let row = try Row.fetchOne(db, cachedSQL: """
                SELECT a.filename, a.content_type, a.data, a.message_id FROM attachments a JOIN messages m ON m.id = a.message_id
                WHERE a.id = ? AND m.conversation_id = ? AND a.data IS NOT NULL
                """, arguments: [attachmentID, id]) else {
                throw StoreError.notFound
            }
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "attachment.read",
                           conversationID: id, messageID: row["message_id"], sourceAddress: sourceAddress, now: now)
            let data: Data = row["data"]
            return AttachmentContent(filename: row["filename"], contentType: row["content_type"], data: [UInt8](data))
        }
    }

    /// Assigns the conversation to the agent. Claiming one's own is a no-op; one held by
    /// another agent is a conflict for everyone (handing work over is a transfer, not a claim).
    public func claimConversation(id: String, by agent: Agent, sourceAddress: String? = nil,
                                  now: Int64 = Timestamp.now()) async throws -> ConversationSummary {
        try await scoped(id, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            if conversation.assigneeID == agent.id { return conversation }
            if conversation.assigneeID != nil {
                throw StoreError.conflict("the conversation is assigned to another agent")
            }
            try Self.takeOver(db, conversationID: id, agent: agent, teamID: conversation.teamID, via: "claimed", now: now)
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "conversation.claimed", conversationID: id, now: now)
            return try Self.visibleConversation(db, id: id, agent: agent)
        }
    }

    public func resolveConversation(id: String, by agent: Agent, sourceAddress: String? = nil,
                                    now: Int64 = Timestamp.now()) async throws -> ConversationSummary {
        try await scoped(id, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            if conversation.status == .resolved { return conversation }
            try db.execute(cachedSQL: "UPDATE conversations SET status = 'resolved', resolved_at = ?, updated_at = ?, waiting_since = NULL WHERE id = ?",
                           arguments: [now, now, id])
            try Self.withdrawOffers(db, conversationID: id, reason: "closed", now: now)
            try Self.signal(db, conversationID: id, kind: "resolved", now: now)
            try Self.event(db, kind: "conversation.status", audience: .conversation, agentID: conversation.assigneeID,
                           teamID: conversation.teamID, conversationID: id, data: ["status": "resolved"], now: now)
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "conversation.resolved", conversationID: id, now: now)
            return try Self.visibleConversation(db, id: id, agent: agent)
        }
    }

    public func reopenConversation(id: String, by agent: Agent, sourceAddress: String? = nil,
                                   now: Int64 = Timestamp.now()) async throws -> ConversationSummary {
        try await scoped(id, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            if conversation.status != .resolved { return conversation }
            try Self.reopen(db, conversationID: id, actorKind: "agent", actorID: agent.id, now: now)
            return try Self.visibleConversation(db, id: id, agent: agent)
        }
    }

    /// Stores an agent's reply and queues it for delivery through the conversation's channel,
    /// in one transaction. An unassigned conversation becomes the replying agent's.
    public func reply(conversationID id: String, by agent: Agent, text: String, sourceAddress: String? = nil,
                      now: Int64 = Timestamp.now()) async throws -> MessageView {
        try await scoped(id, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            if conversation.assigneeID != nil, conversation.assigneeID != agent.id, !agent.role.seesAllConversations {
                throw StoreError.conflict("the conversation is assigned to another agent")
            }
            if conversation.channel == .sms, let phone = try String.fetchOne(db, cachedSQL: "SELECT remote_address FROM conversations WHERE id = ?", arguments: [id]),
               let consent = try Self.consent(db, phone: phone), consent.optedOut {
                throw StoreError.conflict("the patient opted out of SMS (replied \(consent.keyword) at \(Timestamp.format(consent.updatedAt))); no SMS can be sent until they reply START")
            }
            let messageID = try Self.queueOutbound(db, conversationID: id, channel: conversation.channel, senderKind: "agent",
                                                   agentID: agent.id, text: text, purpose: .reply, now: now)
            if conversation.assigneeID == nil {
                try Self.takeOver(db, conversationID: id, agent: agent, teamID: conversation.teamID, via: "replied", now: now)
            }
            try db.execute(cachedSQL: """
                UPDATE conversations SET updated_at = ?, last_message_at = ?, waiting_since = NULL, next_response_due_at = NULL,
                    first_response_at = COALESCE(first_response_at, ?) WHERE id = ?
                """, arguments: [now, now, now, id])
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "message.sent", conversationID: id,
                           messageID: messageID, now: now)
            try Self.signal(db, conversationID: id, kind: "replied", now: now)
            try Self.event(db, kind: "message.created", audience: .conversation, agentID: conversation.assigneeID ?? agent.id,
                           teamID: conversation.teamID, conversationID: id,
                           data: ["message_id": messageID, "direction": "outbound", "channel": conversation.channel.rawValue], now: now)
            return MessageView(id: messageID, direction: .outbound, senderAgentID: agent.id, channel: conversation.channel,
                               text: text, sentAt: now, createdAt: now, deliveryStatus: .queued, failureReason: nil)
        }
    }

    /// Inserts an outbound message and its outbox item; returns the message id.
    @discardableResult
    static func queueOutbound(_ db: Database, conversationID: String, channel: Channel, senderKind: String, agentID: String?,
                              text: String, purpose: OutboxPurpose, now: Int64) throws -> String {
        let messageID = Identifier.makeOrdered(prefix: "msg")
        try db.execute(cachedSQL: """
            INSERT INTO messages (id, conversation_id, direction, sender_kind, sender_agent_id, channel, body_text,
                                  sent_at, created_at, delivery_status, delivery_updated_at, seq)
            VALUES (?, ?, 'outbound', ?, ?, ?, ?, ?, ?, 'queued', ?, \(Schema.nextMessageSeq))
            """, arguments: [messageID, conversationID, senderKind, agentID, channel.rawValue, text, now, now, now])
        try db.execute(cachedSQL: """
            INSERT INTO outbox (message_id, conversation_id, channel, next_attempt_at, created_at, purpose) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [messageID, conversationID, channel.rawValue, now, now, purpose.rawValue])
        return messageID
    }

    /// Answers "not found" (and audits the attempt) unless the agent may see the conversation.
    public func checkAccess(conversationID id: String, by agent: Agent, sourceAddress: String?,
                            now: Int64 = Timestamp.now()) async throws {
        try await scoped(id, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            _ = try Self.visibleConversation(db, id: id, agent: agent)
        }
    }

    /// A conversation's summary, without a visibility check: for answering a request that
    /// already passed one.
    public func summary(id: String) async throws -> ConversationSummary {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, cachedSQL: "SELECT \(Self.conversationColumns) FROM conversations c WHERE c.id = ?",
                                             arguments: [id]) else { throw StoreError.notFound }
            return Self.summary(row)
        }
    }

    /// Makes the agent the assignee of an unassigned conversation (claim, or a reply to an
    /// unassigned one): pending offers to others are withdrawn, and the router is told.
    static func takeOver(_ db: Database, conversationID id: String, agent: Agent, teamID: String?, via: String, now: Int64) throws {
        try db.execute(cachedSQL: "UPDATE conversations SET assignee_id = ?, updated_at = ? WHERE id = ?", arguments: [agent.id, now, id])
        try withdrawOffers(db, conversationID: id, except: agent.id, reason: "taken by another agent", now: now)
        try db.execute(cachedSQL: "UPDATE offers SET state = 'accepted', ended_at = ? WHERE conversation_id = ? AND state = 'pending'",
                       arguments: [now, id])
        try signal(db, conversationID: id, kind: via, now: now)
        try event(db, kind: "conversation.assigned", audience: .conversation, agentID: agent.id, teamID: teamID,
                  conversationID: id, data: ["agent_id": agent.id, "via": via], now: now)
    }

    static func visibleConversation(_ db: Database, id: String, agent: Agent) throws -> ConversationSummary {
        guard let row = try Row.fetchOne(db, cachedSQL: """
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
            createdAt: row["created_at"], updatedAt: row["updated_at"], lastMessageAt: row["last_message_at"],
            firstResponseDueAt: row["first_response_due_at"], firstResponseAt: row["first_response_at"],
            nextResponseDueAt: row["next_response_due_at"])
    }
}
