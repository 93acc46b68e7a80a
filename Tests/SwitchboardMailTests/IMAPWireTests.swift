import Testing
@testable import SwitchboardMail

/// The IMAP client's reading of server responses: literals split across reads, limits,
/// tagged completions, and the FETCH, STATUS, SEARCH and SELECT answers Dovecot and others
/// give.
@Suite struct IMAPWireTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Feeds `input` in pieces of `step` bytes, collecting every complete response.
    static func read(_ input: [UInt8], step: Int, reader: IMAPResponseReader = IMAPResponseReader()) throws -> [IMAPServerResponse] {
        var reader = reader
        var out: [IMAPServerResponse] = []
        var index = 0
        while index < input.count {
            reader.append(input[index..<min(index + step, input.count)])
            index += step
            while let response = try reader.next() { out.append(response) }
        }
        return out
    }

    static let dovecotFetch = "* 1 FETCH (UID 7 FLAGS () BODY[] {25}\r\nSubject: x\r\n\r\nhello {5}\r\n)\r\nS3 OK Fetch completed.\r\n"

    @Test(arguments: [1, 2, 3, 7, 64, 4096])
    func literalsSurviveAnySplit(step: Int) throws {
        let responses = try Self.read(Self.bytes(Self.dovecotFetch), step: step)
        #expect(responses.count == 2)
        #expect(responses[0].literals == [Self.bytes("Subject: x\r\n\r\nhello {5}\r\n")])
        #expect(responses[0].line == "* 1 FETCH (UID 7 FLAGS () BODY[] {25})")
        #expect(responses[1].completion(tag: "S3") == "OK")
        #expect(responses[1].completion(tag: "S33") == nil)
        #expect(responses[0].completion(tag: "S3") == nil)
        let fetched = try #require(try IMAPResponses.fetched(responses, uid: 7))
        #expect(fetched.body == Self.bytes("Subject: x\r\n\r\nhello {5}\r\n"))
        #expect(try IMAPResponses.fetched(responses, uid: 8) == nil)
    }

    @Test func bodyAsQuotedStringOrNilAndOtherMessagesPassedOver() throws {
        let input = "* 3 FETCH (FLAGS (\\Seen))\r\n"
            + "* 4 FETCH (UID 12 RFC822.SIZE 5120 BODY[HEADER.FIELDS (FROM)] {3}\r\nab\n INTERNALDATE \"07-Dec-2026 09:00:00 +0000\")\r\n"
            + "* 5 FETCH (UID 13 BODY[] \"a \\\"quoted\\\" body\")\r\n"
            + "* 6 FETCH (UID 14 BODY[] NIL)\r\n"
            + "S9 OK done\r\n"
        let responses = try Self.read(Self.bytes(input), step: 5)
        #expect(responses.count == 5)
        let sized = try #require(try IMAPResponses.fetched(responses, uid: 12))
        #expect(sized.size == 5120)
        #expect(sized.body == nil)
        #expect(try IMAPResponses.fetched(responses, uid: 13)?.body == Self.bytes("a \"quoted\" body"))
        let empty = try #require(try IMAPResponses.fetched(responses, uid: 14))
        #expect(empty.body == nil)
    }

    @Test func malformedFetchIsAnErrorNotATrap() throws {
        for line in ["* 1 FETCH UID 7", "* 1 FETCH (UID 7 BODY[] {3})", "* 1 FETCH (UID 7 BODY[] \"open", "* 1 FETCH (UID 7 FLAGS (a b",
                     "* 1 FETCH (UID 7 BODY[] WORD)"] {
            #expect(throws: IMAPWireError.self) { try IMAPResponses.fetched([IMAPServerResponse(text: Self.bytes(line))], uid: 7) }
        }
    }

    @Test func limitsOnLinesAndLiterals() throws {
        let small = IMAPResponseReader(maxLineBytes: 64, maxLiteralBytes: 10)
        #expect(throws: IMAPWireError.self) { try Self.read(Self.bytes("* " + String(repeating: "x", count: 100) + "\r\n"), step: 7, reader: small) }
        // Without a line end, the limit still holds: the reader does not buffer forever.
        #expect(throws: IMAPWireError.self) { try Self.read(Self.bytes(String(repeating: "y", count: 200)), step: 50, reader: small) }
        #expect(throws: IMAPWireError.self) { try Self.read(Self.bytes("* 1 FETCH (BODY[] {11}\r\n"), step: 100, reader: small) }
        #expect(throws: IMAPWireError.self) { try Self.read(Self.bytes("* 1 FETCH (BODY[] {99999999999999}\r\n"), step: 100) }
        let fits = try Self.read(Self.bytes("* 1 FETCH (UID 1 BODY[] {10}\r\n0123456789)\r\n"), step: 3, reader: small)
        #expect(fits.first?.literals == [Self.bytes("0123456789")])
    }

    @Test func nonSynchronisingAndBareLFLines() throws {
        let responses = try Self.read(Self.bytes("* 1 FETCH (UID 2 BODY[] {2+}\nok)\n* SEARCH 4 5\nS1 OK x\n"), step: 4)
        #expect(responses.count == 3)
        #expect(responses[0].literals == [Self.bytes("ok")])
        #expect(IMAPResponses.searchUIDs(responses) == [4, 5])
    }

    @Test func statusSearchAndSelect() throws {
        let input = "* FLAGS (\\Answered \\Seen)\r\n* 2 EXISTS\r\n* OK [UIDVALIDITY 1796634457] UIDs valid\r\n"
            + "* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 1795941960)\r\n"
            + "* SEARCH 1 2 3\r\n* SEARCH 10\r\nS2 OK [READ-WRITE] Select completed\r\n"
        let responses = try Self.read(Self.bytes(input), step: 11)
        #expect(IMAPResponses.selectedUIDValidity(responses) == 1796634457)
        #expect(IMAPResponses.status(responses) == ["MESSAGES": 2, "UIDNEXT": 3, "UIDVALIDITY": 1795941960])
        #expect(IMAPResponses.searchUIDs(responses) == [1, 2, 3, 10])
        #expect(responses.last?.completion(tag: "S2") == "OK")
        #expect(IMAPResponses.selectedUIDValidity([IMAPServerResponse(text: Self.bytes("* OK [UIDVALIDITY 0] no"))]) == nil)
    }

    @Test func quotingNeverLetsAMailboxNameEndTheCommand() {
        #expect(IMAPSyntax.quoted("INBOX") == "\"INBOX\"")
        #expect(IMAPSyntax.quoted("a\"b\\c") == "\"a\\\"b\\\\c\"")
        #expect(IMAPSyntax.quoted("x\r\nS9 LOGOUT") == "\"xS9 LOGOUT\"")
    }
}
