#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwitchboardStore
import Synchronization

/// The sd_notify protocol, implemented here (no libsystemd): one datagram per message to
/// the Unix socket named by `$NOTIFY_SOCKET` — a path, or an abstract socket when it starts
/// with `@`. Without `$NOTIFY_SOCKET` (not under systemd, or `Type=simple`) every call is a
/// no-op. Sending never blocks and never throws: a lost notification must not stop the daemon.
public struct SystemdNotifier: Sendable {
    /// The socket address, decoded from `$NOTIFY_SOCKET`; nil when notifications are off.
    public let socketPath: String?
    /// `$WATCHDOG_USEC` as a duration, when systemd expects watchdog keep-alives (and
    /// `$WATCHDOG_PID` is absent or this process).
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path.flatMap { $0.hasPrefix("/") || $0.hasPrefix("@") ? $0 : nil }
        var interval: Duration?
        if let text = environment["WATCHDOG_USEC"], let micros = UInt64(text), micros > 0 {
            let pidMatches = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
            if pidMatches { interval = .microseconds(Int64(min(micros, UInt64(Int64.max)))) }
        }
        watchdogInterval = interval
    }

    public var isEnabled: Bool { socketPath != nil }

    /// Sends `READY=1`, `STATUS=…`, `STOPPING=1`, `WATCHDOG=1` — one or more assignments
    /// separated by newlines. Returns whether the datagram was sent.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let socketPath else { return false }
        return Self.send(state, to: socketPath)
    }

    /// The state text for a status line: systemd shows it in `systemctl status`. Newlines
    /// would start a new assignment, so they are replaced.
    public static func status(_ text: String) -> String {
        "STATUS=" + text.replacingOccurrences(of: "\n", with: " ")
    }

    static func send(_ message: String, to path: String) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(path.utf8)
        let abstract = pathBytes.first == UInt8(ascii: "@")
        if abstract { pathBytes[0] = 0 }  // Linux abstract namespace: leading NUL, not NUL-terminated
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A path needs room for its terminating NUL; an abstract name may fill sun_path.
        guard abstract ? pathBytes.count <= capacity : pathBytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: pathBytes)
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? MemoryLayout<sa_family_t>.size
        let length = socklen_t(pathOffset + pathBytes.count + (abstract ? 0 : 1))
        #if canImport(Glibc) || canImport(Musl)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_DGRAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { buffer in
                    sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), socketAddress, length)
                }
            }
        }
        return sent == bytes.count
    }
}

/// Tells systemd how the daemon is doing: `READY=1` once the store is open, migrations are
/// applied and the listener is bound (the caller runs this service from the listener's
/// `onServerRunning`), `STATUS=` lines with the backlog, `WATCHDOG=1` while the store
/// answers a write and the event loops run tasks, and `STOPPING=1` on shutdown.
///
/// A stalled store or event loop stops the keep-alives, so systemd's `WatchdogSec=`
/// restarts a daemon that is alive but no longer working.
public struct SystemdService: Service, CustomStringConvertible {
    public var description: String { "SystemdService" }

    let notifier: SystemdNotifier
    let store: SwitchboardStore
    let eventLoops: any EventLoopGroup
    let logger: Logger
    let readiness: Readiness
    /// How long a health probe may take before it counts as stalled.
    let probeTimeout: Duration
    let probing = ProbeState()

    public init(notifier: SystemdNotifier, store: SwitchboardStore, logger: Logger, readiness: Readiness,
                eventLoops: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, probeTimeout: Duration = .seconds(5)) {
        self.notifier = notifier
        self.store = store
        self.eventLoops = eventLoops
        self.logger = logger
        self.readiness = readiness
        self.probeTimeout = probeTimeout
    }

    public func run() async throws {
        guard notifier.isEnabled else {
            try? await gracefulShutdown()
            return
        }
        // READY=1 only once the listener is bound (the store was opened and migrated before
        // the application was built).
        while !readiness.isReady {
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        notifier.notify("READY=1\n" + SystemdNotifier.status("ready"))
        logger.info("systemd notified", metadata: ["state": "READY=1", "watchdog": "\(notifier.watchdogInterval.map { "\($0)" } ?? "off")"])
        // Keep-alives at half the watchdog interval (as sd_watchdog_enabled(3) advises);
        // status lines every 10 s otherwise.
        let period = notifier.watchdogInterval.map { $0 / 2 } ?? .seconds(10)
        var lastStatus = ContinuousClock.now - .seconds(60)
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                if notifier.watchdogInterval != nil {
                    if let stalled = await probe() {
                        logger.error("health probe failed; withholding the systemd watchdog keep-alive", metadata: ["stalled": "\(stalled)"])
                    } else {
                        notifier.notify("WATCHDOG=1")
                    }
                }
                if ContinuousClock.now - lastStatus >= .seconds(10) {
                    lastStatus = ContinuousClock.now
                    if let stats = try? await store.outboxStats() {
                        notifier.notify(SystemdNotifier.status("ready; outbox \(stats.pending) pending, \(stats.dead) dead"))
                    }
                }
                // Wakes at once on shutdown: this service must not hold up the others' drain.
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: period) }
            }
        } onGracefulShutdown: {
            notifier.notify("STOPPING=1\n" + SystemdNotifier.status("stopping: draining requests and deliveries"))
        }
    }

    /// Nil when the store took its write lock and every event loop ran a task within the
    /// timeout; otherwise what stalled. The probe runs in its own task and the timeout is
    /// a true bound: a probe that never returns (a wedged event loop, a store lock held
    /// forever) is reported as stalled, and no second probe is started while it hangs.
    func probe() async -> String? {
        if probing.isRunning { return "previous probe still running" }
        probing.begin()
        let loops = Array(eventLoops.makeIterator())
        let store = self.store
        let probing = self.probing
        let timeout = probeTimeout
        return await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let once = ResumeOnce(continuation)
            Task {
                var result: String?
                do {
                    try await store.healthProbe()
                } catch {
                    result = "store"
                }
                if result == nil {
                    for loop in loops {
                        do { try await loop.submit {}.get() } catch { result = "event loop"; break }
                    }
                }
                probing.end()
                once.resume(result)
            }
            Task {
                try? await Task.sleep(for: timeout)
                once.resume("timeout")
            }
        }
    }
}

/// Whether a health probe is still out.
final class ProbeState: Sendable {
    private let running = Atomic<Bool>(false)
    var isRunning: Bool { running.load(ordering: .acquiring) }
    func begin() { running.store(true, ordering: .releasing) }
    func end() { running.store(false, ordering: .releasing) }
}

/// Resumes a continuation with the first value offered; later ones are dropped.
final class ResumeOnce<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, Never>?>
    init(_ continuation: CheckedContinuation<Value, Never>) { self.continuation = Mutex(continuation) }
    func resume(_ value: Value) {
        continuation.withLock { pending in
            pending?.resume(returning: value)
            pending = nil
        }
    }
}
