import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization
import SwitchboardConfig
import SwitchboardCore
import SwitchboardRules
import SwitchboardStore

// SwitchboardServer — the daemon's parts assembled: HTTP routes (channels' webhooks, the
// agent API, health and metrics), the outbox service, and their lifecycle.
//
// `buildApplication` is the one function that the daemon's `main` and the in-process
// tests both call, so that what is tested is what runs.
//
// Trusts: nothing that arrives over HTTP. Webhooks are authenticated by their channel's own
// signature scheme and API calls by bearer token before anything is stored or read.
// On failure: a request gets a JSON error with the right status and a log line without
// PHI; the store failing to commit is a 503 with Retry-After (the sender retries, nothing
// is acknowledged that was not stored). SIGTERM/SIGINT stop intake, drain in-flight
// requests and deliveries, then return.

/// Whether the daemon should receive traffic: store open and migrated (true before the
/// application is built) and the listener bound.
public final class Readiness: Sendable {
    private let listening = Atomic<Bool>(false)
    public init() {}
    public var isReady: Bool { listening.load(ordering: .acquiring) }
    func markListening(_ value: Bool) { listening.store(value, ordering: .releasing) }
}

public struct SwitchboardDependencies: Sendable {
    public var configuration: SwitchboardConfiguration
    public var store: SwitchboardStore
    public var logger: Logger
    /// Where `/metrics` reads from; nil serves an empty exposition (tests).
    public var prometheus: PrometheusCollectorRegistry?
    public var readiness = Readiness()
    /// The rules in force (loaded by the caller, reloaded on SIGHUP).
    public var rules = RulesHolder(.empty)
    public var onListening: @Sendable (SocketAddress?) async -> Void = { _ in }

    public init(configuration: SwitchboardConfiguration, store: SwitchboardStore, logger: Logger,
                prometheus: PrometheusCollectorRegistry?) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.prometheus = prometheus
    }
}

public func buildApplication(_ dependencies: SwitchboardDependencies) -> some ApplicationProtocol {
    let configuration = dependencies.configuration
    let store = dependencies.store
    let metrics = SwitchboardMetrics()
    let wake = WakeSignal()
    let triageWake = WakeSignal()
    let readiness = dependencies.readiness

    let router = Router(context: AppRequestContext.self)
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorMiddleware())

    router.get("/healthz") { _, _ in
        JSON.response(["status": "ok"])
    }
    router.get("/readyz") { _, _ in
        guard readiness.isReady else {
            return JSON.response(["status": "not ready"], status: .serviceUnavailable)
        }
        do {
            try await store.ping()
        } catch {
            return JSON.response(["status": "store unavailable"], status: .serviceUnavailable)
        }
        return JSON.response(["status": "ready"])
    }
    router.get("/metrics") { _, _ in
        if let stats = try? await store.outboxStats() {
            metrics.outbox(depth: stats.pending, oldestAgeSeconds: Double(stats.oldestPendingAgeMilliseconds) / 1000, dead: stats.dead)
        }
        var buffer: [UInt8] = []
        dependencies.prometheus?.emit(into: &buffer)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }

    PortalWebhookController(store: store, portal: configuration.portal, phone: configuration.phone, metrics: metrics,
                            triageWake: triageWake)
        .register(on: router)

    SMSWebhookController(store: store, configuration: configuration, metrics: metrics, outboxWake: wake, triageWake: triageWake)
        .register(on: router)

    let api = router.group("api/v1").add(middleware: BearerAuthMiddleware(store: store))
    ConversationsController(store: store, sms: configuration.sms, outboxWake: wake).register(on: api)

    let outbox = OutboxService(store: store, configuration: configuration, wake: wake, metrics: metrics,
                               logger: dependencies.logger)
    let triage = TriageService(store: store, configuration: configuration.triage, wake: triageWake, outboxWake: wake,
                               metrics: metrics, logger: dependencies.logger, rules: dependencies.rules)
    let reloader = RulesReloadService(path: configuration.triage.rulesFile, holder: dependencies.rules, logger: dependencies.logger)
    let onListening = dependencies.onListening
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.http.host, port: configuration.http.port),
                             serverName: "switchboard"),
        services: [outbox, triage, reloader],
        onServerRunning: { channel in
            readiness.markListening(true)
            await onListening(channel.localAddress)
        },
        logger: dependencies.logger
    )
}
