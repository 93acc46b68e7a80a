import Crypto
import Foundation
import GRDB
import SwitchboardCore
import Synchronization

// SwitchboardStore — the conversation store: the only module that speaks SQL.
//
// One `DatabasePool` per database file per process, in WAL mode with `synchronous=FULL`
// (a commit is on disk before the call returns, which is what lets a channel be
// acknowledged after it) and foreign keys on. Each public method is one transaction named
// for its intent, so that a future PostgreSQL store can implement the same façade.
//
// Trusts: its callers to have authenticated the request and validated the payload.
// Still relies on SQLite's constraints for every invariant it can carry.
// On failure: throws `StoreError` for outcomes a caller must handle (not found, conflict)
// and GRDB's errors for the store itself failing (disk full, I/O); in both cases the
// transaction is rolled back and nothing is half-written. Errors never carry query
// arguments (GRDB keeps them out of descriptions unless asked), so no PHI leaks through them.

public enum StoreError: Error, Equatable, CustomStringConvertible {
    case notFound
    case conflict(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .notFound: "not found"
        case .conflict(let reason): reason
        case .invalid(let reason): reason
        }
    }
}

public final class SwitchboardStore: Sendable {
    let pool: DatabasePool
    /// Every asynchronous write goes through here: concurrent writers share one commit.
    let groupCommit: GroupCommit
    let maxQueuedInboundWrites: Int
    /// Deliveries acknowledged on receipt and not yet made into messages (`inbound_queue`
    /// rows without a failure), and how many may wait before receipt is refused.
    let inboundBacklog = Atomic<Int>(0)
    /// When the last delivery was queued (ms since the epoch; 0: none since start).
    let lastQueuedAt = Atomic<Int64>(0)
    /// Deliveries queued since the store was opened (the normaliser's measure of intake).
    let queuedSinceOpen = Atomic<Int>(0)
    public let maxInboundBacklog: Int
    public let path: String

    /// Opens (creating the directory and file if needed) and migrates the database. With
    /// `migrate: false` (the command line, beside a running daemon) the schema must already
    /// be exactly this version's: the daemon owns migrations.
    /// `auditKey` (`audit.chain_key`) MACs every audit row written from now on: see `AuditChain`.
    /// `commitObserver` hears of every committed write transaction and how many callers'
    /// writes it carried (the daemon's metrics).
    /// `maxQueuedInboundWrites` bounds how many inbound messages may wait for the store:
    /// past it `writeInbound` refuses (`StoreOverloaded`) instead of queueing without end.
    /// `maxInboundBacklog` bounds how many deliveries acknowledged on receipt may wait to be
    /// normalised (`queuePortalMessage`): past it, receipt is refused (`StoreOverloaded`).
    public init(path: String, migrate: Bool = true, auditKey: [UInt8]? = nil, maxQueuedInboundWrites: Int = 1000,
                maxInboundBacklog: Int = 20_000,
                commitObserver: (@Sendable (_ writes: Int) -> Void)? = nil) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // Debian's SQLite defaults are not ours: a commit must be durable before we ack.
            try db.execute(cachedSQL: "PRAGMA synchronous = FULL")
            // Deleted or purged content is overwritten, not left in free pages.
            try db.execute(cachedSQL: "PRAGMA secure_delete = ON")
            // The audit chain's MAC, keyed outside the database (NULL without a key).
            db.add(function: AuditChain.macFunction(key: auditKey))
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        groupCommit = GroupCommit(writer: pool, observer: commitObserver)
        self.maxQueuedInboundWrites = maxQueuedInboundWrites
        self.maxInboundBacklog = maxInboundBacklog
        self.path = path
        if migrate {
            try Schema.migrator.migrate(pool)
        } else {
            try pool.read { db in
                if try Schema.migrator.hasBeenSuperseded(db) {
                    throw StoreError.invalid("the database was migrated by a newer Switchboard; use that version's command line")
                }
                if try !Schema.migrator.hasCompletedMigrations(db) {
                    throw StoreError.invalid("the database schema is older than this command line; start the daemon of this version first (it migrates)")
                }
            }
        }
        let waiting = try pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM inbound_queue WHERE failed_at IS NULL") ?? 0
        }
        inboundBacklog.store(waiting, ordering: .relaxed)
    }

    /// One write transaction's worth of work, committed together with whatever other writes
    /// are waiting (see `GroupCommit`); returns once it is on disk.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await groupCommit.write(body)
    }

    /// A write for an inbound message: refused with `StoreOverloaded` when the queue is full,
    /// so that a channel is told "later" at once rather than left waiting. Agents' actions and
    /// the daemon's own work use `write`, which always queues.
    func writeInbound<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await groupCommit.write(admittingBelow: maxQueuedInboundWrites, body)
    }

    /// Transactions committed and writes they carried since the store was opened.
    public var commitStatistics: (transactions: Int, writes: Int, largestBatch: Int) {
        let statistics = groupCommit.statistics
        return (statistics.transactions, statistics.writes, statistics.largestBatch)
    }

    /// Names of the migrations applied, oldest first.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Schema.migrator.appliedMigrations(db) }
    }

    /// A cheap read that proves the database answers.
    /// Takes the write lock and lets it go (a rolled-back IMMEDIATE transaction): proves the
    /// store can commit now, without writing anything. Fails after the busy timeout.
    public func healthProbe() async throws {
        try await pool.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) { .rollback }
        }
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, cachedSQL: "SELECT 1") }
    }

    // MARK: - Inbound

    /// Records one inbound portal message: the raw delivery in the journal, the contact
    /// (found or created from its identities), the conversation (by thread id, else the
    /// contact's latest unresolved portal conversation, else new) and the message — in one
    /// transaction. A redelivery (same `deliveryID`) or a message id seen before returns the
    /// first answer and stores nothing new.
    public func recordPortalMessage(
        deliveryID: String, rawBody: [UInt8], contact: InboundContact,
        threadID: String?, messageID externalMessageID: String, text: String, sentAt: Int64,
        now: Int64 = Timestamp.now()
    ) async throws -> IngestResult {
        let inbound = InboundMessage(channel: .portal, deliveryID: deliveryID, raw: rawBody, contact: contact,
                                     externalMessageID: externalMessageID, text: text, sentAt: sentAt)
        return try await writeInbound { db in
            try Self.recordInbound(db, inbound, now: now) { db, contactID in
                try Self.resolvePortalConversation(db, contactID: contactID, threadID: threadID, now: now)
            }
        }
    }

    /// What every channel's inbound path stores, whatever its wire format.
    struct InboundMessage {
        var channel: Channel
        var deliveryID: String
        var raw: [UInt8]
        var contact: InboundContact
        var externalMessageID: String
        var text: String
        var sentAt: Int64
        /// The sanitised HTML part, for mail that had one (`messages.body_html`).
        var html: String? = nil
    }

    /// The conversation an inbound message goes to, and whether it was created for it.
    struct InboundConversation {
        var id: String
        var isNew: Bool

        static func existing(_ id: String) -> InboundConversation { InboundConversation(id: id, isNew: false) }
    }

    /// Where a new conversation's replies go, known from the message that starts it, so that
    /// the conversation is inserted with it rather than updated right after: email's reply
    /// token and addresses, SMS's gateway and numbers, chat's visitor. Portal needs none.
    struct ConversationAddress {
        var replyToken: String?
        var localAddress: String?
        var remoteAddress: String?
        var gateway: String?
        var chatVisitorID: String?

        static let none = ConversationAddress()
    }

    /// The shared inbound transaction body. `conversation` picks (or creates) the
    /// conversation for the resolved contact — the one step that differs per channel.
    /// Returns the stored result, or the first answer for a repeated delivery or message.
    static func recordInbound(
        _ db: Database, _ inbound: InboundMessage, now: Int64,
        conversation: (Database, String) throws -> InboundConversation
    ) throws -> IngestResult {
        let channel = inbound.channel.rawValue
        if let row = try Row.fetchOne(db, cachedSQL: """
            SELECT conversation_id, message_id FROM inbound_journal WHERE channel = ? AND external_id = ?
            """, arguments: [channel, inbound.deliveryID]) {
            return IngestResult(conversationID: row["conversation_id"], messageID: row["message_id"], duplicate: true)
        }
        if let row = try Row.fetchOne(db, cachedSQL: """
            SELECT id, conversation_id FROM messages WHERE channel = ? AND external_id = ?
            """, arguments: [channel, inbound.externalMessageID]) {
            let result = IngestResult(conversationID: row["conversation_id"], messageID: row["id"], duplicate: true)
            try journal(db, inbound, outcome: "duplicate_message", result: result, now: now)
            return result
        }
        let contactID = try resolveContact(db, inbound.contact, now: now)
        let target = try conversation(db, contactID)
        let conversationID = target.id
        let messageID = Identifier.makeOrdered(prefix: "msg")
        try db.execute(cachedSQL: """
            INSERT INTO messages (id, conversation_id, direction, sender_kind, channel, external_id, body_text, body_html, sent_at,
                                  created_at, seq)
            VALUES (?, ?, 'inbound', 'contact', ?, ?, ?, ?, ?, ?, \(Schema.nextMessageSeq))
            """, arguments: [messageID, conversationID, channel, inbound.externalMessageID, inbound.text, inbound.html,
                             inbound.sentAt, now])
        // A conversation created for this message was inserted with these values already
        // (`createConversation`): updating the row again would rewrite it and four indexes.
        if !target.isNew {
            try db.execute(cachedSQL: """
                UPDATE conversations SET last_message_at = ?, updated_at = ?, waiting_since = COALESCE(waiting_since, ?),
                    status = CASE WHEN status = 'pending' THEN 'open' ELSE status END
                WHERE id = ?
                """, arguments: [now, now, now, conversationID])
        }
        let result = IngestResult(conversationID: conversationID, messageID: messageID, duplicate: false)
        try journal(db, inbound, outcome: "stored", result: result, now: now)
        try audit(db, actorKind: "channel", actorID: channel, action: "message.received",
                  conversationID: conversationID, messageID: messageID, now: now)
        try signal(db, conversationID: conversationID, kind: "inbound", now: now)
        try conversationEvent(db, kind: "message.created", conversationID: conversationID, data: ["message_id": messageID, "direction": "inbound", "channel": channel], now: now)
        return result
    }

    private static func journal(_ db: Database, _ inbound: InboundMessage, outcome: String, result: IngestResult, now: Int64) throws {
        try db.execute(cachedSQL: """
            INSERT INTO inbound_journal (channel, external_id, received_at, raw, outcome, message_id, conversation_id)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [inbound.channel.rawValue, inbound.deliveryID, now, Data(inbound.raw), outcome, result.messageID, result.conversationID])
    }

    /// Finds the contact that owns any of the identities (portal id first, then phone, then
    /// email, then chat visitor) or creates one, and attaches the identities nobody owns yet. An identity that
    /// already belongs to another contact is left where it is: merging two patients is a
    /// human decision.
    static func resolveContact(_ db: Database, _ contact: InboundContact, now: Int64) throws -> String {
        let claims: [(IdentityKind, String)] = [
            contact.portalID.map { (.portal, $0) },
            contact.phoneE164.map { (.phone, $0) },
            contact.email.map { (.email, $0) },
            contact.chatVisitorID.map { (.chat, $0) },
        ].compactMap { $0 }
        var contactID: String?
        for (kind, value) in claims {
            if let owner = try String.fetchOne(db, cachedSQL: "SELECT contact_id FROM contact_identities WHERE kind = ? AND value = ?",
                                               arguments: [kind.rawValue, value]) {
                contactID = owner
                break
            }
        }
        let id: String
        if let contactID {
            id = contactID
            if let name = contact.displayName, !name.isEmpty {
                try db.execute(cachedSQL: """
                    UPDATE contacts SET display_name = ?, updated_at = ? WHERE id = ? AND display_name IS NOT ? AND (? OR display_name IS NULL)
                    """, arguments: [name, now, id, name, contact.nameIsAuthoritative])
            }
        } else {
            id = Identifier.makeOrdered(prefix: "ctc")
            try db.execute(cachedSQL: "INSERT INTO contacts (id, display_name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                           arguments: [id, contact.displayName, now, now])
        }
        for (kind, value) in claims {
            try db.execute(cachedSQL: """
                INSERT INTO contact_identities (contact_id, kind, value, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (kind, value) DO NOTHING
                """, arguments: [id, kind.rawValue, value, now])
        }
        return id
    }

    static func resolvePortalConversation(_ db: Database, contactID: String, threadID: String?, now: Int64) throws -> InboundConversation {
        if let threadID {
            if let row = try Row.fetchOne(db, cachedSQL: """
                SELECT id, contact_id, status FROM conversations WHERE channel = 'portal' AND external_thread_id = ?
                """, arguments: [threadID]) {
                guard (row["contact_id"] as String) == contactID else {
                    throw StoreError.conflict("thread_id belongs to another patient")
                }
                let id: String = row["id"]
                if (row["status"] as String) == ConversationStatus.resolved.rawValue {
                    try reopen(db, conversationID: id, actorKind: "channel", actorID: Channel.portal.rawValue, now: now)
                }
                return .existing(id)
            }
            return try createConversation(db, contactID: contactID, channel: .portal, threadID: threadID, now: now)
        }
        if let id = try String.fetchOne(db, cachedSQL: """
            SELECT id FROM conversations
            WHERE contact_id = ? AND channel = 'portal' AND status <> 'resolved'
            ORDER BY last_message_at DESC, created_at DESC LIMIT 1
            """, arguments: [contactID]) {
            return .existing(id)
        }
        return try createConversation(db, contactID: contactID, channel: .portal, threadID: nil, now: now)
    }

    /// A new conversation for the inbound message about to be stored (`recordInbound`), open
    /// and waiting since `now`, its last message at `now`: the state that message gives it, so
    /// that the row is written once. A conversation started without a thread id gets its own
    /// id as the thread id, which replies carry, so the portal's answer threads back into it.
    /// `address` is where replies go (see `ConversationAddress`), written in the same INSERT.
    static func createConversation(_ db: Database, contactID: String, channel: Channel, threadID: String?,
                                   address: ConversationAddress = .none, now: Int64) throws -> InboundConversation {
        let id = Identifier.makeOrdered(prefix: "cnv")
        try db.execute(cachedSQL: """
            INSERT INTO conversations (id, contact_id, channel, external_thread_id, chat_visitor_id, reply_token, local_address,
                                       remote_address, gateway, created_at, updated_at, last_message_at, waiting_since)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [id, contactID, channel.rawValue, threadID ?? id, address.chatVisitorID, address.replyToken,
                             address.localAddress, address.remoteAddress, address.gateway, now, now, now, now])
        try audit(db, actorKind: "channel", actorID: channel.rawValue, action: "conversation.created", conversationID: id, now: now)
        return InboundConversation(id: id, isNew: true)
    }

    static func reopen(_ db: Database, conversationID: String, actorKind: String, actorID: String?, now: Int64) throws {
        try db.execute(cachedSQL: """
            UPDATE conversations SET status = 'open', resolved_at = NULL, updated_at = ?, first_response_at = NULL,
                first_response_due_at = NULL, first_response_breached_at = NULL, overflow_open = 0,
                waiting_since = COALESCE(waiting_since, ?) WHERE id = ?
            """, arguments: [now, now, conversationID])
        try signal(db, conversationID: conversationID, kind: "reopened", now: now)
        try conversationEvent(db, kind: "conversation.status", conversationID: conversationID, data: ["status": "open"], now: now)
        try audit(db, actorKind: actorKind, actorID: actorID, action: "conversation.reopened", conversationID: conversationID, now: now)
    }

    static func audit(_ db: Database, actorKind: String, actorID: String?, action: String,
                      conversationID: String? = nil, messageID: String? = nil, sourceAddress: String? = nil, now: Int64) throws {
        try AuditChain.append(db, at: now, actorKind: actorKind, actorID: actorID, action: action,
                              conversationID: conversationID, messageID: messageID, sourceAddress: sourceAddress)
    }
}
