import Foundation
import Testing
@testable import SwitchboardTriage

/// The classifier's own string helpers against the Foundation calls they replace, which
/// bridged every line and every evidence term to NSString: the same answer on every input
/// that could tell them apart.
@Suite struct TriageTextFoldingTests {
    static let lines: [String] = [
        "", " ", "\t", "plain", "  both ends  ", "\t> quoted\t", "crlf\r", "\r  inner \r", " \u{00A0}nbsp\u{00A0} ",
        "\u{2003}em space\u{2003}", "\u{3000}ideographic\u{3000}", "\u{200B}zero width\u{200B}", "\u{2028}line sep\u{2029}",
        "\u{0085}next line\u{0085}", " e\u{0301} ", "\u{0301} combining first", "tail mark e\u{0301}\u{00A0}", "\u{202F}narrow\u{205F}",
        "\u{1680}ogham\u{180E}", "😀 emoji 😀 ", "\u{000B}vt\u{000C}", "   ", "\t\u{00A0}\u{2003}\u{3000}",
    ]

    /// Every scalar Foundation's `.whitespaces` holds, and only those, is trimmed.
    @Test func trimmingTakesExactlyFoundationsWhitespaceScalars() {
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let line = String(scalar) + "x" + String(scalar)
            let foundation = CharacterSet.whitespaces.contains(scalar)
            if TriageText.trimmingWhitespace(line[...]) != (foundation ? "x" : line) {
                Issue.record("U+\(String(value, radix: 16, uppercase: true)): Foundation trims it: \(foundation)")
            }
        }
    }

    @Test(arguments: lines)
    func trimmingMatchesFoundationWhitespace(line: String) {
        #expect(TriageText.trimmingWhitespace(line[...]) == line.trimmingCharacters(in: .whitespaces))
        // As a line split out of a longer text (a Substring with a non-zero start).
        let text = "x\n" + line + "\ny"
        let middle = text.split(separator: "\n", omittingEmptySubsequences: false)[1]
        #expect(TriageText.trimmingWhitespace(middle) == String(middle).trimmingCharacters(in: .whitespaces))
    }

    @Test(arguments: ["w:refill", "b:chest_pain", "b:a__b_", "b:_", "c:#ref", "c:ef#", "c:##", "c:ñan#", "b:dolo\u{0301}r_de",
                      "ch:portal", "c:e\u{0301}#x", "b:x_\u{0301}y", ""])
    func readableTermsMatchTheFoundationReplacement(feature: String) {
        let body = feature.dropFirst(2)
        let expected: String
        switch feature.prefix(2) {
        case "b:": expected = body.replacingOccurrences(of: "_", with: " ")
        case "c:": expected = body.replacingOccurrences(of: "#", with: "") + "…"
        case "ch": expected = "channel " + feature.dropFirst(3)
        default: expected = String(body)
        }
        #expect(TriageClassifier.readable(feature) == expected)
    }

    /// Character 4-grams of longer words are taken between Character boundaries: a letter
    /// with a combining accent is one character of the gram, as before.
    @Test func fourGramsCountCharactersNotScalars() {
        let features = TriageText.features(channel: nil, clauses: [["cafe\u{0301}s"]])
        let grams = features.keys.filter { $0.hasPrefix("c:") }.sorted()
        // "#cafés#" is seven characters, so four grams.
        #expect(grams == ["c:#caf", "c:afe\u{0301}s", "c:cafe\u{0301}", "c:fe\u{0301}s#"].sorted())
        let norm = 1 / Double(features.count).squareRoot()
        #expect(features.values.allSatisfy { abs($0 - norm) < 1e-12 })
        #expect(features["w:cafe\u{0301}s"] != nil)
    }
}
