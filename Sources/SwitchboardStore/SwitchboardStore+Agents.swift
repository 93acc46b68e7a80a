import Crypto
import Foundation
import GRDB
import SwitchboardCore

extension SwitchboardStore {
    /// The prefix every API token starts with, so that a leaked token is recognisable.
    public static let tokenPrefix = "sbt_"

    /// Creates an agent (and the team, if it does not exist yet) with one API token.
    /// Returns the agent and the token in clear — the only time it exists outside the
    /// caller's hands; only its SHA-256 digest is stored.
    public func createAgent(name: String, email: String, role: AgentRole, team: String?,
                            now: Int64 = Timestamp.now()) async throws -> (agent: Agent, token: String) {
        let name = name.trimmingWhitespace()
        let email = email.trimmingWhitespace()
        guard !name.isEmpty else { throw StoreError.invalid("name must not be empty") }
        guard email.contains("@"), !email.hasPrefix("@"), !email.hasSuffix("@") else {
            throw StoreError.invalid("email is not an email address")
        }
        var generator = SystemRandomNumberGenerator()
        let token = Self.tokenPrefix + Identifier.base32(Identifier.randomBytes(32, using: &generator))
        let agentID = Identifier.make(prefix: "agt")
        return try await pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM agents WHERE email = ?", arguments: [email]) == true {
                throw StoreError.conflict("an agent with this email exists")
            }
            try db.execute(sql: "INSERT INTO agents (id, name, email, role, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [agentID, name, email, role.rawValue, now])
            var teams: [String] = []
            if let team = team?.trimmingWhitespace(), !team.isEmpty {
                var teamID = try String.fetchOne(db, sql: "SELECT id FROM teams WHERE name = ?", arguments: [team])
                if teamID == nil {
                    let id = Identifier.make(prefix: "tem")
                    try db.execute(sql: "INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)", arguments: [id, team, now])
                    teamID = id
                }
                try db.execute(sql: "INSERT INTO agent_teams (agent_id, team_id) VALUES (?, ?)", arguments: [agentID, teamID])
                teams = [team]
            }
            try db.execute(sql: "INSERT INTO api_tokens (agent_id, token_hash, created_at) VALUES (?, ?, ?)",
                           arguments: [agentID, Self.tokenDigest(token), now])
            try Self.audit(db, actorKind: "admin", actorID: nil, action: "agent.created", now: now)
            return (Agent(id: agentID, name: name, email: email, role: role, teams: teams), token)
        }
    }

    public func listAgents() async throws -> [Agent] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT a.id, a.name, a.email, a.role,
                       (SELECT group_concat(t.name, ',') FROM agent_teams at JOIN teams t ON t.id = at.team_id WHERE at.agent_id = a.id) AS teams
                FROM agents a WHERE a.active = 1 ORDER BY a.created_at, a.id
                """).map(Self.agent)
        }
    }

    /// The active agent holding this token, or nil. Only the digest is looked up.
    public func agent(forToken token: String) async throws -> Agent? {
        guard token.hasPrefix(Self.tokenPrefix), token.utf8.count < 256 else { return nil }
        let digest = Self.tokenDigest(token)
        return try await pool.read { db in
            try Row.fetchOne(db, sql: """
                SELECT a.id, a.name, a.email, a.role,
                       (SELECT group_concat(t.name, ',') FROM agent_teams at JOIN teams t ON t.id = at.team_id WHERE at.agent_id = a.id) AS teams
                FROM api_tokens k JOIN agents a ON a.id = k.agent_id
                WHERE k.token_hash = ? AND k.revoked_at IS NULL AND a.active = 1
                """, arguments: [digest]).map(Self.agent)
        }
    }

    static func tokenDigest(_ token: String) -> Data {
        Data(SHA256.hash(data: Array(token.utf8)))
    }

    private static func agent(_ row: Row) -> Agent {
        let teams: String? = row["teams"]
        return Agent(id: row["id"], name: row["name"], email: row["email"],
                     role: AgentRole(rawValue: row["role"]) ?? .agent,
                     teams: teams.map { $0.split(separator: ",").map(String.init) } ?? [])
    }
}
