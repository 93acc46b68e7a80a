import Crypto
import Foundation
import GRDB

/// The audit log is hash-chained: each row stores `hash = SHA-256(previous row's hash ‖
/// canonical form of this row)`, the first row chaining from 32 zero bytes. Changing or
/// deleting any row breaks every later link, which `verify` reports with the first row that
/// no longer fits. (Cutting rows off the end leaves a shorter valid chain: compare the head
/// that `verify` prints, and that the daemon logs hourly, with one kept elsewhere.)
///
/// The canonical form is frozen ("v1"): length-prefixed fields, so that no two different
/// rows share one. Never change it; add a "v2" instead.
enum AuditChain {
    static let genesis = Data(repeating: 0, count: 32)

    struct Fields {
        var id: Int64
        var at: Int64
        var actorKind: String
        var actorID: String?
        var action: String
        var conversationID: String?
        var messageID: String?
        var sourceAddress: String?
    }

    static func canonical(_ fields: Fields) -> Data {
        var text = "v1"
        for value in [String(fields.id), String(fields.at), fields.actorKind, fields.actorID, fields.action,
                      fields.conversationID, fields.messageID, fields.sourceAddress] as [String?] {
            if let value {
                text += "|\(value.utf8.count):\(value)"
            } else {
                text += "|-"
            }
        }
        return Data(text.utf8)
    }

    static func hash(previous: Data, _ fields: Fields) -> Data {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: canonical(fields))
        return Data(hasher.finalize())
    }

    static func fields(_ row: Row) -> Fields {
        Fields(id: row["id"], at: row["at"], actorKind: row["actor_kind"], actorID: row["actor_id"], action: row["action"],
               conversationID: row["conversation_id"], messageID: row["message_id"], sourceAddress: row["source_address"])
    }

    /// Appends one row to the chain (inside the caller's write transaction: the writer is
    /// serialised, so the chain is one line).
    static func append(_ db: Database, at: Int64, actorKind: String, actorID: String?, action: String,
                       conversationID: String?, messageID: String?, sourceAddress: String?) throws {
        // The next id is known before the insert (write transactions are IMMEDIATE), so the
        // row goes in complete: audit rows are never updated (a trigger refuses it).
        let last = try Row.fetchOne(db, sql: "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
        let previous: Data = last?["hash"] ?? genesis
        let id = ((last?["id"] as Int64?) ?? 0) + 1
        let fields = Fields(id: id, at: at, actorKind: actorKind, actorID: actorID, action: action,
                            conversationID: conversationID, messageID: messageID, sourceAddress: sourceAddress)
        try db.execute(sql: """
            INSERT INTO audit_events (id, at, actor_kind, actor_id, action, conversation_id, message_id, source_address, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [id, at, actorKind, actorID, action, conversationID, messageID, sourceAddress, previous,
                             hash(previous: previous, fields)])
    }

    /// Chains every row in id order (the migration that introduced the chain).
    static func rechainAll(_ db: Database) throws {
        var previous = genesis
        let rows = try Row.fetchAll(db, sql: """
            SELECT id, at, actor_kind, actor_id, action, conversation_id, message_id, source_address FROM audit_events ORDER BY id
            """)
        for row in rows {
            let digest = hash(previous: previous, fields(row))
            try db.execute(sql: "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?", arguments: [previous, digest, row["id"] as Int64])
            previous = digest
        }
    }
}

/// What `audit verify` found.
public struct AuditVerification: Sendable, Equatable {
    public var rows: Int
    /// The newest row's id and hash (hex): record it elsewhere to detect a cut tail later.
    public var headID: Int64?
    public var headHash: String?
    /// The first row that does not fit the chain, and why.
    public var brokenAt: Int64?
    public var problem: String?
    public var ok: Bool { brokenAt == nil }
}

/// One audit row for export. Never message text: ids, actions, times, source addresses.
public struct AuditRecord: Sendable, Equatable {
    public var id: Int64
    public var at: Int64
    public var actorKind: String
    public var actorID: String?
    public var action: String
    public var conversationID: String?
    public var messageID: String?
    public var sourceAddress: String?
    public var hash: String
}

extension SwitchboardStore {
    /// Walks the whole chain in id order.
    public func verifyAudit() async throws -> AuditVerification {
        try await pool.read { db in
            var previous = AuditChain.genesis
            var count = 0
            var last: (Int64, Data)?
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT id, at, actor_kind, actor_id, action, conversation_id, message_id, source_address, prev_hash, hash
                FROM audit_events ORDER BY id
                """)
            while let row = try cursor.next() {
                let id: Int64 = row["id"]
                let storedPrevious: Data? = row["prev_hash"]
                let stored: Data? = row["hash"]
                count += 1
                guard storedPrevious == previous else {
                    return AuditVerification(rows: count, headID: last?.0, headHash: last?.1.hexString, brokenAt: id,
                                             problem: "the link to the previous row is broken (a row before it was changed or deleted)")
                }
                let expected = AuditChain.hash(previous: previous, AuditChain.fields(row))
                guard stored == expected else {
                    return AuditVerification(rows: count, headID: last?.0, headHash: last?.1.hexString, brokenAt: id,
                                             problem: "the row does not match its hash (it was changed)")
                }
                previous = expected
                last = (id, expected)
            }
            return AuditVerification(rows: count, headID: last?.0, headHash: last?.1.hexString, brokenAt: nil, problem: nil)
        }
    }

    /// The newest audit row's id and hash (hex), for the hourly log line.
    public func auditHead() async throws -> (id: Int64, hash: String)? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").map {
                ($0["id"], (($0["hash"] as Data?) ?? Data()).hexString)
            }
        }
    }

    /// Audit rows with id > `after`, oldest first (`limit` at a time, for streaming export).
    public func auditRecords(after: Int64, since: Int64? = nil, limit: Int = 1000) async throws -> [AuditRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, at, actor_kind, actor_id, action, conversation_id, message_id, source_address, hash
                FROM audit_events WHERE id > ? AND at >= ? ORDER BY id LIMIT ?
                """, arguments: [after, since ?? 0, limit]).map {
                AuditRecord(id: $0["id"], at: $0["at"], actorKind: $0["actor_kind"], actorID: $0["actor_id"], action: $0["action"],
                            conversationID: $0["conversation_id"], messageID: $0["message_id"], sourceAddress: $0["source_address"],
                            hash: (($0["hash"] as Data?) ?? Data()).hexString)
            }
        }
    }
}

extension Data {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}
