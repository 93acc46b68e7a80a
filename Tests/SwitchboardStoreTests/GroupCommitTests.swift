import Foundation
import GRDB
import Testing
@testable import SwitchboardStore

/// Group commit: concurrent writers share transactions, each keeps its own outcome, and
/// nobody hears "stored" for a write that was not committed.
@Suite struct GroupCommitTests {
    @Test func concurrentInboundMessagesShareCommitsAndAreAllStoredOnce() async throws {
        let store = try makeStore()
        let count = 400
        let results = try await withThrowingTaskGroup(of: IngestResult.self) { group in
            for i in 0..<count {
                group.addTask {
                    // Every tenth delivery is sent twice at once: dedupe inside one batch.
                    try await store.record(delivery: "d\(i % 10 == 0 ? 0 : i)", patient: "P-\(i % 7)", message: "m\(i % 10 == 0 ? 0 : i)")
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == count)
        #expect(results.filter { !$0.duplicate }.count == count - count / 10 + 1)
        let stored = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages")! }
        #expect(stored == count - count / 10 + 1)
        let statistics = store.commitStatistics
        #expect(statistics.writes == count)
        // 400 writers queued at once cannot have needed 400 transactions.
        #expect(statistics.transactions < count)
        #expect(statistics.largestBatch > 1)
        #expect(try await store.verifyAudit().ok)
    }

    @Test func aFailingWriteRollsBackOnlyItself() async throws {
        let store = try makeStore()
        struct Refused: Error {}
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<60 {
                group.addTask {
                    do {
                        try await store.write { db in
                            try db.execute(sql: "INSERT INTO settings (key, value) VALUES (?, ?)", arguments: ["k\(i)", "v"])
                            if i % 3 == 0 { throw Refused() }
                        }
                        return (i, true)
                    } catch {
                        return (i, false)
                    }
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        let keys = try await store.pool.read { db in try Set(String.fetchAll(db, sql: "SELECT key FROM settings WHERE key LIKE 'k%'")) }
        for i in 0..<60 {
            #expect(outcomes[i] == (i % 3 != 0))
            #expect(keys.contains("k\(i)") == (i % 3 != 0), "k\(i)")
        }
    }

    /// When SQLite abandons the transaction (as it does on a full disk or an I/O error — here
    /// a body rolls it back itself), every write of that batch fails and none is visible,
    /// including those that had already succeeded inside it.
    @Test func anAbandonedTransactionFailsTheWholeBatch() async throws {
        let store = try makeStore()
        let gate = Gate()
        // Hold the writer so that the next writes queue up and form one batch.
        let holder = Task { try await store.write { _ in gate.waitBlocking() } }
        try await Task.sleep(for: .milliseconds(100))
        let batch = Task {
            await withTaskGroup(of: Bool.self) { group in
                for i in 0..<20 {
                    group.addTask {
                        do {
                            try await store.write { db in
                                try db.execute(sql: "INSERT INTO settings (key, value) VALUES (?, 'v')", arguments: ["b\(i)"])
                                if i == 10 {
                                    try db.execute(sql: "ROLLBACK")
                                    throw CancellationError()
                                }
                            }
                            return true
                        } catch {
                            return false
                        }
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
        }
        while store.groupCommit.queued < 20 { try await Task.sleep(for: .milliseconds(10)) }
        gate.open()
        try await holder.value
        let outcomes = await batch.value
        let stored = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM settings WHERE key LIKE 'b%'")! }
        #expect(outcomes.count == 20 && outcomes.allSatisfy { !$0 })
        #expect(stored == 0)
        // The store keeps working afterwards.
        try await store.write { db in try db.execute(sql: "INSERT INTO settings (key, value) VALUES ('after', 'v')") }
        #expect(try await store.pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'after'") } == "v")
    }
}

/// A one-shot gate a synchronous database body can wait on.
private final class Gate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func waitBlocking() { semaphore.wait() }
    func open() { semaphore.signal() }
}
