/// JSON string literals, written by hand where a line or a frame is assembled field by
/// field (log lines, chat frames) rather than through an encoder.
public enum JSONText {
    /// `value` as a quoted JSON string. Control characters are escaped; with `escapingHTML`
    /// `<`, `>`, `&` and U+2028/2029 are too, so the text can never close a script element
    /// or break a JavaScript string if pasted into a page.
    public static func quote(_ value: String, escapingHTML: Bool = false) -> String {
        // Most values need no escape at all: one pass over the bytes finds that out, and
        // then the value is copied whole instead of appended scalar by scalar.
        if !value.utf8.contains(where: { needsEscape($0, escapingHTML: escapingHTML) }) {
            return "\"" + value + "\""
        }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += unicodeEscape(scalar)
            case _ where escapingHTML && htmlSensitive.contains(scalar):
                out += unicodeEscape(scalar)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Whether a UTF-8 byte may start something `quote` escapes. 0xE2 starts U+2028 and
    /// U+2029 (and other characters, which then merely take the slower, exact path).
    private static func needsEscape(_ byte: UInt8, escapingHTML: Bool) -> Bool {
        if byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x7F { return true }
        return escapingHTML && (byte == 0x3C || byte == 0x3E || byte == 0x26 || byte == 0xE2)
    }

    private static let htmlSensitive: Set<Unicode.Scalar> = ["<", ">", "&", "\u{2028}", "\u{2029}"]

    private static func unicodeEscape(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}

/// A JSON document built from typed parts and written in a fixed key order, for paths that
/// run once per message or frame: `JSONSerialization` bridges every dictionary through
/// `NSDictionary` and sorts keys with locale-aware comparison, which cost 18% of the daemon's
/// CPU when triage wrote its evidence that way. The output is byte-for-byte predictable, so
/// the same value always gives the same text (triage evidence, chat frames).
public indirect enum JSONValue: Sendable, Equatable, ExpressibleByStringLiteral {
    case string(String)
    case number(Double)
    case int(Int64)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    public init(stringLiteral value: String) { self = .string(value) }

    public enum KeyOrder: Sendable {
        /// Keys by their UTF-8 bytes.
        case sorted
        /// `"type"` first, then sorted: a chat frame reads naturally in a frame inspector.
        case typeFirst
    }

    /// The compact JSON text with sorted keys (no spaces, `/` not escaped).
    public var text: String { text(keyOrder: .sorted) }

    /// With `escapingHTML`, strings escape `<`, `>`, `&` and U+2028/2029 as well (see
    /// `JSONText.quote`), for text a browser will handle.
    public func text(keyOrder: KeyOrder, escapingHTML: Bool = false) -> String {
        var out = ""
        write(to: &out, keyOrder: keyOrder, escapingHTML: escapingHTML)
        return out
    }

    private func write(to out: inout String, keyOrder: KeyOrder, escapingHTML: Bool) {
        switch self {
        case .string(let value): out += JSONText.quote(value, escapingHTML: escapingHTML)
        case .number(let value): out += Self.numberText(value)
        case .int(let value): out += String(value)
        case .bool(let value): out += value ? "true" : "false"
        case .null: out += "null"
        case .array(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                value.write(to: &out, keyOrder: keyOrder, escapingHTML: escapingHTML)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, key) in Self.ordered(members.keys, keyOrder).enumerated() {
                if index > 0 { out += "," }
                out += JSONText.quote(key, escapingHTML: escapingHTML)
                out += ":"
                members[key]!.write(to: &out, keyOrder: keyOrder, escapingHTML: escapingHTML)
            }
            out += "}"
        }
    }

    private static func ordered(_ keys: Dictionary<String, JSONValue>.Keys, _ order: KeyOrder) -> [String] {
        let byBytes: (String, String) -> Bool = { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        switch order {
        case .sorted: return keys.sorted(by: byBytes)
        case .typeFirst: return keys.sorted { $0 == "type" ? $1 != "type" : $1 == "type" ? false : byBytes($0, $1) }
        }
    }

    /// Integral values without a fraction (as JSONSerialization writes them: `1`, not `1.0`);
    /// others in Swift's shortest round-tripping form; JSON has no NaN or infinity, so those
    /// are `null`.
    static func numberText(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
