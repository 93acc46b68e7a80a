import Foundation
import GRDB
import SwitchboardCore

/// One stored inbound delivery, as received: what `switchboard journal replay` parses again.
public struct JournalEntry: Sendable, Equatable {
    public var id: Int64
    public var channel: Channel
    /// The delivery's own id (`twilio:SM…`, `kannel:…`, a webhook-id, a Message-ID).
    public var externalID: String
    public var messageID: String
    public var conversationID: String
    public var receivedAt: Int64
    public var raw: [UInt8]
}

/// A message as a parser makes it now from its raw delivery.
public struct ReparsedMessage: Sendable, Equatable {
    public var text: String
    /// Email only (nil for other channels): the fields kept beside the text.
    public var email: Email?

    public struct Email: Sendable, Equatable {
        public var html: String?
        public var quoted: String?
        public var subject: String?
        public var autoReply: String?
        public var attachments: [EmailAttachmentRecord]

        public init(html: String?, quoted: String?, subject: String?, autoReply: String?, attachments: [EmailAttachmentRecord]) {
            self.html = html
            self.quoted = quoted
            self.subject = subject
            self.autoReply = autoReply
            self.attachments = attachments
        }
    }

    public init(text: String, email: Email? = nil) {
        self.text = text
        self.email = email
    }
}

/// Re-parsing the inbound journal after a parser fix.
extension SwitchboardStore {
    /// Journal entries that produced a message, oldest first, after `afterID`: those still
    /// holding their raw bytes (purged ones are skipped), of `channel` and received at or
    /// after `since` when given, or only the one of `messageID`.
    public func journalEntries(channel: Channel?, since: Int64?, messageID: String?, afterID: Int64,
                               limit: Int = 200) async throws -> [JournalEntry] {
        var sql = """
            SELECT id, channel, external_id, message_id, conversation_id, received_at, raw FROM inbound_journal
            WHERE outcome = 'stored' AND length(raw) > 0 AND id > ?
            """
        var arguments: StatementArguments = [afterID]
        if let channel {
            sql += " AND channel = ?"
            arguments += [channel.rawValue]
        }
        if let since {
            sql += " AND received_at >= ?"
            arguments += [since]
        }
        if let messageID {
            sql += " AND message_id = ?"
            arguments += [messageID]
        }
        sql += " ORDER BY id LIMIT ?"
        arguments += [limit]
        let finalSQL = sql
        let finalArguments = arguments
        return try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: finalSQL, arguments: finalArguments).map { row in
                JournalEntry(id: row["id"], channel: Channel(rawValue: row["channel"]) ?? .portal, externalID: row["external_id"],
                             messageID: row["message_id"],
                             conversationID: row["conversation_id"], receivedAt: row["received_at"],
                             raw: [UInt8]((row["raw"] as Data?) ?? Data()))
            }
        }
    }

    /// Stores what the parser makes of a message now, when it differs from what is stored:
    /// the text, and for email the HTML, quoted history, subject, auto-reply kind and
    /// attachments. Returns whether anything differed (with `dryRun`, nothing is written).
    /// Triage is not run again: a rule or safety reply never fires twice for one message.
    /// Audited (`message.reparsed`), and agents' consoles are told (`message.reparsed`).
    public func applyReparse(_ entry: JournalEntry, _ parsed: ReparsedMessage, dryRun: Bool, operator who: String,
                             now: Int64 = Timestamp.now()) async throws -> Bool {
        try await write { db in
            guard let row = try Row.fetchOne(db, cachedSQL: "SELECT body_text, body_html FROM messages WHERE id = ?",
                                             arguments: [entry.messageID]) else { return false }
            var changed = (row["body_text"] as String) != parsed.text
            if let email = parsed.email {
                let stored = try Row.fetchOne(db, cachedSQL: """
                    SELECT subject, quoted_text, auto_reply FROM email_messages WHERE message_id = ?
                    """, arguments: [entry.messageID])
                let attachments = try Row.fetchAll(db, cachedSQL: """
                    SELECT filename, content_type, size_bytes, content_id, is_inline, data FROM attachments
                    WHERE message_id = ? AND kind = 'stored' ORDER BY id
                    """, arguments: [entry.messageID]).map { row in
                    EmailAttachmentRecord(filename: row["filename"], contentType: row["content_type"] ?? "application/octet-stream",
                                          size: row["size_bytes"] ?? 0, contentID: row["content_id"], isInline: row["is_inline"] ?? false,
                                          data: (row["data"] as Data?).map { [UInt8]($0) })
                }
                changed = changed || (row["body_html"] as String?) != email.html || stored?["subject"] != email.subject
                    || (stored?["quoted_text"] as String?) != email.quoted || (stored?["auto_reply"] as String?) != email.autoReply
                    || attachments != email.attachments
                if changed && !dryRun {
                    try db.execute(cachedSQL: "UPDATE messages SET body_html = ? WHERE id = ?", arguments: [email.html, entry.messageID])
                    try db.execute(cachedSQL: """
                        UPDATE email_messages SET subject = ?, quoted_text = ?, auto_reply = ? WHERE message_id = ?
                        """, arguments: [email.subject, email.quoted, email.autoReply, entry.messageID])
                    if attachments != email.attachments {
                        try db.execute(cachedSQL: "DELETE FROM attachments WHERE message_id = ? AND kind = 'stored'", arguments: [entry.messageID])
                        for attachment in email.attachments {
                            try db.execute(cachedSQL: """
                                INSERT INTO attachments (message_id, kind, content_type, filename, size_bytes, content_id, is_inline, data, created_at)
                                VALUES (?, 'stored', ?, ?, ?, ?, ?, ?, ?)
                                """, arguments: [entry.messageID, attachment.contentType, attachment.filename, attachment.size,
                                                 attachment.contentID, attachment.isInline, attachment.data.map { Data($0) }, now])
                        }
                    }
                }
            }
            guard changed, !dryRun else { return changed }
            try db.execute(cachedSQL: "UPDATE messages SET body_text = ? WHERE id = ?", arguments: [parsed.text, entry.messageID])
            try Self.audit(db, actorKind: "admin", actorID: who, action: "message.reparsed", conversationID: entry.conversationID,
                           messageID: entry.messageID, now: now)
            try Self.conversationEvent(db, kind: "message.reparsed", conversationID: entry.conversationID,
                                       data: ["message_id": entry.messageID], now: now)
            return true
        }
    }
}
