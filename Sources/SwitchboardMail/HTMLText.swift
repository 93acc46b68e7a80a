// HTML bodies: a plain-text rendering, and an allow-list sanitiser for display.
//
// Trust: none; the HTML is the sender's. The tokenizer follows the HTML5 tokenization rules
// closely enough (tag names, unquoted/quoted attributes, comments, raw-text elements, a tag
// cut off by the end of input is dropped), but safety does not depend on matching a browser
// exactly: the sanitiser never copies markup through. It re-serialises — every tag in its
// output is one it generated from the allow-list, every attribute value is re-escaped,
// every `<`, `>`, `&` of text is escaped — so input the tokenizer misreads can only lose
// or garble text, never produce active content. Linear time; no recursion.

public enum HTMLText {
    // MARK: Plain text

    /// A text rendering: script/style/head (and other non-content elements) and comments
    /// dropped; block elements start new lines, paragraphs are separated by a blank line,
    /// `<br>` is a line break, `<li>` a "- " item, table cells are separated by spaces;
    /// entities decoded; whitespace collapsed outside `<pre>`; trailing spaces and runs of
    /// blank lines removed; the result trimmed.
    public static func plainText(fromHTML html: String) -> String {
        var tokenizer = HTMLTokenizer(Array(html.utf8))
        var renderer = HTMLTextRenderer()
        var skipper = HTMLSkipper()
        while let token = tokenizer.next() {
            if skipper.consume(token) { continue }
            switch token {
            case .text(let range):
                renderer.text(tokenizer.decodedText(range))
            case .startTag(let name, _, let selfClosing):
                if textDropped.contains(name) {
                    if !selfClosing, !voidElements.contains(name) { skipper.start(name) }
                    continue
                }
                switch name {
                case "br": renderer.hardBreak()
                case "li":
                    renderer.softBreak()
                    renderer.literal("- ")
                case "pre":
                    renderer.paragraphBreak()
                    renderer.preDepth += 1
                case "td", "th": renderer.pendingSpace = true
                case _ where paragraphElements.contains(name): renderer.paragraphBreak()
                case _ where blockElements.contains(name): renderer.softBreak()
                default: break
                }
            case .endTag(let name):
                switch name {
                case "pre":
                    renderer.preDepth = max(0, renderer.preDepth - 1)
                    renderer.paragraphBreak()
                case "td", "th": renderer.pendingSpace = true
                case "br": renderer.hardBreak()
                case _ where paragraphElements.contains(name): renderer.paragraphBreak()
                case _ where blockElements.contains(name) || name == "li": renderer.softBreak()
                default: break
                }
            case .comment:
                break
            }
        }
        return renderer.finish()
    }

    // MARK: Sanitiser

    /// An allow-list sanitiser. Kept: p br div span b strong i em u ul ol li blockquote pre
    /// code a table thead tbody tr td th h1–h6 hr; every attribute is removed except `href`
    /// on `<a>` when its scheme is http, https or mailto (checked after entity decoding and
    /// removing whitespace and control characters, as browsers do). `<img>` becomes its alt
    /// text (remote images are tracking pixels). script, style, iframe, object, embed, form,
    /// svg, math (and head, title, template, textarea, select, noembed, noframes, applet)
    /// are removed with their content; comments are removed; text is re-escaped; open
    /// elements are closed at the end; nesting is capped at 64 open elements.
    public static func sanitize(_ html: String) -> String {
        var tokenizer = HTMLTokenizer(Array(html.utf8))
        var out: [UInt8] = []
        out.reserveCapacity(html.utf8.count)
        var open: [String] = []
        var skipper = HTMLSkipper()
        while let token = tokenizer.next() {
            if skipper.consume(token) { continue }
            switch token {
            case .text(let range):
                escapeText(tokenizer.decodedText(range), into: &out)
            case .startTag(let name, let attributes, let selfClosing):
                if sanitizeDropped.contains(name) {
                    if !selfClosing, !voidElements.contains(name) { skipper.start(name) }
                    continue
                }
                if name == "img" {
                    if let alt = attributes.first(where: { $0.name == "alt" })?.value {
                        escapeText(Array(MIMEByte.trimmed(alt).utf8), into: &out)
                    }
                    continue
                }
                guard allowedElements.contains(name) else { continue }
                if name == "br" || name == "hr" {
                    out.append(contentsOf: Array("<\(name)>".utf8))
                    continue
                }
                guard open.count < 64 else { continue }
                out.append(contentsOf: Array("<\(name)".utf8))
                if name == "a", let href = attributes.first(where: { $0.name == "href" })?.value, let safe = safeHref(href) {
                    out.append(contentsOf: Array(" href=\"".utf8))
                    escapeAttribute(safe, into: &out)
                    out.append(MIMEByte.quote)
                }
                out.append(MIMEByte.greaterThan)
                open.append(name)
            case .endTag(let name):
                guard let position = open.lastIndex(of: name) else { continue }
                while open.count > position {
                    out.append(contentsOf: Array("</\(open.removeLast())>".utf8))
                }
            case .comment:
                break
            }
        }
        while let name = open.popLast() {
            out.append(contentsOf: Array("</\(name)>".utf8))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The URL when its scheme is http, https or mailto: ASCII tab and newlines removed and
    /// leading/trailing C0 controls and spaces trimmed (what a browser's URL parser does);
    /// any other control character, or no scheme (a relative URL), rejects it.
    static func safeHref(_ value: String) -> String? {
        var scalars = Array(value.unicodeScalars.filter { $0 != "\t" && $0 != "\n" && $0 != "\r" })
        while let first = scalars.first, first.value <= 0x20 { scalars.removeFirst() }
        while let last = scalars.last, last.value <= 0x20 { scalars.removeLast() }
        guard !scalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }),
              let colon = scalars.firstIndex(of: ":") else { return nil }
        let scheme = String(String.UnicodeScalarView(scalars[..<colon])).lowercased()
        guard ["http", "https", "mailto"].contains(scheme) else { return nil }
        return String(String.UnicodeScalarView(scalars))
    }

    private static func escapeText(_ bytes: [UInt8], into out: inout [UInt8]) {
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "&"): out.append(contentsOf: Array("&amp;".utf8))
            case UInt8(ascii: "<"): out.append(contentsOf: Array("&lt;".utf8))
            case UInt8(ascii: ">"): out.append(contentsOf: Array("&gt;".utf8))
            case 0: break
            default: out.append(byte)
            }
        }
    }

    private static func escapeAttribute(_ value: String, into out: inout [UInt8]) {
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "&"): out.append(contentsOf: Array("&amp;".utf8))
            case UInt8(ascii: "<"): out.append(contentsOf: Array("&lt;".utf8))
            case UInt8(ascii: ">"): out.append(contentsOf: Array("&gt;".utf8))
            case UInt8(ascii: "\""): out.append(contentsOf: Array("&quot;".utf8))
            case UInt8(ascii: "'"): out.append(contentsOf: Array("&#39;".utf8))
            default: out.append(byte)
            }
        }
    }

    // MARK: Element sets

    static let allowedElements: Set<String> = [
        "p", "br", "div", "span", "b", "strong", "i", "em", "u", "ul", "ol", "li", "blockquote", "pre", "code", "a",
        "table", "thead", "tbody", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "img",
    ]
    /// Removed with their content by the sanitiser.
    static let sanitizeDropped: Set<String> = [
        "script", "style", "iframe", "object", "embed", "form", "svg", "math",
        "head", "title", "template", "textarea", "select", "noembed", "noframes", "applet", "frameset", "frame",
    ]
    /// Removed with their content by the text rendering.
    static let textDropped: Set<String> = [
        "script", "style", "head", "title", "template", "iframe", "object", "embed", "svg", "math",
        "noembed", "noframes", "applet", "select", "frameset", "frame",
    ]
    static let voidElements: Set<String> = [
        "area", "base", "br", "col", "embed", "frame", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
    ]
    static let paragraphElements: Set<String> = [
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "dl", "table",
    ]
    static let blockElements: Set<String> = [
        "div", "tr", "section", "article", "header", "footer", "nav", "aside", "main", "address", "figure",
        "figcaption", "form", "fieldset", "center", "dt", "dd", "caption", "details", "summary", "hr", "body", "html",
        "thead", "tbody", "tfoot",
    ]
}

// MARK: - Skipping elements with their content

/// Tracks an element being removed with its content (nested same-name elements counted).
struct HTMLSkipper {
    private var name: String?
    private var depth = 0

    mutating func start(_ element: String) {
        name = element
        depth = 1
    }

    /// True when the token belongs to a skipped element (and is consumed).
    mutating func consume(_ token: HTMLTokenizer.Token) -> Bool {
        guard let skipped = name else { return false }
        switch token {
        case .startTag(let element, _, let selfClosing):
            if element == skipped, !selfClosing {
                depth += 1
            } else if skipped == "head", element == "body" {
                // A missing </head>: the body still starts.
                name = nil
                return false
            }
        case .endTag(let element):
            if element == skipped {
                depth -= 1
                if depth == 0 { name = nil }
            }
        case .text, .comment:
            break
        }
        return true
    }
}

// MARK: - Text rendering

struct HTMLTextRenderer {
    private var out: [UInt8] = []
    var pendingSpace = false
    var preDepth = 0

    private var atLineStart: Bool { out.isEmpty || out.last == MIMEByte.lf }

    mutating func text(_ bytes: [UInt8]) {
        for byte in bytes {
            if preDepth > 0 {
                if byte != MIMEByte.cr { out.append(byte) }
                continue
            }
            if MIMEByte.isSpace(byte) {
                pendingSpace = true
                continue
            }
            if pendingSpace, !atLineStart, out.last != MIMEByte.space { out.append(MIMEByte.space) }
            pendingSpace = false
            out.append(byte)
        }
    }

    mutating func literal(_ text: String) {
        pendingSpace = false
        out.append(contentsOf: Array(text.utf8))
    }

    mutating func softBreak() {
        pendingSpace = false
        if !atLineStart { out.append(MIMEByte.lf) }
    }

    mutating func paragraphBreak() {
        softBreak()
        guard !out.isEmpty else { return }
        if out.count < 2 || out[out.count - 2] != MIMEByte.lf { out.append(MIMEByte.lf) }
    }

    mutating func hardBreak() {
        pendingSpace = false
        out.append(MIMEByte.lf)
    }

    /// NBSP → space, trailing spaces cut, at most one blank line in a row, trimmed.
    mutating func finish() -> String {
        var result: [UInt8] = []
        result.reserveCapacity(out.count)
        var blankLines = 0
        for line in out.split(separator: MIMEByte.lf, omittingEmptySubsequences: false) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(line.count)
            var index = line.startIndex
            while index < line.endIndex {
                if line[index] == 0xC2, index + 1 < line.endIndex, line[index + 1] == 0xA0 {
                    bytes.append(MIMEByte.space)
                    index += 2
                } else {
                    bytes.append(line[index])
                    index += 1
                }
            }
            while let last = bytes.last, last == MIMEByte.space || last == MIMEByte.tab { bytes.removeLast() }
            if bytes.isEmpty {
                blankLines += 1
                continue
            }
            if !result.isEmpty {
                result.append(MIMEByte.lf)
                if blankLines > 0 { result.append(MIMEByte.lf) }
            }
            blankLines = 0
            result.append(contentsOf: bytes)
        }
        return MIMEByte.trimmed(String(decoding: result, as: UTF8.self))
    }
}

// MARK: - Tokenizer

struct HTMLTokenizer {
    enum Token {
        /// Raw text (entities not yet decoded).
        case text(Range<Int>)
        /// Lower-cased name; attribute names lower-cased, values entity-decoded, first wins.
        case startTag(name: String, attributes: [(name: String, value: String)], selfClosing: Bool)
        case endTag(name: String)
        case comment
    }

    let bytes: [UInt8]
    private var index = 0
    /// Inside a raw-text element: text runs to `</name`.
    private var rawTextEnd: [UInt8]?
    private var plaintext = false

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    private static let rawTextElements: Set<String> = [
        "script", "style", "xmp", "iframe", "noembed", "noframes", "textarea", "title",
    ]

    mutating func next() -> Token? {
        let count = bytes.count
        guard index < count else { return nil }
        if plaintext {
            defer { index = count }
            return .text(index..<count)
        }
        if let endName = rawTextEnd {
            rawTextEnd = nil
            let start = index
            var cursor = index
            while cursor < count {
                if bytes[cursor] == MIMEByte.lessThan, cursor + 1 < count, bytes[cursor + 1] == UInt8(ascii: "/"),
                   matchesName(endName, at: cursor + 2) {
                    let after = cursor + 2 + endName.count
                    if after >= count || MIMEByte.isSpace(bytes[after]) || bytes[after] == UInt8(ascii: "/")
                        || bytes[after] == MIMEByte.greaterThan { break }
                }
                cursor += 1
            }
            index = cursor
            if cursor > start { return .text(start..<cursor) }
            guard index < count else { return nil }
        }

        let start = index
        guard bytes[index] == MIMEByte.lessThan else {
            var cursor = index + 1
            while cursor < count, bytes[cursor] != MIMEByte.lessThan { cursor += 1 }
            index = cursor
            return .text(start..<cursor)
        }
        guard index + 1 < count else {
            index = count
            return .text(start..<count)
        }
        let next = bytes[index + 1]
        if Self.isAlpha(next) {
            return startTag()
        }
        if next == UInt8(ascii: "/") {
            guard index + 2 < count else {
                index = count
                return .text(start..<count)
            }
            if Self.isAlpha(bytes[index + 2]) { return endTag() }
            if bytes[index + 2] == MIMEByte.greaterThan {
                index += 3
                return .comment
            }
            return bogusComment(from: index + 2)
        }
        if next == UInt8(ascii: "!") {
            if index + 3 < count, bytes[index + 2] == MIMEByte.dash, bytes[index + 3] == MIMEByte.dash {
                return comment(from: index + 4)
            }
            return bogusComment(from: index + 2)
        }
        if next == MIMEByte.question {
            return bogusComment(from: index + 1)
        }
        index += 1
        return .text(start..<index)
    }

    private mutating func startTag() -> Token? {
        var cursor = index + 1
        let name = readTagName(&cursor)
        guard let (attributes, selfClosing, end) = readAttributes(from: cursor) else {
            // The end of input inside a tag: the tag is dropped (HTML5 §13.2.5).
            index = bytes.count
            return nil
        }
        index = end
        if name == "plaintext" {
            plaintext = true
        } else if Self.rawTextElements.contains(name) {
            rawTextEnd = Array(name.utf8)
        }
        return .startTag(name: name, attributes: attributes, selfClosing: selfClosing)
    }

    private mutating func endTag() -> Token? {
        var cursor = index + 2
        let name = readTagName(&cursor)
        guard let (_, _, end) = readAttributes(from: cursor) else {
            index = bytes.count
            return nil
        }
        index = end
        return .endTag(name: name)
    }

    private mutating func comment(from start: Int) -> Token {
        let count = bytes.count
        // "<!-->" and "<!--->" are complete (empty) comments.
        if start < count, bytes[start] == MIMEByte.greaterThan {
            index = start + 1
            return .comment
        }
        if start + 1 < count, bytes[start] == MIMEByte.dash, bytes[start + 1] == MIMEByte.greaterThan {
            index = start + 2
            return .comment
        }
        var cursor = start
        while cursor + 2 < count {
            if bytes[cursor] == MIMEByte.dash, bytes[cursor + 1] == MIMEByte.dash {
                if bytes[cursor + 2] == MIMEByte.greaterThan {
                    index = cursor + 3
                    return .comment
                }
                if bytes[cursor + 2] == UInt8(ascii: "!"), cursor + 3 < count, bytes[cursor + 3] == MIMEByte.greaterThan {
                    index = cursor + 4
                    return .comment
                }
            }
            cursor += 1
        }
        index = count
        return .comment
    }

    private mutating func bogusComment(from start: Int) -> Token {
        var cursor = start
        while cursor < bytes.count, bytes[cursor] != MIMEByte.greaterThan { cursor += 1 }
        index = min(cursor + 1, bytes.count)
        return .comment
    }

    private func readTagName(_ cursor: inout Int) -> String {
        let start = cursor
        while cursor < bytes.count {
            let byte = bytes[cursor]
            if MIMEByte.isSpace(byte) || byte == UInt8(ascii: "/") || byte == MIMEByte.greaterThan { break }
            cursor += 1
        }
        return String(decoding: bytes[start..<cursor].map(MIMEByte.lower), as: UTF8.self)
    }

    /// Attributes up to and including the closing `>`; nil at the end of input.
    private func readAttributes(from start: Int) -> (attributes: [(name: String, value: String)], selfClosing: Bool, end: Int)? {
        let count = bytes.count
        var cursor = start
        var attributes: [(name: String, value: String)] = []
        while true {
            while cursor < count, MIMEByte.isSpace(bytes[cursor]) { cursor += 1 }
            guard cursor < count else { return nil }
            let byte = bytes[cursor]
            if byte == MIMEByte.greaterThan { return (attributes, false, cursor + 1) }
            if byte == UInt8(ascii: "/") {
                if cursor + 1 < count, bytes[cursor + 1] == MIMEByte.greaterThan { return (attributes, true, cursor + 2) }
                cursor += 1
                continue
            }
            let nameStart = cursor
            cursor += 1
            while cursor < count {
                let inner = bytes[cursor]
                if MIMEByte.isSpace(inner) || inner == UInt8(ascii: "/") || inner == MIMEByte.greaterThan || inner == MIMEByte.equals { break }
                cursor += 1
            }
            let name = String(decoding: bytes[nameStart..<cursor].map(MIMEByte.lower), as: UTF8.self)
            while cursor < count, MIMEByte.isSpace(bytes[cursor]) { cursor += 1 }
            var value = ""
            if cursor < count, bytes[cursor] == MIMEByte.equals {
                cursor += 1
                while cursor < count, MIMEByte.isSpace(bytes[cursor]) { cursor += 1 }
                guard cursor < count else { return nil }
                let quote = bytes[cursor]
                if quote == MIMEByte.quote || quote == MIMEByte.apostrophe {
                    let valueStart = cursor + 1
                    var close = valueStart
                    while close < count, bytes[close] != quote { close += 1 }
                    guard close < count else { return nil }
                    value = decodedString(valueStart..<close, inAttribute: true)
                    cursor = close + 1
                } else {
                    let valueStart = cursor
                    while cursor < count, !MIMEByte.isSpace(bytes[cursor]), bytes[cursor] != MIMEByte.greaterThan { cursor += 1 }
                    value = decodedString(valueStart..<cursor, inAttribute: true)
                }
            }
            if attributes.count < 64, !attributes.contains(where: { $0.name == name }) {
                attributes.append((name, value))
            }
        }
    }

    private func matchesName(_ name: [UInt8], at start: Int) -> Bool {
        guard start + name.count <= bytes.count else { return false }
        for (offset, byte) in name.enumerated() where MIMEByte.lower(bytes[start + offset]) != byte { return false }
        return true
    }

    private static func isAlpha(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isAlpha(byte) || (0x30...0x39).contains(byte)
    }

    // MARK: Character references

    func decodedText(_ range: Range<Int>) -> [UInt8] {
        decode(range, inAttribute: false)
    }

    private func decodedString(_ range: Range<Int>, inAttribute: Bool) -> String {
        String(decoding: decode(range, inAttribute: inAttribute), as: UTF8.self)
    }

    /// Named (`&amp;`, the Latin-1 set, a few typographic ones) and numeric (`&#NN;`,
    /// `&#xHH;`, the `;` optional) references decoded; anything unknown stays literal.
    private func decode(_ range: Range<Int>, inAttribute: Bool) -> [UInt8] {
        guard bytes[range].contains(UInt8(ascii: "&")) else { return Array(bytes[range]) }
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var cursor = range.lowerBound
        let end = range.upperBound
        while cursor < end {
            let byte = bytes[cursor]
            guard byte == UInt8(ascii: "&"), let (scalar, next) = reference(at: cursor, end: end, inAttribute: inAttribute) else {
                out.append(byte)
                cursor += 1
                continue
            }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
            cursor = next
        }
        return out
    }

    private func reference(at start: Int, end: Int, inAttribute: Bool) -> (Unicode.Scalar, Int)? {
        var cursor = start + 1
        guard cursor < end else { return nil }
        if bytes[cursor] == UInt8(ascii: "#") {
            cursor += 1
            var radix: UInt32 = 10
            if cursor < end, MIMEByte.lower(bytes[cursor]) == UInt8(ascii: "x") {
                radix = 16
                cursor += 1
            }
            let digitsStart = cursor
            var value: UInt32 = 0
            while cursor < end, let digit = MIMEByte.hex(bytes[cursor]), UInt32(digit) < radix {
                value = min(value * radix + UInt32(digit), 0x110000)
                cursor += 1
            }
            guard cursor > digitsStart else { return nil }
            if cursor < end, bytes[cursor] == MIMEByte.semicolon { cursor += 1 }
            return (Self.numericScalar(value), cursor)
        }
        let nameStart = cursor
        while cursor < end, cursor - nameStart < 32, Self.isAlphanumeric(bytes[cursor]) { cursor += 1 }
        guard cursor > nameStart else { return nil }
        let name = String(decoding: bytes[nameStart..<cursor], as: UTF8.self)
        guard let value = Self.entities[name], let scalar = Unicode.Scalar(value) else { return nil }
        if cursor < end, bytes[cursor] == MIMEByte.semicolon { return (scalar, cursor + 1) }
        // Legacy references without ";" (not in attributes before an alphanumeric or "=").
        guard Self.legacyEntities.contains(name) else { return nil }
        if inAttribute, cursor < end, Self.isAlphanumeric(bytes[cursor]) || bytes[cursor] == MIMEByte.equals { return nil }
        return (scalar, cursor)
    }

    /// HTML5's numeric reference rules: NUL, surrogates and out-of-range → U+FFFD;
    /// 0x80–0x9F → windows-1252.
    private static func numericScalar(_ value: UInt32) -> Unicode.Scalar {
        let replacement = Unicode.Scalar(0xFFFD as UInt32)!
        if value == 0 { return replacement }
        if (0x80...0x9F).contains(value) {
            return Unicode.Scalar(UInt32(MIMECharset.windows1252C1[Int(value) - 0x80])) ?? replacement
        }
        return Unicode.Scalar(value) ?? replacement
    }

    private static let legacyEntities: Set<String> = ["amp", "lt", "gt", "quot", "nbsp", "copy", "reg", "AMP", "LT", "GT", "QUOT"]

    private static let entities: [String: UInt32] = [
        "amp": 0x26, "lt": 0x3C, "gt": 0x3E, "quot": 0x22, "apos": 0x27, "AMP": 0x26, "LT": 0x3C, "GT": 0x3E, "QUOT": 0x22,
        "nbsp": 0xA0, "iexcl": 0xA1, "cent": 0xA2, "pound": 0xA3, "curren": 0xA4, "yen": 0xA5, "brvbar": 0xA6, "sect": 0xA7,
        "uml": 0xA8, "copy": 0xA9, "ordf": 0xAA, "laquo": 0xAB, "not": 0xAC, "shy": 0xAD, "reg": 0xAE, "macr": 0xAF,
        "deg": 0xB0, "plusmn": 0xB1, "sup2": 0xB2, "sup3": 0xB3, "acute": 0xB4, "micro": 0xB5, "para": 0xB6, "middot": 0xB7,
        "cedil": 0xB8, "sup1": 0xB9, "ordm": 0xBA, "raquo": 0xBB, "frac14": 0xBC, "frac12": 0xBD, "frac34": 0xBE, "iquest": 0xBF,
        "Agrave": 0xC0, "Aacute": 0xC1, "Acirc": 0xC2, "Atilde": 0xC3, "Auml": 0xC4, "Aring": 0xC5, "AElig": 0xC6, "Ccedil": 0xC7,
        "Egrave": 0xC8, "Eacute": 0xC9, "Ecirc": 0xCA, "Euml": 0xCB, "Igrave": 0xCC, "Iacute": 0xCD, "Icirc": 0xCE, "Iuml": 0xCF,
        "ETH": 0xD0, "Ntilde": 0xD1, "Ograve": 0xD2, "Oacute": 0xD3, "Ocirc": 0xD4, "Otilde": 0xD5, "Ouml": 0xD6, "times": 0xD7,
        "Oslash": 0xD8, "Ugrave": 0xD9, "Uacute": 0xDA, "Ucirc": 0xDB, "Uuml": 0xDC, "Yacute": 0xDD, "THORN": 0xDE, "szlig": 0xDF,
        "agrave": 0xE0, "aacute": 0xE1, "acirc": 0xE2, "atilde": 0xE3, "auml": 0xE4, "aring": 0xE5, "aelig": 0xE6, "ccedil": 0xE7,
        "egrave": 0xE8, "eacute": 0xE9, "ecirc": 0xEA, "euml": 0xEB, "igrave": 0xEC, "iacute": 0xED, "icirc": 0xEE, "iuml": 0xEF,
        "eth": 0xF0, "ntilde": 0xF1, "ograve": 0xF2, "oacute": 0xF3, "ocirc": 0xF4, "otilde": 0xF5, "ouml": 0xF6, "divide": 0xF7,
        "oslash": 0xF8, "ugrave": 0xF9, "uacute": 0xFA, "ucirc": 0xFB, "uuml": 0xFC, "yacute": 0xFD, "thorn": 0xFE, "yuml": 0xFF,
        "euro": 0x20AC, "ndash": 0x2013, "mdash": 0x2014, "lsquo": 0x2018, "rsquo": 0x2019, "sbquo": 0x201A, "ldquo": 0x201C,
        "rdquo": 0x201D, "bdquo": 0x201E, "hellip": 0x2026, "bull": 0x2022, "trade": 0x2122, "dagger": 0x2020, "Dagger": 0x2021,
        "permil": 0x2030, "lsaquo": 0x2039, "rsaquo": 0x203A, "oelig": 0x0153, "OElig": 0x0152, "scaron": 0x0161,
        "Scaron": 0x0160, "Yuml": 0x0178, "fnof": 0x0192, "circ": 0x02C6, "tilde": 0x02DC, "ensp": 0x2002, "emsp": 0x2003,
        "thinsp": 0x2009, "zwnj": 0x200C, "zwj": 0x200D, "lrm": 0x200E, "rlm": 0x200F, "minus": 0x2212, "larr": 0x2190,
        "rarr": 0x2192, "uarr": 0x2191, "darr": 0x2193, "prime": 0x2032, "Prime": 0x2033, "hearts": 0x2665,
    ]
}
