// libFuzzer entry point for the webhook and chat decoders: everything that reads bytes from
// strangers over HTTP or a WebSocket (mail has its own target, Fuzz/MailFuzz). Every input
// goes through each of them:
//
// - the portal's JSON webhook body (`PortalInboundEvent.decode`) and the Standard Webhooks
//   signature check over it, with the input split into headers;
// - form bodies (`FormBody`, Twilio and Kannel), Twilio's signature over the parsed pairs,
//   and Kannel's text decoding for every `coding`/`charset` combination;
// - web chat frames (`ChatCodec.decode`), the server's own frames written around what was
//   decoded (read back as JSON), visitor tokens and identity hashes.
//
// Built and run by `make fuzz` beside mail-fuzz; without FUZZING this is a replayer
// (`wire-fuzz FILE...`). A failed invariant is a `preconditionFailure`, which libFuzzer
// reports as a crash with the input saved; decoding itself must never trap or hang.
import Foundation
import SwitchboardChat
import SwitchboardCore
import SwitchboardSMS

enum WireFuzz {
    static func check(_ bytes: [UInt8]) {
        checkPortal(bytes)
        checkForm(bytes)
        checkChat(bytes)
    }

    /// Field paths a portal decoding error may name: the decoder's own vocabulary, so an
    /// error never carries text from the request.
    static let portalFields: Set<String> = [
        "type", "patient", "patient.id", "patient.name", "patient.phone", "patient.email", "thread_id",
        "message", "message.id", "message.text", "message.sent_at",
    ]

    static func checkPortal(_ bytes: [UInt8]) {
        do {
            let event = try PortalInboundEvent.decode(bytes)
            precondition(!event.message.id.isEmpty && !event.patient.id.isEmpty, "an empty identifier was accepted")
            precondition(!event.message.text.trimmingWhitespace().isEmpty, "a blank message was accepted")
            precondition(event.patient.email.map { $0.contains("@") } ?? true, "an email without @ was accepted")
            if let thread = event.threadID { precondition(!thread.isEmpty, "an empty thread id was accepted") }
        } catch {
            if let field = error.field { precondition(portalFields.contains(field), "an error names a field the decoder does not know") }
            precondition(error.description.utf8.count < 200, "an error message out of proportion")
        }
        // The signature check with the input cut into id, timestamp, signature header and body:
        // only a correct signature passes, whatever the headers hold.
        let parts = bytes.split(separator: 0x0A, maxSplits: 3, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if parts.count == 4 {
            let secret = StandardWebhooks.Secret(keyBytes: Array("fuzzing secret of 32 bytes, ok!!".utf8))
            let body = Array(parts[3].utf8)
            let now = Date(timeIntervalSince1970: 1_796_000_000)
            var accepted = true
            do {
                try StandardWebhooks.verify(id: parts[0], timestamp: parts[1], signatureHeader: parts[2], body: body,
                                            secret: secret, now: now, toleranceSeconds: 300)
            } catch {
                accepted = false
            }
            if accepted, let seconds = Int64(parts[1]) {
                let expected = StandardWebhooks.signature(id: parts[0], timestamp: seconds, body: body, secret: secret)
                precondition(parts[2].split(separator: " ").contains(Substring(expected)), "a signature that is not ours was accepted")
            }
        }
    }

    static func checkForm(_ bytes: [UInt8]) {
        guard let pairs = try? FormBody.parse(bytes) else { return }
        // Encoding what was parsed and parsing it again gives the same pairs.
        let again = try? FormBody.parse(Array(FormBody.encode(pairs).utf8))
        precondition(again.map { $0.elementsEqual(pairs) { $0.name == $1.name && $0.value == $1.value } } ?? false,
                     "form encoding does not round-trip")
        let url = "https://switchboard.example/webhooks/sms/twilio"
        let signature = TwilioSignature.compute(url: url, parameters: pairs, authToken: "fuzz-token")
        precondition(TwilioSignature.isValid(signature: signature, url: url, parameters: pairs, authToken: "fuzz-token"),
                     "our own Twilio signature does not verify")
        precondition(!TwilioSignature.isValid(signature: signature, url: url, parameters: pairs, authToken: "other-token"),
                     "a signature verified under another token")
        // Kannel's text field, in every coding and a few charsets.
        let text = pairs.first { $0.name == "text" }.map { Array($0.value.utf8) } ?? bytes
        for coding in [nil, "0", "1", "2", "3"] {
            for charset in [nil, "UTF-8", "UTF-16BE", "ISO-8859-1", "WINDOWS-1252", "x-unknown"] {
                if let decoded = try? KannelText.decode(text, coding: coding, charset: charset) {
                    precondition(decoded.utf8.count <= text.count * 4 + 4, "decoded text out of proportion")
                }
            }
        }
        _ = OptOutKeyword.classify(String(decoding: bytes, as: UTF8.self))
        _ = SMSSegments(String(decoding: bytes.prefix(2000), as: UTF8.self))
    }

    static let chatLimits = ChatLimits(maxTextCharacters: 200)
    static let tokens = VisitorTokens(key: Array("fuzzing visitor token secret 32b".utf8))

    static func checkChat(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        do {
            let frame = try ChatCodec.decode(text, limits: chatLimits)
            switch frame {
            case .message(let clientID, let body):
                precondition(ChatCodec.isClientID(clientID), "a bad client_id was accepted")
                precondition(!body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "a blank message was accepted")
                precondition(body.count <= chatLimits.maxTextCharacters, "an oversized message was accepted")
                // What the server sends back around it is JSON that carries the text unchanged.
                let echo = ChatServerFrame.message(.init(seq: 1, sender: .patient, text: body, at: "2026-12-07T00:00:00Z", clientID: clientID))
                let object = try? JSONSerialization.jsonObject(with: Data(echo.json.utf8)) as? [String: Any]
                precondition(object?["text"] as? String == body, "a message frame does not carry its text unchanged")
            case .hello(let hello):
                if let identity = hello.identity {
                    precondition(identity.hash.utf8.count == 64, "a short identity hash was accepted")
                    _ = ChatIdentityHash.isValid(id: identity.id, expires: identity.expires, hash: identity.hash,
                                                 secret: Array("fuzz identity secret".utf8))
                }
                if let token = hello.visitorToken {
                    if let visitor = tokens.verify(token) {
                        precondition(tokens.issue(visitorID: visitor) == token, "a visitor token we did not issue was accepted")
                    }
                }
            default:
                break
            }
        } catch {
            let rendered = ChatServerFrame.error(error).json
            precondition((try? JSONSerialization.jsonObject(with: Data(rendered.utf8))) != nil, "an error frame is not JSON")
            if text.count >= 12 {
                // Bytes, not `String.contains`: Foundation's version stops at a NUL, so a frame
                // of "}" and NULs looked "repeated" by the "}" closing any JSON.
                precondition(Array(rendered.utf8).firstRange(of: Array(text.utf8)) == nil, "an error frame repeats the client's frame")
            }
        }
    }
}

#if FUZZING
import CFuzzDriver

/// SwiftPM renames an executable's `main` to `wire_fuzz_main`; this starts libFuzzer's
/// driver with the same arguments (see Fuzz/MailFuzz).
@_cdecl("wire_fuzz_main")
public func wireFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        WireFuzz.check(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}
#else
@main
struct WireFuzzReplay {
    static func main() throws {
        let paths = Array(CommandLine.arguments.dropFirst())
        if paths.isEmpty {
            print("usage: wire-fuzz FILE...  (replays inputs; build with `make fuzz` to fuzz)")
            return
        }
        for path in paths {
            WireFuzz.check(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            print("ok \(path)")
        }
    }
}
#endif
