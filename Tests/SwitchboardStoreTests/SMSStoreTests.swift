import Foundation
import GRDB
import Testing
@testable import SwitchboardCore
@testable import SwitchboardStore

@Suite struct SMSStoreTests {
    let day: Int64 = 86_400_000

    func sms(_ id: String, from: String = "+15550100000", text: String = "hi", gateway: SMSGateway = .twilio,
             consent: (action: ConsentAction, keyword: String)? = nil, reply: String? = nil) -> SMSInbound {
        SMSInbound(gateway: gateway, gatewayMessageID: id, raw: Array("raw".utf8), from: from, to: "+15559990000",
                   text: text, sentAt: 1, mediaURLs: [("https://api.twilio.com/media/ME1", "image/jpeg")],
                   consent: consent, complianceReply: reply)
    }

    @Test func threadsByNumberAndReopensWithinTheWindow() async throws {
        let store = try makeStore()
        let admin = try await store.createAgent(name: "A", email: "a@example.org", role: .admin, team: nil).agent
        let first = try await store.recordSMSMessage(sms("SM1"), reopenWindowMilliseconds: day, now: 1000)
        let second = try await store.recordSMSMessage(sms("SM2"), reopenWindowMilliseconds: day, now: 2000)
        #expect(first.conversationID == second.conversationID)
        let other = try await store.recordSMSMessage(sms("SM3", from: "+15550100001"), reopenWindowMilliseconds: day, now: 2500)
        #expect(other.conversationID != first.conversationID)
        _ = try await store.resolveConversation(id: first.conversationID, by: admin, now: 3000)
        let reopened = try await store.recordSMSMessage(sms("SM4"), reopenWindowMilliseconds: day, now: 3000 + day - 1)
        #expect(reopened.conversationID == first.conversationID)
        let detail = try await store.readConversation(id: first.conversationID, by: admin, sourceAddress: nil)
        #expect(detail.conversation.status == .open)
        _ = try await store.resolveConversation(id: first.conversationID, by: admin, now: 10 * day)
        let fresh = try await store.recordSMSMessage(sms("SM5"), reopenWindowMilliseconds: day, now: 11 * day + 1)
        #expect(fresh.conversationID != first.conversationID)
        // The gateway's id is the dedupe key; Kannel and Twilio ids never collide.
        let replay = try await store.recordSMSMessage(sms("SM5"), reopenWindowMilliseconds: day, now: 11 * day + 2)
        #expect(replay.duplicate && replay.messageID == fresh.messageID)
        let kannel = try await store.recordSMSMessage(sms("SM5", gateway: .kannel), reopenWindowMilliseconds: day, now: 11 * day + 3)
        #expect(!kannel.duplicate)
        #expect(try await store.count("attachments") == 6)
        let shown = try await store.readConversation(id: fresh.conversationID, by: admin, sourceAddress: nil)
        #expect(shown.messages.first?.attachments == [AttachmentView(url: "https://api.twilio.com/media/ME1", contentType: "image/jpeg")])
        #expect(shown.smsNumber == "+15550100000" && shown.smsConsent == nil)
    }

    @Test func stopBlocksRepliesAndStartLiftsIt() async throws {
        let store = try makeStore()
        let agent = try await store.createAgent(name: "A", email: "a@example.org", role: .agent, team: nil).agent
        let c = try await store.recordSMSMessage(sms("SM1"), reopenWindowMilliseconds: day)
        _ = try await store.reply(conversationID: c.conversationID, by: agent, text: "queued before STOP")
        _ = try await store.recordSMSMessage(sms("SM2", text: "STOP", consent: (.optOut, "STOP"), reply: "unsubscribed"),
                                             reopenWindowMilliseconds: day)
        let consent = try #require(try await store.consent(phone: "+15550100000"))
        #expect(consent.optedOut && consent.keyword == "STOP" && consent.gateway == .twilio)
        #expect(try await store.readConversation(id: c.conversationID, by: agent, sourceAddress: nil).smsConsent == consent)
        await #expect(throws: StoreError.self) {
            try await store.reply(conversationID: c.conversationID, by: agent, text: "after STOP")
        }
        // The reply queued before the STOP is flagged at send time; the confirmation goes regardless.
        let due = try await store.dueOutboxItems(channels: [.sms], now: Timestamp.now() + 1000, limit: 10, excluding: [])
        #expect(due.count == 1)
        #expect(due[0].recipientOptedOut && due[0].purpose == .reply && due[0].remoteAddress == "+15550100000")
        #expect(due[0].localAddress == "+15559990000" && due[0].gateway == .twilio)
        try await store.deadLetterOutbox(due[0], reason: "opted out")
        let next = try await store.dueOutboxItems(channels: [.sms], now: Timestamp.now() + 1000, limit: 10, excluding: [])
        #expect(next.map(\.purpose) == [.compliance] && next[0].text == "unsubscribed")
        _ = try await store.recordSMSMessage(sms("SM3", text: "start", consent: (.optIn, "START")), reopenWindowMilliseconds: day)
        #expect(try await store.consent(phone: "+15550100000")?.optedOut == false)
        _ = try await store.reply(conversationID: c.conversationID, by: agent, text: "after START")
        let events = try await store.pool.read { db in try String.fetchAll(db, sql: "SELECT action FROM sms_consent_events ORDER BY id") }
        #expect(events == ["opt_out", "opt_in"])
    }

    @Test func deliveryReportsOnlyMoveForward() async throws {
        let store = try makeStore()
        let agent = try await store.createAgent(name: "A", email: "a@example.org", role: .agent, team: nil).agent
        let c = try await store.recordSMSMessage(sms("SM1"), reopenWindowMilliseconds: day)
        let reply = try await store.reply(conversationID: c.conversationID, by: agent, text: "hello")
        let item = try #require(try await store.dueOutboxItems(channels: [.sms], now: Timestamp.now() + 1000, limit: 1, excluding: []).first)
        try await store.markOutboxDelivered(item, status: .sent, externalID: SMSGateway.twilio.externalID("SMabc"))
        #expect(try await store.recordDeliveryReport(gatewayMessageID: "SMabc", gateway: .twilio, status: .delivered, reason: nil))
        #expect(try await store.recordDeliveryReport(gatewayMessageID: "SMabc", gateway: .twilio, status: .sent, reason: nil))
        #expect(try await store.recordDeliveryReport(gatewayMessageID: "SMnope", gateway: .twilio, status: .sent, reason: nil) == false)
        var detail = try await store.readConversation(id: c.conversationID, by: agent, sourceAddress: nil)
        #expect(detail.messages.first { $0.id == reply.id }?.deliveryStatus == .delivered)
        #expect(try await store.recordDeliveryReport(messageID: reply.id, gateway: .kannel, status: .failed, reason: "rejected"))
        detail = try await store.readConversation(id: c.conversationID, by: agent, sourceAddress: nil)
        let message = try #require(detail.messages.first { $0.id == reply.id })
        #expect(message.deliveryStatus == .failed && message.failureReason == "rejected")
    }
}
