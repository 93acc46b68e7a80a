import Configuration
import Foundation
import SwitchboardCore
import SystemPackage
import Yams

// SwitchboardConfig — the whole configuration surface of the daemon and the admin command
// line, in one value.
//
// Sources, later ones winning: the embedded defaults (the `keys` table below, which is
// also what `deploy/switchboard.example.yaml` documents), the YAML file given with
// `--config`, and environment variables `SWITCHBOARD_<SECTION>_<KEY>`. Every secret key
// `x_secret` has a twin `x_secret_file` naming a file that holds it, which is how systemd
// credentials (`LoadCredential=`) reach us; the file wins over the inline value.
//
// Trusts: the operator. Validates everything all the same: an unknown key, a value of the
// wrong type or out of range is an error that names the key and says why. Secrets never
// appear in an error.

/// A secret from the configuration. Its description is redacted, so that no log line that
/// prints a configuration value (ServiceLifecycle prints its services) can reveal it.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

/// Everything the daemon can be told, with its embedded defaults.
public struct SwitchboardConfiguration: Sendable {
    public struct HTTP: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        public var shutdownGraceSeconds: Int64 = 8
        public var drainSeconds: Int64 = 1
        /// A connection silent this long is closed (raised to two event-stream ping intervals).
        public var idleTimeoutSeconds: Int64 = 120
        public var trustedProxies: [String] = []
    }

    public struct Store: Sendable {
        public var path = "./var/switchboard.sqlite"
        /// Inbound messages waiting for the store before new ones are refused (503, SMTP 451).
        public var maxQueuedWrites = 1000
        /// Deliveries acknowledged on receipt and not yet stored before receipt is refused.
        public var maxBacklog = 20_000
    }

    public struct Log: Sendable {
        public var level = "info"
        public var format = LogfmtLogHandler.Format.logfmt
    }

    public struct Portal: Sendable {
        public var webhookSecret: StandardWebhooks.Secret?
        public var timestampToleranceSeconds: Int64 = 300
        public var maxBodyBytes = 262_144
        public var outboundURL: String?
        public var outboundSecret: StandardWebhooks.Secret?
        public var outboundTimeoutMilliseconds: Int64 = 10_000
        /// When the 202 is sent: once the message is stored in its conversation, or once the
        /// signed delivery is committed to the inbound queue (stored moments later).
        public var acknowledge: Acknowledge = .stored
        public enum Acknowledge: String, Sendable { case stored, received }
        /// The secret replies are signed with: the outbound one, else the inbound one.
        public var effectiveOutboundSecret: StandardWebhooks.Secret? { outboundSecret ?? webhookSecret }
    }

    public struct Outbox: Sendable {
        public var pollIntervalMilliseconds: Int64 = 1000
        public var initialBackoffMilliseconds: Int64 = 1000
        public var maxBackoffMilliseconds: Int64 = 300_000
        public var horizonSeconds: Int64 = 86_400
        public var concurrency = 4
    }

    public struct Phone: Sendable {
        public var defaultCountryCode = "1"
    }

    public struct SMS: Sendable {
        public var reopenWindowSeconds: Int64 = 604_800
        public var segmentWarning = 3
        public var helpText = "Reply STOP to stop messages, START to resume. For a medical emergency call 911."
        public var stopReply = "You are unsubscribed and will receive no more messages. Reply START to resubscribe."
        public var startReply = "You are resubscribed. Reply STOP to unsubscribe."
        public var notifyOnly = false
        public var noticeText = "You have a new message from your care team: reply here or open the patient portal."
    }

    public struct Twilio: Sendable {
        public var accountSID: String?
        public var authToken: Secret?
        public var apiBaseURL = "https://api.twilio.com"
        public var publicURL: String?
        public var fromNumber: String?
        public var messagingServiceSID: String?
        public var sendKeywordReplies = false
        public var timeoutMilliseconds: Int64 = 10_000
        /// Inbound needs the auth token; outbound needs the account too and a sender.
        public var inboundEnabled: Bool { authToken != nil }
        public var outboundEnabled: Bool { authToken != nil && accountSID != nil && (fromNumber != nil || messagingServiceSID != nil) }
    }

    public struct Kannel: Sendable {
        public var sharedSecret: Secret?
        public var allowedSources: [String] = []
        public var sendsmsURL: String?
        public var username: String?
        public var password: Secret?
        public var publicURL: String?
        public var fromNumber: String?
        public var smsc: String?
        public var dlrMask = 31
        public var sendKeywordReplies = true
        public var timeoutMilliseconds: Int64 = 10_000
        public var inboundEnabled: Bool { sharedSecret != nil || !allowedSources.isEmpty }
        public var outboundEnabled: Bool { sendsmsURL != nil && username != nil && password != nil }
    }

    public struct Triage: Sendable {
        public var enabled = true
        public var safetyReply = "If this is an emergency, call 911. For a mental-health crisis, call or text 988."
        public var safetyReplySpanish = "Si es una emergencia, llame al 911. Si es una crisis de salud mental, llame o envíe un mensaje al 988."
        public var emergencyTeam = "clinical"
        public var emergencyThreshold = 0.35
        public var rulesFile: String?
    }

    /// The router (see docs/ROUTING.md). Durations in seconds.
    public struct Routing: Sendable {
        public var offerTimeoutSeconds: Int64 = 30
        public var lapsesBeforeAway = 3
        public var idleAwaySeconds: Int64 = 900
        public var stickinessWindowSeconds: Int64 = 7 * 86_400
        public var handBackOnOffline = true
        public var defaultPolicy = "least-loaded"
        public var firstResponseSeconds: [Priority: Int64] = [.emergency: 120, .urgent: 900, .normal: 14_400, .low: 86_400]
        public var nextResponseSeconds: [Priority: Int64] = [.emergency: 300, .urgent: 1800, .normal: 28_800, .low: 172_800]
        public var slaWarningFraction = 0.8
    }

    /// The live event stream agents follow.
    public struct Events: Sendable {
        public var retentionSeconds: Int64 = 86_400
        public var pingIntervalSeconds: Int64 = 30
    }

    /// Email in (SMTP listener, IMAP polling) and out (SMTP submission through libcurl).
    public struct Email: Sendable {
        public var smtpHost = "127.0.0.1"
        public var smtpPort = 2525
        public var hostname = "localhost"
        public var acceptedDomains: [String] = []
        public var acceptedAddresses: [String] = []
        public var maxMessageBytes = 26_214_400
        public var maxRecipients = 100
        public var maxConnections = 200
        public var idleTimeoutSeconds: Int64 = 300
        public var sessionTimeoutSeconds: Int64 = 1800
        public var tlsCertificateFile: String?
        public var tlsKeyFile: String?
        public var requireTLS = false
        public var authUsername: String?
        public var authPassword: Secret?
        public var authservID: String?
        public var fromAddress: String?
        public var fromName: String?
        public var reopenWindowSeconds: Int64 = 2_592_000
        public var maxAttachmentBytes = 10_485_760
        public var submissionURL: String?
        public var submissionUsername: String?
        public var submissionPassword: Secret?
        public var submissionTLS = "starttls"
        public var submissionCAFile: String?
        public var submissionTimeoutMilliseconds: Int64 = 30_000
        public var imapURL: String?
        public var imapUsername: String?
        public var imapPassword: Secret?
        public var imapMailboxes: [String] = ["INBOX"]
        public var imapPollIntervalSeconds: Int64 = 60
        public var imapProcessedFolder: String?
        public var imapTLS = "starttls"
        public var imapCAFile: String?
        public var imapBatchSize = 50

        /// The SMTP listener runs once mail is accepted for some domain or address.
        public var listenerEnabled: Bool { !acceptedDomains.isEmpty || !acceptedAddresses.isEmpty }
        public var startTLSAvailable: Bool { tlsCertificateFile != nil && tlsKeyFile != nil }
        public var outboundEnabled: Bool { submissionURL != nil && fromAddress != nil }
        public var imapEnabled: Bool { imapURL != nil && imapUsername != nil && imapPassword != nil }
        /// The authserv-id of our own Authentication-Results (inbound copies claiming it are removed).
        public var effectiveAuthservID: String { authservID ?? hostname }
        /// The domain of our Message-IDs and reply-token addresses.
        public var domain: String {
            guard let fromAddress, let at = fromAddress.lastIndex(of: "@") else { return hostname }
            return String(fromAddress[fromAddress.index(after: at)...])
        }
    }

    /// The audit log's chain key.
    public struct Audit: Sendable {
        /// HMAC key for the audit chain (None: the chain is hashed only).
        public var chainKey: Secret?
    }

    /// Web chat (`/chat`, `/widget.js`) and the agent console (`/console`).
    public struct Chat: Sendable {
        public var enabled = true
        /// Origins (scheme://host[:port]) whose pages may open `/chat`; empty: only pages the
        /// daemon serves itself (same origin); "*": any.
        public var allowedOrigins: [String] = []
        public var visitorTokenSecret: Secret?
        public var identitySecret: Secret?
        /// Refuse identity hashes that do not sign an expiry (`id:expires`).
        public var identityRequireExpiry = false
        public var maxMessageCharacters = 4000
        public var maxFrameBytes = 16_384
        public var messagesPerMinute = 20
        public var messageBurst = 5
        public var helloTimeoutSeconds: Int64 = 10
        public var idleTimeoutSeconds: Int64 = 1800
        public var maxConnections = 10_000
        public var reopenWindowSeconds: Int64 = 86_400
        /// Console sign-in sessions end after this long without a request.
        public var consoleIdleTimeoutSeconds: Int64 = 1800
    }

    public var http = HTTP()
    public var store = Store()
    public var log = Log()
    public var portal = Portal()
    public var outbox = Outbox()
    public var phone = Phone()
    public var sms = SMS()
    public var twilio = Twilio()
    public var kannel = Kannel()
    public var triage = Triage()
    public var routing = Routing()
    public var events = Events()
    public var email = Email()
    public var chat = Chat()
    public var audit = Audit()

    public init() {}

    /// A configuration problem, naming the key (or the file) and the reason.
    public struct Problem: Error, CustomStringConvertible, Equatable {
        public var key: String
        public var reason: String
        public var description: String { "\(key): \(reason)" }

        public init(key: String, reason: String) {
            self.key = key
            self.reason = reason
        }
    }

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Every key, its embedded default and how it is applied. Keep in step with
    /// `deploy/switchboard.example.yaml` (a test compares the two).
    static let keys: [Key] = [
        Key("http.host", "127.0.0.1") { config, value in
            guard !value.isEmpty else { throw Problem(key: "http.host", reason: "must not be empty") }
            config.http.host = value
        },
        Key("http.port", "8080") { config, value in config.http.port = try Int(key: "http.port", value, in: 0...65535) },
        Key("http.trusted_proxies", "") { config, value in
            config.http.trustedProxies = value.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        },
        Key("http.drain_seconds", "1") { config, value in
            config.http.drainSeconds = try Int64(key: "http.drain_seconds", value, in: 0...60)
        },
        Key("http.idle_timeout_seconds", "120") { config, value in
            config.http.idleTimeoutSeconds = try Int64(key: "http.idle_timeout_seconds", value, in: 10...3600)
        },
        Key("http.shutdown_grace_seconds", "8") { config, value in
            config.http.shutdownGraceSeconds = try Int64(key: "http.shutdown_grace_seconds", value, in: 1...300)
        },
        Key("store.path", "./var/switchboard.sqlite") { config, value in
            guard !value.isEmpty else { throw Problem(key: "store.path", reason: "must not be empty") }
            config.store.path = value
        },
        Key("store.max_queued_writes", "1000") { config, value in
            config.store.maxQueuedWrites = try Int(key: "store.max_queued_writes", value, in: 1...100_000)
        },
        Key("store.max_backlog", "20000") { config, value in
            config.store.maxBacklog = try Int(key: "store.max_backlog", value, in: 1...10_000_000)
        },
        Key("log.level", "info") { config, value in
            guard logLevels.contains(value) else {
                throw Problem(key: "log.level", reason: "must be one of \(logLevels.joined(separator: ", "))")
            }
            config.log.level = value
        },
        Key("log.format", "logfmt") { config, value in
            guard let format = LogfmtLogHandler.Format(rawValue: value) else {
                throw Problem(key: "log.format", reason: "must be logfmt or json")
            }
            config.log.format = format
        },
        Key("portal.webhook_secret", "", secret: true) { config, value in
            config.portal.webhookSecret = try secret(key: "portal.webhook_secret", value)
        },
        Key("portal.timestamp_tolerance_seconds", "300") { config, value in
            config.portal.timestampToleranceSeconds = try Int64(key: "portal.timestamp_tolerance_seconds", value, in: 1...86_400)
        },
        Key("portal.acknowledge", "stored") { config, value in
            guard let mode = Portal.Acknowledge(rawValue: value) else {
                throw Problem(key: "portal.acknowledge", reason: "must be stored or received")
            }
            config.portal.acknowledge = mode
        },
        Key("portal.max_body_bytes", "262144") { config, value in
            config.portal.maxBodyBytes = try Int(key: "portal.max_body_bytes", value, in: 1024...(64 << 20))
        },
        Key("portal.outbound_url", "") { config, value in config.portal.outboundURL = try url(key: "portal.outbound_url", value) },
        Key("portal.outbound_secret", "", secret: true) { config, value in
            config.portal.outboundSecret = try secret(key: "portal.outbound_secret", value)
        },
        Key("portal.outbound_timeout_ms", "10000") { config, value in
            config.portal.outboundTimeoutMilliseconds = try Int64(key: "portal.outbound_timeout_ms", value, in: 100...600_000)
        },
        Key("outbox.poll_interval_ms", "1000") { config, value in
            config.outbox.pollIntervalMilliseconds = try Int64(key: "outbox.poll_interval_ms", value, in: 10...600_000)
        },
        Key("outbox.initial_backoff_ms", "1000") { config, value in
            config.outbox.initialBackoffMilliseconds = try Int64(key: "outbox.initial_backoff_ms", value, in: 10...3_600_000)
        },
        Key("outbox.max_backoff_ms", "300000") { config, value in
            config.outbox.maxBackoffMilliseconds = try Int64(key: "outbox.max_backoff_ms", value, in: 10...86_400_000)
        },
        Key("outbox.horizon_seconds", "86400") { config, value in
            config.outbox.horizonSeconds = try Int64(key: "outbox.horizon_seconds", value, in: 1...(90 * 86_400))
        },
        Key("outbox.concurrency", "4") { config, value in
            config.outbox.concurrency = try Int(key: "outbox.concurrency", value, in: 1...256)
        },
        Key("phone.default_country_code", "1") { config, value in
            guard (1...3).contains(value.count), value.allSatisfy({ $0.isASCII && $0.isNumber }), value.first != "0" else {
                throw Problem(key: "phone.default_country_code", reason: "must be a country calling code of 1 to 3 digits, such as 1 or 44")
            }
            config.phone.defaultCountryCode = value
        },
        Key("sms.reopen_window_seconds", "604800") { config, value in
            config.sms.reopenWindowSeconds = try Int64(key: "sms.reopen_window_seconds", value, in: 0...(365 * 86_400))
        },
        Key("sms.segment_warning", "3") { config, value in
            config.sms.segmentWarning = try Int(key: "sms.segment_warning", value, in: 1...100)
        },
        Key("sms.help_text", SMS().helpText) { config, value in config.sms.helpText = try text(key: "sms.help_text", value) },
        Key("sms.stop_reply", SMS().stopReply) { config, value in config.sms.stopReply = value },
        Key("sms.start_reply", SMS().startReply) { config, value in config.sms.startReply = value },
        Key("sms.notify_only", "false") { config, value in config.sms.notifyOnly = try bool(key: "sms.notify_only", value) },
        Key("sms.notice_text", SMS().noticeText) { config, value in config.sms.noticeText = try text(key: "sms.notice_text", value) },
        Key("twilio.account_sid", "") { config, value in
            guard !value.isEmpty else { return }
            guard value.hasPrefix("AC"), value.count == 34 else {
                throw Problem(key: "twilio.account_sid", reason: "must be AC followed by 32 hexadecimal digits")
            }
            config.twilio.accountSID = value
        },
        Key("twilio.auth_token", "", secret: true) { config, value in config.twilio.authToken = value.isEmpty ? nil : Secret(value) },
        Key("twilio.api_base_url", "https://api.twilio.com") { config, value in
            config.twilio.apiBaseURL = try url(key: "twilio.api_base_url", value) ?? "https://api.twilio.com"
        },
        Key("twilio.public_url", "") { config, value in config.twilio.publicURL = try url(key: "twilio.public_url", value) },
        Key("twilio.from_number", "") { config, value in config.twilio.fromNumber = value.isEmpty ? nil : value },
        Key("twilio.messaging_service_sid", "") { config, value in config.twilio.messagingServiceSID = value.isEmpty ? nil : value },
        Key("twilio.send_keyword_replies", "false") { config, value in
            config.twilio.sendKeywordReplies = try bool(key: "twilio.send_keyword_replies", value)
        },
        Key("twilio.timeout_ms", "10000") { config, value in
            config.twilio.timeoutMilliseconds = try Int64(key: "twilio.timeout_ms", value, in: 100...600_000)
        },
        Key("kannel.shared_secret", "", secret: true) { config, value in
            guard !value.isEmpty else { return }
            guard value.utf8.count >= 16 else { throw Problem(key: "kannel.shared_secret", reason: "must be at least 16 characters") }
            config.kannel.sharedSecret = Secret(value)
        },
        Key("kannel.allowed_sources", "") { config, value in
            config.kannel.allowedSources = value.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        },
        Key("kannel.sendsms_url", "") { config, value in config.kannel.sendsmsURL = try url(key: "kannel.sendsms_url", value) },
        Key("kannel.username", "") { config, value in config.kannel.username = value.isEmpty ? nil : value },
        Key("kannel.password", "", secret: true) { config, value in config.kannel.password = value.isEmpty ? nil : Secret(value) },
        Key("kannel.public_url", "") { config, value in config.kannel.publicURL = try url(key: "kannel.public_url", value) },
        Key("kannel.from_number", "") { config, value in config.kannel.fromNumber = value.isEmpty ? nil : value },
        Key("kannel.smsc", "") { config, value in config.kannel.smsc = value.isEmpty ? nil : value },
        Key("kannel.dlr_mask", "31") { config, value in config.kannel.dlrMask = try Int(key: "kannel.dlr_mask", value, in: 0...31) },
        Key("kannel.send_keyword_replies", "true") { config, value in
            config.kannel.sendKeywordReplies = try bool(key: "kannel.send_keyword_replies", value)
        },
        Key("kannel.timeout_ms", "10000") { config, value in
            config.kannel.timeoutMilliseconds = try Int64(key: "kannel.timeout_ms", value, in: 100...600_000)
        },
        Key("triage.enabled", "true") { config, value in config.triage.enabled = try bool(key: "triage.enabled", value) },
        Key("triage.safety_reply", Triage().safetyReply) { config, value in config.triage.safetyReply = value },
        Key("triage.safety_reply_es", Triage().safetyReplySpanish) { config, value in config.triage.safetyReplySpanish = value },
        Key("triage.emergency_team", "clinical") { config, value in config.triage.emergencyTeam = value },
        Key("triage.rules_file", "") { config, value in config.triage.rulesFile = value.isEmpty ? nil : value },
        Key("triage.emergency_threshold", "0.35") { config, value in
            guard let threshold = Double(value), (0.01...1).contains(threshold) else {
                throw Problem(key: "triage.emergency_threshold", reason: "must be a number between 0.01 and 1")
            }
            config.triage.emergencyThreshold = threshold
        },
        Key("routing.offer_timeout_seconds", "30") { config, value in
            config.routing.offerTimeoutSeconds = try Int64(key: "routing.offer_timeout_seconds", value, in: 1...3600)
        },
        Key("routing.lapses_before_away", "3") { config, value in
            config.routing.lapsesBeforeAway = Int(try Int64(key: "routing.lapses_before_away", value, in: 1...100))
        },
        Key("routing.idle_away_seconds", "900") { config, value in
            config.routing.idleAwaySeconds = try Int64(key: "routing.idle_away_seconds", value, in: 0...(7 * 86_400))
        },
        Key("routing.stickiness_window_seconds", "604800") { config, value in
            config.routing.stickinessWindowSeconds = try Int64(key: "routing.stickiness_window_seconds", value, in: 0...(365 * 86_400))
        },
        Key("routing.hand_back_on_offline", "true") { config, value in
            config.routing.handBackOnOffline = try bool(key: "routing.hand_back_on_offline", value)
        },
        Key("routing.default_policy", "least-loaded") { config, value in
            guard ["least-loaded", "round-robin", "manual"].contains(value) else {
                throw Problem(key: "routing.default_policy", reason: "must be least-loaded, round-robin or manual")
            }
            config.routing.defaultPolicy = value
        },
        Key("routing.sla_first_response_emergency_seconds", "120") { config, value in
            config.routing.firstResponseSeconds[.emergency] = try Int64(key: "routing.sla_first_response_emergency_seconds", value, in: 10...(30 * 86_400))
        },
        Key("routing.sla_first_response_urgent_seconds", "900") { config, value in
            config.routing.firstResponseSeconds[.urgent] = try Int64(key: "routing.sla_first_response_urgent_seconds", value, in: 10...(30 * 86_400))
        },
        Key("routing.sla_first_response_normal_seconds", "14400") { config, value in
            config.routing.firstResponseSeconds[.normal] = try Int64(key: "routing.sla_first_response_normal_seconds", value, in: 10...(30 * 86_400))
        },
        Key("routing.sla_first_response_low_seconds", "86400") { config, value in
            config.routing.firstResponseSeconds[.low] = try Int64(key: "routing.sla_first_response_low_seconds", value, in: 10...(30 * 86_400))
        },
        Key("routing.sla_next_response_emergency_seconds", "300") { config, value in
            config.routing.nextResponseSeconds[.emergency] = try Int64(key: "routing.sla_next_response_emergency_seconds", value, in: 10...(30 * 86_400))
        },
        Key("routing.sla_next_response_urgent_seconds", "1800") { config, value in
            config.routing.nextResponseSeconds[.urgent] = try Int64(key: "routing.sla_next_response_urgent_seconds", value, in: 10...(30 * 86_400))
        },
        Key("routing.sla_next_response_normal_seconds", "28800") { config, value in
            config.routing.nextResponseSeconds[.normal] = try Int64(key: "routing.sla_next_response_normal_seconds", value, in: 10...(30 * 86_400))
        },
        Key("routing.sla_next_response_low_seconds", "172800") { config, value in
            config.routing.nextResponseSeconds[.low] = try Int64(key: "routing.sla_next_response_low_seconds", value, in: 10...(30 * 86_400))
        },
        Key("routing.sla_warning_fraction", "0.8") { config, value in
            guard let fraction = Double(value), (0.1...0.99).contains(fraction) else {
                throw Problem(key: "routing.sla_warning_fraction", reason: "must be a number between 0.1 and 0.99")
            }
            config.routing.slaWarningFraction = fraction
        },
        Key("events.retention_seconds", "86400") { config, value in
            config.events.retentionSeconds = try Int64(key: "events.retention_seconds", value, in: 60...(90 * 86_400))
        },
        Key("events.ping_interval_seconds", "30") { config, value in
            config.events.pingIntervalSeconds = try Int64(key: "events.ping_interval_seconds", value, in: 5...600)
        },
        Key("audit.chain_key", "", secret: true) { config, value in
            guard value.isEmpty || value.utf8.count >= 32 else {
                throw Problem(key: "audit.chain_key", reason: "must be at least 32 characters")
            }
            config.audit.chainKey = value.isEmpty ? nil : Secret(value)
        },
        Key("chat.enabled", "true") { config, value in config.chat.enabled = try bool(key: "chat.enabled", value) },
        Key("chat.allowed_origins", "") { config, value in
            let origins = try list(key: "chat.allowed_origins", value)
            for origin in origins where origin != "*" {
                guard let url = URL(string: origin), ["http", "https"].contains(url.scheme ?? ""), url.host != nil,
                      url.path.isEmpty, url.query == nil else {
                    throw Problem(key: "chat.allowed_origins", reason: "each origin must be scheme://host[:port] (no path), or *")
                }
            }
            config.chat.allowedOrigins = origins.map { $0 == "*" ? $0 : $0.lowercased() }
        },
        Key("chat.visitor_token_secret", "", secret: true) { config, value in
            guard value.isEmpty || value.utf8.count >= 32 else {
                throw Problem(key: "chat.visitor_token_secret", reason: "must be at least 32 characters")
            }
            config.chat.visitorTokenSecret = value.isEmpty ? nil : Secret(value)
        },
        Key("chat.identity_secret", "", secret: true) { config, value in
            guard value.isEmpty || value.utf8.count >= 32 else {
                throw Problem(key: "chat.identity_secret", reason: "must be at least 32 characters")
            }
            config.chat.identitySecret = value.isEmpty ? nil : Secret(value)
        },
        Key("chat.identity_require_expiry", "false") { config, value in
            config.chat.identityRequireExpiry = try bool(key: "chat.identity_require_expiry", value)
        },
        Key("chat.max_message_characters", "4000") { config, value in
            config.chat.maxMessageCharacters = try Int(key: "chat.max_message_characters", value, in: 1...100_000)
        },
        Key("chat.max_frame_bytes", "16384") { config, value in
            config.chat.maxFrameBytes = try Int(key: "chat.max_frame_bytes", value, in: 1024...1_048_576)
        },
        Key("chat.messages_per_minute", "20") { config, value in
            config.chat.messagesPerMinute = try Int(key: "chat.messages_per_minute", value, in: 1...10_000)
        },
        Key("chat.message_burst", "5") { config, value in
            config.chat.messageBurst = try Int(key: "chat.message_burst", value, in: 1...10_000)
        },
        Key("chat.hello_timeout_seconds", "10") { config, value in
            config.chat.helloTimeoutSeconds = try Int64(key: "chat.hello_timeout_seconds", value, in: 1...300)
        },
        Key("chat.idle_timeout_seconds", "1800") { config, value in
            config.chat.idleTimeoutSeconds = try Int64(key: "chat.idle_timeout_seconds", value, in: 5...86_400)
        },
        Key("chat.max_connections", "10000") { config, value in
            config.chat.maxConnections = try Int(key: "chat.max_connections", value, in: 1...1_000_000)
        },
        Key("chat.reopen_window_seconds", "86400") { config, value in
            config.chat.reopenWindowSeconds = try Int64(key: "chat.reopen_window_seconds", value, in: 0...(365 * 86_400))
        },
        Key("chat.console_idle_timeout_seconds", "1800") { config, value in
            config.chat.consoleIdleTimeoutSeconds = try Int64(key: "chat.console_idle_timeout_seconds", value, in: 60...86_400)
        },
        Key("email.smtp_host", "127.0.0.1") { config, value in
            guard !value.isEmpty else { throw Problem(key: "email.smtp_host", reason: "must not be empty") }
            config.email.smtpHost = value
        },
        Key("email.smtp_port", "2525") { config, value in config.email.smtpPort = try Int(key: "email.smtp_port", value, in: 0...65535) },
        Key("email.hostname", "localhost") { config, value in
            guard !value.isEmpty, value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }) else {
                throw Problem(key: "email.hostname", reason: "must be a host name (letters, digits, dots and hyphens)")
            }
            config.email.hostname = value
        },
        Key("email.accepted_domains", "") { config, value in
            config.email.acceptedDomains = try list(key: "email.accepted_domains", value).map { domain in
                guard domain.contains("."), !domain.contains("@") else {
                    throw Problem(key: "email.accepted_domains", reason: "'\(domain)' is not a domain name")
                }
                return domain.lowercased()
            }
        },
        Key("email.accepted_addresses", "") { config, value in
            config.email.acceptedAddresses = try list(key: "email.accepted_addresses", value).map { address in
                guard try mailAddress(key: "email.accepted_addresses", address) != nil else { return address }
                return address.lowercased()
            }
        },
        Key("email.max_message_bytes", "26214400") { config, value in
            config.email.maxMessageBytes = try Int(key: "email.max_message_bytes", value, in: 65_536...(256 << 20))
        },
        Key("email.max_recipients", "100") { config, value in
            config.email.maxRecipients = try Int(key: "email.max_recipients", value, in: 1...10_000)
        },
        Key("email.max_connections", "200") { config, value in
            config.email.maxConnections = try Int(key: "email.max_connections", value, in: 1...100_000)
        },
        Key("email.idle_timeout_seconds", "300") { config, value in
            config.email.idleTimeoutSeconds = try Int64(key: "email.idle_timeout_seconds", value, in: 1...3600)
        },
        Key("email.session_timeout_seconds", "1800") { config, value in
            config.email.sessionTimeoutSeconds = try Int64(key: "email.session_timeout_seconds", value, in: 10...86_400)
        },
        Key("email.tls_certificate_file", "") { config, value in config.email.tlsCertificateFile = value.isEmpty ? nil : value },
        Key("email.tls_key_file", "") { config, value in config.email.tlsKeyFile = value.isEmpty ? nil : value },
        Key("email.require_tls", "false") { config, value in config.email.requireTLS = try bool(key: "email.require_tls", value) },
        Key("email.auth_username", "") { config, value in config.email.authUsername = value.isEmpty ? nil : value },
        Key("email.auth_password", "", secret: true) { config, value in config.email.authPassword = value.isEmpty ? nil : Secret(value) },
        Key("email.authserv_id", "") { config, value in config.email.authservID = value.isEmpty ? nil : value },
        Key("email.from_address", "") { config, value in config.email.fromAddress = try mailAddress(key: "email.from_address", value) },
        Key("email.from_name", "") { config, value in
            guard !value.contains(where: { $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false }) else {
                throw Problem(key: "email.from_name", reason: "must not contain control characters")
            }
            config.email.fromName = value.isEmpty ? nil : value
        },
        Key("email.reopen_window_seconds", "2592000") { config, value in
            config.email.reopenWindowSeconds = try Int64(key: "email.reopen_window_seconds", value, in: 0...(365 * 86_400))
        },
        Key("email.max_attachment_bytes", "10485760") { config, value in
            config.email.maxAttachmentBytes = try Int(key: "email.max_attachment_bytes", value, in: 0...(256 << 20))
        },
        Key("email.submission_url", "") { config, value in
            config.email.submissionURL = try mailURL(key: "email.submission_url", value, schemes: ["smtp", "smtps"])
        },
        Key("email.submission_username", "") { config, value in config.email.submissionUsername = value.isEmpty ? nil : value },
        Key("email.submission_password", "", secret: true) { config, value in
            config.email.submissionPassword = value.isEmpty ? nil : Secret(value)
        },
        Key("email.submission_tls", "starttls") { config, value in
            config.email.submissionTLS = try tlsMode(key: "email.submission_tls", value)
        },
        Key("email.submission_ca_file", "") { config, value in config.email.submissionCAFile = value.isEmpty ? nil : value },
        Key("email.submission_timeout_ms", "30000") { config, value in
            config.email.submissionTimeoutMilliseconds = try Int64(key: "email.submission_timeout_ms", value, in: 1000...600_000)
        },
        Key("email.imap_url", "") { config, value in
            config.email.imapURL = try mailURL(key: "email.imap_url", value, schemes: ["imap", "imaps"])
        },
        Key("email.imap_username", "") { config, value in config.email.imapUsername = value.isEmpty ? nil : value },
        Key("email.imap_password", "", secret: true) { config, value in config.email.imapPassword = value.isEmpty ? nil : Secret(value) },
        Key("email.imap_mailboxes", "INBOX") { config, value in
            let mailboxes = try list(key: "email.imap_mailboxes", value)
            guard !mailboxes.isEmpty else { throw Problem(key: "email.imap_mailboxes", reason: "must name at least one mailbox") }
            config.email.imapMailboxes = mailboxes
        },
        Key("email.imap_poll_interval_seconds", "60") { config, value in
            config.email.imapPollIntervalSeconds = try Int64(key: "email.imap_poll_interval_seconds", value, in: 1...86_400)
        },
        Key("email.imap_processed_folder", "") { config, value in config.email.imapProcessedFolder = value.isEmpty ? nil : value },
        Key("email.imap_tls", "starttls") { config, value in config.email.imapTLS = try tlsMode(key: "email.imap_tls", value) },
        Key("email.imap_ca_file", "") { config, value in config.email.imapCAFile = value.isEmpty ? nil : value },
        Key("email.imap_batch_size", "50") { config, value in
            config.email.imapBatchSize = try Int(key: "email.imap_batch_size", value, in: 1...10_000)
        },
    ]

    /// Every key name the file may contain: the keys above and each secret's `_file` twin.
    public static var keyNames: [String] {
        keys.flatMap { $0.secret ? [$0.name, $0.name + "_file"] : [$0.name] }
    }

    /// Loads the file (if any) and the environment over the embedded defaults, and checks
    /// everything. Throws the first `Problem`.
    public static func load(
        file: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> SwitchboardConfiguration {
        try await resolve(file: file, environment: environment).configuration
    }

    /// One key's effective value and where it came from (`switchboard config show`).
    public struct EffectiveValue: Sendable, Equatable {
        public var key: String
        /// The value, or "<redacted>" for a secret that is set ("" when unset).
        public var value: String
        public var defaultValue: String
        /// `default`, `file`, `environment`, or `secret file`: where the value was set
        /// (set explicitly to the default value still counts as set, as `postconf -n` does).
        public var source: String
        public var secret: Bool
        /// Tells a changed value from an unchanged one without keeping it (secrets included);
        /// per process, never printed.
        public var fingerprint: Int = 0
        public var isDefault: Bool { source == "default" }
    }

    /// Every key's effective value (secrets redacted), after the same checks as `load`.
    public static func effectiveValues(
        file: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> [EffectiveValue] {
        try await resolve(file: file, environment: environment).values
    }

    public static func resolve(file: String?, environment: [String: String]) async throws
        -> (configuration: SwitchboardConfiguration, values: [EffectiveValue]) {
        var providers: [any ConfigProvider] = [
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: ["switchboard"])
        ]
        if let file {
            try checkFileKeys(file)
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(file)))
            } catch {
                throw Problem(key: file, reason: "cannot be read as YAML configuration")
            }
        }
        let reader = ConfigReader(providers: providers)
        var config = SwitchboardConfiguration()
        var values: [EffectiveValue] = []
        for key in keys {
            let given = reader.string(forKey: ConfigKey(key.name), isSecret: key.secret)
            var value = given ?? key.defaultValue
            var source = given == nil ? "default" : environment[environmentName(key.name)] != nil ? "environment" : "file"
            if key.secret, let path = reader.string(forKey: ConfigKey(key.name + "_file")), !path.isEmpty {
                value = try readSecretFile(key: key.name + "_file", path: path)
                source = "secret file"
            }
            try key.apply(&config, value.trimmingWhitespace())
            let shown = key.secret ? (value.isEmpty ? "" : "<redacted>") : value.trimmingWhitespace()
            var hasher = Hasher()
            hasher.combine(value.trimmingWhitespace())
            values.append(EffectiveValue(key: key.name, value: shown, defaultValue: key.secret ? "" : key.defaultValue,
                                         source: source, secret: key.secret, fingerprint: hasher.finalize()))
        }
        if config.portal.outboundURL != nil && config.portal.effectiveOutboundSecret == nil {
            throw Problem(key: "portal.outbound_secret", reason: "is required when portal.outbound_url is set (or set portal.webhook_secret)")
        }
        if config.kannel.sendsmsURL != nil && (config.kannel.username == nil || config.kannel.password == nil) {
            throw Problem(key: "kannel.username", reason: "kannel.username and kannel.password are required when kannel.sendsms_url is set")
        }
        if config.kannel.sendsmsURL != nil && config.kannel.publicURL == nil && config.kannel.dlrMask != 0 {
            throw Problem(key: "kannel.public_url", reason: "is required for delivery reports when kannel.sendsms_url is set (or set kannel.dlr_mask: 0)")
        }
        if config.kannel.sendsmsURL != nil && config.kannel.sharedSecret == nil && config.kannel.dlrMask != 0 {
            throw Problem(key: "kannel.shared_secret", reason: "is required to authenticate delivery reports when kannel.sendsms_url is set")
        }
        try checkEmail(config.email)
        if config.outbox.initialBackoffMilliseconds > config.outbox.maxBackoffMilliseconds {
            throw Problem(key: "outbox.initial_backoff_ms", reason: "must not exceed outbox.max_backoff_ms")
        }
        return (config, values)
    }

    /// The email keys that only make sense together.
    static func checkEmail(_ email: Email) throws {
        if (email.tlsCertificateFile == nil) != (email.tlsKeyFile == nil) {
            throw Problem(key: "email.tls_key_file", reason: "email.tls_certificate_file and email.tls_key_file are set together")
        }
        for (key, path) in [("email.tls_certificate_file", email.tlsCertificateFile), ("email.tls_key_file", email.tlsKeyFile),
                            ("email.submission_ca_file", email.submissionCAFile), ("email.imap_ca_file", email.imapCAFile)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw Problem(key: key, reason: "cannot read \(path)")
            }
        }
        if email.requireTLS && !email.startTLSAvailable {
            throw Problem(key: "email.require_tls", reason: "needs email.tls_certificate_file and email.tls_key_file")
        }
        if (email.authUsername == nil) != (email.authPassword == nil) {
            throw Problem(key: "email.auth_password", reason: "email.auth_username and email.auth_password are set together")
        }
        if email.authUsername != nil && !email.startTLSAvailable {
            throw Problem(key: "email.auth_username", reason: "SMTP AUTH is offered only over TLS: set email.tls_certificate_file and email.tls_key_file")
        }
        if email.submissionURL != nil && email.fromAddress == nil {
            throw Problem(key: "email.from_address", reason: "is required when email.submission_url is set")
        }
        if (email.submissionUsername == nil) != (email.submissionPassword == nil) {
            throw Problem(key: "email.submission_password", reason: "email.submission_username and email.submission_password are set together")
        }
        if email.imapURL != nil && (email.imapUsername == nil || email.imapPassword == nil) {
            throw Problem(key: "email.imap_username", reason: "email.imap_username and email.imap_password are required when email.imap_url is set")
        }
    }

    /// The environment variable that overrides `key`.
    public static func environmentName(_ key: String) -> String {
        "SWITCHBOARD_" + key.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
    }

    /// Refuses keys we do not know (a typo would otherwise silently mean "default").
    static func checkFileKeys(_ file: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw Problem(key: file, reason: "cannot be read (\((error as NSError).localizedDescription))")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw Problem(key: file, reason: "is not valid YAML")
        }
        guard let node else { return }
        guard let mapping = node.mapping else { throw Problem(key: file, reason: "must be a YAML mapping of sections") }
        let known = Set(keyNames)
        let sections = Set(keyNames.map { String($0.split(separator: ".")[0]) })
        for (sectionNode, value) in mapping {
            let section = sectionNode.string ?? "?"
            guard sections.contains(section) else {
                throw Problem(key: section, reason: "unknown section; known sections are \(sections.sorted().joined(separator: ", "))")
            }
            guard let entries = value.mapping else {
                if value.null != nil { continue }
                throw Problem(key: section, reason: "must be a mapping of keys")
            }
            for (keyNode, entry) in entries {
                let name = section + "." + (keyNode.string ?? "?")
                guard known.contains(name) else { throw Problem(key: name, reason: "unknown key") }
                guard entry.scalar != nil else { throw Problem(key: name, reason: "must be a single value, not a list or mapping") }
            }
        }
    }

    static func readSecretFile(key: String, path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Problem(key: key, reason: "the file cannot be read")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// An http(s) URL with a host, or nil for the empty string.
    static func url(key: String, _ value: String) throws -> String? {
        guard !value.isEmpty else { return nil }
        guard let url = URL(string: value), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", url.host?.isEmpty == false else {
            throw Problem(key: key, reason: "must be an http:// or https:// URL with a host")
        }
        return value
    }

    /// A comma-separated list, items trimmed, empty items dropped.
    static func list(key: String, _ value: String) throws -> [String] {
        value.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    /// An ASCII addr-spec (`local@domain`), or nil for an empty value.
    static func mailAddress(key: String, _ value: String) throws -> String? {
        guard !value.isEmpty else { return nil }
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
              value.allSatisfy({ $0.isASCII && !$0.isWhitespace && !"<>,;:\"()[]\\".contains($0) }) else {
            throw Problem(key: key, reason: "must be a plain address such as support@clinic.example")
        }
        return value
    }

    /// A mail server URL of one of `schemes`, with a host.
    static func mailURL(key: String, _ value: String, schemes: [String]) throws -> String? {
        guard !value.isEmpty else { return nil }
        guard let url = URL(string: value), let scheme = url.scheme?.lowercased(), schemes.contains(scheme),
              url.host?.isEmpty == false else {
            throw Problem(key: key, reason: "must be a \(schemes.map { $0 + "://" }.joined(separator: " or ")) URL with a host")
        }
        return value
    }

    /// How a mail client connection is protected: `starttls` (required), `implicit` (the
    /// URL's smtps/imaps) or `none` (loopback testing only).
    static func tlsMode(key: String, _ value: String) throws -> String {
        guard ["starttls", "none"].contains(value) else {
            throw Problem(key: key, reason: "must be starttls or none (use an smtps:// or imaps:// URL for implicit TLS)")
        }
        return value
    }

    static func bool(key: String, _ value: String) throws -> Bool {
        switch value.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw Problem(key: key, reason: "must be true or false")
        }
    }

    static func text(key: String, _ value: String) throws -> String {
        guard !value.isEmpty else { throw Problem(key: key, reason: "must not be empty") }
        guard value.utf8.count <= 1600 else { throw Problem(key: key, reason: "must be at most 1600 bytes") }
        return value
    }

    static func secret(key: String, _ value: String) throws -> StandardWebhooks.Secret? {
        guard !value.isEmpty else { return nil }
        do {
            return try StandardWebhooks.Secret(value)
        } catch {
            throw Problem(key: key, reason: error.description)
        }
    }

    struct Key: Sendable {
        let name: String
        let defaultValue: String
        let secret: Bool
        let apply: @Sendable (inout SwitchboardConfiguration, String) throws -> Void

        init(_ name: String, _ defaultValue: String, secret: Bool = false,
             apply: @escaping @Sendable (inout SwitchboardConfiguration, String) throws -> Void) {
            self.name = name
            self.defaultValue = defaultValue
            self.secret = secret
            self.apply = apply
        }
    }
}

extension FixedWidthInteger {
    init(key: String, _ text: String, in range: ClosedRange<Self>) throws {
        guard let value = Self(text) else {
            throw SwitchboardConfiguration.Problem(key: key, reason: "must be a whole number")
        }
        guard range.contains(value) else {
            throw SwitchboardConfiguration.Problem(key: key, reason: "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        self = value
    }
}
