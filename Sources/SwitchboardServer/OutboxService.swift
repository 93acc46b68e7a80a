import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import SwitchboardConfig
import SwitchboardCore
import SwitchboardStore

/// Delivers queued replies through their channel's egress, one conversation at a time in
/// order, several conversations at once.
///
/// Strategy (named, like Postfix's queue manager): the oldest pending item of each
/// conversation is due when its `next_attempt_at` has passed; at most `outbox.concurrency`
/// deliveries are in flight, each for a different conversation. A transient failure (5xx,
/// 408, 429, timeout, connection error) is retried with exponential backoff and full jitter
/// in [delay/2, delay], delay = min(initial × 2^(attempt−1), max), and never sooner than a
/// 429's Retry-After; a permanent refusal (other 4xx) or a message still undelivered after
/// `outbox.horizon_seconds` is dead-lettered, and the agent sees it failed.
///
/// "Better to deliver twice than to lose": an attempt is recorded only after the peer
/// answered, so a crash mid-delivery means one more attempt after restart with the same
/// `webhook-id`, which the receiver dedupes on.
///
/// New replies wake the loop at once (`WakeSignal`); due retries are found by polling every
/// `outbox.poll_interval_ms`. On graceful shutdown no new delivery starts; those in flight
/// finish (bounded by the request timeout).
public struct OutboxService: Service, CustomStringConvertible {
    /// ServiceLifecycle logs its services by description: never the configuration (secrets).
    public var description: String { "OutboxService" }

    let store: SwitchboardStore
    let configuration: SwitchboardConfiguration
    let wake: WakeSignal
    let metrics: SwitchboardMetrics
    let logger: Logger
    let httpClient: HTTPClient

    public init(store: SwitchboardStore, configuration: SwitchboardConfiguration, wake: WakeSignal,
                metrics: SwitchboardMetrics, logger: Logger, httpClient: HTTPClient = .switchboardEgress) {
        self.store = store
        self.configuration = configuration
        self.wake = wake
        self.metrics = metrics
        self.logger = logger
        self.httpClient = httpClient
    }

    /// Channels whose egress is configured. Items of other channels wait in the outbox.
    var deliverableChannels: [SwitchboardCore.Channel] {
        var channels: [SwitchboardCore.Channel] = configuration.chat.enabled ? [.chat] : []
        if configuration.portal.outboundURL != nil && configuration.portal.effectiveOutboundSecret != nil { channels.append(.portal) }
        if configuration.twilio.outboundEnabled || configuration.kannel.outboundEnabled { channels.append(.sms) }
        if configuration.email.outboundEnabled { channels.append(.email) }
        return channels
    }

    public func run() async throws {
        if deliverableChannels.allSatisfy({ $0 == .chat }) {
            logger.notice("outbox has no configured egress besides web chat; other replies wait until one is configured",
                          metadata: ["missing": "portal.outbound_url, twilio, kannel or email.submission_url"])
        }
        let inFlight = InFlightConversations()
        let pollInterval = Duration.milliseconds(configuration.outbox.pollIntervalMilliseconds)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    let busy = inFlight.snapshot
                    let free = configuration.outbox.concurrency - busy.count
                    var items: [OutboxItem] = []
                    if free > 0 {
                        do {
                            items = try await store.dueOutboxItems(channels: deliverableChannels, now: Timestamp.now(),
                                                                   limit: free, excluding: busy)
                        } catch {
                            logger.error("outbox query failed", metadata: ["error.type": "\(type(of: error))"])
                        }
                    }
                    for item in items {
                        inFlight.insert(item.conversationID)
                        group.addTask {
                            await deliver(item)
                            inFlight.remove(item.conversationID)
                            wake.signal()
                        }
                    }
                    if items.isEmpty || items.count < free || free <= 0 {
                        await wake.wait(timeout: pollInterval)
                    }
                }
            }
        } onGracefulShutdown: {
            wake.signal()
        }
    }

    /// One delivery attempt and its bookkeeping. Never throws: every outcome is recorded.
    func deliver(_ item: OutboxItem) async {
        var logger = logger
        logger[metadataKey: "conversation.id"] = "\(item.conversationID)"
        logger[metadataKey: "message.id"] = "\(item.messageID)"
        logger[metadataKey: "channel"] = "\(item.channel.rawValue)"
        logger[metadataKey: "attempt"] = "\(item.attempts + 1)"
        let now = Timestamp.now()
        let horizon = configuration.outbox.horizonSeconds * 1000
        do {
            if now - item.createdAt > horizon {
                try await deadLetter(item, reason: "not delivered within outbox.horizon_seconds", countsAsAttempt: false, logger: logger)
                return
            }
            let outcome: EgressOutcome
            switch item.channel {
            case .portal:
                outcome = await PortalEgress(configuration: configuration.portal, httpClient: httpClient).send(item, now: now)
            case .sms:
                outcome = await SMSEgress(configuration: configuration, httpClient: httpClient).send(item, now: now)
            case .email:
                outcome = await EmailEgress(email: configuration.email, store: store).send(item, now: now)
            case .chat:
                // A chat reply is in the visitor's stream once committed: open widgets are
                // woken by its event, a closed one receives it on return. It is `sent` now and
                // `delivered` when the widget acknowledges it (`received`).
                outcome = .delivered(status: .sent, externalID: nil)
            }
            switch outcome {
            case .delivered(let status, let externalID):
                try await store.markOutboxDelivered(item, status: status, externalID: externalID)
                metrics.messageOut(channel: item.channel, outcome: "delivered")
                logger.info("reply delivered")
            case .retry(let reason, let retryAfter):
                let next = nextAttempt(after: item.attempts + 1, now: Timestamp.now(), retryAfterSeconds: retryAfter)
                if next - item.createdAt > horizon {
                    try await deadLetter(item, reason: "not delivered within outbox.horizon_seconds (last: \(reason))", logger: logger)
                } else {
                    try await store.scheduleOutboxRetry(item, at: next, reason: reason)
                    metrics.messageOut(channel: item.channel, outcome: "retry")
                    logger.notice("reply delivery will be retried", metadata: [
                        "reason": "\(reason)", "retry.in_ms": "\(next - Timestamp.now())",
                    ])
                }
            case .permanentFailure(let reason):
                try await deadLetter(item, reason: reason, logger: logger)
            }
        } catch {
            // The store failed to record the outcome: the item stays pending and will be
            // attempted again (the receiver dedupes on webhook-id).
            metrics.storeFailure()
            logger.error("outbox bookkeeping failed", metadata: ["error.type": "\(type(of: error))"])
        }
    }

    private func deadLetter(_ item: OutboxItem, reason: String, countsAsAttempt: Bool = true, logger: Logger) async throws {
        try await store.deadLetterOutbox(item, reason: reason, countsAsAttempt: countsAsAttempt)
        metrics.messageOut(channel: item.channel, outcome: "dead")
        logger.warning("reply dead-lettered", metadata: ["reason": "\(reason)"])
    }

    /// Exponential backoff with jitter, never sooner than the peer's Retry-After.
    func nextAttempt(after attempts: Int, now: Int64, retryAfterSeconds: Int64?) -> Int64 {
        let outbox = configuration.outbox
        let exponent = min(max(attempts - 1, 0), 40)
        let ceiling = min(Double(outbox.initialBackoffMilliseconds) * pow(2, Double(exponent)), Double(outbox.maxBackoffMilliseconds))
        var delay = Int64(Double.random(in: ceiling / 2 ... ceiling))
        if let retryAfterSeconds { delay = max(delay, retryAfterSeconds * 1000) }
        return now + delay
    }
}

/// What one delivery attempt came to.
enum EgressOutcome: Equatable {
    /// The peer took the message. `status` is what the message becomes (`delivered` for the
    /// portal, `sent` for an SMS gateway whose delivery report comes later); `externalID`
    /// is the gateway's id for it (namespaced, see `SMSGateway.externalID`).
    case delivered(status: DeliveryStatus, externalID: String?)
    case retry(reason: String, retryAfterSeconds: Int64?)
    case permanentFailure(String)

    /// The usual HTTP reading: 2xx taken; 408, 425, 429 and 5xx worth retrying (after
    /// Retry-After if given); any other status permanent. `peer` names the other side in
    /// the reason the agent sees.
    static func fromHTTP(status code: Int, retryAfter: String?, now: Int64, peer: String,
                         delivered: () -> EgressOutcome) -> EgressOutcome {
        switch code {
        case 200..<300:
            return delivered()
        case 408, 425, 429, 500...599:
            return .retry(reason: "HTTP \(code)", retryAfterSeconds: retryAfterSeconds(retryAfter, now: now))
        default:
            return .permanentFailure("\(peer) refused the message with HTTP \(code)")
        }
    }

    /// A transport failure: always worth retrying.
    static func fromTransport(_ error: any Error) -> EgressOutcome {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .retry(reason: "timeout", retryAfterSeconds: nil)
        }
        return .retry(reason: "connection failed", retryAfterSeconds: nil)
    }

    /// Retry-After as delay-seconds or an HTTP date; nil when absent or unreadable.
    static func retryAfterSeconds(_ value: String?, now: Int64) -> Int64? {
        guard let value = value?.trimmingWhitespace(), !value.isEmpty else { return nil }
        if let seconds = Int64(value) { return max(0, min(seconds, 86_400)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(0, min((Timestamp.milliseconds(date) - now) / 1000, 86_400))
    }
}

/// The portal's egress: one Standard-Webhooks-signed POST per reply. The `webhook-id` is
/// the message id, the same on every retry; the timestamp and signature are fresh.
struct PortalEgress {
    let configuration: SwitchboardConfiguration.Portal
    let httpClient: HTTPClient

    func send(_ item: OutboxItem, now: Int64) async -> EgressOutcome {
        guard let url = configuration.outboundURL, let secret = configuration.effectiveOutboundSecret else {
            return .retry(reason: "portal egress not configured", retryAfterSeconds: nil)
        }
        guard let patientID = item.contactPortalID else {
            return .permanentFailure("the contact has no portal patient id")
        }
        let body = PortalOutboundEvent(patientID: patientID, threadID: item.threadID, messageID: item.messageID,
                                       text: item.text, sentAt: item.sentAt).encoded()
        let timestamp = now / 1000
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "switchboard")
        request.headers.add(name: "webhook-id", value: item.messageID)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(name: "webhook-signature",
                            value: StandardWebhooks.signature(id: item.messageID, timestamp: timestamp, body: body, secret: secret))
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await httpClient.execute(request, timeout: .milliseconds(configuration.outboundTimeoutMilliseconds))
            // Drain (and bound) the body so the connection can be reused; its content is not ours to log.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            return .fromHTTP(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After"),
                             now: now, peer: "the portal") { .delivered(status: .delivered, externalID: nil) }
        } catch {
            return .fromTransport(error)
        }
    }
}

/// The conversations with a delivery in flight, shared by the loop and its child tasks.
final class InFlightConversations: Sendable {
    private let ids = Mutex(Set<String>())
    var snapshot: Set<String> { ids.withLock { $0 } }
    func insert(_ id: String) { ids.withLock { _ = $0.insert(id) } }
    func remove(_ id: String) { ids.withLock { _ = $0.remove(id) } }
}

extension HTTPClient {
    /// The client every HTTP reply goes out through (portal, Twilio, Kannel). Two settings
    /// differ from `HTTPClient.shared`:
    ///
    /// - A connection that cannot be made fails the attempt at once, instead of being retried
    ///   until the request's deadline; the outbox's backoff paces the next attempt. With the
    ///   default, an attempt that finally connected near its deadline (the peer coming back
    ///   from an outage) timed out while the peer was still answering, and the retry sent the
    ///   reply a second time: seen with Kannel restarting, one SMS reached the patient twice.
    ///   Now an attempt that connects has its whole time-out for the answer.
    /// - Redirects are not followed: a reply carrying patient data goes only to the URL the
    ///   operator configured; a 3xx is reported as a refusal.
    ///
    /// A process-wide constant, like `.shared`: it lives as long as the daemon.
    public static let switchboardEgress: HTTPClient = {
        var configuration = HTTPClient.Configuration.singletonConfiguration
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()
}
