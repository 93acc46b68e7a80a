// Routing benchmark (not a test): dispatch decision time with 1,000 agents and 100,000
// waiting conversations. Run with `make bench` or
//   swift run -c release routing-bench
// Prints p50/p99/max for: a new conversation's dispatch (all agents full: every team
// member is evaluated and the conversation joins the 100,000 waiting), freed capacity
// (a resolve drains the backlog into that agent: a queue scan plus an offer), and accept.
import Foundation
import SwitchboardCore
import SwitchboardRouting

/// xorshift64*: a fixed seed gives the same agents and conversations on every run.
struct XorShift: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}

func percentile(_ values: [Duration], _ p: Double) -> Duration {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func report(_ name: String, _ values: [Duration]) {
    func us(_ d: Duration) -> String {
        let micro = Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
        return String(format: "%.1f µs", micro)
    }
    print("\(name): n=\(values.count) p50=\(us(percentile(values, 0.5))) p99=\(us(percentile(values, 0.99))) max=\(us(values.max()!))")
}

let agentCount = 1000
let waiting = 100_000
let teams = (0..<10).map { "team-\($0)" }
let skills = ["billing", "records", "clinical", "refills", "scheduling"]
var random = XorShift(state: 42)
var settings = RoutingSettings()
settings.idleAway = nil
var engine = RoutingEngine(settings: settings)
let clock = ContinuousClock()
var now: Int64 = 1_800_000_000_000

for team in teams { _ = engine.upsertTeam(TeamSettings(id: team), now: now) }
var agentIDs: [String] = []
for index in 0..<agentCount {
    let id = String(format: "agt_%04d", index)
    agentIDs.append(id)
    let agentSkills = Set((0..<2).map { _ in skills.randomElement(using: &random)! })
    let languages: Set<String> = Int.random(in: 0..<10, using: &random) < 3 ? ["en", "es"] : ["en"]
    _ = engine.upsertAgent(AgentProfile(id: id, teams: [teams[index % teams.count]], skills: agentSkills, languages: languages,
                                        capacity: [.portal: 5, .sms: 5], presence: .online), now: now)
}

@MainActor func conversation(_ index: Int) -> RoutableConversation {
    let priorities: [Priority] = [.low, .normal, .normal, .normal, .urgent, .emergency]
    let needsSkill = Int.random(in: 0..<3, using: &random) == 0
    return RoutableConversation(
        id: "cnv_\(index)", channel: Int.random(in: 0..<2, using: &random) == 0 ? .portal : .sms,
        priority: priorities.randomElement(using: &random)!,
        requiredSkills: needsSkill ? [skills.randomElement(using: &random)!] : [],
        language: Int.random(in: 0..<10, using: &random) < 2 ? "es" : "en",
        team: teams.randomElement(using: &random)!, contactID: "ctc_\(index)", waitingSince: now)
}

// Fill every agent: offers accepted until nobody has capacity left.
var next = 0
var assigned: [String: [String]] = [:]
var fillStart = clock.now
while true {
    var progressed = false
    for _ in 0..<2000 {
        next += 1
        now += 1
        for effect in engine.enqueue(conversation(next), now: now) {
            if case .offered(let id, let agent, _) = effect {
                _ = try engine.accept(id, agent: agent, now: now)
                assigned[agent, default: []].append(id)
                progressed = true
            }
        }
    }
    if !progressed { break }
}
print("filled \(assigned.values.reduce(0) { $0 + $1.count }) assignments in \(clock.now - fillStart)")

// Grow the waiting queue to 100,000.
fillStart = clock.now
while engine.queuedCount < waiting {
    next += 1
    now += 1
    _ = engine.enqueue(conversation(next), now: now)
}
print("queued \(engine.queuedCount) in \(clock.now - fillStart); \(agentCount) agents")

// (1) A new conversation arrives: every eligible-pool agent is evaluated, then it waits.
var arrivals: [Duration] = []
for _ in 0..<5000 {
    next += 1
    now += 1
    let incoming = conversation(next)
    let start = clock.now
    _ = engine.enqueue(incoming, now: now)
    arrivals.append(clock.now - start)
    _ = engine.release(incoming.id, now: now)  // keep the queue at 100,000
}
report("dispatch of a new conversation (queued behind 100,000)", arrivals)

// (2) Freed capacity: resolving one conversation drains the backlog into its agent.
var frees: [Duration] = []
var accepts: [Duration] = []
for round in 0..<5000 {
    let agent = agentIDs[(round * 7919) % agentIDs.count]
    guard var held = assigned[agent], !held.isEmpty else { continue }
    let done = held.removeFirst()
    assigned[agent] = held
    now += 1
    let start = clock.now
    let effects = engine.release(done, now: now)
    frees.append(clock.now - start)
    for effect in effects {
        if case .offered(let id, let to, _) = effect {
            let acceptStart = clock.now
            _ = try engine.accept(id, agent: to, now: now)
            accepts.append(clock.now - acceptStart)
            assigned[to, default: []].append(id)
        }
    }
}
report("freed capacity → next offer (queue scan + dispatch)", frees)
report("accept", accepts)

// (3) A tick with 100,000 waiting and ~5,000 assigned conversations (SLA checks).
var ticks: [Duration] = []
for _ in 0..<20 {
    now += 1000
    let start = clock.now
    _ = engine.tick(now: now)
    ticks.append(clock.now - start)
}
report("tick (offers, idle, SLA over all open conversations)", ticks)
