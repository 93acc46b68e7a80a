import Foundation
import GRDB
import SwitchboardCore

/// Email: storing inbound mail (SMTP or IMAP) with its threading, bounces against our own
/// outbound mail, the IMAP cursors, and what an outbound reply needs (addresses, subject,
/// the thread's Message-IDs, the reply token).
///
/// Threading, in order: `In-Reply-To`/`References` naming a Message-ID of our own outbound
/// mail; then a reply token in a recipient address (`support+<token>@…`); else a new
/// conversation. Subjects never merge conversations. A thread is joined only by the
/// conversation's own patient (same contact): mail from another address that quotes our
/// Message-ID starts its own conversation rather than being shown as the patient's words.
extension SwitchboardStore {
    /// Records one inbound mail message in one transaction: the raw message in the journal,
    /// the contact (by address), the conversation (see above; a resolved one reopens within
    /// `reopenWindowMilliseconds`, else a new one starts), the message with its sanitised
    /// HTML, quoted history and attachments. An automatic reply is stored but marked
    /// triaged at once, so no rule or safety reply ever answers it (no mail loops).
    /// A repeated delivery or a Message-ID seen before stores nothing new.
    public func recordEmailMessage(_ mail: EmailInbound, reopenWindowMilliseconds: Int64,
                                   now: Int64 = Timestamp.now()) async throws -> IngestResult {
        let inbound = InboundMessage(channel: .email, deliveryID: mail.deliveryID, raw: mail.raw,
                                     contact: InboundContact(email: mail.fromAddress, displayName: mail.fromName),
                                     externalMessageID: mail.rfcMessageID, text: mail.text, sentAt: mail.sentAt, html: mail.html)
        return try await writeInbound { db in
            let result = try Self.recordInbound(db, inbound, now: now) { db, contactID in
                try Self.resolveEmailConversation(db, contactID: contactID, mail: mail,
                                                  reopenWindow: reopenWindowMilliseconds, now: now)
            }
            guard !result.duplicate else { return result }
            try db.execute(cachedSQL: """
                INSERT INTO email_messages (message_id, rfc_message_id, subject, from_address, to_address, quoted_text, auto_reply, source)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [result.messageID, mail.rfcMessageID, mail.subject, mail.fromAddress.lowercased(), mail.toAddress,
                                 mail.quoted, mail.autoReply, mail.source.rawValue])
            for attachment in mail.attachments {
                try db.execute(cachedSQL: """
                    INSERT INTO attachments (message_id, kind, content_type, filename, size_bytes, content_id, is_inline, data, created_at)
                    VALUES (?, 'stored', ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [result.messageID, attachment.contentType, attachment.filename, attachment.size,
                                     attachment.contentID, attachment.isInline, attachment.data.map { Data($0) }, now])
            }
            return result
        }
    }

    /// The conversation an inbound mail belongs to, and whether it was created for it.
    private static func resolveEmailConversation(_ db: Database, contactID: String, mail: EmailInbound,
                                                 reopenWindow: Int64, now: Int64) throws -> InboundConversation {
        var candidates: [Row] = []
        for reference in mail.threadReferences.prefix(50) {
            if let row = try Row.fetchOne(db, cachedSQL: """
                SELECT c.id, c.contact_id, c.status, c.resolved_at FROM email_messages e
                JOIN messages m ON m.id = e.message_id JOIN conversations c ON c.id = m.conversation_id
                WHERE e.rfc_message_id = ? AND e.source = 'outbound' AND c.channel = 'email'
                """, arguments: [reference]) {
                candidates.append(row)
            }
        }
        for token in mail.replyTokens.prefix(10) {
            if let row = try Row.fetchOne(db, cachedSQL: """
                SELECT id, contact_id, status, resolved_at FROM conversations WHERE reply_token = ? AND channel = 'email'
                """, arguments: [token.lowercased()]) {
                candidates.append(row)
            }
        }
        for row in candidates where (row["contact_id"] as String) == contactID {
            let id: String = row["id"]
            guard (row["status"] as String) == ConversationStatus.resolved.rawValue else { return .existing(id) }
            let resolvedAt: Int64 = row["resolved_at"] ?? 0
            if now - resolvedAt <= reopenWindow {
                try reopen(db, conversationID: id, actorKind: "channel", actorID: Channel.email.rawValue, now: now)
                return .existing(id)
            }
        }
        // A new thread: its own reply token, and replies go from the address the patient wrote to.
        return try createConversation(db, contactID: contactID, channel: .email, threadID: nil,
                                      address: ConversationAddress(replyToken: makeReplyToken(), localAddress: mail.toAddress,
                                                                   remoteAddress: mail.fromAddress.lowercased()), now: now)
    }

    /// 80 random bits in lower-case base32: unguessable, short enough for an address.
    static func makeReplyToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Identifier.base32(Identifier.randomBytes(10, using: &generator))
    }

    /// A delivery status notification (bounce). When it names one of our outbound messages,
    /// that message becomes `failed` with the reason, and the notice is kept in its
    /// conversation as a system message (agents see why). A bounce for mail we never sent
    /// is kept in the quarantine for the operator. Returns the failed message's id, if any.
    public func recordEmailBounce(_ bounce: EmailBounce, now: Int64 = Timestamp.now()) async throws -> EmailBounceOutcome {
        try await write { db in
            // The outbound message the report is about: the first of its Message-IDs that is ours.
            var original: Row?
            for id in bounce.originalMessageIDs {
                original = try Row.fetchOne(db, cachedSQL: """
                    SELECT m.id, m.conversation_id, m.delivery_status FROM email_messages e JOIN messages m ON m.id = e.message_id
                    WHERE e.rfc_message_id = ? AND e.source = 'outbound'
                    """, arguments: [id])
                if original != nil { break }
            }
            if let row = try Row.fetchOne(db, cachedSQL: """
                SELECT message_id, conversation_id FROM inbound_journal WHERE channel = 'email' AND external_id = ?
                """, arguments: [bounce.deliveryID]) {
                return .matched(messageID: original?["id"] ?? row["message_id"], conversationID: row["conversation_id"], duplicate: true)
            }
            if try Bool.fetchOne(db, cachedSQL: "SELECT 1 FROM mail_quarantine WHERE external_id = ?", arguments: [bounce.deliveryID]) ?? false {
                return .quarantined
            }
            guard let original else {
                try db.execute(cachedSQL: """
                    INSERT INTO mail_quarantine (received_at, source, reason, external_id, raw) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [now, bounce.source.rawValue, "bounce for a message we did not send", bounce.deliveryID, Data(bounce.raw)])
                return .quarantined
            }
            let failedID: String = original["id"]
            let conversationID: String = original["conversation_id"]
            if bounce.failed {
                try db.execute(cachedSQL: """
                    UPDATE messages SET delivery_status = 'failed', delivery_updated_at = ?, failure_reason = ? WHERE id = ?
                    """, arguments: [now, bounce.reason, failedID])
                try Self.messageStatusEvent(db, messageID: failedID, conversationID: conversationID, status: .failed, now: now)
                try Self.audit(db, actorKind: "channel", actorID: Channel.email.rawValue, action: "message.delivery_failed",
                          conversationID: conversationID, messageID: failedID, now: now)
            }
            // The notice itself, as a system message in the thread (already "triaged": nothing
            // answers a bounce), journalled like any inbound delivery.
            let noticeID = Identifier.makeOrdered(prefix: "msg")
            try db.execute(cachedSQL: """
                INSERT INTO messages (id, conversation_id, direction, sender_kind, channel, external_id, body_text, sent_at, created_at, triaged_at,
                                      seq)
                VALUES (?, ?, 'inbound', 'system', 'email', ?, ?, ?, ?, ?, \(Schema.nextMessageSeq))
                ON CONFLICT (channel, external_id) DO NOTHING
                """, arguments: [noticeID, conversationID, bounce.rfcMessageID, bounce.notice, now, now, now])
            let storedID = db.changesCount == 1 ? noticeID
                : try String.fetchOne(db, cachedSQL: "SELECT id FROM messages WHERE channel = 'email' AND external_id = ?",
                                      arguments: [bounce.rfcMessageID]) ?? noticeID
            try db.execute(cachedSQL: """
                INSERT INTO inbound_journal (channel, external_id, received_at, raw, outcome, message_id, conversation_id)
                VALUES ('email', ?, ?, ?, ?, ?, ?)
                """, arguments: [bounce.deliveryID, now, Data(bounce.raw), storedID == noticeID ? "stored" : "duplicate_message",
                                 storedID, conversationID])
            if storedID == noticeID {
                try db.execute(cachedSQL: """
                    INSERT INTO email_messages (message_id, rfc_message_id, source) VALUES (?, ?, 'bounce')
                    """, arguments: [noticeID, bounce.rfcMessageID])
                try Self.conversationEvent(db, kind: "message.created", conversationID: conversationID,
                                      data: ["message_id": noticeID, "direction": "inbound", "channel": "email"], now: now)
            }
            return .matched(messageID: failedID, conversationID: conversationID, duplicate: storedID != noticeID)
        }
    }

    /// Everything an outbound reply needs. The reply's Message-ID is made once, from our
    /// message id, and stored before the first attempt: every retry sends the same one, and
    /// a patient's answer threads back even if we crash after the relay took the message.
    public func emailOutboundContext(for item: OutboxItem, domain: String, now: Int64 = Timestamp.now()) async throws -> EmailOutboundContext {
        try await write { db in
            let ownID = item.messageID + "@" + domain
            try db.execute(cachedSQL: """
                INSERT INTO email_messages (message_id, rfc_message_id, source) VALUES (?, ?, 'outbound')
                ON CONFLICT (message_id) DO NOTHING
                """, arguments: [item.messageID, ownID])
            let rfcID = try String.fetchOne(db, cachedSQL: "SELECT rfc_message_id FROM email_messages WHERE message_id = ?",
                                            arguments: [item.messageID]) ?? ownID
            let conversation = try Row.fetchOne(db, cachedSQL: """
                SELECT c.reply_token, c.local_address, c.remote_address, k.display_name
                FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE c.id = ?
                """, arguments: [item.conversationID])
            // The thread so far, oldest first: the Message-IDs of every mail in it.
            let thread = try String.fetchAll(db, cachedSQL: """
                SELECT e.rfc_message_id FROM email_messages e JOIN messages m ON m.id = e.message_id
                WHERE m.conversation_id = ? AND m.id <> ? AND e.source IN ('smtp','imap','outbound') AND m.created_at <= ?
                ORDER BY m.created_at, m.rowid
                """, arguments: [item.conversationID, item.messageID, now])
            let lastInbound = try Row.fetchOne(db, cachedSQL: """
                SELECT e.rfc_message_id, e.subject FROM email_messages e JOIN messages m ON m.id = e.message_id
                WHERE m.conversation_id = ? AND e.source IN ('smtp','imap') ORDER BY m.created_at DESC, m.rowid DESC LIMIT 1
                """, arguments: [item.conversationID])
            // The subject of the thread: the first inbound mail that had one.
            let subject = try String.fetchOne(db, cachedSQL: """
                SELECT e.subject FROM email_messages e JOIN messages m ON m.id = e.message_id
                WHERE m.conversation_id = ? AND e.source IN ('smtp','imap') AND e.subject IS NOT NULL AND e.subject <> ''
                ORDER BY m.created_at, m.rowid LIMIT 1
                """, arguments: [item.conversationID])
            var token: String? = conversation?["reply_token"]
            if token == nil {
                token = Self.makeReplyToken()
                try db.execute(cachedSQL: "UPDATE conversations SET reply_token = ? WHERE id = ? AND reply_token IS NULL",
                               arguments: [token, item.conversationID])
            }
            let contactEmail = try String.fetchOne(db, cachedSQL: """
                SELECT i.value FROM contact_identities i JOIN conversations c ON c.contact_id = i.contact_id
                WHERE c.id = ? AND i.kind = 'email' ORDER BY i.id LIMIT 1
                """, arguments: [item.conversationID])
            return EmailOutboundContext(
                rfcMessageID: rfcID, toAddress: conversation?["remote_address"] ?? contactEmail,
                toName: conversation?["display_name"], localAddress: conversation?["local_address"], replyToken: token,
                subject: subject, inReplyTo: lastInbound?["rfc_message_id"], references: Array(thread.suffix(20)))
        }
    }

    /// The IMAP cursor of a mailbox: its UIDVALIDITY and the last UID committed.
    public func imapCursor(mailbox: String) async throws -> IMAPCursor? {
        try await pool.read { db in
            try Row.fetchOne(db, cachedSQL: "SELECT uidvalidity, last_uid FROM imap_cursors WHERE mailbox = ?", arguments: [mailbox]).map {
                IMAPCursor(uidValidity: $0["uidvalidity"], lastUID: $0["last_uid"])
            }
        }
    }

    /// Moves a mailbox's cursor (only forward for the same UIDVALIDITY; a new UIDVALIDITY
    /// replaces it — the re-sync that follows is deduplicated on Message-ID).
    public func setIMAPCursor(mailbox: String, _ cursor: IMAPCursor, now: Int64 = Timestamp.now()) async throws {
        try await write { db in
            try db.execute(cachedSQL: """
                INSERT INTO imap_cursors (mailbox, uidvalidity, last_uid, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (mailbox) DO UPDATE SET
                    last_uid = CASE WHEN imap_cursors.uidvalidity = excluded.uidvalidity
                                    THEN max(imap_cursors.last_uid, excluded.last_uid) ELSE excluded.last_uid END,
                    uidvalidity = excluded.uidvalidity, updated_at = excluded.updated_at
                """, arguments: [mailbox, cursor.uidValidity, cursor.lastUID, now])
        }
    }

    /// Whether a delivery (journal id) was already committed — the IMAP poller asks before
    /// fetching a message body again after a crash.
    public func hasInboundDelivery(channel: Channel, deliveryID: String) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(db, cachedSQL: """
                SELECT EXISTS (SELECT 1 FROM inbound_journal WHERE channel = ? AND external_id = ?)
                    OR EXISTS (SELECT 1 FROM mail_quarantine WHERE external_id = ?)
                """, arguments: [channel.rawValue, deliveryID, deliveryID]) ?? false
        }
    }
}
