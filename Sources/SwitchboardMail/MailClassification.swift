// Is this message from a machine? Auto-replies (RFC 3834), list and bulk mail, and delivery
// status notifications (RFC 3464), so the daemon neither answers robots nor loops with them.
//
// Trust: none; headers and report bodies are attacker-controlled. Parsing is bounded (at
// most 1,000 recipients, 300-character diagnostics) and never throws or traps.

public enum AutoReplyKind: String, Sendable, Equatable {
    /// `Auto-Submitted:` with any value other than "no".
    case autoSubmitted = "auto_submitted"
    /// `Precedence:` bulk, junk, list or auto_reply.
    case precedence
    /// `X-Autoreply:` or `X-Autorespond:` present (`X-Auto-Response-Suppress` is not a sign).
    case autoreplyHeader = "autoreply_header"
    /// `List-Id:` or `List-Unsubscribe:` present.
    case listMail = "list_mail"
    /// A delivery status notification (bounce).
    case deliveryReport = "delivery_report"
}

/// An RFC 3464 report (multipart/report; report-type=delivery-status).
public struct DeliveryStatusReport: Sendable, Equatable {
    /// The returned message's Message-ID (without `<>`), from its message/rfc822 or
    /// text/rfc822-headers part; nil when not returned (Original-Envelope-Id is not one).
    public var originalMessageID: String?
    public var recipients: [Recipient]

    public struct Recipient: Sendable, Equatable {
        /// The address of `Final-Recipient: rfc822; x@y`.
        public var finalRecipient: String?
        /// failed | delayed | delivered | relayed | expanded (lower-cased; "" if absent).
        public var action: String
        /// e.g. "5.1.1".
        public var status: String?
        /// e.g. "smtp; 550 5.1.1 user unknown": unfolded, trimmed, at most 300 characters.
        public var diagnosticCode: String?

        public init(finalRecipient: String?, action: String, status: String? = nil, diagnosticCode: String? = nil) {
            self.finalRecipient = finalRecipient
            self.action = action
            self.status = status
            self.diagnosticCode = diagnosticCode
        }
    }

    public init(originalMessageID: String?, recipients: [Recipient]) {
        self.originalMessageID = originalMessageID
        self.recipients = recipients
    }

    /// Any recipient with action "failed".
    public var isFailure: Bool {
        recipients.contains { $0.action == "failed" }
    }

    /// The per-recipient groups of a message/delivery-status body: field groups separated by
    /// blank lines; the per-message group (Reporting-MTA, …) has no Action or
    /// Final-Recipient and is skipped. Garbage lines are skipped.
    static func recipients(fromStatusFields bytes: [UInt8], limit: Int) -> [Recipient] {
        var recipients: [Recipient] = []
        var offset = 0
        while offset < bytes.count, recipients.count < 1_000 {
            while offset < bytes.count, MIMEByte.isSpace(bytes[offset]) { offset += 1 }
            guard offset < bytes.count else { break }
            let (group, next) = MailHeaders.parse(bytes[offset...], limit: limit)
            if group.fields.isEmpty || next <= offset {
                // Not a field line: skip it.
                let lineEnd = bytes[offset...].firstIndex(of: MIMEByte.lf) ?? bytes.count
                offset = lineEnd + 1
                continue
            }
            if let recipient = recipient(group) { recipients.append(recipient) }
            offset = next
        }
        return recipients
    }

    private static func recipient(_ group: MailHeaders) -> Recipient? {
        let action = group["Action"]
        let final = group["Final-Recipient"]
        guard action != nil || final != nil else { return nil }
        let address = final.flatMap { value -> String? in
            var address = Substring(value)
            if let semicolon = address.firstIndex(of: ";") { address = address[address.index(after: semicolon)...] }
            var trimmed = Substring(MIMEByte.trimmed(address))
            if trimmed.first == "<", trimmed.last == ">", trimmed.count >= 2 { trimmed = trimmed.dropFirst().dropLast() }
            let result = MIMEByte.trimmed(trimmed)
            return result.isEmpty ? nil : result
        }
        let diagnostic = group["Diagnostic-Code"].flatMap { value -> String? in
            let trimmed = MIMEByte.trimmed(value)
            return trimmed.isEmpty ? nil : String(trimmed.prefix(300))
        }
        return Recipient(
            finalRecipient: address,
            action: action.map { MailClassification.firstToken($0).lowercased() } ?? "",
            status: group["Status"].flatMap { value in
                let token = MailClassification.firstToken(value)
                return token.isEmpty ? nil : token
            },
            diagnosticCode: diagnostic
        )
    }
}

public enum MailClassification {
    /// Why this message is automatic, checked in order: a delivery report, Auto-Submitted
    /// (not "no"), X-Autoreply/X-Autorespond, Precedence bulk/junk/list/auto_reply,
    /// List-Id/List-Unsubscribe. nil for a message from a person.
    public static func autoReply(_ headers: MailHeaders, report: DeliveryStatusReport?) -> AutoReplyKind? {
        if report != nil { return .deliveryReport }
        if let value = headers["Auto-Submitted"] {
            let token = firstToken(value).lowercased()
            if !token.isEmpty, token != "no" { return .autoSubmitted }
        }
        if headers["X-Autoreply"] != nil || headers["X-Autorespond"] != nil { return .autoreplyHeader }
        if let value = headers["Precedence"], ["bulk", "junk", "list", "auto_reply"].contains(firstToken(value).lowercased()) {
            return .precedence
        }
        if headers["List-Id"] != nil || headers["List-Unsubscribe"] != nil { return .listMail }
        return nil
    }

    /// The first token of a structured value: comments removed, up to whitespace or `;`.
    static func firstToken(_ value: String) -> String {
        var token = ""
        var depth = 0
        for character in value.prefix(1_000) {
            if character == "(" {
                depth += 1
            } else if character == ")" {
                depth = max(0, depth - 1)
            } else if depth == 0 {
                if character == ";" || (character.isWhitespace && !token.isEmpty) { break }
                if !character.isWhitespace { token.append(character) }
            }
        }
        return token
    }
}
