import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwitchboardConfig
import SwitchboardCore
import SwitchboardSMS
import SwitchboardStore

/// The SMS gateways' inbound requests.
///
/// Twilio (`POST /webhooks/sms/twilio` and `/webhooks/sms/twilio/status`): form bodies
/// signed with `X-Twilio-Signature` over the public URL Twilio called (from
/// `twilio.public_url`, since behind a proxy our own view of the URL is not Twilio's) and
/// the sorted parameters; a mismatch is 403. The message is answered with an empty TwiML
/// `<Response/>` only after it is committed, and deduped on `MessageSid`.
///
/// Kannel (`GET|POST /webhooks/sms/kannel`, `GET /webhooks/sms/kannel/dlr`): smsbox's
/// get-url/post-url and delivery-report requests, authenticated by `secret` in the URL
/// (constant-time comparison) or a source address in `kannel.allowed_sources`. The MO is
/// answered with an empty body (Kannel would send a non-empty one back as an SMS) after the
/// commit, and deduped on Kannel's message id.
///
/// Nothing from a request reaches a log line but ids, codes and reasons.
struct SMSWebhookController {
    let store: SwitchboardStore
    let configuration: SwitchboardConfiguration
    let metrics: SwitchboardMetrics
    let outboxWake: WakeSignal
    let triageWake: WakeSignal

    static let maxBodyBytes = 64 * 1024
    static let twilioSignature = HTTPField.Name("X-Twilio-Signature")!

    func register(on router: Router<AppRequestContext>) {
        router.post("/webhooks/sms/twilio") { request, context in try await twilioMessage(request, context) }
        router.post("/webhooks/sms/twilio/status") { request, context in try await twilioStatus(request, context) }
        router.get("/webhooks/sms/kannel") { request, context in try await kannelMessage(request, context) }
        router.post("/webhooks/sms/kannel") { request, context in try await kannelMessage(request, context) }
        router.get("/webhooks/sms/kannel/dlr") { request, context in try await kannelReport(request, context) }
    }

    // MARK: - Twilio

    /// The verified form parameters and the body exactly as received (for the journal).
    private func twilioParameters(_ request: Request, _ context: AppRequestContext, logger: Logger) async throws
        -> (parameters: [(name: String, value: String)], body: [UInt8]) {
        guard let authToken = configuration.twilio.authToken else {
            logger.warning("sms webhook refused", metadata: ["reason": "twilio.auth_token is not configured"])
            throw APIError(.serviceUnavailable, code: "channel_disabled", "the Twilio channel is not configured on this server (twilio.auth_token)")
        }
        guard request.hasContentType("application/x-www-form-urlencoded") else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", "Content-Type must be application/x-www-form-urlencoded")
        }
        let body = Array(buffer: try await request.collectBody(limit: Self.maxBodyBytes))
        let parameters: [(name: String, value: String)]
        do {
            parameters = try FormBody.parse(body)
        } catch {
            throw APIError.badRequest(error.description, code: "invalid_payload")
        }
        let url = publicURL(request, base: configuration.twilio.publicURL)
        guard TwilioSignature.isValid(signature: request.headers[Self.twilioSignature], url: url, parameters: parameters, authToken: authToken.value) else {
            metrics.webhookRejected(channel: .sms, reason: "signature")
            logger.warning("sms webhook refused", metadata: [
                "reason": request.headers[Self.twilioSignature] == nil ? "missing X-Twilio-Signature" : "X-Twilio-Signature does not match",
                "source.address": "\(context.sourceAddress ?? "-")",
            ])
            throw APIError(.forbidden, code: "invalid_signature", "X-Twilio-Signature is missing or does not match this URL and body")
        }
        return (parameters, body)
    }

    private func twilioMessage(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        var logger = Self.logger(context, gateway: .twilio)
        let (parameters, raw) = try await twilioParameters(request, context, logger: logger)
        guard let sid = parameters.first("MessageSid") ?? parameters.first("SmsSid"), !sid.isEmpty, sid.utf8.count <= 64 else {
            throw APIError.badRequest("missing field MessageSid", code: "invalid_payload")
        }
        logger[metadataKey: "twilio.sid"] = "\(sid)"
        guard let fromRaw = parameters.first("From"), !fromRaw.isEmpty else { throw APIError.badRequest("missing field From", code: "invalid_payload") }
        guard let toRaw = parameters.first("To"), !toRaw.isEmpty else { throw APIError.badRequest("missing field To", code: "invalid_payload") }
        let from = try normalise(fromRaw, field: "From")
        let text = parameters.first("Body") ?? ""
        let mediaCount = min(Int(parameters.first("NumMedia") ?? "0") ?? 0, 10)
        let media = (0..<mediaCount).compactMap { index -> (url: String, contentType: String?)? in
            guard let url = parameters.first("MediaUrl\(index)"), url.hasPrefix("https://") || url.hasPrefix("http://") else { return nil }
            return (url, parameters.first("MediaContentType\(index)"))
        }
        guard !text.isEmpty || !media.isEmpty else { throw APIError.badRequest("field Body is empty and there is no media", code: "invalid_payload") }
        let inbound = smsInbound(gateway: .twilio, id: sid, raw: raw, from: from, to: (try? normalise(toRaw, field: "To")) ?? toRaw,
                                 text: text, media: media, sendReplies: configuration.twilio.sendKeywordReplies)
        try await store(inbound, logger: logger)
        return Response(status: .ok, headers: [.contentType: "text/xml; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>")))
    }

    private func twilioStatus(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let logger = Self.logger(context, gateway: .twilio)
        let parameters = try await twilioParameters(request, context, logger: logger).parameters
        guard let sid = parameters.first("MessageSid") ?? parameters.first("SmsSid"), !sid.isEmpty else {
            throw APIError.badRequest("missing field MessageSid", code: "invalid_payload")
        }
        guard let statusText = parameters.first("MessageStatus") ?? parameters.first("SmsStatus") else {
            throw APIError.badRequest("missing field MessageStatus", code: "invalid_payload")
        }
        let status: DeliveryStatus
        switch statusText {
        case "accepted", "scheduled", "queued": status = .queued
        case "sending", "sent": status = .sent
        case "delivered", "read": status = .delivered
        case "undelivered", "failed", "canceled": status = .failed
        default: throw APIError.badRequest("field MessageStatus has an unknown value", code: "invalid_payload")
        }
        let reason = status == .failed ? TwilioAPIError.describe(code: parameters.first("ErrorCode").flatMap { Int($0) }) : nil
        let found = try await recordReport(gatewayMessageID: sid, messageID: nil, gateway: .twilio, status: status, reason: reason)
        logger.info(found ? "sms delivery report recorded" : "sms delivery report for an unknown message",
                    metadata: ["twilio.sid": "\(sid)", "delivery.status": "\(status.rawValue)"])
        return Response(status: .noContent)
    }

    // MARK: - Kannel

    /// The query string's pairs, with values as raw bytes (the text's charset is decided by
    /// `coding` and `charset`).
    private func rawQuery(_ request: Request) throws -> [(name: String, value: [UInt8])] {
        guard let query = request.uri.query else { return [] }
        do {
            return try Array(query.utf8).split(separator: UInt8(ascii: "&")).map { field in
                let parts = field.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
                return (String(decoding: try FormBody.decodeBytes(parts[0]), as: UTF8.self),
                        parts.count > 1 ? try FormBody.decodeBytes(parts[1]) : [])
            }
        } catch {
            throw APIError.badRequest("the query string has an invalid %-escape", code: "invalid_payload")
        }
    }

    private func authenticateKannel(_ query: [(name: String, value: [UInt8])], _ context: AppRequestContext, logger: Logger) throws {
        let kannel = configuration.kannel
        guard kannel.inboundEnabled else {
            logger.warning("sms webhook refused", metadata: ["reason": "kannel.shared_secret and kannel.allowed_sources are not configured"])
            throw APIError(.serviceUnavailable, code: "channel_disabled", "the Kannel channel is not configured on this server (kannel.shared_secret)")
        }
        if let expected = kannel.sharedSecret, let given = query.first(where: { $0.name == "secret" })?.value,
           ConstantTime.equal(Array(expected.value.utf8), given) {
            return
        }
        if let address = context.peerAddress, kannel.allowedSources.contains(address) {
            return
        }
        metrics.webhookRejected(channel: .sms, reason: "signature")
        logger.warning("sms webhook refused", metadata: ["reason": "wrong or missing secret, source not allowed",
                                                         "source.address": "\(context.sourceAddress ?? "-")"])
        throw APIError(.forbidden, code: "forbidden", "the secret is missing or wrong and the source address is not allowed")
    }

    private func kannelMessage(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        var logger = Self.logger(context, gateway: .kannel)
        let query = try rawQuery(request)
        try authenticateKannel(query, context, logger: logger)
        func field(_ name: String, header: String) -> String? {
            if let value = query.first(where: { $0.name == name })?.value { return String(decoding: value, as: UTF8.self) }
            return request.headers[HTTPField.Name(header)!]
        }
        var textBytes = query.first(where: { $0.name == "text" })?.value
        var charset = field("charset", header: "X-Kannel-Charset")
        if request.method == .post {
            textBytes = Array(buffer: try await request.collectBody(limit: Self.maxBodyBytes))
            if charset == nil, let contentType = request.headers[.contentType],
               let range = contentType.range(of: "charset=", options: .caseInsensitive) {
                charset = contentType[range.upperBound...].trimmingCharacters(in: CharacterSet(charactersIn: "\"' ;"))
            }
        }
        guard let id = field("id", header: "X-Kannel-ID"), !id.isEmpty, id.utf8.count <= 128 else {
            throw APIError.badRequest("missing field id (add id=%I to the get-url or post-url)", code: "invalid_payload")
        }
        logger[metadataKey: "kannel.id"] = "\(id)"
        guard let fromRaw = field("from", header: "X-Kannel-From"), !fromRaw.isEmpty else {
            throw APIError.badRequest("missing field from (add from=%p, or send-sender = true for post-url)", code: "invalid_payload")
        }
        let to = field("to", header: "X-Kannel-To") ?? ""
        guard let textBytes else { throw APIError.badRequest("missing field text (add text=%a)", code: "invalid_payload") }
        let text: String
        do {
            text = try KannelText.decode(textBytes, coding: field("coding", header: "X-Kannel-Coding"), charset: charset)
        } catch {
            throw APIError.badRequest(error.description, code: "invalid_payload")
        }
        guard !text.isEmpty else { throw APIError.badRequest("field text is empty", code: "invalid_payload") }
        let from = try normalise(fromRaw, field: "from")
        // The journal keeps the request as received, minus the shared secret Kannel puts in the URL.
        var raw = Array((request.uri.query ?? "").split(separator: "&").filter { !$0.hasPrefix("secret=") }.joined(separator: "&").utf8)
        if request.method == .post { raw += [0x0A] + textBytes }
        let inbound = smsInbound(gateway: .kannel, id: id, raw: raw, from: from, to: (try? normalise(to, field: "to")) ?? to,
                                 text: text, media: [], sendReplies: configuration.kannel.sendKeywordReplies)
        try await store(inbound, logger: logger)
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"])
    }

    private func kannelReport(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let logger = Self.logger(context, gateway: .kannel)
        let query = try rawQuery(request)
        try authenticateKannel(query, context, logger: logger)
        func value(_ name: String) -> String? { query.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) } }
        guard let messageID = value("message"), !messageID.isEmpty else { throw APIError.badRequest("missing field message", code: "invalid_payload") }
        guard let code = value("status").flatMap({ Int($0) }) else { throw APIError.badRequest("missing field status (add status=%d)", code: "invalid_payload") }
        // Kannel DLR types: 1 delivered, 2 delivery failure, 4 buffered, 8 SMSC submit, 16 SMSC reject.
        let status: DeliveryStatus
        var reason: String?
        switch code {
        case 1: status = .delivered
        case 2: status = .failed; reason = "the network reported the message undelivered"
        case 16: status = .failed; reason = "the SMSC rejected the message"
        case 4, 8: status = .sent
        default: throw APIError.badRequest("field status has an unknown value", code: "invalid_payload")
        }
        let found = try await recordReport(gatewayMessageID: nil, messageID: messageID, gateway: .kannel, status: status, reason: reason)
        logger.info(found ? "sms delivery report recorded" : "sms delivery report for an unknown message",
                    metadata: ["message.id": "\(messageID)", "delivery.status": "\(status.rawValue)"])
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"])
    }

    // MARK: - Shared

    private static func logger(_ context: AppRequestContext, gateway: SMSGateway) -> Logger {
        var logger = context.logger
        logger[metadataKey: "channel"] = "sms"
        logger[metadataKey: "gateway"] = "\(gateway.rawValue)"
        return logger
    }

    private func smsInbound(gateway: SMSGateway, id: String, raw: [UInt8], from: String, to: String, text: String,
                            media: [(url: String, contentType: String?)], sendReplies: Bool) -> SMSInbound {
        var consent: (action: ConsentAction, keyword: String)?
        var reply: String?
        if let (keyword, word) = OptOutKeyword.classify(text) {
            switch keyword {
            case .stop:
                consent = (.optOut, word)
                reply = configuration.sms.stopReply
            case .start:
                consent = (.optIn, word)
                reply = configuration.sms.startReply
            case .help:
                consent = (.help, word)
                reply = configuration.sms.helpText
            }
        }
        return SMSInbound(gateway: gateway, gatewayMessageID: id, raw: raw, from: from, to: to, text: text, sentAt: Timestamp.now(),
                          mediaURLs: media, consent: consent, complianceReply: sendReplies ? reply : nil)
    }

    private func store(_ inbound: SMSInbound, logger: Logger) async throws {
        let result: IngestResult
        do {
            result = try await store.recordSMSMessage(inbound, reopenWindowMilliseconds: configuration.sms.reopenWindowSeconds * 1000)
        } catch is StoreOverloaded {
            LoadShedding.shared.refused(.sms, metrics: metrics, logger: logger)
            throw LoadShedding.httpError
        } catch {
            metrics.storeFailure()
            logger.error("sms message not stored", metadata: ["error.type": "\(type(of: error))"])
            throw APIError(.serviceUnavailable, code: "store_unavailable", "the message could not be stored; retry later",
                           headers: [.retryAfter: "5"])
        }
        if !result.duplicate {
            metrics.messageIn(channel: .sms)
            triageWake.signal()
            if inbound.complianceReply != nil { outboxWake.signal() }
        }
        var metadata: Logger.Metadata = ["conversation.id": "\(result.conversationID)", "message.id": "\(result.messageID)"]
        if let consent = inbound.consent, !result.duplicate { metadata["sms.keyword"] = "\(consent.action.rawValue)" }
        logger.info(result.duplicate ? "sms delivery repeated" : "sms message stored", metadata: metadata)
    }

    private func recordReport(gatewayMessageID: String?, messageID: String?, gateway: SMSGateway,
                              status: DeliveryStatus, reason: String?) async throws -> Bool {
        do {
            return try await store.recordDeliveryReport(gatewayMessageID: gatewayMessageID, messageID: messageID,
                                                        gateway: gateway, status: status, reason: reason)
        } catch {
            metrics.storeFailure()
            throw APIError(.serviceUnavailable, code: "store_unavailable", "the report could not be stored; retry later",
                           headers: [.retryAfter: "5"])
        }
    }

    private func normalise(_ raw: String, field: String) throws -> String {
        do {
            return try PhoneNumber.normalise(raw, defaultCountryCode: configuration.phone.defaultCountryCode)
        } catch {
            throw APIError.badRequest("field \(field) is not a valid phone number", code: "invalid_payload")
        }
    }

    /// The URL the gateway called, as it saw it: the configured public base URL (behind a
    /// proxy), else this request's Host, plus the path and query.
    private func publicURL(_ request: Request, base: String?) -> String {
        let path = request.head.path ?? "/"
        if let base { return SMSEgress.join(base, path) }
        let host = request.head.authority ?? "localhost"
        return "http://\(host)\(path)"
    }
}
