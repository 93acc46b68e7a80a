import Foundation
import Testing
@testable import SwitchboardMail

// MARK: - Helpers (file-private: the test module is shared with other suites)

private let composerBoundary = "=_sb_0123456789abcdef"

/// 2026-11-29 08:40:11 UTC
private let composerSampleDate = Date(timeIntervalSince1970: 1_795_941_611)

private func composerSampleMail() -> OutgoingMail {
    OutgoingMail(
        fromAddress: "support@clinic.example", fromName: "Clinic Support",
        to: [MailRecipient(name: "Ana Perez", address: "ana@example.org")],
        replyToAddress: "support+r7k2m9@clinic.example", subject: "Your appointment on Tuesday",
        messageID: "msg_01J9ZQ4@clinic.example", inReplyTo: "CAF=abc.123@mail.example.org",
        references: ["first@mail.example.org", "CAF=abc.123@mail.example.org"], date: composerSampleDate,
        text: "Hello Ana,\n\nSee you on Tuesday.\n", extraHeaders: [MailHeaderField(name: "Auto-Submitted", value: "auto-replied")])
}

private func composerText(_ mail: OutgoingMail) throws -> String {
    String(decoding: try MailComposer.compose(mail, boundary: composerBoundary), as: UTF8.self)
}

private struct ComposedMessage {
    var headerLines: [String]  // physical lines
    var headers: [(name: String, value: String)]  // unfolded
    var parts: [(headers: [String], body: String)]
    var bodyLines: [String]

    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
}

/// Splits a composed message, checking the invariants every message must satisfy on the way: CRLF only,
/// header lines at most 78 characters, body lines at most 76, 7-bit, exactly two parts.
private func parseComposed(_ message: String, boundary: String = composerBoundary) -> ComposedMessage {
    let bytes = Array(message.utf8)
    #expect(bytes.allSatisfy { $0 < 0x80 }, "7-bit")
    #expect(message.hasSuffix("\r\n"))
    // No bare CR or LF anywhere.
    #expect(message.replacingOccurrences(of: "\r\n", with: "").allSatisfy { $0 != "\r" && $0 != "\n" })
    let sections = message.components(separatedBy: "\r\n\r\n")
    let headerLines = sections[0].components(separatedBy: "\r\n")
    for line in headerLines { #expect(line.utf8.count <= 78, "header line too long: \(line)") }
    var headers: [(name: String, value: String)] = []
    for line in headerLines {
        if line.hasPrefix(" ") || line.hasPrefix("\t") {
            #expect(!headers.isEmpty)
            #expect(!line.trimmingCharacters(in: .whitespaces).isEmpty, "whitespace-only continuation line")
            headers[headers.count - 1].value += line  // unfolding removes only the CRLF
        } else {
            let colon = line.firstIndex(of: ":")!
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingPrefix(" ").description))
        }
    }
    headers = headers.map { ($0.name, String($0.value.drop { $0 == " " })) }
    let body = message[message.range(of: "\r\n\r\n")!.upperBound...]
    let bodyLines = body.components(separatedBy: "\r\n").dropLast()
    for line in bodyLines { #expect(line.utf8.count <= 76, "body line too long: \(line)") }
    let chunks = body.components(separatedBy: "--\(boundary)")
    #expect(chunks.count == 4, "preamble, two parts, epilogue")
    #expect(chunks.first == "")
    #expect(chunks.last == "--\r\n")
    var parts: [(headers: [String], body: String)] = []
    for chunk in chunks.dropFirst().dropLast() {
        #expect(chunk.hasPrefix("\r\n") && chunk.hasSuffix("\r\n"))
        // The CRLF before a delimiter belongs to it. (Unicode scalars: "\r\n" is one Character.)
        let inner = String(String.UnicodeScalarView(chunk.unicodeScalars.dropFirst(2).dropLast(2)))
        let split = inner.range(of: "\r\n\r\n")!
        parts.append((inner[..<split.lowerBound].components(separatedBy: "\r\n"), String(inner[split.upperBound...])))
    }
    return ComposedMessage(headerLines: headerLines, headers: headers, parts: parts, bodyLines: Array(bodyLines))
}

/// Quoted-printable decoding (RFC 2045 6.7), strict: fails the test on malformed input.
private func composerQPDecode(_ encoded: String) -> [UInt8] {
    var out: [UInt8] = []
    let lines = encoded.components(separatedBy: "\r\n")
    for (index, line) in lines.enumerated() {
        #expect(line.utf8.count <= 76)
        #expect(!line.hasSuffix(" ") && !line.hasSuffix("\t"), "unencoded trailing whitespace")
        var bytes = Array(line.utf8)
        var soft = false
        if bytes.last == 0x3D {
            soft = true
            bytes.removeLast()
        }
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x3D {
                let hex = String(decoding: bytes[(i + 1)..<min(i + 3, bytes.count)], as: UTF8.self)
                #expect(hex.count == 2 && hex == hex.uppercased())
                out.append(UInt8(hex, radix: 16)!)
                i += 3
            } else {
                #expect((bytes[i] >= 33 && bytes[i] <= 126) || bytes[i] == 0x20 || bytes[i] == 0x09)
                out.append(bytes[i])
                i += 1
            }
        }
        if !soft && index < lines.count - 1 { out += [0x0D, 0x0A] }
    }
    return out
}

/// Decodes RFC 2047 encoded words (whitespace between adjacent encoded words is dropped), checking each
/// word is at most 75 characters and UTF-8.
private func composerDecodeWords(_ value: String) -> String {
    var result = ""
    var previousWasEncoded = false
    for token in value.split(separator: " ", omittingEmptySubsequences: false) {
        if token.hasPrefix("=?") && token.hasSuffix("?=") {
            #expect(token.count <= 75)
            let pieces = token.dropFirst(2).dropLast(2).split(separator: "?", omittingEmptySubsequences: false)
            #expect(pieces.count == 3 && pieces[0] == "UTF-8")
            var bytes: [UInt8] = []
            if pieces[1] == "B" {
                bytes = Array(Data(base64Encoded: String(pieces[2]))!)
            } else {
                #expect(pieces[1] == "Q")
                let text = Array(pieces[2].utf8)
                var i = 0
                while i < text.count {
                    if text[i] == 0x3D {
                        bytes.append(UInt8(String(decoding: text[(i + 1)...(i + 2)], as: UTF8.self), radix: 16)!)
                        i += 3
                    } else {
                        bytes.append(text[i] == 0x5F ? 0x20 : text[i])
                        i += 1
                    }
                }
            }
            let decoded = String(validating: bytes, as: UTF8.self)
            #expect(decoded != nil, "each encoded word holds whole characters")
            if !previousWasEncoded && !result.isEmpty { result += " " }
            result += decoded ?? ""
            previousWasEncoded = true
        } else {
            if !result.isEmpty || previousWasEncoded { result += " " }
            result += token
            previousWasEncoded = false
        }
    }
    return result
}

private func expectComposeError(_ expected: MailComposerError, _ mail: OutgoingMail, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(throws: expected, sourceLocation: sourceLocation) { try MailComposer.compose(mail, boundary: composerBoundary) }
}

// MARK: - Tests

@Suite struct MailComposerTests {
    @Test func composesTheWholeMessage() throws {
        let message = try composerText(composerSampleMail())
        let parsed = parseComposed(message)
        #expect(parsed.headerLines == [
            "Date: Sun, 29 Nov 2026 08:40:11 +0000",
            "From: Clinic Support <support@clinic.example>",
            "To: Ana Perez <ana@example.org>",
            "Reply-To: support+r7k2m9@clinic.example",
            "Subject: Your appointment on Tuesday",
            "Message-ID: <msg_01J9ZQ4@clinic.example>",
            "In-Reply-To: <CAF=abc.123@mail.example.org>",
            "References: <first@mail.example.org> <CAF=abc.123@mail.example.org>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"=_sb_0123456789abcdef\"",
            "Auto-Submitted: auto-replied",
        ])
        #expect(parsed.parts.count == 2)
        #expect(parsed.parts[0].headers == ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"])
        #expect(parsed.parts[1].headers == ["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"])
        #expect(parsed.parts[0].body == "Hello Ana,\r\n\r\nSee you on Tuesday.\r\n")
        #expect(String(decoding: composerQPDecode(parsed.parts[1].body), as: UTF8.self) == MailComposer.htmlRendering(of: "Hello Ana,\n\nSee you on Tuesday.\n")
            .replacingOccurrences(of: "\n", with: "\r\n"))
        #expect(message.hasSuffix("\r\n--=_sb_0123456789abcdef--\r\n"))
    }

    @Test func optionalHeadersAreOmitted() throws {
        var mail = composerSampleMail()
        mail.fromName = nil
        mail.to = [MailRecipient(address: "ana@example.org")]
        mail.replyToAddress = nil
        mail.inReplyTo = nil
        mail.references = []
        mail.extraHeaders = []
        let parsed = parseComposed(try composerText(mail))
        #expect(parsed.headers.map(\.name) == ["Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "Content-Type"])
        #expect(parsed.header("From") == "support@clinic.example")
        #expect(parsed.header("To") == "ana@example.org")
    }

    @Test func dates() {
        let cases: [(TimeInterval, String)] = [
            (0, "Thu, 01 Jan 1970 00:00:00 +0000"),
            (-1, "Wed, 31 Dec 1969 23:59:59 +0000"),
            (0.999, "Thu, 01 Jan 1970 00:00:00 +0000"),
            (951_868_799, "Tue, 29 Feb 2000 23:59:59 +0000"),
            (1_795_941_611.75, "Sun, 29 Nov 2026 08:40:11 +0000"),
            (-62_135_596_800, "Mon, 01 Jan 0001 00:00:00 +0000"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 +0000"),
            (1e300, "Fri, 31 Dec 9999 23:59:59 +0000"),
            (.nan, "Thu, 01 Jan 1970 00:00:00 +0000"),
        ]
        for (interval, expected) in cases {
            #expect(MailComposer.rfc5322Date(Date(timeIntervalSince1970: interval)) == expected)
        }
        // Agrees with Foundation's POSIX formatter across a wide range.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let date = Date(timeIntervalSince1970: TimeInterval(Int64.random(in: -2_000_000_000...8_000_000_000, using: &generator)))
            #expect(MailComposer.rfc5322Date(date) == formatter.string(from: date))
        }
    }

    @Test(arguments: [
        "",
        "plain text",
        "Hola señora, ¿cómo está? Ünïcödé — “quotes” 日本語のテキスト 🩺💊",
        String(repeating: "long line without breaks ", count: 20),
        String(repeating: "é", count: 100),
        String(repeating: "x", count: 75) + "\n" + String(repeating: "x", count: 76) + "\n" + String(repeating: "x", count: 77),
        String(repeating: "x", count: 74) + "é" + String(repeating: "y", count: 80),
        "trailing space \nand tab\t\nend with space ",
        "a = b\n==\n=\n=3D",
        "From the clinic\nFrom here\n From not first\nFromage",
        ".\n..\n. leading dot\n",
        "crlf\r\nlf\ncr\rmixed\n\r\n",
        "\u{0}\u{1}control\u{7F}",
        String(repeating: " ", count: 100),
        String(repeating: "\t", count: 80) + "x",
    ])
    func quotedPrintableRoundTrips(_ text: String) throws {
        var mail = composerSampleMail()
        mail.text = text
        let parsed = parseComposed(try composerText(mail))
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .replacingOccurrences(of: "\n", with: "\r\n")
        #expect(composerQPDecode(parsed.parts[0].body) == Array(normalized.utf8))
        #expect(!parsed.parts[0].body.contains("\r\nFrom "))
        #expect(!parsed.parts[0].body.hasPrefix("From "))
        // The generated HTML round-trips too.
        #expect(composerQPDecode(parsed.parts[1].body)
                == Array(MailComposer.htmlRendering(of: text).replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }

    @Test func quotedPrintableDetails() {
        let encode = { (text: String) in String(decoding: MailComposer.quotedPrintable(text), as: UTF8.self) }
        #expect(encode("a=b") == "a=3Db")
        #expect(encode("end ") == "end=20")
        #expect(encode("end\t\nx") == "end=09\r\nx")
        #expect(encode("café") == "caf=C3=A9")
        #expect(encode("From me") == "=46rom me")
        #expect(encode("x\n") == "x\r\n")
        #expect(encode(String(repeating: "a", count: 76)) == String(repeating: "a", count: 76))
        #expect(encode(String(repeating: "a", count: 77)) == String(repeating: "a", count: 75) + "=\r\naa")
        // An escape is never split by a soft break.
        #expect(encode(String(repeating: "a", count: 74) + "é") == String(repeating: "a", count: 74) + "=\r\n=C3=A9")
    }

    @Test func boundaryNeverOccursInTheBodies() throws {
        var mail = composerSampleMail()
        mail.text = "--\(composerBoundary)\n--\(composerBoundary)--\nContent-Type: text/evil\n\n--\(composerBoundary)"
        mail.html = "<p>--\(composerBoundary)</p>\n--\(composerBoundary)--"
        let message = try composerText(mail)
        let parsed = parseComposed(message)  // exactly two parts
        #expect(message.components(separatedBy: "--\(composerBoundary)").count == 4)
        #expect(composerQPDecode(parsed.parts[0].body) == Array(mail.text.replacingOccurrences(of: "\n", with: "\r\n").utf8))
        #expect(composerQPDecode(parsed.parts[1].body) == Array(mail.html!.replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }

    @Test func generatedHTMLEscapes() throws {
        #expect(MailComposer.htmlRendering(of: "a < b & \"c\" > 'd'\r\nline 2\nline 3\rline 4")
                == "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n"
                + "<p>a &lt; b &amp; &quot;c&quot; &gt; &#39;d&#39;<br>\nline 2<br>\nline 3<br>\nline 4</p>\n</body></html>\n")
        var mail = composerSampleMail()
        mail.text = "<script>alert(1)</script>"
        let parsed = parseComposed(try composerText(mail))
        let html = String(decoding: composerQPDecode(parsed.parts[1].body), as: UTF8.self)
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!html.contains("<script>"))
    }

    // MARK: Header injection and validation

    @Test func headerInjectionIsRefusedInEveryField() {
        func with(_ change: (inout OutgoingMail) -> Void) -> OutgoingMail {
            var mail = composerSampleMail()
            change(&mail)
            return mail
        }
        expectComposeError(.headerInjection(field: "Subject"), with { $0.subject = "Hi\r\nBcc: x@evil.example" })
        expectComposeError(.headerInjection(field: "Subject"), with { $0.subject = "Hi\nthere" })
        expectComposeError(.headerInjection(field: "Subject"), with { $0.subject = "Hi\0" })
        expectComposeError(.headerInjection(field: "Subject"), with { $0.subject = "Hi\u{1B}[2J" })
        expectComposeError(.headerInjection(field: "Subject"), with { $0.subject = "Hi\u{85}there" })
        expectComposeError(.headerInjection(field: "From"), with { $0.fromName = "Clinic\nBcc: x@evil.example" })
        expectComposeError(.headerInjection(field: "From"), with { $0.fromAddress = "support@clinic.example\r\nBcc: x@evil.example" })
        expectComposeError(.headerInjection(field: "To"), with { $0.to = [MailRecipient(name: "Ana\r", address: "ana@example.org")] })
        expectComposeError(.headerInjection(field: "To"), with { $0.to = [MailRecipient(address: "a@b>\r\nX: y")] })
        expectComposeError(.headerInjection(field: "Reply-To"), with { $0.replyToAddress = "r@clinic.example\nX: y" })
        expectComposeError(.headerInjection(field: "Message-ID"), with { $0.messageID = "a@b\r\nX: y" })
        expectComposeError(.headerInjection(field: "In-Reply-To"), with { $0.inReplyTo = "a@b\nX: y" })
        expectComposeError(.headerInjection(field: "References"), with { $0.references = ["a@b", "c@d\r\nX: y"] })
        expectComposeError(.headerInjection(field: "Auto-Submitted"), with {
            $0.extraHeaders = [MailHeaderField(name: "Auto-Submitted", value: "auto-replied\r\nBcc: x@evil.example")]
        })
        expectComposeError(.headerInjection(field: "X-A??Bcc"), with { $0.extraHeaders = [MailHeaderField(name: "X-A\r\nBcc", value: "b")] })
        // TAB is allowed (and the message stays valid).
        #expect(throws: Never.self) { try MailComposer.compose(with { $0.subject = "a\tb" }, boundary: composerBoundary) }
    }

    @Test func errorsNeverCarryValues() {
        var mail = composerSampleMail()
        mail.subject = "Patient Jane Doe\r\nDOB 1980-01-01"
        do {
            _ = try MailComposer.compose(mail, boundary: composerBoundary)
            Issue.record("expected an error")
        } catch {
            #expect(!String(describing: error).contains("Jane"))
        }
    }

    @Test func invalidAddresses() {
        let bad = ["", "ana", "ana@", "@example.org", "ana@@example.org", "ana@example..org", ".ana@example.org", "ana.@example.org",
                   "a..na@example.org", "ana example@example.org", "<ana@example.org>", "ana@example.org>", "ana,bob@example.org",
                   "\"ana@example.org", "an\"a@example.org", "ana@exa_mple.org", "anä@example.org", "ana@exämple.org",
                   "Ana <ana@example.org>", "ana@example.org, bob@example.org", "ana@[1.2.3.4", "ana@example.org ",
                   String(repeating: "a", count: 65) + "@example.org"]
        for address in bad {
            var mail = composerSampleMail()
            mail.to = [MailRecipient(address: address)]
            expectComposeError(.invalidAddress(field: "To"), mail)
            mail = composerSampleMail()
            mail.fromAddress = address
            expectComposeError(.invalidAddress(field: "From"), mail)
            mail = composerSampleMail()
            mail.replyToAddress = address
            expectComposeError(.invalidAddress(field: "Reply-To"), mail)
        }
        var empty = composerSampleMail()
        empty.to = []
        expectComposeError(.invalidAddress(field: "To"), empty)

        let good = ["ana@example.org", "ana.perez+tag@sub.example.org", "\"ana perez\"@example.org", "\"a\\\"b\"@example.org",
                    "o'brien@example.org", "x@[192.0.2.1]", "a!#$%&'*+-/=?^_`{|}~@example.org"]
        for address in good {
            var mail = composerSampleMail()
            mail.to = [MailRecipient(name: "Someone", address: address)]
            mail.fromAddress = address
            mail.replyToAddress = address
            #expect(throws: Never.self, "\(address)") {
                let parsed = parseComposed(String(decoding: try MailComposer.compose(mail, boundary: composerBoundary), as: UTF8.self))
                #expect(parsed.header("To") == "Someone <\(address)>")
                #expect(parsed.header("Reply-To") == address)
            }
        }
    }

    @Test func invalidMessageIDs() {
        for id in ["", "abc", "<abc@example.org>", "abc@example.org>", "a b@example.org", "abc@", "@example.org", "a..b@example.org",
                   "abc@exa mple.org", "abc@example.org\t", "äbc@example.org"] {
            var mail = composerSampleMail()
            mail.messageID = id
            expectComposeError(.invalidAddress(field: "Message-ID"), mail)
            mail = composerSampleMail()
            mail.inReplyTo = id
            expectComposeError(.invalidAddress(field: "In-Reply-To"), mail)
            mail = composerSampleMail()
            mail.references = ["ok@example.org", id]
            expectComposeError(.invalidAddress(field: "References"), mail)
        }
        var mail = composerSampleMail()
        mail.messageID = "1a2b.3c$x@[10.0.0.1]"
        #expect(throws: Never.self) { try MailComposer.compose(mail, boundary: composerBoundary) }
    }

    @Test func invalidExtraHeaderNames() {
        for (name, expected) in [("X-A: b", "X-A: b"), ("", ""), ("X A", "X A"), ("Subject", "Subject"), ("content-type", "content-type"),
                                 ("MIME-Version", "MIME-Version"), ("BCC", "BCC"), ("X-Ä", "X-?"),
                                 (String(repeating: "X", count: 65), String(repeating: "X", count: 64))] {
            var mail = composerSampleMail()
            mail.extraHeaders = [MailHeaderField(name: name, value: "v")]
            expectComposeError(.invalidHeaderName(expected), mail)
        }
    }

    // MARK: Encoded words and folding

    @Test(arguments: [
        "Su cita del martes — confirmación",
        "予約の確認：火曜日の午前10時に来院してください。ご不明な点があればご連絡ください。",
        "Termin bestätigt 🩺 " + String(repeating: "Ärztin ", count: 20),
        "  leading and  double  spaces  ",
        "looks =?UTF-8?B?ZXZpbA==?= encoded",
        "a" + String(repeating: "b", count: 100) + " unbreakable word",
        "tab\tinside",
    ])
    func subjectsNeedingEncodingRoundTrip(_ subject: String) throws {
        var mail = composerSampleMail()
        mail.subject = subject
        let parsed = parseComposed(try composerText(mail))
        let value = try #require(parsed.header("Subject"))
        #expect(value.hasPrefix("=?UTF-8?"))
        #expect(composerDecodeWords(value) == subject)
    }

    @Test func choosesQOrBByLength() throws {
        var mail = composerSampleMail()
        mail.subject = "Confirmación"
        #expect(parseComposed(try composerText(mail)).header("Subject") == "=?UTF-8?Q?Confirmaci=C3=B3n?=")
        mail.subject = "予約"
        #expect(parseComposed(try composerText(mail)).header("Subject") == "=?UTF-8?B?5LqI57SE?=")
    }

    @Test func longASCIISubjectFoldsAtSpaces() throws {
        var mail = composerSampleMail()
        mail.subject = (1...40).map { "word\($0)" }.joined(separator: " ")
        let parsed = parseComposed(try composerText(mail))
        let lines = parsed.headerLines.drop { !$0.hasPrefix("Subject:") }.prefix { $0.hasPrefix("Subject:") || $0.hasPrefix(" ") }
        #expect(lines.count > 3)
        #expect(parsed.header("Subject") == mail.subject)
    }

    @Test func displayNames() throws {
        var mail = composerSampleMail()
        mail.to = [
            MailRecipient(name: "Smith, John", address: "john@example.org"),
            MailRecipient(name: "Dr. \"Who\" \\ Else", address: "who@example.org"),
            MailRecipient(name: "Ana Maria Pérez", address: "ana@example.org"),
            MailRecipient(name: "=?UTF-8?B?c3Bvb2Y=?=", address: "spoof@example.org"),
            MailRecipient(name: "   ", address: "blank@example.org"),
            MailRecipient(name: nil, address: "plain@example.org"),
        ]
        mail.fromName = "Clínica Saúde — Atendimento ao Paciente e Marcação de Consultas"
        let parsed = parseComposed(try composerText(mail))
        let to = try #require(parsed.header("To"))
        #expect(to.hasPrefix("\"Smith, John\" <john@example.org>, \"Dr. \\\"Who\\\" \\\\ Else\" <who@example.org>, =?UTF-8?Q?Ana_Mar"))
        // A name that looks like an encoded word is itself encoded, so it displays literally.
        #expect(to.hasSuffix("?= <spoof@example.org>, blank@example.org, plain@example.org"))
        let mailboxes = to.components(separatedBy: ", ")
        #expect(composerDecodeWords(try #require(mailboxes.first { $0.contains("Ana_Mar") })) == "Ana Maria Pérez <ana@example.org>")
        #expect(composerDecodeWords(try #require(mailboxes.first { $0.hasSuffix("<spoof@example.org>") }))
                == "=?UTF-8?B?c3Bvb2Y=?= <spoof@example.org>")
        let from = try #require(parsed.header("From"))
        #expect(composerDecodeWords(from) == "Clínica Saúde — Atendimento ao Paciente e Marcação de Consultas <support@clinic.example>")
    }

    @Test func longReferencesFold() throws {
        var mail = composerSampleMail()
        mail.references = (1...25).map { "ref\($0).0123456789@mail.example.org" }
        let parsed = parseComposed(try composerText(mail))
        let lines = parsed.headerLines.drop { !$0.hasPrefix("References:") }.prefix { $0.hasPrefix("References:") || $0.hasPrefix(" ") }
        #expect(lines.count >= 12)
        #expect(parsed.header("References") == mail.references.map { "<\($0)>" }.joined(separator: " "))
        #expect(parsed.header("In-Reply-To") == "<CAF=abc.123@mail.example.org>")
        #expect(parsed.header("Message-ID") == "<msg_01J9ZQ4@clinic.example>")
    }

    @Test func extraHeaderValues() throws {
        var mail = composerSampleMail()
        mail.extraHeaders = [
            MailHeaderField(name: "X-Auto-Response-Suppress", value: "All"),
            MailHeaderField(name: "X-Switchboard-Note", value: "Résumé envoyé"),
            MailHeaderField(name: "X-Long", value: (1...30).map { "v\($0)" }.joined(separator: " ")),
            MailHeaderField(name: "X-Empty", value: ""),
            MailHeaderField(name: "X-" + String(repeating: "N", count: 60), value: "ünïcode value"),
        ]
        let parsed = parseComposed(try composerText(mail))
        #expect(parsed.header("X-Auto-Response-Suppress") == "All")
        #expect(composerDecodeWords(try #require(parsed.header("X-Switchboard-Note"))) == "Résumé envoyé")
        #expect(parsed.header("X-Long") == (1...30).map { "v\($0)" }.joined(separator: " "))
        #expect(parsed.header("X-Empty") == "")
        #expect(composerDecodeWords(try #require(parsed.header("X-" + String(repeating: "N", count: 60)))) == "ünïcode value")
    }

    // MARK: Boundary

    /// A boundary that could occur in quoted-printable output is a programming error.
    @Test func boundaryWithoutEqualsUnderscoreTraps() async {
        await #expect(processExitsWith: .failure) {
            _ = try? MailComposer.compose(composerSampleMail(), boundary: "simple-boundary")
        }
        await #expect(processExitsWith: .failure) {
            _ = try? MailComposer.compose(composerSampleMail(), boundary: "=_" + String(repeating: "x", count: 69))
        }
    }
}
