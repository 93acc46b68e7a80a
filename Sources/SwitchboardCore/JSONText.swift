/// JSON string literals, written by hand where a line or a frame is assembled field by
/// field (log lines, chat frames) rather than through an encoder.
public enum JSONText {
    /// `value` as a quoted JSON string. Control characters are escaped; with `escapingHTML`
    /// `<`, `>`, `&` and U+2028/2029 are too, so the text can never close a script element
    /// or break a JavaScript string if pasted into a page.
    public static func quote(_ value: String, escapingHTML: Bool = false) -> String {
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

    private static let htmlSensitive: Set<Unicode.Scalar> = ["<", ">", "&", "\u{2028}", "\u{2029}"]

    private static func unicodeEscape(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
