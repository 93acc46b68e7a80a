import Foundation
import SwitchboardChat
import SwitchboardConfig
import SwitchboardCore
import SwitchboardMail
import SwitchboardSMS
import SwitchboardStore

/// `switchboard journal replay`: every inbound delivery's raw bytes are kept in the journal,
/// so after a parser fix (MIME, charsets, quoted replies, Kannel text codings) the stored
/// messages can be made again from them — by the same code the live path uses.
///
/// Trusts: the journal (written only by the daemon). On failure: an entry the parser can no
/// longer read, or one that is not a patient message (a bounce's notice), is left as stored
/// and reported; the store failing stops the run with its error (what was applied stays).
public struct JournalReplay: Sendable {
    public struct Report: Sendable, Equatable {
        public var examined = 0
        public var changed: [String] = []
        public var unchanged = 0
        /// Messages whose raw delivery does not parse as a patient message any more.
        public var skipped: [String] = []
    }

    let store: SwitchboardStore
    let configuration: SwitchboardConfiguration

    public init(store: SwitchboardStore, configuration: SwitchboardConfiguration) {
        self.store = store
        self.configuration = configuration
    }

    public func run(channel: SwitchboardCore.Channel?, since: Int64?, messageID: String?, dryRun: Bool,
                    operator who: String) async throws -> Report {
        var report = Report()
        var after: Int64 = 0
        while true {
            let entries = try await store.journalEntries(channel: channel, since: since, messageID: messageID, afterID: after)
            guard let last = entries.last else { return report }
            after = last.id
            for entry in entries {
                report.examined += 1
                guard let parsed = reparse(entry) else {
                    report.skipped.append(entry.messageID)
                    continue
                }
                if try await store.applyReparse(entry, parsed, dryRun: dryRun, operator: who) {
                    report.changed.append(entry.messageID)
                } else {
                    report.unchanged += 1
                }
            }
        }
    }

    /// The message as the live path would store it from these bytes today, or nil.
    func reparse(_ entry: JournalEntry) -> ReparsedMessage? {
        switch entry.channel {
        case .email:
            let mail = MIMEParser.parse(entry.raw, limits: EmailIngest.limits(configuration.email))
            guard mail.deliveryReport == nil else { return nil }  // a bounce: its message is our notice, not the mail
            let content = StoredMailContent(mail)
            return ReparsedMessage(text: content.text, email: .init(html: content.html, quoted: content.quoted, subject: content.subject,
                                                                    autoReply: content.autoReply,
                                                                    attachments: content.attachments.map(EmailAttachmentRecord.init)))
        case .portal:
            return (try? PortalInboundEvent.decode(entry.raw)).map { ReparsedMessage(text: $0.message.text) }
        case .chat:
            guard case .message(_, let text)? = try? ChatCodec.decode(String(decoding: entry.raw, as: UTF8.self),
                                                                      limits: ChatLimits(maxTextCharacters: .max)) else { return nil }
            return ReparsedMessage(text: text)
        case .sms:
            if entry.externalID.hasPrefix(SMSGateway.twilio.externalID("")) {
                guard let form = try? FormBody.parse(entry.raw), let body = form.first("Body") else { return nil }
                return ReparsedMessage(text: body)
            }
            return Self.kannelText(entry.raw).map { ReparsedMessage(text: $0) }
        }
    }

    /// Kannel's journal entry: the request's query (without the secret), and for a POST a
    /// newline and the body (the text).
    static func kannelText(_ raw: [UInt8]) -> String? {
        let split = raw.firstIndex(of: 0x0A)
        let query = split.map { Array(raw[..<$0]) } ?? raw
        var fields: [String: [UInt8]] = [:]
        for pair in query.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let name = try? FormBody.decodeBytes(parts[0]), let value = try? FormBody.decodeBytes(parts[1]) else { continue }
            fields[String(decoding: name, as: UTF8.self)] = value
        }
        let bytes = split.map { Array(raw[raw.index(after: $0)...]) } ?? fields["text"]
        guard let bytes else { return nil }
        let text = try? KannelText.decode(bytes, coding: fields["coding"].map { String(decoding: $0, as: UTF8.self) },
                                          charset: fields["charset"].map { String(decoding: $0, as: UTF8.self) })
        return text?.isEmpty == false ? text : nil
    }
}
