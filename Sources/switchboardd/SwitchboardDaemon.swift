import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals
import Metrics
import Prometheus
import SwitchboardConfig
import SwitchboardCore
import SwitchboardRules
import SwitchboardServer
import SwitchboardStore

/// switchboardd — the Switchboard daemon. Parse the command line, load and check the
/// configuration, bootstrap logging and metrics (only here, once), open the store, run.
///
/// Exit codes: 0 clean stop (or a valid configuration with --check-config); 78 (EX_CONFIG)
/// a configuration error; 1 anything else that prevents start-up (the store cannot open).
@main
struct SwitchboardDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboardd",
        abstract: "Switchboard: every patient message in one conversation model, routed to the right agent.",
        discussion: """
            Configuration: the embedded defaults, then the YAML file given with --config, then \
            SWITCHBOARD_<SECTION>_<KEY> environment variables. See deploy/switchboard.example.yaml.
            """
    )

    @Option(name: .long, help: "Path of the YAML configuration file.")
    var config: String?

    @Flag(name: .customLong("check-config"), help: "Validate the configuration, print the problem if any, and exit.")
    var checkConfig = false

    func run() async throws {
        // A SIGHUP before the reload service is listening (store opening, migrations) must
        // not kill the daemon: ignored until then.
        signal(SIGHUP, SIG_IGN)
        let settings: SwitchboardConfiguration
        do {
            settings = try await SwitchboardConfiguration.load(file: config)
        } catch let problem as SwitchboardConfiguration.Problem {
            FileHandle.standardError.write(Data("switchboardd: configuration error: \(problem)\n".utf8))
            throw ExitCode(78)
        }
        var rules = RuleSet.empty
        if let path = settings.triage.rulesFile {
            do {
                rules = try RulesHolder.load(path: path)
            } catch let error as RulesError {
                FileHandle.standardError.write(Data("switchboardd: configuration error: triage.rules_file: \(error)\n".utf8))
                throw ExitCode(78)
            }
        }
        if checkConfig {
            print("switchboardd: configuration ok")
            return
        }

        let level = Logger.Level(rawValue: settings.log.level) ?? .info
        let format = settings.log.format
        let levelControl = LogLevelControl(level)
        LoggingSystem.bootstrap { label in LogfmtLogHandler(label: label, control: levelControl, format: format) }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "switchboard")

        // One daemon per store: the lock is held until the process exits.
        let storeLock: StoreLock
        do {
            guard let lock = try StoreLock.acquire(storePath: settings.store.path) else {
                logger.critical("another switchboardd is using this store", metadata: [
                    "store.path": "\(settings.store.path)", "lock": "\(StoreLock.lockPath(for: settings.store.path))"])
                throw ExitCode(1)
            }
            storeLock = lock
        } catch let exit as ExitCode {
            throw exit
        } catch {
            logger.critical("store lock cannot be taken", metadata: ["store.path": "\(settings.store.path)"])
            throw ExitCode(1)
        }
        defer { withExtendedLifetime(storeLock) {} }
        let store: SwitchboardStore
        do {
            store = try SwitchboardStore(path: settings.store.path, auditKey: settings.audit.chainKey.map { Array($0.value.utf8) },
                                         maxQueuedInboundWrites: settings.store.maxQueuedWrites,
                                         maxInboundBacklog: settings.store.maxBacklog,
                                         commitObserver: SwitchboardMetrics().storeCommitted(writes:))
        } catch {
            logger.critical("store cannot be opened", metadata: ["store.path": "\(settings.store.path)", "error": "\(error)"])
            throw ExitCode(1)
        }
        logger.info("store open", metadata: [
            "store.path": "\(settings.store.path)",
            "migrations": "\((try? store.appliedMigrations().joined(separator: ",")) ?? "?")",
        ])
        if settings.portal.webhookSecret == nil {
            logger.notice("portal channel disabled", metadata: ["missing": "portal.webhook_secret"])
        }

        var dependencies = SwitchboardDependencies(configuration: settings, store: store, logger: logger, prometheus: registry)
        dependencies.rules = RulesHolder(rules)
        dependencies.configFile = config
        dependencies.logLevel = levelControl
        let listeningLogger = logger
        dependencies.onListening = { address in
            let where_ = address.map { "http://\($0.ipAddress ?? settings.http.host):\($0.port ?? settings.http.port)" }
                ?? "http://\(settings.http.host):\(settings.http.port)"
            listeningLogger.info("listening", metadata: ["http.address": "\(where_)"])
            FileHandle.standardOutput.write(Data("switchboardd listening on \(where_)\n".utf8))
        }
        let readiness = dependencies.readiness
        let app = buildApplication(dependencies)
        // SIGTERM/SIGINT: first drain (listener open, intake answered 503, /readyz
        // "draining") for http.drain_seconds, then a graceful shutdown; whatever has not
        // finished after http.shutdown_grace_seconds (a connection that never sent a request,
        // a client that never answers a close frame) is cancelled, so the daemon always stops.
        // A second signal skips the drain.
        var configuration = ServiceGroupConfiguration(services: [.init(service: app)], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(settings.http.shutdownGraceSeconds)
        let group = ServiceGroup(configuration: configuration)
        let drain = Duration.seconds(settings.http.drainSeconds)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                var draining = false
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    guard !draining else {
                        await group.triggerGracefulShutdown()
                        continue
                    }
                    draining = true
                    readiness.beginDraining()
                    logger.notice("shutdown requested; draining", metadata: ["signal": "\(signal)", "drain_seconds": "\(drain.components.seconds)"])
                    Task {
                        try? await Task.sleep(for: drain)
                        await group.triggerGracefulShutdown()
                    }
                }
            }
            tasks.addTask { try await group.run() }
            try await tasks.next()
            tasks.cancelAll()
        }
        logger.info("stopped")
    }
}
