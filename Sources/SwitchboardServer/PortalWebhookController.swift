import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import SwitchboardConfig
import SwitchboardCore
import SwitchboardStore

/// `POST /webhooks/portal` — the patient portal's signed webhooks.
///
/// Order of checks, each answering before anything is stored: channel configured (503),
/// content type (415), size (413), Standard Webhooks signature and timestamp (401), payload
/// (400 naming the field). Then, with `portal.acknowledge: stored` (the default), one store
/// transaction records the raw delivery, the contact, the conversation and the message, and
/// only after its commit do we answer 202 with their ids; a redelivery with the same
/// `webhook-id` gets the first answer again. With `received`, the 202 follows the commit of
/// the delivery to the inbound queue (one row; `InboundNormaliser` stores it moments later)
/// and carries no ids.
struct PortalWebhookController {
    let store: SwitchboardStore
    let portal: SwitchboardConfiguration.Portal
    let phone: SwitchboardConfiguration.Phone
    let metrics: SwitchboardMetrics
    let triageWake: WakeSignal
    let normaliserWake: WakeSignal

    static let webhookID = HTTPField.Name("webhook-id")!
    static let webhookTimestamp = HTTPField.Name("webhook-timestamp")!
    static let webhookSignature = HTTPField.Name("webhook-signature")!

    /// The answer once stored: the conversation's and the message's ids (OpenAPI
    /// `PortalAccepted`). Written without an encoder: this runs for every delivery.
    static func accepted(conversationID: String, messageID: String) -> JSONValue {
        .object(["conversation_id": .string(conversationID), "message_id": .string(messageID)])
    }

    /// The answer when acknowledging on receipt, committed to the inbound queue (`PortalQueued`).
    static func queued(deliveryID: String) -> JSONValue {
        .object(["status": "queued", "webhook_id": .string(deliveryID)])
    }

    func register(on router: Router<AppRequestContext>) {
        router.post("/webhooks/portal") { request, context in
            try await receive(request, context: context)
        }
    }

    func receive(_ request: Request, context: AppRequestContext) async throws -> Response {
        var logger = context.logger
        logger[metadataKey: "channel"] = "portal"
        // The delivery's id on every line about it, refusals included (an id, never content).
        let deliveryID = request.headers[Self.webhookID]
        if let deliveryID {
            guard deliveryID.utf8.count <= 256 else {
                logger.notice("portal webhook refused", metadata: ["reason": "webhook-id header longer than 256 bytes"])
                throw APIError.badRequest("header webhook-id is longer than 256 bytes")
            }
            logger[metadataKey: "webhook.id"] = "\(deliveryID)"
        }
        guard let secret = portal.webhookSecret else {
            logger.warning("portal webhook refused", metadata: ["reason": "portal.webhook_secret is not configured"])
            throw APIError(.serviceUnavailable, code: "channel_disabled",
                           "the portal channel is not configured on this server (portal.webhook_secret)")
        }
        guard request.hasContentType("application/json") else {
            logger.notice("portal webhook refused", metadata: ["reason": "content type is not application/json"])
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", "Content-Type must be application/json")
        }
        let body: ByteBuffer
        do {
            body = try await request.collectBody(limit: portal.maxBodyBytes)
        } catch {
            logger.notice("portal webhook refused", metadata: ["reason": "body over portal.max_body_bytes"])
            throw error
        }
        let bytes = Array(buffer: body)
        do throws(StandardWebhooks.VerificationError) {
            try StandardWebhooks.verify(
                id: deliveryID, timestamp: request.headers[Self.webhookTimestamp],
                signatureHeader: request.headers[Self.webhookSignature], body: bytes, secret: secret,
                now: Date(), toleranceSeconds: portal.timestampToleranceSeconds)
        } catch {
            metrics.webhookRejected(channel: .portal, reason: "signature")
            logger.warning("portal webhook refused", metadata: [
                "reason": "\(error.description)", "source.address": "\(context.sourceAddress ?? "-")",
            ])
            throw APIError(.unauthorized, code: "invalid_signature", error.description)
        }
        let event: PortalInboundEvent
        do throws(PortalInboundEvent.DecodingError) {
            event = try PortalInboundEvent.decode(bytes)
        } catch {
            metrics.webhookRejected(channel: .portal, reason: "payload")
            logger.notice("portal webhook refused", metadata: ["reason": "\(error.description)"])
            throw APIError.badRequest(error.description, code: "invalid_payload")
        }
        var phoneE164: String?
        if let raw = event.patient.phone, !raw.trimmingWhitespace().isEmpty {
            do {
                phoneE164 = try PhoneNumber.normalise(raw, defaultCountryCode: phone.defaultCountryCode)
            } catch {
                metrics.webhookRejected(channel: .portal, reason: "payload")
                logger.notice("portal webhook refused", metadata: ["reason": "patient.phone is not a phone number"])
                throw APIError.badRequest("field patient.phone is not a valid phone number", code: "invalid_payload")
            }
        }
        let contact = InboundContact(portalID: event.patient.id, phoneE164: phoneE164,
                                     email: event.patient.email?.trimmingWhitespace(),
                                     displayName: event.patient.name?.trimmingWhitespace())
        if portal.acknowledge == .received {
            return try await queue(deliveryID: deliveryID ?? "", bytes: bytes, contact: contact, event: event, logger: logger)
        }
        let result: IngestResult
        do {
            result = try await store.recordPortalMessage(
                deliveryID: deliveryID ?? "", rawBody: bytes, contact: contact, threadID: event.threadID,
                messageID: event.message.id, text: event.message.text, sentAt: event.message.sentAt)
        } catch {
            throw refusal(error, logger: logger)
        }
        if !result.duplicate {
            metrics.messageIn(channel: .portal)
            triageWake.signal()
        }
        logger.info(result.duplicate ? "portal delivery repeated" : "portal message stored", metadata: [
            "conversation.id": "\(result.conversationID)", "message.id": "\(result.messageID)",
        ])
        return JSON.response(Self.accepted(conversationID: result.conversationID, messageID: result.messageID),
                             status: .accepted)
    }

    /// `portal.acknowledge: received`: commit the delivery to the inbound queue and answer.
    private func queue(deliveryID: String, bytes: [UInt8], contact: InboundContact, event: PortalInboundEvent,
                       logger: Logger) async throws -> Response {
        let outcome: QueueOutcome
        do {
            outcome = try await store.queuePortalMessage(
                deliveryID: deliveryID, rawBody: bytes,
                message: QueuedPortalMessage(contact: contact, threadID: event.threadID, messageID: event.message.id,
                                             text: event.message.text, sentAt: event.message.sentAt))
        } catch {
            throw refusal(error, logger: logger)
        }
        if outcome == .queued {
            normaliserWake.signal()
            logger.debug("portal delivery queued")
        } else {
            logger.info("portal delivery repeated")
        }
        return JSON.response(Self.queued(deliveryID: deliveryID), status: .accepted)
    }

    /// The answer to the store refusing or failing: the error to throw, logged and counted.
    private func refusal(_ error: any Error, logger: Logger) -> any Error {
        switch error {
        case let error as StoreError:
            logger.notice("portal webhook refused", metadata: ["reason": "\(error.description)"])
            return error
        case let overloaded as StoreOverloaded:
            LoadShedding.shared.refused(.portal, metrics: metrics, logger: logger, queue: overloaded.queue)
            return LoadShedding.httpError
        default:
            metrics.storeFailure()
            logger.error("portal message not stored", metadata: ["error.type": "\(type(of: error))"])
            return APIError(.serviceUnavailable, code: "store_unavailable",
                            "the message could not be stored; retry later", headers: [.retryAfter: "5"])
        }
    }
}
