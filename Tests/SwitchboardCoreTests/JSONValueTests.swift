import Foundation
import Testing
@testable import SwitchboardCore

@Suite struct JSONValueTests {
    @Test func writesSortedCompactDeterministicText() {
        let value = JSONValue.object([
            "zeta": .array([.int(3), .number(0.125), .number(2), .bool(true), .null]),
            "alpha": .object(["b": .string("x"), "a": .string("y")]),
            "Beta": .string("q"),
        ])
        // Keys by UTF-8 bytes: uppercase before lowercase, nested objects sorted too.
        #expect(value.text == #"{"Beta":"q","alpha":{"a":"y","b":"x"},"zeta":[3,0.125,2,true,null]}"#)
        #expect(value.text == value.text)
    }

    @Test func typeFirstOrderAndHTMLEscapingForFrames() {
        let frame = JSONValue.object(["text": "<b>&", "at": "t", "type": "message", "seq": .int(7)])
        #expect(frame.text(keyOrder: .typeFirst, escapingHTML: true)
            == #"{"type":"message","at":"t","seq":7,"text":"\u003cb\u003e\u0026"}"#)
        #expect(frame.text == #"{"at":"t","seq":7,"text":"<b>&","type":"message"}"#)
    }

    @Test func numbersAreValidJSONOnly() {
        #expect(JSONValue.number(1).text == "1")
        #expect(JSONValue.number(-0.0).text == "0")
        #expect(JSONValue.number(0.001).text == "0.001")
        #expect(JSONValue.number(1e300).text == "1e+300")
        #expect(JSONValue.number(.nan).text == "null")
        #expect(JSONValue.number(-.infinity).text == "null")
    }

    /// Whatever the strings hold, the text parses back (with Foundation's own parser) to the
    /// same values: quotes, backslashes, control characters, non-ASCII and `</script>`.
    @Test(arguments: ["plain", "quote \" and \\ backslash", "line\nbreak\ttab\u{01}\u{7F}", "ñandú 😀 \u{2028}", "</script>/"])
    func stringsRoundTripThroughFoundation(text: String) throws {
        let value = JSONValue.object([text: .array([.string(text)]), "k": .string(text)])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(value.text.utf8)) as? [String: Any])
        #expect(parsed["k"] as? String == text)
        #expect(parsed[text] as? [String] == [text])
    }
}

