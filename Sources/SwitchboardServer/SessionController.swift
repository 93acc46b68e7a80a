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
/// Guessing is slowed: after 10 attempts without success from one address, or for one
/// account, within 5 minutes, sign-in answers 429 with Retry-After until the window passes.
struct SessionController {
    let store: SwitchboardStore
    let auth: BearerAuthMiddleware
    let attempts = SignInAttempts()
    let passwordChecks = SerialGate()

    func register(on router: Router<AppRequestContext>, api: RouterGroup<AppRequestContext>) {
        router.post("/api/v1/session") { request, context in try await signIn(request, context: context) }
        api.get("session") { _, context in
            // A bearer token has no session, so no CSRF token.
            JSON.response(Self.describe(try context.requireAgent(), csrf: context.csrfToken))
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
        let body = try await request.jsonObject(limit: 4096)
        let email = (body["email"] as? String)?.lowercased()
        // Counted before checking, so that parallel guesses cannot all slip under the limit.
        if let wait = attempts.begin(keys: ["address:" + source] + (email.map { ["account:" + $0] } ?? [])) {
            context.logger.warning("console sign-in refused: too many failures", metadata: ["source.address": "\(source)"])
            throw APIError(.tooManyRequests, code: "too_many_attempts", "too many failed sign-ins; try again later",
                           headers: [.retryAfter: "\(wait)"])
        }
        var agent: Agent?
        if let token = body["token"] as? String {
            agent = try await store.agent(forToken: token)
        } else if let email, let password = body["password"] as? String {
            guard !email.isEmpty, email.utf8.count <= 254, !password.isEmpty, password.utf8.count <= 1024 else {
                throw APIError.badRequest("email and password must be non-empty strings (password at most 1024 bytes)", code: "invalid_field")
            }
            // scrypt takes 32 MiB and a tenth of a second: one at a time, so a burst of
            // sign-ins cannot starve the daemon's two threads or its memory.
            agent = try await passwordChecks.run {
                try await store.verifyPassword(email: email, password: password, sourceAddress: context.sourceAddress)
            }
        } else {
            throw APIError.badRequest("send {\"email\":…,\"password\":…} or {\"token\":…}", code: "missing_field")
        }
        guard let agent else {
            context.logger.notice("console sign-in failed", metadata: ["source.address": "\(source)"])
            throw APIError(.unauthorized, code: "sign_in_failed", "the email and password (or token) do not match an active agent")
        }
        attempts.succeeded(keys: ["address:" + source] + (email.map { ["account:" + $0] } ?? []))
        let (token, session) = try await store.createConsoleSession(agent: agent, sourceAddress: context.sourceAddress)
        context.logger.info("console signed in", metadata: ["agent.id": "\(agent.id)", "source.address": "\(source)"])
        var response = JSON.response(Self.describe(session.agent, csrf: session.csrfToken), status: .created)
        response.headers[.setCookie] = Self.cookie(value: token, secure: Self.isSecure(request, context))
        response.headers[.cacheControl] = "no-store"
        return response
    }
}

/// One password check at a time.
final class SerialGate: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if now { continuation.resume() }
        }
        defer {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiters.isEmpty {
                    state.busy = false
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}

/// Sign-in attempts per source address and per account within a sliding window, counted
/// when they start; a success clears its keys. In memory: a restart forgets them, which only
/// someone able to restart the daemon could use.
final class SignInAttempts: Sendable {
    private let attempts = Mutex<[String: [Int64]]>([:])
    static let limit = 10
    static let window: Int64 = 300

    /// Records an attempt for every key, or returns the seconds to wait when any key is over
    /// the limit (then nothing is recorded).
    func begin(keys: [String], now: Int64 = Int64(Date().timeIntervalSince1970)) -> Int64? {
        attempts.withLock { map in
            if map.count > 20_000 {  // forget the expired first; never the live ones
                map = map.filter { now - ($0.value.last ?? 0) < Self.window }
            }
            var wait: Int64?
            for key in keys {
                let recent = (map[key] ?? []).filter { now - $0 < Self.window }
                map[key] = recent.isEmpty ? nil : recent
                if recent.count >= Self.limit, let oldest = recent.first {
                    wait = max(wait ?? 0, Self.window - (now - oldest))
                }
            }
            if wait != nil { return wait }
            for key in keys { map[key, default: []].append(now) }
            return nil
        }
    }

    func succeeded(keys: [String]) {
        attempts.withLock { map in for key in keys { map[key] = nil } }
    }
}
