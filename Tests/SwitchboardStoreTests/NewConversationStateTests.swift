import Foundation
import GRDB
import Testing
@testable import SwitchboardCore
@testable import SwitchboardStore

/// A conversation created for an inbound message is written once, already in the state that
/// message gives it (`createConversation`); a later message updates it. On every channel.
@Suite struct NewConversationStateTests {
    struct State: Equatable {
        var status: String
        var createdAt: Int64
        var updatedAt: Int64
        var lastMessageAt: Int64
        var waitingSince: Int64?
        var chatVisitorID: String?
    }

    static func state(_ store: SwitchboardStore, _ conversationID: String) async throws -> State {
        try await store.pool.read { db in
            let row = try #require(try Row.fetchOne(db, sql: """
                SELECT status, created_at, updated_at, last_message_at, waiting_since, chat_visitor_id FROM conversations WHERE id = ?
                """, arguments: [conversationID]))
            return State(status: row["status"], createdAt: row["created_at"], updatedAt: row["updated_at"],
                         lastMessageAt: row["last_message_at"], waitingSince: row["waiting_since"], chatVisitorID: row["chat_visitor_id"])
        }
    }

    /// The first message at 1000 creates the conversation; the second, at 2000, joins it.
    static func checkFirstThenSecond(_ store: SwitchboardStore, first: IngestResult, second: IngestResult,
                                     visitor: String? = nil) async throws {
        #expect(!first.duplicate && !second.duplicate)
        #expect(second.conversationID == first.conversationID)
        // State after both: the second message moved the clock, the wait still dates from the first.
        let after = try await state(store, first.conversationID)
        #expect(after == State(status: "open", createdAt: 1000, updatedAt: 2000, lastMessageAt: 2000, waitingSince: 1000,
                               chatVisitorID: visitor))
    }

    @Test func portal() async throws {
        let store = try makeStore()
        let first = try await store.recordPortalMessage(deliveryID: "d1", rawBody: [], contact: InboundContact(portalID: "P-1"),
                                                        threadID: nil, messageID: "m1", text: "hi", sentAt: 1, now: 1000)
        #expect(try await Self.state(store, first.conversationID)
            == State(status: "open", createdAt: 1000, updatedAt: 1000, lastMessageAt: 1000, waitingSince: 1000, chatVisitorID: nil))
        let second = try await store.recordPortalMessage(deliveryID: "d2", rawBody: [], contact: InboundContact(portalID: "P-1"),
                                                         threadID: nil, messageID: "m2", text: "again", sentAt: 2, now: 2000)
        try await Self.checkFirstThenSecond(store, first: first, second: second)
    }

    @Test func portalByThreadID() async throws {
        let store = try makeStore()
        let first = try await store.recordPortalMessage(deliveryID: "d1", rawBody: [], contact: InboundContact(portalID: "P-1"),
                                                        threadID: "T-9", messageID: "m1", text: "hi", sentAt: 1, now: 1000)
        let second = try await store.recordPortalMessage(deliveryID: "d2", rawBody: [], contact: InboundContact(portalID: "P-1"),
                                                         threadID: "T-9", messageID: "m2", text: "again", sentAt: 2, now: 2000)
        try await Self.checkFirstThenSecond(store, first: first, second: second)
    }

    @Test func sms() async throws {
        let store = try makeStore()
        func sms(_ id: String, now: Int64) async throws -> IngestResult {
            try await store.recordSMSMessage(SMSInbound(gateway: .twilio, gatewayMessageID: id, raw: [], from: "+15550999",
                                                        to: "+15550000", text: "hello", sentAt: 1),
                                             reopenWindowMilliseconds: 0, now: now)
        }
        let first = try await sms("SM1", now: 1000)
        #expect(try await Self.state(store, first.conversationID).waitingSince == 1000)
        try await Self.checkFirstThenSecond(store, first: first, second: try await sms("SM2", now: 2000))
    }

    /// The reply goes back the way the patient's latest message came: the gateway and the
    /// number written to follow each message, though they are written only when they change.
    @Test func smsRepliesFollowTheGatewayAndNumberOfTheLatestMessage() async throws {
        let store = try makeStore()
        func sms(_ id: String, gateway: SMSGateway, to: String, now: Int64) async throws -> IngestResult {
            try await store.recordSMSMessage(SMSInbound(gateway: gateway, gatewayMessageID: id, raw: [], from: "+15550999",
                                                        to: to, text: "hello", sentAt: 1),
                                             reopenWindowMilliseconds: 0, now: now)
        }
        func route(_ conversationID: String) async throws -> [String?] {
            try await store.pool.read { db in
                let row = try #require(try Row.fetchOne(db, sql: """
                    SELECT gateway, local_address, remote_address FROM conversations WHERE id = ?
                    """, arguments: [conversationID]))
                return [row["gateway"], row["local_address"], row["remote_address"]]
            }
        }
        let first = try await sms("SM1", gateway: .twilio, to: "+15550000", now: 1000)
        #expect(try await route(first.conversationID) == ["twilio", "+15550000", "+15550999"])
        let same = try await sms("SM2", gateway: .twilio, to: "+15550000", now: 2000)
        #expect(same.conversationID == first.conversationID)
        #expect(try await route(first.conversationID) == ["twilio", "+15550000", "+15550999"])
        let moved = try await sms("K3", gateway: .kannel, to: "+15550001", now: 3000)
        #expect(moved.conversationID == first.conversationID)
        #expect(try await route(first.conversationID) == ["kannel", "+15550001", "+15550999"])
        #expect(try await Self.state(store, first.conversationID).lastMessageAt == 3000)
    }

    @Test func email() async throws {
        let store = try makeStore()
        func mail(_ delivery: String, _ id: String, references: [String], now: Int64) async throws -> IngestResult {
            try await store.recordEmailMessage(
                EmailInbound(source: .smtp, deliveryID: delivery, raw: [], rfcMessageID: id, fromAddress: "pat@example.net",
                             fromName: "Pat", toAddress: "support@clinic.example", subject: "Hi", text: "hello", html: nil,
                             quoted: nil, threadReferences: references, replyTokens: [], sentAt: 1, autoReply: nil, attachments: []),
                reopenWindowMilliseconds: 0, now: now)
        }
        let first = try await mail("smtp:1", "a@example.net", references: [], now: 1000)
        #expect(try await Self.state(store, first.conversationID).waitingSince == 1000)
        // A new mail without a reference to ours starts its own conversation, also open and waiting.
        let other = try await mail("smtp:2", "b@example.net", references: [], now: 2000)
        #expect(other.conversationID != first.conversationID)
        #expect(try await Self.state(store, other.conversationID)
            == State(status: "open", createdAt: 2000, updatedAt: 2000, lastMessageAt: 2000, waitingSince: 2000, chatVisitorID: nil))
    }

    @Test func chat() async throws {
        let store = try makeStore()
        func chat(_ client: String, now: Int64) async throws -> IngestResult {
            try await store.recordChatMessage(ChatInbound(visitorID: "vis_a", identity: nil, displayName: nil, clientID: client,
                                                          text: "hello", raw: []),
                                              reopenWindowMilliseconds: 0, now: now).result
        }
        let first = try await chat("c1", now: 1000)
        #expect(try await Self.state(store, first.conversationID)
            == State(status: "open", createdAt: 1000, updatedAt: 1000, lastMessageAt: 1000, waitingSince: 1000, chatVisitorID: "vis_a"))
        try await Self.checkFirstThenSecond(store, first: first, second: try await chat("c2", now: 2000), visitor: "vis_a")
    }
}
