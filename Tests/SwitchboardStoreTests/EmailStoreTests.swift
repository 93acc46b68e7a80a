import Foundation
import GRDB
import Testing
@testable import SwitchboardCore
@testable import SwitchboardStore

@Suite struct EmailStoreTests {
    let day: Int64 = 86_400_000

    func mail(_ delivery: String, id: String, from: String = "pat@example.net", references: [String] = [],
              tokens: [String] = [], subject: String = "Appointment", autoReply: String? = nil,
              attachments: [EmailAttachmentRecord] = []) -> EmailInbound {
        EmailInbound(source: .smtp, deliveryID: delivery, raw: Array("raw \(delivery)".utf8), rfcMessageID: id,
                     fromAddress: from, fromName: "Pat", toAddress: "support@clinic.example", subject: subject,
                     text: "hello", html: "<p>hello</p>", quoted: "> before", threadReferences: references,
                     replyTokens: tokens, sentAt: 1, autoReply: autoReply, attachments: attachments)
    }

    /// Queues an agent reply and returns (its outbox item, its outbound context).
    func replyContext(_ store: SwitchboardStore, conversation: String, agent: Agent, now: Int64) async throws
        -> (OutboxItem, EmailOutboundContext) {
        _ = try await store.reply(conversationID: conversation, by: agent, text: "see you", now: now)
        let item = try #require(try await store.dueOutboxItems(channels: [.email], now: now + 100_000, limit: 10, excluding: [])
            .first { $0.conversationID == conversation })
        return (item, try await store.emailOutboundContext(for: item, domain: "clinic.example", now: now))
    }

    @Test func threadsByOurMessageIDThenTokenAndNeverBySubject() async throws {
        let store = try makeStore()
        let admin = try await store.createAgent(name: "A", email: "a@example.org", role: .admin, team: nil).agent
        let first = try await store.recordEmailMessage(mail("smtp:q1", id: "p1@example.net"), reopenWindowMilliseconds: day, now: 1000)
        #expect(!first.duplicate)
        // Same subject, no references: a new conversation.
        let sameSubject = try await store.recordEmailMessage(mail("smtp:q2", id: "p2@example.net"), reopenWindowMilliseconds: day, now: 1100)
        #expect(sameSubject.conversationID != first.conversationID)
        // References to the patient's own message do not thread (only our outbound ids do).
        let ownRef = try await store.recordEmailMessage(mail("smtp:q3", id: "p3@example.net", references: ["p1@example.net"]),
                                                        reopenWindowMilliseconds: day, now: 1200)
        #expect(ownRef.conversationID != first.conversationID)

        let (item, context) = try await replyContext(store, conversation: first.conversationID, agent: admin, now: 2000)
        #expect(context.rfcMessageID == item.messageID + "@clinic.example")
        #expect(context.toAddress == "pat@example.net" && context.toName == "Pat")
        #expect(context.subject == "Appointment" && context.inReplyTo == "p1@example.net")
        #expect(context.references == ["p1@example.net"])
        #expect(context.localAddress == "support@clinic.example")
        let token = try #require(context.replyToken)
        // The Message-ID is stable across attempts.
        #expect(try await store.emailOutboundContext(for: item, domain: "other.example", now: 2100).rfcMessageID == context.rfcMessageID)

        let answer = try await store.recordEmailMessage(mail("smtp:q4", id: "p4@example.net", references: [context.rfcMessageID]),
                                                        reopenWindowMilliseconds: day, now: 3000)
        #expect(answer.conversationID == first.conversationID)
        let byToken = try await store.recordEmailMessage(mail("smtp:q5", id: "p5@example.net", tokens: [token.uppercased()]),
                                                         reopenWindowMilliseconds: day, now: 3100)
        #expect(byToken.conversationID == first.conversationID)
        // Someone else quoting our Message-ID starts their own conversation.
        let stranger = try await store.recordEmailMessage(
            mail("smtp:q6", id: "x1@example.org", from: "stranger@example.org", references: [context.rfcMessageID], tokens: [token]),
            reopenWindowMilliseconds: day, now: 3200)
        #expect(stranger.conversationID != first.conversationID)

        // Resolved: reopens within the window, a new conversation after it.
        _ = try await store.resolveConversation(id: first.conversationID, by: admin, now: 4000)
        let reopened = try await store.recordEmailMessage(mail("smtp:q7", id: "p7@example.net", tokens: [token]),
                                                          reopenWindowMilliseconds: day, now: 4000 + day - 1)
        #expect(reopened.conversationID == first.conversationID)
        _ = try await store.resolveConversation(id: first.conversationID, by: admin, now: 5 * day)
        let late = try await store.recordEmailMessage(mail("smtp:q8", id: "p8@example.net", tokens: [token]),
                                                      reopenWindowMilliseconds: day, now: 7 * day)
        #expect(late.conversationID != first.conversationID)
    }

    @Test func dedupesOnMessageIDAcrossDeliveriesAndKeepsAttachments() async throws {
        let store = try makeStore()
        let admin = try await store.createAgent(name: "A", email: "a@example.org", role: .admin, team: nil).agent
        let pdf = EmailAttachmentRecord(filename: "results.pdf", contentType: "application/pdf", size: 4, contentID: nil,
                                        isInline: false, data: [1, 2, 3, 4])
        let big = EmailAttachmentRecord(filename: "scan.tiff", contentType: "image/tiff", size: 50_000_000, contentID: nil,
                                        isInline: false, data: nil)
        let first = try await store.recordEmailMessage(mail("smtp:q1", id: "p1@example.net", attachments: [pdf, big]),
                                                       reopenWindowMilliseconds: day)
        let again = try await store.recordEmailMessage(mail("imap:acct/INBOX:7:1", id: "p1@example.net"), reopenWindowMilliseconds: day)
        #expect(again.duplicate && again.messageID == first.messageID)
        let redelivery = try await store.recordEmailMessage(mail("smtp:q1", id: "other"), reopenWindowMilliseconds: day)
        #expect(redelivery.duplicate && redelivery.messageID == first.messageID)
        #expect(try await store.count("messages") == 1)
        #expect(try await store.hasInboundDelivery(channel: .email, deliveryID: "imap:acct/INBOX:7:1"))
        #expect(!(try await store.hasInboundDelivery(channel: .email, deliveryID: "imap:acct/INBOX:7:2")))

        let detail = try await store.readConversation(id: first.conversationID, by: admin, sourceAddress: nil)
        let message = try #require(detail.messages.first)
        #expect(message.email?.subject == "Appointment" && message.email?.quoted == "> before" && message.email?.html == "<p>hello</p>")
        #expect(message.attachments.count == 2)
        let kept = try #require(message.attachments.first { $0.filename == "results.pdf" })
        let dropped = try #require(message.attachments.first { $0.filename == "scan.tiff" })
        #expect(kept.id != nil && dropped.id == nil && dropped.sizeBytes == 50_000_000)
        let content = try await store.readAttachment(conversationID: first.conversationID, attachmentID: kept.id!, by: admin,
                                                     sourceAddress: "127.0.0.1")
        #expect(content.data == [1, 2, 3, 4] && content.filename == "results.pdf")
        // An attachment id from another conversation is not found through this one.
        let other = try await store.recordEmailMessage(mail("smtp:q9", id: "p9@example.net"), reopenWindowMilliseconds: day)
        await #expect(throws: StoreError.notFound) {
            try await store.readAttachment(conversationID: other.conversationID, attachmentID: kept.id!, by: admin, sourceAddress: nil)
        }
    }

    @Test func automaticMailIsTriagedButMarkedSoNothingAnswersIt() async throws {
        let store = try makeStore()
        let result = try await store.recordEmailMessage(mail("smtp:q1", id: "ooo@example.net", autoReply: "auto_submitted"),
                                                        reopenWindowMilliseconds: day)
        let person = try await store.recordEmailMessage(mail("smtp:q2", id: "p2@example.net"), reopenWindowMilliseconds: day)
        #expect(!result.duplicate)
        let waiting = try await store.untriagedMessages(limit: 10)
        #expect(waiting.map(\.messageID) == [result.messageID, person.messageID])
        #expect(waiting.map(\.automatic) == [true, false])
    }

    @Test func purgeRemovesTheMailsContentAndQuarantineButKeepsItsMessageID() async throws {
        let store = try makeStore()
        let admin = try await store.createAgent(name: "A", email: "a@example.org", role: .admin, team: nil).agent
        let first = try await store.recordEmailMessage(mail("smtp:q1", id: "p1@example.net"), reopenWindowMilliseconds: day, now: 1000)
        let stray = EmailBounce(source: .smtp, deliveryID: "smtp:q2", raw: Array("dsn".utf8), rfcMessageID: "dsn@mx.example.net",
                                originalMessageIDs: ["never@clinic.example"], failed: true, reason: "r", notice: "n")
        #expect(try await store.recordEmailBounce(stray, now: 1100) == .quarantined)
        let result = try await store.purge(olderThan: 5000, operator: "test", dryRun: false, now: 6000)
        #expect(result.messages == 1 && result.journalEntries == 2)
        let message = try #require(try await store.readConversation(id: first.conversationID, by: admin, sourceAddress: nil).messages.first)
        let email = try #require(message.email)
        #expect(message.text == "" && email.subject == nil && email.fromAddress == nil && email.quoted == nil && email.html == nil)
        #expect(email.rfcMessageID == "p1@example.net")
        // The late copy of the same mail is still recognised.
        #expect(try await store.recordEmailMessage(mail("imap:x", id: "p1@example.net"), reopenWindowMilliseconds: day, now: 7000).duplicate)
        #expect(try await store.purge(olderThan: 5000, operator: "test", dryRun: true, now: 8000).journalEntries == 0)
    }

    @Test func bounceMarksOurReplyFailedAndUnknownBouncesAreQuarantined() async throws {
        let store = try makeStore()
        let admin = try await store.createAgent(name: "A", email: "a@example.org", role: .admin, team: nil).agent
        let first = try await store.recordEmailMessage(mail("smtp:q1", id: "p1@example.net"), reopenWindowMilliseconds: day, now: 1000)
        let (item, context) = try await replyContext(store, conversation: first.conversationID, agent: admin, now: 2000)
        try await store.markOutboxDelivered(item, status: .sent, now: 2500)
        let bounce = EmailBounce(source: .smtp, deliveryID: "smtp:q2", raw: Array("dsn".utf8), rfcMessageID: "dsn1@mx.example.net",
                                 originalMessageIDs: [context.rfcMessageID], failed: true, reason: "mail bounced: 5.1.1",
                                 notice: "Delivery of our reply failed: 5.1.1")
        let outcome = try await store.recordEmailBounce(bounce, now: 3000)
        #expect(outcome == .matched(messageID: item.messageID, conversationID: first.conversationID, duplicate: false))
        #expect(try await store.recordEmailBounce(bounce, now: 3100)
            == .matched(messageID: item.messageID, conversationID: first.conversationID, duplicate: true))
        let detail = try await store.readConversation(id: first.conversationID, by: admin, sourceAddress: nil)
        let reply = try #require(detail.messages.first { $0.id == item.messageID })
        #expect(reply.deliveryStatus == .failed && reply.failureReason == "mail bounced: 5.1.1")
        #expect(detail.messages.filter { $0.text.hasPrefix("Delivery of our reply failed") }.count == 1)
        // The notice is never triaged (nothing answers a bounce); only the patient's mail waits.
        #expect(try await store.untriagedMessages(limit: 10).map(\.messageID) == [first.messageID])

        var stray = bounce
        stray.deliveryID = "smtp:q3"
        stray.rfcMessageID = "dsn2@mx.example.net"
        stray.originalMessageIDs = ["never-sent@clinic.example"]
        #expect(try await store.recordEmailBounce(stray) == .quarantined)
        #expect(try await store.recordEmailBounce(stray) == .quarantined)
        #expect(try await store.count("mail_quarantine") == 1)
        #expect(try await store.hasInboundDelivery(channel: .email, deliveryID: "smtp:q3"))
    }

    @Test func imapCursorMovesForwardAndResetsOnANewUIDValidity() async throws {
        let store = try makeStore()
        #expect(try await store.imapCursor(mailbox: "a@host/INBOX") == nil)
        try await store.setIMAPCursor(mailbox: "a@host/INBOX", IMAPCursor(uidValidity: 7, lastUID: 10))
        try await store.setIMAPCursor(mailbox: "a@host/INBOX", IMAPCursor(uidValidity: 7, lastUID: 4))
        #expect(try await store.imapCursor(mailbox: "a@host/INBOX") == IMAPCursor(uidValidity: 7, lastUID: 10))
        try await store.setIMAPCursor(mailbox: "a@host/INBOX", IMAPCursor(uidValidity: 9, lastUID: 0))
        #expect(try await store.imapCursor(mailbox: "a@host/INBOX") == IMAPCursor(uidValidity: 9, lastUID: 0))
    }
}
