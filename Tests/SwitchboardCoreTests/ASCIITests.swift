import Foundation
import SwitchboardCore
import Testing

@Suite struct ASCIITests {
    /// Every byte value: A–Z become a–z, and nothing else changes (so bytes of multi-byte
    /// UTF-8 sequences, all ≥ 0x80, survive).
    @Test func lowersExactlyTheCapitalLetters() {
        for value in 0...255 {
            let byte = UInt8(value)
            let expected = (65...90).contains(value) ? byte + 32 : byte
            #expect(ASCII.lowercased(byte) == expected, "byte \(value)")
        }
    }

    @Test func foldedTextAgreesWithFoundationOnASCIIAndKeepsOtherUTF8() {
        let text = "Content-Type: APPLICATION/Json; Ünïcode stays É"
        let folded = String(decoding: ASCII.lowercased(text.utf8), as: UTF8.self)
        #expect(folded == "content-type: application/json; Ünïcode stays É")
        let ascii = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        #expect(String(decoding: ASCII.lowercased(ascii.utf8), as: UTF8.self) == ascii.lowercased())
    }

    @Test(arguments: [
        ("application/json", "application/json", true),
        ("Application/JSON", "application/json", true),
        ("MESSAGES", "messages", true),
        ("message", "messages", false),
        ("messages", "message", false),
        ("", "", true),
        ("[essages", "{essages", false),  // 0x5B is not a capital: no +32 to 0x7B
        ("@", "`", false),                // nor is 0x40 (0x60 would be its "lower case")
    ])
    func comparesIgnoringCaseOnlyForLetters(bytes: String, lowercase: String, equal: Bool) {
        #expect(ASCII.equalsIgnoringCase(bytes.utf8, lowercase: lowercase.utf8) == equal)
    }
}
