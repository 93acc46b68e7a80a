import Foundation
import Hummingbird
import Logging
import NIOCore
import SwitchboardConfig
import SwitchboardCore
import SwitchboardSMS
import SwitchboardStore

/// The agent API under `/api/v1`, behind `BearerAuthMiddleware`. Every route works on
/// what the agent may see; anything else is a 404, exactly like a missing conversation.
struct ConversationsController {
    let store: SwitchboardStore
    let sms: SwitchboardConfiguration.SMS
    let outboxWake: WakeSignal
    /// Tells a chat patient's widget that the agent is typing (nothing is stored).
    let chatHub: ChatHub

    /// Longest reply an agent may send, in UTF-8 bytes.
    static let maxReplyBytes = 32 * 1024

    func register(on group: RouterGroup<AppRequestContext>) {
        group.get("conversations") { request, context in try await list(request, context) }
        group.get("conversations/:id") { request, context in try await show(request, context) }
        group.post("conversations/:id/claim") { _, context in
            let conversation = try await store.claimConversation(id: try Self.id(context), by: try context.requireAgent())
            Self.log(context, "conversation claimed", conversation.id)
            return JSON.response(["conversation": ConversationJSON(conversation)])
        }
        group.post("conversations/:id/resolve") { _, context in
            let conversation = try await store.resolveConversation(id: try Self.id(context), by: try context.requireAgent())
            Self.log(context, "conversation resolved", conversation.id)
            return JSON.response(["conversation": ConversationJSON(conversation)])
        }
        group.post("conversations/:id/reopen") { _, context in
            let conversation = try await store.reopenConversation(id: try Self.id(context), by: try context.requireAgent())
            Self.log(context, "conversation reopened", conversation.id)
            return JSON.response(["conversation": ConversationJSON(conversation)])
        }
        group.post("conversations/:id/messages") { request, context in try await reply(request, context) }
        group.get("conversations/:id/attachments/:attachment") { _, context in try await attachment(context) }
        group.post("conversations/:id/typing") { request, context in
            let agent = try context.requireAgent()
            let id = try Self.id(context)
            let object = try await request.jsonObject(limit: 1024)
            guard let value = object["active"], let active = RoutingController.strict(Bool.self, value) else {
                throw APIError.badRequest("field active must be true or false")
            }
            try await store.checkAccess(conversationID: id, by: agent, sourceAddress: context.sourceAddress)
            chatHub.agentTyping(conversationID: id, active: active)
            return Response(status: .noContent)
        }
    }

    /// An attachment's bytes, always as a download: a patient's file is never rendered in
    /// the console's origin (an HTML or SVG "attachment" would otherwise run as our page).
    private func attachment(_ context: AppRequestContext) async throws -> Response {
        let agent = try context.requireAgent()
        let conversationID = try Self.id(context)
        guard let text = context.parameters.get("attachment"), let attachmentID = Int64(text), attachmentID > 0 else {
            throw APIError(.notFound, code: "not_found", "no such attachment")
        }
        let content: AttachmentContent
        do {
            content = try await store.readAttachment(conversationID: conversationID, attachmentID: attachmentID, by: agent,
                                                     sourceAddress: context.sourceAddress)
        } catch StoreError.notFound {
            throw APIError(.notFound, code: "not_found", "no such attachment")
        }
        Self.log(context, "attachment downloaded", conversationID)
        let safeTypes: Set<String> = ["image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"]
        let type = content.contentType.map { $0.lowercased() }.flatMap { safeTypes.contains($0) ? $0 : nil } ?? "application/octet-stream"
        return Response(status: .ok, headers: [
            .contentType: type,
            .contentDisposition: Self.contentDisposition(filename: content.filename),
            .init("X-Content-Type-Options")!: "nosniff",
            .contentSecurityPolicy: "sandbox; default-src 'none'",
            .cacheControl: "private, no-store",
        ], body: .init(byteBuffer: ByteBuffer(bytes: content.data)))
    }

    /// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266): the
    /// name never breaks out of the header, whatever it contains.
    static func contentDisposition(filename: String?) -> String {
        guard let filename, !filename.isEmpty else { return "attachment" }
        let ascii = String(filename.unicodeScalars.map { scalar -> Character in
            scalar.isASCII && scalar.value >= 0x20 && scalar != "\"" && scalar != "\\" && scalar.value != 0x7F ? Character(scalar) : "_"
        })
        var encoded = ""
        for byte in filename.utf8 {
            if (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || "-._~".utf8.contains(byte) {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += String(format: "%%%02X", byte)
            }
        }
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }

    private func list(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let agent = try context.requireAgent()
        let query = request.uri.queryParameters
        let statusText = query.get("status") ?? "open"
        guard let status = ConversationListStatus(rawValue: statusText) else {
            throw APIError.badRequest("query parameter status must be one of \(ConversationListStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let assigneeText = query.get("assignee") ?? "any"
        guard let assignee = AssigneeFilter(rawValue: assigneeText) else {
            throw APIError.badRequest("query parameter assignee must be one of me, unassigned, any")
        }
        var limit = 100
        if let limitText = query.get("limit") {
            guard let value = Int(limitText), (1...500).contains(value) else {
                throw APIError.badRequest("query parameter limit must be a whole number from 1 to 500")
            }
            limit = value
        }
        let contactID = query.get("contact_id")
        if let contactID, contactID.isEmpty || contactID.utf8.count > 64 {
            throw APIError.badRequest("query parameter contact_id must be a contact id")
        }
        let conversations = try await store.listConversations(for: agent, status: status, assignee: assignee, contactID: contactID,
                                                              limit: limit)
        return JSON.response(["conversations": conversations.map(ConversationJSON.init)])
    }

    private func show(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let agent = try context.requireAgent()
        let detail = try await store.readConversation(id: try Self.id(context), by: agent, sourceAddress: context.sourceAddress)
        Self.log(context, "conversation read", detail.conversation.id)
        return JSON.response(ConversationDetailJSON(detail))
    }

    private func reply(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let agent = try context.requireAgent()
        let id = try Self.id(context)
        let object = try await request.jsonObject(limit: Self.maxReplyBytes + 1024)
        guard let textValue = object["text"] else { throw APIError.badRequest("missing field text") }
        guard let text = textValue as? String else { throw APIError.badRequest("field text must be a string") }
        guard !text.trimmingWhitespace().isEmpty else { throw APIError.badRequest("field text must not be empty") }
        guard text.utf8.count <= Self.maxReplyBytes else {
            throw APIError(.contentTooLarge, code: "payload_too_large", "field text is longer than \(Self.maxReplyBytes) bytes")
        }
        let message = try await store.reply(conversationID: id, by: agent, text: text)
        outboxWake.signal()
        context.logger.info("reply queued", metadata: ["conversation.id": "\(id)", "message.id": "\(message.id)"])
        var accepted = ReplyAccepted(messageId: message.id, deliveryStatus: message.deliveryStatus ?? .queued)
        if message.channel == .sms {
            // What the patient's phone will receive: the reply, or the notice in notify-only mode.
            let segments = SMSSegments(sms.notifyOnly ? sms.noticeText : text)
            accepted.sms = .init(encoding: segments.encoding.rawValue, segments: segments.count, units: segments.units)
            if segments.count > sms.segmentWarning {
                accepted.warnings = ["the reply takes \(segments.count) SMS segments (\(segments.encoding.rawValue)); more than \(sms.segmentWarning) may arrive split or cost more"]
            }
        }
        return JSON.response(accepted, status: .accepted)
    }

    private static func id(_ context: AppRequestContext) throws -> String {
        guard let id = context.parameters.get("id"), !id.isEmpty, id.utf8.count <= 64 else { throw APIError.notFound }
        return id
    }

    private static func log(_ context: AppRequestContext, _ message: Logger.Message, _ conversationID: String) {
        context.logger.info(message, metadata: ["conversation.id": "\(conversationID)"])
    }
}

struct ReplyAccepted: Encodable {
    struct SMSInfo: Encodable {
        let encoding: String
        let segments: Int
        let units: Int
    }

    let messageId: String
    let deliveryStatus: DeliveryStatus
    var sms: SMSInfo?
    var warnings: [String] = []
}

/// An optional that is written as `null` rather than left out, so that clients always see
/// every field of an object.
struct Nullable<Wrapped: Encodable>: Encodable {
    let value: Wrapped?
    init(_ value: Wrapped?) { self.value = value }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

struct ConversationJSON: Encodable {
    let id: String
    let status: ConversationStatus
    let priority: Priority
    let intent: Nullable<String>
    let language: Nullable<String>
    let channel: SwitchboardCore.Channel
    let assigneeId: Nullable<String>
    let teamId: Nullable<String>
    let contactId: String
    let createdAt: String
    let updatedAt: String
    let lastMessageAt: String
    let firstResponseDueAt: Nullable<String>
    let firstResponseAt: Nullable<String>
    let nextResponseDueAt: Nullable<String>

    init(_ summary: ConversationSummary) {
        id = summary.id
        status = summary.status
        priority = summary.priority
        intent = Nullable(summary.intent)
        language = Nullable(summary.language)
        channel = summary.channel
        assigneeId = Nullable(summary.assigneeID)
        teamId = Nullable(summary.teamID)
        contactId = summary.contactID
        createdAt = Timestamp.format(summary.createdAt)
        updatedAt = Timestamp.format(summary.updatedAt)
        lastMessageAt = Timestamp.format(summary.lastMessageAt)
        firstResponseDueAt = Nullable(summary.firstResponseDueAt.map(Timestamp.format))
        firstResponseAt = Nullable(summary.firstResponseAt.map(Timestamp.format))
        nextResponseDueAt = Nullable(summary.nextResponseDueAt.map(Timestamp.format))
    }
}

struct ConversationDetailJSON: Encodable {
    struct Identity: Encodable {
        let kind: IdentityKind
        let value: String
    }

    struct Contact: Encodable {
        let id: String
        let name: Nullable<String>
        let identities: [Identity]
    }

    struct Attachment: Encodable {
        let id: Int64?
        /// Where an agent downloads the bytes we keep (email attachments).
        let downloadUrl: String?
        let url: String?
        let contentType: String?
        let filename: String?
        let sizeBytes: Int64?
    }

    /// The SMS side of a conversation: the number, and whether it may be texted.
    struct SMS: Encodable {
        let number: String
        let optedOut: Bool
        let consentKeyword: Nullable<String>
        let consentChangedAt: Nullable<String>
    }

    /// An inbound message's triage: labels and the evidence behind them.
    struct Triage: Encodable {
        let intent: String
        let urgency: String
        let language: String
        let evidence: JSONFragment
    }

    struct Message: Encodable {
        let id: String
        let direction: MessageDirection
        let channel: SwitchboardCore.Channel
        let senderAgentId: Nullable<String>
        let text: String
        let sentAt: String
        let createdAt: String
        let deliveryStatus: Nullable<DeliveryStatus>
        let failureReason: Nullable<String>
        let attachments: [Attachment]
        let triage: Nullable<Triage>
        let email: Nullable<Email>
    }

    /// A mail message's own facts. `html` is sanitised (allow-listed tags, no scripts, no
    /// remote images); the console still renders it only in a sandbox.
    struct Email: Encodable {
        let subject: Nullable<String>
        let from: Nullable<String>
        let messageId: String
        let quoted: Nullable<String>
        let html: Nullable<String>
        let autoReply: Nullable<String>
    }

    let conversation: ConversationJSON
    let contact: Contact
    let messages: [Message]
    let sms: SMS?
    let tags: [String]
    let requiredSkills: [String]

    init(_ detail: ConversationDetail) {
        conversation = ConversationJSON(detail.conversation)
        tags = detail.tags
        requiredSkills = detail.requiredSkills
        contact = Contact(id: detail.contact.id, name: Nullable(detail.contact.name),
                          identities: detail.contact.identities.map { Identity(kind: $0.kind, value: $0.value) })
        messages = detail.messages.map { message in
            Message(id: message.id, direction: message.direction, channel: message.channel,
                    senderAgentId: Nullable(message.senderAgentID), text: message.text,
                    sentAt: Timestamp.format(message.sentAt), createdAt: Timestamp.format(message.createdAt),
                    deliveryStatus: Nullable(message.deliveryStatus), failureReason: Nullable(message.failureReason),
                    attachments: message.attachments.map {
                        Attachment(id: $0.id, downloadUrl: $0.id.map { "/api/v1/conversations/\(detail.conversation.id)/attachments/\($0)" },
                                   url: $0.url, contentType: $0.contentType, filename: $0.filename, sizeBytes: $0.sizeBytes)
                    },
                    triage: Nullable(message.triage.map {
                        Triage(intent: $0.intent, urgency: $0.urgency, language: $0.language, evidence: JSONFragment(json: $0.evidenceJSON))
                    }),
                    email: Nullable(message.email.map {
                        Email(subject: Nullable($0.subject), from: Nullable($0.fromAddress), messageId: $0.rfcMessageID,
                              quoted: Nullable($0.quoted), html: Nullable($0.html), autoReply: Nullable($0.autoReply))
                    }))
        }
        sms = detail.smsNumber.map { number in
            SMS(number: number, optedOut: detail.smsConsent?.optedOut ?? false, consentKeyword: Nullable(detail.smsConsent?.keyword),
                consentChangedAt: Nullable(detail.smsConsent.map { Timestamp.format($0.updatedAt) }))
        }
    }
}

/// Stored JSON passed through into a response as a value, not a string.
struct JSONFragment: Encodable {
    let value: Any?

    init(json: String) {
        value = try? JSONSerialization.jsonObject(with: Data(json.utf8))
    }

    func encode(to encoder: any Encoder) throws {
        try Self.encode(value, to: encoder.singleValueContainer())
    }

    private static func encode(_ value: Any?, to container: SingleValueEncodingContainer) throws {
        var container = container
        switch value {
        case let string as String: try container.encode(string)
        case let number as NSNumber: try container.encode(number.doubleValue)
        case let array as [Any]: try container.encode(array.map { JSONFragment(raw: $0) })
        case let object as [String: Any]: try container.encode(object.mapValues { JSONFragment(raw: $0) })
        default: try container.encodeNil()
        }
    }

    private init(raw: Any) { value = raw }
}
