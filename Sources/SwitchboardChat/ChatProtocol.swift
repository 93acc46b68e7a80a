import Foundation
import SwitchboardCore

// SwitchboardChat — the web chat's wire protocol (version 1), free of I/O: decoding and
// validating what a widget sends, encoding what the daemon answers, visitor tokens and
// identity hashes, and the per-connection rate limit. channels/webchat/PROTOCOL.md is the
// reader's version of this file.
//
// Trusts: nothing. Every client frame is decoded strictly (wrong type, unknown `type`,
// missing or oversized field → a `ChatFrameError` naming the field), and an error's text
// never repeats what the client sent, so it is safe to log and to send back.
// On failure: the caller answers with an `error` frame and changes nothing.

/// The protocol version this daemon speaks. A hello with another `v` is refused.
public let chatProtocolVersion = 1

/// What a widget may send.
public enum ChatClientFrame: Sendable, Equatable {
    /// First frame of every connection. `lastSeq` resumes after the last server sequence
    /// number the widget saw; `visitorToken` is the token a previous welcome gave it.
    case hello(Hello)
    /// A patient message. `clientID` is the widget's own id for it, the same on every retry.
    case message(clientID: String, text: String)
    case typing(active: Bool)
    /// Every frame up to `seq` arrived (cumulative).
    case received(seq: Int64)
    /// The patient has seen every message up to `seq`.
    case read(seq: Int64)
    /// Nobody is available: continue this conversation on another channel.
    case `continue`(channel: ContinueChannel, address: String)
    case ping

    public struct Hello: Sendable, Equatable {
        public var version: Int
        public var visitorToken: String?
        public var identity: Identity?
        public var lastSeq: Int64?
        public var language: String?

        public init(version: Int = chatProtocolVersion, visitorToken: String? = nil, identity: Identity? = nil,
                    lastSeq: Int64? = nil, language: String? = nil) {
            self.version = version
            self.visitorToken = visitorToken
            self.identity = identity
            self.lastSeq = lastSeq
            self.language = language
        }
    }

    /// A patient the embedding site knows: its id for them, and the HMAC of that id which
    /// the site computed server-side with the shared secret.
    public struct Identity: Sendable, Equatable {
        public var id: String
        public var hash: String
        public var name: String?
        /// Unix seconds after which the hash is no longer accepted; when given, it is part of
        /// what the hash signs (`id:expires`).
        public var expires: Int64?

        public init(id: String, hash: String, name: String? = nil, expires: Int64? = nil) {
            self.id = id
            self.hash = hash
            self.name = name
            self.expires = expires
        }
    }

    public enum ContinueChannel: String, Sendable, Equatable, CaseIterable {
        case email, sms
    }
}

/// Why a client frame was refused. `code` is stable (widgets switch on it); `message`
/// names the field and the rule, never the value.
public struct ChatFrameError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String
    /// The refused message's client id, when the frame had a valid one: the widget can tell
    /// the patient which message was refused.
    public var clientID: String?
    public var description: String { "\(code): \(message)" }

    public init(_ code: String, _ message: String, clientID: String? = nil) {
        self.code = code
        self.message = message
        self.clientID = clientID
    }
}

public struct ChatLimits: Sendable, Equatable {
    /// Longest patient message, in characters (grapheme clusters).
    public var maxTextCharacters = 4000
    public static let maxClientIDLength = 64
    public static let maxIdentityLength = 128
    public static let maxNameLength = 100
    public static let maxAddressLength = 254

    public init(maxTextCharacters: Int = 4000) {
        self.maxTextCharacters = maxTextCharacters
    }
}

public enum ChatCodec {
    /// Decodes one text frame. Throws `ChatFrameError` with code `bad_frame` (not JSON, a
    /// field of the wrong type), `unknown_type`, `missing_field`, `invalid_field` or
    /// `unsupported_version`.
    public static func decode(_ text: String, limits: ChatLimits = ChatLimits()) throws(ChatFrameError) -> ChatClientFrame {
        let raw: RawFrame
        do {
            raw = try JSONDecoder().decode(RawFrame.self, from: Data(text.utf8))
        } catch let DecodingError.typeMismatch(_, context) {
            throw ChatFrameError("bad_frame", "field \(path(context.codingPath)) has the wrong type")
        } catch let DecodingError.keyNotFound(key, _) {
            throw ChatFrameError("missing_field", "field \(key.stringValue) is required")
        } catch let DecodingError.valueNotFound(_, context) {
            throw ChatFrameError("bad_frame", "field \(path(context.codingPath)) must not be null")
        } catch {
            throw ChatFrameError("bad_frame", "a frame is one JSON object with a \"type\" field")
        }
        switch raw.type {
        case "hello":
            guard let version = raw.v else { throw ChatFrameError("missing_field", "field v (the protocol version) is required") }
            guard version == chatProtocolVersion else {
                throw ChatFrameError("unsupported_version", "this server speaks protocol version \(chatProtocolVersion)")
            }
            if let token = raw.visitor_token, token.isEmpty || token.utf8.count > 256 {
                throw ChatFrameError("invalid_field", "field visitor_token must be 1 to 256 bytes")
            }
            var identity: ChatClientFrame.Identity?
            if let given = raw.identity {
                guard !given.id.isEmpty, given.id.count <= ChatLimits.maxIdentityLength, isPrintable(given.id) else {
                    throw ChatFrameError("invalid_field", "field identity.id must be 1 to \(ChatLimits.maxIdentityLength) printable characters")
                }
                guard given.hash.utf8.count == 64, given.hash.utf8.allSatisfy(isHexDigit) else {
                    throw ChatFrameError("invalid_field", "field identity.hash must be 64 hexadecimal digits (HMAC-SHA256)")
                }
                if let name = given.name, name.count > ChatLimits.maxNameLength || !isPrintable(name) {
                    throw ChatFrameError("invalid_field", "field identity.name must be at most \(ChatLimits.maxNameLength) printable characters")
                }
                if let expires = given.expires, expires <= 0 {
                    throw ChatFrameError("invalid_field", "field identity.expires must be a Unix time in seconds")
                }
                identity = .init(id: given.id, hash: given.hash.lowercased(), name: given.name?.isEmpty == true ? nil : given.name,
                                 expires: given.expires)
            }
            if let seq = raw.last_seq, seq < 0 { throw ChatFrameError("invalid_field", "field last_seq must not be negative") }
            if let language = raw.language, !["en", "es"].contains(language) {
                throw ChatFrameError("invalid_field", "field language must be \"en\" or \"es\"")
            }
            return .hello(.init(version: version, visitorToken: raw.visitor_token, identity: identity, lastSeq: raw.last_seq,
                                language: raw.language))
        case "message":
            guard let clientID = raw.client_id else { throw ChatFrameError("missing_field", "field client_id is required") }
            guard isClientID(clientID) else {
                throw ChatFrameError("invalid_field", "field client_id must be 1 to \(ChatLimits.maxClientIDLength) of A-Z a-z 0-9 - _")
            }
            guard let text = raw.text else { throw ChatFrameError("missing_field", "field text is required", clientID: clientID) }
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { throw ChatFrameError("invalid_field", "field text must not be empty", clientID: clientID) }
            guard trimmed.count <= limits.maxTextCharacters else {
                throw ChatFrameError("too_long", "field text is longer than \(limits.maxTextCharacters) characters", clientID: clientID)
            }
            guard !trimmed.unicodeScalars.contains(where: { $0.value == 0 }) else {
                throw ChatFrameError("invalid_field", "field text must not contain NUL", clientID: clientID)
            }
            return .message(clientID: clientID, text: trimmed)
        case "typing":
            guard let active = raw.active else { throw ChatFrameError("missing_field", "field active is required") }
            return .typing(active: active)
        case "received", "read":
            guard let seq = raw.seq else { throw ChatFrameError("missing_field", "field seq is required") }
            guard seq >= 0 else { throw ChatFrameError("invalid_field", "field seq must not be negative") }
            return raw.type == "read" ? .read(seq: seq) : .received(seq: seq)
        case "continue":
            guard let channelName = raw.channel else { throw ChatFrameError("missing_field", "field channel is required") }
            guard let channel = ChatClientFrame.ContinueChannel(rawValue: channelName) else {
                throw ChatFrameError("invalid_field", "field channel must be \"email\" or \"sms\"")
            }
            guard let address = raw.address?.trimmingCharacters(in: .whitespaces), !address.isEmpty,
                  address.utf8.count <= ChatLimits.maxAddressLength, isPrintable(address) else {
                throw ChatFrameError("invalid_field", "field address must be an email address or a phone number")
            }
            return .continue(channel: channel, address: address)
        case "ping":
            return .ping
        default:
            throw ChatFrameError("unknown_type", "type must be one of hello, message, typing, received, read, continue, ping")
        }
    }

    /// Client ids are opaque to the server but bounded and plain, so they can be used as a
    /// dedupe key and echoed back safely.
    public static func isClientID(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= ChatLimits.maxClientIDLength
            && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
    }

    static func isPrintable(_ text: String) -> Bool {
        !text.unicodeScalars.contains { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format && $0.value != 0x200D }
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map(\.stringValue).joined(separator: ".")
    }

    /// The union of every frame's fields; `decode` checks which belong to which type.
    private struct RawFrame: Decodable {
        var type: String
        var v: Int?
        var visitor_token: String?
        var identity: RawIdentity?
        var last_seq: Int64?
        var language: String?
        var client_id: String?
        var text: String?
        var active: Bool?
        var seq: Int64?
        var channel: String?
        var address: String?
    }

    private struct RawIdentity: Decodable {
        var id: String
        var hash: String
        var name: String?
        var expires: Int64?
    }
}

/// What the daemon sends. Every frame is one JSON object with a `type`.
public enum ChatServerFrame: Sendable, Equatable {
    case welcome(Welcome)
    /// A message of the conversation, either direction, in server order.
    case message(Message)
    /// A patient message is stored (or was already: `duplicate`).
    case ack(clientID: String, seq: Int64, duplicate: Bool)
    case queue(position: Int, estimatedWaitSeconds: Int?)
    case agentJoined(name: String)
    case typing(active: Bool)
    case resolved
    case availability(Availability)
    case continued(channel: ChatClientFrame.ContinueChannel)
    case error(ChatFrameError, clientID: String? = nil, retryAfterMilliseconds: Int? = nil)
    case pong

    public struct Welcome: Sendable, Equatable {
        public var visitorToken: String
        public var identified: Bool
        /// The newest sequence number the visitor may see now; frames after `last_seq`
        /// up to it follow the welcome.
        public var seq: Int64
        public var availability: Availability
        /// The longest message the server accepts, in characters.
        public var maxMessageCharacters: Int

        public init(visitorToken: String, identified: Bool, seq: Int64, availability: Availability, maxMessageCharacters: Int = 4000) {
            self.visitorToken = visitorToken
            self.identified = identified
            self.seq = seq
            self.availability = availability
            self.maxMessageCharacters = maxMessageCharacters
        }
    }

    public struct Availability: Sendable, Equatable {
        /// Within business hours (always true without configured hours).
        public var open: Bool
        /// At least one agent who could answer is online.
        public var agentsAvailable: Bool
        /// RFC 3339 time of the next opening, when closed and known.
        public var nextOpening: String?
        /// Channels the conversation can continue on when nobody is available.
        public var continueWith: [ChatClientFrame.ContinueChannel]

        public init(open: Bool, agentsAvailable: Bool, nextOpening: String? = nil, continueWith: [ChatClientFrame.ContinueChannel] = []) {
            self.open = open
            self.agentsAvailable = agentsAvailable
            self.nextOpening = nextOpening
            self.continueWith = continueWith
        }
    }

    public struct Message: Sendable, Equatable {
        public enum Sender: String, Sendable, Equatable { case patient, agent, system }
        public var seq: Int64
        public var sender: Sender
        public var text: String
        public var at: String
        public var clientID: String?
        public var agentName: String?

        public init(seq: Int64, sender: Sender, text: String, at: String, clientID: String? = nil, agentName: String? = nil) {
            self.seq = seq
            self.sender = sender
            self.text = text
            self.at = at
            self.clientID = clientID
            self.agentName = agentName
        }
    }

    /// The frame as compact JSON text.
    public var json: String {
        var object: [String: JSONValue]
        switch self {
        case .welcome(let welcome):
            object = ["type": "welcome", "v": .int(Int64(chatProtocolVersion)), "visitor_token": .string(welcome.visitorToken),
                      "identified": .bool(welcome.identified), "seq": .int(welcome.seq),
                      "availability": .object(Self.availabilityObject(welcome.availability)),
                      "max_message_characters": .int(Int64(welcome.maxMessageCharacters))]
        case .message(let message):
            object = ["type": "message", "seq": .int(message.seq), "from": .string(message.sender.rawValue),
                      "text": .string(message.text), "at": .string(message.at)]
            if let clientID = message.clientID { object["client_id"] = .string(clientID) }
            if let name = message.agentName { object["agent_name"] = .string(name) }
        case .ack(let clientID, let seq, let duplicate):
            object = ["type": "ack", "client_id": .string(clientID), "seq": .int(seq), "duplicate": .bool(duplicate)]
        case .queue(let position, let wait):
            object = ["type": "queue", "position": .int(Int64(position)),
                      "estimated_wait_seconds": wait.map { .int(Int64($0)) } ?? .null]
        case .agentJoined(let name):
            object = ["type": "agent_joined", "name": .string(name)]
        case .typing(let active):
            object = ["type": "typing", "active": .bool(active)]
        case .resolved:
            object = ["type": "resolved"]
        case .availability(let availability):
            object = Self.availabilityObject(availability)
            object["type"] = "availability"
        case .continued(let channel):
            object = ["type": "continued", "channel": .string(channel.rawValue)]
        case .error(let error, let clientID, let retryAfter):
            object = ["type": "error", "code": .string(error.code), "message": .string(error.message)]
            if let clientID = clientID ?? error.clientID { object["client_id"] = .string(clientID) }
            if let retryAfter { object["retry_after_ms"] = .int(Int64(retryAfter)) }
        case .pong:
            object = ["type": "pong"]
        }
        return JSONValue.object(object).text(keyOrder: .typeFirst, escapingHTML: true)
    }

    private static func availabilityObject(_ availability: Availability) -> [String: JSONValue] {
        ["open": .bool(availability.open), "agents_available": .bool(availability.agentsAvailable),
         "next_opening": availability.nextOpening.map(JSONValue.string) ?? .null,
         "continue_with": .array(availability.continueWith.map { .string($0.rawValue) })]
    }
}

