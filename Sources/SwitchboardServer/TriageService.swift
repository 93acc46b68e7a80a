import Foundation
import Logging
import ServiceLifecycle
import SwitchboardConfig
import SwitchboardCore
import SwitchboardRules
import SwitchboardStore
import SwitchboardTriage

/// Classifies every inbound message after it is stored, and applies the result.
///
/// Triage runs after the commit, not before the acknowledgement: a channel's 2xx never waits
/// for classification, and a message stored while the daemon was down is triaged when it
/// comes back (the store keeps "not triaged yet" as a state). New messages wake the loop at
/// once; an emergency's safety reply is queued in the same transaction that records it, and
/// the outbox is woken to send it.
///
/// The classifier is trained here, when the service starts (from the corpus in the binary),
/// so the listener is up and acknowledging while it trains.
public struct TriageService: Service, CustomStringConvertible {
    let store: SwitchboardStore
    let configuration: SwitchboardConfiguration.Triage
    let wake: WakeSignal
    let outboxWake: WakeSignal
    let metrics: SwitchboardMetrics
    let logger: Logger
    let rules: RulesHolder

    public var description: String { "TriageService" }

    public func run() async throws {
        metrics.triageReady(false)
        guard configuration.enabled else {
            logger.notice("triage disabled", metadata: ["key": "triage.enabled"])
            // A service that returns ends the whole group: idle until shutdown instead.
            try? await gracefulShutdown()
            return
        }
        let started = ContinuousClock.now
        let classifier = TriageClassifier(corpus: TriageClassifier.embeddedCorpus(),
                                          emergencyThreshold: configuration.emergencyThreshold)
        // The first classification builds what is built lazily (pattern tables): do it now,
        // not on the first patient's message (it cost ~0.4 s, delaying the first routings).
        let warmUp = Self.evidenceJSON(classifier.classify(channel: "portal", subject: nil, text: "I need to change my appointment, chest pain."))
        _ = rules.rules.evaluate(RuleInput(channel: "portal", intent: "general_info", urgency: "routine", language: "en",
                                           text: warmUp, contactIdentities: [], now: Date()))
        _ = RuleSet.isHandoverRequest(warmUp)
        metrics.triageReady(true)
        logger.info("triage classifier trained", metadata: [
            "corpus.messages": "\(classifier.trainingSize)", "duration": "\(ContinuousClock.now - started)",
        ])
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                var batch: [UntriagedMessage] = []
                do {
                    batch = try await store.untriagedMessages(limit: 50)
                } catch {
                    logger.error("triage query failed", metadata: ["error.type": "\(type(of: error))"])
                }
                let allRecorded = await triageConcurrently(batch, classifier: classifier)
                // A failed write leaves the message untriaged: wait before trying it again
                // rather than spinning on a store that is failing.
                if batch.count < 50 || !allRecorded { await wake.wait(timeout: .seconds(5)) }
            }
        } onGracefulShutdown: {
            wake.signal()
        }
    }

    /// Triages a batch with one task per conversation, so that the records reach the store's
    /// group commit together (one transaction for many, not one commit each: under heavy
    /// ingest, one at a time fell hundreds of messages a second behind, delaying emergencies).
    /// Within a conversation, messages are recorded one after another, oldest first, so its
    /// intent and language end as the latest message's. False when any record failed.
    private func triageConcurrently(_ batch: [UntriagedMessage], classifier: TriageClassifier) async -> Bool {
        var order: [String] = []
        var byConversation: [String: [UntriagedMessage]] = [:]
        for message in batch {
            if byConversation[message.conversationID] == nil { order.append(message.conversationID) }
            byConversation[message.conversationID, default: []].append(message)
        }
        return await withTaskGroup(of: Bool.self) { group in
            for conversationID in order {
                let messages = byConversation[conversationID] ?? []
                group.addTask {
                    var recorded = true
                    for message in messages {
                        recorded = await triage(message, classifier: classifier) && recorded
                    }
                    return recorded
                }
            }
            var allRecorded = true
            for await recorded in group { allRecorded = allRecorded && recorded }
            return allRecorded
        }
    }

    /// Classifies and records one message; false when the store failed to record it.
    private func triage(_ message: UntriagedMessage, classifier: TriageClassifier) async -> Bool {
        let result = classifier.classify(channel: message.channel == .chat ? "webchat" : message.channel.rawValue,
                                         subject: nil, text: message.text)
        let record = TriageRecord(intent: result.intent.rawValue, urgency: result.urgency.rawValue,
                                  language: result.language.rawValue, evidenceJSON: Self.evidenceJSON(result))
        let emergency = result.urgency == .emergency
        let decided = rules.rules.evaluate(RuleInput(
            channel: message.channel.rawValue, intent: result.intent.rawValue, urgency: result.urgency.rawValue,
            language: result.language.rawValue, text: message.text, contactIdentities: message.contactIdentityKinds, now: Date()))
        var effects = RuleEffects(team: decided.team, skills: decided.skills, priority: decided.priority.flatMap(Priority.init(rawValue:)),
                                  tags: decided.tags, replies: [decided.autoReply, decided.knowledgeBaseAnswer].compactMap { $0 })
        if message.automatic {
            // A machine sent it (auto-reply, list, contact-form gateway): routed on its labels,
            // never answered automatically — no safety reply, no rule reply (no mail loops).
            effects.replies = []
        }
        if RuleSet.isHandoverRequest(message.text) {
            // The patient asked for a human after an automatic answer: no more bot replies.
            effects.tags.append("handover")
            effects.replies = []
        }
        let safetyReply = result.language == .es ? configuration.safetyReplySpanish : configuration.safetyReply
        var logger = logger
        logger[metadataKey: "conversation.id"] = "\(message.conversationID)"
        logger[metadataKey: "message.id"] = "\(message.messageID)"
        do {
            let outcome = try await store.recordTriage(
                messageID: message.messageID, conversationID: message.conversationID, triage: record,
                safetyReply: emergency && !message.automatic ? safetyReply : nil, emergencyTeam: emergency ? configuration.emergencyTeam : nil,
                rules: effects)
            metrics.triaged(urgency: result.urgency.rawValue, intent: result.intent.rawValue)
            if emergency {
                // Rule ids and labels only: never the phrase that matched (it is the patient's text).
                logger.warning("emergency message triaged", metadata: [
                    "triage.rules": "\(result.redFlags.map(\.rule).joined(separator: ","))",
                    "triage.safety_reply": "\(outcome.safetyReplyQueued)",
                ])
            } else {
                logger.debug("message triaged", metadata: [
                    "triage.intent": "\(result.intent.rawValue)", "triage.urgency": "\(result.urgency.rawValue)",
                    "rules.matched": "\(decided.matchedRules.joined(separator: ","))",
                ])
            }
            if outcome.safetyReplyQueued || outcome.repliesQueued > 0 { outboxWake.signal() }
            return true
        } catch {
            metrics.storeFailure()
            logger.error("triage not recorded", metadata: ["error.type": "\(type(of: error))"])
            return false
        }
    }

    /// Confidences, rules and terms, as stored with the message (the store holds PHI; logs
    /// never get this).
    static func evidenceJSON(_ result: TriageResult) -> String {
        result.storedEvidenceJSON.text
    }
}
