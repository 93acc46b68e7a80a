import Logging
import ServiceLifecycle
import SwitchboardCore
import SwitchboardStore

/// Stores the deliveries that were acknowledged on receipt (`portal.acknowledge: received`):
/// takes them from the inbound queue in arrival order, a batch per transaction, and makes
/// each into a message exactly as a synchronous delivery is made (see
/// `SwitchboardStore+InboundQueue.swift`). Woken by every queued delivery; at start it drains
/// whatever a stop or a crash left queued.
///
/// Intake first, but only when intake outruns storing (see `NormalisePacing`): a load that
/// storing keeps up with is stored as it arrives; a burst beyond storing's speed is taken at
/// the acknowledgement's speed into the bounded queue (`store.max_backlog`, then 503 with
/// Retry-After) while storing works a tenth of the time, and is stored at full speed as soon
/// as it eases or the queue is half full. Storing, triaging and routing a new patient's
/// message costs far more CPU than acknowledging it (about 1 ms against a few tenths of one
/// here), so without standing aside in a burst the burst is acknowledged only as fast as it
/// is processed, and senders time out and retry.
///
/// Trusts: the store. On failure: a delivery that cannot be stored is left queued and marked
/// failed (logged with its delivery id and the error's type, never its content); the store
/// failing leaves the batch queued and the loop waits before trying again.
struct InboundNormaliser: Service, CustomStringConvertible {
    let store: SwitchboardStore
    let wake: WakeSignal
    let triageWake: WakeSignal
    let metrics: SwitchboardMetrics
    let logger: Logger
    /// Deliveries per transaction while deliveries arrive: as few as this, because the
    /// acknowledgements committed meanwhile share that transaction and wait for all of it
    /// (about 1 ms per delivery stored here). Batches of 8 held every acknowledgement behind
    /// ~8 ms of statements a quarter of the time; 2 gave 4,621–4,866 acknowledgements a second
    /// against 4,067–4,253, and p99 13 ms against 18 (Benchmarks/ingest.sh, ACK=received).
    /// Once intake has eased: enough to share each commit's fsync among many.
    var busyBatchSize = 2
    var quietBatchSize = 64

    var description: String { "InboundNormaliser" }

    /// Intake counts as busy while a delivery was queued this recently.
    static let intakeQuietMilliseconds: Int64 = 100

    func run() async throws {
        var pacing = NormalisePacing(busyBatchSize: busyBatchSize, quietBatchSize: quietBatchSize)
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                var handled = 0
                let started = ContinuousClock.now
                pacing.observeIntake(queuedCount: store.inboundQueuedCount, at: started)
                let batchSize = pacing.batchSize(intakeBusy: store.millisecondsSinceLastQueued < Self.intakeQuietMilliseconds)
                do {
                    let batch = try await store.normaliseQueued(limit: batchSize)
                    handled = batch.count
                    report(batch)
                } catch {
                    metrics.storeFailure()
                    logger.error("queued deliveries not stored; retrying", metadata: [
                        "error.type": "\(type(of: error))", "inbound.backlog": "\(store.inboundBacklogCount)",
                    ])
                    await wake.wait(timeout: .seconds(1))
                    continue
                }
                let took = ContinuousClock.now - started
                pacing.observeBatch(handled: handled, took: took)
                metrics.inboundBacklog(store.inboundBacklogCount)
                if handled < batchSize {
                    await wake.wait(timeout: .seconds(5))
                    continue
                }
                let pause = pacing.pause(after: took, intakeBusy: store.millisecondsSinceLastQueued < Self.intakeQuietMilliseconds,
                                         backlog: store.inboundBacklogCount, maxBacklog: store.maxInboundBacklog)
                if pause > .zero { try? await Task.sleep(for: pause) }
            }
        } onGracefulShutdown: {
            // What is still queued is on disk and is stored at the next start.
            wake.signal()
        }
    }

    private func report(_ batch: [NormalisedDelivery]) {
        // The per-delivery logger (ids only) is built only for a line that will be written:
        // at the usual `warning` level the stored ones log nothing, and this runs per message.
        let infoLogged = logger.logLevel <= .info
        func deliveryLogger(_ delivery: NormalisedDelivery, _ result: IngestResult?) -> Logger {
            var logger = logger
            logger[metadataKey: "channel"] = "\(delivery.channel.rawValue)"
            logger[metadataKey: "webhook.id"] = "\(delivery.deliveryID)"
            if let result {
                logger[metadataKey: "conversation.id"] = "\(result.conversationID)"
                logger[metadataKey: "message.id"] = "\(result.messageID)"
            }
            return logger
        }
        var stored = false
        for delivery in batch {
            switch delivery.outcome {
            case .stored(let result), .storedApartFromThread(let result):
                if result.duplicate {
                    if infoLogged { deliveryLogger(delivery, result).info("queued delivery repeats a stored message") }
                    continue
                }
                stored = true
                metrics.messageIn(channel: delivery.channel)
                if case .storedApartFromThread = delivery.outcome {
                    deliveryLogger(delivery, result).warning("queued message stored in a new conversation", metadata: [
                        "reason": "thread_id belongs to another patient's conversation",
                    ])
                } else if infoLogged {
                    deliveryLogger(delivery, result).info("queued message stored")
                }
            case .failed(let errorType):
                metrics.storeFailure()
                deliveryLogger(delivery, nil).error("queued delivery cannot be stored; left in inbound_queue marked failed", metadata: [
                    "error.type": "\(errorType)",
                ])
            }
        }
        if stored { triageWake.signal() }
    }
}

/// When the normaliser stores flat out and when it stands aside for intake. Pure: fed what the
/// normaliser observed (deliveries queued so far, each batch's size and time), it answers how
/// large the next batch is and how long to pause after one; tested on its own.
///
/// The rule: storing pauses for intake only while deliveries arrive clearly faster (twice)
/// than storing goes.
/// - A load that storing keeps up with is stored as it comes: no backlog builds and agents see
///   each message at once. (The rule before paused whenever anything had arrived in the last
///   100 ms; at a steady 560 deliveries a second, half of what storing manages here, it stored
///   about 30 a second and the backlog grew by 10,000 in 20 s: `STEADY=600` in
///   Benchmarks/ingest.sh.)
/// - A burst beyond storing's speed cannot be stored as it comes whatever the normaliser does;
///   then acknowledging goes first and storing works a tenth of the time, so agents still see
///   the burst arrive, slowly, and senders are not kept waiting.
/// - Once the backlog is half of `store.max_backlog`, storing never pauses: the queue's second
///   half is for what storing at full speed cannot keep up with either, and past it intake is
///   refused (503) rather than queued.
struct NormalisePacing {
    /// Deliveries per batch while intake is busy (acknowledgements committed meanwhile share
    /// that transaction and wait for all of it), and once it is quiet.
    var busyBatchSize = 2
    var quietBatchSize = 64
    /// In a burst, the pause after a batch as a multiple of the batch's time (9: storing
    /// works a tenth of the time).
    var burstPauseFactor = 9
    /// Intake counts as outrunning storing when it is this many times storing's measured rate.
    /// Not 1: storing is timed on busy-sized batches, whose commits it barely shares, so its
    /// measure undersells it; with 1 a steady 560 a second still left 1,700 waiting at times.
    var outrunFactor = 2.0
    /// The backlog, as a fraction of `store.max_backlog`, from which storing never pauses.
    var alwaysStoreFromBacklogFraction = 0.5
    /// Intake is measured over windows at least this long.
    var intakeWindow: Duration = .milliseconds(250)

    /// Deliveries a second the recent batches stored (smoothed); nil until one is measured.
    private(set) var storingRate: Double?
    /// Deliveries a second queued in the last complete window.
    private(set) var intakeRate: Double = 0
    private var windowStart: ContinuousClock.Instant?
    private var windowStartCount = 0

    init(busyBatchSize: Int = 2, quietBatchSize: Int = 64) {
        self.busyBatchSize = busyBatchSize
        self.quietBatchSize = quietBatchSize
    }

    /// `queuedCount`: deliveries queued since start (`SwitchboardStore.inboundQueuedCount`).
    mutating func observeIntake(queuedCount: Int, at now: ContinuousClock.Instant) {
        guard let start = windowStart else {
            windowStart = now
            windowStartCount = queuedCount
            return
        }
        let elapsed = now - start
        guard elapsed >= intakeWindow else { return }
        intakeRate = Double(queuedCount - windowStartCount) / elapsed.seconds
        windowStart = now
        windowStartCount = queuedCount
    }

    mutating func observeBatch(handled: Int, took: Duration) {
        guard handled > 0, took > .zero else { return }
        let rate = Double(handled) / took.seconds
        storingRate = storingRate.map { 0.8 * $0 + 0.2 * rate } ?? rate
    }

    func batchSize(intakeBusy: Bool) -> Int { intakeBusy ? busyBatchSize : quietBatchSize }

    /// The pause after a full batch that took `took`: zero unless intake is busy, outruns
    /// storing (`outrunFactor`), and the backlog is below the always-store mark.
    func pause(after took: Duration, intakeBusy: Bool, backlog: Int, maxBacklog: Int) -> Duration {
        guard intakeBusy, Double(backlog) < Double(maxBacklog) * alwaysStoreFromBacklogFraction,
              let storingRate, intakeRate > storingRate * outrunFactor else { return .zero }
        return took * burstPauseFactor
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
