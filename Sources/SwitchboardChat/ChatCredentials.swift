import Crypto
import Foundation
import SwitchboardCore

/// Visitor tokens: how an anonymous visitor proves, on their next connection, that they
/// are the same visitor — without the daemon keeping a session table for them.
///
/// Format: `v1.<visitor id>.<base64url HMAC-SHA256(key, "v1.<visitor id>")>`. The key is
/// the daemon's (`chat.visitor_token_secret`, else one generated once and kept in the
/// store). Whoever holds the token can read that visitor's chat: the widget keeps it in
/// the browser's storage for that site only.
public struct VisitorTokens: Sendable {
    private let key: SymmetricKey

    public init(key: [UInt8]) {
        self.key = SymmetricKey(data: key)
    }

    public func issue(visitorID: String) -> String {
        let payload = "v1.\(visitorID)"
        return payload + "." + Self.base64url(Data(HMAC<SHA256>.authenticationCode(for: Data(payload.utf8), using: key)))
    }

    /// The visitor id the token names, or nil when it is malformed or not signed with our key.
    public func verify(_ token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", !parts[1].isEmpty, parts[1].utf8.count <= 64,
              let mac = Self.base64urlDecode(String(parts[2])) else { return nil }
        let payload = "v1.\(parts[1])"
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(payload.utf8), using: key) else { return nil }
        return String(parts[1])
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func base64urlDecode(_ text: String) -> Data? {
        guard text.utf8.allSatisfy({ $0 == 0x2D || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) })
        else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// Identity verification for patients the embedding site knows (the scheme Intercom and
/// Chatwoot call "identity validation"): the site computes, on its server,
/// `hex(HMAC-SHA256(chat.identity_secret, identity.id))` — or, better, with an expiry,
/// `hex(HMAC-SHA256(chat.identity_secret, identity.id + ":" + expires))` — and passes it with
/// the id. A browser cannot forge it without the secret, so a chat cannot claim another
/// patient; with an expiry, a hash copied from a cached page stops working.
public enum ChatIdentityHash {
    public static func compute(id: String, expires: Int64? = nil, secret: [UInt8]) -> String {
        let signed = expires.map { "\(id):\($0)" } ?? id
        return HMAC<SHA256>.authenticationCode(for: Data(signed.utf8), using: SymmetricKey(data: secret))
            .map { String(format: "%02x", $0) }.joined()
    }

    /// Constant-time comparison of the given hash (lowercase hex) with the expected one.
    public static func isValid(id: String, expires: Int64? = nil, hash: String, secret: [UInt8]) -> Bool {
        ConstantTime.equal(compute(id: id, expires: expires, secret: secret), hash.lowercased())
    }
}

/// A token bucket: `capacity` frames at once, refilled at `perMinute` per minute. Pure:
/// the caller passes the time, so tests need no clock.
public struct ChatRateLimiter: Sendable {
    public let capacity: Double
    public let perSecond: Double
    private var tokens: Double
    private var last: Double

    public init(perMinute: Int, burst: Int, now: Double) {
        capacity = Double(max(1, burst))
        perSecond = Double(max(1, perMinute)) / 60
        tokens = capacity
        last = now
    }

    /// Takes one token. Returns nil when allowed, else the milliseconds until one is free.
    public mutating func take(now: Double) -> Int? {
        tokens = min(capacity, tokens + max(0, now - last) * perSecond)
        last = max(last, now)
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return Int(((1 - tokens) / perSecond * 1000).rounded(.up))
    }
}
