import Foundation
import Testing
@testable import SwitchboardCore
@testable import SwitchboardStore
import GRDB

/// A fresh database file per test, in a temporary directory.
func makeStore() throws -> SwitchboardStore {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-test-\(UUID().uuidString)")
    return try SwitchboardStore(path: directory.appendingPathComponent("db/switchboard.sqlite").path)
}

extension SwitchboardStore {
    func record(delivery: String, patient: String = "P-1", phone: String? = nil, email: String? = nil,
                thread: String? = nil, message: String, text: String = "hello") async throws -> IngestResult {
        try await recordPortalMessage(deliveryID: delivery, rawBody: Array("{}".utf8),
                                      contact: InboundContact(portalID: patient, phoneE164: phone, email: email, displayName: "N"),
                                      threadID: thread, messageID: message, text: text, sentAt: 1000, now: 1)
    }
}

@Suite struct StoreTests {
    @Test func appliesMigrationsAndPragmas() async throws {
        let store = try makeStore()
        #expect(try store.appliedMigrations() == ["2026-11-29-foundation", "2026-11-29-sms", "2026-11-29-triage", "2026-11-29-rules", "2026-11-29-router", "2026-11-29-router-sla", "2026-11-29-operations", "2026-11-29-audit-chain", "2026-11-29-email", "2026-12-07-chat", "2026-12-07-audit-mac", "2026-12-07-inbound-queue", "2026-12-08-messages-seq-inline", "2026-12-08-inbound-queue-appends-only"])
        let (mode, sync, keys) = try await store.pool.read { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA synchronous"),
             try Int.fetchOne(db, sql: "PRAGMA foreign_keys"))
        }
        #expect(mode == "wal")
        #expect(sync == 2) // FULL
        #expect(keys == 1)
        // Reopening applies nothing twice.
        #expect(try SwitchboardStore(path: store.path).appliedMigrations() == ["2026-11-29-foundation", "2026-11-29-sms", "2026-11-29-triage", "2026-11-29-rules", "2026-11-29-router", "2026-11-29-router-sla", "2026-11-29-operations", "2026-11-29-audit-chain", "2026-11-29-email", "2026-12-07-chat", "2026-12-07-audit-mac", "2026-12-07-inbound-queue", "2026-12-08-messages-seq-inline", "2026-12-08-inbound-queue-appends-only"])
    }

    @Test func schemaRefusesInvalidRows() async throws {
        let store = try makeStore()
        await #expect(throws: (any Error).self) {
            try await store.pool.write { db in
                try db.execute(sql: "INSERT INTO contacts (id, created_at, updated_at) VALUES ('c', 1, 1)")
                try db.execute(sql: "INSERT INTO conversations (id, contact_id, channel, status, created_at, updated_at, last_message_at) VALUES ('v', 'c', 'fax', 'open', 1, 1, 1)")
            }
        }
        await #expect(throws: (any Error).self) {
            try await store.pool.write { db in
                try db.execute(sql: "INSERT INTO conversations (id, contact_id, channel, created_at, updated_at, last_message_at) VALUES ('v', 'nobody', 'portal', 1, 1, 1)")
            }
        }
        #expect(try await store.count("contacts") == 0)
    }

    @Test func redeliveryReturnsTheFirstAnswerAndStoresNothing() async throws {
        let store = try makeStore()
        let first = try await store.record(delivery: "wh-1", message: "M-1")
        let again = try await store.record(delivery: "wh-1", message: "M-1")
        #expect(!first.duplicate && again.duplicate)
        #expect(again.conversationID == first.conversationID && again.messageID == first.messageID)
        // The same portal message under another delivery id is still one message.
        let other = try await store.record(delivery: "wh-2", message: "M-1")
        #expect(other.duplicate && other.messageID == first.messageID)
        #expect(try await store.count("messages") == 1)
        #expect(try await store.count("inbound_journal") == 2)
    }

    @Test func concurrentRedeliveriesStoreOneMessage() async throws {
        let store = try makeStore()
        let results = try await withThrowingTaskGroup(of: IngestResult.self) { group in
            for _ in 0..<20 { group.addTask { try await store.record(delivery: "wh-x", message: "M-x") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(results.map(\.messageID)).count == 1)
        #expect(results.filter { !$0.duplicate }.count == 1)
        #expect(try await store.count("messages") == 1)
    }

    @Test func identitiesResolveToOneContact() async throws {
        let store = try makeStore()
        let a = try await store.record(delivery: "1", patient: "P-1", phone: "+15550100000", message: "M-1")
        // Same phone, no thread: the same contact's open portal conversation.
        let b = try await store.record(delivery: "2", patient: "P-1", phone: "+15550100000", email: "a@example.org", message: "M-2")
        #expect(a.conversationID == b.conversationID)
        let agent = try await store.createAgent(name: "S", email: "s@example.org", role: .supervisor, team: nil).agent
        let detail = try await store.readConversation(id: a.conversationID, by: agent, sourceAddress: "127.0.0.1")
        #expect(Set(detail.contact.identities.map { "\($0.kind.rawValue):\($0.value)" })
                == ["portal:P-1", "phone:+15550100000", "email:a@example.org"])
        #expect(detail.messages.map(\.text) == ["hello", "hello"])
        #expect(try await store.count("contacts") == 1)
    }

    @Test func threadsByThreadIDAndRefusesAnotherPatientsThread() async throws {
        let store = try makeStore()
        let t1 = try await store.record(delivery: "1", thread: "T-1", message: "M-1")
        let t2 = try await store.record(delivery: "2", thread: "T-2", message: "M-2")
        let t1again = try await store.record(delivery: "3", thread: "T-1", message: "M-3")
        #expect(t1.conversationID != t2.conversationID)
        #expect(t1.conversationID == t1again.conversationID)
        await #expect(throws: StoreError.conflict("thread_id belongs to another patient")) {
            try await store.record(delivery: "4", patient: "P-2", thread: "T-1", message: "M-4")
        }
        #expect(try await store.count("messages") == 3)
    }

    @Test func aResolvedThreadReopensAndNoThreadStartsAfresh() async throws {
        let store = try makeStore()
        let admin = try await store.createAgent(name: "A", email: "a@example.org", role: .admin, team: nil).agent
        let first = try await store.record(delivery: "1", message: "M-1")
        _ = try await store.resolveConversation(id: first.conversationID, by: admin)
        // Without a thread id, a resolved conversation is not reused.
        let second = try await store.record(delivery: "2", message: "M-2")
        #expect(second.conversationID != first.conversationID)
        // Its own id is its thread id, so a reply threaded on it lands there, reopening it.
        _ = try await store.resolveConversation(id: second.conversationID, by: admin)
        let third = try await store.record(delivery: "3", thread: second.conversationID, message: "M-3")
        #expect(third.conversationID == second.conversationID)
        let list = try await store.listConversations(for: admin, status: .open, assignee: .any)
        #expect(list.map(\.id) == [second.conversationID])
    }

    @Test func agentsSeeUnassignedAndTheirOwnOnly() async throws {
        let store = try makeStore()
        let (alice, aliceToken) = try await store.createAgent(name: "Alice", email: "alice@example.org", role: .agent, team: "front")
        let bob = try await store.createAgent(name: "Bob", email: "bob@example.org", role: .agent, team: nil).agent
        #expect(try await store.agent(forToken: aliceToken) == alice)
        #expect(try await store.agent(forToken: aliceToken + "x") == nil)
        #expect(try await store.agent(forToken: "nonsense") == nil)
        await #expect(throws: StoreError.conflict("an agent with this email exists")) {
            try await store.createAgent(name: "A2", email: "ALICE@example.org", role: .agent, team: nil)
        }
        let c = try await store.record(delivery: "1", message: "M-1")
        #expect(try await store.listConversations(for: bob, status: .open, assignee: .unassigned).count == 1)
        _ = try await store.claimConversation(id: c.conversationID, by: alice)
        #expect(try await store.listConversations(for: bob, status: .open, assignee: .any).isEmpty)
        #expect(try await store.listConversations(for: alice, status: .open, assignee: .me).map(\.id) == [c.conversationID])
        await #expect(throws: StoreError.notFound) {
            try await store.readConversation(id: c.conversationID, by: bob, sourceAddress: nil)
        }
        await #expect(throws: StoreError.notFound) { try await store.claimConversation(id: c.conversationID, by: bob) }
        await #expect(throws: StoreError.notFound) { try await store.reply(conversationID: c.conversationID, by: bob, text: "x") }
        // The clear token is not stored anywhere.
        let stored = try await store.pool.read { db in try Data.fetchAll(db, sql: "SELECT token_hash FROM api_tokens") }
        #expect(stored.allSatisfy { $0.count == 32 && !String(decoding: $0, as: UTF8.self).contains("sbt_") })
    }

    @Test func everyReadIsAudited() async throws {
        let store = try makeStore()
        let agent = try await store.createAgent(name: "A", email: "a@example.org", role: .agent, team: nil).agent
        let c = try await store.record(delivery: "1", message: "M-1")
        _ = try await store.readConversation(id: c.conversationID, by: agent, sourceAddress: "192.0.2.7")
        _ = try await store.readConversation(id: c.conversationID, by: agent, sourceAddress: "192.0.2.7")
        let rows = try await store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT actor_id, conversation_id, source_address FROM audit_events WHERE action = 'conversation.read'")
                .map { [$0["actor_id"], $0["conversation_id"], $0["source_address"]] as [String?] }
        }
        #expect(rows == [[agent.id, c.conversationID, "192.0.2.7"], [agent.id, c.conversationID, "192.0.2.7"]])
    }

    /// Inbound messages, replies and notes set their `seq` in their own INSERT; one that
    /// leaves it out still gets the next (the trigger stays as the safety net).
    @Test func everyMessageTakesTheNextSequenceNumber() async throws {
        let store = try makeStore()
        let agent = try await store.createAgent(name: "A", email: "a@example.org", role: .agent, team: nil).agent
        let first = try await store.record(delivery: "1", thread: "T-1", message: "M-1")
        _ = try await store.reply(conversationID: first.conversationID, by: agent, text: "A", now: 10)
        _ = try await store.record(delivery: "2", thread: "T-1", message: "M-2")
        try await store.pool.write { db in
            try db.execute(sql: """
                INSERT INTO messages (id, conversation_id, direction, sender_kind, channel, body_text, sent_at, created_at)
                VALUES ('msg_raw', ?, 'inbound', 'contact', 'portal', 'x', 1, 1)
                """, arguments: [first.conversationID])
        }
        _ = try await store.record(delivery: "3", thread: "T-1", message: "M-3")
        let seqs = try await store.pool.read { db in try Int64.fetchAll(db, sql: "SELECT seq FROM messages ORDER BY rowid") }
        #expect(seqs == [1, 2, 3, 4, 5])
    }

    @Test func outboxKeepsOrderPerConversationAndDeadLettersDoNotBlock() async throws {
        let store = try makeStore()
        let agent = try await store.createAgent(name: "A", email: "a@example.org", role: .agent, team: nil).agent
        let c1 = try await store.record(delivery: "1", thread: "T-1", message: "M-1")
        let c2 = try await store.record(delivery: "2", thread: "T-2", message: "M-2")
        let a = try await store.reply(conversationID: c1.conversationID, by: agent, text: "A", now: 10)
        let b = try await store.reply(conversationID: c1.conversationID, by: agent, text: "B", now: 11)
        let c = try await store.reply(conversationID: c2.conversationID, by: agent, text: "C", now: 12)
        var due = try await store.dueOutboxItems(channels: [.portal], now: 100, limit: 10, excluding: [])
        #expect(due.map(\.messageID) == [a.id, c.id])
        #expect(due[0].contactPortalID == "P-1" && due[0].threadID == "T-1" && due[0].text == "A")
        // A conversation in flight is skipped.
        due = try await store.dueOutboxItems(channels: [.portal], now: 100, limit: 10, excluding: [c1.conversationID])
        #expect(due.map(\.messageID) == [c.id])
        // A retry in the future holds back the whole conversation: B never overtakes A.
        let itemA = try #require(try await store.dueOutboxItems(channels: [.portal], now: 100, limit: 10, excluding: []).first)
        try await store.scheduleOutboxRetry(itemA, at: 500, reason: "HTTP 503")
        due = try await store.dueOutboxItems(channels: [.portal], now: 100, limit: 10, excluding: [])
        #expect(due.map(\.messageID) == [c.id])
        #expect(try await store.dueOutboxItems(channels: [], now: 100, limit: 10, excluding: []).isEmpty)
        // Dead-lettering A lets B go, and A shows as failed with its reason.
        try await store.deadLetterOutbox(itemA, reason: "the portal refused the message with HTTP 400")
        due = try await store.dueOutboxItems(channels: [.portal], now: 100, limit: 10, excluding: [])
        #expect(due.map(\.messageID) == [b.id, c.id])
        try await store.markOutboxDelivered(due[0])
        let stats = try await store.outboxStats(now: 1000)
        #expect(stats.pending == 1 && stats.dead == 1 && stats.oldestPendingAgeMilliseconds == 1000 - 12)
        let detail = try await store.readConversation(id: c1.conversationID, by: agent, sourceAddress: nil)
        #expect(detail.messages.map(\.deliveryStatus) == [nil, .failed, .delivered])
        #expect(detail.messages[1].failureReason == "the portal refused the message with HTTP 400")
        #expect(detail.conversation.assigneeID == agent.id)
    }
}
