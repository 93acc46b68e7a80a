import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// HTTP/1.1 with the WebSocket upgrade for the event stream, on the one listener — and a
/// graceful shutdown that does not wait for connections that never sent a byte.
///
/// Why: while the upgrade negotiation waits for a connection's first request, nothing in
/// the WebSocket channel reacts to shutdown, so one idle TCP connection (a load balancer's
/// pre-opened socket, a port scan) would hold SIGTERM forever. Each connection here carries
/// a small handler noting whether any byte arrived; on shutdown, connections without one
/// are closed. Connections that did send a request finish under Hummingbird's own rules.
struct ShutdownAwareChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value

    let inner: Inner
    private let registry = ConnectionRegistry()

    init(_ inner: Inner) {
        self.inner = inner
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let seen = FirstByteFlag()
        do {
            try channel.pipeline.syncOperations.addHandler(FirstByteDetector(seen), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        registry.insert(ObjectIdentifier(channel), seen)
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        let key = ObjectIdentifier(value.channel)
        let seen = registry.remove(key)
        await withGracefulShutdownHandler {
            await inner.handle(value: value, logger: logger)
        } onGracefulShutdown: {
            if seen?.value == false { value.channel.close(promise: nil) }
        }
    }
}

/// Whether a connection has received anything yet.
final class FirstByteFlag: Sendable {
    private let seen = Atomic<Bool>(false)
    var value: Bool { seen.load(ordering: .acquiring) }
    func set() { seen.store(true, ordering: .releasing) }
}

/// Hands each connection's flag from `setup` (on the event loop) to `handle` (in a task).
final class ConnectionRegistry: Sendable {
    private let flags = Mutex<[ObjectIdentifier: FirstByteFlag]>([:])
    func insert(_ key: ObjectIdentifier, _ flag: FirstByteFlag) { flags.withLock { $0[key] = flag } }
    func remove(_ key: ObjectIdentifier) -> FirstByteFlag? { flags.withLock { $0.removeValue(forKey: key) } }
}

/// Passes every read through, setting the flag on the first.
final class FirstByteDetector: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let flag: FirstByteFlag

    init(_ flag: FirstByteFlag) {
        self.flag = flag
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !flag.value { flag.set() }
        context.fireChannelRead(data)
    }
}
