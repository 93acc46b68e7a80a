import Testing
@testable import SwitchboardRouting
import SwitchboardCore

/// The simulation's epoch: every test's clock starts here (milliseconds) and moves only when the test moves it.
let t0: Int64 = 1_000_000

/// A tiny linear congruential generator (Knuth's MMIX constants): a fixed seed replays the same run everywhere.
struct SeededGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }

    /// A number in 0..<bound.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// A deterministic simulation of the routing engine: a manual clock (`now`, milliseconds) that each test
/// advances by hand, no sleeps, no real time, no randomness beyond a seeded generator.
@Suite struct RoutingSimulationTests {
    // MARK: Helpers

    /// The default settings without the idle timeout, so that long simulated stretches keep agents online.
    func quietSettings() -> RoutingSettings {
        var settings = RoutingSettings()
        settings.idleAway = nil
        return settings
    }

    func profile(_ id: String, teams: Set<String> = [], skills: Set<String> = [], languages: Set<String> = ["en"],
                 capacity: [Channel: Int] = [.chat: 2], presence: Presence = .online) -> AgentProfile {
        AgentProfile(id: id, teams: teams, skills: skills, languages: languages, capacity: capacity, presence: presence)
    }

    func conv(_ id: String, channel: Channel = .chat, priority: Priority = .normal, skills: Set<String> = [],
              language: String? = nil, team: String? = nil, since: Int64 = t0, due: Int64? = nil,
              previousAgent: String? = nil, previousAgentAt: Int64? = nil) -> RoutableConversation {
        RoutableConversation(id: id, channel: channel, priority: priority, requiredSkills: skills, language: language,
                             team: team, contactID: "contact-\(id)", waitingSince: since, firstResponseDue: due,
                             previousAgent: previousAgent, previousAgentAt: previousAgentAt)
    }

    /// Conversations the store already has assigned to `agentID` (rebuilt as at start): load without offers,
    /// without touching the agent's last assignment time, and without SLA clocks.
    func hold(_ engine: inout RoutingEngine, _ agentID: String, _ ids: [String], channel: Channel = .chat, now: Int64) {
        for id in ids {
            var held = conv(id, channel: channel, since: now)
            held.awaitingFirstReply = false
            _ = engine.restore(held, stage: .assigned(agent: agentID), now: now)
        }
    }

    /// "conversation→agent" for every offer, in order.
    func offers(_ effects: [RoutingEffect]) -> [String] {
        var result: [String] = []
        for case .offered(let conversation, let agent, _) in effects { result.append("\(conversation)→\(agent)") }
        return result
    }

    /// "conversation→agent via how" for every assignment, in order.
    func assignments(_ effects: [RoutingEffect]) -> [String] {
        var result: [String] = []
        for case .assigned(let conversation, let agent, let via) in effects { result.append("\(conversation)→\(agent) via \(via)") }
        return result
    }

    /// "conversation→agent: reason" for every offer that ended unaccepted.
    func ended(_ effects: [RoutingEffect]) -> [String] {
        var result: [String] = []
        for case .offerEnded(let conversation, let agent, let reason) in effects { result.append("\(conversation)→\(agent): \(reason)") }
        return result
    }

    /// "conversation→agent: reason" for every assignment taken back.
    func unassignments(_ effects: [RoutingEffect]) -> [String] {
        var result: [String] = []
        for case .unassigned(let conversation, let agent, let reason) in effects { result.append("\(conversation)→\(agent): \(reason)") }
        return result
    }

    func decisions(_ effects: [RoutingEffect]) -> [RoutingDecision] {
        var result: [RoutingDecision] = []
        for case .decided(let decision) in effects { result.append(decision) }
        return result
    }

    /// Why the decision passed `agentID` over (empty when the agent is not among its candidates).
    func reasons(_ decision: RoutingDecision?, _ agentID: String) -> [String] {
        decision?.candidates.first { $0.agentID == agentID }?.reasons ?? []
    }

    func candidate(_ decision: RoutingDecision, _ agentID: String) -> RoutingDecision.Candidate? {
        decision.candidates.first { $0.agentID == agentID }
    }

    /// Whether any of the reasons contains `text`.
    func mentions(_ reasons: [String], _ text: String) -> Bool {
        reasons.contains { $0.contains(text) }
    }

    func offeredAgent(_ stage: RoutingStage?) -> String? {
        guard let stage, case .offered(let agent, _) = stage else { return nil }
        return agent
    }

    func assignedAgent(_ stage: RoutingStage?) -> String? {
        guard let stage, case .assigned(let agent) = stage else { return nil }
        return agent
    }

    func routingError(_ body: () throws -> Void) -> RoutingError? {
        do {
            try body()
        } catch let error as RoutingError {
            return error
        } catch {
            return nil
        }
        return nil
    }

    // MARK: 1. Least loaded

    @Test func leastLoadedOffersTheAgentWithTheLowestLoadRelativeToCapacityOnTheChannel() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let now = t0
        _ = engine.upsertAgent(profile("a", capacity: [.chat: 4]), now: now)
        _ = engine.upsertAgent(profile("b", capacity: [.chat: 2]), now: now)
        _ = engine.upsertAgent(profile("c", capacity: [.chat: 3, .sms: 1]), now: now)
        // Chat: a 2/4 = 0.5, b 1/2 = 0.5, c 1/3 ≈ 0.33 (c is also full on sms, which must not count).
        hold(&engine, "a", ["held-a1", "held-a2"], now: now)
        hold(&engine, "b", ["held-b1"], now: now)
        hold(&engine, "c", ["held-c1"], now: now)
        hold(&engine, "c", ["held-c2"], channel: .sms, now: now)

        let first = engine.enqueue(conv("c1"), now: now)
        #expect(offers(first) == ["c1→c"])
        let decision = try #require(decisions(first).first)
        #expect(decision.outcome == .offered && decision.agentID == "c" && decision.rule == "least-loaded")
        #expect(decision.candidates.first?.agentID == "c")
        #expect(Set(decision.candidates.map(\.agentID)) == ["a", "b", "c"])
        #expect(decision.candidates.allSatisfy { $0.eligible })
        #expect(candidate(decision, "a")?.load == 0.5)
        #expect(reasons(decision, "b") == ["not chosen by least-loaded"])
        #expect(engine.agent("c")?.load[.chat] == 2)

        // Now a 0.5, b 0.5, c ≈ 0.67: a and b tie, neither ever assigned → the id.
        let second = engine.enqueue(conv("c2"), now: now)
        #expect(offers(second) == ["c2→a"])
        // Now a 0.75, b 0.5, c ≈ 0.67.
        let third = engine.enqueue(conv("c3"), now: now)
        #expect(offers(third) == ["c3→b"])
    }

    @Test func leastLoadedTiesGoToTheAgentIdleLongestThenTheID() throws {
        var engine = RoutingEngine(settings: quietSettings())
        var now = t0
        for id in ["a", "b", "c"] { _ = engine.upsertAgent(profile(id), now: now) }

        // All equal and never assigned: the id decides.
        var effects = engine.enqueue(conv("c1", since: now), now: now)
        #expect(offers(effects) == ["c1→a"])
        _ = try engine.accept("c1", agent: "a", now: now)
        #expect(engine.agent("a")?.lastAssignedAt == t0)

        now += 1_000
        // a is loaded; b and c tie (never assigned): the id again.
        effects = engine.enqueue(conv("c2", since: now), now: now)
        #expect(offers(effects) == ["c2→b"])
        _ = try engine.accept("c2", agent: "b", now: now)

        now += 1_000
        _ = engine.release("c1", now: now)
        _ = engine.release("c2", now: now)
        // Everyone idle again; c was never assigned, so c has been idle longest (even though a sorts first).
        effects = engine.enqueue(conv("c3", since: now), now: now)
        #expect(offers(effects) == ["c3→c"])
        _ = try engine.accept("c3", agent: "c", now: now)

        now += 1_000
        _ = engine.release("c3", now: now)
        // Last assignments: a t0, b t0+1s, c t0+2s → a has been idle longest.
        effects = engine.enqueue(conv("c4", since: now), now: now)
        #expect(offers(effects) == ["c4→a"])
    }

    // MARK: 2. Round robin

    @Test func roundRobinRotatesThroughTheEligibleAgentsInIDOrderAndWraps() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let now = t0
        _ = engine.upsertTeam(TeamSettings(id: "rr", policy: .roundRobin), now: now)
        _ = engine.upsertAgent(profile("a", teams: ["rr"], capacity: [.chat: 10]), now: now)
        _ = engine.upsertAgent(profile("b", teams: ["rr"], capacity: [.chat: 2]), now: now)
        _ = engine.upsertAgent(profile("c", teams: ["rr"], capacity: [.chat: 5]), now: now)
        _ = engine.upsertAgent(profile("z", capacity: [.chat: 10]), now: now) // not in the team
        // a is the busiest by far: least-loaded would never start with a, round-robin ignores load.
        hold(&engine, "a", (1...5).map { "held-a\($0)" }, now: now)

        var offered: [String] = []
        for index in 1...5 {
            let effects = engine.enqueue(conv("c\(index)", team: "rr"), now: now)
            offered += offers(effects)
            #expect(decisions(effects).first?.rule == "round-robin")
        }
        #expect(offered == ["c1→a", "c2→b", "c3→c", "c4→a", "c5→b"])

        // b steps away: the rotation skips b and wraps from c to a.
        _ = engine.setPresence(agent: "b", to: .away, reason: "break", now: now)
        offered = []
        for index in 6...8 { offered += offers(engine.enqueue(conv("c\(index)", team: "rr"), now: now)) }
        #expect(offered == ["c6→c", "c7→a", "c8→c"])
        #expect(engine.agent("z")?.load[.chat] == nil)
    }

    // MARK: 3. Manual

    @Test func manualPolicyOffersNothingAndAgentsClaim() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let now = t0
        _ = engine.upsertTeam(TeamSettings(id: "desk", policy: .manual), now: now)
        _ = engine.upsertAgent(profile("a", teams: ["desk"]), now: now)
        _ = engine.upsertAgent(profile("b", teams: ["desk"]), now: now)
        _ = engine.upsertAgent(profile("c", teams: ["desk"], presence: .offline), now: now)

        let effects = engine.enqueue(conv("c1", team: "desk"), now: now)
        #expect(offers(effects).isEmpty && assignments(effects).isEmpty)
        let decision = try #require(decisions(effects).first)
        #expect(decision.outcome == .queued && decision.agentID == nil)
        #expect(decision.rule.hasPrefix("manual"))
        #expect(effects.contains(.queued(conversation: "c1")))
        #expect(engine.stage(of: "c1") == .queued)
        // An agent coming online is not pushed anything either.
        let online = engine.setPresence(agent: "c", to: .online, reason: "login", now: now)
        #expect(offers(online).isEmpty && assignments(online).isEmpty)

        let claimed = try engine.claim("c1", agent: "b", now: now)
        #expect(assignments(claimed) == ["c1→b via claimed"])
        #expect(decisions(claimed).first?.rule == "claim")
        #expect(engine.stage(of: "c1") == .assigned(agent: "b"))
        #expect(engine.queuedConversationIDs.isEmpty)
        #expect(engine.agent("b")?.load[.chat] == 1)

        let conflict = routingError { _ = try engine.claim("c1", agent: "a", now: now) }
        #expect(conflict == .assignedToAnother)
        #expect(engine.stage(of: "c1") == .assigned(agent: "b"))
        #expect(engine.agent("a")?.load[.chat] ?? 0 == 0)
        // Claiming one's own conversation changes nothing.
        let again = try engine.claim("c1", agent: "b", now: now)
        #expect(again.isEmpty)
        #expect(engine.agent("b")?.load[.chat] == 1)
    }

    // MARK: 4. Stickiness

    @Test func stickinessPrefersThePreviousAgentWithinTheWindowWhenEligible() throws {
        var settings = quietSettings()
        settings.stickinessWindow = 600_000
        var engine = RoutingEngine(settings: settings)
        let now = t0
        _ = engine.upsertAgent(profile("a", capacity: [.chat: 4]), now: now)
        _ = engine.upsertAgent(profile("b", capacity: [.chat: 4]), now: now)
        _ = engine.upsertAgent(profile("c", capacity: [.chat: 4], presence: .offline), now: now)
        hold(&engine, "a", ["held-a1", "held-a2"], now: now) // a 0.5, b 0

        // Within the window: a, although b is less loaded.
        let sticky = engine.enqueue(conv("c1", previousAgent: "a", previousAgentAt: now - 300_000), now: now)
        #expect(offers(sticky) == ["c1→a"])
        #expect(decisions(sticky).first?.rule == "sticky")
        #expect(reasons(decisions(sticky).first, "b") == ["not chosen by sticky"])

        // Outside the window (a is still eligible, 3/4): least loaded decides.
        let stale = engine.enqueue(conv("c2", previousAgent: "a", previousAgentAt: now - 900_000), now: now)
        #expect(offers(stale) == ["c2→b"])
        #expect(decisions(stale).first?.rule == "least-loaded")

        // The previous agent is offline: elsewhere, and not by stickiness.
        let offline = engine.enqueue(conv("c3", previousAgent: "c", previousAgentAt: now - 1_000), now: now)
        #expect(offers(offline) == ["c3→b"])
        #expect(decisions(offline).first?.rule == "least-loaded")
        #expect(reasons(decisions(offline).first, "c").contains("offline"))
    }

    // MARK: 5. Eligibility

    @Test func eligibilityChecksSkillsLanguageCapacityAndPresenceAndSaysWhy() throws {
        var engine = RoutingEngine(settings: quietSettings())
        var now = t0
        let both: Set<String> = ["en", "es"]
        _ = engine.upsertAgent(profile("a-noskill", languages: both, capacity: [.sms: 1, .chat: 1]), now: now)
        _ = engine.upsertAgent(profile("b-nolang", skills: ["insulin"], capacity: [.sms: 1, .chat: 1]), now: now)
        _ = engine.upsertAgent(profile("c-off", skills: ["insulin"], languages: both, capacity: [.sms: 1, .chat: 1],
                                       presence: .offline), now: now)
        _ = engine.upsertAgent(profile("d-away", skills: ["insulin"], languages: both, capacity: [.sms: 1, .chat: 1],
                                       presence: .away), now: now)
        _ = engine.upsertAgent(profile("e-email", skills: ["insulin"], languages: both, capacity: [.email: 3]), now: now)
        _ = engine.upsertAgent(profile("f-ok", skills: ["insulin"], languages: both, capacity: [.sms: 1, .chat: 1]), now: now)

        let first = engine.enqueue(conv("s1", channel: .sms, skills: ["insulin"], language: "ES"), now: now)
        #expect(offers(first) == ["s1→f-ok"])
        #expect(engine.conversation("s1")?.language == "es")
        let decision = try #require(decisions(first).first)
        #expect(mentions(reasons(decision, "a-noskill"), "missing skill insulin"))
        #expect(mentions(reasons(decision, "b-nolang"), "does not speak es"))
        #expect(mentions(reasons(decision, "c-off"), "offline"))
        #expect(mentions(reasons(decision, "d-away"), "away"))
        #expect(mentions(reasons(decision, "e-email"), "no sms capacity"))
        for passed in ["a-noskill", "b-nolang", "c-off", "d-away", "e-email"] {
            #expect(candidate(decision, passed)?.eligible == false, "\(passed)")
        }
        now += 1_000
        _ = try engine.accept("s1", agent: "f-ok", now: now)

        // f-ok is full on sms: the second sms conversation waits, and the log says why.
        let second = engine.enqueue(conv("s2", channel: .sms, skills: ["insulin"], language: "es"), now: now)
        #expect(offers(second).isEmpty)
        #expect(engine.stage(of: "s2") == .queued)
        let waiting = try #require(decisions(second).first)
        #expect(waiting.outcome == .queued && waiting.rule == "nobody eligible")
        #expect(mentions(reasons(waiting, "f-ok"), "capacity") && mentions(reasons(waiting, "f-ok"), "1/1"))

        // …but its chat capacity is free (and the away/offline agents, first by id, still get nothing).
        let chat = engine.enqueue(conv("h1", channel: .chat, skills: ["insulin"], language: "es"), now: now)
        #expect(offers(chat) == ["h1→f-ok"])
        for idle in ["c-off", "d-away"] { #expect(engine.agent(idle)?.load.values.reduce(0, +) == 0) }
    }

    // MARK: 6. Offer timeout, lapses, accept, decline

    @Test func anUnacceptedOfferExpiresAndMovesToTheNextCandidate() throws {
        var engine = RoutingEngine(settings: quietSettings())
        var now = t0
        for id in ["a", "b", "c"] { _ = engine.upsertAgent(profile(id, capacity: [.chat: 5]), now: now) }
        var history: [RoutingEffect] = []

        var effects = engine.enqueue(conv("c1"), now: now)
        history += effects
        #expect(effects.contains(.offered(conversation: "c1", agent: "a", expiresAt: t0 + 30_000)))
        effects = engine.tick(now: t0 + 29_999)
        #expect(effects.isEmpty)
        #expect(offeredAgent(engine.stage(of: "c1")) == "a")

        now = t0 + 30_000
        effects = engine.tick(now: now)
        history += effects
        #expect(ended(effects) == ["c1→a: expired"])
        #expect(effects.contains(.offered(conversation: "c1", agent: "b", expiresAt: t0 + 60_000)))
        let decision = try #require(decisions(effects).first)
        #expect(decision.trigger == .offerExpired)
        #expect(reasons(decision, "a").contains("let the offer lapse"))
        #expect(engine.agent("a")?.lapsedOffers == 1)
        #expect(engine.agent("a")?.load[.chat] ?? 0 == 0)

        now += 30_000
        effects = engine.tick(now: now)
        history += effects
        #expect(ended(effects) == ["c1→b: expired"] && offers(effects) == ["c1→c"])

        now += 30_000
        effects = engine.tick(now: now)
        history += effects
        #expect(ended(effects) == ["c1→c: expired"] && offers(effects).isEmpty)
        #expect(engine.stage(of: "c1") == .queued)
        let nobody = try #require(decisions(effects).first)
        #expect(nobody.outcome == .queued && nobody.rule == "nobody eligible")
        for id in ["a", "b", "c"] { #expect(reasons(nobody, id).contains("let the offer lapse"), "\(id)") }
        // Nobody who let it lapse was offered it a second time.
        #expect(offers(history) == ["c1→a", "c1→b", "c1→c"])

        // A newcomer is not excluded.
        effects = engine.upsertAgent(profile("d"), now: now)
        #expect(offers(effects) == ["c1→d"])
    }

    @Test func lapsesInARowSetTheAgentAwayAndAnAcceptResetsTheCount() throws {
        var engine = RoutingEngine(settings: quietSettings()) // lapsesBeforeAway = 3
        var now = t0
        _ = engine.upsertAgent(profile("solo", capacity: [.chat: 1]), now: now)

        for (round, id) in ["x1", "x2"].enumerated() {
            let offered = engine.enqueue(conv(id, since: now), now: now)
            #expect(offers(offered) == ["\(id)→solo"])
            now += 30_000
            let ticked = engine.tick(now: now)
            #expect(ended(ticked) == ["\(id)→solo: expired"])
            #expect(engine.agent("solo")?.lapsedOffers == round + 1)
            #expect(engine.agent("solo")?.profile.presence == .online)
        }

        // Accepting within the timeout assigns and forgets the lapses.
        let offeredX3 = engine.enqueue(conv("x3", since: now), now: now)
        #expect(offers(offeredX3) == ["x3→solo"])
        now += 29_999
        let accepted = try engine.accept("x3", agent: "solo", now: now)
        #expect(accepted == [.assigned(conversation: "x3", agent: "solo", via: "accepted")])
        #expect(engine.agent("solo")?.lapsedOffers == 0)
        #expect(engine.stage(of: "x3") == .assigned(agent: "solo"))
        now += 1
        // x1 and x2 wait, but solo let both lapse: freeing solo offers neither back.
        let released = engine.release("x3", now: now)
        #expect(offers(released).isEmpty)

        // Two more lapses: still online (four in total, but only two in a row).
        for (round, id) in ["y1", "y2"].enumerated() {
            let offered = engine.enqueue(conv(id, since: now), now: now)
            #expect(offers(offered) == ["\(id)→solo"])
            now += 30_000
            _ = engine.tick(now: now)
            #expect(engine.agent("solo")?.lapsedOffers == round + 1)
            #expect(engine.agent("solo")?.profile.presence == .online)
        }
        // The third in a row sets the agent away.
        let offeredY3 = engine.enqueue(conv("y3", since: now), now: now)
        #expect(offers(offeredY3) == ["y3→solo"])
        now += 30_000
        let third = engine.tick(now: now)
        #expect(ended(third) == ["y3→solo: expired"])
        #expect(third.contains(.presenceChanged(agent: "solo", presence: .away, reason: "let 3 offers lapse")))
        #expect(engine.agent("solo")?.profile.presence == .away)
        // Away agents get no offers.
        let later = engine.enqueue(conv("z1", since: now), now: now)
        #expect(offers(later).isEmpty)
        #expect(reasons(decisions(later).first, "solo").contains("away"))
    }

    @Test func aDeclineReoffersToAnotherAgent() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let now = t0
        _ = engine.upsertAgent(profile("a"), now: now)
        _ = engine.upsertAgent(profile("b"), now: now)

        let arrived = engine.enqueue(conv("d1"), now: now)
        #expect(offers(arrived) == ["d1→a"])
        let wrongAgent = routingError { _ = try engine.accept("d1", agent: "b", now: now) }
        #expect(wrongAgent == .noPendingOffer)

        let declined = try engine.decline("d1", agent: "a", now: now)
        #expect(ended(declined) == ["d1→a: declined"])
        #expect(offers(declined) == ["d1→b"])
        #expect(decisions(declined).first?.trigger == .declined)
        #expect(engine.agent("a")?.lapsedOffers == 0)
        #expect(engine.agent("a")?.load[.chat] ?? 0 == 0)
        let twice = routingError { _ = try engine.decline("d1", agent: "a", now: now) }
        #expect(twice == .noPendingOffer)

        let again = try engine.decline("d1", agent: "b", now: now)
        #expect(offers(again).isEmpty)
        #expect(engine.stage(of: "d1") == .queued)
        let decision = try #require(decisions(again).first)
        #expect(reasons(decision, "a").contains("declined the offer"))
        #expect(reasons(decision, "b").contains("declined the offer"))
    }

    // MARK: 7. Auto-accept

    @Test func autoAcceptTeamsAssignWithoutAnOffer() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let now = t0
        _ = engine.upsertTeam(TeamSettings(id: "auto", autoAccept: true), now: now)
        _ = engine.upsertAgent(profile("a", teams: ["auto"], capacity: [.chat: 1]), now: now)
        _ = engine.upsertAgent(profile("b", teams: ["auto"], capacity: [.chat: 1], presence: .offline), now: now)

        let effects = engine.enqueue(conv("c1", team: "auto"), now: now)
        #expect(offers(effects).isEmpty)
        #expect(assignments(effects) == ["c1→a via auto-accept"])
        let decision = try #require(decisions(effects).first)
        #expect(decision.outcome == .assigned && decision.agentID == "a")
        #expect(engine.stage(of: "c1") == .assigned(agent: "a"))
        #expect(engine.agent("a")?.load[.chat] == 1)
        #expect(engine.agent("a")?.lastAssignedAt == now)

        // a is full; c2 waits, and goes straight to b when b logs in.
        let arrived = engine.enqueue(conv("c2", team: "auto"), now: now)
        #expect(assignments(arrived).isEmpty)
        let online = engine.setPresence(agent: "b", to: .online, reason: "login", now: now + 1_000)
        #expect(offers(online).isEmpty)
        #expect(assignments(online) == ["c2→b via auto-accept"])
    }

    // MARK: 8. Backlog drain

    @Test func freedCapacityDrainsTheBacklogAtOnceInDispatchOrder() throws {
        var engine = RoutingEngine(settings: quietSettings())
        var now = t0
        _ = engine.upsertAgent(profile("a", capacity: [.chat: 1]), now: now)
        _ = engine.upsertAgent(profile("b", capacity: [.chat: 1], presence: .offline), now: now)
        let firstOffer = engine.enqueue(conv("first"), now: now)
        #expect(offers(firstOffer) == ["first→a"])
        _ = try engine.accept("first", agent: "a", now: now)

        now += 100
        let due = t0 + 5_000_000
        let waiting = [
            conv("low-oldest", priority: .low, since: t0 - 500_000),
            conv("normal-late", since: t0 + 15, due: due),
            conv("urgent", priority: .urgent, since: t0 + 20, due: due + 10_000),
            conv("normal-early-due", since: t0 + 30, due: due - 1_000),
            conv("normal-older", since: t0 + 5, due: due),
        ]
        for conversation in waiting {
            let arrival = engine.enqueue(conversation, now: now)
            #expect(offers(arrival).isEmpty)
        }
        #expect(engine.queuedConversationIDs == ["urgent", "normal-early-due", "normal-older", "normal-late", "low-oldest"])

        var current = "first"
        for next in ["urgent", "normal-early-due", "normal-older"] {
            now += 1_000
            // No tick: the release itself hands the freed slot to the head of the queue.
            let released = engine.release(current, now: now)
            #expect(offers(released) == ["\(next)→a"])
            _ = try engine.accept(next, agent: "a", now: now)
            current = next
        }

        // An agent coming online takes the head of what is left, at once.
        now += 1_000
        let online = engine.setPresence(agent: "b", to: .online, reason: "login", now: now)
        #expect(online.first == .presenceChanged(agent: "b", presence: .online, reason: "login"))
        #expect(offers(online) == ["normal-late→b"])
        #expect(engine.queuedConversationIDs == ["low-oldest"])
    }

    // MARK: 9. Priority order

    @Test func theQueueIsOrderedByPriorityThenDueTimeThenAge() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let now = t0
        // Arrival order scrambled; due times chosen so that sorting by due alone would be wrong.
        _ = engine.enqueue(conv("n1"), now: now) // due t0 + 4 h
        _ = engine.enqueue(conv("l1", priority: .low, due: t0 + 1), now: now)
        _ = engine.enqueue(conv("e1", priority: .emergency, since: t0 + 50, due: t0 + 50_000_000), now: now)
        _ = engine.enqueue(conv("u1", priority: .urgent, due: t0 + 40_000_000), now: now)
        _ = engine.enqueue(conv("n2", due: t0 + 1_000), now: now)
        _ = engine.enqueue(conv("n3", since: t0 - 10, due: t0 + 14_400_000), now: now) // n1's due, waiting longer
        #expect(engine.queuedConversationIDs == ["e1", "u1", "n2", "n3", "n1", "l1"])
        #expect(engine.queuedCount == 6)

        // Triage raises n1 to urgent: it moves up, and its due time tightens to the urgent target.
        let raised = engine.enqueue(conv("n1", priority: .urgent), now: now)
        #expect(raised.contains(.firstResponseDue(conversation: "n1", due: t0 + 900_000)))
        #expect(engine.firstResponseDue(of: "n1") == t0 + 900_000)
        #expect(engine.queuedConversationIDs == ["e1", "n1", "u1", "n2", "n3", "l1"])
    }

    // MARK: 10. Offline hand-back

    /// Agent a holds c1 (replied to) and c2 (not yet); b is online too when `secondAgentOnline`.
    func handBackScenario(_ settings: RoutingSettings, secondAgentOnline: Bool) throws -> RoutingEngine {
        var engine = RoutingEngine(settings: settings)
        _ = engine.upsertAgent(profile("a"), now: t0)
        _ = engine.upsertAgent(profile("b", presence: .offline), now: t0)
        _ = engine.enqueue(conv("c1"), now: t0)
        _ = try engine.accept("c1", agent: "a", now: t0)
        _ = engine.enqueue(conv("c2"), now: t0)
        _ = try engine.accept("c2", agent: "a", now: t0)
        engine.replied("c1", now: t0 + 1_000)
        if secondAgentOnline { _ = engine.setPresence(agent: "b", to: .online, reason: "login", now: t0 + 1_000) }
        return engine
    }

    @Test func goingOfflineHandsBackOnlyTheConversationsAwaitingAFirstReply() throws {
        var engine = try handBackScenario(quietSettings(), secondAgentOnline: true)
        #expect(engine.stage(of: "c1") == .assigned(agent: "a") && engine.stage(of: "c2") == .assigned(agent: "a"))
        let effects = engine.setPresence(agent: "a", to: .offline, reason: "signed out", now: t0 + 2_000)
        #expect(effects.first == .presenceChanged(agent: "a", presence: .offline, reason: "signed out"))
        #expect(unassignments(effects) == ["c2→a: agent offline before the first reply"])
        #expect(offers(effects) == ["c2→b"])
        #expect(decisions(effects).first?.trigger == .handedBack)
        #expect(engine.stage(of: "c1") == .assigned(agent: "a"))
        #expect(engine.agent("a")?.load[.chat] == 1)

        // Nobody else online: it waits in the queue.
        var alone = try handBackScenario(quietSettings(), secondAgentOnline: false)
        let waiting = alone.setPresence(agent: "a", to: .offline, reason: "signed out", now: t0 + 2_000)
        #expect(unassignments(waiting) == ["c2→a: agent offline before the first reply"])
        #expect(offers(waiting).isEmpty)
        #expect(alone.queuedConversationIDs == ["c2"])
        #expect(alone.stage(of: "c1") == .assigned(agent: "a"))
    }

    @Test func awayOrHandBackDisabledKeepsEveryAssignment() throws {
        var settings = quietSettings()
        settings.handBackOnOffline = false
        var engine = try handBackScenario(settings, secondAgentOnline: true)
        let effects = engine.setPresence(agent: "a", to: .offline, reason: "signed out", now: t0 + 2_000)
        #expect(effects == [.presenceChanged(agent: "a", presence: .offline, reason: "signed out")])
        #expect(engine.stage(of: "c2") == .assigned(agent: "a"))
        #expect(engine.agent("a")?.load[.chat] == 2)

        var away = try handBackScenario(quietSettings(), secondAgentOnline: true)
        let stepped = away.setPresence(agent: "a", to: .away, reason: "break", now: t0 + 2_000)
        #expect(stepped == [.presenceChanged(agent: "a", presence: .away, reason: "break")])
        #expect(away.stage(of: "c2") == .assigned(agent: "a"))
    }

    // MARK: 11. First-response SLA, escalation, overflow

    @Test func firstResponseWarningThenBreachEscalatesAndOpensTheOverflowTeam() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let start = t0
        _ = engine.upsertTeam(TeamSettings(id: "front", overflow: .team("overflowTeam")), now: start)
        _ = engine.upsertTeam(TeamSettings(id: "overflowTeam"), now: start)
        _ = engine.upsertTeam(TeamSettings(id: "elsewhere"), now: start)
        _ = engine.upsertAgent(profile("f1", teams: ["front"], capacity: [.chat: 1]), now: start)
        hold(&engine, "f1", ["held-f1"], now: start) // f1 is full
        _ = engine.upsertAgent(profile("a-elsewhere", teams: ["elsewhere"]), now: start) // first by id, never eligible
        _ = engine.upsertAgent(profile("o1", teams: ["overflowTeam"]), now: start)

        let due = start + 14_400_000 // normal: 4 h
        let warning = start + 11_520_000 // 80 % of it
        let arrival = engine.enqueue(conv("c1", team: "front", since: start), now: start)
        #expect(arrival.contains(.firstResponseDue(conversation: "c1", due: due)))
        let queued = try #require(decisions(arrival).first)
        #expect(queued.rule == "nobody eligible" && queued.candidates.map(\.agentID) == ["f1"])
        #expect(mentions(reasons(queued, "f1"), "capacity"))
        #expect(engine.nextDeadline() == warning)

        let ticked1 = engine.tick(now: warning - 1)
        #expect(ticked1.isEmpty)
        let ticked2 = engine.tick(now: warning)
        #expect(ticked2 == [.slaWarning(conversation: "c1", kind: .firstResponse, due: due)])
        #expect(engine.nextDeadline() == due)
        let ticked3 = engine.tick(now: warning + 60_000)
        #expect(ticked3.isEmpty) // warned once
        let ticked4 = engine.tick(now: due - 1)
        #expect(ticked4.isEmpty)

        let breach = engine.tick(now: due)
        var breaches: [RoutingEffect] = []
        for case .slaBreached(let id, let kind, let at) in breach { breaches.append(.slaBreached(conversation: id, kind: kind, due: at)) }
        #expect(breaches == [.slaBreached(conversation: "c1", kind: .firstResponse, due: due)])
        #expect(breach.contains(.escalated(conversation: "c1", priority: .urgent, widenedTo: "team:overflowTeam")))
        #expect(offers(breach) == ["c1→o1"])
        #expect(decisions(breach).first?.trigger == .escalated)
        #expect(engine.conversation("c1")?.priority == .urgent)
        let ticked5 = engine.tick(now: due + 1_000)
        #expect(ticked5.isEmpty) // breached once
    }

    @Test func languageOverflowWidensToAnyAgentWhoSpeaksIt() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let start = t0
        _ = engine.upsertTeam(TeamSettings(id: "es-desk", overflow: .language), now: start)
        _ = engine.upsertAgent(profile("e1", teams: ["es-desk"], languages: ["es"], presence: .offline), now: start)
        _ = engine.upsertAgent(profile("a-en", teams: ["general"], languages: ["en"]), now: start)
        _ = engine.upsertAgent(profile("b-es", teams: ["general"], languages: ["en", "es"]), now: start)

        let arrival = engine.enqueue(conv("c1", language: "es", team: "es-desk", since: start), now: start)
        #expect(offers(arrival).isEmpty)
        #expect(decisions(arrival).first?.candidates.map(\.agentID) == ["e1"])

        let breach = engine.tick(now: start + 14_400_000)
        #expect(breach.contains(.escalated(conversation: "c1", priority: .urgent, widenedTo: "language")))
        #expect(offers(breach) == ["c1→b-es"])
    }

    // MARK: 12. Next-response SLA

    @Test func aPatientMessageAfterTheReplyStartsTheNextResponseClock() throws {
        var engine = RoutingEngine(settings: quietSettings())
        _ = engine.upsertAgent(profile("a"), now: t0)
        _ = engine.enqueue(conv("c1"), now: t0)
        _ = try engine.accept("c1", agent: "a", now: t0)

        // Before the first reply a patient message starts nothing (the first-response clock runs).
        _ = engine.patientMessage("c1", at: t0 + 1_000)
        engine.replied("c1", now: t0 + 2_000)
        #expect(engine.nextDeadline() == nil)
        // The first-response due time passes without a breach: it was met.
        let ticked1 = engine.tick(now: t0 + 14_400_000)
        #expect(ticked1.isEmpty)

        let message = t0 + 14_400_000 + 3_000
        _ = engine.patientMessage("c1", at: message)
        let due = message + 8 * 3_600_000 // normal
        let warning = message + 23_040_000 // 80 %
        #expect(engine.nextDeadline() == warning)
        let ticked2 = engine.tick(now: warning - 1)
        #expect(ticked2.isEmpty)
        let ticked3 = engine.tick(now: warning)
        #expect(ticked3 == [.slaWarning(conversation: "c1", kind: .nextResponse, due: due)])
        #expect(engine.nextDeadline() == due)
        let ticked4 = engine.tick(now: due - 1)
        #expect(ticked4.isEmpty)
        let ticked5 = engine.tick(now: due)
        #expect(ticked5 == [.slaBreached(conversation: "c1", kind: .nextResponse, due: due)])
        let ticked6 = engine.tick(now: due + 60_000)
        #expect(ticked6.isEmpty)
        #expect(engine.nextDeadline() == nil)

        // A reply stops the clock; the patient's next message starts a fresh one.
        engine.replied("c1", now: due + 120_000)
        let another = due + 180_000
        _ = engine.patientMessage("c1", at: another)
        #expect(engine.nextDeadline() == another + 23_040_000)
    }

    // MARK: 13. Idle → away

    @Test func idleOnlineAgentsGoAwayAndActivityPostponesIt() throws {
        var settings = quietSettings()
        settings.idleAway = 60_000
        var engine = RoutingEngine(settings: settings)
        _ = engine.upsertAgent(profile("a"), now: t0)
        _ = engine.upsertAgent(profile("b"), now: t0)
        #expect(engine.nextDeadline() == t0 + 60_000)

        let ticked1 = engine.tick(now: t0 + 59_999)
        #expect(ticked1.isEmpty)
        engine.touch(agent: "a", now: t0 + 30_000)
        let ticked2 = engine.tick(now: t0 + 60_000)
        #expect(ticked2 == [.presenceChanged(agent: "b", presence: .away, reason: "idle")])
        #expect(engine.agent("a")?.profile.presence == .online)
        #expect(engine.agent("b")?.profile.presence == .away)
        #expect(engine.nextDeadline() == t0 + 90_000)
        let ticked3 = engine.tick(now: t0 + 89_999)
        #expect(ticked3.isEmpty)
        let ticked4 = engine.tick(now: t0 + 90_000)
        #expect(ticked4 == [.presenceChanged(agent: "a", presence: .away, reason: "idle")])
        let ticked5 = engine.tick(now: t0 + 200_000)
        #expect(ticked5.isEmpty)
        #expect(engine.nextDeadline() == nil)
    }

    // MARK: 14. Transfer

    @Test func transferToAnAgentAssignsAboveCapacityAndDrainsThePreviousAgent() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let now = t0
        _ = engine.upsertAgent(profile("a", capacity: [.chat: 1]), now: now)
        _ = engine.upsertAgent(profile("b", capacity: [.chat: 1]), now: now)
        let arrived1 = engine.enqueue(conv("c1"), now: now)
        #expect(offers(arrived1) == ["c1→a"])
        _ = try engine.accept("c1", agent: "a", now: now)
        let arrived2 = engine.enqueue(conv("c2"), now: now)
        #expect(offers(arrived2) == ["c2→b"])
        _ = try engine.accept("c2", agent: "b", now: now)
        let arrived3 = engine.enqueue(conv("c3"), now: now)
        #expect(offers(arrived3).isEmpty)

        let effects = try engine.transfer("c2", toAgent: "a", toTeam: nil, now: now + 1_000)
        #expect(unassignments(effects) == ["c2→b: transferred"])
        #expect(assignments(effects) == ["c2→a via transfer"])
        let transferDecision = try #require(decisions(effects).first)
        #expect(transferDecision.rule == "transfer" && transferDecision.agentID == "a" && transferDecision.outcome == .assigned)
        #expect(offers(effects) == ["c3→b"])
        #expect(engine.stage(of: "c2") == .assigned(agent: "a"))
        #expect(engine.agent("a")?.load[.chat] == 2) // above its capacity of 1: a person chose a
        #expect(engine.queuedConversationIDs.isEmpty)

        let unknown = routingError { _ = try engine.transfer("c2", toAgent: "nobody", toTeam: nil, now: now) }
        #expect(unknown == .unknownAgent)
    }

    @Test func transferToATeamRequeuesItThereAndOnlyThatTeamIsConsidered() throws {
        var engine = RoutingEngine(settings: quietSettings())
        let now = t0
        _ = engine.upsertTeam(TeamSettings(id: "t1"), now: now)
        _ = engine.upsertTeam(TeamSettings(id: "t2"), now: now)
        _ = engine.upsertAgent(profile("p", teams: ["t1"], capacity: [.chat: 3]), now: now)
        _ = engine.upsertAgent(profile("q", teams: ["t1"], capacity: [.chat: 3]), now: now)
        _ = engine.upsertAgent(profile("r", teams: ["t2"], capacity: [.chat: 3]), now: now)
        hold(&engine, "r", ["held-r1", "held-r2"], now: now) // r is the busiest

        let arrived = engine.enqueue(conv("d1", team: "t1"), now: now)
        #expect(offers(arrived) == ["d1→p"])
        _ = try engine.accept("d1", agent: "p", now: now)
        let effects = try engine.transfer("d1", toAgent: nil, toTeam: "t2", now: now + 1_000)
        #expect(unassignments(effects) == ["d1→p: transferred"])
        #expect(offers(effects) == ["d1→r"])
        #expect(decisions(effects).first?.candidates.map(\.agentID) == ["r"])
        #expect(decisions(effects).first?.trigger == .transferred)
        #expect(engine.conversation("d1")?.team == "t2")
        #expect(engine.agent("p")?.load[.chat] ?? 0 == 0)
        #expect(offeredAgent(engine.stage(of: "d1")) == "r")
    }

    // MARK: 15. Wait estimate

    @Test func waitEstimateCountsTheTeamsQueueAndItsRecentPace() throws {
        var engine = RoutingEngine(settings: quietSettings())
        var now = t0 + 10
        _ = engine.upsertTeam(TeamSettings(id: "m", policy: .manual), now: now)
        _ = engine.upsertAgent(profile("a", teams: ["m"], capacity: [.chat: 10]), now: now)
        _ = engine.enqueue(conv("m1", team: "m", since: t0), now: now)
        _ = engine.enqueue(conv("x1", team: "other", since: t0 + 1), now: now)
        _ = engine.enqueue(conv("m2", team: "m", since: t0 + 2), now: now)
        _ = engine.enqueue(conv("m3", team: "m", since: t0 + 3), now: now)
        _ = engine.enqueue(conv("m4", team: "m", since: t0 + 4), now: now)
        #expect(engine.queuedConversationIDs == ["m1", "x1", "m2", "m3", "m4"])

        // x1 is ahead of m2 in the queue but belongs to another team.
        let m2 = try #require(engine.waitEstimate(for: "m2"))
        #expect(m2.position == 2 && m2.estimatedWait == nil)
        #expect(engine.waitEstimate(for: "x1")?.position == 1)
        #expect(engine.waitEstimate(for: "m4")?.position == 4)

        now = t0 + 100_000
        _ = try engine.claim("m1", agent: "a", now: now)
        #expect(engine.waitEstimate(for: "m1")?.position == nil) // no longer waiting
        let one = try #require(engine.waitEstimate(for: "m2"))
        #expect(one.position == 1 && one.estimatedWait == nil) // one assignment is no history

        now = t0 + 130_000
        _ = try engine.claim("m2", agent: "a", now: now)
        let m4 = try #require(engine.waitEstimate(for: "m4"))
        #expect(m4.position == 2 && m4.estimatedWait == 60_000) // 2 × 30 s
        #expect(engine.waitEstimate(for: "m3")?.estimatedWait == 30_000)
        #expect(engine.waitEstimate(for: "x1")?.estimatedWait == nil) // its team has no history

        now = t0 + 190_000
        _ = try engine.claim("m3", agent: "a", now: now)
        let last = try #require(engine.waitEstimate(for: "m4"))
        #expect(last.position == 1 && last.estimatedWait == 45_000) // mean of 30 s and 60 s
    }

    @Test func acceptedOffersCountTowardTheWaitEstimate() throws {
        var engine = RoutingEngine(settings: quietSettings())
        var now = t0
        _ = engine.upsertTeam(TeamSettings(id: "lt"), now: now)
        _ = engine.upsertAgent(profile("a", teams: ["lt"], capacity: [.chat: 1]), now: now)
        let arrived = engine.enqueue(conv("l1", team: "lt", since: t0), now: now)
        #expect(offers(arrived) == ["l1→a"])
        _ = try engine.accept("l1", agent: "a", now: now)
        for (index, id) in ["l2", "l3", "l4"].enumerated() {
            _ = engine.enqueue(conv(id, team: "lt", since: t0 + Int64(index + 1)), now: now)
        }
        now = t0 + 40_000
        let released = engine.release("l1", now: now)
        #expect(offers(released) == ["l2→a"])
        _ = try engine.accept("l2", agent: "a", now: now)
        // Two conversations left the team's queue (offered and accepted at the same instants) 40 s apart.
        let estimate = try #require(engine.waitEstimate(for: "l4"))
        #expect(estimate.position == 2)
        #expect(estimate.estimatedWait == 80_000)
    }

    // MARK: Lapses free capacity like any other hand-back

    @Test func anOfferThatLapsesFreesTheAgentForTheRestOfTheBacklog() throws {
        var engine = RoutingEngine(settings: quietSettings())
        _ = engine.upsertAgent(profile("a", capacity: [.chat: 1]), now: t0)
        let arrived1 = engine.enqueue(conv("c1"), now: t0)
        #expect(offers(arrived1) == ["c1→a"])
        let arrived2 = engine.enqueue(conv("c2", since: t0 + 1), now: t0)
        #expect(offers(arrived2).isEmpty)
        let effects = engine.tick(now: t0 + 30_000)
        #expect(ended(effects) == ["c1→a: expired"])
        // a is online with a free slot and c2 never involved a: it is offered at once, as after a decline.
        #expect(offers(effects) == ["c2→a"])
        #expect(engine.queuedConversationIDs == ["c1"])
    }

    @Test func anOfferWithdrawnAndReofferedDuringATickIsNotExpiredAtOnce() throws {
        var settings = quietSettings()
        settings.lapsesBeforeAway = 1
        var engine = RoutingEngine(settings: settings)
        _ = engine.upsertAgent(profile("a"), now: t0)
        _ = engine.upsertAgent(profile("b", presence: .offline), now: t0)
        let arrived1 = engine.enqueue(conv("c1"), now: t0)
        #expect(offers(arrived1) == ["c1→a"])
        let arrived2 = engine.enqueue(conv("c2"), now: t0)
        #expect(offers(arrived2) == ["c2→a"])
        _ = engine.setPresence(agent: "b", to: .online, reason: "login", now: t0 + 1)

        // c1 lapses → a goes away → c2 is withdrawn from a and offered to b, then c1 goes to b too.
        let now = t0 + 30_000
        let effects = engine.tick(now: now)
        #expect(ended(effects) == ["c1→a: expired", "c2→a: agent_away"])
        #expect(engine.stage(of: "c1") == .offered(agent: "b", expiresAt: now + 30_000))
        #expect(engine.stage(of: "c2") == .offered(agent: "b", expiresAt: now + 30_000))
        #expect(engine.agent("b")?.lapsedOffers == 0)
        #expect(engine.agent("b")?.profile.presence == .online)
    }

    // MARK: 16. Seeded random simulation

    @Test func seededRandomOperationsKeepLoadsQueueAndDispatchConsistent() throws {
        var settings = RoutingSettings()
        settings.idleAway = 10 * 60_000
        var engine = RoutingEngine(settings: settings)
        var rng = SeededGenerator(state: 0x5EED_2026)
        var now = t0
        let channels: [Channel] = [.chat, .sms, .email]
        let teamIDs = ["t0", "t1", "t2"]
        let presences: [Presence] = [.online, .online, .away, .offline]
        _ = engine.upsertTeam(TeamSettings(id: "t0"), now: now)
        _ = engine.upsertTeam(TeamSettings(id: "t1", policy: .roundRobin), now: now)
        _ = engine.upsertTeam(TeamSettings(id: "t2", autoAccept: true), now: now)
        var agentIDs: [String] = []
        for index in 0..<8 {
            var teams: Set<String> = [teamIDs[index % 3]]
            if index % 4 == 0 { teams.insert(teamIDs[(index + 1) % 3]) }
            var capacity: [Channel: Int] = [:]
            for channel in channels {
                if rng.below(4) > 0 { capacity[channel] = 1 + rng.below(3) }
            }
            if capacity.isEmpty { capacity[.chat] = 1 }
            let id = "agent-\(index)"
            let presence: Presence = rng.below(3) == 0 ? .offline : .online
            _ = engine.upsertAgent(profile(id, teams: teams, capacity: capacity, presence: presence), now: now)
            agentIDs.append(id)
        }

        var open: [String] = [] // enqueued and not released
        var passedOver: Set<String> = [] // "conversation|agent" once the agent declined it or let it lapse
        var transferredTo: [String: String] = [:] // direct transfers still held: may exceed capacity
        var created = 0
        var tally: [String: Int] = [:]

        for step in 0..<2_000 {
            var effects: [RoutingEffect] = []
            var operation = "nothing"
            var stagesBeforeTick: [String: RoutingStage] = [:]
            let roll = rng.below(100)
            if roll < 24 {
                created += 1
                let id = "r\(created)"
                let team: String? = rng.below(5) == 0 ? nil : teamIDs[rng.below(teamIDs.count)]
                let channel = channels[rng.below(channels.count)]
                let priority = Priority.allCases[rng.below(Priority.allCases.count)]
                let since = now - Int64(rng.below(120_000))
                operation = "enqueue \(id)"
                effects = engine.enqueue(conv(id, channel: channel, priority: priority, team: team, since: since), now: now)
                open.append(id)
            } else if roll < 47 {
                let pending: [(String, String)] = open.compactMap { id in offeredAgent(engine.stage(of: id)).map { (id, $0) } }
                if !pending.isEmpty {
                    let (id, agentID) = pending[rng.below(pending.count)]
                    if roll < 40 {
                        operation = "\(agentID) accepts \(id)"
                        effects = try engine.accept(id, agent: agentID, now: now)
                    } else {
                        operation = "\(agentID) declines \(id)"
                        effects = try engine.decline(id, agent: agentID, now: now)
                    }
                }
            } else if roll < 63 {
                if !open.isEmpty {
                    let id = open.remove(at: rng.below(open.count))
                    operation = "release \(id)"
                    effects = engine.release(id, now: now)
                }
            } else if roll < 71 {
                let id = agentIDs[rng.below(agentIDs.count)]
                let presence = presences[rng.below(presences.count)]
                operation = "\(id) \(presence.rawValue)"
                effects = engine.setPresence(agent: id, to: presence, reason: "simulated", now: now)
            } else if roll < 75 {
                if rng.below(2) == 0 {
                    let id = agentIDs[rng.below(agentIDs.count)]
                    operation = "touch \(id)"
                    engine.touch(agent: id, now: now)
                } else if !open.isEmpty {
                    let id = open[rng.below(open.count)]
                    operation = "reply to \(id)"
                    engine.replied(id, now: now)
                }
            } else if roll < 89 {
                for id in open {
                    if let stage = engine.stage(of: id) { stagesBeforeTick[id] = stage }
                }
                now += Int64(1 + rng.below(45_000))
                operation = "tick to \(now)"
                effects = engine.tick(now: now)
            } else if roll < 94 {
                if !open.isEmpty {
                    let id = open[rng.below(open.count)]
                    if rng.below(2) == 0 {
                        let target = agentIDs[rng.below(agentIDs.count)]
                        operation = "transfer \(id) to \(target)"
                        effects = try engine.transfer(id, toAgent: target, toTeam: nil, now: now)
                        transferredTo[id] = target
                    } else {
                        let team = teamIDs[rng.below(teamIDs.count)]
                        operation = "transfer \(id) to team \(team)"
                        effects = try engine.transfer(id, toAgent: nil, toTeam: team, by: assignedAgent(engine.stage(of: id)), now: now)
                    }
                }
            } else {
                if !open.isEmpty {
                    let id = open[rng.below(open.count)]
                    var raised = try #require(engine.conversation(id))
                    raised.priority = raised.priority.raised
                    operation = "raise \(id) to \(raised.priority.rawValue)"
                    effects = engine.enqueue(raised, now: now)
                }
            }

            var problems: [String] = []
            for effect in effects {
                switch effect {
                case .offered(let id, let agentID, let expiresAt):
                    tally["offered", default: 0] += 1
                    if expiresAt != now + settings.offerTimeout { problems.append("offer of \(id) to \(agentID) expires at \(expiresAt)") }
                case .assigned:
                    tally["assigned", default: 0] += 1
                case .offerEnded(let id, let agentID, let reason):
                    tally[reason, default: 0] += 1
                    // Declined, lapsed or transferred away: the engine does not offer it to them again.
                    if reason == "declined" || reason == "expired" || reason == "transferred" { passedOver.insert("\(id)|\(agentID)") }
                    if reason == "expired" {
                        var due = false
                        if case .offered(agentID, let expiresAt)? = stagesBeforeTick[id] { due = expiresAt <= now }
                        if !due { problems.append("\(id) expired from \(agentID), whose offer was not due (was \(String(describing: stagesBeforeTick[id])))") }
                    }
                case .unassigned(let id, let agentID, let reason):
                    tally["unassigned", default: 0] += 1
                    if reason == "transferred" { passedOver.insert("\(id)|\(agentID)") }
                case .escalated:
                    tally["escalated", default: 0] += 1
                default:
                    break
                }
            }
            transferredTo = transferredTo.filter { assignedAgent(engine.stage(of: $0.key)) == $0.value }

            // Every tracked conversation is known; its stage and the queue agree.
            let queued = engine.queuedConversationIDs
            if engine.conversationCount != open.count { problems.append("engine has \(engine.conversationCount) conversations, expected \(open.count)") }
            if engine.queuedCount != queued.count || Set(queued).count != queued.count { problems.append("queue count or duplicates: \(queued)") }
            var expectedLoad: [String: [Channel: Int]] = [:]
            var queuedByStage: Set<String> = []
            for id in open {
                guard let stage = engine.stage(of: id), let conversation = engine.conversation(id) else {
                    problems.append("\(id) vanished")
                    continue
                }
                switch stage {
                case .queued:
                    queuedByStage.insert(id)
                case .offered(let agentID, let expiresAt):
                    expectedLoad[agentID, default: [:]][conversation.channel, default: 0] += 1
                    if expiresAt <= now { problems.append("\(id): offer to \(agentID) outlived its expiry") }
                    if engine.agent(agentID)?.profile.presence != .online { problems.append("\(id) is offered to \(agentID), who is not online") }
                case .assigned(let agentID):
                    expectedLoad[agentID, default: [:]][conversation.channel, default: 0] += 1
                }
            }
            if queuedByStage != Set(queued) {
                problems.append("queued by stage \(queuedByStage.sorted()) ≠ queue \(queued.sorted())")
            }

            // The queue is in dispatch order.
            for (earlier, later) in zip(queued, queued.dropFirst()) {
                guard let a = engine.conversation(earlier), let b = engine.conversation(later),
                      let dueA = engine.firstResponseDue(of: earlier), let dueB = engine.firstResponseDue(of: later) else { continue }
                let inOrder = a.priority.rank > b.priority.rank || (a.priority.rank == b.priority.rank && dueA <= dueB)
                if !inOrder { problems.append("\(earlier) (\(a.priority), \(dueA)) is queued before \(later) (\(b.priority), \(dueB))") }
            }

            // Loads match the conversations held, and stay within capacity (direct transfers aside).
            var agentStates: [String: AgentRoutingState] = [:]
            for agentID in agentIDs {
                guard let state = engine.agent(agentID) else {
                    problems.append("\(agentID) vanished")
                    continue
                }
                agentStates[agentID] = state
                for channel in Channel.allCases {
                    let load = state.load[channel] ?? 0
                    let expected = expectedLoad[agentID]?[channel] ?? 0
                    if load != expected { problems.append("\(agentID) \(channel.rawValue) load \(load), holds \(expected)") }
                    let transferred = transferredTo.filter { $0.value == agentID && engine.conversation($0.key)?.channel == channel }.count
                    if load - transferred > state.profile.capacity[channel] ?? 0 {
                        problems.append("\(agentID) \(channel.rawValue) load \(load) exceeds capacity \(state.profile.capacity[channel] ?? 0)")
                    }
                }
                if state.profile.presence == .online, state.lapsedOffers >= settings.lapsesBeforeAway {
                    problems.append("\(agentID) is online after \(state.lapsedOffers) lapses in a row")
                }
            }

            // Nobody online with room sits idle while work they may take waits (no skills or languages here,
            // no overflow, no manual team; pairs where the agent declined or let the offer lapse are exempt).
            for id in queued {
                guard let conversation = engine.conversation(id) else { continue }
                let channel = conversation.channel
                for agentID in agentIDs {
                    guard let state = agentStates[agentID], state.profile.presence == .online else { continue }
                    if let team = conversation.team, !state.profile.teams.contains(team) { continue }
                    guard (state.load[channel] ?? 0) < (state.profile.capacity[channel] ?? 0) else { continue }
                    if passedOver.contains("\(id)|\(agentID)") { continue }
                    problems.append("\(id) waits while \(agentID) is online with free \(channel.rawValue) capacity")
                }
            }

            if !problems.isEmpty {
                Issue.record("step \(step), \(operation): \(problems.prefix(4).joined(separator: "; "))")
                return
            }
        }

        // The run exercised every path it checks.
        for kind in ["offered", "assigned", "expired", "declined", "unassigned", "escalated"] {
            #expect(tally[kind, default: 0] > 0, "\(kind): \(tally)")
        }
    }

    // MARK: Rebuilding from the store

    @Test func aRebuiltEngineDoesNotBreachOrEscalateTwice() throws {
        var engine = RoutingEngine(settings: quietSettings())
        _ = engine.upsertTeam(TeamSettings(id: "t", overflow: .language), now: t0)
        var stored = conv("c1", team: "t", since: t0)
        stored.firstResponseBreached = true
        stored.overflowOpen = true
        stored.priority = .urgent  // escalated before the restart
        let late = t0 + 20 * 3_600_000
        let arrival = engine.enqueue(stored, now: late)
        #expect(!arrival.contains { if case .slaBreached = $0 { true } else { false } })
        let ticked = engine.tick(now: late + 60_000)
        #expect(ticked.isEmpty, "no second breach, warning or escalation: \(ticked)")
        // The overflow is still open: an agent of another team who speaks the language is eligible.
        _ = engine.upsertAgent(profile("outsider", teams: ["other"]), now: late + 61_000)
        #expect(engine.stage(of: "c1") == .offered(agent: "outsider", expiresAt: late + 61_000 + 30_000))
    }

    @Test func anAssignmentToAnUnknownAgentGoesBackToTheQueue() throws {
        var engine = RoutingEngine(settings: quietSettings())
        _ = engine.upsertAgent(profile("here"), now: t0)
        let effects = engine.restore(conv("c1"), stage: .assigned(agent: "gone"), now: t0)
        #expect(effects.contains(.unassigned(conversation: "c1", agent: "gone", reason: "agent no longer active")))
        #expect(offers(effects) == ["c1→here"])
        #expect(engine.agent("here")?.load[.chat] == 1)
    }

    @Test func aTransferToATeamIsNotOfferedBackToTheSender() throws {
        var engine = RoutingEngine(settings: quietSettings())
        _ = engine.upsertAgent(profile("sender", teams: ["t"]), now: t0)
        _ = engine.enqueue(conv("c1", team: "t"), now: t0)
        _ = try engine.accept("c1", agent: "sender", now: t0)
        let effects = try engine.transfer("c1", toAgent: nil, toTeam: "t", by: "sender", now: t0 + 1_000)
        #expect(offers(effects).isEmpty)
        #expect(engine.stage(of: "c1") == .queued)
        _ = engine.upsertAgent(profile("colleague", teams: ["t"]), now: t0 + 2_000)
        #expect(engine.stage(of: "c1") == .offered(agent: "colleague", expiresAt: t0 + 2_000 + 30_000))
    }
}
