import Foundation
import GRDB
import SwitchboardCore

/// SMS: threading by the patient's number, the consent (opt-out) record, and delivery
/// reports from the gateways.
extension SwitchboardStore {
    /// Records one inbound SMS in one transaction: journal, contact (by phone), the
    /// number's latest unresolved SMS conversation — or a resolved one within
    /// `reopenWindowMilliseconds`, reopened — or a new one; the message and its media
    /// references; and for a compliance keyword, the consent change, its history row and
    /// the compliance reply queued for delivery.
    public func recordSMSMessage(_ sms: SMSInbound, reopenWindowMilliseconds: Int64,
                                 now: Int64 = Timestamp.now()) async throws -> IngestResult {
        let inbound = InboundMessage(channel: .sms, deliveryID: sms.gateway.externalID(sms.gatewayMessageID), raw: sms.raw,
                                     contact: InboundContact(phoneE164: sms.from),
                                     externalMessageID: sms.gateway.externalID(sms.gatewayMessageID),
                                     text: sms.text, sentAt: sms.sentAt)
        return try await writeInbound { db in
            let result = try Self.recordInbound(db, inbound, now: now) { db, contactID in
                try Self.resolveSMSConversation(db, contactID: contactID, sms: sms, reopenWindow: reopenWindowMilliseconds, now: now)
            }
            guard !result.duplicate else { return result }
            // Where the reply goes: the gateway and the number the patient wrote to. A new
            // conversation was inserted with them; an existing one is rewritten only when they
            // change (the patient writing to another number or through another gateway):
            // rewriting the same values would still write the row and its address index.
            try db.execute(cachedSQL: """
                UPDATE conversations SET gateway = ?, local_address = ?, remote_address = ?
                WHERE id = ? AND (gateway IS NOT ? OR local_address IS NOT ? OR remote_address IS NOT ?)
                """, arguments: [sms.gateway.rawValue, sms.to, sms.from, result.conversationID,
                                 sms.gateway.rawValue, sms.to, sms.from])
            for media in sms.mediaURLs {
                try db.execute(cachedSQL: """
                    INSERT INTO attachments (message_id, kind, url, content_type, created_at) VALUES (?, 'reference', ?, ?, ?)
                    """, arguments: [result.messageID, media.url, media.contentType, now])
            }
            if let consent = sms.consent {
                try Self.recordConsent(db, phone: sms.from, action: consent.action, keyword: consent.keyword,
                                       gateway: sms.gateway, messageID: result.messageID, now: now)
            }
            if let reply = sms.complianceReply, !reply.isEmpty {
                try Self.queueOutbound(db, conversationID: result.conversationID, channel: .sms, senderKind: "system",
                                       agentID: nil, text: reply, purpose: .compliance, now: now)
            }
            return result
        }
    }

    private static func resolveSMSConversation(_ db: Database, contactID: String, sms: SMSInbound, reopenWindow: Int64,
                                               now: Int64) throws -> InboundConversation {
        let from = sms.from
        if let id = try String.fetchOne(db, cachedSQL: """
            SELECT id FROM conversations WHERE channel = 'sms' AND remote_address = ? AND contact_id = ? AND status <> 'resolved'
            ORDER BY last_message_at DESC LIMIT 1
            """, arguments: [from, contactID]) {
            return .existing(id)
        }
        if reopenWindow > 0, let id = try String.fetchOne(db, cachedSQL: """
            SELECT id FROM conversations WHERE channel = 'sms' AND remote_address = ? AND contact_id = ? AND status = 'resolved' AND resolved_at >= ?
            ORDER BY resolved_at DESC LIMIT 1
            """, arguments: [from, contactID, now - reopenWindow]) {
            try reopen(db, conversationID: id, actorKind: "channel", actorID: Channel.sms.rawValue, now: now)
            return .existing(id)
        }
        return try createConversation(db, contactID: contactID, channel: .sms, threadID: nil,
                                      address: ConversationAddress(localAddress: sms.to, remoteAddress: from,
                                                                   gateway: sms.gateway.rawValue), now: now)
    }

    private static func recordConsent(_ db: Database, phone: String, action: ConsentAction, keyword: String,
                                      gateway: SMSGateway, messageID: String, now: Int64) throws {
        try db.execute(cachedSQL: """
            INSERT INTO sms_consent_events (phone, action, keyword, gateway, message_id, at) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [phone, action.rawValue, keyword, gateway.rawValue, messageID, now])
        let state: String
        switch action {
        case .optOut: state = "opted_out"
        case .optIn: state = "opted_in"
        case .help: return
        }
        try db.execute(cachedSQL: """
            INSERT INTO sms_consent (phone, state, keyword, gateway, message_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (phone) DO UPDATE SET state = excluded.state, keyword = excluded.keyword, gateway = excluded.gateway,
                message_id = excluded.message_id, updated_at = excluded.updated_at
            """, arguments: [phone, state, keyword, gateway.rawValue, messageID, now])
        try audit(db, actorKind: "channel", actorID: Channel.sms.rawValue,
                  action: action == .optOut ? "sms.opted_out" : "sms.opted_in", messageID: messageID, now: now)
    }

    /// The consent record of a number, if it ever sent a keyword.
    public func consent(phone: String) async throws -> ConsentRecord? {
        try await pool.read { db in try Self.consent(db, phone: phone) }
    }

    static func consent(_ db: Database, phone: String) throws -> ConsentRecord? {
        try Row.fetchOne(db, cachedSQL: "SELECT phone, state, keyword, gateway, updated_at FROM sms_consent WHERE phone = ?",
                         arguments: [phone]).map { row in
            ConsentRecord(phone: row["phone"], optedOut: (row["state"] as String) == "opted_out", keyword: row["keyword"],
                          gateway: SMSGateway(rawValue: row["gateway"]) ?? .twilio, updatedAt: row["updated_at"])
        }
    }

    /// A delivery report from a gateway, matched by the gateway's id for the message (Twilio)
    /// or by our message id (Kannel's dlr-url carries it). Status only moves forward
    /// (queued → sent → delivered; failed is final), so reports arriving out of order never
    /// undo a later state. Returns false when no outbound message matches.
    @discardableResult
    public func recordDeliveryReport(gatewayMessageID: String? = nil, messageID: String? = nil, gateway: SMSGateway,
                                     status: DeliveryStatus, reason: String?, now: Int64 = Timestamp.now()) async throws -> Bool {
        try await write { db in
            let row: Row?
            if let gatewayMessageID {
                row = try Row.fetchOne(db, cachedSQL: """
                    SELECT id, conversation_id, delivery_status FROM messages WHERE channel = 'sms' AND external_id = ? AND direction = 'outbound'
                    """, arguments: [gateway.externalID(gatewayMessageID)])
            } else if let messageID {
                row = try Row.fetchOne(db, cachedSQL: """
                    SELECT id, conversation_id, delivery_status FROM messages WHERE id = ? AND channel = 'sms' AND direction = 'outbound'
                    """, arguments: [messageID])
            } else {
                row = nil
            }
            guard let row else { return false }
            let current = DeliveryStatus(rawValue: row["delivery_status"] ?? "") ?? .queued
            guard Self.rank(status) > Self.rank(current) else { return true }
            try db.execute(cachedSQL: """
                UPDATE messages SET delivery_status = ?, delivery_updated_at = ?, failure_reason = ? WHERE id = ?
                """, arguments: [status.rawValue, now, status == .failed ? reason : nil, row["id"] as String])
            try Self.messageStatusEvent(db, messageID: row["id"], conversationID: row["conversation_id"], status: status, now: now)
            if status == .failed {
                try Self.audit(db, actorKind: "channel", actorID: Channel.sms.rawValue, action: "message.delivery_failed",
                          conversationID: row["conversation_id"], messageID: row["id"], now: now)
            }
            return true
        }
    }

    private static func rank(_ status: DeliveryStatus) -> Int {
        switch status {
        case .queued: 0
        case .sent: 1
        case .delivered: 2
        case .failed: 3
        }
    }
}
