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
    /// Email only: the mail's own facts.
    public var email: EmailView?
}

/// What an agent sees of a mail message beyond its text.
public struct EmailView: Sendable, Equatable {
    public var subject: String?
    public var fromAddress: String?
    public var rfcMessageID: String
    /// The quoted history separated from the new text.
    public var quoted: String?
    /// The sanitised HTML body, if the mail had one.
    public var html: String?
    /// Why it is an automatic message, if it is one (`auto_submitted`, `list_mail`, …).
    public var autoReply: String?
}

/// One stored attachment's bytes, for download.
public struct AttachmentContent: Sendable, Equatable {
    public var filename: String?
    public var contentType: String?
    public var data: [UInt8]
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
    /// Sent by a machine (an email auto-reply, list or bulk mail): triaged and routed like
    /// any message — a contact form's "auto-generated" mail can still be an emergency — but
    /// nothing answers it automatically (RFC 3834: no mail loops).
    public var automatic: Bool = false
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
    /// Set for attachments whose bytes we keep (email): the download id.
    public var id: Int64?
    public var url: String?
    public var contentType: String?
    public var filename: String?
    public var sizeBytes: Int64?

    public init(id: Int64? = nil, url: String?, contentType: String?, filename: String? = nil, sizeBytes: Int64? = nil) {
        self.id = id
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
    /// A web-chat visitor id.
    public var chatVisitorID: String?
    public var displayName: String?
    /// False when the name is only a claim (a chat page's): it fills a contact without a
    /// name but never replaces one.
    public var nameIsAuthoritative = true

    public init(portalID: String? = nil, phoneE164: String? = nil, email: String? = nil, chatVisitorID: String? = nil,
                displayName: String? = nil) {
        self.portalID = portalID
        self.phoneE164 = phoneE164
        self.email = email?.lowercased()
        self.chatVisitorID = chatVisitorID
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
    /// Sent by the system or a rule, not by an agent (email marks it `Auto-Submitted`).
    public var automatic = false
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

/// How a mail message reached us.
public enum EmailSource: String, Sendable, Equatable {
    case smtp
    case imap
}

/// One attachment of an inbound mail, as the MIME parser kept it (`data` is nil when it was
/// over the size limit: its name, type and size are still recorded).
public struct EmailAttachmentRecord: Sendable, Equatable {
    public var filename: String?
    public var contentType: String
    public var size: Int
    public var contentID: String?
    public var isInline: Bool
    public var data: [UInt8]?

    public init(filename: String?, contentType: String, size: Int, contentID: String?, isInline: Bool, data: [UInt8]?) {
        self.filename = filename
        self.contentType = contentType
        self.size = size
        self.contentID = contentID
        self.isInline = isInline
        self.data = data
    }
}

/// One inbound mail message as the email adapter hands it over, already parsed.
public struct EmailInbound: Sendable, Equatable {
    public var source: EmailSource
    /// This delivery's own id: `smtp:<queue id>` or `imap:<mailbox>:<uidvalidity>:<uid>`.
    public var deliveryID: String
    /// The message exactly as received (after our own header hygiene).
    public var raw: [UInt8]
    /// The Message-ID (without angle brackets), or a digest of the message when it has none:
    /// the dedupe key across SMTP and IMAP.
    public var rfcMessageID: String
    public var fromAddress: String
    public var fromName: String?
    /// Our address it was sent to (replies go out from it).
    public var toAddress: String?
    public var subject: String?
    /// The new text of the message (quoted history separated into `quoted`).
    public var text: String
    public var html: String?
    public var quoted: String?
    /// In-Reply-To then References (newest first): Message-IDs that may name our mail.
    public var threadReferences: [String]
    /// Reply tokens found in the recipient addresses (`support+<token>@…`).
    public var replyTokens: [String]
    public var sentAt: Int64
    /// Why this is an automatic message (`auto_submitted`, `precedence`, …), if it is one.
    public var autoReply: String?
    public var attachments: [EmailAttachmentRecord]

    public init(source: EmailSource, deliveryID: String, raw: [UInt8], rfcMessageID: String, fromAddress: String,
                fromName: String?, toAddress: String?, subject: String?, text: String, html: String?, quoted: String?,
                threadReferences: [String], replyTokens: [String], sentAt: Int64, autoReply: String?,
                attachments: [EmailAttachmentRecord]) {
        self.source = source
        self.deliveryID = deliveryID
        self.raw = raw
        self.rfcMessageID = rfcMessageID
        self.fromAddress = fromAddress
        self.fromName = fromName
        self.toAddress = toAddress
        self.subject = subject
        self.text = text
        self.html = html
        self.quoted = quoted
        self.threadReferences = threadReferences
        self.replyTokens = replyTokens
        self.sentAt = sentAt
        self.autoReply = autoReply
        self.attachments = attachments
    }
}

/// A delivery status notification (RFC 3464) received by mail.
public struct EmailBounce: Sendable, Equatable {
    public var source: EmailSource
    public var deliveryID: String
    public var raw: [UInt8]
    /// The bounce's own Message-ID (or a digest): dedupe key.
    public var rfcMessageID: String
    /// Message-IDs of the returned original (ours, if it is a bounce of our reply).
    public var originalMessageIDs: [String]
    /// Whether delivery failed (a `delayed` report only informs).
    public var failed: Bool
    /// The reason the agent sees on the failed message: status and diagnostic.
    public var reason: String
    /// The text of the system message kept in the conversation.
    public var notice: String

    public init(source: EmailSource, deliveryID: String, raw: [UInt8], rfcMessageID: String, originalMessageIDs: [String],
                failed: Bool, reason: String, notice: String) {
        self.source = source
        self.deliveryID = deliveryID
        self.raw = raw
        self.rfcMessageID = rfcMessageID
        self.originalMessageIDs = originalMessageIDs
        self.failed = failed
        self.reason = reason
        self.notice = notice
    }
}

public enum EmailBounceOutcome: Sendable, Equatable {
    /// The bounce names our message `messageID` (marked failed when the report says so).
    case matched(messageID: String, conversationID: String, duplicate: Bool)
    /// We never sent what it bounces: kept in `mail_quarantine`.
    case quarantined
}

/// What an outbound mail reply needs from the store.
public struct EmailOutboundContext: Sendable, Equatable {
    /// Our Message-ID for this reply, the same on every attempt.
    public var rfcMessageID: String
    public var toAddress: String?
    public var toName: String?
    /// Our address the patient wrote to, if known.
    public var localAddress: String?
    public var replyToken: String?
    /// The thread's subject (from the patient's first mail), if any.
    public var subject: String?
    public var inReplyTo: String?
    /// Message-IDs of the thread, oldest first (at most 20).
    public var references: [String]
}

/// An IMAP mailbox's position: everything up to `lastUID` under `uidValidity` is committed.
public struct IMAPCursor: Sendable, Equatable {
    public var uidValidity: Int64
    public var lastUID: Int64

    public init(uidValidity: Int64, lastUID: Int64) {
        self.uidValidity = uidValidity
        self.lastUID = lastUID
    }
}
