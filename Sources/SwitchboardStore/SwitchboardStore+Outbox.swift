import Foundation
import GRDB
import SwitchboardCore

/// The outbox: the queue of outbound messages and its states (pending → delivered, or
/// pending → dead). Only the oldest pending item of each conversation is ever due, which is
/// what keeps replies in order per conversation; a dead item no longer blocks the ones after
/// it (the agent sees it failed and can write again).
extension SwitchboardStore {
    /// Items whose time has come, at most one per conversation, oldest first, skipping the
    /// conversations in `excluding` (those with a delivery in flight).
    public func dueOutboxItems(channels: [Channel], now: Int64, limit: Int, excluding: Set<String>) async throws -> [OutboxItem] {
        guard !channels.isEmpty, limit > 0 else { return [] }
        let channelList = channels.map { "'\($0.rawValue)'" }.joined(separator: ",")
        // Rows become OutboxItems inside the read: `Row` is not Sendable, and a closure
        // returning one would bind to GRDB's blocking read instead of the async one.
        let items = try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: """
                SELECT o.id, o.message_id, o.conversation_id, o.channel, o.attempts, o.created_at,
                       m.body_text, m.sent_at, m.sender_kind, c.external_thread_id, o.purpose, c.gateway, c.local_address, c.remote_address,
                       (SELECT state = 'opted_out' FROM sms_consent s WHERE s.phone = c.remote_address) AS opted_out,
                       (SELECT value FROM contact_identities i WHERE i.contact_id = c.contact_id AND i.kind = 'portal'
                        ORDER BY i.id LIMIT 1) AS portal_id
                FROM outbox o
                JOIN messages m ON m.id = o.message_id
                JOIN conversations c ON c.id = o.conversation_id
                WHERE o.state = 'pending' AND o.channel IN (\(channelList)) AND o.next_attempt_at <= ?
                  AND o.id = (SELECT min(p.id) FROM outbox p WHERE p.conversation_id = o.conversation_id AND p.state = 'pending')
                ORDER BY o.next_attempt_at, o.id
                LIMIT ?
                """, arguments: [now, limit + excluding.count]).map { row in
            OutboxItem(id: row["id"], messageID: row["message_id"], conversationID: row["conversation_id"],
                       channel: Channel(rawValue: row["channel"]) ?? .portal, attempts: row["attempts"],
                       createdAt: row["created_at"], text: row["body_text"], sentAt: row["sent_at"],
                       contactPortalID: row["portal_id"], threadID: row["external_thread_id"],
                       gateway: (row["gateway"] as String?).flatMap(SMSGateway.init(rawValue:)),
                       localAddress: row["local_address"], remoteAddress: row["remote_address"],
                       purpose: OutboxPurpose(rawValue: row["purpose"]) ?? .reply,
                       recipientOptedOut: (row["opted_out"] as Bool?) ?? false,
                       automatic: (row["sender_kind"] as String) != "agent")
            }
        }
        return Array(items.filter { !excluding.contains($0.conversationID) }.prefix(limit))
    }

    /// The earliest time any pending item of these channels is due, if there is one.
    public func nextOutboxAttempt(channels: [Channel]) async throws -> Int64? {
        guard !channels.isEmpty else { return nil }
        let channelList = channels.map { "'\($0.rawValue)'" }.joined(separator: ",")
        return try await pool.read { db in
            try Int64.fetchOne(db, cachedSQL: "SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending' AND channel IN (\(channelList))")
        }
    }

    /// The gateway took the message. `status` is `delivered` for a final destination (the
    /// portal) and `sent` for a gateway whose delivery reports come later; `externalID`
    /// (`SMSGateway.externalID`) is how those reports will name it.
    public func markOutboxDelivered(_ item: OutboxItem, status: DeliveryStatus = .delivered, externalID: String? = nil,
                                    now: Int64 = Timestamp.now()) async throws {
        try await write { db in
            try db.execute(cachedSQL: """
                UPDATE outbox SET state = 'delivered', attempts = attempts + 1, finished_at = ?, last_error = NULL
                WHERE id = ? AND state = 'pending'
                """, arguments: [now, item.id])
            // A delivery report may have overtaken this bookkeeping: never move a status back.
            try db.execute(cachedSQL: """
                UPDATE messages SET delivery_status = ?, delivery_updated_at = ?, failure_reason = NULL,
                    external_id = COALESCE(?, external_id)
                WHERE id = ? AND delivery_status IN ('queued', ?)
                """, arguments: [status.rawValue, now, externalID, item.messageID, status.rawValue])
            if db.changesCount == 1 {
                try Self.messageStatusEvent(db, messageID: item.messageID, conversationID: item.conversationID, status: status, now: now)
            }
        }
    }

    /// Records a failed attempt and when to try again. `reason` is an operator-facing
    /// summary (a status code, "timeout"), never a response body.
    public func scheduleOutboxRetry(_ item: OutboxItem, at nextAttempt: Int64, reason: String) async throws {
        try await write { db in
            try db.execute(cachedSQL: """
                UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ? AND state = 'pending'
                """, arguments: [nextAttempt, reason, item.id])
        }
    }

    /// Gives up on an item: the message is marked failed with the reason the agent sees.
    public func deadLetterOutbox(_ item: OutboxItem, reason: String, countsAsAttempt: Bool = true,
                                 now: Int64 = Timestamp.now()) async throws {
        try await write { db in
            try db.execute(cachedSQL: """
                UPDATE outbox SET state = 'dead', attempts = attempts + ?, finished_at = ?, last_error = ? WHERE id = ? AND state = 'pending'
                """, arguments: [countsAsAttempt ? 1 : 0, now, reason, item.id])
            try db.execute(cachedSQL: "UPDATE messages SET delivery_status = 'failed', delivery_updated_at = ?, failure_reason = ? WHERE id = ?",
                           arguments: [now, reason, item.messageID])
            try Self.audit(db, actorKind: "system", actorID: nil, action: "message.dead_lettered",
                           conversationID: item.conversationID, messageID: item.messageID, now: now)
            try Self.messageStatusEvent(db, messageID: item.messageID, conversationID: item.conversationID, status: .failed, now: now)
        }
    }

    public func outboxStats(now: Int64 = Timestamp.now()) async throws -> OutboxStats {
        try await pool.read { db in
            let row = try Row.fetchOne(db, cachedSQL: """
                SELECT (SELECT count(*) FROM outbox WHERE state = 'pending') AS pending,
                       (SELECT count(*) FROM outbox WHERE state = 'dead' AND discarded_at IS NULL) AS dead,
                       (SELECT min(created_at) FROM outbox WHERE state = 'pending') AS oldest
                """)
            let oldest: Int64? = row?["oldest"]
            return OutboxStats(pending: row?["pending"] ?? 0, dead: row?["dead"] ?? 0,
                               oldestPendingAgeMilliseconds: oldest.map { max(0, now - $0) } ?? 0)
        }
    }
}

extension SwitchboardStore {
    /// Rows in one of the store's tables (diagnostics and tests). `table` must be a literal
    /// table name, never input.
    func count(_ table: StaticString) async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, cachedSQL: "SELECT count(*) FROM \(table)") ?? 0 }
    }
}
