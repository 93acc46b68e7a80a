/// What Switchboard keeps of a parsed mail message: the patient's new text (the reply, else
/// the whole text, else a note that only attachments came), the sanitised HTML, the quoted
/// history, the subject, the auto-reply kind and the attachments. One definition for the
/// ingest path and for `switchboard journal replay`, so a re-parse stores exactly what a
/// first delivery would.
public struct StoredMailContent: Sendable, Equatable {
    public var text: String
    public var html: String?
    public var quoted: String?
    public var subject: String?
    public var autoReply: String?
    public var attachments: [MailAttachment]

    public init(_ mail: ParsedMail) {
        var text = mail.reply
        if text.allSatisfy(\.isWhitespace) { text = mail.text }
        if text.isEmpty && !mail.attachments.isEmpty { text = "(attachments only)" }
        self.text = text
        html = mail.html
        quoted = mail.quoted
        subject = mail.subject.map { String($0.prefix(998)) }
        autoReply = mail.autoReply?.rawValue
        attachments = mail.attachments
    }
}
