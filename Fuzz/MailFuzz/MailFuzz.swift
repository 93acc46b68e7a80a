// libFuzzer entry point for the parsers that read mail bytes from strangers: the MIME parser,
// the SMTP server session and the IMAP client's response reader. Every input goes through all
// three.
//
// Built with `make fuzz` (swift build -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING: libFuzzer
// instruments the code and drives it) and run for a short budget from `make test`, seeded with the golden
// messages in Tests/SwitchboardMailTests/Golden. In an ordinary build (no FUZZING) this is
// a replayer: `mail-fuzz FILE...` runs each file through the same checks, which is how a
// crash libFuzzer found is reproduced under the debugger.
//
// A failed invariant is a `preconditionFailure`, which libFuzzer reports as a crash with the
// input saved; parsing itself must never trap, loop or grow without bound.
import Foundation
import SwitchboardMail

enum MailFuzz {
    static func check(_ bytes: [UInt8]) {
        checkMIME(bytes)
        checkSMTP(bytes)
        checkIMAP(bytes)
    }

    /// The IMAP client's response reader, on bytes as a hostile server would send them:
    /// within its limits, and the same responses however the bytes are split.
    static func checkIMAP(_ bytes: [UInt8]) {
        func read(step: Int) -> (responses: [IMAPServerResponse], failed: Bool) {
            var reader = IMAPResponseReader(maxLineBytes: 256, maxLiteralBytes: 128)
            var responses: [IMAPServerResponse] = []
            var index = 0
            while index < bytes.count {
                reader.append(bytes[index..<min(index + step, bytes.count)])
                index += step
                do {
                    while let response = try reader.next() { responses.append(response) }
                } catch {
                    return (responses, true)
                }
            }
            return (responses, false)
        }
        let whole = read(step: max(bytes.count, 1))
        // Byte by byte is the hardest split; on long inputs a few bytes at a time keeps the
        // run fast and still splits every literal and line end.
        let byteByByte = read(step: bytes.count <= 1024 ? 1 : 5)
        if !whole.failed && !byteByByte.failed {
            precondition(whole.responses == byteByByte.responses, "responses depend on how the bytes were split")
        }
        for response in whole.responses {
            precondition(response.text.count <= 256, "response line over its limit")
            precondition(response.literals.allSatisfy { $0.count <= 128 }, "literal over its limit")
            _ = try? IMAPResponses.fetched([response], uid: 1)
        }
        _ = IMAPResponses.status(whole.responses)
        _ = IMAPResponses.searchUIDs(whole.responses)
        _ = IMAPResponses.selectedUIDValidity(whole.responses)
    }

    /// Small limits so that the limit paths are reached by small inputs.
    static let limits: MIMELimits = {
        var limits = MIMELimits()
        limits.maxAttachments = 4
        limits.maxAttachmentBytes = 512
        limits.maxTextBytes = 2048
        limits.maxDepth = 6
        limits.maxParts = 40
        return limits
    }()

    static func checkMIME(_ bytes: [UInt8]) {
        let mail = MIMEParser.parse(bytes, limits: limits)
        precondition(mail.attachments.count <= limits.maxAttachments, "attachment limit")
        precondition(mail.text.utf8.count <= limits.maxTextBytes + 4, "text limit")
        precondition(mail.reply.utf8.count <= mail.text.utf8.count, "reply longer than the text")
        for attachment in mail.attachments {
            precondition((attachment.data?.count ?? 0) <= limits.maxAttachmentBytes, "attachment size limit")
            if let name = attachment.filename {
                precondition(!name.contains("/") && !name.contains("\\"), "path in a filename")
                precondition(!name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "control in a filename")
            }
        }
        if let html = mail.html {
            // Tags and their attributes as a browser reads them: the same words as text, or
            // inside a quoted attribute value, are harmless.
            for tag in tags(html) {
                precondition(!["script", "iframe", "style", "object", "embed", "base", "meta", "form"].contains(tag.name),
                             "a dangerous element survived the sanitiser")
                for (name, value) in tag.attributes {
                    precondition(!name.hasPrefix("on"), "an event-handler attribute survived the sanitiser")
                    let url = String(value.unicodeScalars.filter { $0.value > 0x20 })
                    precondition(!(url.hasPrefix("javascript:") || url.hasPrefix("vbscript:") || url.hasPrefix("data:text")),
                                 "a script URL survived the sanitiser")
                }
            }
        }
        if let subject = mail.subject {
            precondition(!subject.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == "\0" }, "control in the subject")
        }
    }

    struct Tag {
        var name: String
        var attributes: [(name: String, value: String)]
    }

    /// The start tags of sanitised HTML, lower-cased, with their attributes (quoted values
    /// read as a browser reads them; entities left as they are).
    static func tags(_ html: String) -> [Tag] {
        let scalars = Array(html.lowercased().unicodeScalars)
        var tags: [Tag] = []
        var index = 0
        func isSpace(_ s: Unicode.Scalar) -> Bool { s == " " || s == "\t" || s == "\n" || s == "\r" || s == "\u{0C}" }
        while index < scalars.count {
            guard scalars[index] == "<", index + 1 < scalars.count, scalars[index + 1].properties.isAlphabetic else {
                index += 1
                continue
            }
            index += 1
            var name = ""
            while index < scalars.count, !isSpace(scalars[index]), scalars[index] != ">", scalars[index] != "/" {
                name.unicodeScalars.append(scalars[index])
                index += 1
            }
            var attributes: [(name: String, value: String)] = []
            while index < scalars.count, scalars[index] != ">" {
                if isSpace(scalars[index]) || scalars[index] == "/" {
                    index += 1
                    continue
                }
                var attribute = ""
                while index < scalars.count, !isSpace(scalars[index]), !["=", ">", "/"].contains(scalars[index]) {
                    attribute.unicodeScalars.append(scalars[index])
                    index += 1
                }
                if attribute.isEmpty { index += 1; continue }
                while index < scalars.count, isSpace(scalars[index]) { index += 1 }
                var value = ""
                if index < scalars.count, scalars[index] == "=" {
                    index += 1
                    while index < scalars.count, isSpace(scalars[index]) { index += 1 }
                    if index < scalars.count, scalars[index] == "\"" || scalars[index] == "'" {
                        let quote = scalars[index]
                        index += 1
                        while index < scalars.count, scalars[index] != quote {
                            value.unicodeScalars.append(scalars[index])
                            index += 1
                        }
                        index += 1
                    } else {
                        while index < scalars.count, !isSpace(scalars[index]), scalars[index] != ">" {
                            value.unicodeScalars.append(scalars[index])
                            index += 1
                        }
                    }
                }
                attributes.append((attribute, value))
            }
            tags.append(Tag(name: name, attributes: attributes))
        }
        return tags
    }

    /// The bytes as a client's side of a session, in chunks whose sizes come from the input.
    static func checkSMTP(_ bytes: [UInt8]) {
        var configuration = SMTPServerConfiguration(hostname: "mx.clinic.example", startTLSAvailable: true,
                                                    authMechanisms: ["PLAIN", "LOGIN"], acceptedDomains: ["clinic.example"],
                                                    acceptedAddresses: [])
        configuration.maxMessageBytes = 4096
        configuration.maxRecipients = 5
        configuration.maxCommands = 200
        var session = SMTPServerSession(configuration: configuration)
        var closed = false
        var replyBytes = 0
        func handle(_ actions: [SMTPAction]) {
            var pending = actions
            while !pending.isEmpty {
                let action = pending.removeFirst()
                precondition(!closed, "an action after close")
                switch action {
                case .send(let reply):
                    precondition(reply.count >= 5 && reply.suffix(2) == [13, 10], "a reply that is not whole lines")
                    replyBytes += reply.count
                case .startTLS:
                    pending += session.tlsEstablished()
                case .authenticate(_, let user, _):
                    pending += session.authenticationResult(user == "mta")
                case .deliver(let envelope):
                    precondition(envelope.data.count <= configuration.maxMessageBytes, "message over SIZE delivered")
                    precondition(!envelope.recipients.isEmpty && envelope.recipients.count <= configuration.maxRecipients,
                                 "recipient limit")
                    pending += session.deliveryResult(envelope.data.count % 7 == 0 ? .temporaryFailure : .stored(queueID: "Q1"))
                case .close:
                    closed = true
                }
            }
        }
        handle(session.greeting())
        var index = 0
        var chunk = 1
        while index < bytes.count, !closed {
            let end = min(bytes.count, index + chunk)
            handle(session.receive(bytes[index..<end]))
            chunk = Int(bytes[index] % 64) + 1
            index = end
        }
        if !closed { handle(session.shutdown()) }
        precondition(closed, "shutdown did not close the session")
        // Replies are bounded by what the client sent (no amplification beyond a small factor).
        precondition(replyBytes <= 4096 + bytes.count * 64, "replies out of proportion to the input")
    }
}

#if FUZZING
import CFuzzDriver

/// SwiftPM links an executable's `main` to `mail_fuzz_main` (its entry point renamed so that
/// tests can link the module), so libFuzzer's own `main` cannot be used: this one starts
/// libFuzzer's driver with the same arguments.
@_cdecl("mail_fuzz_main")
public func mailFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        MailFuzz.check(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}
#else
@main
struct MailFuzzReplay {
    static func main() throws {
        var paths = Array(CommandLine.arguments.dropFirst())
        let show = paths.first == "--show"
        if show { paths.removeFirst() }
        if paths.isEmpty {
            print("usage: mail-fuzz [--show] FILE...  (replays inputs; --show prints what the parser made of them;")
            print("       build with `make fuzz` to fuzz)")
            return
        }
        for path in paths {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            if show {
                let mail = MIMEParser.parse(Array(data), limits: MailFuzz.limits)
                print("subject: \(mail.subject ?? "-")\ntext:\n\(mail.text)\nhtml:\n\(mail.html ?? "-")")
                continue
            }
            MailFuzz.check(Array(data))
            print("ok \(path)")
        }
    }
}
#endif
