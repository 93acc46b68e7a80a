import Foundation

/// The patient portal's webhook body, both directions.
///
/// Inbound: `{"type":"message.created","patient":{"id","name"?,"phone"?,"email"?},
/// "thread_id"?,"message":{"id","text","sent_at"}}`. Decoding validates every field and
/// names the first bad one in its error, so the portal's developers can fix their side
/// from our 400 alone. Errors never echo a value.
public struct PortalInboundEvent: Sendable, Equatable {
    public struct Patient: Sendable, Equatable {
        public var id: String
        public var name: String?
        public var phone: String?
        public var email: String?
    }

    public struct Message: Sendable, Equatable {
        public var id: String
        public var text: String
        public var sentAt: Int64
    }

    public var patient: Patient
    public var threadID: String?
    public var message: Message

    /// The one event type the portal sends us today.
    public static let messageCreated = "message.created"
    /// Longest accepted identifier (patient, thread, message id), in UTF-8 bytes.
    public static let maxIdentifierBytes = 256

    public enum DecodingError: Error, Equatable, CustomStringConvertible {
        case malformedJSON
        case missingField(String)
        case wrongType(field: String, expected: String)
        case invalidValue(field: String, reason: String)
        case unsupportedType

        /// Safe to log and to return to the sender: names fields, never values.
        public var description: String {
            switch self {
            case .malformedJSON: "body is not valid JSON"
            case .missingField(let field): "missing field \(field)"
            case .wrongType(let field, let expected): "field \(field) must be \(expected)"
            case .invalidValue(let field, let reason): "field \(field) \(reason)"
            case .unsupportedType: "field type: only \"message.created\" is accepted"
            }
        }

        public var field: String? {
            switch self {
            case .missingField(let field), .wrongType(let field, _), .invalidValue(let field, _): field
            case .unsupportedType: "type"
            case .malformedJSON: nil
            }
        }
    }

    public init(patient: Patient, threadID: String?, message: Message) {
        self.patient = patient
        self.threadID = threadID
        self.message = message
    }

    public static func decode(_ body: some Collection<UInt8>) throws(DecodingError) -> PortalInboundEvent {
        guard let root = (try? JSONValue.parse(body))?.objectValue else { throw .malformedJSON }
        let fields = Fields(root, path: "")
        let type = try fields.requiredString("type")
        guard type == messageCreated else { throw .unsupportedType }

        let patientFields = try fields.object("patient")
        let patient = Patient(
            id: try patientFields.identifier("id"),
            name: try patientFields.optionalString("name"),
            phone: try patientFields.optionalString("phone"),
            email: try patientFields.optionalString("email")
        )
        if let email = patient.email, !email.contains("@") {
            throw .invalidValue(field: "patient.email", reason: "is not an email address")
        }
        let threadID = try fields.optionalString("thread_id")
        if let threadID, threadID.isEmpty || threadID.utf8.count > maxIdentifierBytes {
            throw .invalidValue(field: "thread_id", reason: "must be 1 to \(maxIdentifierBytes) bytes")
        }
        let messageFields = try fields.object("message")
        let text = try messageFields.requiredString("text")
        guard !text.trimmingWhitespace().isEmpty else {
            throw .invalidValue(field: "message.text", reason: "must not be empty")
        }
        let sentAtText = try messageFields.requiredString("sent_at")
        guard let sentAt = Timestamp.parse(sentAtText) else {
            throw .invalidValue(field: "message.sent_at", reason: "is not an RFC 3339 date-time")
        }
        let message = Message(id: try messageFields.identifier("id"), text: text, sentAt: sentAt)
        return PortalInboundEvent(patient: patient, threadID: threadID, message: message)
    }

    /// Typed access to one JSON object, with errors that carry the dotted field path.
    /// `null` counts as absent.
    private struct Fields {
        let values: [String: JSONValue]
        let path: String

        init(_ values: [String: JSONValue], path: String) {
            self.values = values
            self.path = path
        }

        func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

        func object(_ key: String) throws(DecodingError) -> Fields {
            guard let value = values[key], value != .null else { throw .missingField(name(key)) }
            guard case .object(let members) = value else { throw .wrongType(field: name(key), expected: "an object") }
            return Fields(members, path: name(key))
        }

        func optionalString(_ key: String) throws(DecodingError) -> String? {
            guard let value = values[key], value != .null else { return nil }
            guard case .string(let string) = value else { throw .wrongType(field: name(key), expected: "a string") }
            return string
        }

        func requiredString(_ key: String) throws(DecodingError) -> String {
            guard let string = try optionalString(key) else { throw .missingField(name(key)) }
            return string
        }

        func identifier(_ key: String) throws(DecodingError) -> String {
            let value = try requiredString(key)
            guard !value.isEmpty, value.utf8.count <= PortalInboundEvent.maxIdentifierBytes else {
                throw .invalidValue(field: name(key), reason: "must be 1 to \(PortalInboundEvent.maxIdentifierBytes) bytes")
            }
            return value
        }
    }
}

/// An agent's reply as the portal receives it.
public struct PortalOutboundEvent: Sendable, Equatable, Encodable {
    public struct Patient: Sendable, Equatable, Encodable {
        public var id: String
    }

    public struct Message: Sendable, Equatable, Encodable {
        public var id: String
        public var text: String
        public var sentAt: String

        enum CodingKeys: String, CodingKey {
            case id, text
            case sentAt = "sent_at"
        }
    }

    public var type = PortalInboundEvent.messageCreated
    public var patient: Patient
    public var threadID: String?
    public var message: Message

    enum CodingKeys: String, CodingKey {
        case type, patient, message
        case threadID = "thread_id"
    }

    public init(patientID: String, threadID: String?, messageID: String, text: String, sentAt: Int64) {
        patient = Patient(id: patientID)
        self.threadID = threadID
        message = Message(id: messageID, text: text, sentAt: Timestamp.format(sentAt))
    }

    /// Deterministic bytes (sorted keys), so every retry of one message sends the same body.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings cannot fail.
        return Array((try? encoder.encode(self)) ?? Data())
    }
}
