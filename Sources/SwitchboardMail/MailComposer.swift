// Outbound RFC 5322 messages: multipart/alternative (text/plain + text/html, both UTF-8 in
// quoted-printable), 7-bit clean, CRLF line endings, header fields folded at 78 characters.
//
// Header injection is impossible by construction: every header input is checked for control characters
// (CR, LF, NUL and the other C0 and C1 controls except TAB; DEL) and the message is refused if one is
// found — nothing is silently stripped. Addresses and message ids must be plain ASCII addr-specs.
// Errors name the header field only, never the offending value (which may be patient data).

import Foundation

/// One recipient of an outgoing message.
public struct MailRecipient: Sendable, Equatable {
    /// Display name; may be non-ASCII (sent as RFC 2047 encoded words).
    public var name: String?
    /// addr-spec, ASCII: "patient@example.org".
    public var address: String

    public init(name: String? = nil, address: String) {
        self.name = name
        self.address = address
    }
}

/// An additional header field, such as `Auto-Submitted: auto-replied`.
public struct MailHeaderField: Sendable, Equatable {
    /// RFC 5322 field name: printable ASCII without ":" (at most 64 characters). The fields the composer
    /// writes itself, Bcc and Content-* are refused.
    public var name: String
    /// Unstructured text: folded at spaces when plain ASCII, else sent as RFC 2047 encoded words.
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A message to compose.
public struct OutgoingMail: Sendable, Equatable {
    public var fromAddress: String
    public var fromName: String?
    public var to: [MailRecipient]
    public var replyToAddress: String?
    public var subject: String
    /// Without <>: "msg_01J...@clinic.example".
    public var messageID: String
    /// Without <>.
    public var inReplyTo: String?
    /// Without <>, oldest first.
    public var references: [String]
    /// Written in UTC: "Sun, 29 Nov 2026 08:40:11 +0000" (fractions of a second are dropped).
    public var date: Date
    /// The text/plain part. Line breaks (CRLF, LF or CR) become CRLF.
    public var text: String
    /// The text/html part; nil = a minimal HTML rendering of `text` (escaped, line breaks → <br>).
    public var html: String?
    public var extraHeaders: [MailHeaderField]

    public init(fromAddress: String, fromName: String? = nil, to: [MailRecipient], replyToAddress: String? = nil,
                subject: String, messageID: String, inReplyTo: String? = nil, references: [String] = [],
                date: Date, text: String, html: String? = nil, extraHeaders: [MailHeaderField] = []) {
        self.fromAddress = fromAddress
        self.fromName = fromName
        self.to = to
        self.replyToAddress = replyToAddress
        self.subject = subject
        self.messageID = messageID
        self.inReplyTo = inReplyTo
        self.references = references
        self.date = date
        self.text = text
        self.html = html
        self.extraHeaders = extraHeaders
    }
}

/// Why a message was not composed. `field` is a header field name ("From", "To", "Subject",
/// "Message-ID", …, or the name of an extra header), never a value.
public enum MailComposerError: Error, Equatable {
    /// A control character (CR, LF, NUL, …) in a header input.
    case headerInjection(field: String)
    /// Not an ASCII addr-spec (for addresses) or not id-left@id-right (for message ids); also an empty To.
    case invalidAddress(field: String)
    /// An extra header name that is not a valid field name (printable ASCII without ":", 1 to 64
    /// characters) or that would duplicate a composed field. Carries the name with anything outside
    /// printable ASCII replaced by "?", at most 64 characters (as does `headerInjection` for a name
    /// that contains a control character).
    case invalidHeaderName(String)
}

public enum MailComposer {
    /// Composes `mail` as a multipart/alternative message with `boundary`.
    ///
    /// `boundary` must be 1 to 70 RFC 2046 bchars, not end in a space, and contain "=_": quoted-printable
    /// output never contains "=_" (an encoded "=" is always followed by two hex digits or a line break),
    /// so such a boundary cannot occur in either body, whatever the text. This is a programming error
    /// (the caller generates the boundary, e.g. "=_sb_" + random hex) and traps. A boundary longer than
    /// 66 characters makes the Content-Type continuation line longer than 78 (still far below 998).
    public static func compose(_ mail: OutgoingMail, boundary: String) throws(MailComposerError) -> [UInt8] {
        precondition(isValidBoundary(boundary), "MIME boundary must be 1-70 bchars containing \"=_\"")

        var fields: [String] = []
        fields.append(fold("Date", [rfc5322Date(mail.date)]))
        fields.append(fold("From", try mailboxTokens(name: mail.fromName, address: mail.fromAddress, field: "From",
                                                     prefixLength: 6)))
        guard !mail.to.isEmpty else { throw .invalidAddress(field: "To") }
        var toTokens: [String] = []
        for (index, recipient) in mail.to.enumerated() {
            var tokens = try mailboxTokens(name: recipient.name, address: recipient.address, field: "To",
                                           prefixLength: index == 0 ? 4 : 78)
            if index < mail.to.count - 1 { tokens[tokens.count - 1] += "," }
            toTokens += tokens
        }
        fields.append(fold("To", toTokens))
        if let replyTo = mail.replyToAddress {
            try checkAddress(replyTo, field: "Reply-To")
            fields.append(fold("Reply-To", [replyTo]))
        }
        try checkControls(mail.subject, field: "Subject")
        fields.append(fold("Subject", unstructuredTokens(mail.subject, prefixLength: 9)))
        try checkMessageID(mail.messageID, field: "Message-ID")
        fields.append(fold("Message-ID", ["<\(mail.messageID)>"]))
        if let inReplyTo = mail.inReplyTo {
            try checkMessageID(inReplyTo, field: "In-Reply-To")
            fields.append(fold("In-Reply-To", ["<\(inReplyTo)>"]))
        }
        if !mail.references.isEmpty {
            for reference in mail.references { try checkMessageID(reference, field: "References") }
            fields.append(fold("References", mail.references.map { "<\($0)>" }))
        }
        fields.append("MIME-Version: 1.0")
        fields.append(fold("Content-Type", ["multipart/alternative;", "boundary=\"\(boundary)\""]))
        for header in mail.extraHeaders {
            try checkHeaderName(header.name)
            try checkControls(header.value, field: header.name)
            fields.append(fold(header.name, unstructuredTokens(header.value, prefixLength: header.name.utf8.count + 2)))
        }

        var message = Array((fields.joined(separator: "\r\n") + "\r\n\r\n").utf8)
        let html = mail.html ?? htmlRendering(of: mail.text)
        for (type, body) in [("text/plain", mail.text), ("text/html", html)] {
            message += Array("--\(boundary)\r\nContent-Type: \(type); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".utf8)
            message += quotedPrintable(body)
            message += Array("\r\n".utf8)
        }
        message += Array("--\(boundary)--\r\n".utf8)
        return message
    }

    // MARK: - Validation

    static func checkControls(_ value: String, field: String) throws(MailComposerError) {
        for scalar in value.unicodeScalars where isControl(scalar) {
            throw .headerInjection(field: field)
        }
    }

    /// C0 controls except TAB, DEL, C1 controls.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value < 0x20 && scalar.value != 0x09) || (scalar.value >= 0x7F && scalar.value <= 0x9F)
    }

    static func checkAddress(_ address: String, field: String) throws(MailComposerError) {
        try checkControls(address, field: field)
        guard isAddrSpec(address) else { throw .invalidAddress(field: field) }
    }

    static func checkMessageID(_ id: String, field: String) throws(MailComposerError) {
        try checkControls(id, field: field)
        guard isMessageID(id) else { throw .invalidAddress(field: field) }
    }

    /// Fields the composer writes, which an extra header must not duplicate, and Bcc (never transmitted).
    static let reservedHeaderNames: Set<String> = [
        "date", "from", "to", "reply-to", "subject", "message-id", "in-reply-to", "references", "mime-version", "bcc",
    ]

    static func checkHeaderName(_ name: String) throws(MailComposerError) {
        let sanitized = String(name.unicodeScalars.prefix(64).map { $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
        if name.unicodeScalars.contains(where: isControl) { throw .headerInjection(field: sanitized) }
        let bytes = Array(name.utf8)
        let valid = !bytes.isEmpty && bytes.count <= 64 && bytes.allSatisfy { $0 >= 33 && $0 <= 126 && $0 != 0x3A }
        let lowered = name.lowercased()
        guard valid, !reservedHeaderNames.contains(lowered), !lowered.hasPrefix("content-") else {
            throw .invalidHeaderName(sanitized)
        }
    }

    /// RFC 5322 addr-spec without obsolete forms or comments, ASCII only: dot-atom or quoted-string
    /// local part (at most 64 octets), "@", dot-atom domain of letters, digits and hyphens, or a domain literal.
    public static func isAddrSpec(_ address: String) -> Bool {
        let bytes = Array(address.utf8)
        guard bytes.count <= 254, let at = bytes.lastIndex(of: 0x40) else { return false }
        let local = bytes[..<at], domain = bytes[(at + 1)...]
        guard !local.isEmpty, local.count <= 64, isDomain(domain) else { return false }
        if local.first == 0x22 {
            guard local.count >= 2, local.last == 0x22 else { return false }
            var index = local.startIndex + 1
            let end = local.endIndex - 1
            while index < end {
                let byte = local[index]
                if byte == 0x5C {
                    guard index + 1 < end, local[index + 1] >= 0x20, local[index + 1] <= 0x7E else { return false }
                    index += 2
                    continue
                }
                guard byte >= 0x20, byte <= 0x7E, byte != 0x22 else { return false }
                index += 1
            }
            return true
        }
        return isDotAtom(local)
    }

    /// RFC 5322 msg-id content: id-left "@" id-right, dot-atom-text @ (dot-atom-text / no-fold-literal).
    /// Public so that callers can leave out ids from other mail that `compose` would refuse.
    public static func isMessageID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard bytes.count <= 900, let at = bytes.lastIndex(of: 0x40) else { return false }
        let left = bytes[..<at], right = bytes[(at + 1)...]
        guard isDotAtom(left) else { return false }
        if right.first == 0x5B { return isDomainLiteral(right) }
        return isDotAtom(right)
    }

    static func isDotAtom(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard !bytes.isEmpty else { return false }
        return bytes.split(separator: 0x2E, omittingEmptySubsequences: false).allSatisfy { atom in
            !atom.isEmpty && atom.allSatisfy(isAtext)
        }
    }

    static func isDomain(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        if bytes.first == 0x5B { return isDomainLiteral(bytes) }
        return bytes.split(separator: 0x2E, omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.allSatisfy { isLetterOrDigit($0) || $0 == 0x2D }
        }
    }

    static func isDomainLiteral(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard bytes.count > 2, bytes.first == 0x5B, bytes.last == 0x5D else { return false }
        return bytes.dropFirst().dropLast().allSatisfy { ($0 >= 33 && $0 <= 90) || ($0 >= 94 && $0 <= 126) }
    }

    static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    /// RFC 5322 atext.
    static func isAtext(_ byte: UInt8) -> Bool {
        isLetterOrDigit(byte) || atextSymbols.contains(byte)
    }

    static let atextSymbols = Set("!#$%&'*+-/=?^_`{|}~".utf8)
    static let boundarySymbols = Set("'()+_,-./:=? ".utf8)

    static func isValidBoundary(_ boundary: String) -> Bool {
        let bytes = Array(boundary.utf8)
        guard (1...70).contains(bytes.count), bytes.last != 0x20, boundary.contains("=_") else { return false }
        // RFC 2046 bchars
        return bytes.allSatisfy { isLetterOrDigit($0) || boundarySymbols.contains($0) }
    }

    // MARK: - Header fields

    static let maxLineLength = 78
    /// RFC 2047 2: an encoded word is at most 75 characters.
    static let maxEncodedWordLength = 75

    /// "Name: token token…", folded before a token whenever the line would exceed 78 characters.
    /// A single token longer than a line (an address or message id over 76 characters) stays whole.
    static func fold(_ name: String, _ tokens: [String]) -> String {
        var result = name + ":"
        var lineLength = result.utf8.count
        for token in tokens {
            let length = token.utf8.count
            if lineLength + 1 + length > maxLineLength {
                result += "\r\n"
                lineLength = 0
            }
            result += " " + token
            lineLength += 1 + length
        }
        return result
    }

    /// A mailbox: "Name <address>", "\"Quoted, Name\" <address>", "=?UTF-8?…?= <address>" or "address".
    static func mailboxTokens(name: String?, address: String, field: String, prefixLength: Int) throws(MailComposerError) -> [String] {
        if let name { try checkControls(name, field: field) }
        try checkAddress(address, field: field)
        guard let name, !name.allSatisfy({ $0 == " " || $0 == "\t" }) else { return [address] }
        return phraseTokens(name, prefixLength: prefixLength) + ["<\(address)>"]
    }

    /// A display name as words (plain atoms), one quoted string (when it has specials such as "," or
    /// "."), or encoded words (non-ASCII, TAB, longer than 58 characters quoted, or containing "=?": such a
    /// name is encoded rather than quoted because some clients decode encoded words even inside quoted
    /// strings, which would let a name masquerade as another).
    static func phraseTokens(_ name: String, prefixLength: Int) -> [String] {
        let bytes = Array(name.utf8)
        let printableASCII = bytes.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
        if printableASCII && !name.contains("=?") {
            let words = bytes.split(separator: 0x20, omittingEmptySubsequences: false)
            if words.allSatisfy({ !$0.isEmpty && $0.allSatisfy(isAtext) && $0.count <= 40 }) {
                return words.map { String(decoding: $0, as: UTF8.self) }
            }
            var quoted = "\""
            for byte in bytes {
                if byte == 0x22 || byte == 0x5C { quoted += "\\" }
                quoted.unicodeScalars.append(Unicode.Scalar(byte))
            }
            quoted += "\""
            if quoted.utf8.count <= 60 { return [quoted] }
        }
        return encodedWords(name, prefixLength: prefixLength)
    }

    /// Unstructured text (Subject, extra header values): plain words when it is printable ASCII that can be
    /// folded at single spaces without changing it, else RFC 2047 encoded words, which keep every character
    /// (spaces included) and split anywhere.
    static func unstructuredTokens(_ value: String, prefixLength: Int) -> [String] {
        guard !value.isEmpty else { return [] }
        let bytes = Array(value.utf8)
        if bytes.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) && !value.contains("=?") {
            let words = bytes.split(separator: 0x20, omittingEmptySubsequences: false)
            if words.allSatisfy({ !$0.isEmpty && $0.count <= maxLineLength - 1 }),
               words[0].count <= maxLineLength - prefixLength {
                return words.map { String(decoding: $0, as: UTF8.self) }
            }
        }
        return encodedWords(value, prefixLength: prefixLength)
    }

    /// RFC 2047 encoded words (UTF-8; Q or B, whichever is shorter), each at most 75 characters and short
    /// enough to follow the field name on the first line. Words never split a character. Q uses only the
    /// characters allowed in a phrase (RFC 2047 5(3)), so the words suit display names and unstructured text.
    static func encodedWords(_ text: String, prefixLength: Int) -> [String] {
        var wordLength = min(maxEncodedWordLength, maxLineLength - prefixLength)
        if wordLength < 24 { wordLength = maxEncodedWordLength }  // a very long field name: start on the next line
        let payloadLength = wordLength - 12  // "=?UTF-8?Q?" + "?="
        let bytes = Array(text.utf8)
        let qLength = bytes.reduce(0) { $0 + (isQSafe($1) ? 1 : 3) }
        let useQ = qLength <= (bytes.count + 2) / 3 * 4

        var words: [String] = []
        var chunk: [UInt8] = []
        var chunkLength = 0
        func flush() {
            guard !chunk.isEmpty else { return }
            words.append(useQ ? "=?UTF-8?Q?" + qEncode(chunk) + "?=" : "=?UTF-8?B?" + base64(chunk) + "?=")
            chunk = []
            chunkLength = 0
        }
        for scalar in text.unicodeScalars {
            let scalarBytes = Array(String(scalar).utf8)
            let length = useQ ? scalarBytes.reduce(0) { $0 + (isQSafe($1) ? 1 : 3) } : 0
            let fits = useQ ? chunkLength + length <= payloadLength : (chunk.count + scalarBytes.count + 2) / 3 * 4 <= payloadLength
            if !fits { flush() }
            chunk += scalarBytes
            chunkLength += length
        }
        flush()
        return words
    }

    static func isQSafe(_ byte: UInt8) -> Bool {
        isLetterOrDigit(byte) || byte == 0x20 || byte == 0x21 || byte == 0x2A || byte == 0x2B || byte == 0x2D || byte == 0x2F
    }

    static let hexDigits = Array("0123456789ABCDEF".utf8)

    static func qEncode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            if byte == 0x20 {
                out.append(0x5F)  // "_"
            } else if isQSafe(byte) {
                out.append(byte)
            } else {
                out += [0x3D, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let b0 = UInt32(bytes[index])
            let b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let group = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(group >> 18 & 63)])
            out.append(alphabet[Int(group >> 12 & 63)])
            out.append(index + 1 < bytes.count ? alphabet[Int(group >> 6 & 63)] : 0x3D)
            out.append(index + 2 < bytes.count ? alphabet[Int(group & 63)] : 0x3D)
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Date

    /// RFC 5322 3.3 date-time in UTC, independent of locale and time zone settings. Dates outside the
    /// years 1 to 9999 (or not finite) are clamped to that range.
    static func rfc5322Date(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        let clamped = interval.isFinite ? min(max(interval, -62_135_596_800), 253_402_300_799) : 0
        let seconds = Int64(clamped.rounded(.down))
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4); 0 = Sunday
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func padded(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(weekdays[Int(weekday)]), \(padded(day, 2)) \(months[Int(month - 1)]) \(padded(year, 4)) "
            + "\(padded(secondOfDay / 3600, 2)):\(padded(secondOfDay / 60 % 60, 2)):\(padded(secondOfDay % 60, 2)) +0000"
    }

    // MARK: - Bodies

    /// A minimal HTML rendering of plain text: escaped, line breaks as <br>.
    static func htmlRendering(of text: String) -> String {
        var body = ""
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\r": body += "<br>\n"
            case "\n": if !previousWasCR { body += "<br>\n" }
            case "&": body += "&amp;"
            case "<": body += "&lt;"
            case ">": body += "&gt;"
            case "\"": body += "&quot;"
            case "'": body += "&#39;"
            default: body.unicodeScalars.append(scalar)
            }
            previousWasCR = scalar == "\r"
        }
        return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n<p>" + body + "</p>\n</body></html>\n"
    }

    /// Quoted-printable (RFC 2045 6.7) of the UTF-8 text, line breaks (CRLF, LF, CR) as CRLF hard breaks,
    /// encoded lines at most 76 characters. Besides what the RFC requires, "From " at the start of a line
    /// is encoded ("=46rom ") so mbox-style storage downstream cannot mangle it.
    static func quotedPrintable(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        out.reserveCapacity(bytes.count + bytes.count / 8)
        var line: [UInt8] = []
        var index = 0
        while index <= bytes.count {
            if index == bytes.count || bytes[index] == 0x0A || bytes[index] == 0x0D {
                encodeLine(line, into: &out)
                line.removeAll(keepingCapacity: true)
                if index == bytes.count { break }
                out += [0x0D, 0x0A]
                if bytes[index] == 0x0D && index + 1 < bytes.count && bytes[index + 1] == 0x0A { index += 1 }
            } else {
                line.append(bytes[index])
            }
            index += 1
        }
        return out
    }

    private static func encodeLine(_ line: [UInt8], into out: inout [UInt8]) {
        let from = Array("From ".utf8)
        var lineLength = 0
        for (index, byte) in line.enumerated() {
            let isLast = index == line.count - 1
            var literal = (byte >= 33 && byte <= 126 && byte != 0x3D) || ((byte == 0x20 || byte == 0x09) && !isLast)
            // Room for a soft break ("=") unless this is the last character of the line.
            if lineLength + (literal ? 1 : 3) > (isLast ? 76 : 75) {
                out += [0x3D, 0x0D, 0x0A]
                lineLength = 0
            }
            if lineLength == 0 && byte == 0x46 && line[index...].starts(with: from) { literal = false }
            if literal {
                out.append(byte)
                lineLength += 1
            } else {
                out += [0x3D, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
                lineLength += 3
            }
        }
    }
}
