// The MIME parser: one raw RFC 5322 / MIME message (bytes as received) in, one `ParsedMail`
// value out. No I/O, no global state, no logging.
//
// Trust: none. The input comes from anyone on the Internet, so nothing in it is believed —
// not lengths, not charsets, not boundaries, not structure. The parser never crashes and
// never throws on malformed input: everything malformed degrades to a best-effort reading
// (a missing boundary makes the body text, an unknown charset yields U+FFFD, a broken
// encoded word stays literal, garbage addresses are skipped). Every dimension is bounded
// by `MIMELimits` — nesting depth, part count, attachment count and size, header section
// size, kept text — and the work is linear in the input (each multipart body is scanned
// once for its boundary; decoders are single-pass), so a hostile message costs no more
// than its size. Nothing derived from message content is ever put into an error string:
// there are no errors, only counters (`droppedAttachments`, `truncatedParts`).

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// MARK: - Public API

public struct MIMELimits: Sendable {
    /// Multipart nesting; deeper multiparts are kept as opaque attachments.
    public var maxDepth: Int = 10
    /// Total parts parsed; the rest are ignored (counted in `ParsedMail.truncatedParts`).
    public var maxParts: Int = 250
    /// Attachments kept; beyond this `droppedAttachments` counts them and no data is kept.
    public var maxAttachments: Int = 20
    /// Decoded attachment size; larger ones keep their metadata, `data == nil`, `oversized`.
    public var maxAttachmentBytes: Int = 10 * 1024 * 1024
    /// Per header section; the rest of a longer section is ignored.
    public var maxHeaderBytes: Int = 256 * 1024
    /// Decoded body text kept (cut on a Character boundary). The HTML body's source is
    /// bounded at four times this.
    public var maxTextBytes: Int = 1024 * 1024

    public init() {}
}

public struct MailAttachment: Sendable, Equatable {
    /// Content-Disposition filename (RFC 2231 or 2047), else Content-Type name; without path
    /// components, control or bidi-override characters, leading dots; ≤ 255 UTF-8 bytes.
    public var filename: String?
    /// Lower-cased type/subtype, e.g. "application/pdf".
    public var contentType: String
    /// Decoded byte count.
    public var size: Int
    public var contentID: String?
    public var isInline: Bool
    /// nil when over `MIMELimits.maxAttachmentBytes`.
    public var data: [UInt8]?
    public var oversized: Bool

    public init(filename: String?, contentType: String, size: Int, contentID: String? = nil, isInline: Bool = false,
                data: [UInt8]?, oversized: Bool = false) {
        self.filename = filename
        self.contentType = contentType
        self.size = size
        self.contentID = contentID
        self.isInline = isInline
        self.data = data
        self.oversized = oversized
    }
}

public struct ParsedMail: Sendable {
    public var headers: MailHeaders
    /// Without angle brackets; nil if absent or empty.
    public var messageID: String?
    public var inReplyTo: [String]
    public var references: [String]
    /// RFC 2047-decoded, unfolded.
    public var subject: String?
    public var from: [MailAddress]
    public var to: [MailAddress]
    public var cc: [MailAddress]
    public var replyTo: [MailAddress]
    public var date: Date?
    /// The body as text (LF line endings): the chosen text/plain part, else the text
    /// rendering of the chosen text/html part; "" if none.
    public var text: String
    /// The sanitised text/html body part, if any.
    public var html: String?
    public var reply: String
    public var quoted: String?
    public var attachments: [MailAttachment]
    public var droppedAttachments: Int
    public var truncatedParts: Int
    public var autoReply: AutoReplyKind?
    public var deliveryReport: DeliveryStatusReport?
}

public enum MIMEParser {
    /// Parses one message. Never fails; see the file header for what is trusted.
    public static func parse(_ raw: [UInt8], limits: MIMELimits = MIMELimits()) -> ParsedMail {
        let limits = MIMEBoundedLimits(limits)
        var tree = MIMETree(raw: raw, limits: limits)
        let root = tree.parseEntity(0..<raw.count, depth: 0, defaultType: "text/plain")
        let headers = tree.nodes[root].headers

        let report = tree.deliveryReport()
        let (plainIndices, htmlIndex) = tree.selectBody(root)

        var text = ""
        var html: String?
        // Several inline text parts (Apple Mail: text, photo, more text) are one body, in order.
        for (number, plainIndex) in plainIndices.enumerated() where text.utf8.count < limits.maxTextBytes {
            if number > 0 && !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
            text += tree.decodeText(plainIndex, limit: limits.maxTextBytes - text.utf8.count)
        }
        if let htmlIndex {
            let source = tree.decodeText(htmlIndex, limit: limits.maxHTMLBytes)
            html = HTMLText.sanitize(source)
            if plainIndices.isEmpty || MIMEByte.trimmed(text).isEmpty {
                text = MIMEText.truncate(HTMLText.plainText(fromHTML: source), maxUTF8: limits.maxTextBytes)
            }
        }
        let bodyParts: Set<Int> = Set(plainIndices + [htmlIndex].compactMap { $0 })
        let (attachments, dropped) = tree.attachments(excluding: bodyParts)
        let split = QuotedReply.split(text)

        let subject = headers["Subject"].map { MIMEText.withoutControls(MailHeaders.decodeEncodedWords($0)) }
        return ParsedMail(
            headers: headers,
            messageID: headers["Message-ID"].flatMap(singleMessageID),
            inReplyTo: headers["In-Reply-To"].map(MailHeaders.messageIDs) ?? [],
            references: headers["References"].map(MailHeaders.messageIDs) ?? [],
            subject: subject.map { MIMEByte.trimmed($0) },
            from: addresses(headers, "From"),
            to: addresses(headers, "To"),
            cc: addresses(headers, "Cc"),
            replyTo: addresses(headers, "Reply-To"),
            date: headers["Date"].flatMap(MailHeaders.parseDate),
            text: text,
            html: html,
            reply: split.reply,
            quoted: split.quoted,
            attachments: attachments,
            droppedAttachments: dropped,
            truncatedParts: tree.truncatedParts,
            autoReply: MailClassification.autoReply(headers, report: report),
            deliveryReport: report
        )
    }

    private static func addresses(_ headers: MailHeaders, _ name: String) -> [MailAddress] {
        headers.all(name).flatMap(MailAddress.parseList)
    }

    private static func singleMessageID(_ value: String) -> String? {
        if let id = MailHeaders.messageIDs(value).first { return id }
        guard !value.contains("<") else { return nil }
        let token = MIMEByte.trimmed(value)
        guard !token.isEmpty, token.utf8.count <= 998, !token.contains(where: \.isWhitespace) else { return nil }
        return token
    }
}

// MARK: - Limits, clamped to sane values

struct MIMEBoundedLimits {
    let maxDepth: Int
    let maxParts: Int
    let maxAttachments: Int
    let maxAttachmentBytes: Int
    let maxHeaderBytes: Int
    let maxTextBytes: Int
    let maxHTMLBytes: Int

    init(_ limits: MIMELimits) {
        // Recursion follows nesting, so the depth is capped whatever the caller asks.
        maxDepth = min(max(limits.maxDepth, 0), 64)
        maxParts = max(limits.maxParts, 0)
        maxAttachments = max(limits.maxAttachments, 0)
        maxAttachmentBytes = max(limits.maxAttachmentBytes, 0)
        maxHeaderBytes = max(limits.maxHeaderBytes, 0)
        maxTextBytes = max(limits.maxTextBytes, 0)
        let (html, overflow) = maxTextBytes.multipliedReportingOverflow(by: 4)
        maxHTMLBytes = overflow ? Int.max : html
    }
}

// MARK: - The part tree

struct MIMENode {
    var headers: MailHeaders
    /// Lower-cased type/subtype.
    var type: String
    var parameters: [String: String]
    var disposition: String?
    var dispositionParameters: [String: String]
    var body: Range<Int>
    var children: [Int] = []
    /// A multipart that was split into `children`.
    var isContainer = false

    var transferEncoding: String {
        headers["Content-Transfer-Encoding"].map { MIMEFieldValue.parse($0).value } ?? ""
    }
}

struct MIMETree {
    let raw: [UInt8]
    let limits: MIMEBoundedLimits
    /// In document order (pre-order).
    var nodes: [MIMENode] = []
    var partCount = 0
    var truncatedParts = 0

    init(raw: [UInt8], limits: MIMEBoundedLimits) {
        self.raw = raw
        self.limits = limits
    }

    /// Parses the entity in `range` and, for a multipart within the depth limit, its parts.
    mutating func parseEntity(_ range: Range<Int>, depth: Int, defaultType: String) -> Int {
        let (headers, bodyStart) = MailHeaders.parse(raw[range], limit: limits.maxHeaderBytes)
        var type = defaultType
        var parameters: [String: String] = [:]
        if let contentType = headers["Content-Type"] {
            let field = MIMEFieldValue.parse(contentType)
            parameters = field.parameters
            // RFC 2045 §5.2: a syntactically invalid Content-Type means text/plain.
            type = Self.isValidType(field.value) ? field.value : "text/plain"
        }
        let disposition = headers["Content-Disposition"].map(MIMEFieldValue.parse)
        let index = nodes.count
        nodes.append(MIMENode(
            headers: headers, type: type, parameters: parameters,
            disposition: disposition.flatMap { $0.value.isEmpty ? nil : $0.value },
            dispositionParameters: disposition?.parameters ?? [:],
            body: min(bodyStart, range.upperBound)..<range.upperBound
        ))
        guard type.hasPrefix("multipart/"), depth < limits.maxDepth else { return index }

        guard let boundary = parameters["boundary"], !boundary.isEmpty, boundary.utf8.count <= 998,
              let segments = splitMultipart(nodes[index].body, boundary: Array(boundary.utf8))
        else {
            // No usable boundary: the body is read as text.
            nodes[index].type = "text/plain"
            return index
        }
        nodes[index].isContainer = true
        let childDefault = type == "multipart/digest" ? "message/rfc822" : "text/plain"
        for segment in segments {
            guard partCount < limits.maxParts else {
                truncatedParts += 1
                continue
            }
            partCount += 1
            let child = parseEntity(segment, depth: depth + 1, defaultType: childDefault)
            nodes[index].children.append(child)
        }
        return index
    }

    static func isValidType(_ value: String) -> Bool {
        let halves = value.split(separator: "/", omittingEmptySubsequences: false)
        return halves.count == 2 && halves.allSatisfy { half in
            !half.isEmpty && half.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !"()<>@,;:\\\"[]?=".utf8.contains($0) }
        }
    }

    /// The parts of a multipart body: the ranges between delimiter lines (`--boundary` at a
    /// line start, then only whitespace), each without the line break that belongs to the
    /// next delimiter. Preamble and epilogue are dropped; a missing close delimiter ends the
    /// last part at the end of the body. nil when no delimiter occurs at all. One pass.
    func splitMultipart(_ body: Range<Int>, boundary: [UInt8]) -> [Range<Int>]? {
        let delimiter: [UInt8] = [MIMEByte.dash, MIMEByte.dash] + boundary
        return raw.withUnsafeBufferPointer { buffer -> [Range<Int>]? in
            delimiter.withUnsafeBufferPointer { delimiter -> [Range<Int>]? in
                let upper = body.upperBound
                var parts: [Range<Int>] = []
                var partStart: Int?
                var found = false
                var lineStart = body.lowerBound

                @inline(__always) func lineEnd(from start: Int) -> Int {
                    var index = start
                    while index < upper, buffer[index] != MIMEByte.lf { index += 1 }
                    return index
                }

                while lineStart < upper {
                    if buffer[lineStart] == MIMEByte.dash, upper - lineStart >= delimiter.count {
                        var matches = true
                        for offset in 1..<delimiter.count where buffer[lineStart + offset] != delimiter[offset] {
                            matches = false
                            break
                        }
                        if matches {
                            var cursor = lineStart + delimiter.count
                            var closing = false
                            if cursor + 1 < upper, buffer[cursor] == MIMEByte.dash, buffer[cursor + 1] == MIMEByte.dash {
                                closing = true
                                cursor += 2
                            }
                            let end = lineEnd(from: cursor)
                            var onlyWhitespace = true
                            for index in cursor..<end {
                                let byte = buffer[index]
                                if byte != MIMEByte.space, byte != MIMEByte.tab, byte != MIMEByte.cr {
                                    onlyWhitespace = false
                                    break
                                }
                            }
                            if onlyWhitespace {
                                found = true
                                if let start = partStart {
                                    var stop = lineStart
                                    if stop > start, buffer[stop - 1] == MIMEByte.lf {
                                        stop -= 1
                                        if stop > start, buffer[stop - 1] == MIMEByte.cr { stop -= 1 }
                                    }
                                    parts.append(start..<stop)
                                }
                                if closing { return parts }
                                let next = end < upper ? end + 1 : upper
                                partStart = next
                                lineStart = next
                                continue
                            }
                            lineStart = end < upper ? end + 1 : upper
                            continue
                        }
                    }
                    let end = lineEnd(from: lineStart)
                    lineStart = end < upper ? end + 1 : upper
                }
                guard found else { return nil }
                if let start = partStart { parts.append(start..<upper) }
                return parts
            }
        }
    }

    // MARK: Body selection

    /// The text/plain and text/html parts that form the body. In multipart/alternative the
    /// first of each kind among the alternatives; in any other multipart the first child
    /// that yields a body decides.
    /// The body: the inline text/plain parts (one from each alternative, all of a mixed or
    /// related part, in order) and the first inline text/html.
    func selectBody(_ index: Int) -> (plain: [Int], html: Int?) {
        let node = nodes[index]
        if node.isContainer {
            var plain: [Int] = []
            var html: Int?
            for child in node.children {
                let found = selectBody(child)
                if node.type == "multipart/alternative" {
                    // Representations of one content: the first of each kind.
                    if plain.isEmpty { plain = found.plain }
                } else {
                    plain += found.plain
                }
                html = html ?? found.html
            }
            return (plain, html)
        }
        guard node.disposition != "attachment", rawFilename(node) == nil else { return ([], nil) }
        switch node.type {
        case "text/plain": return ([index], nil)
        case "text/html": return ([], index)
        default: return ([], nil)
        }
    }

    func rawFilename(_ node: MIMENode) -> String? {
        let name = node.dispositionParameters["filename"] ?? node.parameters["name"]
        return name.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The decoded text of a text part: transfer encoding, charset, LF line endings, NULs
    /// dropped, RFC 3676 format=flowed joined, cut to `limit` UTF-8 bytes.
    func decodeText(_ index: Int, limit: Int) -> String {
        let node = nodes[index]
        let slack = limit > Int.max - 16 ? Int.max : limit + 16
        let decoded = MIMETransferDecoding.decode(raw[node.body], encoding: node.transferEncoding, limit: slack)
        var text = MIMECharset.decode(MIMEText.normalizingLineEndings(decoded.bytes), charset: node.parameters["charset"])
        if node.parameters["format"]?.lowercased() == "flowed" {
            text = MIMEText.unflow(text, deleteSpace: node.parameters["delsp"]?.lowercased() == "yes")
        }
        return MIMEText.truncate(text, maxUTF8: limit)
    }

    // MARK: Attachments

    /// Every leaf that is not a body part and has a filename, is `Content-Disposition:
    /// attachment`, or is not text/plain or text/html (message/rfc822 parts included, not
    /// recursed into; opaque too-deep multiparts included).
    func attachments(excluding bodyParts: Set<Int>) -> (attachments: [MailAttachment], dropped: Int) {
        var attachments: [MailAttachment] = []
        var dropped = 0
        for (index, node) in nodes.enumerated() where !node.isContainer && !bodyParts.contains(index) {
            let filename = rawFilename(node)
            let isBodyType = node.type == "text/plain" || node.type == "text/html"
            guard filename != nil || node.disposition == "attachment" || !isBodyType else { continue }
            guard attachments.count < limits.maxAttachments else {
                dropped += 1
                continue
            }
            let decoded = MIMETransferDecoding.decode(raw[node.body], encoding: node.transferEncoding,
                                                      limit: limits.maxAttachmentBytes)
            let oversized = decoded.size > limits.maxAttachmentBytes
            var name = filename.flatMap { MIMEText.safeFilename(MailHeaders.decodeEncodedWords($0)) }
            if name == nil, node.type == "message/rfc822" || node.type == "message/global" {
                name = embeddedMessageFilename(decoded.bytes)
            }
            let contentID = node.headers["Content-ID"].flatMap { value -> String? in
                var id = Substring(MIMEByte.trimmed(value))
                if id.first == "<" { id.removeFirst() }
                if id.last == ">" { id.removeLast() }
                let trimmed = MIMEByte.trimmed(id)
                return trimmed.isEmpty ? nil : trimmed
            }
            attachments.append(MailAttachment(
                filename: name,
                contentType: node.type,
                size: decoded.size,
                contentID: contentID,
                isInline: node.disposition == "inline" || (node.disposition == nil && contentID != nil),
                data: oversized ? nil : decoded.bytes,
                oversized: oversized
            ))
        }
        return (attachments, dropped)
    }

    /// "<Subject>.eml" for an attached message, "message.eml" without a subject.
    private func embeddedMessageFilename(_ message: [UInt8]) -> String {
        let headers = MailHeaders.parse(message[...], limit: limits.maxHeaderBytes).headers
        let subject = headers["Subject"].map { MIMEText.withoutControls(MailHeaders.decodeEncodedWords($0)) }
        let stem = subject.flatMap { subject in
            // A subject is not a path: keep "a / b" readable instead of cutting at the slash.
            let flattened = String(String.UnicodeScalarView(subject.unicodeScalars.prefix(200).map { $0 == "/" || $0 == "\\" ? "-" : $0 }))
            return MIMEText.safeFilename(flattened)
        } ?? "message"
        return stem + ".eml"
    }

    // MARK: Delivery status notifications (RFC 3464)

    /// The first multipart/report whose report-type is (global-)delivery-status, or that
    /// carries a message/delivery-status part.
    func deliveryReport() -> DeliveryStatusReport? {
        for node in nodes where node.isContainer && node.type == "multipart/report" {
            let reportType = node.parameters["report-type"]?.lowercased()
            let status = node.children.first {
                ["message/delivery-status", "message/global-delivery-status"].contains(nodes[$0].type)
            }
            guard reportType == "delivery-status" || reportType == "global-delivery-status"
                || (reportType == nil && status != nil) else { continue }

            var recipients: [DeliveryStatusReport.Recipient] = []
            if let status {
                let decoded = MIMETransferDecoding.decode(raw[nodes[status].body], encoding: nodes[status].transferEncoding,
                                                          limit: max(limits.maxHeaderBytes, 64 * 1024))
                recipients = DeliveryStatusReport.recipients(fromStatusFields: decoded.bytes, limit: limits.maxHeaderBytes)
            }
            var originalMessageID: String?
            let original = node.children.first {
                ["message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"].contains(nodes[$0].type)
            }
            if let original {
                let decoded = MIMETransferDecoding.decode(raw[nodes[original].body], encoding: nodes[original].transferEncoding,
                                                          limit: limits.maxHeaderBytes)
                let headers = MailHeaders.parse(decoded.bytes[...], limit: limits.maxHeaderBytes).headers
                originalMessageID = headers["Message-ID"].flatMap { MailHeaders.messageIDs($0).first }
            }
            return DeliveryStatusReport(originalMessageID: originalMessageID, recipients: recipients)
        }
        return nil
    }
}

// MARK: - Content-Transfer-Encoding (RFC 2045 §6)

enum MIMETransferDecoding {
    struct Decoded {
        /// At most `limit` bytes.
        var bytes: [UInt8]
        /// The full decoded size, also beyond `limit`.
        var size: Int
    }

    /// base64, quoted-printable; 7bit, 8bit, binary and anything unknown as is.
    static func decode(_ body: ArraySlice<UInt8>, encoding: String, limit: Int) -> Decoded {
        switch encoding.lowercased() {
        case "base64":
            return decodeBase64(body, limit: limit)
        case "quoted-printable":
            return decodeQuotedPrintable(body, limit: limit, underscoreIsSpace: false)
        default:
            return Decoded(bytes: Array(body.prefix(max(limit, 0))), size: body.count)
        }
    }

    /// Lenient base64: characters outside the alphabet are skipped, missing padding is
    /// tolerated, and `=` ends a quantum (so concatenated padded blocks decode).
    static func decodeBase64(_ input: ArraySlice<UInt8>, limit: Int) -> Decoded {
        var out: [UInt8] = []
        out.reserveCapacity(min(max(limit, 0), input.count / 4 * 3 + 3))
        var size = 0
        input.withUnsafeBufferPointer { buffer in
            base64Table.withUnsafeBufferPointer { table in
                var quantum: UInt32 = 0
                var count = 0

                @inline(__always) func emit(_ byte: UInt32) {
                    if size < limit { out.append(UInt8(truncatingIfNeeded: byte)) }
                    size += 1
                }
                @inline(__always) func flushPartial() {
                    switch count {
                    case 2: emit(quantum >> 4)
                    case 3:
                        emit(quantum >> 10)
                        emit(quantum >> 2)
                    default: break
                    }
                    quantum = 0
                    count = 0
                }

                for byte in buffer {
                    let value = table[Int(byte)]
                    if value < 64 {
                        quantum = quantum << 6 | UInt32(value)
                        count += 1
                        if count == 4 {
                            emit(quantum >> 16)
                            emit(quantum >> 8)
                            emit(quantum)
                            quantum = 0
                            count = 0
                        }
                    } else if value == padding {
                        flushPartial()
                    }
                }
                flushPartial()
            }
        }
        return Decoded(bytes: out, size: size)
    }

    /// Quoted-printable: `=XX` → byte, `=` before a line break (after optional whitespace)
    /// is a soft break, anything else invalid stays literal. With `underscoreIsSpace` it is
    /// RFC 2047's Q encoding.
    static func decodeQuotedPrintable(_ input: ArraySlice<UInt8>, limit: Int, underscoreIsSpace: Bool) -> Decoded {
        var out: [UInt8] = []
        out.reserveCapacity(min(max(limit, 0), input.count))
        var size = 0
        input.withUnsafeBufferPointer { buffer in
            let end = buffer.count
            var index = 0

            @inline(__always) func emit(_ byte: UInt8) {
                if size < limit { out.append(byte) }
                size += 1
            }

            while index < end {
                let byte = buffer[index]
                if byte == MIMEByte.equals {
                    if index + 2 < end, let high = MIMEByte.hex(buffer[index + 1]), let low = MIMEByte.hex(buffer[index + 2]) {
                        emit(high << 4 | low)
                        index += 3
                        continue
                    }
                    // Soft line break: "=" [spaces/tabs] (CRLF | LF | end of input).
                    var cursor = index + 1
                    while cursor < end, buffer[cursor] == MIMEByte.space || buffer[cursor] == MIMEByte.tab { cursor += 1 }
                    if cursor == end {
                        index = end
                        continue
                    }
                    if buffer[cursor] == MIMEByte.lf {
                        index = cursor + 1
                        continue
                    }
                    if buffer[cursor] == MIMEByte.cr, cursor + 1 < end, buffer[cursor + 1] == MIMEByte.lf {
                        index = cursor + 2
                        continue
                    }
                    emit(byte)
                    index += 1
                } else if underscoreIsSpace, byte == MIMEByte.underscore {
                    emit(MIMEByte.space)
                    index += 1
                } else {
                    emit(byte)
                    index += 1
                }
            }
        }
        return Decoded(bytes: out, size: size)
    }

    private static let padding: UInt8 = 0xFE

    /// 0–63 for the alphabet, 0xFE for "=", 0xFF for everything else.
    private static let base64Table: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(character)] = UInt8(value)
        }
        table[Int(MIMEByte.equals)] = padding
        return table
    }()
}

// MARK: - Text helpers

enum MIMEText {
    /// CRLF and lone CR → LF; NUL bytes dropped. Works on any ASCII-compatible charset.
    static func normalizingLineEndings(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(where: { $0 == MIMEByte.cr || $0 == 0 }) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == MIMEByte.cr {
                out.append(MIMEByte.lf)
                if index + 1 < bytes.count, bytes[index + 1] == MIMEByte.lf { index += 1 }
            } else if byte != 0 {
                out.append(byte)
            }
            index += 1
        }
        return out
    }

    /// At most `maxUTF8` UTF-8 bytes, cut on a Character boundary.
    static func truncate(_ text: String, maxUTF8: Int) -> String {
        guard text.utf8.count > maxUTF8 else { return text }
        guard maxUTF8 > 0 else { return "" }
        // Back to a scalar boundary (at most three continuation bytes).
        var cut = text.utf8.index(text.utf8.startIndex, offsetBy: maxUTF8)
        while cut > text.utf8.startIndex, text.utf8[cut] & 0xC0 == 0x80 {
            cut = text.utf8.index(before: cut)
        }
        if cut.samePosition(in: text) != nil { return String(text[..<cut]) }
        // Inside a grapheme cluster: drop the partial cluster. Boundaries before it are the
        // same in the prefix as in the whole text, so this lands on one of the original's.
        var prefix = String(text[..<cut])
        if !prefix.isEmpty { prefix.removeLast() }
        return prefix
    }

    /// Control characters (tab, CR, LF, …) → space.
    static func withoutControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            scalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? " " : scalar)
        }
        return String(scalars)
    }

    /// A filename safe to show and to store: the last path component, without control,
    /// format/bidi-override characters, leading dots or surrounding whitespace, ≤ 255 UTF-8
    /// bytes (keeping a short extension). nil when nothing is left.
    static func safeFilename(_ raw: String) -> String? {
        var name = Substring(raw)
        if let separator = name.lastIndex(where: { $0 == "/" || $0 == "\\" }) {
            name = name[name.index(after: separator)...]
        }
        var scalars = String.UnicodeScalarView()
        for scalar in name.unicodeScalars {
            let value = scalar.value
            let isControl = value < 0x20 || (0x7F...0x9F).contains(value)
            let isInvisibleFormat = (0x200B...0x200F).contains(value) || (0x202A...0x202E).contains(value)
                || (0x2066...0x2069).contains(value) || value == 0xFEFF || value == 0x061C
            if !isControl, !isInvisibleFormat { scalars.append(scalar) }
        }
        var cleaned = Substring(String(scalars))
        while let first = cleaned.first, first == "." || first.isWhitespace { cleaned.removeFirst() }
        while let last = cleaned.last, last.isWhitespace { cleaned.removeLast() }
        guard !cleaned.isEmpty else { return nil }
        var result = String(cleaned)
        if result.utf8.count > 255 {
            var suffix = ""
            if let dot = result.lastIndex(of: "."), result.distance(from: dot, to: result.endIndex) <= 16 {
                suffix = String(result[dot...])
                result = String(result[..<dot])
            }
            result = truncate(result, maxUTF8: 255 - suffix.utf8.count) + suffix
        }
        return result.isEmpty ? nil : result
    }

    /// RFC 3676 format=flowed: lines ending in a space continue on the next line of the
    /// same quote depth; space-stuffing is undone; "-- " (signature separator) is fixed.
    static func unflow(_ text: String, deleteSpace: Bool) -> String {
        var output: [String] = []
        var paragraph: String?
        var paragraphDepth = 0

        func prefix(_ depth: Int) -> String {
            depth == 0 ? "" : String(repeating: ">", count: depth) + " "
        }

        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var depth = 0
            var content = line[...]
            while content.first == ">" {
                depth += 1
                content.removeFirst()
            }
            if content.first == " " { content.removeFirst() }
            let isSignature = content == "-- "
            if paragraph != nil, paragraphDepth == depth, !isSignature {
                paragraph?.append(contentsOf: content)
            } else {
                if let current = paragraph { output.append(prefix(paragraphDepth) + current) }
                paragraph = String(content)
                paragraphDepth = depth
            }
            if content.hasSuffix(" "), !isSignature {
                if deleteSpace, paragraph?.last == " " { paragraph?.removeLast() }
            } else {
                output.append(prefix(depth) + (paragraph ?? ""))
                paragraph = nil
            }
        }
        if let current = paragraph { output.append(prefix(paragraphDepth) + current) }
        return output.joined(separator: "\n")
    }
}
