import Logging
import Synchronization
import SwitchboardCore
import SwitchboardStore

// Load shedding: what an inbound channel answers when the store's write queue is full
// (`store.max_queued_writes`, see `StoreOverloaded`). Past capacity the daemon says "later"
// at once — 503 with Retry-After to a webhook, 451 4.3.2 to an SMTP client, an `overloaded`
// error frame (no ack) to a chat widget — instead of letting requests wait until they time
// out. Nothing was written, so the sender's retry is the first delivery, not a duplicate.
//
// Each refusal is counted in `switchboard_inbound_shed_total{channel}`; the log says so at
// most once a second (with how many were refused since), so that an overload does not also
// flood the journal.
final class LoadShedding: Sendable {
    static let shared = LoadShedding()

    /// The webhook answer.
    static let httpError = APIError(.serviceUnavailable, code: "overloaded",
                                    "the server is busy; retry in a moment", headers: [.retryAfter: "1"])

    private struct State {
        var lastLogged: Int64 = 0
        var refusedSinceLog = 0
    }
    private let state = Mutex(State())

    func refused(_ channel: Channel, metrics: SwitchboardMetrics, logger: Logger, queue: StoreOverloaded.Queue = .writes,
                 now: Int64 = Timestamp.now()) {
        metrics.shed(channel: channel)
        let report: Int? = state.withLock { state in
            state.refusedSinceLog += 1
            guard now - state.lastLogged >= 1000 else { return nil }
            defer { state.lastLogged = now; state.refusedSinceLog = 0 }
            return state.refusedSinceLog
        }
        guard let report else { return }
        switch queue {
        case .writes:
            logger.warning("inbound messages refused: the store's write queue is full", metadata: [
                "channel": "\(channel.rawValue)", "refused": "\(report)",
                "hint": "raise store.max_queued_writes only if the disk keeps up; see docs/OPERATIONS.md#overload",
            ])
        case .backlog:
            logger.warning("inbound messages refused: the inbound queue is full", metadata: [
                "channel": "\(channel.rawValue)", "refused": "\(report)",
                "hint": "storing falls behind receipt; see switchboard_inbound_backlog and docs/OPERATIONS.md#overload",
            ])
        }
    }
}
