import Foundation
import Hummingbird
import Logging
import SwitchboardCore
import SwitchboardRouting
import SwitchboardStore

/// The router's side of the agent API: presence, offers, transfers, notes, the routing
/// log, queue position, and team and agent administration. Roles: any agent manages their
/// own presence and offers; supervisors see agents and set others' presence; admins change
/// teams and agents. A role that may not do something gets 403 naming the role it needs.
struct RoutingController {
    let store: SwitchboardStore
    let router: RouterService

    static let maxNoteBytes = 16 * 1024

    func register(on group: RouterGroup<AppRequestContext>) {
        group.get("me") { _, context in
            try await agentResponse(try context.requireAgent().id)
        }
        group.put("me/presence") { request, context in
            let agent = try context.requireAgent()
            let presence = try await Self.presence(request)
            try await router.setPresence(agent: agent.id, to: presence, by: agent.id)
            context.logger.info("presence set", metadata: ["presence": "\(presence.rawValue)"])
            return try await agentResponse(agent.id)
        }
        group.get("agents") { _, context in
            try Self.require(.supervisor, context)
            var agents: [AgentJSON] = []
            for detail in try await store.agentDetails() {
                agents.append(AgentJSON(detail, state: await router.agentState(detail.agent.id)))
            }
            return JSON.response(["agents": agents])
        }
        group.post("agents") { request, context in
            try Self.require(.admin, context)
            let object = try await request.jsonObject(limit: 16 * 1024)
            try Self.onlyFields(["name", "email", "role", "teams", "skills", "languages", "capacity"], in: object)
            guard let name = try Self.optionalString(object, "name") else { throw APIError.badRequest("missing field name") }
            guard let email = try Self.optionalString(object, "email") else { throw APIError.badRequest("missing field email") }
            let attributes = try Self.agentAttributes(object)
            let created = try await store.createAgent(name: name, email: email, role: attributes.role ?? .agent, team: nil)
            try await updateAgent(created.agent.id, attributes)
            try await router.agentChanged(created.agent.id)
            context.logger.info("agent created", metadata: ["target.agent.id": "\(created.agent.id)"])
            guard let detail = try await store.agentDetail(id: created.agent.id) else { throw APIError.notFound }
            return JSON.response(AgentCreatedJSON(agent: AgentJSON(detail, state: await router.agentState(detail.agent.id)),
                                                  token: created.token), status: .created)
        }
        group.delete("agents/:agent") { _, context in
            let actor = try Self.require(.admin, context)
            let id = try Self.parameter("agent", context)
            guard id != actor.id else { throw APIError(.conflict, code: "conflict", "an admin cannot deactivate themselves") }
            do {
                try await store.deactivateAgent(id: id)
            } catch StoreError.notFound {
                throw APIError(.notFound, code: "not_found", "no such agent")
            }
            try await router.agentChanged(id)
            context.logger.info("agent deactivated", metadata: ["target.agent.id": "\(id)"])
            return Response(status: .noContent)
        }
        group.put("agents/:agent/presence") { request, context in
            let actor = try Self.require(.supervisor, context)
            let id = try Self.parameter("agent", context)
            let presence = try await Self.presence(request)
            try await router.setPresence(agent: id, to: presence, by: actor.id)
            context.logger.info("presence set for another agent", metadata: ["target.agent.id": "\(id)", "presence": "\(presence.rawValue)"])
            return try await agentResponse(id)
        }
        group.patch("agents/:agent") { request, context in
            let actor = try Self.require(.supervisor, context)
            let id = try Self.parameter("agent", context)
            guard let target = try await store.agentDetail(id: id) else { throw APIError(.notFound, code: "not_found", "no such agent") }
            let object = try await request.jsonObject(limit: 16 * 1024)
            try Self.onlyFields(["role", "skills", "languages", "capacity", "teams"], in: object)
            if actor.role == .supervisor {
                // Supervisors tune the agents of their own teams; roles and team membership are an admin's.
                guard object["role"] == nil, object["teams"] == nil else {
                    throw APIError(.forbidden, code: "forbidden", "changing role or teams needs the admin role")
                }
                guard !Set(target.agent.teams).isDisjoint(with: actor.teams) else {
                    throw APIError(.forbidden, code: "forbidden", "a supervisor may change only the agents of their own teams")
                }
            }
            try await updateAgent(id, try Self.agentAttributes(object))
            try await router.agentChanged(id)
            context.logger.info("agent updated", metadata: ["target.agent.id": "\(id)"])
            return try await agentResponse(id)
        }
        group.get("teams") { _, _ in
            JSON.response(["teams": try await store.listTeams().map(TeamJSON.init)])
        }
        group.put("teams/:team") { request, context in
            try Self.require(.admin, context)
            let name = try Self.parameter("team", context)
            let team = try await upsertTeam(name, try await request.jsonObject(limit: 4096))
            try await router.teamChanged(team)
            context.logger.info("team saved", metadata: ["team.id": "\(team.id)", "policy": "\(team.policy.rawValue)"])
            return JSON.response(["team": TeamJSON(team)])
        }
        group.post("conversations/:id/accept") { _, context in
            let (id, agent) = try await answerOffer(context, "offer accepted") { try await router.accept($0, agent: $1) }
            return try await conversationResponse(id, agent, context)
        }
        group.post("conversations/:id/decline") { _, context in
            _ = try await answerOffer(context, "offer declined") { try await router.decline($0, agent: $1) }
            return Response(status: .noContent)
        }
        group.post("conversations/:id/transfer") { request, context in
            let agent = try context.requireAgent()
            let id = try Self.parameter("id", context)
            let object = try await request.jsonObject(limit: Self.maxNoteBytes + 1024)
            let toAgent = try Self.optionalString(object, "to_agent")
            let toTeam = try Self.optionalString(object, "to_team")
            let note = try Self.optionalString(object, "note")
            guard (toAgent == nil) != (toTeam == nil) else {
                throw APIError.badRequest("give exactly one of to_agent (an agent id) or to_team (a team name or id)")
            }
            if let note, note.utf8.count > Self.maxNoteBytes {
                throw APIError(.contentTooLarge, code: "payload_too_large", "field note is longer than \(Self.maxNoteBytes) bytes")
            }
            let target = try await store.prepareTransfer(conversationID: id, by: agent, toAgent: toAgent, toTeam: toTeam, note: note,
                                                         sourceAddress: context.sourceAddress)
            try await router.transfer(id, toAgent: target.toAgent, toTeam: target.toTeam, by: agent.id)
            context.logger.info("conversation transferred", metadata: ["conversation.id": "\(id)"])
            return JSON.response(["conversation": ConversationJSON(try await store.summary(id: id))])
        }
        group.post("conversations/:id/notes") { request, context in
            let agent = try context.requireAgent()
            let id = try Self.parameter("id", context)
            let object = try await request.jsonObject(limit: Self.maxNoteBytes + 1024)
            guard let text = try Self.optionalString(object, "text") else { throw APIError.badRequest("missing field text") }
            guard text.utf8.count <= Self.maxNoteBytes else {
                throw APIError(.contentTooLarge, code: "payload_too_large", "field text is longer than \(Self.maxNoteBytes) bytes")
            }
            let note = try await store.addNote(conversationID: id, by: agent, text: text, sourceAddress: context.sourceAddress)
            context.logger.info("note added", metadata: ["conversation.id": "\(id)", "message.id": "\(note.id)"])
            return JSON.response(["message_id": note.id], status: .created)
        }
        group.get("conversations/:id/routing") { _, context in
            let agent = try context.requireAgent()
            let id = try Self.parameter("id", context)
            let decisions = try await store.routingLog(conversationID: id, for: agent, sourceAddress: context.sourceAddress)
            return JSON.response(RoutingLogJSON(conversationId: id, decisions: decisions.map(DecisionJSON.init)))
        }
        group.get("conversations/:id/queue") { _, context in
            let agent = try context.requireAgent()
            let id = try Self.parameter("id", context)
            try await store.checkAccess(conversationID: id, by: agent, sourceAddress: context.sourceAddress)
            guard let estimate = await router.waitEstimate(for: id) else {
                return JSON.response(QueueJSON(conversationId: id, queued: false, position: Nullable(nil), estimatedWaitSeconds: Nullable(nil)))
            }
            return JSON.response(QueueJSON(conversationId: id, queued: true, position: Nullable(estimate.position),
                                           estimatedWaitSeconds: Nullable(estimate.estimatedWait.map { Int(($0 + 999) / 1000) })))
        }
    }

    /// Accept or decline: a conversation the agent may not see is a 404 (audited) before
    /// the router is asked.
    private func answerOffer(_ context: AppRequestContext, _ message: Logger.Message,
                             _ answer: (String, String) async throws -> Void) async throws -> (String, Agent) {
        let agent = try context.requireAgent()
        let id = try Self.parameter("id", context)
        try await store.checkAccess(conversationID: id, by: agent, sourceAddress: context.sourceAddress)
        try await answer(id, agent.id)
        context.logger.info(message, metadata: ["conversation.id": "\(id)"])
        return (id, agent)
    }

    private func agentResponse(_ id: String) async throws -> Response {
        guard let detail = try await store.agentDetail(id: id) else { throw APIError(.notFound, code: "not_found", "no such agent") }
        return JSON.response(["agent": AgentJSON(detail, state: await router.agentState(id))])
    }

    private func conversationResponse(_ id: String, _ agent: Agent, _ context: AppRequestContext) async throws -> Response {
        let summary = try await store.summary(id: id)
        guard summary.assigneeID == agent.id else {
            throw APIError(.conflict, code: "conflict", "the conversation was taken by another agent")
        }
        return JSON.response(["conversation": ConversationJSON(summary)])
    }

    /// An agent's routing attributes from a request body, validated before anything is stored.
    struct AgentAttributes {
        var role: AgentRole?
        var skills: [String]?
        var languages: [String]?
        var capacity: [SwitchboardCore.Channel: Int]?
        var teams: [String]?
    }

    static func agentAttributes(_ object: [String: Any]) throws -> AgentAttributes {
        var capacity: [SwitchboardCore.Channel: Int]?
        if let value = object["capacity"] {
            guard let dictionary = value as? [String: Any] else { throw APIError.badRequest("field capacity must be an object of channel: number") }
            var parsed: [SwitchboardCore.Channel: Int] = [:]
            for (key, number) in dictionary {
                guard let channel = SwitchboardCore.Channel(rawValue: key) else {
                    throw APIError.badRequest("capacity: unknown channel \(key.prefix(32)); channels are email, sms, chat, portal")
                }
                guard let count = Self.strict(Int.self, number), (0...1000).contains(count) else {
                    throw APIError.badRequest("capacity.\(key) must be a whole number from 0 to 1000")
                }
                parsed[channel] = count
            }
            capacity = parsed
        }
        return AgentAttributes(role: try enumeration(object, "role"), skills: try stringList(object, "skills"),
                               languages: try stringList(object, "languages"), capacity: capacity, teams: try stringList(object, "teams"))
    }

    private func updateAgent(_ id: String, _ attributes: AgentAttributes) async throws {
        _ = try await store.updateAgent(id: id, role: attributes.role, skills: attributes.skills, languages: attributes.languages,
                                        capacity: attributes.capacity, teams: attributes.teams)
    }

    private func upsertTeam(_ name: String, _ object: [String: Any]) async throws -> TeamSettings {
        try Self.onlyFields(["policy", "auto_accept", "overflow"], in: object)
        let policy: RoutingPolicy? = try Self.enumeration(object, "policy")
        var autoAccept: Bool?
        if let value = object["auto_accept"] {
            guard let flag = Self.strict(Bool.self, value) else {
                throw APIError.badRequest("field auto_accept must be true or false")
            }
            autoAccept = flag
        }
        var overflow: String??
        if let value = object["overflow"] {
            if value is NSNull {
                overflow = .some(nil)
            } else if let text = value as? String, !text.isEmpty {
                overflow = .some(text)
            } else {
                throw APIError.badRequest("field overflow must be \"language\", a team name, or null")
            }
        }
        return try await store.upsertTeam(name: name, policy: policy, autoAccept: autoAccept, overflow: overflow)
    }

    @discardableResult
    static func require(_ role: AgentRole, _ context: AppRequestContext) throws -> Agent {
        let agent = try context.requireAgent()
        let rank: [AgentRole: Int] = [.agent: 0, .supervisor: 1, .admin: 2]
        guard rank[agent.role, default: 0] >= rank[role, default: 0] else {
            throw APIError(.forbidden, code: "forbidden", "this needs the \(role.rawValue) role")
        }
        return agent
    }

    static func parameter(_ name: String, _ context: AppRequestContext) throws -> String {
        guard let value = context.parameters.get(name), !value.isEmpty, value.utf8.count <= 64 else { throw APIError.notFound }
        return value
    }

    static func presence(_ request: Request) async throws -> Presence {
        let object = try await request.jsonObject(limit: 1024)
        guard let presence: Presence = try enumeration(object, "presence") else { throw APIError.badRequest("missing field presence") }
        return presence
    }

    /// One JSON value decoded strictly: Foundation's JSONSerialization hands out NSNumber,
    /// which casts 0 and 1 to Bool and true to Int; JSONDecoder keeps them apart.
    static func strict<T: Decodable>(_ type: T.Type, _ value: Any) -> T? {
        guard let data = try? JSONSerialization.data(withJSONObject: [value]) else { return nil }
        return (try? JSONDecoder().decode([T].self, from: data))?.first
    }

    /// 400 naming the first field that is not one of `allowed`.
    static func onlyFields(_ allowed: Set<String>, in object: [String: Any]) throws {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError.badRequest("unknown field \(unknown.prefix(64)); allowed: \(allowed.sorted().joined(separator: ", "))")
        }
    }

    /// An optional field whose value is one of an enumeration's raw values, or 400 listing them.
    static func enumeration<T: RawRepresentable & CaseIterable>(_ object: [String: Any], _ key: String) throws -> T?
        where T.RawValue == String {
        guard let value = object[key] else { return nil }
        guard let text = value as? String, let parsed = T(rawValue: text) else {
            throw APIError.badRequest("field \(key) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return parsed
    }

    static func optionalString(_ object: [String: Any], _ key: String) throws -> String? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw APIError.badRequest("field \(key) must be a string") }
        let trimmed = text.trimmingWhitespace()
        return trimmed.isEmpty ? nil : trimmed
    }

    static func stringList(_ object: [String: Any], _ key: String) throws -> [String]? {
        guard let value = object[key] else { return nil }
        guard let list = value as? [String], list.count <= 100, list.allSatisfy({ $0.utf8.count <= 64 }) else {
            throw APIError.badRequest("field \(key) must be a list of at most 100 strings of at most 64 bytes")
        }
        return list
    }
}

struct AgentJSON: Encodable {
    let id: String
    let name: String
    let email: String
    let role: AgentRole
    let teams: [String]
    let skills: [String]
    let languages: [String]
    let capacity: [String: Int]
    let load: [String: Int]
    let presence: Presence
    let presenceChangedAt: Nullable<String>

    init(_ detail: AgentDetail, state: AgentRoutingState?) {
        id = detail.agent.id
        name = detail.agent.name
        email = detail.agent.email
        role = detail.agent.role
        teams = detail.agent.teams.sorted()
        skills = detail.profile.skills.sorted()
        languages = detail.profile.languages.sorted()
        capacity = Dictionary(uniqueKeysWithValues: detail.profile.capacity.map { ($0.key.rawValue, $0.value) })
        load = Dictionary(uniqueKeysWithValues: (state?.load ?? [:]).filter { $0.value > 0 }.map { ($0.key.rawValue, $0.value) })
        presence = state?.profile.presence ?? detail.profile.presence
        presenceChangedAt = Nullable(detail.presenceChangedAt.map(Timestamp.format))
    }
}

struct AgentCreatedJSON: Encodable {
    let agent: AgentJSON
    let token: String
}

struct TeamJSON: Encodable {
    let id: String
    let name: String
    let policy: RoutingPolicy
    let autoAccept: Bool
    let overflow: Nullable<String>

    init(_ team: TeamSettings) {
        id = team.id
        name = team.name
        policy = team.policy
        autoAccept = team.autoAccept
        overflow = Nullable(team.overflow.map {
            switch $0 {
            case .language: "language"
            case .team(let id): "team:\(id)"
            }
        })
    }
}

struct DecisionJSON: Encodable {
    struct CandidateJSON: Encodable {
        let agentId: String
        let eligible: Bool
        let reasons: [String]
        let load: Nullable<Double>
    }

    let at: String
    let trigger: String
    let outcome: String
    let agentId: Nullable<String>
    let rule: String
    let candidates: [CandidateJSON]
    let candidatesOmitted: Int

    init(_ decision: RoutingDecision) {
        at = Timestamp.format(decision.at)
        trigger = decision.trigger.rawValue
        outcome = decision.outcome.rawValue
        agentId = Nullable(decision.agentID)
        rule = decision.rule
        candidates = decision.candidates.map {
            CandidateJSON(agentId: $0.agentID, eligible: $0.eligible, reasons: $0.reasons, load: Nullable($0.load))
        }
        candidatesOmitted = decision.candidatesOmitted
    }
}

struct RoutingLogJSON: Encodable {
    let conversationId: String
    let decisions: [DecisionJSON]
}

struct QueueJSON: Encodable {
    let conversationId: String
    let queued: Bool
    let position: Nullable<Int>
    let estimatedWaitSeconds: Nullable<Int>
}
