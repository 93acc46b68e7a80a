/// `application/x-www-form-urlencoded` bodies and URL query strings (WHATWG URL standard):
/// `&`-separated `name=value` pairs, `+` for space, `%XX` escapes, UTF-8.
public enum FormBody {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case invalidPercentEncoding
        case invalidUTF8

        public var description: String {
            switch self {
            case .invalidPercentEncoding: "the form body has an invalid %-escape"
            case .invalidUTF8: "the form body is not UTF-8"
            }
        }
    }

    /// All pairs in order; a name may repeat.
    public static func parse(_ bytes: some Sequence<UInt8>) throws(Error) -> [(name: String, value: String)] {
        var pairs: [(String, String)] = []
        for field in Array(bytes).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = field.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = try decodeString(parts[0])
            let value = parts.count > 1 ? try decodeString(parts[1]) : ""
            pairs.append((name, value))
        }
        return pairs
    }

    /// The raw bytes of one component (`+` → space, `%XX` → byte), for text whose charset is
    /// decided by other fields (Kannel's `coding`).
    public static func decodeBytes(_ component: some Collection<UInt8>) throws(Error) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(component.count)
        var iterator = component.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                output.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw .invalidPercentEncoding
                }
                output.append(high << 4 | low)
            default:
                output.append(byte)
            }
        }
        return output
    }

    static func decodeString(_ component: some Collection<UInt8>) throws(Error) -> String {
        let bytes = try decodeBytes(component)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8 }
        return text
    }

    /// Percent-encodes for a form body or query (space as `+`, unreserved characters kept).
    public static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }

    public static func escape(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "*"):
                output.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "):
                output += "+"
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                output += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return output
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Array where Element == (name: String, value: String) {
    /// The first value of `name`, if present.
    public func first(_ name: String) -> String? {
        first { $0.name == name }?.value
    }
}
