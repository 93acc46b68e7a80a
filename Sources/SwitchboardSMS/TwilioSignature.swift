import Crypto
import Foundation
import SwitchboardCore

/// `X-Twilio-Signature`, computed exactly as Twilio does (and as its libraries'
/// `RequestValidator` does): the full URL Twilio requested, then for each POST parameter in
/// name order (values of a repeated name in value order) the name followed by the value;
/// HMAC-SHA1 keyed with the account's auth token; base64.
///
/// Twilio may or may not include the default port in the URL it signs, so a URL is accepted
/// as given, with its default port added, or with it removed. Comparison is constant-time.
public enum TwilioSignature {
    public static func compute(url: String, parameters: [(name: String, value: String)], authToken: String) -> String {
        var content = Array(url.utf8)
        let names = Set(parameters.map(\.name)).sorted(by: utf8Order)
        for name in names {
            let values = Set(parameters.filter { $0.name == name }.map(\.value)).sorted(by: utf8Order)
            for value in values {
                content.append(contentsOf: name.utf8)
                content.append(contentsOf: value.utf8)
            }
        }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: content, using: SymmetricKey(data: Array(authToken.utf8)))
        return Data(mac).base64EncodedString()
    }

    public static func isValid(signature: String?, url: String, parameters: [(name: String, value: String)], authToken: String) -> Bool {
        guard let signature, let expected = Data(base64Encoded: signature), expected.count == Insecure.SHA1.byteCount else {
            return false
        }
        var valid = false
        for candidate in urlVariants(url) {
            let computed = Data(base64Encoded: compute(url: candidate, parameters: parameters, authToken: authToken)) ?? Data()
            // Constant-time: every variant is compared in full, and results are OR-ed.
            valid = ConstantTime.equal(computed, expected) || valid
        }
        return valid
    }

    /// The URL as given, with the scheme's default port, and without it.
    public static func urlVariants(_ url: String) -> [String] {
        guard var components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else { return [url] }
        let defaultPort = scheme == "https" ? 443 : scheme == "http" ? 80 : nil
        guard let defaultPort else { return [url] }
        var variants = [url]
        if components.port == nil {
            components.port = defaultPort
            if let withPort = components.string { variants.append(withPort) }
        } else if components.port == defaultPort {
            components.port = nil
            if let withoutPort = components.string { variants.append(withoutPort) }
        }
        return variants
    }

    static func utf8Order(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}
