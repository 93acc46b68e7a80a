import Foundation
import Testing
@testable import SwitchboardCore

/// `JSONValue.parse`: strict RFC 8259, checked against hand-picked cases and, for every input
/// in the wire fuzzer's committed corpus, against Foundation's own parser.
@Suite struct JSONParserTests {
    func parse(_ text: String) throws(JSONParseError) -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    @Test func readsEveryKindOfValue() throws {
        let value = try parse(#" { "s" : "a\"b\\c\/d\b\f\n\r\t" , "n": [0, -7, 12.5, -0.25e2, 1E3, 9223372036854775807, 9223372036854775808],"#
            + #" "t": true, "f": false, "z": null, "o": {"": {}}, "e": [] } "#)
        #expect(value == .object([
            "s": .string("a\"b\\c/d\u{8}\u{C}\n\r\t"),
            "n": .array([.int(0), .int(-7), .number(12.5), .number(-25), .number(1000), .int(.max), .number(9223372036854775808)]),
            "t": .bool(true), "f": .bool(false), "z": .null, "o": .object(["": .object([:])]), "e": .array([]),
        ]))
    }

    @Test func unicodeEscapesAndRawUTF8() throws {
        #expect(try parse(#""\u00f1and\u00FA \ud83d\ude00 \u0000""#) == .string("ñandú 😀 \u{0}"))
        #expect(try parse("\"ñandú 😀\"") == .string("ñandú 😀"))
        // Scalars, not grapheme clusters: "e" + combining acute stays two scalars.
        let combining = try parse(#""e\u0301""#)
        #expect(combining == .string("e\u{301}"))
        if case .string(let text) = combining { #expect(Array(text.unicodeScalars) == ["e", "\u{301}"]) }
    }

    @Test func aRepeatedKeyKeepsItsLastValue() throws {
        #expect(try parse(#"{"a":1,"a":2}"#) == .object(["a": .int(2)]))
    }

    @Test(arguments: [
        "", " ", "{", "}", "[", "]", "[1,]", "[,1]", #"{"a":1,}"#, #"{"a" 1}"#, #"{"a":}"#, "{1:2}", "{'a':1}", "[1 2]",
        "01", "-01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity", "1e999", "-1e999",
        "tru", "nul", "True", "nulll", "\"abc", "\"a\u{01}b\"", "\"tab\there\"", #""\x""#, #""\u12""#, #""\u12G4""#,
        #""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, #""\ud800x""#, "1 2", "{} {}", "[]]", "\u{FEFF}{}",
    ])
    func refuses(text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test func refusesInvalidUTF8InStrings() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xC0, 0xAF, 0x22]] {
            #expect(throws: JSONParseError.self) { try JSONValue.parse(bytes) }
        }
    }

    @Test func nestingIsBounded() throws {
        let deepest = String(repeating: "[", count: JSONValue.maxDepth) + String(repeating: "]", count: JSONValue.maxDepth)
        #expect(throws: Never.self) { try parse(deepest) }
        let tooDeep = String(repeating: "[", count: JSONValue.maxDepth + 1) + String(repeating: "]", count: JSONValue.maxDepth + 1)
        #expect(throws: JSONParseError.self) { try parse(tooDeep) }
        // A stranger's 100,000 brackets are refused, not a stack overflow.
        #expect(throws: JSONParseError.self) { try parse(String(repeating: #"{"a":["#, count: 100_000)) }
    }

    @Test func errorsNameTheOffsetNeverTheContent() {
        do {
            _ = try parse(#"{"my rash is spreading": tru}"#)
            Issue.record("accepted")
        } catch {
            #expect(error.offset == 25)
            #expect(!error.description.contains("rash"))
            #expect(!error.description.contains("tru"))
        }
    }

    @Test(arguments: [
        #"{"a":[1,2.5,"x\n",{"b":null}],"c":true}"#, #"[]"#, #""\u2028</script>""#, #"-0.000125"#, #"{"":""}"#,
    ])
    func whatItWritesReadsBackTheSame(text: String) throws {
        let value = try parse(text)
        #expect(try parse(value.text) == value)
        #expect(try parse(value.text(keyOrder: .typeFirst, escapingHTML: true)) == value)
    }

    /// Every input the wire fuzzer keeps (webhook bodies, forms, chat frames, and whatever it
    /// mutated them into): accepted by this parser exactly when Foundation's parser accepts
    /// it, with the same strings, numbers and structure.
    @Test func agreesWithFoundationOnTheFuzzCorpus() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fuzz/WireFuzz/Corpus").standardized
        let files = try FileManager.default.contentsOfDirectory(at: corpus, includingPropertiesForKeys: nil)
        #expect(files.count > 100)
        var accepted = 0
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: file))
            let ours = try? JSONValue.parse(bytes)
            let theirs = try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)
            if ours != nil { accepted += 1 }
            #expect((ours != nil) == (theirs != nil), "\(file.lastPathComponent): ours \(ours != nil), Foundation \(theirs != nil)")
            if let ours, let theirs {
                #expect(Self.same(ours, theirs), "\(file.lastPathComponent)")
            }
        }
        #expect(accepted > 20)
    }

    static func same(_ ours: JSONValue, _ theirs: Any) -> Bool {
        switch ours {
        case .string(let text): return (theirs as? String) == text
        case .null: return theirs is NSNull
        case .bool(let flag): return (theirs as? Bool) == flag
        case .int(let number): return (theirs as? NSNumber)?.int64Value == number
        case .number(let number): return (theirs as? NSNumber)?.doubleValue == number
        case .array(let elements):
            guard let array = theirs as? [Any], array.count == elements.count else { return false }
            return zip(elements, array).allSatisfy { same($0, $1) }
        case .object(let members):
            guard let object = theirs as? [String: Any], object.count == members.count else { return false }
            return members.allSatisfy { key, value in object[key].map { same(value, $0) } ?? false }
        }
    }
}
