import Foundation
import Hummingbird
import HTTPTypes
import Logging
import Synchronization
import SwitchboardStore

/// Console sign-in: `POST /api/v1/session` with an email and password (or an API token)
/// sets the `sb_session` cookie — HttpOnly (scripts cannot read it), SameSite=Strict (other
/// sites cannot send it), Secure behind TLS — and answers the agent and the CSRF token the
/// console echoes on unsafe requests. `GET` says who is signed in; `DELETE` signs out.
///
/// Guessing is slowed: after `failuresAllowed` failures from one address within
/// `failureWindow`, sign-in from it answers 429 with Retry-After until the window passes.
struct SessionController {
    let store: SwitchboardStore
    let auth: BearerAuthMiddleware
    let failures = SignInFailures()
    static let failuresAllowed = 10
    static let failureWindow: Int64 = 300

    func register(on router: Router<AppRequestContext>, api: RouterGroup<AppRequestContext>) {
        router.post("/api/v1/session") { request, context in try await signIn(request, context: context) }
        api.get("session") { request, context in
            let agent = try context.requireAgent()
            guard let token = BearerAuthMiddleware.cookie(BearerAuthMiddleware.cookieName, in: request.headers),
                  let session = try await store.consoleSession(token: token, idleSeconds: auth.sessionIdleSeconds) else {
                return JSON.response(Self.describe(agent, csrf: nil))  // a bearer token: no session, no CSRF token
            }
            return JSON.response(Self.describe(session.agent, csrf: session.csrfToken))
        }
        api.delete("session") { request, context in
            _ = try context.requireAgent()
            if let token = BearerAuthMiddleware.cookie(BearerAuthMiddleware.cookieName, in: request.headers) {
                try await store.endConsoleSession(token: token)
            }
            var response = Response(status: .noContent)
            response.headers[.setCookie] = Self.cookie(value: "", secure: Self.isSecure(request, context), maxAge: 0)
            return response
        }
    }

    struct SignedInAgent: Encodable {
        let id: String
        let name: String
        let email: String
        let role: String
        let teams: [String]
    }

    struct SessionJSON: Encodable {
        let agent: SignedInAgent
        /// Absent for a bearer token (nothing to protect against cross-site requests).
        let csrfToken: String?
    }

    static func describe(_ agent: Agent, csrf: String?) -> SessionJSON {
        SessionJSON(agent: SignedInAgent(id: agent.id, name: agent.name, email: agent.email, role: agent.role.rawValue, teams: agent.teams),
                    csrfToken: csrf)
    }

    static func cookie(value: String, secure: Bool, maxAge: Int? = nil) -> String {
        var cookie = "\(BearerAuthMiddleware.cookieName)=\(value); Path=/; HttpOnly; SameSite=Strict"
        if secure { cookie += "; Secure" }
        if let maxAge { cookie += "; Max-Age=\(maxAge)" }
        return cookie
    }

    /// TLS ends at the reverse proxy in front of the daemon (deploy/nginx): trust its
    /// X-Forwarded-Proto only when it is a trusted proxy.
    static func isSecure(_ request: Request, _ context: AppRequestContext) -> Bool {
        context.forwardedClient != nil && request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    private func signIn(_ request: Request, context: AppRequestContext) async throws -> Response {
        let source = context.sourceAddress ?? "-"
        if let wait = failures.retryAfter(source: source) {
            context.logger.warning("console sign-in refused: too many failures", metadata: ["source.address": "\(source)"])
            throw APIError(.tooManyRequests, code: "too_many_attempts", "too many failed sign-ins from this address; try again later",
                           headers: [.retryAfter: "\(wait)"])
        }
        let body = try await request.jsonObject(limit: 4096)
        var agent: Agent?
        if let token = body["token"] as? String {
            agent = try await store.agent(forToken: token)
        } else if let email = body["email"] as? String, let password = body["password"] as? String {
            guard !email.isEmpty, email.utf8.count <= 254, !password.isEmpty, password.utf8.count <= 1024 else {
                throw APIError.badRequest("email and password must be non-empty strings (password at most 1024 bytes)", code: "invalid_field")
            }
            agent = try await store.verifyPassword(email: email, password: password, sourceAddress: context.sourceAddress)
        } else {
            throw APIError.badRequest("send {\"email\":…,\"password\":…} or {\"token\":…}", code: "missing_field")
        }
        guard let agent else {
            failures.record(source: source)
            context.logger.notice("console sign-in failed", metadata: ["source.address": "\(source)"])
            throw APIError(.unauthorized, code: "sign_in_failed", "the email and password (or token) do not match an active agent")
        }
        let (token, session) = try await store.createConsoleSession(agent: agent, sourceAddress: context.sourceAddress)
        context.logger.info("console signed in", metadata: ["agent.id": "\(agent.id)", "source.address": "\(source)"])
        var response = JSON.response(Self.describe(session.agent, csrf: session.csrfToken), status: .created)
        response.headers[.setCookie] = Self.cookie(value: token, secure: Self.isSecure(request, context))
        response.headers[.cacheControl] = "no-store"
        return response
    }
}

/// Failed sign-ins per source address within a sliding window (in memory: a restart
/// forgets them, which only an attacker able to restart the daemon could use).
final class SignInFailures: Sendable {
    private let failures = Mutex<[String: [Int64]]>([:])

    func record(source: String, now: Int64 = Int64(Date().timeIntervalSince1970)) {
        failures.withLock { map in
            if map.count > 10_000 { map.removeAll() }
            map[source, default: []].append(now)
        }
    }

    /// Seconds to wait, or nil when sign-in may be tried.
    func retryAfter(source: String, now: Int64 = Int64(Date().timeIntervalSince1970)) -> Int64? {
        failures.withLock { map in
            let recent = (map[source] ?? []).filter { now - $0 < SessionController.failureWindow }
            map[source] = recent.isEmpty ? nil : recent
            guard recent.count >= SessionController.failuresAllowed, let oldest = recent.first else { return nil }
            return SessionController.failureWindow - (now - oldest)
        }
    }
}
