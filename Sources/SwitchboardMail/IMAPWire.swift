/// The IMAP client side of the wire (RFC 3501/9051), free of I/O: splitting what a server
/// sends into responses (literals included), and reading the few responses the poller asks
/// for — SELECT's UIDVALIDITY, STATUS, UID SEARCH, and a FETCH's size and body.
///
/// Trusts nothing from the server: every length is bounded (`maxLineBytes` for the text of a
/// response, `maxLiteralBytes` for each literal) and a malformed response is an error, never
/// a trap. What the server says is never put in an error (a server's text can quote a
/// patient's address); errors name only what was wrong.

/// One complete server response: its text, with each literal cut out (the text keeps the
/// `{n}` marker), and the literals in order.
public struct IMAPServerResponse: Sendable, Equatable {
    public var text: [UInt8]
    public var literals: [[UInt8]]

    public init(text: [UInt8], literals: [[UInt8]] = []) {
        self.text = text
        self.literals = literals
    }

    /// The text as a string (the protocol's own words are ASCII).
    public var line: String { String(decoding: text, as: UTF8.self) }

    /// `* …`: data, not the end of a command.
    public var isUntagged: Bool { text.first == UInt8(ascii: "*") }

    /// For `TAG OK|NO|BAD …`: the status word, upper-cased; nil when the response is not
    /// tagged with `tag`.
    public func completion(tag: String) -> String? {
        let prefix = Array((tag + " ").utf8)
        guard text.count > prefix.count, Array(text.prefix(prefix.count)) == prefix else { return nil }
        let word = text[prefix.count...].prefix { $0 != UInt8(ascii: " ") }
        return String(decoding: word, as: UTF8.self).uppercased()
    }
}

public struct IMAPWireError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Bytes in, responses out. Feed it what the connection delivers; take responses with
/// `next()` until it returns nil (more bytes needed).
public struct IMAPResponseReader: Sendable {
    public var maxLineBytes: Int
    public var maxLiteralBytes: Int

    private var buffer: [UInt8] = []
    private var start = 0
    /// The response being assembled while its literals arrive.
    private var pending = IMAPServerResponse(text: [])
    private var literalRemaining: Int?
    /// Where the search for the next line end resumes: bytes before it hold none.
    private var scanned = 0

    public init(maxLineBytes: Int = 1 << 20, maxLiteralBytes: Int = 64 << 20) {
        self.maxLineBytes = maxLineBytes
        self.maxLiteralBytes = maxLiteralBytes
    }

    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if start > 0 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            scanned -= start
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete response, or nil when more bytes are needed.
    public mutating func next() throws(IMAPWireError) -> IMAPServerResponse? {
        while true {
            if let remaining = literalRemaining {
                guard buffer.count - start >= remaining else { return nil }
                pending.literals.append(Array(buffer[start..<(start + remaining)]))
                start += remaining
                literalRemaining = nil
                continue
            }
            guard let lf = buffer[max(start, scanned)...].firstIndex(of: UInt8(ascii: "\n")) else {
                scanned = buffer.count
                // + 1: the CR of a line end whose LF has not arrived yet.
                if buffer.count - start + pending.text.count > maxLineBytes + 1 {
                    throw IMAPWireError("a server response line is longer than \(maxLineBytes) bytes")
                }
                return nil
            }
            var end = lf
            if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let piece = buffer[start..<end]
            start = lf + 1
            pending.text.append(contentsOf: piece)
            if pending.text.count > maxLineBytes {
                throw IMAPWireError("a server response line is longer than \(maxLineBytes) bytes")
            }
            if let size = try Self.literalSize(endingAt: pending.text) {
                guard size <= maxLiteralBytes else {
                    throw IMAPWireError("a server literal of \(size) bytes is over the \(maxLiteralBytes)-byte limit")
                }
                literalRemaining = size
                continue
            }
            let complete = pending
            pending = IMAPServerResponse(text: [])
            return complete
        }
    }

    /// `… {123}` (or the non-synchronising `{123+}`, or a literal8 `~{123}`) at the end of a
    /// line announces a literal of that many bytes.
    static func literalSize(endingAt text: [UInt8]) throws(IMAPWireError) -> Int? {
        guard text.last == UInt8(ascii: "}"), let open = text.lastIndex(of: UInt8(ascii: "{")) else { return nil }
        var digits = text[(open + 1)..<(text.count - 1)]
        if digits.last == UInt8(ascii: "+") { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        guard digits.count <= 12 else { throw IMAPWireError("a server literal length is out of range") }
        var size = 0
        for digit in digits { size = size * 10 + Int(digit - UInt8(ascii: "0")) }
        return size
    }
}

/// Reading the responses the poller needs. Pure functions over `IMAPServerResponse`.
public enum IMAPResponses {
    /// `* OK [UIDVALIDITY 3857529045] …` from SELECT.
    public static func selectedUIDValidity(_ responses: [IMAPServerResponse]) -> Int64? {
        for response in responses where response.isUntagged {
            let upper = response.line.uppercased()
            guard let range = upper.range(of: "[UIDVALIDITY ") else { continue }
            let digits = upper[range.upperBound...].prefix { $0.isASCII && $0.isNumber }
            if let value = Int64(digits), value > 0 { return value }
        }
        return nil
    }

    /// `* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 1795941960)`: the items as numbers.
    public static func status(_ responses: [IMAPServerResponse]) -> [String: Int64]? {
        for response in responses where response.isUntagged {
            let line = response.line
            guard line.uppercased().hasPrefix("* STATUS "),
                  let open = line.lastIndex(of: "("), let close = line.lastIndex(of: ")"), open < close else { continue }
            let items = line[line.index(after: open)..<close].split(separator: " ")
            var values: [String: Int64] = [:]
            var index = 0
            while index + 1 < items.count {
                if let value = Int64(items[index + 1]) { values[items[index].uppercased()] = value }
                index += 2
            }
            return values
        }
        return nil
    }

    /// `* SEARCH 1 2 3` (possibly several responses).
    public static func searchUIDs(_ responses: [IMAPServerResponse]) -> [Int64] {
        responses.filter { $0.isUntagged && $0.line.uppercased().hasPrefix("* SEARCH") }.flatMap { response in
            response.line.dropFirst(8).split(separator: " ").compactMap { Int64($0) }
        }
    }

    /// What a `UID FETCH uid (…)` returned for that UID: its RFC822.SIZE and its BODY[],
    /// when asked for. Untagged FETCH responses for other messages (a flag change another
    /// client made, say) are passed over. Nil when the server sent nothing for the UID
    /// (the message was expunged).
    public static func fetched(_ responses: [IMAPServerResponse], uid: Int64) throws(IMAPWireError) -> (size: Int64?, body: [UInt8]?)? {
        for response in responses where response.isUntagged {
            let items = try FetchItems(response)
            guard items.isFetch, items.numbers["UID"] == uid else { continue }
            return (items.numbers["RFC822.SIZE"], items.body)
        }
        return nil
    }

    /// The attributes of one `* n FETCH (…)` response, read token by token so that a body
    /// given as a quoted string, a literal or NIL is read the same way.
    struct FetchItems {
        var isFetch = false
        var numbers: [String: Int64] = [:]
        var body: [UInt8]?

        init(_ response: IMAPServerResponse) throws(IMAPWireError) {
            var scanner = Scanner(response)
            guard scanner.word() == "*", scanner.number() != nil, scanner.word()?.uppercased() == "FETCH" else { return }
            isFetch = true
            guard scanner.consume(UInt8(ascii: "(")) else { throw IMAPWireError("a FETCH response without its attribute list") }
            while !scanner.consume(UInt8(ascii: ")")) {
                guard let name = scanner.attributeName()?.uppercased() else {
                    throw IMAPWireError("a FETCH response attribute is malformed")
                }
                switch name {
                case "BODY[]", "BINARY[]", "RFC822":
                    body = try scanner.nstring()
                case _ where name.hasPrefix("BODY[") || name.hasPrefix("BINARY["):
                    _ = try scanner.nstring()
                default:
                    if let value = scanner.number() {
                        numbers[name] = value
                    } else {
                        try scanner.skipValue()
                    }
                }
            }
        }
    }

    /// A cursor over a response's text, taking literals from its list as their markers pass.
    struct Scanner {
        let text: [UInt8]
        var literals: IndexingIterator<[[UInt8]]>
        var index = 0

        init(_ response: IMAPServerResponse) {
            text = response.text
            literals = response.literals.makeIterator()
        }

        mutating func skipSpaces() {
            while index < text.count && text[index] == UInt8(ascii: " ") { index += 1 }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            skipSpaces()
            guard index < text.count && text[index] == byte else { return false }
            index += 1
            return true
        }

        /// Up to the next space or parenthesis.
        mutating func word() -> String? {
            skipSpaces()
            let begin = index
            while index < text.count, ![UInt8(ascii: " "), UInt8(ascii: "("), UInt8(ascii: ")")].contains(text[index]) { index += 1 }
            return begin == index ? nil : String(decoding: text[begin..<index], as: UTF8.self)
        }

        mutating func number() -> Int64? {
            skipSpaces()
            let begin = index
            while index < text.count && text[index] >= UInt8(ascii: "0") && text[index] <= UInt8(ascii: "9") && index - begin < 18 { index += 1 }
            guard index > begin else { return nil }
            if index < text.count, ![UInt8(ascii: " "), UInt8(ascii: ")")].contains(text[index]) {
                index = begin
                return nil
            }
            return Int64(String(decoding: text[begin..<index], as: UTF8.self))
        }

        /// An attribute name, with a section in brackets (`BODY[HEADER.FIELDS (FROM)]`) and
        /// a partial origin (`<0>`) kept as part of it.
        mutating func attributeName() -> String? {
            skipSpaces()
            let begin = index
            var depth = 0
            while index < text.count {
                let byte = text[index]
                if byte == UInt8(ascii: "[") { depth += 1 }
                if byte == UInt8(ascii: "]") { depth -= 1 }
                if depth <= 0 && (byte == UInt8(ascii: " ") || byte == UInt8(ascii: ")")) { break }
                if depth <= 0 && byte == UInt8(ascii: "(") { break }
                index += 1
            }
            return begin == index ? nil : String(decoding: text[begin..<index], as: UTF8.self)
        }

        /// NIL, a quoted string or a literal.
        mutating func nstring() throws(IMAPWireError) -> [UInt8]? {
            skipSpaces()
            guard index < text.count else { throw IMAPWireError("a FETCH response ends where a value should be") }
            switch text[index] {
            case UInt8(ascii: "\""):
                index += 1
                var value: [UInt8] = []
                while index < text.count {
                    let byte = text[index]
                    index += 1
                    if byte == UInt8(ascii: "\\"), index < text.count {
                        value.append(text[index])
                        index += 1
                    } else if byte == UInt8(ascii: "\"") {
                        return value
                    } else {
                        value.append(byte)
                    }
                }
                throw IMAPWireError("a quoted string in a FETCH response is not closed")
            case UInt8(ascii: "{"), UInt8(ascii: "~"):
                guard let close = text[index...].firstIndex(of: UInt8(ascii: "}")) else {
                    throw IMAPWireError("a literal marker in a FETCH response is not closed")
                }
                index = close + 1
                guard let literal = literals.next() else { throw IMAPWireError("a FETCH response is missing a literal") }
                return literal
            default:
                guard let word = word(), word.uppercased() == "NIL" else {
                    throw IMAPWireError("a FETCH response value is neither a string, a literal nor NIL")
                }
                return nil
            }
        }

        /// Any value: a parenthesised list (nested), a string, a literal, or an atom.
        mutating func skipValue() throws(IMAPWireError) {
            skipSpaces()
            guard index < text.count else { throw IMAPWireError("a FETCH response ends where a value should be") }
            switch text[index] {
            case UInt8(ascii: "("):
                index += 1
                while !consume(UInt8(ascii: ")")) {
                    guard index < text.count else { throw IMAPWireError("a list in a FETCH response is not closed") }
                    try skipValue()
                }
            case UInt8(ascii: "\""), UInt8(ascii: "{"), UInt8(ascii: "~"):
                _ = try nstring()
            default:
                guard word() != nil else { throw IMAPWireError("a FETCH response value is malformed") }
            }
        }
    }
}

/// IMAP syntax for what the client puts in its commands.
public enum IMAPSyntax {
    /// A quoted string (RFC 3501): backslash and quote escaped. CR, LF and NUL cannot be
    /// quoted; mailbox names come from our own configuration, where they are refused.
    public static func quoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            if scalar == "\\" || scalar == "\"" { out.unicodeScalars.append("\\") }
            if scalar == "\r" || scalar == "\n" || scalar == "\0" { continue }
            out.unicodeScalars.append(scalar)
        }
        return out + "\""
    }
}
