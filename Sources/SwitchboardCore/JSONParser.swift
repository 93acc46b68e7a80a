// JSONValue.parse — strict RFC 8259 JSON text to `JSONValue`, straight from the bytes.
//
// Why not JSONSerialization: on Linux it builds `[String: Any]` through NSDictionary, and
// reading fields back out of it means dynamic casts; for the portal's webhook that was about
// 8% of the daemon's CPU while acknowledging (perf, BENCHMARKS.md). This parser reads a
// webhook body in a few microseconds into typed values.
//
// Trusts: nothing; the input is a stranger's request body. Strict: one value with optional
// whitespace around it; UTF-8 validated; no control characters in strings; escapes as RFC
// 8259 §7 lists them, surrogate pairs combined and a lone surrogate refused; numbers in the
// grammar of §6, integers that fit an Int64 as `.int`, others as finite doubles; nesting at
// most `maxDepth` deep (no stack exhaustion from `[[[[…`). A repeated object key keeps its
// last value, as JSONSerialization does.
// On failure: `JSONParseError` with the byte offset and what was expected — never the
// input's content, so the error is safe to log.

/// Why a JSON text was refused, at which byte offset. Carries no input bytes.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JSONValue {
    /// Nesting deeper than this (arrays and objects) is refused.
    public static let maxDepth = 512

    /// The one JSON value in `bytes`.
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        let buffer = Array(bytes)
        var parser = JSONBytesParser(bytes: buffer)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.offset == buffer.count else { throw parser.error("text after the value") }
        return value
    }

    /// The members, if this is an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }
}

private struct JSONBytesParser {
    let bytes: [UInt8]
    var offset = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func error(_ reason: String) -> JSONParseError { JSONParseError(offset: offset, reason: reason) }

    var current: UInt8? { offset < bytes.count ? bytes[offset] : nil }

    mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { offset += 1 }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let byte = current else { throw error("a value expected, the text ended") }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("a value expected")
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - offset >= count else { throw error("a value expected") }
        for index in 0..<count where bytes[offset + index] != word.utf8Start[index] {
            throw error("a value expected")
        }
        offset += count
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= JSONValue.maxDepth else { throw error("nested deeper than \(JSONValue.maxDepth)") }
        offset += 1  // {
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            offset += 1
            return .object(members)
        }
        while true {
            guard current == UInt8(ascii: "\"") else { throw error("a member name (a string) expected") }
            let key = try string()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("':' expected after a member name") }
            offset += 1
            skipWhitespace()
            members[key] = try value(depth: depth)
            guard try another(before: UInt8(ascii: "}"), in: "an object") else { return .object(members) }
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= JSONValue.maxDepth else { throw error("nested deeper than \(JSONValue.maxDepth)") }
        offset += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            offset += 1
            return .array(elements)
        }
        while true {
            elements.append(try value(depth: depth))
            guard try another(before: UInt8(ascii: "]"), in: "an array") else { return .array(elements) }
        }
    }

    /// After a member or an element: true past a ',' (another follows), false past `close`.
    mutating func another(before close: UInt8, in container: StaticString) throws(JSONParseError) -> Bool {
        skipWhitespace()
        switch current {
        case UInt8(ascii: ","):
            offset += 1
            skipWhitespace()
            return true
        case close:
            offset += 1
            return false
        default:
            throw error("',' or '\(Character(Unicode.Scalar(close)))' expected in \(container)")
        }
    }

    /// A string from its opening quote; the common case (no escapes) is one validated copy.
    mutating func string() throws(JSONParseError) -> String {
        offset += 1  // "
        let start = offset
        while let byte = current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            guard byte >= 0x20 else { throw error("a control character in a string") }
            offset += 1
        }
        guard let stop = current else { throw error("a string is not closed") }
        if stop == UInt8(ascii: "\"") {
            let text = try validated(bytes[start..<offset], at: start)
            offset += 1
            return text
        }
        var unescaped = Array(bytes[start..<offset])
        while let byte = current {
            switch byte {
            case UInt8(ascii: "\""):
                let text = try validated(unescaped[...], at: start)
                offset += 1
                return text
            case UInt8(ascii: "\\"):
                try escape(into: &unescaped)
            default:
                guard byte >= 0x20 else { throw error("a control character in a string") }
                unescaped.append(byte)
                offset += 1
            }
        }
        throw error("a string is not closed")
    }

    func validated(_ slice: ArraySlice<UInt8>, at start: Int) throws(JSONParseError) -> String {
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw JSONParseError(offset: start, reason: "a string is not valid UTF-8")
        }
        return text
    }

    /// One escape sequence from its backslash, appended as UTF-8.
    mutating func escape(into out: inout [UInt8]) throws(JSONParseError) {
        offset += 1  // backslash
        guard let byte = current else { throw error("a string is not closed") }
        offset += 1
        switch byte {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard bytes.count - offset >= 6, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                    throw error("a lone UTF-16 surrogate in a \\u escape")
                }
                offset += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw error("a lone UTF-16 surrogate in a \\u escape") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw error("a lone UTF-16 surrogate in a \\u escape")
            }
            // Every value left is a Unicode scalar: surrogates were combined or refused.
            out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
        default:
            offset -= 1
            throw error("an unknown escape in a string")
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard bytes.count - offset >= 4 else { throw error("four hex digits expected after \\u") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("four hex digits expected after \\u")
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    mutating func number() throws(JSONParseError) -> JSONValue {
        let start = offset
        if current == UInt8(ascii: "-") { offset += 1 }
        guard let first = current, isDigit(first) else { throw error("a digit expected in a number") }
        offset += 1
        if first != UInt8(ascii: "0") { skipDigits() }
        var integral = true
        if current == UInt8(ascii: ".") {
            integral = false
            offset += 1
            guard let byte = current, isDigit(byte) else { throw error("a digit expected after '.' in a number") }
            skipDigits()
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            integral = false
            offset += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { offset += 1 }
            guard let byte = current, isDigit(byte) else { throw error("a digit expected in a number's exponent") }
            skipDigits()
        }
        // Only ASCII digits, signs, '.' and 'e' were read.
        let text = String(decoding: bytes[start..<offset], as: UTF8.self)
        if integral, let value = Int64(text) { return .int(value) }
        guard let value = Double(text), value.isFinite else {
            throw JSONParseError(offset: start, reason: "a number out of range")
        }
        return .number(value)
    }

    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    mutating func skipDigits() {
        while let byte = current, isDigit(byte) { offset += 1 }
    }
}
