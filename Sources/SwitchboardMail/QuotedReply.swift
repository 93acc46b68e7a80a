// Separating a reply from the history it quotes, so agents see what the patient just wrote.
//
// Trust: none; heuristics over the sender's text. Linear in the number of lines (each
// marker check looks at most a few lines ahead); never throws or traps. When unsure it
// keeps text in the reply: losing a patient's words is worse than showing old ones.

public enum QuotedReply {
    /// Splits `text` at the first marker of quoted history:
    /// - an attribution line "On … wrote:" (also wrapped over two lines, as Gmail does),
    ///   "El … escribió:", "Le … a écrit :", "Em … escreveu:" — containing a digit or "@";
    /// - "-----Original Message-----" / "-----Mensaje original-----" (and French/German/
    ///   Portuguese equivalents);
    /// - Outlook's "________________________________" followed by a From:/De: header block;
    /// - an Outlook header block: From:/De: followed within six lines by Sent:/Date:/
    ///   Enviado:/Fecha: and To:/Para:/Subject:/Asunto:;
    /// - otherwise a trailing block of lines starting with ">".
    /// A forwarding marker ("Begin forwarded message:", "---------- Forwarded message
    /// ---------", their Spanish forms) before any quote ends the search: forwarded content
    /// is part of the reply. The signature stays in the reply. Both parts are trimmed;
    /// `quoted` is nil when no history was found.
    public static func split(_ text: String) -> (reply: String, quoted: String?) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for index in lines.indices where lines[index].last == "\r" {
            lines[index] = lines[index].dropLast()
        }
        let trimmed = lines.map { MIMEByte.trimmed($0) }

        var cut: Int?
        var forwarded = false
        for index in trimmed.indices {
            if isForwardMarker(trimmed[index]) {
                forwarded = true
                break
            }
            if isQuoteStart(trimmed, at: index) {
                cut = index
                break
            }
        }
        if cut == nil, !forwarded {
            cut = trailingQuoteBlock(trimmed)
        }
        guard let cut else { return (MIMEByte.trimmed(text), nil) }
        if trimmed[..<cut].allSatisfy(\.isEmpty), let end = bottomPostedReplyStart(trimmed, quoteStart: cut) {
            // Bottom-posting (Thunderbird's default, mailing-list style): the attribution and
            // the ">" block come first, the patient's words after them.
            let reply = MIMEByte.trimmed(lines[end...].joined(separator: "\n"))
            let quoted = MIMEByte.trimmed(lines[cut..<end].joined(separator: "\n"))
            return (reply, quoted.isEmpty ? nil : quoted)
        }
        let reply = MIMEByte.trimmed(lines[..<cut].joined(separator: "\n"))
        let quoted = MIMEByte.trimmed(lines[cut...].joined(separator: "\n"))
        return (reply, quoted.isEmpty ? nil : quoted)
    }

    // MARK: Markers

    private static let attributions: [(prefix: String, suffixes: [String])] = [
        ("On ", ["wrote:"]),
        ("El ", ["escribió:", "escribio:"]),
        ("Le ", ["a écrit :", "a écrit:", "a ecrit :", "a ecrit:"]),
        ("Em ", ["escreveu:"]),
    ]

    private static let originalMessageTitles: Set<String> = [
        "original message", "mensaje original", "message d'origine", "ursprüngliche nachricht", "mensagem original",
    ]

    private static let forwardMarkers: Set<String> = [
        "begin forwarded message:", "inicio del mensaje reenviado:", "comienzo del mensaje reenviado:",
        "forwarded message", "mensaje reenviado", "message transféré", "mensagem encaminhada",
    ]

    private static func isQuoteStart(_ lines: [String], at index: Int) -> Bool {
        let line = lines[index]
        if isAttribution(line, next: index + 1 < lines.count ? lines[index + 1] : nil) { return true }
        if isOriginalMessageSeparator(line) { return true }
        if line.count >= 20, line.allSatisfy({ $0 == "_" }) {
            // Outlook's separator counts only when a header block follows.
            var next = index + 1
            while next < lines.count, next <= index + 3, lines[next].isEmpty { next += 1 }
            return next < lines.count && isFromLine(lines[next])
        }
        return isOutlookHeaderBlock(lines, at: index)
    }

    private static func isAttribution(_ line: String, next: String?) -> Bool {
        for (prefix, suffixes) in attributions where line.hasPrefix(prefix) {
            var candidates = [line]
            if let next, !next.isEmpty { candidates.append(line + " " + next) }
            for candidate in candidates where candidate.count <= 400 {
                let lowered = candidate.lowercased()
                guard suffixes.contains(where: { lowered.hasSuffix($0) }) else { continue }
                if candidate.contains(where: { $0.isNumber || $0 == "@" }) { return true }
            }
        }
        return false
    }

    private static func isOriginalMessageSeparator(_ line: String) -> Bool {
        guard line.hasPrefix("--"), line.hasSuffix("--") else { return false }
        let title = line.lowercased().trimmingDashesAndSpaces()
        return originalMessageTitles.contains(title)
    }

    private static func isForwardMarker(_ line: String) -> Bool {
        guard !line.isEmpty, line.count <= 80 else { return false }
        let lowered = line.lowercased()
        if forwardMarkers.contains(lowered) { return true }
        // "---------- Forwarded message ---------"
        if lowered.hasPrefix("--") { return forwardMarkers.contains(lowered.trimmingDashesAndSpaces()) }
        return false
    }

    private static func fieldName(_ line: String) -> String? {
        var candidate = Substring(line)
        while candidate.first == "*" { candidate.removeFirst() }
        guard let colon = candidate.firstIndex(of: ":"), candidate.distance(from: candidate.startIndex, to: colon) <= 12 else {
            return nil
        }
        return candidate[..<colon].lowercased()
    }

    private static func isFromLine(_ line: String) -> Bool {
        guard let name = fieldName(line) else { return false }
        return name == "from" || name == "de" || name == "von"
    }

    private static func isOutlookHeaderBlock(_ lines: [String], at index: Int) -> Bool {
        guard isFromLine(lines[index]) else { return false }
        var sawDate = false
        var sawRecipientOrSubject = false
        var next = index + 1
        while next < lines.count, next <= index + 6 {
            if let name = fieldName(lines[next]) {
                switch name {
                case "sent", "date", "enviado", "fecha", "envoyé", "gesendet", "enviada", "data": sawDate = true
                case "to", "cc", "subject", "para", "asunto", "à", "objet", "an", "betreff", "assunto": sawRecipientOrSubject = true
                default: break
                }
            }
            next += 1
        }
        return sawDate && sawRecipientOrSubject
    }

    /// For a quote that starts the text: where the writer's own text begins after the
    /// attribution (one or two lines) and its ">" block, or nil when nothing follows it.
    private static func bottomPostedReplyStart(_ lines: [String], quoteStart: Int) -> Int? {
        var index = quoteStart + 1
        // A wrapped attribution's second line.
        if index < lines.count, !lines[index].isEmpty, !lines[index].hasPrefix(">") { index += 1 }
        var sawQuote = false
        while index < lines.count, lines[index].isEmpty || lines[index].hasPrefix(">") {
            if lines[index].hasPrefix(">") { sawQuote = true }
            index += 1
        }
        return sawQuote && index < lines.count ? index : nil
    }

    /// The start of a final run of ">" lines (blank lines allowed inside it).
    private static func trailingQuoteBlock(_ lines: [String]) -> Int? {
        var last = lines.count - 1
        while last >= 0, lines[last].isEmpty { last -= 1 }
        guard last >= 0, lines[last].hasPrefix(">") else { return nil }
        var first = last
        while first > 0, lines[first - 1].hasPrefix(">") || lines[first - 1].isEmpty { first -= 1 }
        while first < last, lines[first].isEmpty { first += 1 }
        return first
    }
}

private extension String {
    func trimmingDashesAndSpaces() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == "-" || first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last == "-" || last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
