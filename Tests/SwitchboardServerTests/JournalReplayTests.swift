import Testing
@testable import SwitchboardServer

/// Kannel's journal form (the query without the secret; for a POST, a newline and the body)
/// parses back to the text the live path stored.
@Suite struct JournalReplayTests {
    @Test func kannelQueryAndPostBodies() {
        #expect(JournalReplay.kannelText(Array("id=7&from=%2B15550100&text=hola%20a%20todos&coding=0".utf8)) == "hola a todos")
        // UCS-2 (coding=2): UTF-16BE bytes, percent-encoded.
        #expect(JournalReplay.kannelText(Array("id=7&text=%00h%00%E9&coding=2".utf8)) == "hé")
        // A POST: the text is the body after the newline, in the query's charset.
        #expect(JournalReplay.kannelText(Array("id=7&charset=ISO-8859-1&coding=0".utf8) + [0x0A, 0x63, 0x61, 0x66, 0xE9]) == "café")
        #expect(JournalReplay.kannelText(Array("id=7&from=x".utf8)) == nil)  // no text at all
    }
}
