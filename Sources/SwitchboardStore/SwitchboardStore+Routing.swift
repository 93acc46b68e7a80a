import Foundation
import GRDB
import SwitchboardCore
import SwitchboardRouting

/// What the router reads and writes. The engine (SwitchboardRouting) decides; the store
/// makes its decisions true — offers, assignments, presence, priorities, the routing log
/// and the events agents follow — each batch in one transaction, and guarded: an effect
/// that no longer fits the stored conversation (resolved meanwhile, assigned by a claim)
/// changes nothing, and the signal the change left makes the router catch up.
extension SwitchboardStore {
    // MARK: Signals

    /// A routing signal: "this conversation changed, look again" (or, with kind `agent` or
    /// `team`, "this agent / team changed": the column then holds that id). Written in the same
    /// transaction as the change, so the router cannot miss one.
    static func signal(_ db: Database, conversationID: String, kind: String, now: Int64) throws {
        try db.execute(cachedSQL: "INSERT INTO routing_signals (conversation_id, kind, at) VALUES (?, ?, ?)",
                       arguments: [conversationID, kind, now])
    }

    /// Signals after `cursor`, oldest first.
    public func routingSignals(after cursor: Int64, limit: Int) async throws -> [RoutingSignal] {
        try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: "SELECT id, conversation_id, kind FROM routing_signals WHERE id > ? ORDER BY id LIMIT ?",
                             arguments: [cursor, limit]).map {
                RoutingSignal(id: $0["id"], conversationID: $0["conversation_id"], kind: $0["kind"])
            }
        }
    }

    /// Forgets consumed signals (the router rebuilds from conversations at start).
    public func pruneRoutingSignals(through cursor: Int64) async throws {
        try await write { db in
            try db.execute(cachedSQL: "DELETE FROM routing_signals WHERE id <= ?", arguments: [cursor])
        }
    }

    // MARK: Loading

    /// Everything the router needs at start: teams, agents and open conversations. The
    /// returned signal cursor is where tailing continues.
    public func loadRouting(triageGates: Bool) async throws -> RoutingSnapshot {
        try await pool.read { db in
            let cursor = try Int64.fetchOne(db, cachedSQL: "SELECT COALESCE(MAX(id), 0) FROM routing_signals") ?? 0
            let teams = try Row.fetchAll(db, cachedSQL: "SELECT id, name, policy, auto_accept, overflow FROM teams ORDER BY id").map(Self.team)
            let agents = try Row.fetchAll(db, cachedSQL: "\(Self.agentProfileSelect) WHERE a.active = 1 ORDER BY a.id").map(Self.agentProfile)
            let conversations = try Row.fetchAll(db, cachedSQL: "\(Self.routableSelect) WHERE c.status <> 'resolved' ORDER BY c.created_at, c.id")
                .map { Self.routable($0, triageGates: triageGates) }
            return RoutingSnapshot(signalCursor: cursor, teams: teams, agents: agents, conversations: conversations)
        }
    }

    public func routableConversation(id: String, triageGates: Bool) async throws -> RoutableRow? {
        try await pool.read { db in
            try Row.fetchOne(db, cachedSQL: "\(Self.routableSelect) WHERE c.id = ?", arguments: [id]).map { Self.routable($0, triageGates: triageGates) }
        }
    }

    public func agentProfile(id: String) async throws -> AgentProfile? {
        try await pool.read { db in
            try Row.fetchOne(db, cachedSQL: "\(Self.agentProfileSelect) WHERE a.id = ? AND a.active = 1", arguments: [id]).map(Self.agentProfile)
        }
    }

    private static let agentProfileSelect = """
        SELECT a.id, a.role, a.skills, a.languages, a.capacity, a.presence,
               (SELECT group_concat(at.team_id, ',') FROM agent_teams at WHERE at.agent_id = a.id) AS team_ids
        FROM agents a
        """

    private static let routableSelect = """
        SELECT c.id, c.channel, c.priority, c.required_skills, c.language, c.team_id, c.contact_id, c.created_at, c.status,
               c.assignee_id, c.waiting_since, c.first_response_at, c.first_response_due_at, c.first_response_breached_at,
               c.overflow_open,
               (SELECT o.agent_id FROM offers o WHERE o.conversation_id = c.id AND o.state = 'pending') AS offer_agent,
               (SELECT o.expires_at FROM offers o WHERE o.conversation_id = c.id AND o.state = 'pending') AS offer_expires,
               EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.direction = 'inbound' AND m.triaged_at IS NULL) AS untriaged,
               (SELECT p.assignee_id FROM conversations p WHERE p.contact_id = c.contact_id AND p.id <> c.id AND p.assignee_id IS NOT NULL
                ORDER BY p.last_message_at DESC LIMIT 1) AS previous_agent,
               (SELECT p.last_message_at FROM conversations p WHERE p.contact_id = c.contact_id AND p.id <> c.id AND p.assignee_id IS NOT NULL
                ORDER BY p.last_message_at DESC LIMIT 1) AS previous_agent_at
        FROM conversations c
        """

    static func jsonStrings(_ text: String?) -> [String] {
        guard let text, let value = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String] else { return [] }
        return value
    }

    static func jsonText(_ value: Any) -> String {
        if let object = value as? [String: Any], let text = flatObjectText(object) { return text }
        return (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// An object whose values are all strings, integers or booleans (every event's data on
    /// the message path), written directly with sorted keys: JSONSerialization cost 7% of the
    /// daemon's CPU under the ingest benchmark. Nil for anything else.
    private static func flatObjectText(_ object: [String: Any]) -> String? {
        var text = "{"
        var separator = ""
        for key in object.keys.sorted() {
            let value: String
            switch object[key] {
            case let string as String: value = JSONText.quote(string)
            case let bool as Bool: value = bool ? "true" : "false"
            case let integer as Int: value = String(integer)
            case let integer as Int64: value = String(integer)
            default: return nil
            }
            text += separator + JSONText.quote(key) + ":" + value
            separator = ","
        }
        return text + "}"
    }

    /// An agent row's routing attributes (columns role, skills, languages, capacity,
    /// presence and the comma-separated team_ids).
    static func agentProfile(_ row: Row) -> AgentProfile {
        let capacityObject = (try? JSONSerialization.jsonObject(with: Data((row["capacity"] as String? ?? "{}").utf8))) as? [String: Int] ?? [:]
        var capacity: [Channel: Int] = [:]
        for (key, value) in capacityObject { if let channel = Channel(rawValue: key) { capacity[channel] = value } }
        let teams: String? = row["team_ids"]
        return AgentProfile(id: row["id"], role: AgentRole(rawValue: row["role"]) ?? .agent,
                            teams: Set((teams ?? "").split(separator: ",").map(String.init)),
                            skills: Set(jsonStrings(row["skills"])), languages: Set(jsonStrings(row["languages"])),
                            capacity: capacity, presence: Presence(rawValue: row["presence"]) ?? .offline)
    }

    static func team(_ row: Row) -> TeamSettings {
        let overflowText: String? = row["overflow"]
        var overflow: Overflow?
        if overflowText == "language" {
            overflow = .language
        } else if let overflowText, overflowText.hasPrefix("team:") {
            overflow = .team(String(overflowText.dropFirst(5)))
        }
        return TeamSettings(id: row["id"], name: row["name"], policy: RoutingPolicy(rawValue: row["policy"]) ?? .leastLoaded,
                            autoAccept: row["auto_accept"] as Bool? ?? false, overflow: overflow)
    }

    private static func routable(_ row: Row, triageGates: Bool) -> RoutableRow {
        let createdAt: Int64 = row["created_at"]
        var conversation = RoutableConversation(
            id: row["id"], channel: Channel(rawValue: row["channel"]) ?? .portal,
            priority: Priority(rawValue: row["priority"]) ?? .normal,
            requiredSkills: Set(jsonStrings(row["required_skills"])), language: row["language"], team: row["team_id"],
            contactID: row["contact_id"], waitingSince: row["waiting_since"] ?? createdAt,
            firstResponseDue: row["first_response_due_at"], previousAgent: row["previous_agent"],
            previousAgentAt: row["previous_agent_at"])
        let offerAgent: String? = row["offer_agent"]
        let assignee: String? = row["assignee_id"]
        let stage: RoutingStage? = if let assignee {
            .assigned(agent: assignee)
        } else if let offerAgent, let expires = row["offer_expires"] as Int64? {
            .offered(agent: offerAgent, expiresAt: expires)
        } else {
            nil
        }
        let firstResponseAt: Int64? = row["first_response_at"]
        let waiting: Int64? = row["waiting_since"]
        conversation.awaitingFirstReply = firstResponseAt == nil
        conversation.firstResponseBreached = (row["first_response_breached_at"] as Int64?) != nil
        conversation.overflowOpen = row["overflow_open"] as Bool? ?? false
        return RoutableRow(conversation: conversation, resolved: row["status"] == "resolved", stage: stage,
                           awaitingFirstReply: firstResponseAt == nil,
                           patientWaitingSince: firstResponseAt == nil ? nil : waiting,
                           readyForRouting: !(triageGates && (row["untriaged"] as Bool? ?? false)))
    }

    // MARK: Applying decisions

    /// Makes a batch of the engine's effects true in one transaction. Returns the ids of the
    /// conversations whose offer or assignment the store refused (the conversation changed
    /// meanwhile): the router looks at those again.
    @discardableResult
    public func applyRouting(_ effects: [RoutingEffect], actor: String? = nil, now: Int64 = Timestamp.now()) async throws -> Set<String> {
        guard !effects.isEmpty else { return [] }
        return try await write { db in
            var refused: Set<String> = []
            for effect in effects {
                if let id = try Self.apply(db, effect, actor: actor, now: now) { refused.insert(id) }
            }
            return refused
        }
    }

    private static func conversationTeam(_ db: Database, _ id: String) throws -> String? {
        try String.fetchOne(db, cachedSQL: "SELECT team_id FROM conversations WHERE id = ?", arguments: [id])
    }

    /// Withdraws the conversation's pending offers (all, or all but `except`'s) and tells
    /// each agent concerned.
    static func withdrawOffers(_ db: Database, conversationID: String, except: String? = nil, reason: String, now: Int64) throws {
        for agent in try String.fetchAll(db, cachedSQL: """
            SELECT agent_id FROM offers WHERE conversation_id = ? AND state = 'pending' AND agent_id IS NOT ?
            """, arguments: [conversationID, except]) {
            try event(db, kind: "offer.ended", audience: .agent, agentID: agent, teamID: nil, conversationID: conversationID,
                      data: ["reason": reason], now: now)
        }
        try db.execute(cachedSQL: """
            UPDATE offers SET state = 'withdrawn', ended_at = ? WHERE conversation_id = ? AND state = 'pending' AND agent_id IS NOT ?
            """, arguments: [now, conversationID, except])
    }

    /// Applies one effect; returns the conversation id when the store refused it.
    private static func apply(_ db: Database, _ effect: RoutingEffect, actor: String?, now: Int64) throws -> String? {
        switch effect {
        case .decided(let decision):
            guard try Bool.fetchOne(db, cachedSQL: "SELECT 1 FROM conversations WHERE id = ?", arguments: [decision.conversationID]) == true else {
                return nil
            }
            let detail = decision.jsonText
            try db.execute(cachedSQL: """
                INSERT INTO routing_log (conversation_id, at, trigger, outcome, agent_id, rule, detail) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [decision.conversationID, decision.at, decision.trigger.rawValue, decision.outcome.rawValue,
                                 decision.agentID, decision.rule, detail])

        case .offered(let conversationID, let agentID, let expiresAt):
            guard let row = try Row.fetchOne(db, cachedSQL: """
                SELECT channel, priority, team_id FROM conversations WHERE id = ? AND status <> 'resolved' AND assignee_id IS NULL
                """, arguments: [conversationID]) else { return conversationID }
            try withdrawOffers(db, conversationID: conversationID, reason: "offered to another agent", now: now)
            try db.execute(cachedSQL: "INSERT INTO offers (conversation_id, agent_id, offered_at, expires_at) VALUES (?, ?, ?, ?)",
                           arguments: [conversationID, agentID, now, expiresAt])
            try event(db, kind: "offer.created", audience: .agent, agentID: agentID, teamID: row["team_id"], conversationID: conversationID,
                      data: ["expires_at": Timestamp.format(expiresAt), "channel": row["channel"] as String, "priority": row["priority"] as String], now: now)

        case .offerEnded(let conversationID, let agentID, let reason):
            let state = reason == "expired" ? "expired" : reason == "declined" ? "declined" : "withdrawn"
            try db.execute(cachedSQL: """
                UPDATE offers SET state = ?, ended_at = ? WHERE conversation_id = ? AND agent_id = ? AND state = 'pending'
                """, arguments: [state, now, conversationID, agentID])
            if db.changesCount > 0 {
                try event(db, kind: "offer.ended", audience: .agent, agentID: agentID, teamID: nil, conversationID: conversationID,
                          data: ["reason": reason], now: now)
            }

        case .assigned(let conversationID, let agentID, let via):
            // Never over someone else's assignment (a claim or reply may have come first), and
            // an acceptance only of an offer still pending to that agent.
            try db.execute(cachedSQL: """
                UPDATE conversations SET assignee_id = ?, updated_at = ?
                WHERE id = ? AND status <> 'resolved' AND (assignee_id IS NULL OR assignee_id = ?)
                  AND (? = 0 OR EXISTS (SELECT 1 FROM offers o WHERE o.conversation_id = conversations.id
                                        AND o.agent_id = ? AND o.state = 'pending'))
                """, arguments: [agentID, now, conversationID, agentID, via == "accepted", agentID])
            guard db.changesCount == 1 else { return conversationID }
            try db.execute(cachedSQL: """
                UPDATE offers SET state = CASE WHEN agent_id = ? THEN 'accepted' ELSE 'withdrawn' END, ended_at = ?
                WHERE conversation_id = ? AND state = 'pending'
                """, arguments: [agentID, now, conversationID])
            let byAgent = via == "accepted" || via == "claimed" || via == "transfer"
            try audit(db, actorKind: byAgent ? "agent" : "system", actorID: byAgent ? (actor ?? agentID) : "router",
                      action: "conversation.assigned", conversationID: conversationID, now: now)
            try event(db, kind: "conversation.assigned", audience: .conversation, agentID: agentID,
                      teamID: try conversationTeam(db, conversationID), conversationID: conversationID,
                      data: ["agent_id": agentID, "via": via], now: now)

        case .unassigned(let conversationID, let agentID, let reason):
            try db.execute(cachedSQL: "UPDATE conversations SET assignee_id = NULL, updated_at = ? WHERE id = ? AND assignee_id = ?",
                           arguments: [now, conversationID, agentID])
            guard db.changesCount == 1 else { return nil }
            try audit(db, actorKind: "system", actorID: "router", action: "conversation.unassigned", conversationID: conversationID, now: now)
            try event(db, kind: "conversation.unassigned", audience: .agent, agentID: agentID, teamID: nil,
                      conversationID: conversationID, data: ["agent_id": agentID, "reason": reason], now: now)

        case .queued(let conversationID):
            // Announce to the team only when the conversation newly waits (not each time it
            // is looked at again).
            let recent = try String.fetchOne(db, cachedSQL: """
                SELECT outcome FROM routing_log WHERE conversation_id = ? ORDER BY id DESC LIMIT 1 OFFSET 1
                """, arguments: [conversationID])
            guard recent != "queued", let row = try Row.fetchOne(db, cachedSQL: """
                SELECT priority, team_id, channel FROM conversations WHERE id = ? AND assignee_id IS NULL AND status <> 'resolved'
                """, arguments: [conversationID]) else { return nil }
            try event(db, kind: "conversation.queued", audience: .conversation, agentID: nil, teamID: row["team_id"],
                      conversationID: conversationID,
                      data: ["priority": row["priority"] as String, "channel": row["channel"] as String], now: now)

        case .presenceChanged(let agentID, let presence, let reason):
            try db.execute(cachedSQL: "UPDATE agents SET presence = ?, presence_changed_at = ? WHERE id = ?",
                           arguments: [presence.rawValue, now, agentID])
            try audit(db, actorKind: actor == agentID ? "agent" : "system", actorID: actor ?? "router",
                      action: "agent.presence.\(presence.rawValue)", now: now)
            let teams = try String.fetchAll(db, cachedSQL: "SELECT team_id FROM agent_teams WHERE agent_id = ? ORDER BY team_id", arguments: [agentID])
            try event(db, kind: "agent.presence", audience: .agent, agentID: agentID, teamID: nil, conversationID: nil,
                      data: ["agent_id": agentID, "presence": presence.rawValue, "reason": reason], now: now)
            for team in teams {
                try event(db, kind: "agent.presence", audience: .supervisors, agentID: nil, teamID: team, conversationID: nil,
                          data: ["agent_id": agentID, "presence": presence.rawValue, "reason": reason], now: now)
            }

        case .firstResponseDue(let conversationID, let due):
            try db.execute(cachedSQL: "UPDATE conversations SET first_response_due_at = ? WHERE id = ?", arguments: [due, conversationID])

        case .nextResponseDue(let conversationID, let due):
            try db.execute(cachedSQL: "UPDATE conversations SET next_response_due_at = ? WHERE id = ?", arguments: [due, conversationID])

        case .slaWarning(let conversationID, let kind, let due), .slaBreached(let conversationID, let kind, let due):
            let breached: Bool = if case .slaBreached = effect { true } else { false }
            guard let row = try Row.fetchOne(db, cachedSQL: "SELECT assignee_id, team_id FROM conversations WHERE id = ?",
                                             arguments: [conversationID]) else { return nil }
            if breached, kind == .firstResponse {
                try db.execute(cachedSQL: "UPDATE conversations SET first_response_breached_at = COALESCE(first_response_breached_at, ?) WHERE id = ?",
                               arguments: [now, conversationID])
            }
            if breached {
                try audit(db, actorKind: "system", actorID: "router", action: "sla.\(kind.rawValue).breached",
                          conversationID: conversationID, now: now)
            }
            try event(db, kind: breached ? "sla.breached" : "sla.warning", audience: .conversation, agentID: row["assignee_id"],
                      teamID: row["team_id"], conversationID: conversationID, data: ["sla": kind.rawValue, "due_at": Timestamp.format(due)], now: now)

        case .escalated(let conversationID, let priority, let widenedTo):
            try db.execute(cachedSQL: "UPDATE conversations SET priority = ?, updated_at = ?, overflow_open = MAX(overflow_open, ?) WHERE id = ?",
                           arguments: [priority.rawValue, now, widenedTo != nil, conversationID])
            try audit(db, actorKind: "system", actorID: "router", action: "conversation.escalated", conversationID: conversationID, now: now)
            var data: [String: Any] = ["priority": priority.rawValue]
            if let widenedTo { data["widened_to"] = widenedTo }
            try event(db, kind: "conversation.escalated", audience: .supervisors, agentID: nil,
                      teamID: try conversationTeam(db, conversationID), conversationID: conversationID, data: data, now: now)
        }
        return nil
    }

    // MARK: The routing log

    /// The recorded decisions for a conversation the agent may see, oldest first.
    public func routingLog(conversationID: String, for agent: Agent, sourceAddress: String?,
                           now: Int64 = Timestamp.now()) async throws -> [RoutingDecision] {
        try await scoped(conversationID, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            _ = try Self.visibleConversation(db, id: conversationID, agent: agent)
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "conversation.routing_read",
                           conversationID: conversationID, sourceAddress: sourceAddress, now: now)
            return try String.fetchAll(db, cachedSQL: "SELECT detail FROM routing_log WHERE conversation_id = ? ORDER BY id",
                                       arguments: [conversationID]).compactMap {
                try? JSONDecoder().decode(RoutingDecision.self, from: Data($0.utf8))
            }
        }
    }
}

/// "This conversation changed": the router's input from the rest of the daemon.
public struct RoutingSignal: Sendable, Equatable {
    public var id: Int64
    public var conversationID: String
    public var kind: String
}

/// A stored conversation as routing sees it.
public struct RoutableRow: Sendable, Equatable {
    public var conversation: RoutableConversation
    public var resolved: Bool
    /// Offered or assigned in the store, or nil when it waits.
    public var stage: RoutingStage?
    public var awaitingFirstReply: Bool
    /// After the first reply: since when the patient waits for the next one.
    public var patientWaitingSince: Int64?
    /// False while triage has not classified every inbound message (when triage gates routing).
    public var readyForRouting: Bool
}

public struct RoutingSnapshot: Sendable {
    public var signalCursor: Int64
    public var teams: [TeamSettings]
    public var agents: [AgentProfile]
    public var conversations: [RoutableRow]
}
