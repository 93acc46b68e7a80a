import Crypto
import Foundation
import Logging
import SwitchboardConfig
import SwitchboardCore
import SwitchboardMail
import SwitchboardStore

/// From raw mail bytes (SMTP DATA or an IMAP fetch) to a stored message: header hygiene,
/// MIME parsing, bounce and auto-reply recognition, threading hints, then one store
/// transaction. Shared by the SMTP listener and the IMAP poller so that both paths store
/// the same thing for the same mail (and dedupe against each other on Message-ID).
///
/// Trusts: nothing in the message. On failure: the store's error propagates (the SMTP
/// listener answers 451, the IMAP poller leaves the cursor where it was); a message the
/// parser cannot make sense of is still stored (as text, with its raw bytes journalled).
struct EmailIngest: Sendable {
    let store: SwitchboardStore
    let email: SwitchboardConfiguration.Email
    let metrics: SwitchboardMetrics
    let triageWake: WakeSignal

    enum Outcome: Sendable, Equatable {
        case stored(IngestResult)
        case duplicate(IngestResult)
        case bounce(EmailBounceOutcome)

        /// The id an operator greps for in the logs.
        var messageID: String? {
            switch self {
            case .stored(let r), .duplicate(let r): r.messageID
            case .bounce(.matched(let id, _, _)): id
            case .bounce(.quarantined): nil
            }
        }

        var conversationID: String? {
            switch self {
            case .stored(let r), .duplicate(let r): r.conversationID
            case .bounce(.matched(_, let id, _)): id
            case .bounce(.quarantined): nil
            }
        }

        var label: String {
            switch self {
            case .stored: "stored"
            case .duplicate: "duplicate"
            case .bounce(.matched): "bounce"
            case .bounce(.quarantined): "quarantined"
            }
        }
    }

    /// Stores one message. `recipients` are the envelope recipients we accepted (SMTP) or
    /// empty (IMAP: the headers say where it went).
    func ingest(raw received: [UInt8], source: EmailSource, deliveryID: String, recipients: [String],
                now: Int64 = Timestamp.now()) async throws -> Outcome {
        let (raw, _) = MailHeaderHygiene.removingAuthenticationResults(received, authservID: email.effectiveAuthservID)
        let mail = MIMEParser.parse(raw, limits: Self.limits(email))
        let rfcID = mail.messageID.map { String($0.prefix(900)) } ?? Self.standInMessageID(mail)

        if let report = mail.deliveryReport {
            let failed = report.isFailure
            let delayed = report.recipients.contains { $0.action.lowercased() == "delayed" }
            let reason = report.recipients.first(where: { $0.action.lowercased() == "failed" })
                ?? report.recipients.first(where: { $0.action.lowercased() == "delayed" }) ?? report.recipients.first
            let reasonText = [reason?.status, reason?.diagnosticCode].compactMap { $0 }.joined(separator: " ")
            // failed → the reply is failed; delayed → a notice only; delivered, relayed or
            // expanded (a success report someone asked for) → a notice that says so.
            let notice = failed ? "Delivery of our reply failed" : delayed ? "Delivery of our reply is delayed"
                : "The recipient's mail server reported our reply delivered"
            let bounce = EmailBounce(source: source, deliveryID: deliveryID, raw: raw, rfcMessageID: rfcID,
                                     originalMessageIDs: [report.originalMessageID].compactMap { $0 } + mail.inReplyTo + mail.references,
                                     failed: failed,
                                     reason: failed ? "mail bounced: " + (reasonText.isEmpty ? "no reason given" : reasonText) : "mail delayed",
                                     notice: notice + (reasonText.isEmpty || !(failed || delayed) ? "." : ": " + reasonText))
            let outcome = Outcome.bounce(try await store.recordEmailBounce(bounce, now: now))
            metrics.mailIn(source: source.rawValue, outcome: outcome.label)
            return outcome
        }

        let ours = recipients.isEmpty ? (mail.to + mail.cc).map(\.address).filter(isOurs) : recipients
        let sender = mail.from.first
        let fromAddress = sender?.address ?? "unknown@invalid"
        let content = StoredMailContent(mail)
        let inbound = EmailInbound(
            source: source, deliveryID: deliveryID, raw: raw, rfcMessageID: rfcID,
            fromAddress: fromAddress, fromName: sender?.displayName, toAddress: ours.first?.lowercased(),
            subject: content.subject, text: content.text, html: content.html, quoted: content.quoted,
            threadReferences: Array((mail.inReplyTo + mail.references.reversed()).prefix(50)),
            replyTokens: Self.replyTokens(in: ours + (mail.to + mail.cc).map(\.address)),
            sentAt: mail.date.map(Timestamp.milliseconds) ?? now,
            autoReply: content.autoReply,
            attachments: content.attachments.map(EmailAttachmentRecord.init))
        let result = try await store.recordEmailMessage(inbound, reopenWindowMilliseconds: email.reopenWindowSeconds * 1000, now: now)
        let outcome: Outcome = result.duplicate ? .duplicate(result) : .stored(result)
        metrics.mailIn(source: source.rawValue, outcome: outcome.label)
        if !result.duplicate {
            metrics.messageIn(channel: .email)
            triageWake.signal()
        }
        return outcome
    }

    /// The parser's limits for this configuration.
    static func limits(_ email: SwitchboardConfiguration.Email) -> MIMELimits {
        var limits = MIMELimits()
        limits.maxAttachmentBytes = email.maxAttachmentBytes
        return limits
    }

    /// The dedupe key of a mail that has no Message-ID: a valid msg-id made from what stays
    /// the same when the one mail arrives both ways (SMTP and IMAP add different trace
    /// headers, so the raw bytes would not do): Date, From, To, Subject and the body text.
    static func standInMessageID(_ mail: ParsedMail) -> String {
        var material: [UInt8] = []
        for name in ["Date", "From", "To", "Subject"] {
            material += Array((mail.headers[name] ?? "").utf8) + [0]
        }
        material += Array(mail.text.utf8)
        let digest = SHA256.hash(data: material).prefix(20).map { String(format: "%02x", $0) }.joined()
        return digest + "@no-message-id.invalid"
    }

    /// Whether mail to `address` is for us (an accepted domain or address).
    func isOurs(_ address: String) -> Bool {
        let lower = address.lowercased()
        if email.acceptedAddresses.contains(lower) { return true }
        guard let at = lower.lastIndex(of: "@") else { return false }
        return email.acceptedDomains.contains(String(lower[lower.index(after: at)...]))
    }

    /// `support+<token>@…` → token (lower-cased; tokens are base32).
    static func replyTokens(in addresses: [String]) -> [String] {
        var tokens: [String] = []
        for address in addresses {
            guard let at = address.lastIndex(of: "@") else { continue }
            let local = address[..<at]
            guard let plus = local.lastIndex(of: "+") else { continue }
            let token = local[local.index(after: plus)...].lowercased()
            if (8...40).contains(token.count), token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }), !tokens.contains(token) {
                tokens.append(token)
            }
        }
        return tokens
    }
}

extension EmailAttachmentRecord {
    init(_ attachment: MailAttachment) {
        self.init(filename: attachment.filename, contentType: attachment.contentType, size: attachment.size,
                  contentID: attachment.contentID, isInline: attachment.isInline, data: attachment.data)
    }
}
