import Foundation
import GRDB
import SwitchboardCore

/// What the command line does for operators: dead letters (list, retry, discard) and
/// retention (purge). Each change is audited as the operator's.
extension SwitchboardStore {
    /// Outbox items in `state` (`dead` by default: the dead letters not discarded), newest first.
    public func outboxEntries(state: String = "dead", limit: Int = 100) async throws -> [OutboxEntry] {
        try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: """
                SELECT id, message_id, conversation_id, channel, state, attempts, last_error, created_at, next_attempt_at, finished_at
                FROM outbox WHERE state = ? AND discarded_at IS NULL ORDER BY id DESC LIMIT ?
                """, arguments: [state, limit]).map {
                OutboxEntry(id: $0["id"], messageID: $0["message_id"], conversationID: $0["conversation_id"], channel: $0["channel"],
                            state: $0["state"], attempts: $0["attempts"], lastError: $0["last_error"], createdAt: $0["created_at"],
                            nextAttemptAt: $0["next_attempt_at"], finishedAt: $0["finished_at"])
            }
        }
    }

    /// Puts a dead letter back in line: delivered again (in order with its conversation's
    /// other pending items), with a fresh `outbox.horizon_seconds`; the agent sees `queued` again.
    public func retryOutbox(id: Int64, operator who: String, now: Int64 = Timestamp.now()) async throws {
        try await write { db in
            guard let row = try Row.fetchOne(db, cachedSQL: "SELECT message_id, conversation_id FROM outbox WHERE id = ? AND state = 'dead' AND discarded_at IS NULL",
                                             arguments: [id]) else {
                throw StoreError.invalid("outbox item \(id) is not a dead letter")
            }
            if try Bool.fetchOne(db, cachedSQL: "SELECT purged_at IS NOT NULL FROM messages WHERE id = ?", arguments: [row["message_id"] as String]) == true {
                throw StoreError.invalid("outbox item \(id): its text was purged by retention; it cannot be sent again")
            }
            try db.execute(cachedSQL: """
                UPDATE outbox SET state = 'pending', finished_at = NULL, next_attempt_at = ?, last_error = NULL, created_at = ?
                WHERE id = ?
                """, arguments: [now, now, id])
            try db.execute(cachedSQL: "UPDATE messages SET delivery_status = 'queued', delivery_updated_at = ?, failure_reason = NULL WHERE id = ?",
                           arguments: [now, row["message_id"] as String])
            try Self.audit(db, actorKind: "admin", actorID: who, action: "outbox.retried", conversationID: row["conversation_id"],
                           messageID: row["message_id"], now: now)
            try Self.messageStatusEvent(db, messageID: row["message_id"], conversationID: row["conversation_id"], status: .queued, now: now)
        }
    }

    /// Takes a dead letter off the list for good (the row and the failed message stay).
    public func discardOutbox(id: Int64, operator who: String, now: Int64 = Timestamp.now()) async throws {
        try await write { db in
            guard let row = try Row.fetchOne(db, cachedSQL: "SELECT message_id, conversation_id FROM outbox WHERE id = ? AND state = 'dead' AND discarded_at IS NULL",
                                             arguments: [id]) else {
                throw StoreError.invalid("outbox item \(id) is not a dead letter")
            }
            try db.execute(cachedSQL: "UPDATE outbox SET discarded_at = ? WHERE id = ?", arguments: [now, id])
            try Self.audit(db, actorKind: "admin", actorID: who, action: "outbox.discarded", conversationID: row["conversation_id"],
                           messageID: row["message_id"], now: now)
        }
    }

    /// Retention: removes the text of messages older than `cutoff` in conversations quiet
    /// since then, their raw inbound deliveries and attachment references. Kept: ids, times,
    /// directions, delivery states, triage labels, the audit log — and anything still waiting
    /// in the outbox or as an undiscarded dead letter (it may still be retried). Contact
    /// details (names, phone numbers, addresses) stay with the contact. `dryRun` counts
    /// without changing anything. One transaction: run it off-peak on a large store.
    public func purge(olderThan cutoff: Int64, operator who: String, dryRun: Bool, now: Int64 = Timestamp.now()) async throws -> PurgeResult {
        try await write { db in
            let eligible = """
                FROM messages m JOIN conversations c ON c.id = m.conversation_id
                WHERE m.created_at < ? AND c.last_message_at < ? AND m.purged_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id
                                  AND (o.state = 'pending' OR (o.state = 'dead' AND o.discarded_at IS NULL)))
                """
            let ids = try String.fetchAll(db, cachedSQL: "SELECT m.id \(eligible)", arguments: [cutoff, cutoff])
            let attachments = try Int.fetchOne(db, cachedSQL: "SELECT count(*) FROM attachments WHERE message_id IN (SELECT m.id \(eligible))",
                                               arguments: [cutoff, cutoff]) ?? 0
            let journal = try Int.fetchOne(db, cachedSQL: "SELECT count(*) FROM inbound_journal WHERE message_id IN (SELECT m.id \(eligible)) AND length(raw) > 0",
                                           arguments: [cutoff, cutoff]) ?? 0
            // Quarantined mail (bounces for nothing we sent) is a raw delivery too, and so is a
            // queued delivery that could not be stored (marked failed; one still waiting is
            // work to do and is never purged): counted with the journal.
            let quarantined = try Int.fetchOne(db, cachedSQL: "SELECT count(*) FROM mail_quarantine WHERE received_at < ?",
                                               arguments: [cutoff]) ?? 0
            let failedQueued = try Int.fetchOne(db, cachedSQL: "SELECT count(*) FROM inbound_queue WHERE failed_at IS NOT NULL AND received_at < ?",
                                                arguments: [cutoff]) ?? 0
            let result = PurgeResult(messages: ids.count, attachments: attachments, journalEntries: journal + quarantined + failedQueued,
                                     dryRun: dryRun)
            guard !dryRun else { return result }
            try db.execute(cachedSQL: "DELETE FROM mail_quarantine WHERE received_at < ?", arguments: [cutoff])
            try db.execute(cachedSQL: "DELETE FROM inbound_queue WHERE failed_at IS NOT NULL AND received_at < ?", arguments: [cutoff])
            guard !ids.isEmpty else {
                if quarantined + failedQueued > 0 { try Self.audit(db, actorKind: "admin", actorID: who, action: "retention.purged", now: now) }
                return result
            }
            try db.execute(cachedSQL: "CREATE TEMP TABLE purge_ids (id TEXT PRIMARY KEY) WITHOUT ROWID")
            defer { try? db.execute(cachedSQL: "DROP TABLE temp.purge_ids") }
            for id in ids { try db.execute(cachedSQL: "INSERT INTO purge_ids (id) VALUES (?)", arguments: [id]) }
            try db.execute(cachedSQL: """
                UPDATE messages SET body_text = '', body_html = NULL, triage_evidence = NULL, failure_reason = NULL, purged_at = ?
                WHERE id IN (SELECT id FROM purge_ids)
                """, arguments: [now])
            try db.execute(cachedSQL: "UPDATE inbound_journal SET raw = zeroblob(0) WHERE message_id IN (SELECT id FROM purge_ids)")
            // A mail's subject, addresses and quoted history are its content too. The
            // Message-ID stays: threading and dedupe of a late copy need it.
            try db.execute(cachedSQL: """
                UPDATE email_messages SET subject = NULL, from_address = NULL, to_address = NULL, quoted_text = NULL
                WHERE message_id IN (SELECT id FROM purge_ids)
                """)
            try db.execute(cachedSQL: "DELETE FROM attachments WHERE message_id IN (SELECT id FROM purge_ids)")
            try Self.audit(db, actorKind: "admin", actorID: who, action: "retention.purged", now: now)
            return result
        }
    }
}

public struct OutboxEntry: Sendable, Equatable {
    public var id: Int64
    public var messageID: String
    public var conversationID: String
    public var channel: String
    public var state: String
    public var attempts: Int
    public var lastError: String?
    public var createdAt: Int64
    public var nextAttemptAt: Int64
    public var finishedAt: Int64?
}

public struct PurgeResult: Sendable, Equatable {
    public var messages: Int
    public var attachments: Int
    public var journalEntries: Int
    public var dryRun: Bool
}
