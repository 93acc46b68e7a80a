/// The compliance keywords of SMS (CTIA / carrier rules, as Twilio applies them): a message
/// whose whole text, trimmed and case-folded, is one of these words opts the number out, back
/// in, or asks for help. "Stop calling me about billing" is a message, not a keyword.
public enum OptOutKeyword: String, Sendable, Equatable, CaseIterable {
    case stop, start, help

    public static let stopWords: Set<String> = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ALTO", "PARAR"]
    public static let startWords: Set<String> = ["START", "UNSTOP", "YES", "COMENZAR"]
    public static let helpWords: Set<String> = ["HELP", "INFO", "AYUDA"]

    /// The keyword a message is, with the word as written (upper-cased) for the consent record.
    public static func classify(_ text: String) -> (keyword: OptOutKeyword, word: String)? {
        var word = text.unicodeScalars.filter { !$0.properties.isWhitespace }.map(String.init).joined()
        while let last = word.last, ".!¡?¿".contains(last) { word.removeLast() }
        while let first = word.first, "¡¿".contains(first) { word.removeFirst() }
        word = word.uppercased()
        guard !word.isEmpty, word.count <= 16, text.split(whereSeparator: \.isWhitespace).count == 1 else { return nil }
        if stopWords.contains(word) { return (.stop, word) }
        if startWords.contains(word) { return (.start, word) }
        if helpWords.contains(word) { return (.help, word) }
        return nil
    }
}
