import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardRouting
import SwitchboardStore

/// Turns every error into a JSON reply. Known errors keep their status; the store's
/// outcomes map to 404/409/400; anything else is a 500 whose log line names the error's
/// type only — an error's description could carry data we must not log.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as StoreError {
            switch error {
            case .notFound: throw APIError.notFound
            case .conflict(let reason): throw APIError(.conflict, code: "conflict", reason)
            case .invalid(let reason): throw APIError.badRequest(reason)
            }
        } catch let error as RoutingError {
            switch error {
            case .unknownAgent: throw APIError(.notFound, code: "not_found", error.description)
            case .unknownTeam: throw APIError(.notFound, code: "not_found", error.description)
            default: throw APIError(.conflict, code: "conflict", error.description)
            }
        } catch let error as HTTPError {
            throw APIError(error.status, code: Self.code(for: error.status), error.body ?? error.status.reasonPhrase)
        } catch let error as HTTPResponseError {
            throw APIError(error.status, code: Self.code(for: error.status), error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["error.type": "\(type(of: error))", "http.path": "\(context.endpointPath ?? "-")"])
            throw APIError(.internalServerError, code: "internal_error", "the request could not be completed; see the daemon's log")
        }
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "bad_request"
        case 401: "unauthorized"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 409: "conflict"
        case 413: "payload_too_large"
        case 415: "unsupported_media_type"
        case 429: "too_many_requests"
        case 503: "unavailable"
        default: "error"
        }
    }
}

/// Behind a reverse proxy listed in `http.trusted_proxies`, the client address for logs
/// and the audit trail is the right-most X-Forwarded-For entry that is not itself a trusted
/// proxy (entries further left were written by the client and prove nothing). Anything
/// that does not look like an IP address is ignored.
struct ForwardedForMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let trusted: Set<String>
    static let header = HTTPField.Name("X-Forwarded-For")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !trusted.isEmpty, let peer = context.peerAddress, trusted.contains(peer),
              let header = request.headers[Self.header] else {
            return try await next(request, context)
        }
        var context = context
        context.forwardedClient = Self.client(header, trusted: trusted)
        return try await next(request, context)
    }

    static func client(_ header: String, trusted: Set<String>) -> String? {
        for entry in header.split(separator: ",").reversed() {
            let address = entry.trimmingCharacters(in: .whitespaces)
            guard !address.isEmpty, address.count <= 45,
                  address.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" }) else { return nil }
            if !trusted.contains(address) { return address }
        }
        return nil
    }
}

/// While the daemon drains (SIGTERM, before the listener closes), intake is refused with a
/// 503 and Retry-After: a webhook sender retries (nothing was stored, so nothing is lost),
/// a load balancer moves on. Health, readiness and metrics still answer.
struct DrainMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let readiness: Readiness

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard readiness.isDraining, !["/healthz", "/readyz", "/metrics"].contains(request.uri.path) else {
            return try await next(request, context)
        }
        throw APIError(.serviceUnavailable, code: "unavailable", "the daemon is shutting down; retry shortly",
                       headers: [.retryAfter: "5"])
    }
}

/// Authenticates API requests: a bearer token (scripts, integrations), or the console's
/// session cookie. A cookie is sent by the browser on its own, so with one every unsafe
/// method (POST, PUT, PATCH, DELETE) must also carry the session's `X-CSRF-Token` —
/// another site can make the browser send the cookie but cannot read the token. Tokens and
/// sessions are looked up by digest in the store; neither is ever logged.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let store: SwitchboardStore
    /// Console sessions end after this long without a request.
    var sessionIdleSeconds: Int64 = 1800
    /// Told of every authenticated request (the router's idle timeout counts API use as activity).
    var onActivity: @Sendable (String) async -> Void = { _ in }

    static let cookieName = "sb_session"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    static let backgroundHeader = HTTPField.Name("X-Switchboard-Background")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let (agent, csrfToken) = try await authenticateWithSession(request.headers, method: request.method, logger: context.logger,
                                                                   sourceAddress: context.sourceAddress)
        await onActivity(agent.id)
        var context = context
        context.agent = agent
        context.csrfToken = csrfToken
        context.logger[metadataKey: "agent.id"] = "\(agent.id)"
        return try await next(request, context)
    }

    /// The agent holding the request's bearer token or console session, or a 401 (403 for
    /// a missing CSRF token) naming what is wrong.
    func authenticate(_ headers: HTTPFields, method: HTTPRequest.Method = .get, logger: Logger, sourceAddress: String?) async throws -> Agent {
        try await authenticateWithSession(headers, method: method, logger: logger, sourceAddress: sourceAddress).agent
    }

    /// The same, with the console session's CSRF token when the cookie authenticated.
    func authenticateWithSession(_ headers: HTTPFields, method: HTTPRequest.Method, logger: Logger,
                                 sourceAddress: String?) async throws -> (agent: Agent, csrfToken: String?) {
        if headers[.authorization] == nil, let session = Self.cookie(Self.cookieName, in: headers) {
            // The console's own refreshes (an event arrived) do not restart the idle clock.
            let background = headers[Self.backgroundHeader] != nil
            guard let found = try await store.consoleSession(token: session, idleSeconds: sessionIdleSeconds, touch: !background) else {
                throw APIError(.unauthorized, code: "session_expired", "the console session ended; sign in again")
            }
            if ![.get, .head, .options].contains(method) {
                guard let given = headers[Self.csrfHeader], ConstantTime.equal(given, found.csrfToken) else {
                    logger.warning("console request without a valid CSRF token refused", metadata: [
                        "agent.id": "\(found.agent.id)", "source.address": "\(sourceAddress ?? "-")"])
                    throw APIError(.forbidden, code: "csrf", "X-CSRF-Token is missing or wrong (the console sends it; scripts use a bearer token)")
                }
            }
            return (found.agent, found.csrfToken)
        }
        guard let header = headers[.authorization], header.count > 7,
              header.prefix(7).lowercased() == "bearer " else {
            throw APIError(.unauthorized, code: "unauthorized", "missing bearer token",
                           headers: [.wwwAuthenticate: "Bearer"])
        }
        let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        guard let agent = try await store.agent(forToken: token) else {
            logger.notice("api token refused", metadata: ["source.address": "\(sourceAddress ?? "-")"])
            throw APIError(.unauthorized, code: "unauthorized", "invalid or revoked token",
                           headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
        }
        return (agent, nil)
    }

    /// A cookie's value from the Cookie header(s).
    static func cookie(_ name: String, in headers: HTTPFields) -> String? {
        for header in headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }
}

extension Request {
    /// The body as a JSON object, or 415/400/413 naming the problem.
    func jsonObject(limit: Int) async throws -> [String: Any] {
        guard hasContentType("application/json") else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", "Content-Type must be application/json")
        }
        let body = try await collectBody(limit: limit)
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
            throw APIError.badRequest("body is not a JSON object")
        }
        return object
    }

    /// Collects the body up to `limit` bytes, or answers 413.
    func collectBody(limit: Int) async throws -> ByteBuffer {
        do {
            return try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, code: "payload_too_large", "the body is larger than \(limit) bytes")
        }
    }

    /// Whether the Content-Type is `media` (parameters such as charset ignored).
    func hasContentType(_ media: String) -> Bool {
        guard let value = headers[.contentType] else { return false }
        return Self.mediaType(value, is: media)
    }

    /// Whether a Content-Type value's media type (before any `;`, spaces and tabs around it
    /// ignored, case-insensitive) is `media`, given in lower case. Compared on bytes: this
    /// runs on every webhook, and Foundation's trimming bridged through NSString.
    static func mediaType(_ value: String, is media: String) -> Bool {
        var essence = value.utf8.prefix { $0 != UInt8(ascii: ";") }[...]
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        while let first = essence.first, isBlank(first) { essence = essence.dropFirst() }
        while let last = essence.last, isBlank(last) { essence = essence.dropLast() }
        return ASCII.equalsIgnoringCase(essence, lowercase: media.utf8)
    }
}

/// Browser origins (`scheme://host[:port]`), for the WebSockets a page opens: the chat's
/// allowed sites, and the console's own origin for its cookie-authenticated event stream.
enum BrowserOrigin {
    /// Whether the page at `origin` may connect: listed, "*", or the daemon's own origin
    /// (the Host the browser connected to). No Origin: not a browser, whose claim it is.
    static func allowed(_ origin: String?, host: String?, listed: [String] = []) -> Bool {
        guard let origin else { return true }
        guard let given = normalised(origin) else { return false }
        if listed.contains("*") || listed.compactMap(normalised).contains(given) { return true }
        guard let host = host?.lowercased(), let url = URL(string: given) else { return false }
        let authority = url.port.map { "\(url.host ?? ""):\($0)" } ?? (url.host ?? "")
        return authority == host
    }

    /// `scheme://host[:port]`, lower-cased, the scheme's default port left out — the form a
    /// browser sends — or nil for anything else (`null`, a path).
    static func normalised(_ text: String) -> String? {
        guard let url = URL(string: text.lowercased()), let scheme = url.scheme, ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty, url.path.isEmpty || url.path == "/" else { return nil }
        let port = url.port.flatMap { ($0 == 80 && scheme == "http") || ($0 == 443 && scheme == "https") ? nil : $0 }
        return "\(scheme)://\(host)" + (port.map { ":\($0)" } ?? "")
    }
}
