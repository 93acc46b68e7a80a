import Foundation
import GRDB
import SwitchboardCore

// Acknowledging on receipt (`portal.acknowledge: received`).
//
// A delivery is acknowledged once its raw bytes and the fields its channel validated are
// committed to `inbound_queue`: one INSERT, shared with other deliveries by the group commit,
// instead of the ~20 statements that resolve the contact and the conversation and store the
// message. The daemon's normaliser then takes queued deliveries in arrival order, in
// batches, and stores each exactly as a synchronous delivery would be stored (the same
// `recordInbound`), in the same transaction that removes it from the queue.
//
// Nothing acknowledged is lost: the queue is on disk before the 202, and whatever is in it
// when the daemon stops or crashes is normalised when it starts again. Nothing is stored
// twice: the delivery id is checked against the journal before queueing and again when the
// delivery is stored, and the channel's message id when the message is. The queue itself
// does not index delivery ids, so receipt only appends: a UNIQUE index there cost a random
// page, one WAL frame, per acknowledgement. A delivery repeated while it waits is queued
// again, takes a place in the backlog, and is recognised when it is stored.
// Trusts: its callers to have verified the signature and validated every field.
// On failure: a delivery that cannot be stored (its transaction's own error, not the store
// failing) stays in the queue marked failed, with the error's type, and the batch goes on;
// the store failing (disk full, I/O) rolls the whole batch back, leaving it queued.

/// A portal message's validated fields, as queued before it is stored.
public struct QueuedPortalMessage: Codable, Sendable, Equatable {
    public var portalID: String?
    public var phoneE164: String?
    public var email: String?
    public var displayName: String?
    public var threadID: String?
    public var messageID: String
    public var text: String
    public var sentAt: Int64

    public init(contact: InboundContact, threadID: String?, messageID: String, text: String, sentAt: Int64) {
        portalID = contact.portalID
        phoneE164 = contact.phoneE164
        email = contact.email
        displayName = contact.displayName
        self.threadID = threadID
        self.messageID = messageID
        self.text = text
        self.sentAt = sentAt
    }

    var contact: InboundContact {
        InboundContact(portalID: portalID, phoneE164: phoneE164, email: email, displayName: displayName)
    }

    /// The JSON `Codable` reads back (its keys are the property names; absent optionals
    /// left out), written directly: this runs once per acknowledged delivery, where building
    /// a dictionary and sorting its keys cost more than the INSERT.
    var jsonText: String {
        var out = #"{"messageID":"# + JSONText.quote(messageID) + #","sentAt":"# + String(sentAt)
            + #","text":"# + JSONText.quote(text)
        func member(_ key: StaticString, _ value: String?) {
            guard let value else { return }
            out += ",\"\(key)\":" + JSONText.quote(value)
        }
        member("portalID", portalID)
        member("phoneE164", phoneE164)
        member("email", email)
        member("displayName", displayName)
        member("threadID", threadID)
        return out + "}"
    }

    /// Reads back what `jsonText` wrote (with the daemon's own JSON parser, as the webhook was).
    init(jsonText: String) throws {
        guard let members = (try? JSONValue.parse(jsonText.utf8))?.objectValue,
              case .string(let messageID)? = members["messageID"], case .string(let text)? = members["text"],
              case .int(let sentAt)? = members["sentAt"] else {
            throw StoreError.invalid("inbound_queue.fields is not a queued portal message")
        }
        func string(_ key: String) -> String? {
            if case .string(let value)? = members[key] { return value }
            return nil
        }
        self.init(contact: InboundContact(portalID: string("portalID"), phoneE164: string("phoneE164"), email: string("email"),
                                          displayName: string("displayName")),
                  threadID: string("threadID"), messageID: messageID, text: text, sentAt: sentAt)
    }
}

/// What receipt of a delivery did.
public enum QueueOutcome: Sendable, Equatable {
    /// Committed to the queue: it will be stored (or, if it repeats a delivery still
    /// waiting, recognised as a repeat when it is).
    case queued
    /// The same delivery id was already stored: nothing new.
    case repeated
}

/// One queued delivery the normaliser handled.
public struct NormalisedDelivery: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// Stored (or found to repeat a message id seen before: `result.duplicate`).
        case stored(IngestResult)
        /// Stored in a new conversation: its `thread_id` belongs to another patient's
        /// conversation, and a message is never put into another patient's thread.
        case storedApartFromThread(IngestResult)
        /// Left in the queue, marked failed, with the error's type (never its text).
        case failed(errorType: String)
    }

    public var channel: Channel
    public var deliveryID: String
    public var outcome: Outcome
}

extension SwitchboardStore {
    /// Deliveries acknowledged on receipt and not yet stored (not counting failed ones).
    public var inboundBacklogCount: Int { inboundBacklog.load(ordering: .relaxed) }

    /// Milliseconds since the last delivery was queued (Int64.max if none since start).
    public var millisecondsSinceLastQueued: Int64 {
        let last = lastQueuedAt.load(ordering: .relaxed)
        return last == 0 ? .max : Timestamp.now() - last
    }

    /// Deliveries queued since the store was opened: the difference between two readings is
    /// the intake in between.
    public var inboundQueuedCount: Int { queuedSinceOpen.load(ordering: .relaxed) }

    /// Queues one verified, validated portal delivery; returns once it is committed. Refused
    /// with `StoreOverloaded` when `maxInboundBacklog` deliveries are already waiting (or the
    /// write queue is full), so the portal is told "later" instead of piling up work.
    public func queuePortalMessage(deliveryID: String, rawBody: [UInt8], message: QueuedPortalMessage,
                                   now: Int64 = Timestamp.now()) async throws -> QueueOutcome {
        guard inboundBacklog.load(ordering: .relaxed) < maxInboundBacklog else { throw StoreOverloaded(queue: .backlog) }
        let fields = message.jsonText
        let outcome = try await writeInbound { db -> QueueOutcome in
            if try Bool.fetchOne(db, cachedSQL: "SELECT 1 FROM inbound_journal WHERE channel = 'portal' AND external_id = ?",
                                 arguments: [deliveryID]) ?? false {
                return .repeated
            }
            try db.execute(cachedSQL: """
                INSERT INTO inbound_queue (channel, external_id, received_at, raw, fields) VALUES ('portal', ?, ?, ?, ?)
                """, arguments: [deliveryID, now, Data(rawBody), fields])
            return .queued
        }
        if outcome == .queued {
            inboundBacklog.add(1, ordering: .relaxed)
            lastQueuedAt.store(Timestamp.now(), ordering: .relaxed)
            queuedSinceOpen.add(1, ordering: .relaxed)
        }
        return outcome
    }

    /// Stores up to `limit` queued deliveries, oldest first, in one transaction, and removes
    /// them from the queue. Each message keeps the time it was received as its own. Returns
    /// what happened to each (empty when nothing waits).
    public func normaliseQueued(limit: Int, now: Int64 = Timestamp.now()) async throws -> [NormalisedDelivery] {
        let handled = try await write { db -> [NormalisedDelivery] in
            let rows = try Row.fetchAll(db, cachedSQL: """
                SELECT id, channel, external_id, received_at, raw, fields FROM inbound_queue
                WHERE failed_at IS NULL ORDER BY id LIMIT ?
                """, arguments: [limit])
            var handled: [NormalisedDelivery] = []
            handled.reserveCapacity(rows.count)
            for row in rows {
                let queueID: Int64 = row["id"]
                let channel = Channel(rawValue: row["channel"]) ?? .portal
                let deliveryID: String = row["external_id"]
                let outcome: NormalisedDelivery.Outcome
                do {
                    let stored = try Self.storeQueued(db, channel: channel, deliveryID: deliveryID, receivedAt: row["received_at"],
                                                      raw: row["raw"], fields: row["fields"])
                    try db.execute(cachedSQL: "DELETE FROM inbound_queue WHERE id = ?", arguments: [queueID])
                    outcome = stored
                } catch {
                    // The store itself failing ends the batch (rolled back, still queued).
                    if !db.isInsideTransaction { throw error }
                    let errorType = "\(type(of: error))"
                    try db.execute(cachedSQL: "UPDATE inbound_queue SET failed_at = ?, failure = ? WHERE id = ?",
                                   arguments: [now, errorType, queueID])
                    outcome = .failed(errorType: errorType)
                }
                handled.append(NormalisedDelivery(channel: channel, deliveryID: deliveryID, outcome: outcome))
            }
            return handled
        }
        if !handled.isEmpty { inboundBacklog.subtract(handled.count, ordering: .relaxed) }
        return handled
    }

    /// One queued delivery, stored in its own savepoint: a failure undoes only its writes.
    private static func storeQueued(_ db: Database, channel: Channel, deliveryID: String, receivedAt: Int64,
                                    raw: Data, fields: String) throws -> NormalisedDelivery.Outcome {
        guard channel == .portal else { throw StoreError.invalid("no queued form for channel \(channel.rawValue)") }
        let message = try QueuedPortalMessage(jsonText: fields)
        let inbound = InboundMessage(channel: .portal, deliveryID: deliveryID, raw: Array(raw), contact: message.contact,
                                     externalMessageID: message.messageID, text: message.text, sentAt: message.sentAt)
        func record(threadID: String?) throws -> IngestResult {
            var result: IngestResult?
            try db.inSavepoint {
                result = try recordInbound(db, inbound, now: receivedAt) { db, contactID in
                    try resolvePortalConversation(db, contactID: contactID, threadID: threadID, now: receivedAt)
                }
                return .commit
            }
            return result!
        }
        do {
            return .stored(try record(threadID: message.threadID))
        } catch StoreError.conflict(_) {
            // Acknowledged already, so it cannot be answered 409 as a synchronous delivery
            // would be: kept with the patient it came from, in a conversation of its own.
            return .storedApartFromThread(try record(threadID: nil))
        }
    }
}
