import GRDB
import Synchronization

// GroupCommit — many callers' writes, one fsync.
//
// With `synchronous=FULL` every COMMIT waits for the disk (one fsync of the WAL), so one
// transaction per inbound message caps ingest at the disk's fsync rate (a few thousand a
// second here) however many sessions are waiting. Postfix and every database with a
// write-ahead log do the same thing about it: writes that arrive while a commit is on its
// way to disk wait for the next one, and that next commit carries all of them.
//
// How: `write` enqueues the caller's body and suspends. Whoever finds the queue idle hands a
// drain to the writer's own dispatch queue; it takes everything queued (at most `maxBatch`),
// runs the bodies one after the other in one IMMEDIATE transaction, commits once, and only
// then resumes the callers, each with its own result. While writes are waiting the next
// batch is handed to the writer's queue again (not run in a loop there, so other writes on
// that queue take their turn between batches). The drain never leaves the writer's thread:
// an earlier version drained from a task, which cost a task, two actor hops and two thread
// switches per batch on top of the callers' own. If a body throws, that transaction is rolled back and the batch
// runs again with each body in its own SAVEPOINT, so one caller's failure undoes only its
// own writes. Bodies queued while a commit is on its way to disk form the next batch. There
// is no timer: a lone write commits at once, so latency at low load is what it was, and
// batches grow only when writers are actually waiting.
//
// Trusts: bodies to be short, synchronous, and to touch only the database they are given
// (no side effects outside it: a body may be run twice, or run and then undone).
// On failure: a body that throws rolls back its own savepoint and gets its error; the others
// commit. If SQLite itself rolls back the transaction (disk full, I/O error) or the COMMIT
// fails, every caller in the batch gets that error: none of them was committed, so none of
// them may be acknowledged. No caller is ever resumed with success before the COMMIT returned.
/// An inbound write was refused before it started: too many writes are already waiting for
/// the store (`store.max_queued_writes`), or too many deliveries acknowledged on receipt wait
/// to be stored (`store.max_backlog`). Nothing was written; the sender should retry later.
public struct StoreOverloaded: Error, CustomStringConvertible {
    public enum Queue: Sendable { case writes, backlog }
    public var queue: Queue = .writes

    public init(queue: Queue = .writes) { self.queue = queue }

    public var description: String {
        switch queue {
        case .writes: "the store's write queue is full"
        case .backlog: "the inbound queue is full"
        }
    }
}

final class GroupCommit: Sendable {
    /// Transactions and bodies committed so far (for the store's metrics).
    struct Statistics: Sendable, Equatable {
        var transactions: Int = 0
        var writes: Int = 0
        var largestBatch: Int = 0
    }

    private struct Job: Sendable {
        let body: @Sendable (Database) throws -> any Sendable
        let resume: @Sendable (Result<any Sendable, any Error>) -> Void
    }

    private struct State {
        var queue: [Job] = []
        var draining = false
        var statistics = Statistics()
    }

    private let writer: DatabasePool
    private let maxBatch: Int
    private let observer: (@Sendable (_ writes: Int) -> Void)?
    private let state = Mutex(State())

    /// `observer` hears of every committed transaction and how many writes it carried.
    init(writer: DatabasePool, maxBatch: Int = 256, observer: (@Sendable (_ writes: Int) -> Void)? = nil) {
        self.writer = writer
        self.maxBatch = maxBatch
        self.observer = observer
    }

    var statistics: Statistics { state.withLock { $0.statistics } }

    /// Writes waiting for the next transaction (not counting the one being committed).
    var queued: Int { state.withLock { $0.queue.count } }

    /// Runs `body` in the next group transaction and returns its result once that
    /// transaction is committed. With `admittingBelow`, a write that would find that many
    /// others already waiting is refused at once (`StoreOverloaded`) instead of queueing.
    func write<T: Sendable>(admittingBelow limit: Int? = nil, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let result: any Sendable = try await withCheckedThrowingContinuation { continuation in
            let job = Job(body: { db in try body(db) }, resume: { continuation.resume(with: $0) })
            let admitted: Bool?  // nil: refused; else whether this caller starts the drain
            admitted = state.withLock { state in
                if let limit, state.queue.count >= limit { return nil }
                state.queue.append(job)
                if state.draining { return false }
                state.draining = true
                return true
            }
            switch admitted {
            case nil: continuation.resume(throwing: StoreOverloaded())
            case true?: scheduleBatch()
            case false?: break
            }
        }
        // The body returned a T; the box only carried it across the queue.
        return result as! T
    }

    /// Hands the next batch to the writer's queue. Called with `draining` set, by the caller
    /// that set it or by the batch before.
    private func scheduleBatch() {
        writer.asyncWriteWithoutTransaction { db in
            let batch: [Job] = self.state.withLock { state in
                let count = min(state.queue.count, self.maxBatch)
                let batch = Array(state.queue.prefix(count))
                state.queue.removeFirst(count)
                return batch
            }
            if !batch.isEmpty { self.commit(batch, db) }
            let more = self.state.withLock { state in
                if state.queue.isEmpty {
                    state.draining = false
                    return false
                }
                return true
            }
            if more { self.scheduleBatch() }
        }
    }

    private func commit(_ batch: [Job], _ db: Database) {
        let outcomes: [Result<any Sendable, any Error>]
        do {
            // Bodies rarely throw, so the batch first runs bare, without a savepoint per
            // body (two more statements each). If one throws, its half-done writes are in
            // the transaction: roll everything back and run the batch again with each body
            // in its own savepoint. Bodies only touch the database, so running one again
            // after a rollback is the same as running it the first time.
            if let values = try Self.runBare(batch, db) {
                outcomes = values.map { .success($0) }
            } else {
                outcomes = try Self.runIsolated(batch, db)
            }
        } catch {
            for job in batch { job.resume(.failure(error)) }
            return
        }
        state.withLock { state in
            state.statistics.transactions += 1
            state.statistics.writes += batch.count
            state.statistics.largestBatch = max(state.statistics.largestBatch, batch.count)
        }
        observer?(batch.count)
        for (job, outcome) in zip(batch, outcomes) { job.resume(outcome) }
    }

    /// Every body in one transaction; nil (and nothing written) if any of them threw.
    private static func runBare(_ batch: [Job], _ db: Database) throws -> [any Sendable]? {
        var values: [any Sendable] = []
        values.reserveCapacity(batch.count)
        var completed = false
        try db.inTransaction(.immediate) {
            for job in batch {
                do {
                    values.append(try job.body(db))
                } catch {
                    return .rollback
                }
            }
            completed = true
            return .commit
        }
        return completed ? values : nil
    }

    /// Every body in its own savepoint of one transaction: a body that throws undoes only
    /// its own writes and gets its error.
    private static func runIsolated(_ batch: [Job], _ db: Database) throws -> [Result<any Sendable, any Error>] {
        var outcomes: [Result<any Sendable, any Error>] = []
        outcomes.reserveCapacity(batch.count)
        try db.inTransaction(.immediate) {
            for job in batch {
                do {
                    var value: (any Sendable)?
                    try db.inSavepoint {
                        value = try job.body(db)
                        return .commit
                    }
                    outcomes.append(.success(value!))
                } catch {
                    // SQLite rolls the whole transaction back on some errors (full disk,
                    // I/O): then nothing in this batch can commit, and the statements
                    // after would run outside it.
                    if !db.isInsideTransaction { throw error }
                    outcomes.append(.failure(error))
                }
            }
            return .commit
        }
        return outcomes
    }
}
