import Foundation
import Logging
import ServiceLifecycle
import SwitchboardConfig
import SwitchboardCore
import SwitchboardRouting
import SwitchboardStore

/// Runs the routing engine against the store. The store is the source of truth: at start
/// the engine is rebuilt from it, and afterwards every change elsewhere in the daemon (a
/// message received, triaged, answered, a conversation claimed or resolved) reaches the
/// router as a signal row written in the same transaction, which it reconciles against
/// the stored conversation. Agents' own routing requests (presence, accept, decline,
/// transfer) come through this actor, which owns the engine.
///
/// On failure: a batch of effects the store cannot commit is logged and counted, and the
/// engine is rebuilt from the store before the next step — it never runs on a state the
/// store does not have.
public actor RouterService: Service, CustomStringConvertible {
    public nonisolated var description: String { "RouterService" }

    private var engine: RoutingEngine
    private let store: SwitchboardStore
    private let metrics: SwitchboardMetrics
    private let logger: Logger
    private let triageGates: Bool
    private let eventRetention: Int64
    private let wake = WakeSignal()
    private var cursor: Int64 = 0
    private var needsReload = true
    private var lastPrune: Int64 = 0
    private var observation: CommitObservation?

    public init(store: SwitchboardStore, configuration: SwitchboardConfiguration, metrics: SwitchboardMetrics, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.triageGates = configuration.triage.enabled
        self.eventRetention = configuration.events.retentionSeconds * 1000
        self.engine = RoutingEngine(settings: Self.settings(configuration.routing))
    }

    static func settings(_ routing: SwitchboardConfiguration.Routing) -> RoutingSettings {
        var settings = RoutingSettings()
        settings.offerTimeout = routing.offerTimeoutSeconds * 1000
        settings.lapsesBeforeAway = routing.lapsesBeforeAway
        settings.idleAway = routing.idleAwaySeconds > 0 ? routing.idleAwaySeconds * 1000 : nil
        settings.stickinessWindow = routing.stickinessWindowSeconds * 1000
        settings.handBackOnOffline = routing.handBackOnOffline
        settings.defaultPolicy = RoutingPolicy(rawValue: routing.defaultPolicy) ?? .leastLoaded
        settings.firstResponse = routing.firstResponseSeconds.mapValues { $0 * 1000 }
        settings.nextResponse = routing.nextResponseSeconds.mapValues { $0 * 1000 }
        settings.warningFraction = routing.slaWarningFraction
        return settings
    }

    public func run() async throws {
        let wake = self.wake
        observation = store.observeCommits(to: "routing_signals") { wake.signal() }
        defer { observation?.cancel() }
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                await step()
                let now = Timestamp.now()
                let deadline = engine.nextDeadline().map { max(10, min(1000, $0 - now)) } ?? 1000
                await wake.wait(timeout: .milliseconds(deadline))
            }
        } onGracefulShutdown: {
            wake.signal()
        }
    }

    /// One round: rebuild if needed, reconcile new signals, let time pass, prune.
    func step() async {
        do {
            try await exclusively {
                try await catchUp()
                try await persist(engine.tick(now: Timestamp.now()))
            }
            let now = Timestamp.now()
            if now - lastPrune > 3_600_000 {
                lastPrune = now
                try await store.pruneRoutingSignals(through: cursor)
                let pruned = try await store.pruneEvents(olderThan: now - eventRetention)
                if pruned > 0 { logger.info("events pruned", metadata: ["count": "\(pruned)"]) }
                // The audit chain's head, hourly: kept in the journal, it lets `switchboard
                // audit verify` detect rows cut off the end as well.
                if let head = try await store.auditHead() {
                    logger.info("audit head", metadata: ["audit.id": "\(head.id)", "audit.hash": "\(head.hash)"])
                }
            }
            metrics.routingQueue(depth: engine.queuedCount)
        } catch is CancellationError {
            return
        } catch {
            metrics.storeFailure()
            logger.error("router step failed; rebuilding from the store", metadata: ["error.type": "\(type(of: error))"])
            needsReload = true
            try? await Task.sleep(for: .seconds(1))
        }
    }

    // MARK: One change at a time

    private var locked = false
    private var lockWaiters: [CheckedContinuation<Void, Never>] = []

    /// Runs `body` alone: every "read the store, change the engine, save the effects" unit
    /// goes through here, first come first served, so that no other unit runs in the gaps
    /// while the store is awaited (the actor alone would let them interleave).
    private func exclusively<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        if locked {
            await withCheckedContinuation { lockWaiters.append($0) }
        } else {
            locked = true
        }
        defer {
            if lockWaiters.isEmpty { locked = false } else { lockWaiters.removeFirst().resume() }
        }
        return try await body()
    }

    /// Reconciles every signal written since the last one seen. Agents' requests call it
    /// first, so that they act on what the store already knows (a reply just sent, an agent
    /// just created).
    private func catchUp() async throws {
        try await ensureLoaded()
        while true {
            let signals = try await store.routingSignals(after: cursor, limit: 500)
            if signals.isEmpty { break }
            // One reconciliation per subject per batch, in first-signal order.
            var order: [String] = []
            var kinds: [String: Set<String>] = [:]
            for signal in signals {
                if kinds[signal.conversationID] == nil { order.append(signal.conversationID) }
                kinds[signal.conversationID, default: []].insert(signal.kind)
            }
            for id in order {
                if kinds[id] == ["agent"] {
                    try await refreshAgent(id)
                } else if kinds[id] == ["team"] {
                    if let team = try await store.team(id: id) { try await persist(engine.upsertTeam(team, now: Timestamp.now())) }
                } else {
                    try await reconcile(id, kinds: kinds[id] ?? [])
                }
            }
            cursor = signals.last?.id ?? cursor
            if signals.count < 500 { break }
        }
    }

    private func reload() async throws {
        let snapshot = try await store.loadRouting(triageGates: triageGates)
        let now = Timestamp.now()
        engine = RoutingEngine(settings: engine.settings)
        var effects: [RoutingEffect] = []
        for team in snapshot.teams { effects += engine.upsertTeam(team, now: now) }
        for agent in snapshot.agents { effects += engine.upsertAgent(agent, now: now) }
        var waiting: [RoutableRow] = []
        for row in snapshot.conversations {
            if let stage = row.stage {
                effects += engine.restore(row.conversation, stage: stage, nextResponseDue: nextDue(row), now: now)
            } else if row.readyForRouting {
                waiting.append(row)
            }
        }
        for row in waiting { effects += engine.enqueue(row.conversation, now: now) }
        cursor = snapshot.signalCursor
        needsReload = false
        try await persist(effects)
        logger.info("router loaded", metadata: ["agents": "\(snapshot.agents.count)", "teams": "\(snapshot.teams.count)",
                                                "conversations": "\(snapshot.conversations.count)", "queued": "\(engine.queuedCount)"])
    }

    private func nextDue(_ row: RoutableRow) -> Int64? {
        guard let since = row.patientWaitingSince else { return nil }
        return since + (engine.settings.nextResponse[row.conversation.priority] ?? 8 * 3_600_000)
    }

    /// Brings the engine's view of one conversation in line with the store's. `kinds` are
    /// the signals seen; the row, not their order, says what is true now.
    private func reconcile(_ id: String, kinds: Set<String>, followRefusals: Bool = true) async throws {
        let now = Timestamp.now()
        guard let row = try await store.routableConversation(id: id, triageGates: triageGates), !row.resolved else {
            try await persist(engine.release(id, now: now), followRefusals: followRefusals)
            return
        }
        var effects: [RoutingEffect] = []
        if case .assigned(let agent) = row.stage {
            // An assignment to an agent no longer active goes back to the queue (restore says so).
            try? await ensureAgent(agent)
            if engine.stage(of: id) != .assigned(agent: agent) {
                effects += engine.release(id, now: now)
                effects += engine.restore(row.conversation, stage: .assigned(agent: agent), nextResponseDue: nextDue(row), now: now)
            } else {
                // The reply first, then the patient's later message, whatever order the signals came in.
                if !row.awaitingFirstReply, kinds.contains("replied") || row.patientWaitingSince == nil {
                    engine.replied(id, now: now)
                }
                effects += engine.enqueue(row.conversation, now: now)
                if let since = row.patientWaitingSince, !row.awaitingFirstReply {
                    effects += engine.patientMessage(id, at: since)
                }
            }
        } else {
            if case .assigned = engine.stage(of: id) { effects += engine.release(id, now: now) }
            if row.readyForRouting { effects += engine.enqueue(row.conversation, now: now) }
        }
        try await persist(effects, followRefusals: followRefusals)
    }

    /// Saves a batch of effects. Offers or assignments the store refused (the conversation
    /// changed meanwhile) are reconciled at once, so the engine never keeps what the store
    /// does not have.
    private func persist(_ effects: [RoutingEffect], actor: String? = nil, followRefusals: Bool = true) async throws {
        guard !effects.isEmpty else { return }
        let refused: Set<String>
        do {
            refused = try await store.applyRouting(effects, actor: actor)
        } catch {
            needsReload = true
            throw error
        }
        for effect in effects {
            switch effect {
            case .decided(let decision):
                metrics.routingDecision(outcome: decision.outcome.rawValue)
                logger.debug("routing decision", metadata: [
                    "conversation.id": "\(decision.conversationID)", "routing.trigger": "\(decision.trigger.rawValue)",
                    "routing.outcome": "\(decision.outcome.rawValue)", "routing.rule": "\(decision.rule)",
                    "agent.id": "\(decision.agentID ?? "-")",
                ])
            case .offerEnded(_, _, let reason): metrics.offerEnded(reason: reason)
            case .slaBreached(_, let kind, _): metrics.slaBreached(kind.rawValue)
            case .assigned(let conversation, _, let via) where !refused.contains(conversation): metrics.assigned(via: via)
            default: break
            }
        }
        guard followRefusals else {
            if !refused.isEmpty { needsReload = true }  // still out of step after one retry: rebuild
            return
        }
        for id in refused.sorted() {
            logger.info("routing effect refused by the store; reconciling", metadata: ["conversation.id": "\(id)"])
            try await reconcile(id, kinds: [], followRefusals: false)
        }
    }

    // MARK: Agents' requests

    public func setPresence(agent id: String, to presence: Presence, by actor: String) async throws {
        try await exclusively {
            try await catchUp()
            try await ensureAgent(id)
            try await persist(engine.setPresence(agent: id, to: presence, reason: actor == id ? "set by the agent" : "set by a supervisor",
                                                 now: Timestamp.now()), actor: actor)
        }
    }

    public func accept(_ conversationID: String, agent: String) async throws {
        try await exclusively {
            try await catchUp()
            try await persist(try engine.accept(conversationID, agent: agent, now: Timestamp.now()), actor: agent)
        }
    }

    public func decline(_ conversationID: String, agent: String) async throws {
        try await exclusively {
            try await catchUp()
            try await persist(try engine.decline(conversationID, agent: agent, now: Timestamp.now()), actor: agent)
        }
    }

    public func transfer(_ conversationID: String, toAgent: String?, toTeam: String?, by actor: String) async throws {
        try await exclusively {
            try await catchUp()
            if let toAgent { try await ensureAgent(toAgent) }
            let now = Timestamp.now()
            if engine.stage(of: conversationID) == nil,
               let row = try await store.routableConversation(id: conversationID, triageGates: false), !row.resolved {
                // Not routed yet (waiting for triage): routing takes it from here.
                if let stage = row.stage {
                    try await persist(engine.restore(row.conversation, stage: stage, now: now))
                } else {
                    try await persist(engine.enqueue(row.conversation, now: now))
                }
            }
            try await persist(try engine.transfer(conversationID, toAgent: toAgent, toTeam: toTeam, by: actor, now: now), actor: actor)
        }
    }

    /// An agent's attributes changed in the store (or the agent was deactivated).
    public func agentChanged(_ id: String) async throws {
        try await exclusively { try await catchUp() }
    }

    private func refreshAgent(_ id: String) async throws {
        let now = Timestamp.now()
        if let profile = try await store.agentProfile(id: id) {
            var profile = profile
            profile.presence = engine.agent(id)?.profile.presence ?? profile.presence
            try await persist(engine.upsertAgent(profile, now: now))
        } else {
            try await persist(engine.removeAgent(id, now: now))
        }
    }

    public func teamChanged(_ team: TeamSettings) async throws {
        try await exclusively {
            try await catchUp()
            try await persist(engine.upsertTeam(team, now: Timestamp.now()))
        }
    }

    /// New `routing.*` settings (SIGHUP): they apply to the next decisions; offers already
    /// made keep their expiry.
    public func updateSettings(_ routing: SwitchboardConfiguration.Routing) {
        engine.settings = Self.settings(routing)
    }

    /// Activity that keeps an agent from being set away for idleness.
    public func touch(agent id: String) {
        engine.touch(agent: id, now: Timestamp.now())
    }

    public func agentState(_ id: String) -> AgentRoutingState? { engine.agent(id) }

    public func waitEstimate(for conversationID: String) -> (position: Int, estimatedWait: Int64?)? {
        engine.waitEstimate(for: conversationID)
    }

    /// Loads an agent created since the router loaded (the command line writes to the store
    /// directly).
    private func ensureAgent(_ id: String) async throws {
        guard engine.agent(id) == nil else { return }
        guard let profile = try await store.agentProfile(id: id) else { throw RoutingError.unknownAgent }
        try await persist(engine.upsertAgent(profile, now: Timestamp.now()))
    }

    /// Rebuilds the engine when a failure left it out of step with the store. Runs inside
    /// `exclusively`, so no other unit sees a half-built engine.
    private func ensureLoaded() async throws {
        if needsReload { try await reload() }
    }
}
