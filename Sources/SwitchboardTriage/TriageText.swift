import Foundation

/// Turning a message into what the models and rules read: the new text without quoted
/// history or signature boilerplate, lower-cased and accent-folded, split into clauses and
/// tokens.
public enum TriageText {
    /// The part of a message the patient just wrote: the subject (if any) and the body up to
    /// the first quoted-history marker, without "> " lines and phone-signature lines.
    public static func newText(subject: String?, text: String) -> String {
        var kept: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = trimmingWhitespace(line)
            let lower = trimmed.lowercased()
            if isHistoryMarker(lower) { break }
            if trimmed.hasPrefix(">") { continue }
            if lower.hasPrefix("sent from my") || lower.hasPrefix("enviado desde mi") || lower.hasPrefix("get outlook for") { continue }
            kept.append(line)
        }
        let body = kept.joined(separator: "\n")
        if let subject, !subject.isEmpty { return subject + "\n" + body }
        return body
    }

    /// `line` without the spaces and tabs at either end: what Foundation's
    /// `trimmingCharacters(in: .whitespaces)` removes here (tab, the Unicode space separators
    /// and, in this Foundation, the zero-width space; not line breaks), on scalars, without
    /// bridging each line to NSString.
    static func trimmingWhitespace(_ line: Substring) -> String {
        func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
            scalar == " " || scalar == "\t"
                || (scalar.value >= 0x80 && (scalar == "\u{200B}" || scalar.properties.generalCategory == .spaceSeparator))
        }
        var scalars = line.unicodeScalars[...]
        while let first = scalars.first, isWhitespace(first) { scalars = scalars.dropFirst() }
        while let last = scalars.last, isWhitespace(last) { scalars = scalars.dropLast() }
        return String(String.UnicodeScalarView(scalars))
    }

    static func isHistoryMarker(_ lower: String) -> Bool {
        if lower.hasPrefix("-----original message") || lower.hasPrefix("-----mensaje original") { return true }
        if lower.hasPrefix("from:") && lower.count > 5 { return true }
        if lower.hasPrefix("de:") && lower.contains("@") { return true }
        if (lower.hasPrefix("on ") && lower.hasSuffix("wrote:")) || (lower.hasPrefix("el ") && lower.hasSuffix("escribió:")) { return true }
        return false
    }

    /// Lower-case, accents removed ("dolor de pecho" matches "dolór"), ASCII-ish.
    public static func fold(_ text: String) -> String {
        var output = String.UnicodeScalarView()
        for scalar in text.lowercased().unicodeScalars {
            switch scalar {
            case "á", "à", "â", "ä", "ã": output.append("a")
            case "é", "è", "ê", "ë": output.append("e")
            case "í", "ì", "î", "ï": output.append("i")
            case "ó", "ò", "ô", "ö", "õ": output.append("o")
            case "ú", "ù", "û", "ü": output.append("u")
            case "ñ": output.append("n")
            case "ç": output.append("c")
            case "’", "‘", "`": output.append("'")
            default: output.append(scalar)
            }
        }
        return String(output)
    }

    /// Clauses: split on sentence punctuation, line breaks and "but"/"pero", each a list of
    /// word tokens (letters and digits; an apostrophe joins: "can't" → "cant").
    public static func clauses(_ folded: String) -> [[String]] {
        var clauses: [[String]] = []
        var current: [String] = []
        var word = ""
        func endWord() {
            if !word.isEmpty {
                if word == "but" || word == "pero" || word == "however" || word == "aunque" {
                    if !current.isEmpty { clauses.append(current) }
                    current = []
                } else {
                    current.append(word)
                }
                word = ""
            }
        }
        for character in folded {
            if character.isLetter || character.isNumber {
                word.append(character)
            } else if character == "'" {
                continue
            } else {
                endWord()
                if ".!?;\n,:()".contains(character) {
                    if !current.isEmpty { clauses.append(current) }
                    current = []
                }
            }
        }
        endWord()
        if !current.isEmpty { clauses.append(current) }
        return clauses
    }

    /// Sparse features for the learned models: words, word pairs, and character 4-grams of
    /// longer words (robust to typos), plus the channel. Values are 1 per feature present,
    /// L2-normalised.
    public static func features(channel: String?, folded: String) -> [String: Double] {
        features(channel: channel, clauses: clauses(folded))
    }

    /// The same, from the clauses of the folded text (`clauses`), which the classifier also
    /// reads: split once.
    static func features(channel: String?, clauses: [[String]]) -> [String: Double] {
        var counts: [String: Double] = [:]
        // About a word, a pair and a few 4-grams per token: grown once, not rehashed as it fills.
        counts.reserveCapacity(clauses.reduce(1) { $0 + $1.count * 6 })
        for clause in clauses {
            let words = clause.map { $0.allSatisfy(\.isNumber) ? "<num>" : $0 }
            for (index, word) in words.enumerated() {
                counts["w:" + word, default: 0] = 1
                if index + 1 < words.count {
                    counts["b:" + word + "_" + words[index + 1], default: 0] = 1
                }
                if word.count >= 5 {
                    // Each 4-gram is a slice of the padded word between Character boundaries,
                    // appended to the key as UTF-8 (not a String built Character by Character).
                    let padded = "#" + word + "#"
                    let boundaries = Array(padded.indices) + [padded.endIndex]
                    for start in 0...(boundaries.count - 5) {
                        var key = "c:"
                        key += padded[boundaries[start]..<boundaries[start + 4]]
                        counts[key, default: 0] = 1
                    }
                }
            }
        }
        if let channel { counts["ch:" + channel] = 1 }
        let norm = counts.values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0 else { return counts }
        return counts.mapValues { $0 / norm }
    }
}
