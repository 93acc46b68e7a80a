import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ServiceLifecycle
import Synchronization
import SwitchboardChat
import SwitchboardConfig
import SwitchboardCore
import SwitchboardMail
import SwitchboardStore

// The web chat's socket, `/chat` (protocol: channels/webchat/PROTOCOL.md).
//
// Trusts: nothing from the browser. The Origin header must be allowed; an anonymous
// visitor is who their signed visitor token says (else a new visitor); an identified
// patient is who the site's HMAC of their id says; every frame is decoded strictly
// (SwitchboardChat) and rate-limited per connection.
// On failure: a bad frame gets an `error` frame and changes nothing; a bad hello, a forged
// identity or a refused origin closes the connection with a 44xx code and a reason; the
// store failing gets an `error` frame (`unavailable`, retry_after_ms) and no ack, so the
// widget retries the same client id. Log lines carry the visitor id, never text,
// identities or addresses.

/// Open chat sockets, by visitor, and which conversation is whose: lets a committed change
/// wake exactly the sockets it concerns, and carries what is never stored (agents typing).
final class ChatHub: Sendable {
    final class Mailbox: Sendable {
        let visitorID: String
        let wake = WakeSignal()
        /// 0 nothing, 1 an agent started typing, 2 stopped.
        let typing = Atomic<Int>(0)
        init(visitorID: String) { self.visitorID = visitorID }
    }

    private struct State {
        var sessions: [Int: Mailbox] = [:]
        var byVisitor: [String: Set<Int>] = [:]
        /// conversation → visitor; "" for conversations known to have none.
        var visitorOfConversation: [String: String] = [:]
    }

    private let state = Mutex(State())
    private let nextID = Atomic<Int>(0)
    /// Every open chat socket, hello or not: what `chat.max_connections` limits.
    let sockets = Atomic<Int>(0)
    /// Signalled on every commit to `events`; the pump reads what changed.
    let eventsCommitted = WakeSignal()

    func register(visitorID: String) -> (id: Int, mailbox: Mailbox) {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let mailbox = Mailbox(visitorID: visitorID)
        state.withLock {
            $0.sessions[id] = mailbox
            $0.byVisitor[visitorID, default: []].insert(id)
        }
        return (id, mailbox)
    }

    func unregister(_ id: Int) {
        state.withLock { state in
            guard let mailbox = state.sessions.removeValue(forKey: id) else { return }
            state.byVisitor[mailbox.visitorID]?.remove(id)
            if state.byVisitor[mailbox.visitorID]?.isEmpty == true { state.byVisitor[mailbox.visitorID] = nil }
        }
    }

    var count: Int { state.withLock { $0.sessions.count } }

    func bind(conversationID: String, visitorID: String) {
        state.withLock { state in
            if state.visitorOfConversation.count > 200_000 { state.visitorOfConversation.removeAll(keepingCapacity: true) }
            state.visitorOfConversation[conversationID] = visitorID
        }
    }

    /// Wakes the sockets of these conversations' visitors; returns the conversations whose
    /// visitor (or lack of one) is not known yet.
    func wake(conversations: Set<String>) -> Set<String> {
        var unknown = Set<String>()
        let mailboxes = state.withLock { state -> [Mailbox] in
            var found: [Mailbox] = []
            for conversation in conversations {
                guard let visitor = state.visitorOfConversation[conversation] else {
                    unknown.insert(conversation)
                    continue
                }
                for id in state.byVisitor[visitor] ?? [] { if let mailbox = state.sessions[id] { found.append(mailbox) } }
            }
            return found
        }
        for mailbox in mailboxes { mailbox.wake.signal() }
        return unknown
    }

    /// An agent is typing (or stopped) in a conversation: tell its visitor's open widgets.
    func agentTyping(conversationID: String, active: Bool) {
        let mailboxes = state.withLock { state -> [Mailbox] in
            guard let visitor = state.visitorOfConversation[conversationID], !visitor.isEmpty else { return [] }
            return (state.byVisitor[visitor] ?? []).compactMap { state.sessions[$0] }
        }
        for mailbox in mailboxes {
            mailbox.typing.store(active ? 1 : 2, ordering: .releasing)
            mailbox.wake.signal()
        }
    }
}

/// Reads the events committed after the last it saw and wakes the chat sockets whose
/// conversations they touch. One reader for all sockets: an idle socket costs no queries.
struct ChatEventPump: Service, CustomStringConvertible {
    var description: String { "ChatEventPump" }
    let store: SwitchboardStore
    let hub: ChatHub
    let logger: Logger

    func run() async throws {
        var cursor = (try? await store.eventBounds().newest) ?? 0
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                await hub.eventsCommitted.wait(timeout: .seconds(5))
                do {
                    if hub.count == 0 {
                        cursor = try await store.eventBounds().newest
                        continue
                    }
                    while true {
                        let (conversations, newest) = try await store.chatEventsAfter(cursor)
                        let reachedEnd = newest == cursor
                        cursor = newest
                        if reachedEnd { break }
                        let unknown = hub.wake(conversations: conversations)
                        if !unknown.isEmpty {
                            let visitors = try await store.chatVisitors(of: unknown)
                            for conversation in unknown { hub.bind(conversationID: conversation, visitorID: visitors[conversation] ?? "") }
                            _ = hub.wake(conversations: Set(visitors.keys))
                        }
                    }
                } catch {
                    logger.error("chat event pump: store read failed", metadata: ["error.type": "\(type(of: error))"])
                }
            }
        } onGracefulShutdown: {
            hub.eventsCommitted.signal()
        }
    }
}

/// The visitor-token key, read (or generated and kept) on first use.
final class VisitorTokenKeeper: Sendable {
    private let configured: [UInt8]?
    private let store: SwitchboardStore
    private let tokens = Mutex<VisitorTokens?>(nil)

    init(configured: Secret?, store: SwitchboardStore) {
        self.configured = configured.map { Array($0.value.utf8) }
        self.store = store
    }

    func get() async throws -> VisitorTokens {
        if let ready = tokens.withLock({ $0 }) { return ready }
        let key: [UInt8]
        if let configured {
            key = configured
        } else {
            key = try await store.generatedSecret(named: "chat.visitor_token_key")
        }
        let made = VisitorTokens(key: key)
        tokens.withLock { $0 = made }
        return made
    }
}

struct ChatController {
    static let path = "/chat"
    let store: SwitchboardStore
    let hub: ChatHub
    let configuration: SwitchboardConfiguration
    let rules: RulesHolder
    let metrics: SwitchboardMetrics
    let tokens: VisitorTokenKeeper
    let triageWake: WakeSignal
    let router: RouterService
    let readiness: Readiness

    var chat: SwitchboardConfiguration.Chat { configuration.chat }

    /// Without an Upgrade header the path answers 426, naming what is needed.
    func register(http: Router<AppRequestContext>) {
        http.get(RouterPath(stringLiteral: Self.path)) { _, _ -> Response in
            throw APIError(.upgradeRequired, code: "upgrade_required", "the chat is a WebSocket: connect with Upgrade: websocket",
                           headers: [.upgrade: "websocket"])
        }
    }

    func upgrade(_ head: HTTPRequest, channel: any NIOCore.Channel, logger: Logger)
        -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let origin = head.headerFields[.origin]
        let host = head.authority
        let allowed = BrowserOrigin.allowed(origin, host: host, listed: chat.allowedOrigins)
        let sourceAddress = channel.remoteAddress?.ipAddress
        let eventLoop = channel.eventLoop
        return .upgrade([:]) { inbound, outbound, context in
            var logger = context.logger
            logger[metadataKey: "source.address"] = "\(sourceAddress ?? "-")"
            guard allowed else {
                metrics.chatRefused(reason: "origin")
                logger.warning("chat refused: origin not allowed", metadata: ["hint": "add the site to chat.allowed_origins"])
                try await outbound.close(.unknown(4403), reason: "origin not allowed")
                return
            }
            guard !readiness.isDraining else {
                try await outbound.close(.unknown(1013), reason: "server shutting down, try again later")
                return
            }
            let open = hub.sockets.add(1, ordering: .relaxed).newValue
            defer { hub.sockets.subtract(1, ordering: .relaxed) }
            guard open <= chat.maxConnections else {
                metrics.chatRefused(reason: "capacity")
                logger.warning("chat refused: chat.max_connections reached", metadata: ["limit": "\(chat.maxConnections)"])
                try await outbound.close(.unknown(1013), reason: "too many connections, try again later")
                return
            }
            let session = ChatSession(controller: self, outbound: outbound, eventLoop: eventLoop, logger: logger)
            try await session.run(inbound: inbound)
        }
    }
}

/// One widget connection.
final class ChatSession: Sendable {
    private struct State {
        var visitorID: String?
        var identity: String?
        var displayName: String?
        var resumeAfter: Int64 = 0
        var lastActivity: ContinuousClock.Instant
        var messages: ChatRateLimiter
        var frames: ChatRateLimiter
        var typingSentAt: ContinuousClock.Instant?
        var typingSent: Bool?
        var hubID: Int?
        var mailbox: ChatHub.Mailbox?
        var closing = false
        /// A hello is being answered (the hello timeout no longer applies).
        var greeting = false
        var welcomeAvailability: ChatServerFrame.Availability?
        /// The newest seq written to this socket: `received` cannot claim beyond it.
        var sentSeq: Int64 = 0
        var receivedSeq: Int64 = 0
        var readSeq: Int64 = 0
    }

    let controller: ChatController
    let outbound: WebSocketOutboundWriter
    /// The connection's event loop: the writer's timeouts are timers on it, not tasks.
    let eventLoop: any EventLoop
    let logger: Mutex<Logger>
    private let state: Mutex<State>
    private let helloDone = WakeSignal()

    init(controller: ChatController, outbound: WebSocketOutboundWriter, eventLoop: any EventLoop, logger: Logger) {
        self.controller = controller
        self.outbound = outbound
        self.eventLoop = eventLoop
        self.logger = Mutex(logger)
        let now = Date().timeIntervalSince1970
        state = Mutex(State(lastActivity: .now,
                            messages: ChatRateLimiter(perMinute: controller.chat.messagesPerMinute, burst: controller.chat.messageBurst, now: now),
                            frames: ChatRateLimiter(perMinute: 600, burst: 60, now: now)))
    }

    var log: Logger { logger.withLock { $0 } }
    var store: SwitchboardStore { controller.store }

    func run(inbound: WebSocketInboundStream) async throws {
        defer {
            if let id = state.withLock({ $0.hubID }) { controller.hub.unregister(id) }
            controller.metrics.chatConnections(controller.hub.count)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await message in inbound.messages(maxSize: self.controller.chat.maxFrameBytes) {
                    guard case .text(let text) = message else {
                        try await self.refuse(ChatFrameError("bad_frame", "frames are JSON text, not binary"))
                        continue
                    }
                    // The listener's frame limit is shared with the event stream; the chat's own
                    // is enforced here, on the whole message.
                    guard text.utf8.count <= self.controller.chat.maxFrameBytes else {
                        self.controller.metrics.chatRefused(reason: "too_big")
                        self.log.notice("chat closed: frame above chat.max_frame_bytes", metadata: ["limit": "\(self.controller.chat.maxFrameBytes)"])
                        try await self.close(1009, "frame larger than \(self.controller.chat.maxFrameBytes) bytes")
                        return
                    }
                    if try await !self.handle(text) { return }
                }
            }
            group.addTask { try await self.writer() }
            // No task of its own for SIGTERM: the WebSocket handler closes with 1000, which
            // ends the reader and with it the session. The widget reconnects with backoff and
            // resumes (nothing unacknowledged was stored, nothing stored is lost).
            _ = try await group.next()
            group.cancelAll()
        }
        if let visitor = state.withLock({ $0.visitorID }) {
            log.info("chat closed", metadata: ["visitor.id": "\(visitor)"])
        }
    }

    private func send(_ frame: ChatServerFrame) async throws {
        try await outbound.write(.text(frame.json))
    }

    private func close(_ code: Int, _ reason: String) async throws {
        state.withLock { $0.closing = true }
        try await outbound.close(code == 1001 ? .goingAway : code == 1008 ? .policyViolation : code == 1009 ? .messageTooLarge : .unknown(UInt16(code)), reason: reason)
    }

    private func refuse(_ error: ChatFrameError, clientID: String? = nil, retryAfter: Int? = nil) async throws {
        // (the error's own client id, if any, goes out with it: see ChatServerFrame.json)
        controller.metrics.chatRefused(reason: error.code)
        log.notice("chat frame refused", metadata: ["reason": "\(error.code)", "visitor.id": "\(state.withLock { $0.visitorID } ?? "-")"])
        try await send(.error(error, clientID: clientID, retryAfterMilliseconds: retryAfter))
    }

    /// Handles one text frame; false ends the connection.
    private func handle(_ text: String) async throws -> Bool {
        let now = Date().timeIntervalSince1970
        if let wait = state.withLock({ $0.frames.take(now: now) }) {
            controller.metrics.chatRefused(reason: "rate_limited")
            log.warning("chat closed: frame flood", metadata: ["retry.in_ms": "\(wait)"])
            try await close(1008, "too many frames")
            return false
        }
        let frame: ChatClientFrame
        do {
            frame = try ChatCodec.decode(text, limits: ChatLimits(maxTextCharacters: controller.chat.maxMessageCharacters))
        } catch {
            try await refuse(error)
            if state.withLock({ $0.visitorID }) == nil {
                try await close(4400, "the first frame must be a valid hello")
                return false
            }
            return true
        }
        let visitor = state.withLock { $0.visitorID }
        if case .hello(let hello) = frame {
            guard visitor == nil else {
                try await refuse(ChatFrameError("unexpected_hello", "hello is sent once per connection"))
                return true
            }
            return try await greet(hello)
        }
        guard let visitorID = visitor else {
            try await refuse(ChatFrameError("hello_required", "the first frame must be hello"))
            try await close(4400, "the first frame must be hello")
            return false
        }
        switch frame {
        case .hello:
            return true
        case .message(let clientID, let body):
            state.withLock { $0.lastActivity = .now }
            if let wait = state.withLock({ $0.messages.take(now: now) }) {
                try await refuse(ChatFrameError("rate_limited", "too many messages; wait before sending more"), clientID: clientID, retryAfter: wait)
                return true
            }
            try await store(visitorID: visitorID, clientID: clientID, text: body, raw: text)
        case .typing(let active):
            state.withLock { $0.lastActivity = .now }
            try await patientTyping(visitorID: visitorID, active: active)
        case .received(let seq):
            // Only what this socket was sent, and only forward: one write per advance.
            let upTo = state.withLock { state -> Int64? in
                let capped = min(seq, state.sentSeq)
                guard capped > state.receivedSeq else { return nil }
                state.receivedSeq = capped
                return capped
            }
            if let upTo { _ = try? await store.markChatReceived(visitorID: visitorID, upTo: upTo) }
        case .read(let seq):
            let upTo = state.withLock { state -> Int64? in
                state.lastActivity = .now
                let capped = min(seq, state.sentSeq)
                guard capped > state.readSeq else { return nil }
                state.readSeq = capped
                return capped
            }
            if let upTo { _ = try? await store.markChatRead(visitorID: visitorID, upTo: upTo) }
        case .continue(let channel, let address):
            state.withLock { $0.lastActivity = .now }
            if let wait = state.withLock({ $0.messages.take(now: now) }) {
                try await refuse(ChatFrameError("rate_limited", "too many requests; wait before trying again"), retryAfter: wait)
                return true
            }
            try await continueOn(channel, address: address, visitorID: visitorID)
        case .ping:
            try await send(.pong)
        }
        return true
    }

    /// Verifies who is connecting, sends the welcome, then registers the socket: the writer
    /// replays what the visitor has not seen only after the welcome went out.
    private func greet(_ hello: ChatClientFrame.Hello) async throws -> Bool {
        state.withLock { $0.greeting = true }
        let tokens = try await controller.tokens.get()
        var visitorID: String?
        var identified = false
        if let identity = hello.identity {
            guard let secret = controller.chat.identitySecret else {
                controller.metrics.chatRefused(reason: "identity")
                log.warning("chat refused: identified hello but chat.identity_secret is not set")
                try await send(.error(ChatFrameError("identity_not_configured", "this site does not accept identified chats")))
                try await close(4401, "identity not accepted")
                return false
            }
            let expired = identity.expires.map { $0 < Int64(Date().timeIntervalSince1970) } ?? controller.chat.identityRequireExpiry
            guard !expired, ChatIdentityHash.isValid(id: identity.id, expires: identity.expires, hash: identity.hash,
                                                     secret: Array(secret.value.utf8)) else {
                controller.metrics.chatRefused(reason: "identity")
                log.warning("chat refused: identity hash does not match", metadata: [
                    "hint": "the site must sign identity.id (and identity.expires) with chat.identity_secret", "expired": "\(expired)"])
                try await send(.error(ChatFrameError("identity_rejected", expired ? "identity.expires is missing or past"
                                                                                  : "identity.hash does not match identity.id")))
                try await close(4401, "identity rejected")
                return false
            }
            identified = true
            visitorID = try await store.identifiedChatVisitor(identity: identity.id, displayName: identity.name)
            state.withLock {
                $0.identity = identity.id
                $0.displayName = identity.name
            }
        } else if let token = hello.visitorToken {
            if let verified = tokens.verify(token), try await store.chatVisitorIdentity(verified) == nil {
                visitorID = verified
            } else {
                controller.metrics.chatRefused(reason: "token")
                log.notice("chat: visitor token not valid here; a new visitor starts", metadata: ["reason": "token"])
            }
        }
        let id = visitorID ?? Identifier.make(prefix: "vis")
        let resumed = visitorID != nil
        let latest = try await store.chatLatestSeq(visitorID: id)
        logger.withLock { $0[metadataKey: "visitor.id"] = "\(id)" }
        let availability = try await availability(teamID: nil)
        state.withLock {
            $0.visitorID = id
            $0.resumeAfter = min(hello.lastSeq ?? 0, latest)
            $0.lastActivity = .now
            $0.welcomeAvailability = availability
        }
        try await send(.welcome(.init(visitorToken: identified ? "" : tokens.issue(visitorID: id), identified: identified,
                                      seq: latest, availability: availability,
                                      maxMessageCharacters: controller.chat.maxMessageCharacters)))
        let (hubID, mailbox) = controller.hub.register(visitorID: id)
        state.withLock {
            $0.hubID = hubID
            $0.mailbox = mailbox
        }
        controller.metrics.chatConnections(controller.hub.count)
        log.info("chat connected", metadata: ["identified": "\(identified)", "resumed": "\(resumed)", "after": "\(hello.lastSeq ?? 0)"])
        helloDone.signal()
        return true
    }

    private func availability(teamID: String?) async throws -> ChatServerFrame.Availability {
        let now = Date()
        let hours = controller.rules.rules.hours
        let open = hours?.isOpen(at: now) ?? true
        let online = try await store.chatAgentsOnline(teamID: teamID)
        let next = open ? nil : hours?.nextOpening(after: now).map { Timestamp.format(Int64($0.timeIntervalSince1970 * 1000)) }
        return .init(open: open, agentsAvailable: open && online > 0, nextOpening: next, continueWith: continueChannels)
    }

    /// The channels a chat can continue on: those the daemon can send on.
    private var continueChannels: [ChatClientFrame.ContinueChannel] {
        let configuration = controller.configuration
        var channels: [ChatClientFrame.ContinueChannel] = []
        if configuration.email.outboundEnabled { channels.append(.email) }
        if configuration.twilio.outboundEnabled || configuration.kannel.outboundEnabled { channels.append(.sms) }
        return channels
    }

    private func store(visitorID: String, clientID: String, text: String, raw: String) async throws {
        let (identity, name) = state.withLock { ($0.identity, $0.displayName) }
        let inbound = ChatInbound(visitorID: visitorID, identity: identity, displayName: name, clientID: clientID, text: text,
                                  raw: Array(raw.utf8))
        let stored: (result: IngestResult, seq: Int64)
        do {
            stored = try await store.recordChatMessage(inbound, reopenWindowMilliseconds: controller.chat.reopenWindowSeconds * 1000)
        } catch is StoreOverloaded {
            LoadShedding.shared.refused(.chat, metrics: controller.metrics, logger: log)
            try await send(.error(ChatFrameError("overloaded", "the server is busy; send the message again in a moment"),
                                  clientID: clientID, retryAfterMilliseconds: 1000))
            return
        } catch {
            if !(error is StoreError) { controller.metrics.storeFailure() }
            controller.metrics.chatRefused(reason: "store")
            log.error("chat message not stored", metadata: ["error.type": "\(type(of: error))"])
            try await send(.error(ChatFrameError("unavailable", "the message was not stored; send it again"), clientID: clientID,
                                  retryAfterMilliseconds: 2000))
            return
        }
        controller.hub.bind(conversationID: stored.result.conversationID, visitorID: visitorID)
        if !stored.result.duplicate {
            controller.metrics.messageIn(channel: .chat)
            controller.triageWake.signal()
            log.info("chat message stored", metadata: ["conversation.id": "\(stored.result.conversationID)",
                                                       "message.id": "\(stored.result.messageID)"])
        }
        try await send(.ack(clientID: clientID, seq: stored.seq, duplicate: stored.result.duplicate))
        state.withLock { $0.mailbox }?.wake.signal()
    }

    /// Tells the conversation's agents the patient started or stopped typing — changes only,
    /// at most one every 1.5 s (each is an event row).
    private func patientTyping(visitorID: String, active: Bool) async throws {
        let now = ContinuousClock.now
        let due = state.withLock { state -> Bool in
            // A change of state, at most one every 1.5 s (an event row each).
            if state.typingSent == active { return false }
            if let last = state.typingSentAt, now - last < .milliseconds(1500) { return false }
            state.typingSentAt = now
            state.typingSent = active
            return true
        }
        guard due, let conversation = try await store.chatState(visitorID: visitorID) else { return }
        try? await store.recordTyping(conversationID: conversation.conversationID, active: active)
    }

    private func continueOn(_ channel: ChatClientFrame.ContinueChannel, address: String, visitorID: String) async throws {
        guard continueChannels.contains(channel) else {
            try await refuse(ChatFrameError("channel_unavailable", "this site cannot continue chats by \(channel.rawValue)"))
            return
        }
        let normalised: String
        switch channel {
        case .sms:
            guard let phone = try? PhoneNumber.normalise(address, defaultCountryCode: controller.configuration.phone.defaultCountryCode) else {
                try await refuse(ChatFrameError("invalid_field", "field address must be a phone number"))
                return
            }
            normalised = phone
        case .email:
            // What the composer will accept when the agent replies, or the reply would dead-letter.
            guard MailComposer.isAddrSpec(address) else {
                try await refuse(ChatFrameError("invalid_field", "field address must be an email address"))
                return
            }
            normalised = address.lowercased()
        }
        switch try await store.continueChat(visitorID: visitorID, channel: channel == .sms ? .sms : .email, address: normalised) {
        case .continued(let conversation):
            log.info("chat continues on another channel", metadata: ["conversation.id": "\(conversation)", "to.channel": "\(channel.rawValue)"])
            try await send(.continued(channel: channel))
        case .noConversation:
            try await refuse(ChatFrameError("no_conversation", "send a message first; then the conversation can continue elsewhere"))
        case .alreadyContinued:
            try await refuse(ChatFrameError("already_continued", "this conversation already continues on another channel"))
        case .addressUnavailable:
            try await refuse(ChatFrameError("address_unavailable", "this address cannot be used from the chat; please call the clinic"))
        }
    }

    /// Sends the visitor's stream and the changes of their conversation as they happen;
    /// closes the connection when hello never came or the patient has gone idle.
    private func writer() async throws {
        let chat = controller.chat
        // Hello.
        await helloDone.wait(timeout: .seconds(chat.helloTimeoutSeconds), on: eventLoop)
        // A hello that arrived in time but is still being answered (a slow store) is waited for.
        while !Task.isCancelled, state.withLock({ $0.greeting && $0.mailbox == nil && !$0.closing }) {
            await helloDone.wait(timeout: .seconds(1), on: eventLoop)
        }
        guard let (visitorID, mailbox, resumeAfter, welcomed) = state.withLock({ state in
            state.mailbox.map { (state.visitorID!, $0, state.resumeAfter, state.welcomeAvailability) } }) else {
            if !Task.isCancelled, !state.withLock({ $0.closing || $0.greeting }) {
                controller.metrics.chatRefused(reason: "hello_timeout")
                log.notice("chat closed: no hello in time", metadata: ["limit.seconds": "\(chat.helloTimeoutSeconds)"])
                try await close(4408, "no hello within \(chat.helloTimeoutSeconds) seconds")
            }
            return
        }
        var cursor = resumeAfter
        var shown: ChatConversationState?
        var shownQueue: (position: Int, waitSeconds: Int?)?
        var shownAvailability = welcomed
        var availabilityCheckedAt = ContinuousClock.now - .seconds(3600)
        while !Task.isCancelled {
            let now = ContinuousClock.now
            let idleFor = now - state.withLock { $0.lastActivity }
            if idleFor > .seconds(chat.idleTimeoutSeconds) {
                controller.metrics.chatRefused(reason: "idle")
                log.info("chat closed: idle", metadata: ["limit.seconds": "\(chat.idleTimeoutSeconds)"])
                try await close(1001, "idle")
                return
            }
            // Woken by a change of this visitor's (or by the 30 s tick: the queue moves
            // without events of ours): what is new in the stream, then the state.
            var full = true
            while full {
                let items = try await store.chatStream(visitorID: visitorID, after: cursor)
                for item in items {
                    try await send(.message(.init(
                        seq: item.seq, sender: item.direction == .inbound ? .patient : item.senderKind == "agent" ? .agent : .system,
                        text: item.text, at: Timestamp.format(item.createdAt), clientID: item.clientID,
                        agentName: item.senderKind == "agent" ? item.agentName : nil)))
                    cursor = item.seq
                    state.withLock { $0.sentSeq = item.seq }
                }
                full = items.count == 200
            }
            if let current = try await store.chatState(visitorID: visitorID) {
                controller.hub.bind(conversationID: current.conversationID, visitorID: visitorID)
                try await sendChanges(from: shown, to: current)
                if shown?.conversationID != current.conversationID { shownQueue = nil }
                shown = current
                // Waiting for an agent: where it stands in the router's queue.
                if current.status == .open, current.assigneeName == nil,
                   let estimate = await controller.router.waitEstimate(for: current.conversationID) {
                    let waitSeconds = estimate.estimatedWait.map { Int(($0 + 999) / 1000) }
                    if shownQueue?.position != estimate.position || shownQueue?.waitSeconds != waitSeconds {
                        try await send(.queue(position: estimate.position, estimatedWaitSeconds: waitSeconds))
                        shownQueue = (estimate.position, waitSeconds)
                    }
                }
            }
            if now - availabilityCheckedAt >= .seconds(60) {
                let availability = try await availability(teamID: shown?.teamID)
                if let shownAvailability, availability != shownAvailability { try await send(.availability(availability)) }
                shownAvailability = availability
                availabilityCheckedAt = now
            }
            switch mailbox.typing.exchange(0, ordering: .acquiringAndReleasing) {
            case 1: try await send(.typing(active: true))
            case 2: try await send(.typing(active: false))
            default: break
            }
            let remainingIdle = Duration.seconds(chat.idleTimeoutSeconds) - (ContinuousClock.now - state.withLock { $0.lastActivity })
            await mailbox.wake.wait(timeout: min(.seconds(30), max(.milliseconds(10), remainingIdle + .milliseconds(5))),
                                    on: eventLoop)
        }
    }

    private func sendChanges(from old: ChatConversationState?, to new: ChatConversationState) async throws {
        let sameConversation = old?.conversationID == new.conversationID
        if let name = new.assigneeName, !sameConversation || old?.assigneeName != name {
            try await send(.agentJoined(name: name))
        }
        if new.status == .resolved, !sameConversation || old?.status != .resolved {
            try await send(.resolved)
        }
    }
}
