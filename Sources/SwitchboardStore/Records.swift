import SwitchboardCore

/// The values the store hands out. Plain, Sendable, and free of GRDB types, so that no
/// other module needs to know how they are stored.

public struct Agent: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var email: String
    public var role: AgentRole
    public var teams: [String]

    public init(id: String, name: String, email: String, role: AgentRole, teams: [String]) {
        self.id = id
        self.name = name
        self.email = email
        self.role = role
        self.teams = teams
    }
}

public struct ConversationSummary: Sendable, Equatable, Codable {
    public var id: String
    public var status: ConversationStatus
    public var priority: Priority
    public var intent: String?
    public var language: String?
    public var channel: Channel
    public var assigneeID: String?
    public var teamID: String?
    public var contactID: String
    public var createdAt: Int64
    public var updatedAt: Int64
    public var lastMessageAt: Int64
    /// SLA: when the first reply is due (set by the router), when it was sent, and when the
    /// next reply is due after the patient wrote again.
    public var firstResponseDueAt: Int64? = nil
    public var firstResponseAt: Int64? = nil
    public var nextResponseDueAt: Int64? = nil
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
    public var attachments: [AttachmentView] = []
    public var triage: TriageRecord?
}

/// A message's triage as stored: labels and the evidence (JSON) behind them.
public struct TriageRecord: Sendable, Equatable {
    public var intent: String
    public var urgency: String
    public var language: String
    public var evidenceJSON: String

    public init(intent: String, urgency: String, language: String, evidenceJSON: String) {
        self.intent = intent
        self.urgency = urgency
        self.language = language
        self.evidenceJSON = evidenceJSON
    }
}

/// An inbound message waiting for triage.
public struct UntriagedMessage: Sendable, Equatable {
    public var messageID: String
    public var conversationID: String
    public var channel: Channel
    public var text: String
    /// The kinds of identity the contact has ("email", "phone", …), for rules.
    public var contactIdentityKinds: Set<String>
}

/// What the operator's rules decided for one message.
public struct RuleEffects: Sendable, Equatable {
    public var team: String?
    public var skills: [String] = []
    public var priority: Priority?
    public var tags: [String] = []
    /// Texts to send the patient (an auto-reply, a knowledge-base answer), in order.
    public var replies: [String] = []

    public init(team: String? = nil, skills: [String] = [], priority: Priority? = nil, tags: [String] = [], replies: [String] = []) {
        self.team = team
        self.skills = skills
        self.priority = priority
        self.tags = tags
        self.replies = replies
    }

    public static let none = RuleEffects()
}

/// What triage did to a conversation.
public struct TriageOutcome: Sendable, Equatable {
    public var priorityRaised: Bool
    public var safetyReplyQueued: Bool
    public var teamAssigned: Bool
    public var repliesQueued = 0
}

public struct AttachmentView: Sendable, Equatable {
    public var url: String?
    public var contentType: String?
    public var filename: String?
    public var sizeBytes: Int64?

    public init(url: String?, contentType: String?, filename: String? = nil, sizeBytes: Int64? = nil) {
        self.url = url
        self.contentType = contentType
        self.filename = filename
        self.sizeBytes = sizeBytes
    }
}

public struct ConversationDetail: Sendable, Equatable {
    public var conversation: ConversationSummary
    public var contact: ContactView
    public var messages: [MessageView]
    /// SMS conversations: the patient's number and its consent state.
    public var smsNumber: String?
    public var smsConsent: ConsentRecord?
    /// Set by the rules (and "talk to a person": `handover`).
    public var tags: [String] = []
    public var requiredSkills: [String] = []
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
    /// SMS: the gateway and numbers of the conversation, and whether the recipient has
    /// opted out (a compliance item is sent all the same).
    public var gateway: SMSGateway?
    public var localAddress: String?
    public var remoteAddress: String?
    public var purpose: OutboxPurpose = .reply
    public var recipientOptedOut = false
}

public enum OutboxPurpose: String, Sendable, Equatable {
    /// An agent's reply.
    case reply
    /// A reply the law requires (HELP text, STOP/START confirmation): sent even to an
    /// opted-out number.
    case compliance
}

/// An SMS compliance keyword's effect on consent.
public enum ConsentAction: String, Sendable, Equatable {
    case optOut = "opt_out"
    case optIn = "opt_in"
    case help
}

/// One inbound SMS as the gateway adapter hands it over, numbers already normalised.
public struct SMSInbound: Sendable, Equatable {
    public var gateway: SMSGateway
    /// The gateway's own message id (Twilio's MessageSid, Kannel's id): the dedupe key.
    public var gatewayMessageID: String
    public var raw: [UInt8]
    public var from: String
    public var to: String
    public var text: String
    public var sentAt: Int64
    public var mediaURLs: [(url: String, contentType: String?)]
    /// A compliance keyword and the word as written, if the text is one.
    public var consent: (action: ConsentAction, keyword: String)?
    /// The text to answer the keyword with, if any (HELP text, a STOP confirmation).
    public var complianceReply: String?

    public init(gateway: SMSGateway, gatewayMessageID: String, raw: [UInt8], from: String, to: String, text: String,
                sentAt: Int64, mediaURLs: [(url: String, contentType: String?)] = [],
                consent: (action: ConsentAction, keyword: String)? = nil, complianceReply: String? = nil) {
        self.gateway = gateway
        self.gatewayMessageID = gatewayMessageID
        self.raw = raw
        self.from = from
        self.to = to
        self.text = text
        self.sentAt = sentAt
        self.mediaURLs = mediaURLs
        self.consent = consent
        self.complianceReply = complianceReply
    }

    public static func == (lhs: SMSInbound, rhs: SMSInbound) -> Bool {
        lhs.gateway == rhs.gateway && lhs.gatewayMessageID == rhs.gatewayMessageID && lhs.raw == rhs.raw
    }
}

public struct ConsentRecord: Sendable, Equatable {
    public var phone: String
    public var optedOut: Bool
    public var keyword: String
    public var gateway: SMSGateway
    public var updatedAt: Int64
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
