import Metrics
import SwitchboardCore

/// Every metric the daemon emits, created once. Label values are bounded enumerations
/// (channel, outcome, reason) — never an id, never patient data.
public struct SwitchboardMetrics: Sendable {
    public init() {}

    func messageIn(channel: SwitchboardCore.Channel) {
        Counter(label: "switchboard_messages_in_total", dimensions: [("channel", channel.rawValue)]).increment()
    }

    /// outcome: delivered | retry | dead
    func messageOut(channel: SwitchboardCore.Channel, outcome: String) {
        Counter(label: "switchboard_messages_out_total", dimensions: [("channel", channel.rawValue), ("outcome", outcome)]).increment()
    }

    func webhookRejected(channel: SwitchboardCore.Channel, reason: String) {
        Counter(label: "switchboard_webhooks_rejected_total", dimensions: [("channel", channel.rawValue), ("reason", reason)]).increment()
    }

    /// Both labels are small closed sets (3 urgencies, 10 intents).
    func triaged(urgency: String, intent: String) {
        Counter(label: "switchboard_triage_total", dimensions: [("urgency", urgency), ("intent", intent)]).increment()
    }

    /// 1 once the triage classifier is trained and classifying, 0 before (it trains at start,
    /// while intake already runs) and when triage is disabled.
    func triageReady(_ ready: Bool) {
        Gauge(label: "switchboard_triage_ready").record(ready ? 1 : 0)
    }

    /// One store transaction has committed, carrying `writes` callers' writes (group commit).
    public func storeCommitted(writes: Int) {
        Counter(label: "switchboard_store_commits_total").increment()
        Counter(label: "switchboard_store_writes_total").increment(by: writes)
    }

    /// An inbound message refused because the store's write queue was full (load shedding).
    func shed(channel: SwitchboardCore.Channel) {
        Counter(label: "switchboard_inbound_shed_total", dimensions: [("channel", channel.rawValue)]).increment()
    }

    func storeFailure() {
        Counter(label: "switchboard_store_failures_total").increment()
    }

    func outbox(depth: Int, oldestAgeSeconds: Double, dead: Int) {
        Gauge(label: "switchboard_outbox_depth").record(depth)
        Gauge(label: "switchboard_outbox_oldest_age_seconds").record(oldestAgeSeconds)
        Gauge(label: "switchboard_outbox_dead").record(dead)
    }

    /// outcome: offered | assigned | queued
    func routingDecision(outcome: String) {
        Counter(label: "switchboard_routing_decisions_total", dimensions: [("outcome", outcome)]).increment()
    }

    /// via: accepted | auto-accept | claimed | transfer
    func assigned(via: String) {
        Counter(label: "switchboard_assignments_total", dimensions: [("via", via)]).increment()
    }

    /// reason: expired | declined | agent_away | agent_offline | closed | transferred | …
    func offerEnded(reason: String) {
        let bounded = ["expired", "declined", "agent_away", "agent_offline", "closed", "transferred"].contains(reason) ? reason : "other"
        Counter(label: "switchboard_offers_ended_total", dimensions: [("reason", bounded)]).increment()
    }

    /// sla: first_response | next_response
    func slaBreached(_ sla: String) {
        Counter(label: "switchboard_sla_breaches_total", dimensions: [("sla", sla)]).increment()
    }

    func inboundBacklog(_ count: Int) {
        Gauge(label: "switchboard_inbound_backlog").record(count)
    }

    func routingQueue(depth: Int) {
        Gauge(label: "switchboard_routing_queue_depth").record(depth)
    }

    func eventStreams(_ count: Int) {
        Gauge(label: "switchboard_event_streams").record(count)
    }

    /// outcome: stored | duplicate | bounce | quarantined | rejected | failed
    func mailIn(source: String, outcome: String) {
        Counter(label: "switchboard_mail_in_total", dimensions: [("source", source), ("outcome", outcome)]).increment()
    }

    /// SMTP replies the listener gave that refused something (class: 4xx | 5xx), by reason.
    func smtpRefused(reason: String) {
        Counter(label: "switchboard_smtp_refusals_total", dimensions: [("reason", reason)]).increment()
    }

    func smtpConnections(_ count: Int) {
        Gauge(label: "switchboard_smtp_connections").record(count)
    }

    /// outcome: ok | error
    func imapPoll(outcome: String) {
        Counter(label: "switchboard_imap_polls_total", dimensions: [("outcome", outcome)]).increment()
    }

    func chatConnections(_ count: Int) {
        Gauge(label: "switchboard_chat_connections").record(count)
    }

    /// Chat frames refused or connections closed, by reason: bad_frame | rate_limited |
    /// too_long | origin | identity | token | hello_timeout | idle | capacity | store.
    func chatRefused(reason: String) {
        Counter(label: "switchboard_chat_refusals_total", dimensions: [("reason", reason)]).increment()
    }
}
