import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOWebSocket
import ServiceLifecycle
import NIOCore
import Synchronization
import SwitchboardCore
import SwitchboardStore

/// Wakes every open event stream when events are committed (by any part of the daemon:
/// the store observes its own `events` table).
final class EventHub: Sendable {
    private let streams = Mutex<[Int: WakeSignal]>([:])
    private let nextID = Atomic<Int>(0)

    func register() -> (id: Int, wake: WakeSignal) {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let wake = WakeSignal()
        streams.withLock { $0[id] = wake }
        return (id, wake)
    }

    func unregister(_ id: Int) {
        streams.withLock { _ = $0.removeValue(forKey: id) }
    }

    var count: Int { streams.withLock { $0.count } }

    func notify() {
        for wake in streams.withLock({ Array($0.values) }) { wake.signal() }
    }
}

/// `GET /api/v1/events` — the live event stream of one agent over a WebSocket.
///
/// Every event carries the store's sequence number, which only grows. A client that
/// reconnects with `?after=SEQ` first receives every event it may see after SEQ, then live
/// ones: nothing is lost across a reconnect. When SEQ is older than the retention kept, a
/// `resync` event says so (refetch state, then continue from its `seq`).
///
/// Frames sent: `{"type":"hello","seq":N,"agent_id":…}` once, then `{"type":"event","seq":…,"kind":…,
/// "at":…,"data":{…}}`. Event data holds ids and states only — never message text or
/// contact details, which are read through the audited API.
/// Close codes: 4401 missing or invalid token, 4400 bad `after`, 1000 server shutting down.
/// The token comes from the `Authorization: Bearer` header, or the console's session cookie
/// (then only from the daemon's own origin).
struct EventStreamController {
    let store: SwitchboardStore
    let hub: EventHub
    let auth: BearerAuthMiddleware
    let router: RouterService
    let metrics: SwitchboardMetrics
    static let batch = 500

    static let path = "/api/v1/events"

    /// Without an Upgrade header the path answers 426, naming what is needed.
    func register(http: Router<AppRequestContext>) {
        http.get(RouterPath(stringLiteral: Self.path)) { _, _ -> Response in
            throw APIError(.upgradeRequired, code: "upgrade_required", "this endpoint is a WebSocket: connect with Upgrade: websocket",
                           headers: [.upgrade: "websocket"])
        }
    }

    /// The upgrade decision for a request head: only the events path upgrades. A bad token
    /// or `after` still upgrades, to close at once with a code a browser can read (an HTTP
    /// status on a failed upgrade is invisible to it).
    func shouldUpgrade(_ head: HTTPRequest, channel: any NIOCore.Channel, logger: Logger)
        async throws -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let uri = URI(head.path ?? "")
        guard uri.path == Self.path, head.method == .get else { return .dontUpgrade }
        let sourceAddress = channel.remoteAddress?.ipAddress
        // A console session's cookie rides along on any page's WebSocket: only the daemon's
        // own pages may use it here (cross-site WebSocket hijacking), and another site's
        // attempt is not even looked up (it would restart the session's idle clock).
        let foreignCookie = head.headerFields[.authorization] == nil
            && !BrowserOrigin.allowed(head.headerFields[.origin], host: head.authority)
        let agent = foreignCookie ? nil : try? await auth.authenticate(head.headerFields, logger: logger, sourceAddress: sourceAddress)
        // A console session is checked again while the stream runs: signing out, a password
        // change, deactivation or the idle timeout end the stream too.
        let session = head.headerFields[.authorization] == nil
            ? BearerAuthMiddleware.cookie(BearerAuthMiddleware.cookieName, in: head.headerFields) : nil
        let afterText = uri.queryParameters.get("after")
        return .upgrade([:]) { inbound, outbound, context in
            guard let agent else {
                try await outbound.close(.unknown(4401), reason: "unauthorized: a valid bearer token is required")
                return
            }
            var after: Int64?
            if let afterText {
                guard let value = Int64(afterText), value >= 0 else {
                    try await outbound.close(.unknown(4400), reason: "query parameter after must be a whole number (a seq)")
                    return
                }
                after = value
            }
            try await stream(agent: agent, session: session, after: after, inbound: inbound, outbound: outbound, logger: context.logger)
        }
    }

    private func stream(agent: Agent, session: String?, after: Int64?, inbound: WebSocketInboundStream,
                        outbound: WebSocketOutboundWriter, logger: Logger) async throws {
        // Where to start: after `after` (replay), or at the newest event (live only). When
        // events after `after` were deleted by retention, `resync` follows the hello and
        // the stream continues from the newest event.
        let bounds = try await store.eventBounds()
        var cursor = bounds.newest
        var resync = false
        if let after {
            let oldestKept = bounds.oldestRetained ?? (bounds.newest + 1)
            if after > bounds.newest || (after + 1 < oldestKept && after < bounds.newest) {
                resync = true  // pruned past it, or a seq this store never issued (a restored backup)
            } else {
                cursor = after
            }
        }
        let (id, wake) = hub.register()
        metrics.eventStreams(hub.count)
        defer {
            hub.unregister(id)
            metrics.eventStreams(hub.count)
        }
        logger.info("event stream opened", metadata: ["agent.id": "\(agent.id)", "after": "\(cursor)", "resync": "\(resync)"])
        await router.touch(agent: agent.id)
        try await outbound.write(.text(#"{"type":"hello","seq":\#(resync ? bounds.newest : cursor),"agent_id":"\#(agent.id)"}"#))
        if resync {
            try await outbound.write(.text(#"{"type":"event","seq":\#(bounds.newest),"kind":"resync","at":"\#(Timestamp.format(Timestamp.now()))","data":{"reason":"events after the requested seq are not available"}}"#))
        }
        let router = self.router
        let store = self.store
        let start = cursor
        try await withThrowingTaskGroup(of: Void.self) { group in
            // The reader: required for ping/pong and the close handshake; client frames count
            // as activity (a console left open keeps its agent from going idle).
            group.addTask {
                for try await _ in inbound.messages(maxSize: 4096) {
                    await router.touch(agent: agent.id)
                }
            }
            let idleSeconds = auth.sessionIdleSeconds
            group.addTask {
                var cursor = start
                var sessionCheckedAt = ContinuousClock.now
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    if let session, ContinuousClock.now - sessionCheckedAt >= .seconds(60) {
                        sessionCheckedAt = .now
                        if try await store.consoleSession(token: session, idleSeconds: idleSeconds, touch: false) == nil {
                            logger.info("event stream closed: console session ended", metadata: ["agent.id": "\(agent.id)"])
                            try await outbound.close(.unknown(4401), reason: "the console session ended; sign in again")
                            return
                        }
                    }
                    let events = try await store.events(for: agent, after: cursor, limit: Self.batch)
                    for event in events {
                        try await outbound.write(.text(Self.frame(event)))
                        cursor = event.seq
                    }
                    if events.count < Self.batch { await wake.wait(timeout: .seconds(15)) }
                }
            }
            // Shutdown: stop writing; the server sends the close frame (1000) itself.
            group.addTask { try await gracefulShutdown() }
            _ = try await group.next()
            group.cancelAll()
        }
        logger.info("event stream closed", metadata: ["agent.id": "\(agent.id)"])
    }

    static func frame(_ event: StreamEvent) -> String {
        #"{"type":"event","seq":\#(event.seq),"kind":"\#(event.kind)","at":"\#(Timestamp.format(event.at))","data":\#(event.dataJSON)}"#
    }
}
