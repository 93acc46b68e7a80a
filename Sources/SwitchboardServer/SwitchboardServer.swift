import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
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
    private let draining = Atomic<Bool>(false)
    /// Listeners besides HTTP (SMTP) that must be bound before the daemon is ready.
    private let pendingListeners = Atomic<Int>(0)
    public init() {}
    public var isReady: Bool {
        listening.load(ordering: .acquiring) && pendingListeners.load(ordering: .acquiring) == 0 && !isDraining
    }
    func expectListener() { pendingListeners.add(1, ordering: .acquiringAndReleasing) }
    func listenerBound() { pendingListeners.subtract(1, ordering: .acquiringAndReleasing) }
    /// SIGTERM arrived: intake answers 503 with Retry-After, /readyz says "draining", until
    /// the listener closes.
    public var isDraining: Bool { draining.load(ordering: .acquiring) }
    public func beginDraining() { draining.store(true, ordering: .releasing) }
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
    /// The configuration file SIGHUP reads again (nil: environment and defaults only).
    public var configFile: String?
    /// The shared log level SIGHUP may change (nil: loggers keep theirs).
    public var logLevel: LogLevelControl?
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
    let parts = assemble(dependencies)
    let configuration = dependencies.configuration
    let readiness = dependencies.readiness
    let onListening = dependencies.onListening
    let events = parts.events
    let chat = parts.chat
    return Application(
        router: parts.router,
        server: HTTPServerBuilder { responder in
            ShutdownAwareChannel(HTTP1WebSocketUpgradeChannel(
                responder: responder,
                configuration: .init(ws: .init(maxFrameSize: max(1 << 14, configuration.chat.maxFrameBytes),
                                               autoPing: .enabled(timePeriod: .seconds(configuration.events.pingIntervalSeconds)),
                                               closeTimeout: .seconds(5),
                                               // Invalid UTF-8 in a text frame or a close reason fails the
                                               // connection (1007), as RFC 6455 §8.1 requires.
                                               validateUTF8: true)),
                shouldUpgrade: { head, channel, logger in
                    if let chat, URI(head.path ?? "").path == ChatController.path, head.method == .get {
                        return chat.upgrade(head, channel: channel, logger: logger)
                    }
                    return try await events.shouldUpgrade(head, channel: channel, logger: logger)
                }),
                readIdleTimeout: .seconds(max(configuration.http.idleTimeoutSeconds, 2 * configuration.events.pingIntervalSeconds + 10)))
        },
        configuration: .init(address: .hostname(configuration.http.host, port: configuration.http.port),
                             serverName: "switchboard"),
        services: parts.services,
        onServerRunning: { channel in
            readiness.markListening(true)
            await onListening(channel.localAddress)
        },
        logger: dependencies.logger
    )
}

/// The daemon's routers and background services, wired together.
struct AssembledServer {
    let router: Router<AppRequestContext>
    let events: EventStreamController
    /// nil when `chat.enabled` is false.
    let chat: ChatController?
    let services: [any Service]
}

func assemble(_ dependencies: SwitchboardDependencies) -> AssembledServer {
    let configuration = dependencies.configuration
    let store = dependencies.store
    let metrics = SwitchboardMetrics()
    let wake = WakeSignal()
    let triageWake = WakeSignal()
    let readiness = dependencies.readiness

    let router = Router(context: AppRequestContext.self)
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: DrainMiddleware(readiness: readiness))
    router.add(middleware: ForwardedForMiddleware(trusted: Set(configuration.http.trustedProxies)))

    router.get("/healthz") { _, _ in
        JSON.response(["status": "ok"])
    }
    router.get("/api/v1/openapi.json") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
    }
    router.get("/readyz") { _, _ in
        guard readiness.isReady else {
            return JSON.response(["status": readiness.isDraining ? "draining" : "not ready"], status: .serviceUnavailable)
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

    let normaliserWake = WakeSignal()
    PortalWebhookController(store: store, portal: configuration.portal, phone: configuration.phone, metrics: metrics,
                            triageWake: triageWake, normaliserWake: normaliserWake)
        .register(on: router)

    SMSWebhookController(store: store, configuration: configuration, metrics: metrics, outboxWake: wake, triageWake: triageWake)
        .register(on: router)

    let routerService = RouterService(store: store, configuration: configuration, metrics: metrics, logger: dependencies.logger)
    let auth = BearerAuthMiddleware(store: store, sessionIdleSeconds: configuration.chat.consoleIdleTimeoutSeconds) { agentID in
        await routerService.touch(agent: agentID)
    }
    let hub = EventHub()
    let chatHub = ChatHub()
    let eventsObservation = store.observeCommits(to: "events") {
        hub.notify()
        chatHub.eventsCommitted.signal()
    }
    let events = EventStreamController(store: store, hub: hub, auth: auth, router: routerService, metrics: metrics)
    events.register(http: router)

    let api = router.group("api/v1").add(middleware: auth)
    ConversationsController(store: store, sms: configuration.sms, outboxWake: wake, chatHub: chatHub).register(on: api)
    RoutingController(store: store, router: routerService).register(on: api)
    SessionController(store: store, auth: auth).register(on: router, api: api)

    let outbox = OutboxService(store: store, configuration: configuration, wake: wake, metrics: metrics,
                               logger: dependencies.logger)
    let triage = TriageService(store: store, configuration: configuration.triage, wake: triageWake, outboxWake: wake,
                               metrics: metrics, logger: dependencies.logger, rules: dependencies.rules)
    let reloader = ReloadService(configFile: dependencies.configFile, rulesPath: configuration.triage.rulesFile, holder: dependencies.rules,
                                 logLevel: dependencies.logLevel, router: routerService, logger: dependencies.logger)
    let systemd = SystemdService(notifier: SystemdNotifier(), store: store, logger: dependencies.logger, readiness: readiness)
    let normaliser = InboundNormaliser(store: store, wake: normaliserWake, triageWake: triageWake, metrics: metrics,
                                       logger: dependencies.logger)
    var services: [any Service] = [outbox, triage, reloader, routerService, ObservationKeeper(observation: eventsObservation), systemd,
                                   normaliser]

    let email = configuration.email
    let ingest = EmailIngest(store: store, email: email, metrics: metrics, triageWake: triageWake)
    if email.listenerEnabled {
        readiness.expectListener()
        services.append(SMTPListenerService(configuration: email, ingest: ingest, metrics: metrics, logger: dependencies.logger,
                                            readiness: readiness, onListening: { _ in readiness.listenerBound() }))
    } else {
        dependencies.logger.notice("SMTP listener disabled", metadata: ["missing": "email.accepted_domains or email.accepted_addresses"])
    }
    if email.imapEnabled {
        services.append(IMAPPoller(email: email, store: store, ingest: ingest, metrics: metrics, logger: dependencies.logger))
    }
    var chat: ChatController?
    if configuration.chat.enabled {
        let controller = ChatController(store: store, hub: chatHub, configuration: configuration, rules: dependencies.rules,
                                        metrics: metrics, tokens: VisitorTokenKeeper(configured: configuration.chat.visitorTokenSecret, store: store),
                                        triageWake: triageWake, router: routerService, readiness: readiness)
        controller.register(http: router)
        WebAssets.register(on: router)
        services.append(ChatEventPump(store: store, hub: chatHub, logger: dependencies.logger))
        chat = controller
    }
    return AssembledServer(router: router, events: events, chat: chat, services: services)
}

/// Holds the events-table observation for the application's lifetime and ends it on
/// shutdown.
struct ObservationKeeper: Service, CustomStringConvertible {
    let observation: CommitObservation
    var description: String { "ObservationKeeper" }

    func run() async throws {
        try? await gracefulShutdown()
        observation.cancel()
    }
}
