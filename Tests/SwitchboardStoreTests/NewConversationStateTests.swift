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

    /// The first message at 1000 creates the conversation; the second, at `secondAt`, joins it.
    static func checkFirstThenSecond(_ store: SwitchboardStore, first: IngestResult, second: IngestResult,
                                     secondAt: Int64 = 2000, visitor: String? = nil) async throws {
        #expect(!first.duplicate && !second.duplicate)
        #expect(second.conversationID == first.conversationID)
        // State after both: the second message moved the clock, the wait still dates from the first.
        let after = try await state(store, first.conversationID)
        #expect(after == State(status: "open", createdAt: 1000, updatedAt: secondAt, lastMessageAt: secondAt, waitingSince: 1000,
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
        func mail(_ delivery: String, _ id: String, to: String = "support@clinic.example", tokens: [String] = [],
                  now: Int64) async throws -> IngestResult {
            try await store.recordEmailMessage(
                EmailInbound(source: .smtp, deliveryID: delivery, raw: [], rfcMessageID: id, fromAddress: "Pat@Example.NET",
                             fromName: "Pat", toAddress: to, subject: "Hi", text: "hello", html: nil,
                             quoted: nil, threadReferences: [], replyTokens: tokens, sentAt: 1, autoReply: nil, attachments: []),
                reopenWindowMilliseconds: 0, now: now)
        }
        /// Where replies go: the reply token and the two addresses, inserted with the conversation.
        func route(_ conversationID: String) async throws -> (token: String?, local: String?, remote: String?) {
            try await store.pool.read { db in
                let row = try #require(try Row.fetchOne(db, sql: """
                    SELECT reply_token, local_address, remote_address FROM conversations WHERE id = ?
                    """, arguments: [conversationID]))
                return (row["reply_token"], row["local_address"], row["remote_address"])
            }
        }
        let first = try await mail("smtp:1", "a@example.net", now: 1000)
        #expect(try await Self.state(store, first.conversationID).waitingSince == 1000)
        let firstRoute = try await route(first.conversationID)
        let token = try #require(firstRoute.token)
        #expect(token.count == 16 && token.allSatisfy { $0.isLowercase || $0.isNumber })
        #expect(firstRoute.local == "support@clinic.example" && firstRoute.remote == "pat@example.net")
        // A new mail without a reference to ours starts its own conversation, also open and
        // waiting, with a token of its own and the address it was sent to.
        let other = try await mail("smtp:2", "b@example.net", to: "billing@clinic.example", now: 2000)
        #expect(other.conversationID != first.conversationID)
        #expect(try await Self.state(store, other.conversationID)
            == State(status: "open", createdAt: 2000, updatedAt: 2000, lastMessageAt: 2000, waitingSince: 2000, chatVisitorID: nil))
        let otherRoute = try await route(other.conversationID)
        #expect(otherRoute.token != nil && otherRoute.token != token)
        #expect(otherRoute.local == "billing@clinic.example" && otherRoute.remote == "pat@example.net")
        // Mail to the first thread's reply token joins it, and leaves its token and addresses as they were.
        let reply = try await mail("smtp:3", "c@example.net", to: "support+\(token)@clinic.example", tokens: [token.uppercased()],
                                   now: 3000)
        try await Self.checkFirstThenSecond(store, first: first, second: reply, secondAt: 3000)
        let after = try await route(first.conversationID)
        #expect(after.token == token && after.local == "support@clinic.example" && after.remote == "pat@example.net")
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
