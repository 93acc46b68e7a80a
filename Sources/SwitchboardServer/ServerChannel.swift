import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1
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
///
/// And a connection never outlives `readIdleTimeout` of silence (`http.idle_timeout_seconds`):
/// without it, one that stops half-way through its request head — or whose head the parser
/// refused as too large, which leaves the upgrade negotiation waiting for good — would stay
/// open for ever, and enough of them would exhaust the daemon's file descriptors. WebSocket
/// connections stay busy with the pongs to the server's pings, so the timeout is always
/// longer than two ping intervals. An HTTP parse error (a head over 80 KiB, a malformed
/// request line) closes the connection at once.
struct ShutdownAwareChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value

    let inner: Inner
    let readIdleTimeout: TimeAmount
    private let registry = ConnectionRegistry()

    init(_ inner: Inner, readIdleTimeout: TimeAmount) {
        self.inner = inner
        self.readIdleTimeout = readIdleTimeout
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let seen = FirstByteFlag()
        do {
            try channel.pipeline.syncOperations.addHandlers(
                [IdleStateHandler(readTimeout: readIdleTimeout), CloseOnReadIdle(), FirstByteDetector(seen)], position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        registry.insert(ObjectIdentifier(channel), seen)
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            // After the HTTP decoder, where its errors arrive.
            try channel.pipeline.syncOperations.addHandler(CloseOnParseError())
            return value
        }
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

/// Closes the connection when `IdleStateHandler` reports no read for its timeout.
final class CloseOnReadIdle: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Closes the connection on an HTTP parse error instead of leaving it open and unanswered.
final class CloseOnParseError: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError {
            context.close(promise: nil)
        }
        context.fireErrorCaught(error)
    }
}
