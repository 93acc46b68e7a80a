import Crypto
import CryptoExtras
import Foundation
import GRDB
import SwitchboardCore

/// Passwords as stored: `scrypt$<log2 N>$<r>$<p>$<salt, base64>$<key, base64>`. The
/// parameters travel with the hash, so they can be raised later without breaking old ones.
public enum PasswordHash {
    /// N = 2^15, r = 8, p = 1: 32 MiB and about a tenth of a second per check here.
    static let logN = 15, blockSize = 8, parallelism = 1, keyBytes = 32

    public static func make(_ password: String) throws -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = Identifier.randomBytes(16, using: &generator)
        let key = try derive(password, salt: salt, logN: logN, r: blockSize, p: parallelism)
        return "scrypt$\(logN)$\(blockSize)$\(parallelism)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }

    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$").map(String.init)
        guard parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), (10...20).contains(logN),
              let r = Int(parts[2]), (1...32).contains(r), let p = Int(parts[3]), (1...16).contains(p),
              let salt = Data(base64Encoded: parts[4]), let expected = Data(base64Encoded: parts[5]), !expected.isEmpty,
              let key = try? derive(password, salt: [UInt8](salt), logN: logN, r: r, p: p, bytes: expected.count) else { return false }
        return ConstantTime.equal(key, expected)
    }

    private static func derive(_ password: String, salt: [UInt8], logN: Int, r: Int, p: Int, bytes: Int = keyBytes) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: bytes,
                                          rounds: 1 << logN, blockSize: r, parallelism: p)
        return key.withUnsafeBytes { Array($0) }
    }
}

/// A console sign-in: the agent and the token that unsafe requests must echo in
/// `X-CSRF-Token`.
public struct ConsoleSession: Sendable, Equatable {
    public var agent: Agent
    public var csrfToken: String
}

/// The agent console's sign-in: passwords and sessions.
extension SwitchboardStore {
    /// Sets (or replaces) an agent's console password. Every session of theirs ends.
    public func setPassword(agentEmail email: String, password: String, now: Int64 = Timestamp.now()) async throws -> String {
        let hash = try PasswordHash.make(password)
        return try await write { db in
            guard let id = try String.fetchOne(db, cachedSQL: "SELECT id FROM agents WHERE email = ? AND active = 1", arguments: [email]) else {
                throw StoreError.notFound
            }
            try db.execute(cachedSQL: "UPDATE agents SET password_hash = ? WHERE id = ?", arguments: [hash, id])
            try db.execute(cachedSQL: "DELETE FROM console_sessions WHERE agent_id = ?", arguments: [id])
            try Self.audit(db, actorKind: "admin", actorID: nil, action: "agent.password_set", now: now)
            return id
        }
    }

    /// Checks an agent's email and password. Nil for an unknown or inactive agent, a wrong
    /// password, or an agent without a password — one answer for all, so a caller cannot
    /// tell which. Failed attempts are audited.
    public func verifyPassword(email: String, password: String, sourceAddress: String?, now: Int64 = Timestamp.now()) async throws -> Agent? {
        let row = try await pool.read { db -> (id: String, hash: String?)? in
            try Row.fetchOne(db, cachedSQL: "SELECT id, password_hash FROM agents WHERE email = ? AND active = 1", arguments: [email])
                .map { ($0["id"], $0["password_hash"]) }
        }
        // Unknown agents cost a hash too: the time taken does not tell which emails exist.
        let valid = PasswordHash.verify(password, against: row?.hash ?? Self.decoyHash) && row?.hash != nil
        let agentID = row?.id
        if !valid {
            try await write { db in
                try Self.audit(db, actorKind: "agent", actorID: agentID, action: "console.sign_in_failed", sourceAddress: sourceAddress, now: now)
            }
            return nil
        }
        return try await agentDetail(id: agentID!)?.agent
    }

    private static let decoyHash: String = (try? PasswordHash.make(UUID().uuidString)) ?? ""

    /// Starts a console session; returns the cookie value (shown once) and the session.
    public func createConsoleSession(agent: Agent, sourceAddress: String?, now: Int64 = Timestamp.now()) async throws -> (token: String, session: ConsoleSession) {
        var generator = SystemRandomNumberGenerator()
        let token = "sbs_" + Identifier.base32(Identifier.randomBytes(32, using: &generator))
        let csrf = Identifier.base32(Identifier.randomBytes(20, using: &generator))
        try await write { db in
            try db.execute(cachedSQL: """
                INSERT INTO console_sessions (token_digest, agent_id, csrf_token, created_at, last_seen_at, source_address)
                VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [Self.tokenDigest(token), agent.id, csrf, now, now, sourceAddress])
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "console.signed_in", sourceAddress: sourceAddress, now: now)
        }
        return (token, ConsoleSession(agent: agent, csrfToken: csrf))
    }

    /// The live session for a cookie value, its idle clock restarted (unless `touch` is false:
    /// a request the console made on its own); nil when unknown, idle for longer than
    /// `idleSeconds` (it is deleted), or its agent is inactive.
    public func consoleSession(token: String, idleSeconds: Int64, touch: Bool = true, now: Int64 = Timestamp.now()) async throws -> ConsoleSession? {
        guard token.hasPrefix("sbs_"), token.utf8.count < 128 else { return nil }
        let digest = Self.tokenDigest(token)
        guard let row = try await pool.read({ db -> (agentID: String, csrf: String, lastSeen: Int64)? in
            try Row.fetchOne(db, cachedSQL: """
                SELECT s.agent_id, s.csrf_token, s.last_seen_at FROM console_sessions s JOIN agents a ON a.id = s.agent_id
                WHERE s.token_digest = ? AND a.active = 1
                """, arguments: [digest]).map { ($0["agent_id"], $0["csrf_token"], $0["last_seen_at"]) }
        }) else { return nil }
        let lastSeen = row.lastSeen
        if now - lastSeen > idleSeconds * 1000 {
            try await write { db in
                try db.execute(cachedSQL: "DELETE FROM console_sessions WHERE token_digest = ?", arguments: [digest])
                try Self.audit(db, actorKind: "agent", actorID: row.agentID, action: "console.session_expired", now: now)
            }
            return nil
        }
        // The idle clock moves at most once a minute: not a write per request.
        if touch && now - lastSeen > 60_000 {
            try await write { db in
                try db.execute(cachedSQL: "UPDATE console_sessions SET last_seen_at = ? WHERE token_digest = ?", arguments: [now, digest])
            }
        }
        guard let agent = try await agentDetail(id: row.agentID)?.agent else { return nil }
        return ConsoleSession(agent: agent, csrfToken: row.csrf)
    }

    /// Signs a session out.
    public func endConsoleSession(token: String, now: Int64 = Timestamp.now()) async throws {
        try await write { db in
            let digest = Self.tokenDigest(token)
            if let agentID = try String.fetchOne(db, cachedSQL: "SELECT agent_id FROM console_sessions WHERE token_digest = ?", arguments: [digest]) {
                try db.execute(cachedSQL: "DELETE FROM console_sessions WHERE token_digest = ?", arguments: [digest])
                try Self.audit(db, actorKind: "agent", actorID: agentID, action: "console.signed_out", now: now)
            }
        }
    }
}
