import Hummingbird
import HummingbirdWebSocket
import NIOCore
import SwitchboardStore

/// Per-request state: the core context, the peer's address (for the audit trail) and,
/// once the bearer token has been checked, the agent making the request.
public struct AppRequestContext: RequestContext, RemoteAddressRequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    public var agent: Agent?
    /// Where the event stream's upgrade handler is kept (shared by copies of the context).
    public let webSocket: WebSocketHandlerReference<AppRequestContext>

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress
        agent = nil
    }

    /// The peer's IP address as text, for audit events.
    var sourceAddress: String? { remoteAddress?.ipAddress }

    /// The authenticated agent. Routes behind `BearerAuthMiddleware` always have one.
    func requireAgent() throws -> Agent {
        guard let agent else { throw APIError(.unauthorized, code: "unauthorized", "a valid bearer token is required") }
        return agent
    }
}
