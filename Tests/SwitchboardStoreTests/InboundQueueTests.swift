import Foundation
import GRDB
import Testing
@testable import SwitchboardCore
@testable import SwitchboardStore

/// Acknowledging on receipt: what is queued is stored once, in order, and survives a restart.
@Suite struct InboundQueueTests {
    static func message(patient: String = "P-1", thread: String? = "T-1", id: String, text: String = "hello") -> QueuedPortalMessage {
        QueuedPortalMessage(contact: InboundContact(portalID: patient, phoneE164: "+15550100000", displayName: "N"),
                            threadID: thread, messageID: id, text: text, sentAt: 1000)
    }

    func queue(_ store: SwitchboardStore, _ delivery: String, _ message: QueuedPortalMessage, now: Int64 = 5) async throws -> QueueOutcome {
        try await store.queuePortalMessage(deliveryID: delivery, rawBody: Array("{\"d\":\"\(delivery)\"}".utf8), message: message, now: now)
    }

    @Test func queuedDeliveriesAreStoredInArrivalOrderOnceAndLeaveTheQueue() async throws {
        let store = try makeStore()
        #expect(try await queue(store, "d1", Self.message(id: "M-1", text: "first"), now: 10) == .queued)
        #expect(try await queue(store, "d2", Self.message(id: "M-2", text: "second"), now: 11) == .queued)
        // The same delivery again, before it is stored: queued (receipt only appends), and
        // recognised as a repeat when it is stored.
        #expect(try await queue(store, "d1", Self.message(id: "M-1", text: "first"), now: 12) == .queued)
        #expect(store.inboundBacklogCount == 3)
        // Nothing is a message yet.
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") } == 0)

        let handled = try await store.normaliseQueued(limit: 1)
        #expect(handled.map(\.deliveryID) == ["d1"])
        let rest = try await store.normaliseQueued(limit: 10)
        #expect(rest.map(\.deliveryID) == ["d2", "d1"])
        #expect(try await store.normaliseQueued(limit: 10).isEmpty)
        #expect(store.inboundBacklogCount == 0)

        guard case .stored(let first) = handled[0].outcome, case .stored(let second) = rest[0].outcome,
              case .stored(let repeatedDelivery) = rest[1].outcome else {
            Issue.record("not stored: \(handled) \(rest)")
            return
        }
        #expect(first.conversationID == second.conversationID && !first.duplicate && !second.duplicate)
        #expect(repeatedDelivery.duplicate && repeatedDelivery.messageID == first.messageID)
        let rows = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT body_text, created_at FROM messages ORDER BY seq")
        }
        // Each message keeps the time it was received (acknowledged), not the time it was stored.
        #expect(rows.map { $0["body_text"] as String } == ["first", "second"])
        #expect(rows.map { $0["created_at"] as Int64 } == [10, 11])
        let journal = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT external_id, outcome, raw FROM inbound_journal ORDER BY id")
        }
        #expect(journal.map { $0["external_id"] as String } == ["d1", "d2"])
        #expect(journal.map { $0["raw"] as Data } == [Data("{\"d\":\"d1\"}".utf8), Data("{\"d\":\"d2\"}".utf8)])
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM inbound_queue") } == 0)

        // Once stored, the delivery is still recognised (from the journal): nothing new.
        #expect(try await queue(store, "d2", Self.message(id: "M-2", text: "second")) == .repeated)
        #expect(store.inboundBacklogCount == 0)
        // A new delivery repeating a message id already stored is recorded as such, not stored twice.
        #expect(try await queue(store, "d3", Self.message(id: "M-2", text: "second")) == .queued)
        let repeated = try await store.normaliseQueued(limit: 10)
        guard case .stored(let again)? = repeated.first?.outcome else {
            Issue.record("not handled: \(repeated)")
            return
        }
        #expect(again.duplicate && again.messageID == second.messageID)
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") } == 2)
    }

    /// A store from before receipt stopped indexing delivery ids keeps what it had queued,
    /// ids and order, and the queue takes a waiting delivery's repeat afterwards.
    @Test func upgradingKeepsWhatIsQueued() throws {
        let database = try DatabaseQueue()
        try Schema.migrator.migrate(database, upTo: "2026-12-08-messages-seq-inline")
        try database.write { db in
            try db.execute(sql: """
                INSERT INTO inbound_queue (id, channel, external_id, received_at, raw, fields, failed_at, failure) VALUES
                    (7, 'portal', 'd-a', 10, x'01', '{}', NULL, NULL), (9, 'portal', 'd-b', 11, x'02', '{}', 12, 'StoreError')
                """)
            #expect(throws: DatabaseError.self) {
                try db.execute(sql: "INSERT INTO inbound_queue (channel, external_id, received_at, raw, fields) VALUES ('portal', 'd-a', 13, x'03', '{}')")
            }
        }
        try Schema.migrator.migrate(database)
        try database.write { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, external_id, raw, failed_at, failure FROM inbound_queue ORDER BY id")
            #expect(rows.map { $0["id"] as Int64 } == [7, 9])
            #expect(rows.map { $0["external_id"] as String } == ["d-a", "d-b"])
            #expect(rows.map { $0["raw"] as Data } == [Data([1]), Data([2])])
            #expect(rows.map { $0["failed_at"] as Int64? } == [nil, 12])
            #expect(rows.map { $0["failure"] as String? } == [nil, "StoreError"])
            try db.execute(sql: "INSERT INTO inbound_queue (channel, external_id, received_at, raw, fields) VALUES ('portal', 'd-a', 13, x'03', '{}')")
            #expect(try Int64.fetchOne(db, sql: "SELECT max(id) FROM inbound_queue") == 10)
            // The normaliser's index on what waits is there again.
            #expect(try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'inbound_queue_waiting'")?
                .contains("WHERE failed_at IS NULL") == true)
            #expect(try db.indexes(on: "inbound_queue").allSatisfy { !$0.isUnique })
        }
    }

    @Test(arguments: [
        Self.message(id: "M-1"),
        QueuedPortalMessage(contact: InboundContact(portalID: "P \"q\" \\ ñ 😀", email: "a@b.example", displayName: nil),
                            threadID: nil, messageID: "M-\u{1}\n", text: "line\nbreak </script>", sentAt: -5),
    ])
    func queuedFieldsReadBackAsWritten(message: QueuedPortalMessage) throws {
        #expect(try JSONDecoder().decode(QueuedPortalMessage.self, from: Data(message.jsonText.utf8)) == message)
        #expect(try QueuedPortalMessage(jsonText: message.jsonText) == message)
    }

    @Test func aFullBacklogRefusesReceiptUntilItIsStored() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-test-\(UUID().uuidString)")
        let store = try SwitchboardStore(path: directory.appendingPathComponent("s.sqlite").path, maxInboundBacklog: 2)
        _ = try await queue(store, "d1", Self.message(id: "M-1"))
        _ = try await queue(store, "d2", Self.message(id: "M-2"))
        await #expect(throws: StoreOverloaded.self) { _ = try await queue(store, "d3", Self.message(id: "M-3")) }
        #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM inbound_queue") } == 2)
        _ = try await store.normaliseQueued(limit: 1)
        #expect(try await queue(store, "d3", Self.message(id: "M-3")) == .queued)
    }

    @Test func whatIsQueuedSurvivesARestartAndIsCountedAgain() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-test-\(UUID().uuidString)")
        let path = directory.appendingPathComponent("s.sqlite").path
        do {
            let store = try SwitchboardStore(path: path)
            _ = try await queue(store, "d1", Self.message(id: "M-1"))
            _ = try await queue(store, "d2", Self.message(id: "M-2"))
        }
        let reopened = try SwitchboardStore(path: path)
        #expect(reopened.inboundBacklogCount == 2)
        #expect(try await reopened.normaliseQueued(limit: 10).count == 2)
        #expect(reopened.inboundBacklogCount == 0)
    }

    @Test func aThreadOfAnotherPatientIsNeverJoined() async throws {
        let store = try makeStore()
        let other = try await store.record(delivery: "x", patient: "P-OTHER", thread: "T-SHARED", message: "M-X")
        _ = try await queue(store, "d1", Self.message(patient: "P-1", thread: "T-SHARED", id: "M-1", text: "mine"))
        let handled = try await store.normaliseQueued(limit: 10)
        guard case .storedApartFromThread(let result)? = handled.first?.outcome else {
            Issue.record("expected a conversation of its own: \(handled)")
            return
        }
        #expect(result.conversationID != other.conversationID)
        let owner = try await store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT c.contact_id FROM conversations c WHERE c.id = ?", arguments: [result.conversationID])
        }
        let otherOwner = try await store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT contact_id FROM conversations WHERE id = ?", arguments: [other.conversationID])
        }
        #expect(owner != nil && owner != otherOwner)
    }

    @Test func aDeliveryThatCannotBeStoredIsMarkedFailedAndTheOthersGoOn() async throws {
        let store = try makeStore()
        _ = try await queue(store, "d1", Self.message(id: "M-1"))
        _ = try await queue(store, "d2", Self.message(id: "M-2"))
        // Damage the first one's fields, as a bug or a hand edit might.
        try await store.pool.write { db in try db.execute(sql: "UPDATE inbound_queue SET fields = '{' WHERE external_id = 'd1'") }
        let handled = try await store.normaliseQueued(limit: 10)
        #expect(handled.map(\.deliveryID) == ["d1", "d2"])
        guard case .failed(let errorType) = handled[0].outcome, case .stored = handled[1].outcome else {
            Issue.record("unexpected: \(handled)")
            return
        }
        #expect(errorType == "StoreError")
        let left = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT external_id, failure FROM inbound_queue WHERE failed_at IS NOT NULL")
        }
        #expect(left.map { $0["external_id"] as String } == ["d1"])
        #expect(store.inboundBacklogCount == 0)
        #expect(try await store.normaliseQueued(limit: 10).isEmpty)
    }

    @Test func retentionPurgesAFailedDeliveryButNeverOneStillWaiting() async throws {
        let store = try makeStore()
        _ = try await queue(store, "old-failed", Self.message(id: "M-1"), now: 100)
        _ = try await queue(store, "old-waiting", Self.message(id: "M-2"), now: 100)
        try await store.pool.write { db in try db.execute(sql: "UPDATE inbound_queue SET failed_at = 150, failure = 'X' WHERE external_id = 'old-failed'") }
        let dry = try await store.purge(olderThan: 1000, operator: "test", dryRun: true, now: 2000)
        #expect(dry.journalEntries == 1)
        _ = try await store.purge(olderThan: 1000, operator: "test", dryRun: false, now: 2000)
        let left = try await store.pool.read { db in try String.fetchAll(db, sql: "SELECT external_id FROM inbound_queue") }
        #expect(left == ["old-waiting"])
    }
}
