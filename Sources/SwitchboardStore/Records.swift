import SwitchboardCore

/// The values the store hands out. Plain, Sendable, and free of GRDB types, so that no
/// other module needs to know how they are stored.

public struct Agent: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var email: String
    public var role: AgentRole
    public var teams: [String]
}

public struct ConversationSummary: Sendable, Equatable, Codable {
    public var id: String
    public var status: ConversationStatus
    public var priority: Priority
    public var channel: Channel
    public var assigneeID: String?
    public var teamID: String?
    public var contactID: String
    public var createdAt: Int64
    public var updatedAt: Int64
    public var lastMessageAt: Int64
}

public struct ContactView: Sendable, Equatable {
    public struct Identity: Sendable, Equatable {
        public var kind: IdentityKind
        public var value: String
    }

    public var id: String
    public var name: String?
    public var identities: [Identity]
}

public struct MessageView: Sendable, Equatable {
    public var id: String
    public var direction: MessageDirection
    public var senderAgentID: String?
    public var channel: Channel
    public var text: String
    public var sentAt: Int64
    public var createdAt: Int64
    public var deliveryStatus: DeliveryStatus?
    public var failureReason: String?
}

public struct ConversationDetail: Sendable, Equatable {
    public var conversation: ConversationSummary
    public var contact: ContactView
    public var messages: [MessageView]
}

/// What a patient's identity claims look like once the channel has normalised them.
public struct InboundContact: Sendable, Equatable {
    public var portalID: String?
    public var phoneE164: String?
    public var email: String?
    public var displayName: String?

    public init(portalID: String? = nil, phoneE164: String? = nil, email: String? = nil, displayName: String? = nil) {
        self.portalID = portalID
        self.phoneE164 = phoneE164
        self.email = email?.lowercased()
        self.displayName = displayName
    }
}

/// The answer to an inbound delivery, the same for its first delivery and every redelivery.
public struct IngestResult: Sendable, Equatable {
    public var conversationID: String
    public var messageID: String
    /// True when this delivery (or the channel's message id) was seen before and nothing new
    /// was stored.
    public var duplicate: Bool
}

/// One outbound message due for delivery, with everything the egress adapter needs.
public struct OutboxItem: Sendable, Equatable {
    public var id: Int64
    public var messageID: String
    public var conversationID: String
    public var channel: Channel
    public var attempts: Int
    public var createdAt: Int64
    public var text: String
    public var sentAt: Int64
    public var contactPortalID: String?
    public var threadID: String?
}

public struct OutboxStats: Sendable, Equatable {
    public var pending: Int
    public var dead: Int
    /// Age in milliseconds of the oldest pending item, 0 when there is none.
    public var oldestPendingAgeMilliseconds: Int64
}

public enum ConversationListStatus: String, Sendable, CaseIterable {
    case open, pending, snoozed, resolved, any
}

public enum AssigneeFilter: String, Sendable, CaseIterable {
    case me, unassigned, any
}
