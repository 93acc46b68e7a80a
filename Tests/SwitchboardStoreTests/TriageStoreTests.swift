import Foundation
import GRDB
import Testing
@testable import SwitchboardCore
@testable import SwitchboardStore

@Suite struct TriageStoreTests {
    @Test func emergencyRaisesPriorityMovesTeamAndQueuesOneSafetyReply() async throws {
        let store = try makeStore()
        let admin = try await store.createAgent(name: "A", email: "a@example.org", role: .admin, team: nil).agent
        let first = try await store.record(delivery: "1", thread: "T-1", message: "M-1", text: "my father has chest pain")
        let pending = try await store.untriagedMessages(limit: 10)
        #expect(pending.map(\.messageID) == [first.messageID])
        let emergency = TriageRecord(intent: "clinical_question", urgency: "emergency", language: "en", evidenceJSON: #"{"red_flags":[]}"#)
        let outcome = try await store.recordTriage(messageID: first.messageID, conversationID: first.conversationID, triage: emergency,
                                                   safetyReply: "Call 911.", emergencyTeam: "clinical")
        #expect(outcome == TriageOutcome(priorityRaised: true, safetyReplyQueued: true, teamAssigned: true))
        #expect(try await store.untriagedMessages(limit: 10).isEmpty)
        // Recording the same message again changes nothing.
        let again = try await store.recordTriage(messageID: first.messageID, conversationID: first.conversationID, triage: emergency,
                                                 safetyReply: "Call 911.", emergencyTeam: "clinical")
        #expect(again == TriageOutcome(priorityRaised: false, safetyReplyQueued: false, teamAssigned: false))
        // A second emergency in the same conversation the same day: no second safety reply.
        let second = try await store.record(delivery: "2", thread: "T-1", message: "M-2", text: "still hurting")
        let outcome2 = try await store.recordTriage(messageID: second.messageID, conversationID: second.conversationID, triage: emergency,
                                                    safetyReply: "Call 911.", emergencyTeam: "clinical")
        #expect(!outcome2.safetyReplyQueued)
        // A routine message later never lowers the priority.
        let third = try await store.record(delivery: "3", thread: "T-1", message: "M-3", text: "thanks")
        _ = try await store.recordTriage(messageID: third.messageID, conversationID: third.conversationID,
                                         triage: TriageRecord(intent: "general_info", urgency: "routine", language: "en", evidenceJSON: "{}"),
                                         safetyReply: nil, emergencyTeam: nil)
        let detail = try await store.readConversation(id: first.conversationID, by: admin, sourceAddress: nil)
        #expect(detail.conversation.priority == .emergency)
        #expect(detail.conversation.intent == "general_info" && detail.conversation.language == "en")
        #expect(detail.conversation.teamID != nil)
        #expect(detail.messages.filter { $0.direction == .outbound }.map(\.text) == ["Call 911."])
        #expect(detail.messages.first?.triage?.urgency == "emergency")
        let due = try await store.dueOutboxItems(channels: [.portal], now: Timestamp.now() + 1000, limit: 5, excluding: [])
        #expect(due.map(\.purpose) == [.compliance])
        let audits = try await store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT action FROM audit_events WHERE action LIKE 'triage.%' ORDER BY id")
        }
        #expect(audits == ["triage.emergency", "triage.safety_reply", "triage.emergency"])
    }
}
