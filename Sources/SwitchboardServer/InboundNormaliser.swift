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
/// Intake first: while deliveries keep arriving, the normaliser works at most a quarter of
/// the time (after each batch it pauses three times as long as the batch took). Storing,
/// triaging and routing a new patient's message costs far more CPU than acknowledging it
/// (about 1.4 ms of CPU against a few tenths of one here), so without the pause a burst is
/// acknowledged only as fast as it is processed, and senders time out and retry. With it, a
/// burst is taken at the acknowledgement's speed into the bounded queue (`store.max_backlog`,
/// then 503 with Retry-After) and stored at full speed as soon as it eases; agents still see
/// it arrive meanwhile, more slowly.
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
    /// The pause after a batch while intake is busy, as a multiple of the batch's time.
    static let pauseFactor = 3

    func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                var handled = 0
                let started = ContinuousClock.now
                let intakeBusy = store.millisecondsSinceLastQueued < Self.intakeQuietMilliseconds
                let batchSize = intakeBusy ? busyBatchSize : quietBatchSize
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
                metrics.inboundBacklog(store.inboundBacklogCount)
                if handled < batchSize {
                    await wake.wait(timeout: .seconds(5))
                } else if store.millisecondsSinceLastQueued < Self.intakeQuietMilliseconds {
                    try? await Task.sleep(for: (ContinuousClock.now - started) * Self.pauseFactor)
                }
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
