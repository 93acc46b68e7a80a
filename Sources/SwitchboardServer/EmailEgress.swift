import Foundation
import SwitchboardConfig
import SwitchboardCore
import SwitchboardMail
import SwitchboardMailTransport
import SwitchboardStore

/// Email's egress: an agent's reply as a mail message through the configured submission
/// server (libcurl: STARTTLS or SMTPS, AUTH), threaded into the patient's mail client.
///
/// The message carries a stable Message-ID (made once from our message id: a retry sends
/// the same message, which the receiving side dedupes), `In-Reply-To` and `References` of
/// the thread, a `Reply-To` with the conversation's reply token, the thread's subject with
/// "Re: ", and text + HTML alternatives. Automatic replies (safety, rules, compliance) are
/// marked `Auto-Submitted: auto-replied` (RFC 3834) so that well-behaved autoresponders do
/// not answer them. Header injection cannot happen: the composer refuses any control
/// character in a header field (the message is then dead-lettered, not sent mangled).
struct EmailEgress {
    let email: SwitchboardConfiguration.Email
    let store: SwitchboardStore

    func send(_ item: OutboxItem, now: Int64) async -> EgressOutcome {
        guard email.outboundEnabled, let submissionURL = email.submissionURL, let fromAddress = email.fromAddress else {
            return .retry(reason: "email egress not configured", retryAfterSeconds: nil)
        }
        let context: EmailOutboundContext
        do {
            context = try await store.emailOutboundContext(for: item, domain: email.domain, now: now)
        } catch {
            return .retry(reason: "store unavailable", retryAfterSeconds: nil)
        }
        guard let to = context.toAddress else {
            return .permanentFailure("the conversation has no email address to reply to")
        }
        let message: [UInt8]
        do {
            message = try Self.compose(item: item, context: context, email: email, fromAddress: fromAddress, to: to, now: now)
        } catch {
            return .permanentFailure("the reply cannot be sent safely: \(error)")
        }
        let options = MailServerOptions(url: submissionURL, username: email.submissionUsername, password: email.submissionPassword?.value,
                                        tls: email.submissionTLS, caFile: email.submissionCAFile,
                                        timeoutMilliseconds: email.submissionTimeoutMilliseconds)
        do {
            try await SMTPSubmission.send(options, mailFrom: fromAddress, recipients: [to], message: message)
            return .delivered(status: .sent, externalID: nil)
        } catch {
            // Credentials first: a 535 is a 5xx, but the fix is on our side, and the reply
            // should go out once the operator has corrected the password.
            if error.isLoginDenied {
                return .retry(reason: "the mail server refused our credentials (check email.submission_username and password)",
                              retryAfterSeconds: nil)
            }
            if error.isPermanent {
                return .permanentFailure("the mail server refused the message (reply \(error.responseCode))")
            }
            return .retry(reason: "mail server: \(error.reason)" + (error.responseCode > 0 ? " (reply \(error.responseCode))" : ""),
                          retryAfterSeconds: nil)
        }
    }

    /// The reply as RFC 5322 bytes.
    static func compose(item: OutboxItem, context: EmailOutboundContext, email: SwitchboardConfiguration.Email,
                        fromAddress: String, to: String, now: Int64) throws -> [UInt8] {
        var subject = context.subject ?? "Your message"
        if !subject.lowercased().hasPrefix("re:") { subject = "Re: " + subject }
        let replyTo = context.replyToken.map { token -> String in
            let at = fromAddress.lastIndex(of: "@")!
            return fromAddress[..<at] + "+" + token + fromAddress[at...]
        }
        var extra: [MailHeaderField] = []
        if item.automatic {
            extra.append(MailHeaderField(name: "Auto-Submitted", value: "auto-replied"))
        }
        let mail = OutgoingMail(
            fromAddress: fromAddress, fromName: email.fromName,
            to: [MailRecipient(name: context.toName, address: to)],
            replyToAddress: replyTo, subject: subject, messageID: context.rfcMessageID,
            // Ids from the patient's mail that are not valid msg-ids (broken clients; our
            // stand-in for mail without a Message-ID) are left out rather than refused:
            // threading degrades, the reply still goes.
            inReplyTo: context.inReplyTo.flatMap { MailComposer.isMessageID($0) ? $0 : nil },
            references: context.references.filter(MailComposer.isMessageID),
            date: Date(timeIntervalSince1970: Double(item.sentAt) / 1000), text: item.text, html: nil, extraHeaders: extra)
        let boundary = "=_sb_" + item.messageID
        return try MailComposer.compose(mail, boundary: boundary)
    }
}
