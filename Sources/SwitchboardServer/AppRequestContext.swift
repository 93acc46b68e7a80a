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
    /// The console session's CSRF token, when its cookie authenticated the request.
    var csrfToken: String?
    /// Where the event stream's upgrade handler is kept (shared by copies of the context).
    public let webSocket: WebSocketHandlerReference<AppRequestContext>

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress
        agent = nil
    }

    /// The client's address as a trusted reverse proxy reported it (X-Forwarded-For).
    public var forwardedClient: String?

    /// The connecting peer's IP address: what address-based authorisation checks.
    var peerAddress: String? { remoteAddress?.ipAddress }

    /// The client's IP address for logs and audit events: the one a trusted proxy
    /// reported, else the peer's.
    var sourceAddress: String? { forwardedClient ?? peerAddress }

    /// The authenticated agent. Routes behind `BearerAuthMiddleware` always have one.
    func requireAgent() throws -> Agent {
        guard let agent else { throw APIError(.unauthorized, code: "unauthorized", "a valid bearer token is required") }
        return agent
    }
}
