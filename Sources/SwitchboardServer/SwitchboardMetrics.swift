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

    func storeFailure() {
        Counter(label: "switchboard_store_failures_total").increment()
    }

    func outbox(depth: Int, oldestAgeSeconds: Double, dead: Int) {
        Gauge(label: "switchboard_outbox_depth").record(depth)
        Gauge(label: "switchboard_outbox_oldest_age_seconds").record(oldestAgeSeconds)
        Gauge(label: "switchboard_outbox_dead").record(dead)
    }
}
