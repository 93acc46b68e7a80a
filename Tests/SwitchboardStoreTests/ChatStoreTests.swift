import Foundation
import GRDB
import Testing
@testable import SwitchboardCore
@testable import SwitchboardStore

@Suite struct ChatStoreTests {
    func chat(_ visitor: String, _ client: String, _ text: String, identity: String? = nil) -> ChatInbound {
        ChatInbound(visitorID: visitor, identity: identity, displayName: nil, clientID: client, text: text, raw: Array(text.utf8))
    }

    @Test func aRetriedClientIDIsStoredOnceAndTheStreamIsInCommitOrder() async throws {
        let store = try makeStore()
        let first = try await store.recordChatMessage(chat("vis_a", "c1", "hello"), reopenWindowMilliseconds: 0, now: 1000)
        let again = try await store.recordChatMessage(chat("vis_a", "c1", "hello"), reopenWindowMilliseconds: 0, now: 1001)
        #expect(!first.result.duplicate && again.result.duplicate)
        #expect(again.result.messageID == first.result.messageID && again.seq == first.seq)
        // Another visitor's same client id is another message.
        let other = try await store.recordChatMessage(chat("vis_b", "c1", "hi"), reopenWindowMilliseconds: 0, now: 1002)
        #expect(!other.result.duplicate && other.result.conversationID != first.result.conversationID)

        let agent = try await store.createAgent(name: "Ana", email: "ana@example.org", role: .admin, team: nil).agent
        _ = try await store.reply(conversationID: first.result.conversationID, by: agent, text: "How can I help?", now: 1003)
        _ = try await store.addNote(conversationID: first.result.conversationID, by: agent, text: "internal only", now: 1004)
        let second = try await store.recordChatMessage(chat("vis_a", "c2", "my knee"), reopenWindowMilliseconds: 0, now: 1005)
        #expect(second.result.conversationID == first.result.conversationID)

        let stream = try await store.chatStream(visitorID: "vis_a", after: 0)
        #expect(stream.map(\.text) == ["hello", "How can I help?", "my knee"])  // never the note, never vis_b's
        #expect(stream.map(\.clientID) == ["c1", nil, "c2"])
        #expect(stream[1].agentName == "Ana" && stream[1].direction == .outbound)
        #expect(stream.map(\.seq) == stream.map(\.seq).sorted())
        #expect(try await store.chatStream(visitorID: "vis_a", after: stream[1].seq).map(\.text) == ["my knee"])
        #expect(try await store.chatLatestSeq(visitorID: "vis_a") == stream[2].seq)
        #expect(try await store.chatLatestSeq(visitorID: "vis_nobody") == 0)
    }

    @Test func anIdentifiedVisitorJoinsThePatientsContact() async throws {
        let store = try makeStore()
        let portal = try await store.record(delivery: "d1", patient: "P-42", message: "m1")
        let stored = try await store.recordChatMessage(chat("vis_x", "c1", "hello", identity: "P-42"), reopenWindowMilliseconds: 0)
        let contact = try await store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT contact_id FROM conversations WHERE id = ?", arguments: [stored.result.conversationID])
        }
        let portalContact = try await store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT contact_id FROM conversations WHERE id = ?", arguments: [portal.conversationID])
        }
        #expect(contact == portalContact)
        #expect(try await store.identifiedChatVisitor(identity: "P-42", displayName: nil) == "vis_x")
        #expect(try await store.chatVisitorIdentity("vis_x") == "P-42")
        #expect(try await store.chatVisitorIdentity("vis_unknown") == nil)
    }

    @Test func receivedMarksRepliesDeliveredAndContinuingSwitchesTheChannel() async throws {
        let store = try makeStore()
        let first = try await store.recordChatMessage(chat("vis_a", "c1", "hello"), reopenWindowMilliseconds: 0)
        let agent = try await store.createAgent(name: "Ana", email: "ana@example.org", role: .admin, team: nil).agent
        let reply = try await store.reply(conversationID: first.result.conversationID, by: agent, text: "Hi")
        let seq = try await store.chatLatestSeq(visitorID: "vis_a")
        #expect(try await store.markChatReceived(visitorID: "vis_a", upTo: seq) == 0)  // not sent yet: the outbox has not run
        for item in try await store.dueOutboxItems(channels: [.chat], now: Timestamp.now() + 1, limit: 10, excluding: []) {
            try await store.markOutboxDelivered(item, status: .sent)
        }
        #expect(try await store.markChatReceived(visitorID: "vis_a", upTo: seq - 1) == 0)
        #expect(try await store.markChatReceived(visitorID: "vis_a", upTo: seq) == 1)
        #expect(try await store.markChatReceived(visitorID: "vis_a", upTo: seq) == 0)
        let status = try await store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT delivery_status FROM messages WHERE id = ?", arguments: [reply.id])
        }
        #expect(status == "delivered")
        #expect(try await store.markChatRead(visitorID: "vis_a", upTo: seq) == 1)

        #expect(try await store.continueChat(visitorID: "vis_none", channel: .sms, address: "+15550100") == .noConversation)
        // A number that belongs to another patient is never re-pointed from a chat.
        _ = try await store.recordSMSMessage(SMSInbound(gateway: .twilio, gatewayMessageID: "SM1", raw: [], from: "+15550999", to: "+15550000",
                                                        text: "other patient", sentAt: 1), reopenWindowMilliseconds: 0)
        #expect(try await store.continueChat(visitorID: "vis_a", channel: .sms, address: "+15550999") == .addressUnavailable)
        let id = try await store.continueChat(visitorID: "vis_a", channel: .sms, address: "+15550100")
        #expect(id == .continued(conversationID: first.result.conversationID))
        #expect(try await store.continueChat(visitorID: "vis_a", channel: .email, address: "a@example.org") == .alreadyContinued)
        let row = try await store.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT channel, remote_address FROM conversations WHERE id = ?", arguments: [first.result.conversationID])
                .map { [$0["channel"], $0["remote_address"]] as [String?] }
        }
        #expect(row == ["sms", "+15550100"])
        // A chat message after continuing joins the same conversation, and the agent's next
        // reply goes out by SMS.
        let later = try await store.recordChatMessage(chat("vis_a", "c2", "still there?"), reopenWindowMilliseconds: 0)
        #expect(later.result.conversationID == first.result.conversationID)
        let smsReply = try await store.reply(conversationID: first.result.conversationID, by: agent, text: "Yes")
        #expect(smsReply.channel == .sms)
        // The widget shows the chat only: the SMS reply is not in the visitor's stream.
        #expect(try await store.chatStream(visitorID: "vis_a", after: 0).map(\.text) == ["hello", "Hi", "still there?"])
    }

    @Test func sequenceNumbersSurviveVacuumAndOnlyGrow() async throws {
        let store = try makeStore()
        for i in 0..<5 { _ = try await store.recordChatMessage(chat("vis_\(i)", "c", "m\(i)"), reopenWindowMilliseconds: 0) }
        let before = try await store.chatStream(visitorID: "vis_4", after: 0)
        // VACUUM may renumber the rowids of a table without an INTEGER PRIMARY KEY: do it by
        // hand (the oldest rows get the highest rowids), then compact for real.
        try await store.pool.write { db in
            try db.execute(sql: "UPDATE messages SET rowid = 1000000 - rowid")
        }
        _ = try await store.vacuum()
        #expect(try await store.chatStream(visitorID: "vis_4", after: 0) == before)
        let next = try await store.recordChatMessage(chat("vis_4", "d", "later"), reopenWindowMilliseconds: 0)
        #expect(next.seq > before[0].seq)
    }

    @Test func concurrentHellosOfOnePatientShareOneVisitor() async throws {
        let store = try makeStore()
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try await store.identifiedChatVisitor(identity: "P-1", displayName: "Ana") } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        let visitor = try #require(ids.first)
        let stored = try await store.recordChatMessage(chat(visitor, "c1", "hi", identity: "P-1"), reopenWindowMilliseconds: 0)
        #expect(!stored.result.duplicate)
        // A name from a chat page fills a blank but never replaces the record's name.
        _ = try await store.record(delivery: "d9", patient: "P-1", message: "m9")  // the portal names the patient "N"
        _ = try await store.identifiedChatVisitor(identity: "P-1", displayName: "Someone Else")
        _ = try await store.recordChatMessage(ChatInbound(visitorID: visitor, identity: "P-1", displayName: "Someone Else",
                                                          clientID: "c2", text: "x", raw: []), reopenWindowMilliseconds: 0)
        let name = try await store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT display_name FROM contacts c JOIN chat_visitors v ON v.contact_id = c.id WHERE v.id = ?",
                                arguments: [visitor])
        }
        #expect(name == "N")
    }

    @Test func aResolvedChatReopensWithinTheWindowOnly() async throws {
        let store = try makeStore()
        let agent = try await store.createAgent(name: "Ana", email: "ana@example.org", role: .admin, team: nil).agent
        let first = try await store.recordChatMessage(chat("vis_a", "c1", "hello"), reopenWindowMilliseconds: 60_000, now: 1000)
        _ = try await store.resolveConversation(id: first.result.conversationID, by: agent, now: 2000)
        let within = try await store.recordChatMessage(chat("vis_a", "c2", "one more"), reopenWindowMilliseconds: 60_000, now: 3000)
        #expect(within.result.conversationID == first.result.conversationID)
        _ = try await store.resolveConversation(id: first.result.conversationID, by: agent, now: 4000)
        let after = try await store.recordChatMessage(chat("vis_a", "c3", "new matter"), reopenWindowMilliseconds: 60_000, now: 100_000)
        #expect(after.result.conversationID != first.result.conversationID)
        #expect(try await store.chatState(visitorID: "vis_a")?.conversationID == after.result.conversationID)
    }

    @Test func passwordsAndConsoleSessions() async throws {
        let hash = try PasswordHash.make("correct horse battery")
        #expect(hash.hasPrefix("scrypt$15$8$1$"))
        #expect(PasswordHash.verify("correct horse battery", against: hash))
        #expect(!PasswordHash.verify("correct horse batterY", against: hash))
        #expect(!PasswordHash.verify("x", against: "scrypt$40$8$1$AAAA$AAAA"))  // absurd parameters are refused, not run
        #expect(try PasswordHash.make("same") != PasswordHash.make("same"))  // salted

        let store = try makeStore()
        let agent = try await store.createAgent(name: "Ana", email: "ana@example.org", role: .agent, team: nil).agent
        #expect(try await store.verifyPassword(email: "ana@example.org", password: "anything", sourceAddress: nil) == nil)  // none set
        _ = try await store.setPassword(agentEmail: "ana@example.org", password: "correct horse battery")
        #expect(try await store.verifyPassword(email: "ana@example.org", password: "correct horse battery", sourceAddress: nil)?.id == agent.id)
        #expect(try await store.verifyPassword(email: "ana@example.org", password: "wrong", sourceAddress: nil) == nil)
        #expect(try await store.verifyPassword(email: "nobody@example.org", password: "correct horse battery", sourceAddress: nil) == nil)

        let (token, session) = try await store.createConsoleSession(agent: agent, sourceAddress: "192.0.2.1", now: 1_000_000)
        #expect(try await store.consoleSession(token: token, idleSeconds: 60, now: 1_030_000) == session)
        #expect(try await store.consoleSession(token: token + "x", idleSeconds: 60, now: 1_030_000) == nil)
        // Idle past the limit: gone for good.
        #expect(try await store.consoleSession(token: token, idleSeconds: 60, now: 1_100_000) == nil)
        #expect(try await store.consoleSession(token: token, idleSeconds: 6000, now: 1_100_001) == nil)

        let (second, _) = try await store.createConsoleSession(agent: agent, sourceAddress: nil)
        try await store.deactivateAgent(id: agent.id)
        #expect(try await store.consoleSession(token: second, idleSeconds: 600) == nil)
        let actions = try await store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT action FROM audit_events WHERE action LIKE 'console.%' ORDER BY id")
        }
        #expect(actions.contains("console.sign_in_failed") && actions.contains("console.signed_in") && actions.contains("console.session_expired"))
    }
}
