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
///
/// A chain alone can be recomputed by whoever can write the database. With
/// `audit.chain_key` (a secret kept outside the database, e.g. a systemd credential) each
/// row also stores `mac = HMAC-SHA256(key, hash)`, which nobody without the key can forge:
/// verifying with the key detects a rewritten chain too. The MAC comes from a SQL function
/// each connection registers with its store's key, so the static `append` needs no key.
enum AuditChain {
    static let genesis = Data(repeating: 0, count: 32)
    static let macFunctionName = "switchboard_audit_mac"

    static func macFunction(key: [UInt8]?) -> DatabaseFunction {
        let symmetric = key.map { SymmetricKey(data: $0) }
        return DatabaseFunction(macFunctionName, argumentCount: 1, pure: true) { values in
            guard let symmetric, let hash = Data.fromDatabaseValue(values[0]) else { return nil }
            return mac(hash, key: symmetric)
        }
    }

    static func mac(_ hash: Data, key: SymmetricKey) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: hash, using: key))
    }

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
        let last = try Row.fetchOne(db, cachedSQL: "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
        let previous: Data = last?["hash"] ?? genesis
        let id = ((last?["id"] as Int64?) ?? 0) + 1
        let fields = Fields(id: id, at: at, actorKind: actorKind, actorID: actorID, action: action,
                            conversationID: conversationID, messageID: messageID, sourceAddress: sourceAddress)
        let digest = hash(previous: previous, fields)
        try db.execute(cachedSQL: """
            INSERT INTO audit_events (id, at, actor_kind, actor_id, action, conversation_id, message_id, source_address, prev_hash, hash, mac)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \(macFunctionName)(?))
            """, arguments: [id, at, actorKind, actorID, action, conversationID, messageID, sourceAddress, previous, digest, digest])
    }

    /// Chains every row in id order (the migration that introduced the chain).
    static func rechainAll(_ db: Database) throws {
        var previous = genesis
        let rows = try Row.fetchAll(db, cachedSQL: """
            SELECT id, at, actor_kind, actor_id, action, conversation_id, message_id, source_address FROM audit_events ORDER BY id
            """)
        for row in rows {
            let digest = hash(previous: previous, fields(row))
            try db.execute(cachedSQL: "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?", arguments: [previous, digest, row["id"] as Int64])
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
    /// Whether MACs were checked (a key was given), the first row carrying one, and how
    /// many do.
    public var macsChecked = false
    public var keyedFrom: Int64?
    public var keyedRows = 0
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
    /// Walks the whole chain in id order; with `key`, checks each row's MAC too, and that no
    /// row after the first keyed one lacks its MAC (stripping MACs is tampering as well).
    public func verifyAudit(key: [UInt8]? = nil) async throws -> AuditVerification {
        let symmetric = key.map { SymmetricKey(data: $0) }
        return try await pool.read { db in
            var previous = AuditChain.genesis
            var result = AuditVerification(rows: 0, macsChecked: symmetric != nil)
            var last: (Int64, Data)?
            func broken(_ id: Int64, _ problem: String) -> AuditVerification {
                var broken = result
                broken.headID = last?.0
                broken.headHash = last?.1.hexString
                broken.brokenAt = id
                broken.problem = problem
                return broken
            }
            let cursor = try Row.fetchCursor(db, sql: """
                SELECT id, at, actor_kind, actor_id, action, conversation_id, message_id, source_address, prev_hash, hash, mac
                FROM audit_events ORDER BY id
                """)
            while let row = try cursor.next() {
                let id: Int64 = row["id"]
                let storedPrevious: Data? = row["prev_hash"]
                let stored: Data? = row["hash"]
                let mac: Data? = row["mac"]
                result.rows += 1
                guard storedPrevious == previous else {
                    return broken(id, "the link to the previous row is broken (a row before it was changed or deleted)")
                }
                let expected = AuditChain.hash(previous: previous, AuditChain.fields(row))
                guard stored == expected else { return broken(id, "the row does not match its hash (it was changed)") }
                if let mac {
                    result.keyedRows += 1
                    if result.keyedFrom == nil { result.keyedFrom = id }
                    if let symmetric, mac != AuditChain.mac(expected, key: symmetric) {
                        return broken(id, "the row's MAC does not match (the chain was rewritten, or audit.chain_key is not the key it was written with)")
                    }
                } else if symmetric != nil, result.keyedFrom != nil {
                    return broken(id, "the row has no MAC although earlier rows do (written without the key, or its MAC was removed)")
                }
                previous = expected
                last = (id, expected)
            }
            result.headID = last?.0
            result.headHash = last?.1.hexString
            return result
        }
    }

    /// The newest audit row's id and hash (hex), for the hourly log line.
    public func auditHead() async throws -> (id: Int64, hash: String)? {
        try await pool.read { db in
            try Row.fetchOne(db, cachedSQL: "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").map {
                ($0["id"], (($0["hash"] as Data?) ?? Data()).hexString)
            }
        }
    }

    /// Audit rows with id > `after`, oldest first (`limit` at a time, for streaming export).
    public func auditRecords(after: Int64, since: Int64? = nil, limit: Int = 1000) async throws -> [AuditRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: """
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
