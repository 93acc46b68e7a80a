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
            let trimmed = line.trimmingCharacters(in: .whitespaces)
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
        var counts: [String: Double] = [:]
        let clauses = clauses(folded)
        for clause in clauses {
            for (index, token) in clause.enumerated() {
                let word = token.allSatisfy(\.isNumber) ? "<num>" : token
                counts["w:" + word, default: 0] = 1
                if index + 1 < clause.count {
                    let next = clause[index + 1].allSatisfy(\.isNumber) ? "<num>" : clause[index + 1]
                    counts["b:" + word + "_" + next, default: 0] = 1
                }
                if word.count >= 5 {
                    let characters = Array("#" + word + "#")
                    for start in 0...(characters.count - 4) {
                        counts["c:" + String(characters[start..<start + 4]), default: 0] = 1
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
