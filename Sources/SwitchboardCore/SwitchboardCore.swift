// SwitchboardCore — the values every other module shares, and the pure logic that needs
// no I/O: identifiers, phone-number normalisation, Standard Webhooks signatures, the portal
// wire format and the logfmt log handler.
//
// Trusts: nothing from the network. Every parser here takes bytes or strings and either
// returns a value or throws an error that names the offending field — never the field's
// value, because the value may be protected health information (PHI).
// On failure: functions throw; nothing here logs, retries or touches a file or socket.

/// The channels a message can arrive on and leave through. Raw values are stored in the
/// database (a CHECK constraint lists them) and used as the bounded `channel` metric label.
public enum Channel: String, Sendable, Codable, CaseIterable {
    case email, sms, chat, portal
}

/// A conversation's state. `pending` means waiting on the patient.
public enum ConversationStatus: String, Sendable, Codable, CaseIterable {
    case open, pending, snoozed, resolved
}

public enum Priority: String, Sendable, Codable, CaseIterable {
    case emergency, urgent, normal, low
}

public enum MessageDirection: String, Sendable, Codable, CaseIterable {
    case inbound, outbound, note
}

/// Delivery state of an outbound message.
public enum DeliveryStatus: String, Sendable, Codable, CaseIterable {
    case queued, sent, delivered, failed
}

public enum AgentRole: String, Sendable, Codable, CaseIterable {
    case agent, supervisor, admin

    /// Supervisors and admins see every conversation; agents see the unassigned ones and
    /// their own.
    public var seesAllConversations: Bool { self != .agent }
}

/// The kinds of identity a contact can have.
public enum IdentityKind: String, Sendable, Codable, CaseIterable {
    case email, phone, portal, chat
}

/// The SMS gateways Switchboard speaks to.
public enum SMSGateway: String, Sendable, CaseIterable, Codable {
    case twilio, kannel

    /// The dedupe key of a gateway's own message id: one namespace per gateway, so that a
    /// Twilio SID and a Kannel id can never collide in `messages.external_id`.
    public func externalID(_ id: String) -> String { "\(rawValue):\(id)" }
}
