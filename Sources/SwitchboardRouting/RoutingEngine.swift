import SwitchboardCore

/// Errors answered to an agent's own request (accept, decline, claim, transfer). Facts
/// reported by the store about unknown ids are ignored instead.
public enum RoutingError: Error, Equatable, CustomStringConvertible {
    case noPendingOffer
    case assignedToAnother
    case unknownConversation
    case unknownAgent
    case unknownTeam

    public var description: String {
        switch self {
        case .noPendingOffer: "there is no pending offer of this conversation to you"
        case .assignedToAnother: "the conversation is assigned to another agent"
        case .unknownConversation: "the conversation is not open for routing"
        case .unknownAgent: "no such agent"
        case .unknownTeam: "no such team"
        }
    }
}

/// Where one conversation stands.
public enum RoutingStage: Sendable, Equatable {
    case queued
    case offered(agent: String, expiresAt: Int64)
    case assigned(agent: String)

    var agent: String? {
        switch self {
        case .queued: nil
        case .offered(let agent, _), .assigned(let agent): agent
        }
    }
}

/// A read-only view of an agent's routing state.
public struct AgentRoutingState: Sendable, Equatable {
    public var profile: AgentProfile
    public var load: [Channel: Int]
    public var lastAssignedAt: Int64
    public var lastActivityAt: Int64
    public var lapsedOffers: Int
}

/// The router's state and rules. See SwitchboardRouting.swift for what it trusts.
public struct RoutingEngine: Sendable {
    public var settings: RoutingSettings

    private struct AgentState: Sendable {
        var profile: AgentProfile
        var load: [Channel: Int] = [:]
        var lastAssignedAt: Int64 = 0
        var lastActivityAt: Int64
        var lapses = 0
        var conversations: Set<String> = []

        func load(on channel: Channel) -> Int { load[channel] ?? 0 }
        func capacity(on channel: Channel) -> Int { profile.capacity[channel] ?? 0 }
        func ratio(on channel: Channel) -> Double {
            let capacity = capacity(on: channel)
            return capacity > 0 ? Double(load(on: channel)) / Double(capacity) : 1
        }
        var hasFreeCapacity: Bool { profile.capacity.contains { load(on: $0.key) < $0.value } }
    }

    private struct ConversationState: Sendable {
        var conversation: RoutableConversation
        var stage: RoutingStage = .queued
        /// Agents passed over for this conversation until it is assigned or escalated, and why.
        var excluded: [String: String] = [:]
        var widened = false
        var firstResponseDue: Int64
        var awaitingFirstReply = true
        var firstWarned = false
        var firstBreached = false
        var nextResponseDue: Int64?
        var nextSince: Int64 = 0
        var nextWarned = false
        var nextBreached = false

        /// Takes over what the store remembers: answered or not, breach recorded, overflow
        /// open. A warning time already past counts as warned (no burst of warnings after a
        /// restart).
        mutating func adoptStoredSLA(_ conversation: RoutableConversation, now: Int64, warningTime: Int64) {
            awaitingFirstReply = conversation.awaitingFirstReply
            firstBreached = conversation.firstResponseBreached
            firstWarned = firstBreached || now >= warningTime
            widened = conversation.overflowOpen
        }

        var key: RoutingQueue.Key {
            RoutingQueue.Key(rank: conversation.priority.rank, due: firstResponseDue, since: conversation.waitingSince,
                             id: conversation.id)
        }
    }

    private var agents: [String: AgentState] = [:]
    private var sortedAgentIDs: [String] = []
    private var teams: [String: TeamSettings] = [:]
    private var teamMembers: [String: [String]] = [:]
    private var conversations: [String: ConversationState] = [:]
    private var queue = RoutingQueue()
    /// Due times (offer expiries, SLA warnings and breaches), earliest first; `scheduled`
    /// holds each conversation's earliest entry so that superseded ones are skipped.
    private var deadlines = DeadlineHeap()
    private var scheduled: [String: Int64] = [:]
    private var roundRobinCursor: [String: String] = [:]
    /// Recent times conversations left each team's queue (key "" for no team), for the
    /// estimated wait.
    private var recentAssignments: [String: [Int64]] = [:]
    private static let assignmentHistory = 20

    public init(settings: RoutingSettings = RoutingSettings()) {
        self.settings = settings
    }

    // MARK: Reading

    public var queuedCount: Int { queue.count }
    public var conversationCount: Int { conversations.count }

    public func stage(of conversationID: String) -> RoutingStage? { conversations[conversationID]?.stage }

    public func conversation(_ id: String) -> RoutableConversation? { conversations[id]?.conversation }

    public func firstResponseDue(of conversationID: String) -> Int64? { conversations[conversationID]?.firstResponseDue }

    public func agent(_ id: String) -> AgentRoutingState? {
        agents[id].map {
            AgentRoutingState(profile: $0.profile, load: $0.load, lastAssignedAt: $0.lastAssignedAt,
                              lastActivityAt: $0.lastActivityAt, lapsedOffers: $0.lapses)
        }
    }

    public var agentIDs: [String] { sortedAgentIDs }

    public func team(_ id: String) -> TeamSettings? { teams[id] }

    /// The conversations waiting, in dispatch order.
    public var queuedConversationIDs: [String] { queue.keys.map(\.id) }

    /// Position (1 = next) among the conversations waiting for the same team, and an
    /// estimate of the wait: the team's recent mean interval between conversations leaving
    /// its queue, times the position. Nil estimate without enough history.
    public func waitEstimate(for conversationID: String) -> (position: Int, estimatedWait: Int64?)? {
        guard let state = conversations[conversationID], state.stage == .queued else { return nil }
        let team = state.conversation.team
        let key = state.key
        var position = 1
        for other in queue.keys {
            if other == key { break }
            if conversations[other.id]?.conversation.team == team { position += 1 }
        }
        let history = recentAssignments[team ?? ""] ?? []
        guard history.count >= 2, let first = history.first, let last = history.last, last > first else {
            return (position, nil)
        }
        let interval = (last - first) / Int64(history.count - 1)
        return (position, interval * Int64(position))
    }

    // MARK: Teams and agents

    public mutating func upsertTeam(_ team: TeamSettings, now: Int64) -> [RoutingEffect] {
        teams[team.id] = team
        // A new policy (manual → least-loaded, say) may let waiting work go out now.
        return drainAll(now: now)
    }

    /// Adds or updates an agent. A presence change is applied as `setPresence` would.
    public mutating func upsertAgent(_ profile: AgentProfile, now: Int64) -> [RoutingEffect] {
        guard var state = agents[profile.id] else {
            var state = AgentState(profile: profile, lastActivityAt: now)
            state.profile.languages = Set(profile.languages.map { $0.lowercased() })
            agents[profile.id] = state
            insertSorted(&sortedAgentIDs, profile.id)
            for team in profile.teams { insertSorted(&teamMembers[team, default: []], profile.id) }
            return profile.presence == .online ? drain(agent: profile.id, trigger: .agentAvailable, now: now) : []
        }
        let oldPresence = state.profile.presence
        for team in state.profile.teams.subtracting(profile.teams) { teamMembers[team]?.removeAll { $0 == profile.id } }
        for team in profile.teams.subtracting(state.profile.teams) { insertSorted(&teamMembers[team, default: []], profile.id) }
        state.profile = profile
        state.profile.languages = Set(profile.languages.map { $0.lowercased() })
        state.profile.presence = oldPresence
        agents[profile.id] = state
        if profile.presence != oldPresence {
            return setPresence(agent: profile.id, to: profile.presence, reason: "updated", now: now)
        }
        return profile.presence == .online ? drain(agent: profile.id, trigger: .agentAvailable, now: now) : []
    }

    /// Removes an agent (deactivated): every conversation they held or were offered goes
    /// back to the queue.
    public mutating func removeAgent(_ id: String, now: Int64) -> [RoutingEffect] {
        guard let state = agents[id] else { return [] }
        var effects: [RoutingEffect] = []
        for conversationID in state.conversations.sorted() {
            effects += requeue(conversationID, from: id, reason: "agent removed", trigger: .handedBack, now: now)
        }
        agents[id] = nil
        sortedAgentIDs.removeAll { $0 == id }
        for team in state.profile.teams { teamMembers[team]?.removeAll { $0 == id } }
        return effects + dispatchQueued(now: now, trigger: .handedBack, only: Set(state.conversations))
    }

    /// Records agent activity (API calls, event stream traffic) for the idle timeout.
    public mutating func touch(agent id: String, now: Int64) {
        agents[id]?.lastActivityAt = now
    }

    public mutating func setPresence(agent id: String, to presence: Presence, reason: String, now: Int64) -> [RoutingEffect] {
        guard var state = agents[id], state.profile.presence != presence else { return [] }
        state.profile.presence = presence
        state.lastActivityAt = now
        if presence == .online { state.lapses = 0 }
        agents[id] = state
        var effects: [RoutingEffect] = [.presenceChanged(agent: id, presence: presence, reason: reason)]
        if presence == .online {
            return effects + drain(agent: id, trigger: .agentAvailable, now: now)
        }
        var returned: Set<String> = []
        for conversationID in state.conversations.sorted() {
            guard let conversation = conversations[conversationID] else { continue }
            switch conversation.stage {
            case .offered:
                effects += requeue(conversationID, from: id, reason: presence == .away ? "agent_away" : "agent_offline",
                                   trigger: .offerWithdrawn, now: now)
                returned.insert(conversationID)
            case .assigned where presence == .offline && settings.handBackOnOffline && conversation.awaitingFirstReply:
                effects += requeue(conversationID, from: id, reason: "agent offline before the first reply",
                                   trigger: .handedBack, now: now)
                returned.insert(conversationID)
            default:
                break
            }
        }
        return effects + dispatchQueued(now: now, trigger: .handedBack, only: returned)
    }

    // MARK: Conversations

    /// A conversation that needs an agent (new, or updated by triage). A known one is
    /// updated: a higher priority moves it up the queue and may tighten its due time.
    public mutating func enqueue(_ conversation: RoutableConversation, now: Int64) -> [RoutingEffect] {
        var conversation = conversation
        conversation.language = conversation.language?.lowercased()
        let target = settings.firstResponse[conversation.priority] ?? 4 * 3_600_000
        let computedDue = conversation.waitingSince + target
        if var state = conversations[conversation.id] {
            let wasQueued = state.stage == .queued
            if wasQueued { queue.remove(state.key) }
            if conversation.previousAgent == nil {
                conversation.previousAgent = state.conversation.previousAgent
                conversation.previousAgentAt = state.conversation.previousAgentAt
            }
            // A conversation's channel never changes; keep the one its load is counted on.
            conversation.channel = state.conversation.channel
            state.conversation = conversation
            if !conversation.awaitingFirstReply { state.awaitingFirstReply = false }
            if conversation.overflowOpen { state.widened = true }
            var effects: [RoutingEffect] = []
            if state.awaitingFirstReply, computedDue < state.firstResponseDue {
                state.firstResponseDue = computedDue
                effects.append(.firstResponseDue(conversation: conversation.id, due: computedDue))
            }
            conversations[conversation.id] = state
            schedule(conversation.id)
            if wasQueued {
                queue.insert(state.key)
                effects += dispatch(conversation.id, trigger: .arrived, now: now)
            }
            return effects
        }
        let due = conversation.firstResponseDue ?? computedDue
        var state = ConversationState(conversation: conversation, firstResponseDue: due)
        state.adoptStoredSLA(conversation, now: now, warningTime: warningTime(since: conversation.waitingSince, due: due))
        conversations[conversation.id] = state
        queue.insert(state.key)
        schedule(conversation.id)
        var effects: [RoutingEffect] = []
        if conversation.firstResponseDue == nil { effects.append(.firstResponseDue(conversation: conversation.id, due: due)) }
        return effects + dispatch(conversation.id, trigger: .arrived, now: now)
    }

    /// Rebuilds an offer or assignment that the store holds (at start).
    /// Rebuilds an offer or assignment that the store holds (at start, or to follow a claim
    /// or reply made elsewhere). One held by an agent the engine does not know (deactivated)
    /// goes back to the queue: the effects say so.
    public mutating func restore(_ conversation: RoutableConversation, stage: RoutingStage,
                                 nextResponseDue: Int64? = nil, now: Int64) -> [RoutingEffect] {
        guard let agentID = stage.agent, agents[agentID] != nil else {
            var effects: [RoutingEffect] = []
            if let gone = stage.agent {
                effects.append(.unassigned(conversation: conversation.id, agent: gone, reason: "agent no longer active"))
            }
            return effects + enqueue(conversation, now: now)
        }
        var effects: [RoutingEffect] = []
        let due = conversation.firstResponseDue ?? conversation.waitingSince + (settings.firstResponse[conversation.priority] ?? 0)
        if conversation.firstResponseDue == nil, conversation.awaitingFirstReply {
            effects.append(.firstResponseDue(conversation: conversation.id, due: due))
        }
        var state = ConversationState(conversation: conversation, stage: stage, firstResponseDue: due)
        state.adoptStoredSLA(conversation, now: now, warningTime: warningTime(since: conversation.waitingSince, due: due))
        state.nextResponseDue = nextResponseDue
        if let nextResponseDue { state.nextSince = nextResponseDue - (settings.nextResponse[conversation.priority] ?? 0) }
        conversations[conversation.id] = state
        agents[agentID]?.load[conversation.channel, default: 0] += 1
        agents[agentID]?.conversations.insert(conversation.id)
        schedule(conversation.id)
        return effects
    }

    public mutating func accept(_ conversationID: String, agent agentID: String, now: Int64) throws(RoutingError) -> [RoutingEffect] {
        guard var state = conversations[conversationID], case .offered(agentID, _) = state.stage else {
            throw .noPendingOffer
        }
        state.stage = .assigned(agent: agentID)
        state.excluded = [:]
        conversations[conversationID] = state
        agents[agentID]?.lapses = 0
        agents[agentID]?.lastActivityAt = now
        agents[agentID]?.lastAssignedAt = now
        recordAssignment(team: state.conversation.team, now: now)
        return [.assigned(conversation: conversationID, agent: agentID, via: "accepted")]
    }

    public mutating func decline(_ conversationID: String, agent agentID: String, now: Int64) throws(RoutingError) -> [RoutingEffect] {
        guard let state = conversations[conversationID], case .offered(agentID, _) = state.stage else {
            throw .noPendingOffer
        }
        agents[agentID]?.lastActivityAt = now
        var effects = requeue(conversationID, from: agentID, reason: "declined", trigger: .declined, now: now)
        conversations[conversationID]?.excluded[agentID] = "declined the offer"
        effects += dispatch(conversationID, trigger: .declined, now: now)
        return effects + drain(agent: agentID, trigger: .agentAvailable, now: now)
    }

    /// An agent takes a conversation (manual policy, or picking from the queue). Their own
    /// conversation is a no-op; another agent's is a conflict (that is a transfer).
    public mutating func claim(_ conversationID: String, agent agentID: String, now: Int64) throws(RoutingError) -> [RoutingEffect] {
        guard let state = conversations[conversationID] else { throw .unknownConversation }
        guard agents[agentID] != nil else { throw .unknownAgent }
        var effects: [RoutingEffect] = []
        switch state.stage {
        case .assigned(agentID):
            return []
        case .assigned:
            throw .assignedToAnother
        case .offered(agentID, _):
            return try accept(conversationID, agent: agentID, now: now)
        case .offered(let other, _):
            effects += requeue(conversationID, from: other, reason: "claimed by another agent", trigger: .offerWithdrawn, now: now)
        case .queued:
            break
        }
        let decision = RoutingDecision(conversationID: conversationID, at: now, trigger: .arrived, outcome: .assigned,
                                       agentID: agentID, rule: "claim", candidates: [], candidatesOmitted: 0)
        effects += assign(conversationID, to: agentID, via: "claimed", now: now) + [.decided(decision)]
        return effects
    }

    /// Hands a conversation to an agent (directly, even above their capacity: a person chose
    /// them) or to a team's queue.
    /// `actor` is who asked: an agent transferring their own conversation to a team is not
    /// offered it straight back.
    public mutating func transfer(_ conversationID: String, toAgent: String?, toTeam: String?, by actor: String? = nil,
                                  now: Int64) throws(RoutingError) -> [RoutingEffect] {
        guard var state = conversations[conversationID] else { throw .unknownConversation }
        if let toAgent, agents[toAgent] == nil { throw .unknownAgent }
        var effects: [RoutingEffect] = []
        let previous = state.stage.agent
        if let previous {
            effects += requeue(conversationID, from: previous, reason: "transferred", trigger: .transferred, now: now)
            state = conversations[conversationID] ?? state
        }
        if let toTeam {
            queue.remove(state.key)
            state.conversation.team = toTeam
            state.widened = false
            state.excluded = [:]
            // Sent away on purpose: not offered straight back to the sender.
            if let previous, previous == actor { state.excluded[previous] = "transferred it away" }
            conversations[conversationID] = state
            queue.insert(state.key)
        }
        if let toAgent {
            let decision = RoutingDecision(conversationID: conversationID, at: now, trigger: .transferred, outcome: .assigned,
                                           agentID: toAgent, rule: "transfer", candidates: [], candidatesOmitted: 0)
            effects += assign(conversationID, to: toAgent, via: "transfer", now: now) + [.decided(decision)]
        } else {
            effects += dispatch(conversationID, trigger: .transferred, now: now)
        }
        if let previous, previous != toAgent { effects += drain(agent: previous, trigger: .agentAvailable, now: now) }
        return effects
    }

    /// The conversation no longer needs routing (resolved, closed): its agent's capacity is
    /// freed and the backlog drains into it at once.
    public mutating func release(_ conversationID: String, now: Int64) -> [RoutingEffect] {
        guard let state = conversations[conversationID] else { return [] }
        var effects: [RoutingEffect] = []
        let agentID = state.stage.agent
        if let agentID {
            agents[agentID]?.load[state.conversation.channel, default: 1] -= 1
            agents[agentID]?.conversations.remove(conversationID)
            if case .offered = state.stage { effects.append(.offerEnded(conversation: conversationID, agent: agentID, reason: "closed")) }
        }
        if state.stage == .queued { queue.remove(state.key) }
        conversations[conversationID] = nil
        if let agentID { effects += drain(agent: agentID, trigger: .agentAvailable, now: now) }
        return effects
    }

    /// An agent replied: the first-response SLA is met, and the next-response clock stops.
    public mutating func replied(_ conversationID: String, now: Int64) {
        guard var state = conversations[conversationID] else { return }
        state.awaitingFirstReply = false
        state.nextResponseDue = nil
        state.nextWarned = false
        state.nextBreached = false
        conversations[conversationID] = state
        if let agent = state.stage.agent { agents[agent]?.lastActivityAt = now }
    }

    /// The patient wrote again on a conversation an agent has answered: the next-response
    /// clock starts (if it is not running).
    public mutating func patientMessage(_ conversationID: String, at time: Int64) -> [RoutingEffect] {
        guard var state = conversations[conversationID], !state.awaitingFirstReply, state.nextResponseDue == nil else { return [] }
        let due = time + (settings.nextResponse[state.conversation.priority] ?? 8 * 3_600_000)
        state.nextResponseDue = due
        state.nextSince = time
        conversations[conversationID] = state
        schedule(conversationID)
        return [.nextResponseDue(conversation: conversationID, due: due)]
    }

    // MARK: Time

    /// Everything that happens because time passed: offers lapse, idle agents go away,
    /// SLA warnings and breaches (a first-response breach escalates). Only conversations
    /// with a deadline due are looked at (a heap of deadlines), so a tick costs little
    /// however many conversations are open.
    public mutating func tick(now: Int64) -> [RoutingEffect] {
        var effects: [RoutingEffect] = []
        while let top = deadlines.min, top.at <= now {
            deadlines.removeMin()
            guard scheduled[top.id] == top.at else { continue }  // superseded by an earlier one
            scheduled[top.id] = nil
            guard conversations[top.id] != nil else { continue }
            effects += expireOffer(top.id, now: now)
            effects += checkSLA(top.id, now: now)
            schedule(top.id)
        }
        if let idle = settings.idleAway {
            for id in sortedAgentIDs {
                guard let agent = agents[id], agent.profile.presence == .online, agent.lastActivityAt + idle <= now else { continue }
                effects += setPresence(agent: id, to: .away, reason: "idle", now: now)
            }
        }
        return effects
    }

    /// The earliest time `tick` has work to do, so a caller can sleep until then. Drops
    /// deadlines that no longer apply (an offer accepted, an SLA met) on the way.
    public mutating func nextDeadline() -> Int64? {
        while let top = deadlines.min {
            guard scheduled[top.id] == top.at else {
                deadlines.removeMin()
                continue
            }
            guard let state = conversations[top.id], let actual = deadline(of: state) else {
                deadlines.removeMin()
                scheduled[top.id] = nil
                continue
            }
            if actual > top.at {
                deadlines.removeMin()
                scheduled[top.id] = nil
                schedule(top.id)
                continue
            }
            break
        }
        var earliest = deadlines.min?.at
        if let idle = settings.idleAway {
            for agent in agents.values where agent.profile.presence == .online {
                earliest = min(earliest ?? Int64.max, agent.lastActivityAt + idle)
            }
        }
        return earliest
    }

    /// The next time something is due for this conversation: its offer's expiry, an SLA
    /// warning or breach.
    private func deadline(of state: ConversationState) -> Int64? {
        var earliest: Int64?
        func consider(_ time: Int64) { earliest = min(earliest ?? time, time) }
        if case .offered(_, let expiresAt) = state.stage { consider(expiresAt) }
        if state.awaitingFirstReply, !state.firstBreached {
            consider(state.firstWarned ? state.firstResponseDue : warningTime(since: state.conversation.waitingSince, due: state.firstResponseDue))
        }
        if let due = state.nextResponseDue, !state.nextBreached {
            consider(state.nextWarned ? due : warningTime(since: state.nextSince, due: due))
        }
        return earliest
    }

    /// Puts the conversation's next deadline on the heap (unless an earlier one is there).
    private mutating func schedule(_ id: String) {
        guard let state = conversations[id], let at = deadline(of: state) else { return }
        if let current = scheduled[id], current <= at { return }
        scheduled[id] = at
        deadlines.insert(Deadline(at: at, id: id))
    }

    private func warningTime(since: Int64, due: Int64) -> Int64 {
        since + Int64(Double(max(0, due - since)) * settings.warningFraction)
    }

    /// An offer not accepted in time goes to the next candidate; the agent who let it lapse
    /// is passed over for it, and set away after too many lapses in a row.
    private mutating func expireOffer(_ conversationID: String, now: Int64) -> [RoutingEffect] {
        guard let state = conversations[conversationID], case .offered(let agentID, let expiresAt) = state.stage,
              expiresAt <= now else { return [] }
        var effects = requeue(conversationID, from: agentID, reason: "expired", trigger: .offerExpired, now: now)
        conversations[conversationID]?.excluded[agentID] = "let the offer lapse"
        agents[agentID]?.lapses += 1
        if let lapses = agents[agentID]?.lapses, lapses >= settings.lapsesBeforeAway {
            effects += setPresence(agent: agentID, to: .away, reason: "let \(lapses) offers lapse", now: now)
        }
        effects += dispatch(conversationID, trigger: .offerExpired, now: now)
        // The agent's slot is free again for the rest of the backlog (if still online).
        return effects + drain(agent: agentID, trigger: .agentAvailable, now: now)
    }

    private mutating func checkSLA(_ id: String, now: Int64) -> [RoutingEffect] {
        guard var state = conversations[id] else { return [] }
        var effects: [RoutingEffect] = []
        var escalate = false
        if state.awaitingFirstReply, !state.firstBreached {
            if now >= state.firstResponseDue {
                state.firstBreached = true
                state.firstWarned = true
                effects.append(.slaBreached(conversation: id, kind: .firstResponse, due: state.firstResponseDue))
                escalate = true
            } else if !state.firstWarned, now >= warningTime(since: state.conversation.waitingSince, due: state.firstResponseDue) {
                state.firstWarned = true
                effects.append(.slaWarning(conversation: id, kind: .firstResponse, due: state.firstResponseDue))
            }
        }
        if let due = state.nextResponseDue, !state.nextBreached {
            if now >= due {
                state.nextBreached = true
                state.nextWarned = true
                effects.append(.slaBreached(conversation: id, kind: .nextResponse, due: due))
            } else if !state.nextWarned, now >= warningTime(since: state.nextSince, due: due) {
                state.nextWarned = true
                effects.append(.slaWarning(conversation: id, kind: .nextResponse, due: due))
            }
        }
        conversations[id] = state
        return escalate ? effects + escalateConversation(id, now: now) : effects
    }

    /// First-response breach: priority one step up and the team's overflow opened; the
    /// agents passed over get another chance. A waiting conversation is dispatched again.
    private mutating func escalateConversation(_ id: String, now: Int64) -> [RoutingEffect] {
        guard var state = conversations[id] else { return [] }
        let queued = state.stage == .queued
        if queued { queue.remove(state.key) }
        state.conversation.priority = state.conversation.priority.raised
        var widenedTo: String?
        if let team = state.conversation.team, let overflow = teams[team]?.overflow {
            state.widened = true
            switch overflow {
            case .team(let other): widenedTo = "team:\(other)"
            case .language: widenedTo = "language"
            }
        }
        state.excluded = [:]
        conversations[id] = state
        var effects: [RoutingEffect] = [.escalated(conversation: id, priority: state.conversation.priority, widenedTo: widenedTo)]
        if queued {
            queue.insert(state.key)
            effects += dispatch(id, trigger: .escalated, now: now)
        }
        return effects
    }

    // MARK: Dispatch

    /// Takes the conversation back from `agentID` (offer or assignment) into the queue.
    private mutating func requeue(_ conversationID: String, from agentID: String, reason: String, trigger: RoutingTrigger,
                                  now: Int64) -> [RoutingEffect] {
        guard var state = conversations[conversationID], state.stage.agent == agentID else { return [] }
        let wasOffer: Bool
        if case .offered = state.stage { wasOffer = true } else { wasOffer = false }
        state.stage = .queued
        conversations[conversationID] = state
        agents[agentID]?.load[state.conversation.channel, default: 1] -= 1
        agents[agentID]?.conversations.remove(conversationID)
        queue.insert(state.key)
        return [wasOffer ? .offerEnded(conversation: conversationID, agent: agentID, reason: reason)
                         : .unassigned(conversation: conversationID, agent: agentID, reason: reason)]
    }

    private mutating func dispatchQueued(now: Int64, trigger: RoutingTrigger, only ids: Set<String>) -> [RoutingEffect] {
        var effects: [RoutingEffect] = []
        for key in queue.keys where ids.contains(key.id) {
            effects += dispatch(key.id, trigger: trigger, now: now)
        }
        return effects
    }

    private func policy(for state: ConversationState) -> RoutingPolicy {
        state.conversation.team.flatMap { teams[$0]?.policy } ?? settings.defaultPolicy
    }

    /// The agents routing considers for this conversation: its team (plus the overflow once
    /// widened), or everyone for a conversation without a team or widened to its language.
    private func candidatePool(_ state: ConversationState) -> [String] {
        guard let team = state.conversation.team else { return sortedAgentIDs }
        guard state.widened, let overflow = teams[team]?.overflow else { return teamMembers[team] ?? [] }
        switch overflow {
        case .language:
            return sortedAgentIDs
        case .team(let other):
            return Array(Set(teamMembers[team] ?? []).union(teamMembers[other] ?? [])).sorted()
        }
    }

    private func isCandidate(_ agentID: String, _ agent: AgentState, for state: ConversationState) -> Bool {
        guard let team = state.conversation.team else { return true }
        if agent.profile.teams.contains(team) { return true }
        guard state.widened, let overflow = teams[team]?.overflow else { return false }
        switch overflow {
        case .language: return true
        case .team(let other): return agent.profile.teams.contains(other)
        }
    }

    /// Empty when the agent may take the conversation now; otherwise why not, in words an
    /// operator reads in the routing log.
    private func passOverReasons(_ agentID: String, _ agent: AgentState, for state: ConversationState) -> [String] {
        var reasons: [String] = []
        if agent.profile.presence != .online { reasons.append(agent.profile.presence.rawValue) }
        let missing = state.conversation.requiredSkills.subtracting(agent.profile.skills)
        for skill in missing.sorted() { reasons.append("missing skill \(skill)") }
        if let language = state.conversation.language, !agent.profile.languages.contains(language) {
            reasons.append("does not speak \(language)")
        }
        let channel = state.conversation.channel
        let capacity = agent.capacity(on: channel)
        if capacity <= 0 {
            reasons.append("no \(channel.rawValue) capacity")
        } else if agent.load(on: channel) >= capacity {
            reasons.append("at \(channel.rawValue) capacity (\(agent.load(on: channel))/\(capacity))")
        }
        if let why = state.excluded[agentID] { reasons.append(why) }
        return reasons
    }

    private func isEligible(_ agentID: String, _ agent: AgentState, for state: ConversationState) -> Bool {
        guard agent.profile.presence == .online, state.excluded[agentID] == nil else { return false }
        let channel = state.conversation.channel
        guard agent.load(on: channel) < agent.capacity(on: channel) else { return false }
        if let language = state.conversation.language, !agent.profile.languages.contains(language) { return false }
        return state.conversation.requiredSkills.isSubset(of: agent.profile.skills)
    }

    /// Chooses an agent for a waiting conversation and offers (or assigns) it, recording
    /// the decision. Leaves it waiting, with a decision saying why, when nobody is eligible.
    private mutating func dispatch(_ conversationID: String, trigger: RoutingTrigger, now: Int64) -> [RoutingEffect] {
        guard let state = conversations[conversationID], state.stage == .queued else { return [] }
        let channel = state.conversation.channel
        var eligible: [String] = []
        var passedOver: [RoutingDecision.Candidate] = []
        var omitted = 0
        for id in candidatePool(state) {
            guard let agent = agents[id] else { continue }
            if isEligible(id, agent, for: state) {
                eligible.append(id)
            } else if passedOver.count < settings.candidatesRecorded {
                passedOver.append(.init(agentID: id, eligible: false, reasons: passOverReasons(id, agent, for: state),
                                        load: agent.ratio(on: channel)))
            } else {
                omitted += 1
            }
        }
        let policy = policy(for: state)
        var winner: String?
        var rule = policy.rawValue
        if policy != .manual {
            if settings.stickinessWindow > 0, let previous = state.conversation.previousAgent, eligible.contains(previous),
               let at = state.conversation.previousAgentAt, now - at <= settings.stickinessWindow {
                winner = previous
                rule = "sticky"
            } else {
                switch policy {
                case .leastLoaded:
                    winner = eligible.min { lhs, rhs in
                        let a = agents[lhs]!, b = agents[rhs]!
                        let (ra, rb) = (a.ratio(on: channel), b.ratio(on: channel))
                        if ra != rb { return ra < rb }
                        if a.lastAssignedAt != b.lastAssignedAt { return a.lastAssignedAt < b.lastAssignedAt }
                        return lhs < rhs
                    }
                case .roundRobin:
                    let cursorKey = state.conversation.team ?? ""
                    let last = roundRobinCursor[cursorKey]
                    winner = eligible.first { last == nil || $0 > last! } ?? eligible.first
                    if let winner { roundRobinCursor[cursorKey] = winner }
                case .manual:
                    break
                }
            }
        } else {
            rule = "manual: agents pick from the queue"
        }
        var candidates: [RoutingDecision.Candidate] = []
        if let winner { candidates.append(.init(agentID: winner, eligible: true, reasons: [], load: agents[winner]?.ratio(on: channel))) }
        for id in eligible where id != winner {
            if candidates.count < settings.candidatesRecorded {
                candidates.append(.init(agentID: id, eligible: true, reasons: ["not chosen by \(rule)"], load: agents[id]?.ratio(on: channel)))
            } else {
                omitted += 1
            }
        }
        let room = max(0, settings.candidatesRecorded - candidates.count)
        omitted += max(0, passedOver.count - room)
        candidates += passedOver.prefix(room)
        guard let winner else {
            if policy != .manual { rule = eligible.isEmpty ? "nobody eligible" : rule }
            let decision = RoutingDecision(conversationID: conversationID, at: now, trigger: trigger, outcome: .queued,
                                           agentID: nil, rule: rule, candidates: candidates, candidatesOmitted: omitted)
            return [.decided(decision), .queued(conversation: conversationID)]
        }
        let autoAccept = state.conversation.team.flatMap { teams[$0]?.autoAccept } ?? false
        let decision = RoutingDecision(conversationID: conversationID, at: now, trigger: trigger,
                                       outcome: autoAccept ? .assigned : .offered, agentID: winner, rule: rule,
                                       candidates: candidates, candidatesOmitted: omitted)
        if autoAccept {
            return assign(conversationID, to: winner, via: "auto-accept", now: now) + [.decided(decision)]
        }
        var offered = state
        queue.remove(offered.key)
        let expiresAt = now + settings.offerTimeout
        offered.stage = .offered(agent: winner, expiresAt: expiresAt)
        conversations[conversationID] = offered
        schedule(conversationID)
        agents[winner]?.load[channel, default: 0] += 1
        agents[winner]?.conversations.insert(conversationID)
        return [.decided(decision), .offered(conversation: conversationID, agent: winner, expiresAt: expiresAt)]
    }

    /// Makes `agentID` the conversation's agent, from the queue.
    private mutating func assign(_ conversationID: String, to agentID: String, via: String, now: Int64) -> [RoutingEffect] {
        guard var state = conversations[conversationID] else { return [] }
        if state.stage == .queued { queue.remove(state.key) }
        state.stage = .assigned(agent: agentID)
        state.excluded = [:]
        conversations[conversationID] = state
        agents[agentID]?.load[state.conversation.channel, default: 0] += 1
        agents[agentID]?.conversations.insert(conversationID)
        agents[agentID]?.lastAssignedAt = now
        recordAssignment(team: state.conversation.team, now: now)
        return [.assigned(conversation: conversationID, agent: agentID, via: via)]
    }

    /// A conversation left the team's queue for an agent: the pace behind the wait estimate.
    private mutating func recordAssignment(team: String?, now: Int64) {
        var history = recentAssignments[team ?? ""] ?? []
        history.append(now)
        if history.count > Self.assignmentHistory { history.removeFirst(history.count - Self.assignmentHistory) }
        recentAssignments[team ?? ""] = history
    }

    /// Freed capacity goes to the backlog at once: the waiting conversations this agent may
    /// take are dispatched in queue order until the agent is full or none is left.
    private mutating func drain(agent agentID: String, trigger: RoutingTrigger, now: Int64) -> [RoutingEffect] {
        var effects: [RoutingEffect] = []
        while let agent = agents[agentID], agent.profile.presence == .online, agent.hasFreeCapacity {
            var batch: [String] = []
            let slots = agent.profile.capacity.reduce(0) { $0 + max(0, $1.value - agent.load(on: $1.key)) }
            for key in queue.keys {
                guard let state = conversations[key.id], policy(for: state) != .manual,
                      isCandidate(agentID, agent, for: state), isEligible(agentID, agent, for: state) else { continue }
                batch.append(key.id)
                if batch.count >= slots { break }
            }
            if batch.isEmpty { break }
            for id in batch { effects += dispatch(id, trigger: trigger, now: now) }
        }
        return effects
    }

    private mutating func drainAll(now: Int64) -> [RoutingEffect] {
        var effects: [RoutingEffect] = []
        for id in sortedAgentIDs { effects += drain(agent: id, trigger: .agentAvailable, now: now) }
        return effects
    }

    private func insertSorted(_ array: inout [String], _ value: String) {
        var low = 0
        var high = array.count
        while low < high {
            let mid = (low + high) / 2
            if array[mid] < value { low = mid + 1 } else { high = mid }
        }
        if low < array.count, array[low] == value { return }
        array.insert(value, at: low)
    }
}
