import Foundation
import Testing
@testable import SwitchboardRouting

/// The routing log's `detail` is written by hand (`RoutingDecision.jsonText`) and read back
/// with `JSONDecoder` (the console's decision view): the two must agree on every field.
@Suite struct RoutingDecisionJSONTests {
    static func decode(_ text: String) throws -> RoutingDecision {
        try JSONDecoder().decode(RoutingDecision.self, from: Data(text.utf8))
    }

    @Test func aDecisionWithEveryFieldReadsBackEqual() throws {
        let decision = RoutingDecision(
            conversationID: "cnv_2abc", at: 1_765_000_000_123, trigger: .offerExpired, outcome: .offered,
            agentID: "agt_\"quoted\"\\", rule: "least-loaded",
            candidates: [
                .init(agentID: "agt_1", eligible: true, reasons: [], load: 0.25),
                .init(agentID: "agt_2", eligible: false, reasons: ["away", "at capacity on sms\n(3/3)"], load: nil),
                .init(agentID: "agt_3", eligible: true, reasons: ["not chosen by least-loaded"], load: 1),
                .init(agentID: "agt_4", eligible: true, reasons: [], load: 1e-7),
            ],
            candidatesOmitted: 12)
        #expect(try Self.decode(decision.jsonText) == decision)
    }

    @Test func aQueuedDecisionWithoutAgentOrCandidatesReadsBackEqual() throws {
        let decision = RoutingDecision(conversationID: "cnv_1", at: 0, trigger: .arrived, outcome: .queued, agentID: nil,
                                       rule: "no agent available", candidates: [], candidatesOmitted: 0)
        let text = decision.jsonText
        #expect(try Self.decode(text) == decision)
        #expect(!text.contains("agentID"), "an absent agent is left out, as the encoder leaves it")
    }

    @Test func everyTriggerAndOutcomeIsWrittenAsItsCodableName() throws {
        let triggers: [RoutingTrigger] = [.arrived, .declined, .offerExpired, .agentAvailable, .escalated, .transferred,
                                          .handedBack, .offerWithdrawn, .restored]
        for trigger in triggers {
            for outcome in [RoutingDecision.Outcome.offered, .assigned, .queued] {
                let decision = RoutingDecision(conversationID: "c", at: 5, trigger: trigger, outcome: outcome, agentID: "a",
                                               rule: "sticky", candidates: [], candidatesOmitted: 0)
                #expect(try Self.decode(decision.jsonText) == decision)
            }
        }
    }

    @Test func aLoadJSONCannotHoldIsLeftOutRatherThanWrittenInvalid() throws {
        let decision = RoutingDecision(conversationID: "c", at: 5, trigger: .arrived, outcome: .queued, agentID: nil, rule: "r",
                                       candidates: [.init(agentID: "a", eligible: true, reasons: [], load: .nan),
                                                    .init(agentID: "b", eligible: true, reasons: [], load: .infinity)],
                                       candidatesOmitted: 0)
        let read = try Self.decode(decision.jsonText)
        #expect(read.candidates.map(\.load) == [nil, nil])
        #expect(read.candidates.map(\.agentID) == ["a", "b"])
    }
}
