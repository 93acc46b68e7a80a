import Foundation

/// Times are stored and passed around as whole milliseconds since the Unix epoch (UTC):
/// they sort as integers in SQL and never carry a time zone. These helpers convert them to
/// and from RFC 3339 text at the edges.
public enum Timestamp {
    public static func now() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    public static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// RFC 3339 in UTC: `2026-11-29T10:00:00Z`, with `.sss` only when there are milliseconds.
    public static func format(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds.floorDivided(by: 1000))
        let millis = Int(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var text = "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
        text += "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
        if millis != 0 { text += "." + pad(Int32(millis), 3) }
        return text + "Z"
    }

    /// Parses RFC 3339 / ISO 8601 internet date-time, with or without fractional seconds,
    /// with `Z` or a numeric offset. Returns nil for anything else.
    public static func parse(_ text: String) -> Int64? {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: text) { return milliseconds(date) }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = fractional.date(from: text) { return milliseconds(date) }
        return nil
    }
}

extension Int64 {
    /// Division rounding towards negative infinity (times before 1970 stay correct).
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
