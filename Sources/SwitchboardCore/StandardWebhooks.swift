import Crypto
import Foundation

/// The Standard Webhooks signature scheme (https://www.standardwebhooks.com), used by the
/// patient portal in both directions.
///
/// The signed content is `"<webhook-id>.<webhook-timestamp>.<body>"`; the signature is
/// `v1,<base64 HMAC-SHA256>` keyed with the secret's bytes; the `webhook-signature` header
/// carries one or more such signatures separated by spaces, so that a sender can rotate its
/// secret. Verification compares in constant time and rejects timestamps outside the
/// tolerance, which bounds how long a captured request can be replayed.
public enum StandardWebhooks {
    /// A signing secret, configured as `whsec_<base64>` (the prefix is optional).
    public struct Secret: Sendable, CustomStringConvertible, CustomReflectable {
        public let key: SymmetricKey
        /// HMAC-SHA256 with the key already absorbed: each signature starts from a copy of it
        /// instead of keying afresh (keying was 1% of the daemon's CPU under the ingest benchmark).
        let keyed: HMAC<SHA256>
        public var description: String { "<redacted>" }
        public var customMirror: Mirror { Mirror(self, children: [:]) }

        public enum ParseError: Error, Equatable, CustomStringConvertible {
            case empty
            case notBase64
            case tooShort

            public var description: String {
                switch self {
                case .empty: "the secret is empty"
                case .notBase64: "the secret is not whsec_ followed by base64"
                case .tooShort: "the secret decodes to fewer than 16 bytes"
                }
            }
        }

        public init(_ configured: String) throws(ParseError) {
            var text = configured.trimmingWhitespace()
            if text.hasPrefix("whsec_") { text.removeFirst(6) }
            guard !text.isEmpty else { throw .empty }
            guard let bytes = Data(base64Encoded: text) else { throw .notBase64 }
            guard bytes.count >= 16 else { throw .tooShort }
            key = SymmetricKey(data: bytes)
            keyed = HMAC(key: key)
        }

        public init(keyBytes: [UInt8]) {
            key = SymmetricKey(data: keyBytes)
            keyed = HMAC(key: key)
        }
    }

    /// Why a request was refused. Descriptions are safe to log and to send back: they name
    /// the header, never its content.
    public enum VerificationError: Error, Equatable, CustomStringConvertible {
        case missingHeader(String)
        case invalidTimestamp
        case timestampTooOld
        case timestampInFuture
        case noValidSignature

        public var description: String {
            switch self {
            case .missingHeader(let name): "missing header \(name)"
            case .invalidTimestamp: "webhook-timestamp is not a whole number of seconds"
            case .timestampTooOld: "webhook-timestamp is older than the tolerance"
            case .timestampInFuture: "webhook-timestamp is further in the future than the tolerance"
            case .noValidSignature: "no signature in webhook-signature matches"
            }
        }
    }

    /// The `v1,<base64>` signature of one message.
    public static func signature(id: String, timestamp: Int64, body: some DataProtocol, secret: Secret) -> String {
        "v1," + Data(mac(id: id, timestamp: String(timestamp), body: body, secret: secret)).base64EncodedString()
    }

    /// HMAC-SHA256 of `"<id>.<timestamp>.<body>"`, without copying the body.
    static func mac(id: String, timestamp: String, body: some DataProtocol, secret: Secret) -> [UInt8] {
        var hmac = secret.keyed
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: body)
        return Array(hmac.finalize())
    }

    /// Checks the three headers against the body. Returns normally only when the timestamp
    /// is within `tolerance` of `now` and at least one `v1` signature matches.
    public static func verify(
        id: String?, timestamp: String?, signatureHeader: String?,
        body: some DataProtocol, secret: Secret,
        now: Date, toleranceSeconds: Int64
    ) throws(VerificationError) {
        guard let id, !id.isEmpty else { throw .missingHeader("webhook-id") }
        guard let timestamp, !timestamp.isEmpty else { throw .missingHeader("webhook-timestamp") }
        guard let signatureHeader, !signatureHeader.isEmpty else { throw .missingHeader("webhook-signature") }
        guard let seconds = Int64(timestamp) else { throw .invalidTimestamp }
        let nowSeconds = Int64(now.timeIntervalSince1970.rounded(.down))
        if seconds < nowSeconds - toleranceSeconds { throw .timestampTooOld }
        if seconds > nowSeconds + toleranceSeconds { throw .timestampInFuture }

        let expected = mac(id: id, timestamp: timestamp, body: body, secret: secret)
        for candidate in signatureHeader.split(separator: " ", omittingEmptySubsequences: true) {
            guard candidate.hasPrefix("v1,"),
                  let given = Data(base64Encoded: String(candidate.dropFirst(3))),
                  given.count == SHA256.byteCount else { continue }
            if ConstantTime.equal(given, expected) { return }
        }
        throw .noValidSignature
    }
}
