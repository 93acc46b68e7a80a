// SwitchboardRouting — who should answer which conversation, and when. A pure, in-memory
// engine: it is handed every fact that matters (agents, teams, conversations, the time)
// and answers with effects (offers, assignments, hand-backs, SLA breaches) and a decision
// record for each choice it makes. It performs no I/O and reads no clock: the caller passes
// `now` to every call, which is what lets the tests run whole days of routing with a manual
// clock and no sleeps.
//
// Trusts: its caller to report facts in order (the router service feeds it from the store,
// which is the source of truth; on restart the engine is rebuilt from the store).
// On failure: operations on unknown agents or conversations are ignored and return no
// effects — the store, not the engine, answers callers' errors.

import SwitchboardCore

/// An agent's availability. Only `online` agents receive offers; `away` agents keep their
/// conversations; `offline` agents may hand back the ones still waiting for a first reply.
public enum Presence: String, Sendable, Codable, CaseIterable {
    case online, away, offline
}

/// How a team chooses among eligible agents. See docs/ROUTING.md.
public enum RoutingPolicy: String, Sendable, Codable, CaseIterable {
    /// Lowest load relative to capacity on the conversation's channel; ties to the agent
    /// idle the longest (earliest last assignment), then the agent id.
    case leastLoaded = "least-loaded"
    /// The next eligible agent after the one chosen last, in agent-id order.
    case roundRobin = "round-robin"
    /// Nobody is offered anything: agents pick from the queue (claim).
    case manual
}

/// Where a conversation may also go once its first-response SLA is breached.
public enum Overflow: Sendable, Equatable, Codable {
    /// Agents of another team (by team id) become eligible too.
    case team(String)
    /// Any agent who speaks the conversation's language, whatever their team.
    case language
}

public struct TeamSettings: Sendable, Equatable {
    public var id: String
    public var name: String
    public var policy: RoutingPolicy
    /// Offers to this team's agents become assignments at once.
    public var autoAccept: Bool
    public var overflow: Overflow?

    public init(id: String, name: String? = nil, policy: RoutingPolicy = .leastLoaded, autoAccept: Bool = false,
                overflow: Overflow? = nil) {
        self.id = id
        self.name = name ?? id
        self.policy = policy
        self.autoAccept = autoAccept
        self.overflow = overflow
    }
}

public struct AgentProfile: Sendable, Equatable {
    public var id: String
    public var role: AgentRole
    public var teams: Set<String>
    public var skills: Set<String>
    /// Languages as lower-case codes (`en`, `es`). An agent with none speaks only the
    /// default language the service configures.
    public var languages: Set<String>
    /// Concurrent conversations per channel; a channel missing here is one the agent does
    /// not work.
    public var capacity: [Channel: Int]
    public var presence: Presence

    public init(id: String, role: AgentRole = .agent, teams: Set<String> = [], skills: Set<String> = [],
                languages: Set<String> = ["en"], capacity: [Channel: Int], presence: Presence = .offline) {
        self.id = id
        self.role = role
        self.teams = teams
        self.skills = skills
        self.languages = languages
        self.capacity = capacity
        self.presence = presence
    }
}

/// What routing needs to know about a conversation waiting for an agent.
public struct RoutableConversation: Sendable, Equatable {
    public var id: String
    public var channel: Channel
    public var priority: Priority
    public var requiredSkills: Set<String>
    public var language: String?
    /// Team id, or nil for "any team" (every agent is a candidate).
    public var team: String?
    public var contactID: String
    /// Since when the patient has been waiting (the first unanswered inbound message).
    public var waitingSince: Int64
    /// First-response due time; nil lets the engine set it from the priority's target.
    public var firstResponseDue: Int64?
    /// The agent who last handled this contact, and when, for stickiness.
    public var previousAgent: String?
    public var previousAgentAt: Int64?
    /// What the store remembers of the SLA, so that a rebuilt engine neither breaches nor
    /// escalates a conversation twice: no agent reply yet, the breach already recorded, the
    /// team's overflow already open.
    public var awaitingFirstReply = true
    public var firstResponseBreached = false
    public var overflowOpen = false

    public init(id: String, channel: Channel, priority: Priority = .normal, requiredSkills: Set<String> = [],
                language: String? = nil, team: String? = nil, contactID: String, waitingSince: Int64,
                firstResponseDue: Int64? = nil, previousAgent: String? = nil, previousAgentAt: Int64? = nil) {
        self.id = id
        self.channel = channel
        self.priority = priority
        self.requiredSkills = requiredSkills
        self.language = language
        self.team = team
        self.contactID = contactID
        self.waitingSince = waitingSince
        self.firstResponseDue = firstResponseDue
        self.previousAgent = previousAgent
        self.previousAgentAt = previousAgentAt
    }
}

/// Durations are milliseconds, like every timestamp in Switchboard.
public struct RoutingSettings: Sendable, Equatable {
    /// How long an offer waits for the agent to accept before it goes to the next candidate.
    public var offerTimeout: Int64 = 30_000
    /// Offers an agent may let lapse in a row before they are set `away`.
    public var lapsesBeforeAway: Int = 3
    /// Online agents with no activity for this long are set `away`; nil never.
    public var idleAway: Int64? = 15 * 60_000
    /// A contact's previous agent is preferred if they handled them within this window; 0 disables.
    public var stickinessWindow: Int64 = 7 * 86_400_000
    /// An agent going offline hands back the conversations that still await a first reply.
    public var handBackOnOffline: Bool = true
    /// First-response targets per priority.
    public var firstResponse: [Priority: Int64] = [.emergency: 2 * 60_000, .urgent: 15 * 60_000,
                                                   .normal: 4 * 3_600_000, .low: 24 * 3_600_000]
    /// Next-response targets per priority (after the agent's reply, from the patient's next message).
    public var nextResponse: [Priority: Int64] = [.emergency: 5 * 60_000, .urgent: 30 * 60_000,
                                                  .normal: 8 * 3_600_000, .low: 48 * 3_600_000]
    /// A warning is raised once this fraction of the time to an SLA due time has passed.
    public var warningFraction: Double = 0.8
    /// Policy for conversations without a team (every agent is a candidate).
    public var defaultPolicy: RoutingPolicy = .leastLoaded
    /// A decision records at most this many passed-over candidates (and counts the rest).
    public var candidatesRecorded: Int = 50

    public init() {}
}

/// Why routing looked at a conversation.
public enum RoutingTrigger: String, Sendable, Codable {
    case arrived, declined, offerExpired = "offer_expired", agentAvailable = "agent_available",
         escalated, transferred, handedBack = "handed_back", offerWithdrawn = "offer_withdrawn", restored
}

/// One routing decision with its reasons: every candidate considered, why each one was
/// passed over, and which rule chose the winner. Stored verbatim in the routing log.
public struct RoutingDecision: Sendable, Equatable, Codable {
    public struct Candidate: Sendable, Equatable, Codable {
        public var agentID: String
        public var eligible: Bool
        /// Why the agent was passed over: empty for the winner; for an eligible runner-up,
        /// "not chosen by <rule>".
        public var reasons: [String]
        /// Load relative to capacity on the conversation's channel, 0…1.
        public var load: Double?
    }

    public enum Outcome: String, Sendable, Codable {
        case offered, assigned, queued
    }

    public var conversationID: String
    public var at: Int64
    public var trigger: RoutingTrigger
    public var outcome: Outcome
    public var agentID: String?
    /// The rule that chose (`sticky`, `least-loaded`, `round-robin`, `manual`, `transfer`,
    /// `claim`), or why nobody was chosen.
    public var rule: String
    public var candidates: [Candidate]
    public var candidatesOmitted: Int

    /// The JSON `Codable` writes and reads back (property names as keys, absent optionals
    /// left out), written directly: the routing log stores one per decision, and
    /// `JSONEncoder` was the larger part of applying a batch of routing effects.
    public var jsonText: String {
        var out = #"{"conversationID":"# + JSONText.quote(conversationID) + #","at":"# + String(at)
            + #","trigger":"# + JSONText.quote(trigger.rawValue) + #","outcome":"# + JSONText.quote(outcome.rawValue)
        if let agentID { out += #","agentID":"# + JSONText.quote(agentID) }
        out += #","rule":"# + JSONText.quote(rule) + #","candidates":["#
        for (index, candidate) in candidates.enumerated() {
            if index > 0 { out += "," }
            out += #"{"agentID":"# + JSONText.quote(candidate.agentID) + #","eligible":"# + (candidate.eligible ? "true" : "false")
                + #","reasons":["# + candidate.reasons.map { JSONText.quote($0) }.joined(separator: ",") + "]"
            // JSON has no NaN or infinity; a load is a ratio in 0…1, so one would be a bug
            // upstream: leave it out (as nil) rather than write text no parser reads.
            if let load = candidate.load, load.isFinite { out += #","load":"# + String(load) }
            out += "}"
        }
        return out + #"],"candidatesOmitted":"# + String(candidatesOmitted) + "}"
    }
}

public enum SLAKind: String, Sendable, Codable {
    case firstResponse = "first_response", nextResponse = "next_response"
}

/// What the engine asks its caller to make true (persist, notify, count).
public enum RoutingEffect: Sendable, Equatable {
    case offered(conversation: String, agent: String, expiresAt: Int64)
    /// An offer that ended without acceptance: `expired`, `declined`, `agent_away`, `agent_offline`, `closed`.
    case offerEnded(conversation: String, agent: String, reason: String)
    case assigned(conversation: String, agent: String, via: String)
    case queued(conversation: String)
    case unassigned(conversation: String, agent: String, reason: String)
    case presenceChanged(agent: String, presence: Presence, reason: String)
    case firstResponseDue(conversation: String, due: Int64)
    /// The patient wrote after the agent's reply: the next reply is due by then.
    case nextResponseDue(conversation: String, due: Int64)
    case slaWarning(conversation: String, kind: SLAKind, due: Int64)
    case slaBreached(conversation: String, kind: SLAKind, due: Int64)
    case escalated(conversation: String, priority: Priority, widenedTo: String?)
    case decided(RoutingDecision)
}

extension Priority {
    /// Higher is more urgent.
    public var rank: Int {
        switch self {
        case .low: 0
        case .normal: 1
        case .urgent: 2
        case .emergency: 3
        }
    }

    /// One step up, or itself at the top.
    public var raised: Priority {
        switch self {
        case .low: .normal
        case .normal: .urgent
        case .urgent, .emergency: .emergency
        }
    }
}
