import Foundation
import GRDB
import SwitchboardCore

/// One entry of a visitor's chat stream: a chat message of one of their conversations, in
/// commit order. `seq` is the message's `seq` column — it only grows (VACUUM included), and
/// because SQLite has one writer at a time, a reader that has seen `seq` N has seen every
/// committed row below it.
public struct ChatStreamItem: Sendable, Equatable {
    public var seq: Int64
    public var messageID: String
    public var direction: MessageDirection
    public var senderKind: String
    public var agentName: String?
    public var text: String
    public var createdAt: Int64
    /// The widget's client id of a patient message.
    public var clientID: String?
}

/// Where a visitor's current conversation stands, as the widget shows it.
public struct ChatConversationState: Sendable, Equatable {
    public var conversationID: String
    public var status: ConversationStatus
    public var channel: Channel
    public var teamID: String?
    public var assigneeName: String?
}

/// A patient message from the widget, as `recordChatMessage` stores it.
public struct ChatInbound: Sendable, Equatable {
    public var visitorID: String
    /// The embedding site's id for an identified patient (already verified by its hash).
    public var identity: String?
    public var displayName: String?
    public var clientID: String
    public var text: String
    /// The frame as received, for the inbound journal.
    public var raw: [UInt8]

    public init(visitorID: String, identity: String?, displayName: String?, clientID: String, text: String, raw: [UInt8]) {
        self.visitorID = visitorID
        self.identity = identity
        self.displayName = displayName
        self.clientID = clientID
        self.text = text
        self.raw = raw
    }

    /// The dedupe key: the same client id from the same visitor is the same message.
    var externalID: String { "\(visitorID):\(clientID)" }
}

/// Web chat: visitors, their stream, the queue as they see it, and continuing a chat on
/// another channel.
extension SwitchboardStore {
    /// A secret the daemon generates once and keeps (e.g. the visitor-token key when none is
    /// configured), so tokens stay valid across restarts.
    public func generatedSecret(named name: String, bytes: Int = 32) async throws -> [UInt8] {
        try await write { db in
            if let existing = try Data.fetchOne(db, cachedSQL: "SELECT value FROM settings WHERE key = ?", arguments: [name]) {
                return [UInt8](existing)
            }
            var generator = SystemRandomNumberGenerator()
            let value = Identifier.randomBytes(bytes, using: &generator)
            try db.execute(cachedSQL: "INSERT INTO settings (key, value) VALUES (?, ?)", arguments: [name, Data(value)])
            return value
        }
    }

    /// The site's patient id of an identified visitor; nil for an anonymous (or unknown) one.
    public func chatVisitorIdentity(_ visitorID: String) async throws -> String? {
        try await pool.read { db in
            try String.fetchOne(db, cachedSQL: "SELECT identity FROM chat_visitors WHERE id = ?", arguments: [visitorID])
        }
    }

    /// The patient is typing (or stopped) in a conversation: an event for its agents. The
    /// caller throttles it.
    public func recordTyping(conversationID: String, active: Bool, now: Int64 = Timestamp.now()) async throws {
        try await write { db in
            try Self.conversationEvent(db, kind: "chat.typing", conversationID: conversationID, data: ["active": active], now: now)
        }
    }

    /// Records one patient chat message in one transaction: journal, contact (the site's
    /// patient id when identified, else the visitor), the visitor, the conversation (the
    /// visitor's open one — whatever channel it continued on — or a resolved one within
    /// `reopenWindowMilliseconds`, reopened, or a new one) and the message. The same client id
    /// again returns the first answer and stores nothing.
    public func recordChatMessage(_ chat: ChatInbound, reopenWindowMilliseconds: Int64,
                                  now: Int64 = Timestamp.now()) async throws -> (result: IngestResult, seq: Int64) {
        var contact = InboundContact(portalID: chat.identity, chatVisitorID: chat.visitorID, displayName: chat.displayName)
        contact.nameIsAuthoritative = false  // a chat page's claim, not the patient record
        let inbound = InboundMessage(channel: .chat, deliveryID: chat.externalID, raw: chat.raw, contact: contact,
                                     externalMessageID: chat.externalID, text: chat.text, sentAt: now)
        return try await writeInbound { db in
            let result = try Self.recordInbound(db, inbound, now: now) { db, contactID in
                try db.execute(cachedSQL: """
                    INSERT INTO chat_visitors (id, contact_id, identity, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at
                    """, arguments: [chat.visitorID, contactID, chat.identity, now, now])
                return try Self.resolveChatConversation(db, visitorID: chat.visitorID, contactID: contactID,
                                                        reopenWindow: reopenWindowMilliseconds, now: now)
            }
            let seq = try Int64.fetchOne(db, cachedSQL: "SELECT seq FROM messages WHERE id = ?", arguments: [result.messageID]) ?? 0
            return (result, seq)
        }
    }

    private static func resolveChatConversation(_ db: Database, visitorID: String, contactID: String, reopenWindow: Int64,
                                                now: Int64) throws -> InboundConversation {
        if let id = try String.fetchOne(db, cachedSQL: """
            SELECT id FROM conversations WHERE chat_visitor_id = ? AND status <> 'resolved' ORDER BY last_message_at DESC LIMIT 1
            """, arguments: [visitorID]) {
            return .existing(id)
        }
        if reopenWindow > 0, let id = try String.fetchOne(db, cachedSQL: """
            SELECT id FROM conversations WHERE chat_visitor_id = ? AND status = 'resolved' AND resolved_at >= ?
            ORDER BY resolved_at DESC LIMIT 1
            """, arguments: [visitorID, now - reopenWindow]) {
            try reopen(db, conversationID: id, actorKind: "channel", actorID: Channel.chat.rawValue, now: now)
            return .existing(id)
        }
        return try createConversation(db, contactID: contactID, channel: .chat, threadID: nil,
                                      address: ConversationAddress(chatVisitorID: visitorID), now: now)
    }

    /// The visitor's chat messages after `seq`, oldest first (patient and agent messages;
    /// never internal notes, never what came or went by SMS or email after the chat
    /// continued there — the widget shows only the chat).
    public func chatStream(visitorID: String, after seq: Int64, limit: Int = 200) async throws -> [ChatStreamItem] {
        try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: """
                SELECT m.seq, m.id, m.direction, m.sender_kind, a.name AS agent_name, m.body_text, m.created_at, m.external_id
                FROM messages m LEFT JOIN agents a ON a.id = m.sender_agent_id
                WHERE m.conversation_id IN (SELECT id FROM conversations WHERE chat_visitor_id = ?)
                  AND m.channel = 'chat' AND m.direction IN ('inbound','outbound') AND m.seq > ?
                ORDER BY m.seq LIMIT ?
                """, arguments: [visitorID, seq, limit]).map { row in
                let direction = MessageDirection(rawValue: row["direction"]) ?? .inbound
                let external: String? = row["external_id"]
                let prefix = visitorID + ":"
                return ChatStreamItem(seq: row["seq"], messageID: row["id"], direction: direction, senderKind: row["sender_kind"],
                                      agentName: row["agent_name"], text: row["body_text"], createdAt: row["created_at"],
                                      clientID: direction == .inbound && (external?.hasPrefix(prefix) ?? false)
                                          ? String(external!.dropFirst(prefix.count)) : nil)
            }
        }
    }

    /// The newest sequence number of the visitor's stream (0 before their first message).
    public func chatLatestSeq(visitorID: String) async throws -> Int64 {
        try await pool.read { db in
            try Int64.fetchOne(db, cachedSQL: """
                SELECT MAX(m.seq) FROM messages m
                WHERE m.conversation_id IN (SELECT id FROM conversations WHERE chat_visitor_id = ?)
                  AND m.channel = 'chat' AND m.direction IN ('inbound','outbound')
                """, arguments: [visitorID]) ?? 0
        }
    }

    /// The visitor's latest conversation (its place in the queue is the router's to say).
    public func chatState(visitorID: String) async throws -> ChatConversationState? {
        try await pool.read { db in
            try Row.fetchOne(db, cachedSQL: """
                SELECT c.id, c.status, c.channel, c.team_id, a.name AS assignee_name
                FROM conversations c LEFT JOIN agents a ON a.id = c.assignee_id
                WHERE c.chat_visitor_id = ? ORDER BY c.last_message_at DESC, c.created_at DESC LIMIT 1
                """, arguments: [visitorID]).map { row in
                ChatConversationState(conversationID: row["id"], status: ConversationStatus(rawValue: row["status"]) ?? .open,
                                      channel: Channel(rawValue: row["channel"]) ?? .chat, teamID: row["team_id"],
                                      assigneeName: row["assignee_name"])
            }
        }
    }

    /// Whether anyone could answer a chat now: active agents online in the team (any team
    /// when nil).
    public func chatAgentsOnline(teamID: String?) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(db, cachedSQL: """
                SELECT COUNT(*) FROM agents a WHERE a.active = 1 AND a.presence = 'online'
                  AND (? IS NULL OR EXISTS (SELECT 1 FROM agent_teams t WHERE t.agent_id = a.id AND t.team_id = ?))
                """, arguments: [teamID, teamID]) ?? 0
        }
    }

    /// The patient's widget received every frame up to `seq`: the chat replies up to it that
    /// were sent (the caller caps `seq` at what it sent) are delivered.
    public func markChatReceived(visitorID: String, upTo seq: Int64, now: Int64 = Timestamp.now()) async throws -> Int {
        try await markChatReplies(visitorID: visitorID, upTo: seq, still: "m.delivery_status = 'sent'") { db, id, conversationID in
            try db.execute(cachedSQL: "UPDATE messages SET delivery_status = 'delivered', delivery_updated_at = ? WHERE id = ?",
                           arguments: [now, id])
            try Self.messageStatusEvent(db, messageID: id, conversationID: conversationID, status: .delivered, now: now)
        }
    }

    /// The patient saw every chat reply up to `seq`.
    public func markChatRead(visitorID: String, upTo seq: Int64, now: Int64 = Timestamp.now()) async throws -> Int {
        try await markChatReplies(visitorID: visitorID, upTo: seq, still: "m.read_at IS NULL") { db, id, conversationID in
            try db.execute(cachedSQL: "UPDATE messages SET read_at = ? WHERE id = ?", arguments: [now, id])
            try Self.conversationEvent(db, kind: "message.read", conversationID: conversationID, data: ["message_id": id], now: now)
        }
    }

    /// Applies `mark` to each of the visitor's outbound chat messages up to `seq` that still
    /// match `condition` (a fixed SQL fragment); returns how many there were.
    private func markChatReplies(visitorID: String, upTo seq: Int64, still condition: String,
                                 _ mark: @escaping @Sendable (Database, String, String) throws -> Void) async throws -> Int {
        try await write { db in
            let rows = try Row.fetchAll(db, cachedSQL: """
                SELECT m.id, m.conversation_id FROM messages m
                WHERE m.conversation_id IN (SELECT id FROM conversations WHERE chat_visitor_id = ?)
                  AND m.direction = 'outbound' AND m.channel = 'chat' AND \(condition) AND m.seq <= ?
                """, arguments: [visitorID, seq])
            for row in rows { try mark(db, row["id"], row["conversation_id"]) }
            return rows.count
        }
    }

    public enum ContinueOutcome: Sendable, Equatable {
        case continued(conversationID: String)
        /// The visitor has no open conversation (nothing to continue yet).
        case noConversation
        /// The open conversation already left the chat for another channel.
        case alreadyContinued
        /// The address belongs to another patient: never re-pointed from a chat page.
        case addressUnavailable
    }

    /// The patient chose to continue on SMS or email. The address is not verified, so it may
    /// only be one that nobody else owns: it joins this contact (if no one has it) and the
    /// visitor's open chat conversation switches channel, once, so agents' replies go there.
    /// Inbound SMS and email thread back only to the same contact's conversations.
    public func continueChat(visitorID: String, channel: Channel, address: String, now: Int64 = Timestamp.now()) async throws -> ContinueOutcome {
        precondition(channel == .sms || channel == .email)
        let kind = channel == .sms ? IdentityKind.phone : IdentityKind.email
        return try await write { db in
            guard let row = try Row.fetchOne(db, cachedSQL: """
                SELECT id, contact_id, channel FROM conversations WHERE chat_visitor_id = ? AND status <> 'resolved'
                ORDER BY last_message_at DESC LIMIT 1
                """, arguments: [visitorID]) else { return .noConversation }
            let id: String = row["id"]
            let contactID: String = row["contact_id"]
            guard (row["channel"] as String) == Channel.chat.rawValue else { return .alreadyContinued }
            if let owner = try String.fetchOne(db, cachedSQL: "SELECT contact_id FROM contact_identities WHERE kind = ? AND value = ?",
                                               arguments: [kind.rawValue, address]), owner != contactID {
                try Self.audit(db, actorKind: "channel", actorID: Channel.chat.rawValue, action: "conversation.continue_refused",
                               conversationID: id, now: now)
                return .addressUnavailable
            }
            try db.execute(cachedSQL: """
                INSERT INTO contact_identities (contact_id, kind, value, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (kind, value) DO NOTHING
                """, arguments: [contactID, kind.rawValue, address, now])
            try db.execute(cachedSQL: "UPDATE conversations SET channel = ?, remote_address = ?, updated_at = ? WHERE id = ?",
                           arguments: [channel.rawValue, address, now, id])
            try Self.audit(db, actorKind: "channel", actorID: Channel.chat.rawValue, action: "conversation.channel_changed",
                           conversationID: id, now: now)
            try Self.conversationEvent(db, kind: "conversation.channel", conversationID: id, data: ["channel": channel.rawValue], now: now)
            return .continued(conversationID: id)
        }
    }

    /// The visitor of an identified patient, created at their first hello if need be (with
    /// their contact, found or created by the site's patient id): every tab and device of
    /// theirs is one visitor from the start. Safe against two hellos at once.
    public func identifiedChatVisitor(identity: String, displayName: String?, now: Int64 = Timestamp.now()) async throws -> String {
        try await write { db in
            if let existing = try String.fetchOne(db, cachedSQL: "SELECT id FROM chat_visitors WHERE identity = ?", arguments: [identity]) {
                return existing
            }
            var contact = InboundContact(portalID: identity, displayName: displayName)
            contact.nameIsAuthoritative = false
            let visitorID = Identifier.make(prefix: "vis")
            contact.chatVisitorID = visitorID
            let contactID = try Self.resolveContact(db, contact, now: now)
            try db.execute(cachedSQL: """
                INSERT INTO chat_visitors (id, contact_id, identity, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)
                """, arguments: [visitorID, contactID, identity, now, now])
            return visitorID
        }
    }

    /// Conversations with chat visitors touched by events after `seq`, and the newest seq
    /// read: how open chat sockets learn that something of theirs changed.
    public func chatEventsAfter(_ seq: Int64, limit: Int = 1000) async throws -> (conversations: Set<String>, newest: Int64) {
        try await pool.read { db in
            let rows = try Row.fetchAll(db, cachedSQL: """
                SELECT e.seq, e.conversation_id FROM events e WHERE e.seq > ? ORDER BY e.seq LIMIT ?
                """, arguments: [seq, limit])
            var conversations = Set<String>()
            var newest = seq
            for row in rows {
                newest = row["seq"]
                if let id: String = row["conversation_id"] { conversations.insert(id) }
            }
            return (conversations, newest)
        }
    }

    /// The chat visitor of each conversation given (those that have one).
    public func chatVisitors(of conversationIDs: Set<String>) async throws -> [String: String] {
        guard !conversationIDs.isEmpty else { return [:] }
        return try await pool.read { db in
            let ids = Array(conversationIDs)
            let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ",")
            var map: [String: String] = [:]
            for row in try Row.fetchAll(db, cachedSQL: """
                SELECT id, chat_visitor_id FROM conversations WHERE id IN (\(placeholders)) AND chat_visitor_id IS NOT NULL
                """, arguments: StatementArguments(ids)) {
                map[row["id"]] = row["chat_visitor_id"]
            }
            return map
        }
    }
}
