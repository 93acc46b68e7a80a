import Crypto
import Foundation
import GRDB
import SwitchboardCore
import SwitchboardRouting

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
        return try await write { db in
            if try Bool.fetchOne(db, cachedSQL: "SELECT 1 FROM agents WHERE email = ?", arguments: [email]) == true {
                throw StoreError.conflict("an agent with this email exists")
            }
            try db.execute(cachedSQL: "INSERT INTO agents (id, name, email, role, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [agentID, name, email, role.rawValue, now])
            var teams: [String] = []
            if let team = team?.trimmingWhitespace(), !team.isEmpty {
                var teamID = try String.fetchOne(db, cachedSQL: "SELECT id FROM teams WHERE name = ?", arguments: [team])
                if teamID == nil {
                    let id = Identifier.make(prefix: "tem")
                    try db.execute(cachedSQL: "INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)", arguments: [id, team, now])
                    teamID = id
                }
                try db.execute(cachedSQL: "INSERT INTO agent_teams (agent_id, team_id) VALUES (?, ?)", arguments: [agentID, teamID])
                teams = [team]
            }
            try db.execute(cachedSQL: "INSERT INTO api_tokens (agent_id, token_hash, created_at) VALUES (?, ?, ?)",
                           arguments: [agentID, Self.tokenDigest(token), now])
            try Self.audit(db, actorKind: "admin", actorID: nil, action: "agent.created", now: now)
            try Self.signal(db, conversationID: agentID, kind: "agent", now: now)
            return (Agent(id: agentID, name: name, email: email, role: role, teams: teams), token)
        }
    }

    public func listAgents() async throws -> [Agent] {
        try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: """
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
            try Row.fetchOne(db, cachedSQL: """
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

    static func agent(_ row: Row) -> Agent {
        let teams: String? = row["teams"]
        return Agent(id: row["id"], name: row["name"], email: row["email"],
                     role: AgentRole(rawValue: row["role"]) ?? .agent,
                     teams: teams.map { $0.split(separator: ",").map(String.init) } ?? [])
    }
}

/// Teams and agents' routing attributes (administration).
extension SwitchboardStore {
    /// Creates the team, or updates its policy when it exists (by name). `overflow` is
    /// `language`, another team's name, or nil.
    public func upsertTeam(name: String, policy: RoutingPolicy?, autoAccept: Bool?, overflow: String??,
                           now: Int64 = Timestamp.now()) async throws -> TeamSettings {
        let name = name.trimmingWhitespace()
        guard !name.isEmpty, name.count <= 64 else { throw StoreError.invalid("name must be 1 to 64 characters") }
        return try await write { db in
            var id = try String.fetchOne(db, cachedSQL: "SELECT id FROM teams WHERE name = ?", arguments: [name])
            if id == nil {
                let newID = Identifier.make(prefix: "tem")
                try db.execute(cachedSQL: "INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)", arguments: [newID, name, now])
                try Self.audit(db, actorKind: "admin", actorID: nil, action: "team.created", now: now)
                id = newID
            }
            if let policy {
                try db.execute(cachedSQL: "UPDATE teams SET policy = ? WHERE id = ?", arguments: [policy.rawValue, id])
            }
            if let autoAccept {
                try db.execute(cachedSQL: "UPDATE teams SET auto_accept = ? WHERE id = ?", arguments: [autoAccept, id])
            }
            if let overflow {
                var stored: String?
                if let overflow {
                    if overflow == "language" {
                        stored = "language"
                    } else if let other = try String.fetchOne(db, cachedSQL: "SELECT id FROM teams WHERE name = ? OR id = ?", arguments: [overflow, overflow]) {
                        guard other != id else { throw StoreError.invalid("overflow: a team cannot overflow to itself") }
                        stored = "team:\(other)"
                    } else {
                        throw StoreError.invalid("overflow: no team named \(overflow.prefix(64)); use 'language' or an existing team")
                    }
                }
                try db.execute(cachedSQL: "UPDATE teams SET overflow = ? WHERE id = ?", arguments: [stored, id])
            }
            try Self.signal(db, conversationID: id!, kind: "team", now: now)
            return try Row.fetchOne(db, cachedSQL: "SELECT id, name, policy, auto_accept, overflow FROM teams WHERE id = ?", arguments: [id])
                .map(Self.team)!
        }
    }

    public func team(id: String) async throws -> TeamSettings? {
        try await pool.read { db in
            try Row.fetchOne(db, cachedSQL: "SELECT id, name, policy, auto_accept, overflow FROM teams WHERE id = ?", arguments: [id]).map(Self.team)
        }
    }

    public func listTeams() async throws -> [TeamSettings] {
        try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: "SELECT id, name, policy, auto_accept, overflow FROM teams ORDER BY name").map(Self.team)
        }
    }

    /// Changes an agent's routing attributes; nil leaves one as it is. `teams` are names
    /// (created when missing). Returns the agent as stored.
    public func updateAgent(id: String, role: AgentRole? = nil, skills: [String]? = nil, languages: [String]? = nil,
                            capacity: [Channel: Int]? = nil, teams: [String]? = nil,
                            now: Int64 = Timestamp.now()) async throws -> AgentDetail {
        try await write { db in
            guard try Bool.fetchOne(db, cachedSQL: "SELECT 1 FROM agents WHERE id = ? AND active = 1", arguments: [id]) == true else {
                throw StoreError.notFound
            }
            if let role { try db.execute(cachedSQL: "UPDATE agents SET role = ? WHERE id = ?", arguments: [role.rawValue, id]) }
            if let skills {
                let cleaned = Array(Set(skills.map { $0.trimmingWhitespace().lowercased() }.filter { !$0.isEmpty })).sorted()
                try db.execute(cachedSQL: "UPDATE agents SET skills = ? WHERE id = ?", arguments: [Self.jsonText(cleaned), id])
            }
            if let languages {
                let cleaned = Array(Set(languages.map { $0.trimmingWhitespace().lowercased() }.filter { !$0.isEmpty })).sorted()
                try db.execute(cachedSQL: "UPDATE agents SET languages = ? WHERE id = ?", arguments: [Self.jsonText(cleaned), id])
            }
            if let capacity {
                var object: [String: Int] = [:]
                for (channel, value) in capacity {
                    guard (0...1000).contains(value) else { throw StoreError.invalid("capacity.\(channel.rawValue) must be 0 to 1000") }
                    object[channel.rawValue] = value
                }
                try db.execute(cachedSQL: "UPDATE agents SET capacity = ? WHERE id = ?", arguments: [Self.jsonText(object), id])
            }
            if let teams {
                try db.execute(cachedSQL: "DELETE FROM agent_teams WHERE agent_id = ?", arguments: [id])
                for name in Set(teams.map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }) {
                    var teamID = try String.fetchOne(db, cachedSQL: "SELECT id FROM teams WHERE name = ? OR id = ?", arguments: [name, name])
                    if teamID == nil {
                        let newID = Identifier.make(prefix: "tem")
                        try db.execute(cachedSQL: "INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)", arguments: [newID, name, now])
                        teamID = newID
                    }
                    try db.execute(cachedSQL: "INSERT INTO agent_teams (agent_id, team_id) VALUES (?, ?)", arguments: [id, teamID])
                }
            }
            try Self.audit(db, actorKind: "admin", actorID: nil, action: "agent.updated", now: now)
            try Self.signal(db, conversationID: id, kind: "agent", now: now)
            return try Self.agentDetail(db, id: id)!
        }
    }

    /// Deactivates an agent: revokes their tokens; the router then takes back their offers
    /// and conversations. History keeps the agent's id.
    public func deactivateAgent(id: String, now: Int64 = Timestamp.now()) async throws {
        try await write { db in
            try db.execute(cachedSQL: "UPDATE agents SET active = 0, presence = 'offline', presence_changed_at = ? WHERE id = ? AND active = 1",
                           arguments: [now, id])
            guard db.changesCount == 1 else { throw StoreError.notFound }
            try db.execute(cachedSQL: "UPDATE api_tokens SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL", arguments: [now, id])
            try db.execute(cachedSQL: "DELETE FROM console_sessions WHERE agent_id = ?", arguments: [id])
            try Self.audit(db, actorKind: "admin", actorID: nil, action: "agent.deactivated", now: now)
            try Self.signal(db, conversationID: id, kind: "agent", now: now)
        }
    }

    public func agentDetails() async throws -> [AgentDetail] {
        try await pool.read { db in
            try String.fetchAll(db, cachedSQL: "SELECT id FROM agents WHERE active = 1 ORDER BY created_at, id").compactMap {
                try Self.agentDetail(db, id: $0)
            }
        }
    }

    public func agentDetail(id: String) async throws -> AgentDetail? {
        try await pool.read { db in try Self.agentDetail(db, id: id) }
    }

    static func agentDetail(_ db: Database, id: String) throws -> AgentDetail? {
        guard let row = try Row.fetchOne(db, cachedSQL: """
            SELECT a.id, a.name, a.email, a.role, a.skills, a.languages, a.capacity, a.presence, a.presence_changed_at,
                   (SELECT group_concat(t.name, ',') FROM agent_teams at JOIN teams t ON t.id = at.team_id WHERE at.agent_id = a.id) AS teams,
                   (SELECT group_concat(at.team_id, ',') FROM agent_teams at WHERE at.agent_id = a.id) AS team_ids
            FROM agents a WHERE a.id = ? AND a.active = 1
            """, arguments: [id]) else { return nil }
        return AgentDetail(agent: agent(row), profile: agentProfile(row), presenceChangedAt: row["presence_changed_at"])
    }
}

public struct AgentDetail: Sendable, Equatable {
    public var agent: Agent
    /// Routing attributes; `teams` holds team ids.
    public var profile: AgentProfile
    public var presenceChangedAt: Int64?
}
