// Header sections (RFC 5322 §2.2, §3.6), their encodings (RFC 2047 encoded words, RFC 2231
// parameters, raw 8-bit UTF-8 per RFC 6532), and the structured fields the daemon reads:
// Content-Type/Content-Disposition parameters, Message-ID lists, address lists and dates.
//
// Trust: none. Every function here takes attacker-controlled text, returns a best-effort value
// and never throws or traps; malformed pieces are skipped or kept literally. Sizes are bounded
// by the caller's header limit (`MailHeaders.parse(_:limit:)`).

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwitchboardCore

// MARK: - Fields

/// One header field: `value` unfolded (CRLF before whitespace removed, RFC 5322 §2.2.3),
/// trimmed, not RFC 2047-decoded; `name` as written.
public struct MailHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A header section in order of appearance.
public struct MailHeaders: Sendable, Equatable {
    public var fields: [MailHeader]

    public init(fields: [MailHeader] = []) {
        self.fields = fields
    }

    /// The first field named `name` (ASCII case-insensitive).
    public subscript(_ name: String) -> String? {
        fields.first { Self.sameName($0.name, name) }?.value
    }

    /// Every field named `name`, in order.
    public func all(_ name: String) -> [String] {
        fields.filter { Self.sameName($0.name, name) }.map(\.value)
    }

    /// Parses the header section at the start of `bytes`.
    ///
    /// Lines may end in CRLF or LF. Fields stop at the first empty line; `bodyOffset` is the
    /// index (in `bytes`' base) just after it. Without an empty line the whole input is header
    /// and `bodyOffset == bytes.endIndex`. A line that is neither a field nor a continuation
    /// (a missing separator) starts the body. An mbox `From ` first line is skipped. Only the
    /// first `limit` bytes are kept as fields; the rest of the section is read past, ignored.
    /// Values are decoded as UTF-8 when valid, else windows-1252.
    public static func parse(_ bytes: ArraySlice<UInt8>, limit: Int) -> (headers: MailHeaders, bodyOffset: Int) {
        let end = bytes.endIndex
        let storeEnd = bytes.startIndex + min(max(limit, 0), bytes.count)
        var fields: [MailHeader] = []
        var name: String?
        var value: [UInt8] = []
        var index = bytes.startIndex
        var bodyOffset = end
        var isFirstLine = true

        func flush() {
            guard let fieldName = name else { return }
            fields.append(MailHeader(name: fieldName, value: MIMECharset.decodeLeniently(MIMEByte.trimWSP(value[...]))))
            name = nil
            value = []
        }

        while index < end {
            let lineEnd = bytes[index...].firstIndex(of: MIMEByte.lf) ?? end
            var contentEnd = lineEnd
            if contentEnd > index, bytes[contentEnd - 1] == MIMEByte.cr { contentEnd -= 1 }
            let next = lineEnd < end ? lineEnd + 1 : end
            if contentEnd == index {
                bodyOffset = next
                break
            }
            let first = bytes[index]
            if first == MIMEByte.space || first == MIMEByte.tab {
                if name != nil, index < storeEnd {
                    value.append(contentsOf: bytes[index..<min(contentEnd, storeEnd)])
                }
            } else if let (nameEnd, colon) = fieldName(bytes, from: index, to: contentEnd) {
                flush()
                if colon < storeEnd {
                    name = String(decoding: bytes[index..<nameEnd], as: UTF8.self)
                    value = Array(bytes[(colon + 1)..<max(colon + 1, min(contentEnd, storeEnd))])
                }
            } else if isFirstLine, bytes[index..<contentEnd].starts(with: Array("From ".utf8)) {
                // An mbox envelope line.
            } else {
                bodyOffset = index
                break
            }
            isFirstLine = false
            index = next
        }
        flush()
        return (MailHeaders(fields: fields), bodyOffset)
    }

    /// `(end of name, index of colon)` when the line is `name [WSP] ":" …` with a name of
    /// printable ASCII.
    private static func fieldName(_ bytes: ArraySlice<UInt8>, from start: Int, to end: Int) -> (Int, Int)? {
        var index = start
        while index < end {
            let byte = bytes[index]
            if byte == MIMEByte.colon { return index > start ? (index, index) : nil }
            if byte == MIMEByte.space || byte == MIMEByte.tab { break }
            guard byte > 0x20, byte < 0x7F else { return nil }
            index += 1
        }
        let nameEnd = index
        guard nameEnd > start else { return nil }
        while index < end, bytes[index] == MIMEByte.space || bytes[index] == MIMEByte.tab { index += 1 }
        return index < end && bytes[index] == MIMEByte.colon ? (nameEnd, index) : nil
    }

    static func sameName(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.count == rhs.utf8.count && zip(lhs.utf8, rhs.utf8).allSatisfy { MIMEByte.lower($0) == MIMEByte.lower($1) }
    }
}

// MARK: - RFC 2047 encoded words

extension MailHeaders {
    /// Decodes RFC 2047 encoded words (`=?charset?B?…?=`, `=?charset?Q?…?=`, also
    /// `=?charset*lang?…?=`). Whitespace between adjacent encoded words is dropped; adjacent
    /// words in one charset are joined before charset decoding (encoders split multi-byte
    /// characters). Malformed words stay literal. Control characters produced by decoding
    /// (a smuggled CR LF) become spaces.
    public static func decodeEncodedWords(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count > 7, bytes.contains(MIMEByte.question) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var pendingCharset: String?
        var pendingBytes: [UInt8] = []
        var whitespace: [UInt8] = []
        var afterWord = false
        var index = 0

        func flushPending() {
            guard let charset = pendingCharset else { return }
            let decoded = MIMECharset.decode(pendingBytes, charset: charset)
            for scalar in decoded.unicodeScalars {
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out.append(MIMEByte.space)
                } else {
                    out.append(contentsOf: Array(String(scalar).utf8))
                }
            }
            pendingCharset = nil
            pendingBytes = []
        }

        while index < bytes.count {
            if bytes[index] == MIMEByte.equals, index + 1 < bytes.count, bytes[index + 1] == MIMEByte.question,
               let word = encodedWord(bytes, at: index) {
                whitespace.removeAll()
                if pendingCharset == word.charset {
                    pendingBytes.append(contentsOf: word.bytes)
                } else {
                    flushPending()
                    pendingCharset = word.charset
                    pendingBytes = word.bytes
                }
                index = word.end
                afterWord = true
                continue
            }
            let byte = bytes[index]
            if afterWord, byte == MIMEByte.space || byte == MIMEByte.tab || byte == MIMEByte.cr || byte == MIMEByte.lf {
                whitespace.append(byte)
                index += 1
                continue
            }
            flushPending()
            out.append(contentsOf: whitespace)
            whitespace.removeAll()
            afterWord = false
            out.append(byte)
            index += 1
        }
        flushPending()
        out.append(contentsOf: whitespace)
        return String(decoding: out, as: UTF8.self)
    }

    private static func encodedWord(_ bytes: [UInt8], at start: Int) -> (charset: String, bytes: [UInt8], end: Int)? {
        var index = start + 2
        let charsetStart = index
        while index < bytes.count, bytes[index] != MIMEByte.question {
            guard bytes[index] > 0x20, bytes[index] < 0x7F, index - charsetStart < 64 else { return nil }
            index += 1
        }
        guard index < bytes.count, index > charsetStart else { return nil }
        var charset = String(decoding: bytes[charsetStart..<index], as: UTF8.self).lowercased()
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }
        guard !charset.isEmpty else { return nil }
        index += 1
        guard index + 1 < bytes.count, bytes[index + 1] == MIMEByte.question else { return nil }
        let encoding = MIMEByte.lower(bytes[index])
        guard encoding == UInt8(ascii: "b") || encoding == UInt8(ascii: "q") else { return nil }
        index += 2
        let textStart = index
        while index < bytes.count, bytes[index] != MIMEByte.question {
            guard bytes[index] > 0x20, bytes[index] < 0x7F else { return nil }
            index += 1
        }
        guard index + 1 < bytes.count, bytes[index + 1] == MIMEByte.equals else { return nil }
        let text = bytes[textStart..<index]
        let decoded = encoding == UInt8(ascii: "b")
            ? MIMETransferDecoding.decodeBase64(text, limit: Int.max).bytes
            : MIMETransferDecoding.decodeQuotedPrintable(text, limit: Int.max, underscoreIsSpace: true).bytes
        return (charset, decoded, index + 2)
    }
}

// MARK: - Parameters (RFC 2045 §5.1, RFC 2183, RFC 2231)

/// A parameterised field such as Content-Type or Content-Disposition:
/// `value` is the lower-cased token before the first `;` (whitespace and comments removed);
/// `parameters` maps lower-cased names to decoded values. RFC 2231 continuations
/// (`name*0*=`, `name*1=`) and charset'language'%XX values are joined and decoded, and win
/// over a plain parameter of the same name. RFC 2047 words are *not* decoded here (a
/// boundary may legitimately contain `=?`); filenames are decoded by the MIME parser.
public struct MIMEFieldValue: Sendable, Equatable {
    public var value: String
    public var parameters: [String: String]

    public init(value: String, parameters: [String: String] = [:]) {
        self.value = value
        self.parameters = parameters
    }

    public subscript(parameter name: String) -> String? {
        parameters[name.lowercased()]
    }

    public static func parse(_ raw: String) -> MIMEFieldValue {
        let bytes = Array(raw.utf8)
        var segments: [[UInt8]] = [[]]
        var index = 0
        var inQuote = false
        var commentDepth = 0
        while index < bytes.count {
            let byte = bytes[index]
            if inQuote {
                segments[segments.count - 1].append(byte)
                if byte == MIMEByte.backslash, index + 1 < bytes.count {
                    segments[segments.count - 1].append(bytes[index + 1])
                    index += 2
                    continue
                }
                if byte == MIMEByte.quote { inQuote = false }
            } else if commentDepth > 0 {
                if byte == MIMEByte.backslash { index += 1 }
                else if byte == MIMEByte.openParen { commentDepth += 1 }
                else if byte == MIMEByte.closeParen { commentDepth -= 1 }
            } else {
                switch byte {
                case MIMEByte.quote:
                    inQuote = true
                    segments[segments.count - 1].append(byte)
                case MIMEByte.openParen where startsToken(segments[segments.count - 1]):
                    commentDepth = 1
                case MIMEByte.semicolon:
                    if segments.count < 256 { segments.append([]) } else { index = bytes.count; continue }
                default:
                    segments[segments.count - 1].append(byte)
                }
            }
            index += 1
        }

        let value = String(decoding: segments[0].filter { !MIMEByte.isSpace($0) }.map(MIMEByte.lower), as: UTF8.self)

        var plain: [String: String] = [:]
        var pieces: [String: [(section: Int, extended: Bool, value: [UInt8])]] = [:]
        for segment in segments.dropFirst() {
            guard let equals = segment.firstIndex(of: MIMEByte.equals) else { continue }
            let nameBytes = MIMEByte.trimSpace(segment[..<equals])
            guard !nameBytes.isEmpty, !nameBytes.contains(where: { MIMEByte.isSpace($0) || $0 == MIMEByte.quote }) else { continue }
            var name = String(decoding: nameBytes.map(MIMEByte.lower), as: UTF8.self)
            let rawValue = unquote(MIMEByte.trimSpace(segment[(equals + 1)...]))

            var extended = false
            var section: Int?
            if name.hasSuffix("*") {
                extended = true
                name.removeLast()
            }
            if let star = name.lastIndex(of: "*") {
                let digits = name[name.index(after: star)...]
                if !digits.isEmpty, digits.count <= 3, digits.allSatisfy(MIMEByte.isDigit), let number = Int(digits) {
                    section = number
                    name = String(name[..<star])
                }
            }
            guard !name.isEmpty else { continue }
            if section == nil, !extended {
                if plain[name] == nil { plain[name] = String(decoding: rawValue, as: UTF8.self) }
            } else {
                pieces[name, default: []].append((section ?? 0, extended, rawValue))
            }
        }

        var parameters = plain
        for (name, parts) in pieces {
            var seen = Set<Int>()
            let ordered = parts.sorted { $0.section < $1.section }.filter { seen.insert($0.section).inserted }
            var charset: String?
            var joined: [UInt8] = []
            for (position, part) in ordered.enumerated() {
                guard part.extended else {
                    joined.append(contentsOf: part.value)
                    continue
                }
                var encoded = part.value[...]
                if position == 0 {
                    // charset'language'value; without the two quotes the whole is the value.
                    if let first = encoded.firstIndex(of: MIMEByte.apostrophe),
                       let second = encoded[(first + 1)...].firstIndex(of: MIMEByte.apostrophe) {
                        let label = String(decoding: encoded[..<first], as: UTF8.self)
                        charset = label.isEmpty ? nil : label
                        encoded = encoded[(second + 1)...]
                    }
                }
                joined.append(contentsOf: percentDecode(encoded))
            }
            parameters[name] = MIMECharset.decode(joined, charset: charset)
        }
        return MIMEFieldValue(value: value, parameters: parameters)
    }

    /// A `(` starts a comment only where a token may start (not inside `foo(1).pdf`).
    private static func startsToken(_ segment: [UInt8]) -> Bool {
        guard let last = segment.last else { return true }
        return MIMEByte.isSpace(last) || last == MIMEByte.equals
    }

    private static func unquote(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        guard bytes.first == MIMEByte.quote else { return Array(bytes) }
        var out: [UInt8] = []
        var index = bytes.startIndex + 1
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == MIMEByte.quote { break }
            if byte == MIMEByte.backslash, index + 1 < bytes.endIndex {
                out.append(bytes[index + 1])
                index += 2
                continue
            }
            out.append(byte)
            index += 1
        }
        return out
    }

    private static func percentDecode(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == MIMEByte.percent, index + 2 < bytes.endIndex,
               let high = MIMEByte.hex(bytes[index + 1]), let low = MIMEByte.hex(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }
}

// MARK: - Message-IDs

extension MailHeaders {
    /// The msg-ids of a Message-ID, In-Reply-To or References value, without angle brackets,
    /// in order. Text outside `<…>` (comments, legacy phrases) is ignored; whitespace inside
    /// an id (folding) is removed. A value without any `<` yields its whitespace- or
    /// comma-separated tokens that contain `@`. At most 1,000 ids of ≤ 998 bytes.
    public static func messageIDs(_ value: String) -> [String] {
        var ids: [String] = []
        let bytes = Array(value.utf8)
        if bytes.contains(MIMEByte.lessThan) {
            var index = 0
            while index < bytes.count, ids.count < 1_000 {
                guard bytes[index] == MIMEByte.lessThan else {
                    index += 1
                    continue
                }
                var close = index + 1
                while close < bytes.count, bytes[close] != MIMEByte.greaterThan, bytes[close] != MIMEByte.lessThan { close += 1 }
                guard close < bytes.count, bytes[close] == MIMEByte.greaterThan else {
                    index = close
                    continue
                }
                let id = bytes[(index + 1)..<close].filter { !MIMEByte.isSpace($0) }
                if !id.isEmpty, id.count <= 998 { ids.append(String(decoding: id, as: UTF8.self)) }
                index = close + 1
            }
        } else {
            for token in bytes.split(whereSeparator: { MIMEByte.isSpace($0) || $0 == MIMEByte.comma }) where ids.count < 1_000 {
                if token.contains(MIMEByte.at), token.count <= 998, !token.contains(MIMEByte.openParen) {
                    ids.append(String(decoding: token, as: UTF8.self))
                }
            }
        }
        return ids
    }
}

// MARK: - Addresses (RFC 5322 §3.4)

/// A mailbox: `displayName` RFC 2047-decoded and unquoted, `address` as written with the
/// domain lower-cased.
public struct MailAddress: Sendable, Equatable, Hashable {
    public var displayName: String?
    public var address: String

    public init(displayName: String? = nil, address: String) {
        self.displayName = displayName
        self.address = address
    }

    /// Parses an RFC 5322 address-list: `"A B" <a@b>`, `a@b (Comment)`, groups
    /// (`undisclosed-recipients:;`, `team: a@b, c@d;`), quoted local parts, obsolete routes,
    /// encoded-word display names. Entries that are not `local@domain` are skipped.
    public static func parseList(_ value: String) -> [MailAddress] {
        let scalars = Array(value.unicodeScalars)
        var result: [MailAddress] = []
        var words: [String] = []
        var spec = ""
        var angle: String?
        var comment: String?
        var index = 0

        func flush() {
            defer {
                words = []
                spec = ""
                angle = nil
                comment = nil
            }
            guard result.count < 1_000 else { return }
            let display: String?
            let raw: String
            if let angle {
                raw = angle
                let phrase = words.joined(separator: " ")
                display = phrase.isEmpty ? comment : phrase
            } else {
                raw = spec
                display = comment
            }
            guard let address = normalizedAddress(raw) else { return }
            result.append(MailAddress(displayName: display.flatMap(cleanDisplayName), address: address))
        }

        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "\"":
                var text = String.UnicodeScalarView()
                var written = String.UnicodeScalarView(["\""])
                index += 1
                while index < scalars.count, scalars[index] != "\"" {
                    if scalars[index] == "\\", index + 1 < scalars.count {
                        written.append(scalars[index])
                        index += 1
                    }
                    text.append(scalars[index])
                    written.append(scalars[index])
                    index += 1
                }
                written.append("\"")
                index += 1
                words.append(String(text))
                spec.unicodeScalars.append(contentsOf: written)
            case "(":
                var text = String.UnicodeScalarView()
                var depth = 1
                index += 1
                while index < scalars.count {
                    let inner = scalars[index]
                    if inner == "\\", index + 1 < scalars.count {
                        text.append(scalars[index + 1])
                        index += 2
                        continue
                    }
                    if inner == "(" { depth += 1 }
                    if inner == ")" {
                        depth -= 1
                        if depth == 0 { break }
                    }
                    text.append(inner)
                    index += 1
                }
                index += 1
                comment = String(text)
            case "<":
                var text = String.UnicodeScalarView()
                index += 1
                while index < scalars.count, scalars[index] != ">" {
                    text.append(scalars[index])
                    index += 1
                }
                index += 1
                if angle == nil { angle = String(text) }
            case ",":
                flush()
                index += 1
            case ";":
                flush()
                index += 1
            case ":":
                // A group's display name; the mailboxes follow.
                if angle == nil {
                    words = []
                    spec = ""
                    comment = nil
                }
                index += 1
            case " ", "\t", "\r", "\n", ">":
                // A stray ">" has no opening "<": skipped (without this the scan never advances).
                index += 1
            default:
                var atom = String.UnicodeScalarView()
                while index < scalars.count {
                    let inner = scalars[index]
                    if "\"(<>,;: \t\r\n".unicodeScalars.contains(inner) { break }
                    atom.append(inner)
                    index += 1
                }
                words.append(String(atom))
                spec.unicodeScalars.append(contentsOf: atom)
            }
        }
        flush()
        return result
    }

    private static func normalizedAddress(_ raw: String) -> String? {
        var address = String(raw.unicodeScalars.filter { !$0.properties.isWhitespace })
        // Obsolete route: <@a.example,@b.example:user@c.example>
        if address.hasPrefix("@"), let colon = address.firstIndex(of: ":") {
            address = String(address[address.index(after: colon)...])
        }
        guard address.utf8.count <= 998, let at = address.lastIndex(of: "@") else { return nil }
        let local = address[..<at]
        let domain = address[address.index(after: at)...]
        guard !local.isEmpty, !domain.isEmpty,
              !address.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }),
              !domain.unicodeScalars.contains(where: { "@\"\\<>()[],;:".unicodeScalars.contains($0) && $0 != "[" && $0 != "]" })
        else { return nil }
        return local + "@" + domain.lowercased()
    }

    private static func cleanDisplayName(_ raw: String) -> String? {
        let decoded = MailHeaders.decodeEncodedWords(raw)
        let words = decoded.split(whereSeparator: { $0.isWhitespace || $0.unicodeScalars.allSatisfy { $0.value < 0x20 } })
        let name = words.joined(separator: " ")
        return name.isEmpty ? nil : name
    }
}

// MARK: - Dates (RFC 5322 §3.3, §4.3)

extension MailHeaders {
    /// Parses an RFC 5322 date-time; see `MIMEDateParser.parse(_:)`.
    public static func parseDate(_ value: String) -> Date? {
        MIMEDateParser.parse(value)
    }
}

enum MIMEDateParser {
    /// Parses an RFC 5322 date-time, including the obsolete forms: no weekday, comments
    /// (`(PST)`), two- and three-digit years, alphabetic zones (UT, GMT, EST … PDT; military
    /// and unknown zones count as +0000), missing seconds, and the asctime order
    /// (`Mon Jan  2 15:04:05 2006`). nil when no day, month, year and time can be found.
    static func parse(_ value: String) -> Date? {
        var cleaned = ""
        var depth = 0
        for character in value.prefix(512) {
            switch character {
            case "(": depth += 1
            case ")": depth = max(0, depth - 1)
            case ",": if depth == 0 { cleaned.append(" ") }
            default: if depth == 0 { cleaned.append(character) }
            }
        }
        var tokens: [Substring] = []
        for token in cleaned.split(whereSeparator: { $0.isWhitespace }) {
            // "02-Jan-2006" (obsolete dashes) but not "-0700".
            if token.contains("-"), !token.hasPrefix("-"), token.contains(where: \.isLetter) {
                tokens.append(contentsOf: token.split(separator: "-"))
            } else {
                tokens.append(token)
            }
        }

        var numbers: [Substring] = []
        var month: Int?
        var time: (Int, Int, Int)?
        var offset: Int?
        for token in tokens {
            if token.contains(":"), token.first.map(MIMEByte.isDigit) == true {
                if time == nil { time = parseTime(token) }
            } else if token.first == "+" || token.first == "-" {
                if offset == nil { offset = parseNumericZone(token.dropFirst(), negative: token.first == "-") }
            } else if token.allSatisfy(MIMEByte.isDigit) {
                numbers.append(token)
            } else {
                let word = token.lowercased()
                if month == nil, let found = monthNumber(word) {
                    month = found
                } else if weekdays.contains(where: { word.hasPrefix($0) }) {
                    continue
                } else if offset == nil, let zone = zones[word] {
                    offset = zone * 3600
                } else if offset == nil, word.count == 1, word.first?.isLetter == true {
                    offset = 0
                }
            }
        }
        guard let month, let (hour, minute, second) = time, numbers.count >= 2 else { return nil }
        var day: Int?
        var year: Int?
        for number in numbers.prefix(2) {
            guard number.count <= 4, let parsed = Int(number) else { return nil }
            if day == nil, number.count <= 2, (1...31).contains(parsed) {
                day = parsed
            } else if year == nil {
                switch number.count {
                case 1, 2: year = parsed < 50 ? 2000 + parsed : 1900 + parsed
                case 3: year = 1900 + parsed
                default: year = parsed
                }
            }
        }
        guard let day, let year, (1900...9999).contains(year), day <= Timestamp.daysInMonth(year: year, month: month) else { return nil }
        let days = Timestamp.daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - (offset ?? 0)
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    private static let weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let zones: [String: Int] = [
        "ut": 0, "utc": 0, "gmt": 0, "z": 0,
        "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7,
        "wet": 0, "west": 1, "bst": 1, "cet": 1, "cest": 2, "met": 1, "mest": 2, "eet": 2, "eest": 3,
    ]

    private static func monthNumber(_ word: String) -> Int? {
        guard word.count >= 3, let index = months.firstIndex(of: String(word.prefix(3))) else { return nil }
        return index + 1
    }

    private static func parseTime(_ token: Substring) -> (Int, Int, Int)? {
        let parts = token.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let secondsPart = parts.count == 3 ? parts[2].prefix { $0 != "." } : "0"
        guard parts[0].count <= 2, parts[1].count == 2, secondsPart.count <= 2,
              let hour = Int(parts[0]), let minute = Int(parts[1]), let second = Int(secondsPart),
              (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        return (hour, minute, second)
    }

    private static func parseNumericZone(_ digits: Substring, negative: Bool) -> Int? {
        let compact = digits.filter { $0 != ":" }
        guard compact.count == 4, compact.allSatisfy(MIMEByte.isDigit), let value = Int(compact) else { return nil }
        let hours = value / 100
        let minutes = value % 100
        guard hours <= 23, minutes <= 59 else { return nil }
        let seconds = hours * 3_600 + minutes * 60
        return negative ? -seconds : seconds
    }
}

// MARK: - Authentication-Results hygiene (RFC 8601 §5)

/// SMTP-side header hygiene.
public enum MailHeaderHygiene {
    /// Removes every `Authentication-Results:` field (with its continuation lines) whose
    /// authserv-id — the first token of the value, before `;`, ignoring CFWS — equals
    /// `authservID` case-insensitively, so a sender cannot claim our own verdicts. Everything
    /// else, including the body and other Authentication-Results fields, is kept byte for
    /// byte. Only the header section (up to the first empty line) is examined; CRLF and LF
    /// line endings both work.
    public static func removingAuthenticationResults(_ raw: [UInt8], authservID: String) -> (raw: [UInt8], removed: Int) {
        let wanted = MIMEByte.trimmed(authservID).lowercased()
        guard !wanted.isEmpty else { return (raw, 0) }
        let fieldName = Array("authentication-results".utf8)

        // Field start offsets; the header section ends at `headerEnd`.
        var fieldStarts: [Int] = []
        var index = 0
        var headerEnd = raw.count
        while index < raw.count {
            let lineEnd = raw[index...].firstIndex(of: MIMEByte.lf) ?? raw.count
            let isEmpty = lineEnd == index || (lineEnd == index + 1 && raw[index] == MIMEByte.cr)
            if isEmpty {
                headerEnd = index
                break
            }
            if raw[index] != MIMEByte.space, raw[index] != MIMEByte.tab { fieldStarts.append(index) }
            index = lineEnd < raw.count ? lineEnd + 1 : raw.count
        }

        var removals: [Range<Int>] = []
        for (position, start) in fieldStarts.enumerated() {
            let end = position + 1 < fieldStarts.count ? fieldStarts[position + 1] : headerEnd
            let field = raw[start..<end]
            guard let colon = field.firstIndex(of: MIMEByte.colon) else { continue }
            let name = MIMEByte.trimWSP(field[start..<colon])
            guard name.count == fieldName.count, zip(name, fieldName).allSatisfy({ MIMEByte.lower($0) == $1 }) else { continue }
            let id = authservIdentifier(Array(field[(colon + 1)...]))
            if id.lowercased() == wanted { removals.append(start..<end) }
        }
        guard !removals.isEmpty else { return (raw, 0) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var cursor = 0
        for range in removals {
            out.append(contentsOf: raw[cursor..<range.lowerBound])
            cursor = range.upperBound
        }
        out.append(contentsOf: raw[cursor...])
        return (out, removals.count)
    }

    /// The first token of an Authentication-Results value, skipping CFWS (folding, nested
    /// comments); a quoted-string is unquoted.
    private static func authservIdentifier(_ value: [UInt8]) -> String {
        var index = 0
        var depth = 0
        while index < value.count {
            let byte = value[index]
            if depth > 0 {
                if byte == MIMEByte.backslash { index += 1 }
                else if byte == MIMEByte.openParen { depth += 1 }
                else if byte == MIMEByte.closeParen { depth -= 1 }
            } else if byte == MIMEByte.openParen {
                depth = 1
            } else if !MIMEByte.isSpace(byte) {
                break
            }
            index += 1
        }
        var token: [UInt8] = []
        if index < value.count, value[index] == MIMEByte.quote {
            index += 1
            while index < value.count, value[index] != MIMEByte.quote {
                if value[index] == MIMEByte.backslash, index + 1 < value.count { index += 1 }
                token.append(value[index])
                index += 1
            }
        } else {
            while index < value.count {
                let byte = value[index]
                if MIMEByte.isSpace(byte) || byte == MIMEByte.semicolon || byte == MIMEByte.openParen { break }
                token.append(byte)
                index += 1
            }
        }
        return MIMECharset.decodeLeniently(token)
    }
}

// MARK: - Byte helpers (namespaced: other files share this module)

enum MIMEByte {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let percent: UInt8 = 0x25
    static let apostrophe: UInt8 = 0x27
    static let openParen: UInt8 = 0x28
    static let closeParen: UInt8 = 0x29
    static let comma: UInt8 = 0x2C
    static let dash: UInt8 = 0x2D
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let lessThan: UInt8 = 0x3C
    static let equals: UInt8 = 0x3D
    static let greaterThan: UInt8 = 0x3E
    static let question: UInt8 = 0x3F
    static let at: UInt8 = 0x40
    static let backslash: UInt8 = 0x5C
    static let underscore: UInt8 = 0x5F

    @inline(__always) static func lower(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    /// Space, tab, CR, LF, FF.
    @inline(__always) static func isSpace(_ byte: UInt8) -> Bool {
        byte == space || byte == tab || byte == cr || byte == lf || byte == 0x0C
    }

    @inline(__always) static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }

    static func isDigit(_ character: Character) -> Bool {
        character.isASCII && character.isNumber
    }

    /// Trims spaces and tabs.
    static func trimWSP(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == space || bytes[start] == tab { start += 1 }
        while end > start, bytes[end - 1] == space || bytes[end - 1] == tab { end -= 1 }
        return bytes[start..<end]
    }

    /// Trims ASCII whitespace (space, tab, CR, LF, FF).
    static func trimSpace(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        return bytes[start..<end]
    }

    /// Trims whitespace and newlines (Unicode) from both ends.
    static func trimmed(_ text: some StringProtocol) -> String {
        var slice = Substring(text)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
