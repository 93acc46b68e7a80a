import Foundation
import Testing
@testable import SwitchboardMail

// MARK: - Helpers (file-private: the test module is shared with other suites)

private let smtpTestHost = "mx.switchboard.test"

private func smtpTestConfig(_ adjust: (inout SMTPServerConfiguration) -> Void = { _ in }) -> SMTPServerConfiguration {
    var configuration = SMTPServerConfiguration(
        hostname: smtpTestHost, startTLSAvailable: true, authMechanisms: ["PLAIN", "LOGIN"],
        acceptedDomains: ["clinic.example"], acceptedAddresses: ["Intake@Partner.example"])
    adjust(&configuration)
    return configuration
}

private func smtpTestBase64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

/// A session plus a readable transcript of its actions: replies without their final CRLF,
/// "STARTTLS(n)", "AUTH(mechanism,user,password)", "DELIVER", "CLOSE".
private struct SMTPTestClient {
    var session: SMTPServerSession
    var deliveries: [SMTPEnvelope] = []

    init(_ configuration: SMTPServerConfiguration = smtpTestConfig(), tls: Bool = false) {
        session = SMTPServerSession(configuration: configuration, tlsActive: tls)
    }

    mutating func send(_ text: String) -> [String] { record(session.receive(Array(text.utf8)[...])) }

    mutating func sendBytes(_ bytes: [UInt8]) -> [String] { record(session.receive(bytes[...])) }

    /// Feeds `text` one byte at a time.
    mutating func trickle(_ text: String) -> [String] {
        var transcript: [String] = []
        for byte in text.utf8 { transcript += record(session.receive([byte][...])) }
        return transcript
    }

    mutating func deliver(_ result: SMTPDeliveryResult = .stored(queueID: "Q1")) -> [String] {
        record(session.deliveryResult(result))
    }

    mutating func authenticated(_ ok: Bool) -> [String] { record(session.authenticationResult(ok)) }

    /// EHLO, then MAIL FROM and RCPT TO for one message.
    mutating func open(from: String = "<patient@example.org>", to: String = "<support@clinic.example>") {
        _ = send("EHLO client.example\r\n")
        let replies = send("MAIL FROM:\(from)\r\nRCPT TO:\(to)\r\n")
        #expect(replies == ["250 2.1.0 Ok", "250 2.1.5 Ok"])
    }

    mutating func record(_ actions: [SMTPAction]) -> [String] {
        actions.map { action in
            switch action {
            case .send(let bytes):
                #expect(bytes.allSatisfy { $0 < 0x80 }, "replies are ASCII")
                #expect(bytes.suffix(2) == [0x0D, 0x0A], "replies end in CRLF")
                let text = String(decoding: bytes, as: UTF8.self)
                let lines = text.components(separatedBy: "\r\n").dropLast()
                #expect(lines.allSatisfy { !$0.contains("\r") && !$0.contains("\n") && $0.utf8.count <= 510 })
                return lines.joined(separator: "|")
            case .startTLS(let discarded):
                return "STARTTLS(\(discarded))"
            case .authenticate(let mechanism, let user, let password):
                return "AUTH(\(mechanism),\(user),\(password))"
            case .deliver(let envelope):
                deliveries.append(envelope)
                return "DELIVER"
            case .close:
                return "CLOSE"
            }
        }
    }
}

private let smtpEHLOPlain = "250-\(smtpTestHost)|250-PIPELINING|250-SIZE 26214400|250-8BITMIME|250-SMTPUTF8|250-ENHANCEDSTATUSCODES|250 STARTTLS"
private let smtpDataReply = "354 End data with <CR><LF>.<CR><LF>"

// MARK: - Tests

@Suite struct SMTPSessionTests {
    // MARK: Greeting, EHLO, HELO, simple commands

    @Test func greetingAndEHLOAdvertiseTheExtensions() {
        var client = SMTPTestClient()
        #expect(client.record(client.session.greeting()) == ["220 \(smtpTestHost) ESMTP Switchboard"])
        #expect(client.send("EHLO client.example\r\n") == [smtpEHLOPlain])

        var limited = SMTPTestClient(smtpTestConfig { $0.maxMessageBytes = 1000; $0.startTLSAvailable = false })
        #expect(limited.send("EHLO client.example\r\n")
                == ["250-\(smtpTestHost)|250-PIPELINING|250-SIZE 1000|250-8BITMIME|250-SMTPUTF8|250 ENHANCEDSTATUSCODES"])

        // Over TLS: no STARTTLS; AUTH with the implemented mechanisms only.
        var secure = SMTPTestClient(smtpTestConfig { $0.authMechanisms = ["plain", "CRAM-MD5", "LOGIN"] }, tls: true)
        #expect(secure.send("EHLO client.example\r\n")
                == ["250-\(smtpTestHost)|250-PIPELINING|250-SIZE 26214400|250-8BITMIME|250-SMTPUTF8|250-ENHANCEDSTATUSCODES|250 AUTH PLAIN LOGIN"])
        var noAuth = SMTPTestClient(smtpTestConfig { $0.authMechanisms = [] }, tls: true)
        #expect(noAuth.send("EHLO client.example\r\n").first?.hasSuffix("250 ENHANCEDSTATUSCODES") == true)
    }

    @Test func heloAndMissingDomain() {
        var client = SMTPTestClient()
        #expect(client.send("HELO client.example\r\n") == ["250 \(smtpTestHost)"])
        #expect(client.send("EHLO\r\nHELO   \r\n") == ["501 5.5.4 Syntax: EHLO hostname", "501 5.5.4 Syntax: HELO hostname"])
    }

    @Test func commandsAreCaseInsensitiveAndBareLFIsAccepted() {
        var client = SMTPTestClient()
        #expect(client.send("ehlo client.example\n").first == smtpEHLOPlain)
        #expect(client.send("mail from:<patient@example.org>\nrCpT To:<support@clinic.example>\r\nnoop\n")
                == ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok"])
    }

    @Test func simpleCommands() {
        var client = SMTPTestClient()
        #expect(client.send("NOOP\r\nNOOP anything\r\nVRFY someone\r\nVRFY\r\nHELP\r\n") == [
            "250 2.0.0 Ok", "250 2.0.0 Ok", "252 2.5.2 Cannot VRFY user", "501 5.5.4 Syntax: VRFY address",
            "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
        ])
        #expect(client.send("BDAT 100 LAST\r\nEXPN list\r\nFROB\r\n\r\n") == [
            "502 5.5.1 Error: command not implemented", "502 5.5.1 Error: command not implemented",
            "500 5.5.2 Error: command not recognized", "500 5.5.2 Error: bad syntax",
        ])
        #expect(client.send("NOOP\0\r\nNOOP \u{1}\r\n") == ["500 5.5.2 Error: bad syntax", "500 5.5.2 Error: bad syntax"])
        #expect(client.sendBytes(Array("NOOP ".utf8) + [0xFF, 0xFE, 0x0D, 0x0A]) == ["500 5.5.2 Error: bad UTF-8 syntax"])
        #expect(client.send("QUIT\r\nNOOP\r\n") == ["221 2.0.0 Bye", "CLOSE"])
        #expect(client.send("NOOP\r\n").isEmpty)
        #expect(client.record(client.session.shutdown()).isEmpty)
    }

    // MARK: Transactions

    @Test func happyPath() {
        var client = SMTPTestClient()
        _ = client.record(client.session.greeting())
        #expect(client.send("EHLO client.example\r\n") == [smtpEHLOPlain])
        #expect(client.send("MAIL FROM:<patient@example.org> BODY=8BITMIME SIZE=120\r\n") == ["250 2.1.0 Ok"])
        #expect(client.send("RCPT TO:<support+r7k2m9@clinic.example>\r\n") == ["250 2.1.5 Ok"])
        #expect(client.send("RCPT TO:<INTAKE@partner.EXAMPLE> NOTIFY=NEVER ORCPT=rfc822;intake@partner.example\r\n") == ["250 2.1.5 Ok"])
        #expect(client.send("DATA\r\n") == [smtpDataReply])
        #expect(client.session.isInData)
        #expect(client.send("Subject: Appointment\r\n\r\nCan I come on Tuesday?\r\n") == [])
        #expect(client.send(".\r\n") == ["DELIVER"])
        #expect(client.session.isAwaitingResult)
        #expect(!client.session.isInData)
        #expect(client.deliveries == [SMTPEnvelope(
            heloName: "client.example", mailFrom: "patient@example.org",
            recipients: ["support+r7k2m9@clinic.example", "INTAKE@partner.EXAMPLE"], smtpUTF8: false, bodyType: "8BITMIME",
            data: Array("Subject: Appointment\r\n\r\nCan I come on Tuesday?\r\n".utf8), tls: false, authenticatedUser: nil)])
        #expect(client.deliver(.stored(queueID: "01JABC")) == ["250 2.0.0 Ok: queued as 01JABC"])
        #expect(!client.session.isAwaitingResult)
        // The transaction is reset, EHLO is kept.
        #expect(client.send("RCPT TO:<support@clinic.example>\r\n") == ["503 5.5.1 Error: need MAIL command"])
        #expect(client.send("MAIL FROM:<>\r\nRCPT TO:<support@clinic.example>\r\nDATA\r\n.\r\n")
                == ["250 2.1.0 Ok", "250 2.1.5 Ok", smtpDataReply, "DELIVER"])
        #expect(client.deliveries.last?.mailFrom == "")
        #expect(client.deliveries.last?.data == [])
        #expect(client.deliveries.last?.bodyType == nil)
        #expect(client.deliver(.duplicate(queueID: "01JABC")) == ["250 2.0.0 Ok: queued as 01JABC"])
        #expect(client.send("QUIT\r\n") == ["221 2.0.0 Bye", "CLOSE"])
    }

    @Test func pipelinedTransactionInOneChunk() {
        var client = SMTPTestClient()
        _ = client.send("EHLO client.example\r\n")
        let replies = client.send("MAIL FROM:<patient@example.org>\r\nRCPT TO:<a@clinic.example>\r\nRCPT TO:<b@clinic.example>\r\nDATA\r\n"
                                  + "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        #expect(replies == ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok", smtpDataReply, "DELIVER"])
        #expect(client.deliveries.first?.recipients == ["a@clinic.example", "b@clinic.example"])
        #expect(client.deliveries.first?.data == Array("Subject: x\r\n\r\nbody\r\n".utf8))
        // The QUIT behind the message is answered only after the delivery result.
        #expect(client.send("NOOP\r\n") == [])
        #expect(client.deliver() == ["250 2.0.0 Ok: queued as Q1", "221 2.0.0 Bye", "CLOSE"])
    }

    @Test func rsetAbandonsTheTransaction() {
        var client = SMTPTestClient()
        client.open()
        #expect(client.send("RSET\r\nDATA\r\n") == ["250 2.0.0 Ok", "503 5.5.1 Error: need MAIL command"])
        #expect(client.send("RSET x\r\n") == ["501 5.5.4 Syntax: RSET"])
        #expect(client.send("MAIL FROM:<patient@example.org>\r\n") == ["250 2.1.0 Ok"])
    }

    @Test func sequenceErrors() {
        var client = SMTPTestClient()
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nRCPT TO:<a@clinic.example>\r\nDATA\r\n") == [
            "503 5.5.1 Error: send HELO/EHLO first", "503 5.5.1 Error: need MAIL command", "503 5.5.1 Error: need MAIL command",
        ])
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nDATA\r\nMAIL FROM:<other@example.org>\r\n") == [
            "250 2.1.0 Ok", "503 5.5.1 Error: need RCPT command", "503 5.5.1 Error: nested MAIL command",
        ])
        // All recipients refused: DATA is still "need RCPT".
        #expect(client.send("RCPT TO:<someone@elsewhere.example>\r\nDATA\r\n")
                == ["550 5.7.1 Relay access denied", "503 5.5.1 Error: need RCPT command"])
        #expect(client.send("RCPT TO:<a@clinic.example>\r\nDATA now\r\n") == ["250 2.1.5 Ok", "501 5.5.4 Syntax: DATA"])
        // A second EHLO resets the transaction.
        #expect(client.send("EHLO client.example\r\n") == [smtpEHLOPlain])
        #expect(client.send("RCPT TO:<a@clinic.example>\r\n") == ["503 5.5.1 Error: need MAIL command"])
    }

    // MARK: Addresses and parameters

    @Test func relayIsRefusedAndAcceptedRecipientsAreRecognised() {
        var client = SMTPTestClient()
        _ = client.send("EHLO client.example\r\nMAIL FROM:<patient@example.org>\r\n")
        #expect(client.send("RCPT TO:<someone@elsewhere.example>\r\n") == ["550 5.7.1 Relay access denied"])
        #expect(client.send("RCPT TO:<someone@sub.clinic.example>\r\n") == ["550 5.7.1 Relay access denied"])
        #expect(client.send("RCPT TO:<other@partner.example>\r\n") == ["550 5.7.1 Relay access denied"])
        #expect(client.send("RCPT TO:<Support+Token@CLINIC.Example>\r\n") == ["250 2.1.5 Ok"])
        #expect(client.send("RCPT TO:<intake@partner.example>\r\n") == ["250 2.1.5 Ok"])
        #expect(client.send("RCPT TO:<Postmaster>\r\n") == ["250 2.1.5 Ok"])
        #expect(client.send("RCPT TO:<@relay.example,@[192.0.2.1]:front-desk@clinic.example>\r\n") == ["250 2.1.5 Ok"])
        #expect(client.send("RCPT TO:<\"front desk\"@clinic.example>\r\n") == ["250 2.1.5 Ok"])
        // Duplicates (case-insensitive) are collapsed.
        #expect(client.send("RCPT TO:<support+token@clinic.example>\r\n") == ["250 2.1.5 Ok"])
        #expect(client.send("DATA\r\n.\r\n") == [smtpDataReply, "DELIVER"])
        #expect(client.deliveries.first?.recipients == [
            "Support+Token@CLINIC.Example", "intake@partner.example", "Postmaster", "front-desk@clinic.example",
            "\"front desk\"@clinic.example",
        ])
    }

    @Test func senderSyntax() {
        var client = SMTPTestClient()
        _ = client.send("EHLO client.example\r\n")
        for bad in ["MAIL FROM:patient@example.org", "MAIL FROM:<patient>", "MAIL FROM:<patient@>", "MAIL FROM:<@example.org>",
                    "MAIL FROM:<a b@example.org>", "MAIL FROM:<patient@exa_mple.org>", "MAIL FROM:<patient@example..org>",
                    "MAIL FROM:<patient@example.org", "MAIL FROM:<patient@example.org>SIZE=1", "MAIL FROM:<\"open@example.org>",
                    "MAIL FROM:<@relay.example:>", "MAIL FROM:<@relay.example;patient@example.org>"] {
            #expect(client.send(bad + "\r\n") == ["501 5.1.7 Bad sender address syntax"], "\(bad)")
            client = SMTPTestClient()
            _ = client.send("EHLO client.example\r\n")
        }
        #expect(client.send("MAIL TO:<patient@example.org>\r\n") == ["501 5.5.4 Syntax: MAIL FROM:<address>"])
        #expect(client.send("MAIL\r\n") == ["501 5.5.4 Syntax: MAIL FROM:<address>"])
        for good in ["<@relay.example,@other.example:patient@example.org>", "<\"a>b\\\"c\"@example.org>", "<patient@[192.0.2.7]>",
                     "<first.last+tag@example.org>"] {
            var fresh = SMTPTestClient()
            _ = fresh.send("EHLO client.example\r\n")
            #expect(fresh.send("MAIL FROM: \(good)\r\nRCPT TO:<a@clinic.example>\r\nDATA\r\n.\r\n")
                    == ["250 2.1.0 Ok", "250 2.1.5 Ok", smtpDataReply, "DELIVER"], "\(good)")
            let expected = good.hasPrefix("<@") ? "patient@example.org" : String(good.dropFirst().dropLast())
            #expect(fresh.deliveries.first?.mailFrom == expected)
        }
    }

    @Test func recipientSyntax() {
        var client = SMTPTestClient()
        _ = client.send("EHLO client.example\r\nMAIL FROM:<patient@example.org>\r\n")
        #expect(client.send("RCPT TO:<a@>\r\nRCPT TO:<>\r\nRCPT TO:a@clinic.example\r\nRCPT FROM:<a@clinic.example>\r\n") == [
            "501 5.1.3 Bad recipient address syntax", "501 5.1.3 Bad recipient address syntax",
            "501 5.1.3 Bad recipient address syntax", "501 5.5.4 Syntax: RCPT TO:<address>",
        ])
        #expect(client.send("RCPT TO:<a@clinic.example> =x\r\n") == ["501 5.5.4 Bad parameter syntax"])
    }

    @Test func mailParameters() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxMessageBytes = 1000; $0.maxErrors = 100 })
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("MAIL FROM:<patient@example.org> SIZE=1001\r\n") == ["552 5.3.4 Message size exceeds fixed limit"])
        #expect(client.send("MAIL FROM:<patient@example.org> SIZE=99999999999999999999999999999\r\n")
                == ["552 5.3.4 Message size exceeds fixed limit"])
        #expect(client.send("MAIL FROM:<patient@example.org> SIZE=12k\r\n") == ["501 5.5.4 Bad SIZE parameter syntax"])
        #expect(client.send("MAIL FROM:<patient@example.org> SIZE\r\n") == ["501 5.5.4 Bad SIZE parameter syntax"])
        #expect(client.send("MAIL FROM:<patient@example.org> BODY=BINARYMIME\r\n") == ["501 5.5.4 Unsupported BODY parameter"])
        #expect(client.send("MAIL FROM:<patient@example.org> SMTPUTF8=yes\r\n") == ["501 5.5.4 Bad SMTPUTF8 parameter syntax"])
        #expect(client.send("MAIL FROM:<patient@example.org> RET=HDRS\r\n") == ["555 5.5.4 Unsupported option"])
        #expect(client.send("MAIL FROM:<patient@example.org> SIZE=\r\n") == ["501 5.5.4 Bad parameter syntax"])
        #expect(client.send("MAIL FROM:<patient@example.org>  size=1000  body=7bit  AUTH=<>\r\n") == ["250 2.1.0 Ok"])
        #expect(client.send("RCPT TO:<a@clinic.example>\r\nDATA\r\n.\r\n") == ["250 2.1.5 Ok", smtpDataReply, "DELIVER"])
        #expect(client.deliveries.first?.bodyType == "7BIT")
    }

    @Test func smtpUTF8Addresses() {
        var client = SMTPTestClient()
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("MAIL FROM:<pätient@exämple.org>\r\n") == ["553 5.6.7 Must declare SMTPUTF8 to send non-ASCII addresses"])
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nRCPT TO:<zoë@clinic.example>\r\nRSET\r\n")
                == ["250 2.1.0 Ok", "553 5.6.7 Must declare SMTPUTF8 to send non-ASCII addresses", "250 2.0.0 Ok"])
        #expect(client.send("MAIL FROM:<pätient@exämple.org> SMTPUTF8\r\nRCPT TO:<zoë@clinic.example>\r\nDATA\r\n.\r\n")
                == ["250 2.1.0 Ok", "250 2.1.5 Ok", smtpDataReply, "DELIVER"])
        #expect(client.deliveries.first?.mailFrom == "pätient@exämple.org")
        #expect(client.deliveries.first?.recipients == ["zoë@clinic.example"])
        #expect(client.deliveries.first?.smtpUTF8 == true)
        // The next transaction starts without SMTPUTF8.
        _ = client.deliver()
        #expect(client.send("MAIL FROM:<patient@example.org>\r\n") == ["250 2.1.0 Ok"])
        #expect(client.send("RCPT TO:<zoë@clinic.example>\r\n") == ["553 5.6.7 Must declare SMTPUTF8 to send non-ASCII addresses"])
    }

    @Test func repliesNeverEchoTheClient() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxErrors = 1000 })
        var transcript = client.send("EHLO secret-patient.example\r\n")
        for line in ["MAIL FROM:<secret-patient@example.org> SECRETPATIENT=1", "MAIL FROM:<secret-patient>",
                     "RCPT TO:<secret-patient@elsewhere.example>", "SECRETPATIENT", "VRFY secret-patient",
                     "MAIL FROM:<secret-patient@example.org>", "RCPT TO:<secret-patient@elsewhere.example>",
                     "RCPT TO:<secret-patient@clinic.example> SECRETPATIENT=x", "AUTH SECRETPATIENT"] {
            transcript += client.send(line + "\r\n")
        }
        #expect(transcript.count == 10)
        #expect(!transcript.contains { $0.lowercased().contains("secret") })
    }

    // MARK: DATA: termination, smuggling, dot-stuffing, limits

    @Test(arguments: ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\r\n.\r", "\r\n.\r\r\n"])
    func smugglingAttemptsAreContent(_ fakeEnd: String) {
        let body = "Subject: hello\r\n\r\nhello" + fakeEnd
            + "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@clinic.example>\r\nDATA\r\nsmuggled\r\n"
        let expected = Array(body.utf8)
        for byteByByte in [false, true] {
            var client = SMTPTestClient()
            client.open()
            #expect(client.send("DATA\r\n") == [smtpDataReply])
            let input = body + ".\r\nQUIT\r\n"
            let replies = byteByByte ? client.trickle(input) : client.send(input)
            #expect(replies == ["DELIVER"])
            #expect(client.deliveries.count == 1)
            #expect(client.deliveries.first?.data == expected)
            #expect(client.deliver() == ["250 2.0.0 Ok: queued as Q1", "221 2.0.0 Bye", "CLOSE"])
        }
    }

    @Test func terminatorSplitAnywhere() {
        let script = "EHLO client.example\r\nMAIL FROM:<patient@example.org>\r\nRCPT TO:<a@clinic.example>\r\nDATA\r\n"
            + "Subject: x\r\n\r\nline one\r\n..dot line\r\nlast\r\n.\r\nNOOP\r\n"
        let bytes = Array(script.utf8)
        // Every split point into two chunks, and byte by byte.
        for split in 0...bytes.count {
            var client = SMTPTestClient()
            let replies = client.sendBytes(Array(bytes[..<split])) + client.sendBytes(Array(bytes[split...]))
            #expect(replies.last == "DELIVER")
            #expect(client.deliveries.map(\.data) == [Array("Subject: x\r\n\r\nline one\r\n.dot line\r\nlast\r\n".utf8)])
            #expect(client.deliver() == ["250 2.0.0 Ok: queued as Q1", "250 2.0.0 Ok"])
        }
        var client = SMTPTestClient()
        #expect(client.trickle(script).filter { $0 == "DELIVER" }.count == 1)
        #expect(client.deliveries.first?.data == Array("Subject: x\r\n\r\nline one\r\n.dot line\r\nlast\r\n".utf8))
    }

    @Test func dotStuffing() {
        var client = SMTPTestClient()
        client.open()
        _ = client.send("DATA\r\n")
        #expect(client.send("..leading\r\n...two\r\n..\r\nmid.dle\r\n.single\r\n \r\n.\r\n") == ["DELIVER"])
        // ".." at a line start loses one dot; anything else is kept exactly.
        #expect(client.deliveries.first?.data == Array(".leading\r\n..two\r\n.\r\nmid.dle\r\n.single\r\n \r\n".utf8))
    }

    @Test func dataIsKeptExactly() {
        var client = SMTPTestClient()
        client.open()
        _ = client.send("DATA\r\n")
        var message: [UInt8] = Array("Subject: bytes\r\n\r\n".utf8)
        for byte in UInt8.min...UInt8.max where byte != 0x0D && byte != 0x0A { message.append(byte) }
        message += Array("\r\nbare\nlf and bare\rcr\r\n\r\n".utf8)
        #expect(client.sendBytes(message + Array(".\r\n".utf8)) == ["DELIVER"])
        #expect(client.deliveries.first?.data == message)
    }

    @Test func messageOverTheSizeLimit() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxMessageBytes = 100 })
        client.open()
        _ = client.send("DATA\r\n")
        // Exactly at the limit is fine.
        let fits = "Subject: x\r\n\r\n" + String(repeating: "a", count: 84) + "\r\n"
        #expect(fits.utf8.count == 100)
        #expect(client.send(fits + ".\r\n") == ["DELIVER"])
        _ = client.deliver()
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nRCPT TO:<a@clinic.example>\r\nDATA\r\n")
                == ["250 2.1.0 Ok", "250 2.1.5 Ok", smtpDataReply])
        // Over it: consumed to the end, then refused; nothing delivered.
        #expect(client.send("Subject: x\r\n\r\n" + String(repeating: "b", count: 80) + "\r\n") == [])
        #expect(client.send(String(repeating: "c", count: 500) + "\r\n.\r\n") == ["552 5.3.4 Message size exceeds fixed maximum message size"])
        #expect(client.deliveries.count == 1)
        // The session goes on.
        #expect(client.send("RCPT TO:<a@clinic.example>\r\n") == ["503 5.5.1 Error: need MAIL command"])
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nRCPT TO:<a@clinic.example>\r\nDATA\r\nsmall\r\n.\r\n")
                == ["250 2.1.0 Ok", "250 2.1.5 Ok", smtpDataReply, "DELIVER"])
        #expect(client.deliveries.last?.data == Array("small\r\n".utf8))
    }

    @Test func headerSectionOverTheLimit() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxHeaderBytes = 64 })
        client.open()
        _ = client.send("DATA\r\n")
        let header = (1...5).map { "X-Header-\($0): some value here\r\n" }.joined()
        #expect(client.send(header + "\r\nbody\r\n.\r\n") == ["552 5.3.4 Message header size exceeds limit"])
        #expect(client.deliveries.isEmpty)
        // A small header with a large body is fine; so is a header ended by bare LF lines.
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nRCPT TO:<a@clinic.example>\r\nDATA\r\n")
                == ["250 2.1.0 Ok", "250 2.1.5 Ok", smtpDataReply])
        #expect(client.send("Subject: x\r\n\r\n" + String(repeating: "body line\r\n", count: 100) + ".\r\n") == ["DELIVER"])
        _ = client.deliver()
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nRCPT TO:<a@clinic.example>\r\nDATA\r\n")
                == ["250 2.1.0 Ok", "250 2.1.5 Ok", smtpDataReply])
        #expect(client.send("Subject: x\n\n" + String(repeating: "body line\n", count: 100) + "\r\n.\r\n") == ["DELIVER"])
    }

    @Test func largeMessageInChunksIsLinear() {
        let size = 25 * 1024 * 1024
        var client = SMTPTestClient()
        client.open()
        _ = client.send("DATA\r\n")
        var message = Array("Subject: big\r\n\r\n".utf8)
        message.reserveCapacity(size)
        let line = Array((String(repeating: "0123456789", count: 7) + "\r\n").utf8)
        while message.count + line.count <= size { message += line }
        let wire = message + Array(".\r\n".utf8)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            var offset = 0
            while offset < wire.count {
                let end = min(offset + 65536, wire.count)
                _ = client.sendBytes(Array(wire[offset..<end]))
                offset = end
            }
        }
        #expect(client.deliveries.count == 1)
        #expect(client.deliveries.first?.data == message)
        // Generous: a quadratic implementation would take hours.
        #expect(elapsed < .seconds(30))
    }

    // MARK: Limits

    @Test func tooManyRecipients() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxRecipients = 3; $0.maxErrors = 3 })
        _ = client.send("EHLO client.example\r\nMAIL FROM:<patient@example.org>\r\n")
        let replies = client.send((1...8).map { "RCPT TO:<r\($0)@clinic.example>\r\n" }.joined() + "RCPT TO:<r1@clinic.example>\r\n")
        #expect(replies == ["250 2.1.5 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok"] + Array(repeating: "452 4.5.3 Error: too many recipients", count: 5)
                + ["250 2.1.5 Ok"])
        // 452 does not count as an error: the session is still open.
        #expect(client.send("DATA\r\n.\r\n") == [smtpDataReply, "DELIVER"])
        #expect(client.deliveries.first?.recipients == ["r1@clinic.example", "r2@clinic.example", "r3@clinic.example"])
    }

    @Test func tooManyErrors() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxErrors = 3 })
        #expect(client.send("FROB\r\nMAIL FROM:<a@b.example>\r\n") == ["500 5.5.2 Error: command not recognized",
                                                                      "503 5.5.1 Error: send HELO/EHLO first"])
        #expect(client.send("FROB\r\nNOOP\r\n") == ["500 5.5.2 Error: command not recognized",
                                                    "421 4.7.0 \(smtpTestHost) Error: too many errors", "CLOSE"])
        #expect(client.send("NOOP\r\n").isEmpty)
        #expect(client.record(client.session.timeout()).isEmpty)
    }

    @Test func tooManyCommands() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxCommands = 3 })
        #expect(client.send("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n") == [
            "250 2.0.0 Ok", "250 2.0.0 Ok", "250 2.0.0 Ok", "421 4.7.0 \(smtpTestHost) Error: too many commands", "CLOSE",
        ])
    }

    @Test func tooManyTransactions() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxTransactions = 2 })
        client.open()
        #expect(client.send("DATA\r\n.\r\nMAIL FROM:<patient@example.org>\r\n") == [smtpDataReply, "DELIVER"])
        #expect(client.deliver() == ["250 2.0.0 Ok: queued as Q1", "250 2.1.0 Ok"])
        #expect(client.send("RCPT TO:<a@clinic.example>\r\nDATA\r\n.\r\n") == ["250 2.1.5 Ok", smtpDataReply, "DELIVER"])
        #expect(client.deliver(.temporaryFailure)
                == ["451 4.3.0 Error: queue file write error", "421 4.7.0 \(smtpTestHost) Error: too many messages", "CLOSE"])
    }

    @Test func commandLineTooLong() {
        var client = SMTPTestClient()
        // 512 bytes including CRLF is the limit.
        #expect(client.send("NOOP " + String(repeating: "x", count: 505) + "\r\n") == ["250 2.0.0 Ok"])
        #expect(client.send("NOOP " + String(repeating: "x", count: 506) + "\r\nNOOP\r\n")
                == ["500 5.5.2 Error: line too long", "250 2.0.0 Ok"])
        // Arriving in pieces: discarded as it comes, answered at its end.
        #expect(client.send("MAIL FROM:<" + String(repeating: "y", count: 600)) == [])
        #expect(client.send(String(repeating: "z", count: 5000)) == [])
        #expect(client.send("@example.org>\r\nNOOP\r\n") == ["500 5.5.2 Error: line too long", "250 2.0.0 Ok"])
        #expect(client.send("EHLO client.example\r\n").first == smtpEHLOPlain)
    }

    @Test func pipelinedInputWhileAwaitingIsBounded() {
        var client = SMTPTestClient()
        client.open()
        #expect(client.send("DATA\r\n.\r\n") == [smtpDataReply, "DELIVER"])
        #expect(client.send(String(repeating: "NOOP\r\n", count: 20_000)) == [])
        #expect(client.deliver() == ["250 2.0.0 Ok: queued as Q1", "421 4.7.0 \(smtpTestHost) Error: too much pipelined input", "CLOSE"])
    }

    // MARK: Delivery results, shutdown, timeout

    @Test func deliveryResultsAreSanitised() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxErrors = 100 })
        let results: [(SMTPDeliveryResult, String)] = [
            (.rejected(code: 554, enhanced: "5.7.1", text: "Message refused\r\nby policy é"), "554 5.7.1 Message refused??by policy ?"),
            (.rejected(code: 250, enhanced: "2.0.0", text: ""), "554 5.0.0 Error"),
            (.rejected(code: 450, enhanced: "5.1.1", text: "Try later"), "450 4.0.0 Try later"),
            (.rejected(code: 550, enhanced: "5.1.1234", text: "No"), "550 5.0.0 No"),
            (.stored(queueID: "a b\r\n"), "250 2.0.0 Ok: queued as a?b??"),
        ]
        for (result, expected) in results {
            client.open()
            _ = client.send("DATA\r\n.\r\n")
            #expect(client.deliver(result) == [expected])
        }
        #expect(client.record(client.session.deliveryResult(.temporaryFailure)).isEmpty, "no delivery outstanding")
        #expect(client.record(client.session.authenticationResult(true)).isEmpty, "no authentication outstanding")
    }

    @Test func shutdownAndTimeout() {
        var client = SMTPTestClient()
        #expect(client.record(client.session.shutdown()) == ["421 4.3.2 Service shutting down", "CLOSE"])
        #expect(client.send("NOOP\r\n").isEmpty)
        var idle = SMTPTestClient()
        _ = idle.send("EHLO client.example\r\nMAIL FROM:<patient@example.org>\r\n")
        #expect(idle.record(idle.session.timeout()) == ["421 4.4.2 \(smtpTestHost) Error: timeout exceeded", "CLOSE"])
        #expect(idle.record(idle.session.shutdown()).isEmpty)
        // While a delivery is outstanding the reply is still emitted; the handler deals with the delivery.
        var busy = SMTPTestClient()
        busy.open()
        _ = busy.send("DATA\r\n.\r\n")
        #expect(busy.record(busy.session.shutdown()) == ["421 4.3.2 Service shutting down", "CLOSE"])
        #expect(busy.deliver().isEmpty)
    }

    // MARK: STARTTLS

    @Test func startTLSDiscardsPipelinedPlaintext() {
        var client = SMTPTestClient()
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("STARTTLS\r\nMAIL FROM:<x@y>\r\n") == ["220 2.0.0 Ready to start TLS", "STARTTLS(17)"])
        // Plaintext arriving before the handshake completes is dropped too.
        #expect(client.send("RCPT TO:<a@clinic.example>\r\n") == [])
        #expect(client.record(client.session.tlsEstablished()) == [])
        // RFC 3207: the client starts over with EHLO.
        #expect(client.send("MAIL FROM:<patient@example.org>\r\n") == ["503 5.5.1 Error: send HELO/EHLO first"])
        #expect(client.send("EHLO client.example\r\n")
                == ["250-\(smtpTestHost)|250-PIPELINING|250-SIZE 26214400|250-8BITMIME|250-SMTPUTF8|250-ENHANCEDSTATUSCODES|250 AUTH PLAIN LOGIN"])
        #expect(client.send("STARTTLS\r\n") == ["554 5.5.1 Error: TLS already active"])
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nRCPT TO:<a@clinic.example>\r\nDATA\r\n.\r\n")
                == ["250 2.1.0 Ok", "250 2.1.5 Ok", smtpDataReply, "DELIVER"])
        #expect(client.deliveries.first?.tls == true)
    }

    @Test func startTLSRefusals() {
        var unavailable = SMTPTestClient(smtpTestConfig { $0.startTLSAvailable = false })
        #expect(unavailable.send("STARTTLS\r\n") == ["502 5.5.1 Error: command not implemented"])
        var client = SMTPTestClient()
        #expect(client.send("STARTTLS now\r\n") == ["501 5.5.4 Syntax: STARTTLS"])
        #expect(client.send("STARTTLS\r\n") == ["220 2.0.0 Ready to start TLS", "STARTTLS(0)"])
        #expect(!client.session.isAwaitingResult)
    }

    @Test func requireTLS() {
        var client = SMTPTestClient(smtpTestConfig { $0.requireTLS = true })
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("MAIL FROM:<patient@example.org>\r\n") == ["530 5.7.0 Must issue a STARTTLS command first"])
        _ = client.send("STARTTLS\r\n")
        _ = client.record(client.session.tlsEstablished())
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("MAIL FROM:<patient@example.org>\r\n") == ["250 2.1.0 Ok"])
    }

    // MARK: AUTH

    @Test func authPlainWithInitialResponse() {
        var client = SMTPTestClient(smtpTestConfig { $0.requireAuth = true }, tls: true)
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("MAIL FROM:<patient@example.org>\r\n") == ["530 5.7.0 Authentication required"])
        #expect(client.send("AUTH PLAIN \(smtpTestBase64("\0clinic-relay\0s3cret pass"))\r\nNOOP\r\n") == ["AUTH(PLAIN,clinic-relay,s3cret pass)"])
        #expect(client.session.isAwaitingResult)
        #expect(client.authenticated(true) == ["235 2.7.0 Authentication successful", "250 2.0.0 Ok"])
        #expect(client.send("AUTH PLAIN \(smtpTestBase64("\0clinic-relay\0s3cret"))\r\n") == ["503 5.5.1 Error: already authenticated"])
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nRCPT TO:<a@clinic.example>\r\nDATA\r\n.\r\n")
                == ["250 2.1.0 Ok", "250 2.1.5 Ok", smtpDataReply, "DELIVER"])
        #expect(client.deliveries.first?.authenticatedUser == "clinic-relay")
        #expect(client.deliveries.first?.tls == true)
    }

    @Test func authPlainWithContinuation() {
        var client = SMTPTestClient(tls: true)
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("auth plain\r\n") == ["334 "])
        // The authorization identity is ignored.
        #expect(client.send("\(smtpTestBase64("admin\0relay\0pw"))\r\n") == ["AUTH(PLAIN,relay,pw)"])
        #expect(client.authenticated(false) == ["535 5.7.8 Authentication credentials invalid"])
        #expect(client.send("AUTH PLAIN \(smtpTestBase64("\0relay\0pw2"))\r\n") == ["AUTH(PLAIN,relay,pw2)"])
        #expect(client.authenticated(true) == ["235 2.7.0 Authentication successful"])
    }

    @Test func authLogin() {
        var client = SMTPTestClient(tls: true)
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("AUTH LOGIN\r\n") == ["334 VXNlcm5hbWU6"])
        #expect(client.send("\(smtpTestBase64("relay"))\r\n") == ["334 UGFzc3dvcmQ6"])
        #expect(client.send("\(smtpTestBase64("pässword"))\r\n") == ["AUTH(LOGIN,relay,pässword)"])
        #expect(client.authenticated(true) == ["235 2.7.0 Authentication successful"])
        // With an initial response (the user name).
        var other = SMTPTestClient(tls: true)
        _ = other.send("EHLO client.example\r\n")
        #expect(other.send("AUTH LOGIN \(smtpTestBase64("relay"))\r\n") == ["334 UGFzc3dvcmQ6"])
        #expect(other.send("\(smtpTestBase64("pw"))\r\n") == ["AUTH(LOGIN,relay,pw)"])
    }

    @Test func authCancelledOrMalformed() {
        var client = SMTPTestClient(smtpTestConfig { $0.maxErrors = 100 }, tls: true)
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("AUTH PLAIN\r\n*\r\n") == ["334 ", "501 5.7.0 Authentication aborted"])
        #expect(client.send("AUTH LOGIN\r\n*\r\n") == ["334 VXNlcm5hbWU6", "501 5.7.0 Authentication aborted"])
        #expect(client.send("AUTH LOGIN\r\n\(smtpTestBase64("relay"))\r\n*\r\n")
                == ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "501 5.7.0 Authentication aborted"])
        #expect(client.send("AUTH PLAIN not*smtpTestBase64\r\n") == ["501 5.5.2 Error: invalid base64 data"])
        #expect(client.send("AUTH PLAIN\r\n%%%%\r\n") == ["334 ", "501 5.5.2 Error: invalid base64 data"])
        #expect(client.send("AUTH PLAIN \(smtpTestBase64("no-separators"))\r\n") == ["501 5.5.2 Error: invalid authentication data"])
        #expect(client.send("AUTH PLAIN \(smtpTestBase64("\0\0pw"))\r\n") == ["501 5.5.2 Error: invalid authentication data"])
        #expect(client.send("AUTH PLAIN =\r\n") == ["501 5.5.2 Error: invalid authentication data"])
        #expect(client.send("AUTH CRAM-MD5\r\n") == ["504 5.5.4 Unrecognized authentication type"])
        #expect(client.send("AUTH\r\n") == ["501 5.5.4 Syntax: AUTH mechanism"])
        // After all that, the session still works.
        #expect(client.send("NOOP\r\n") == ["250 2.0.0 Ok"])
        #expect(client.send("MAIL FROM:<patient@example.org>\r\nAUTH PLAIN\r\n")
                == ["250 2.1.0 Ok", "503 5.5.1 Error: MAIL transaction in progress"])
    }

    @Test func authBeforeTLSOrNotEnabled() {
        var client = SMTPTestClient()
        #expect(client.send("AUTH PLAIN\r\n") == ["503 5.5.1 Error: send HELO/EHLO first"])
        _ = client.send("EHLO client.example\r\n")
        #expect(client.send("AUTH PLAIN \(smtpTestBase64("\0relay\0pw"))\r\n")
                == ["538 5.7.11 Encryption required for requested authentication mechanism"])
        var disabled = SMTPTestClient(smtpTestConfig { $0.authMechanisms = [] }, tls: true)
        _ = disabled.send("EHLO client.example\r\n")
        #expect(disabled.send("AUTH PLAIN\r\n") == ["503 5.5.1 Error: authentication not enabled"])
        // tlsEstablished forgets an earlier authentication (RFC 3207 4.2).
        var reset = SMTPTestClient()
        _ = reset.send("STARTTLS\r\n")
        _ = reset.record(reset.session.tlsEstablished())
        _ = reset.send("EHLO client.example\r\n")
        #expect(reset.send("AUTH PLAIN \(smtpTestBase64("\0relay\0pw"))\r\n") == ["AUTH(PLAIN,relay,pw)"])
    }

    @Test func grammarBase64() {
        let decode = { (text: String) in SMTPServerSession.Grammar.base64Decode(Array(text.utf8)[...]) }
        #expect(decode("") == [])
        #expect(decode("Zg==") == Array("f".utf8))
        #expect(decode("Zg") == Array("f".utf8))
        #expect(decode("Zm8=") == Array("fo".utf8))
        #expect(decode("Zm9v") == Array("foo".utf8))
        #expect(decode("AHJlbGF5AHB3") == [0] + Array("relay".utf8) + [0] + Array("pw".utf8))
        #expect(decode("Zg=") == nil)
        #expect(decode("Z") == nil)
        #expect(decode("Zh==") == nil, "non-zero trailing bits")
        #expect(decode("Zg==Zg==") == nil)
        #expect(decode("Zm9v YmFy") == nil)
        #expect(decode("Zm9v\r\n") == nil)
    }
}
