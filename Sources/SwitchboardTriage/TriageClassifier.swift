import Foundation

/// The classifier: trained once from the shipped corpus (a few hundred milliseconds), then
/// shared; `classify` is pure and thread-safe.
public final class TriageClassifier: Sendable {
    let intentModel: LinearModel<TriageIntent>
    let urgencyModel: LinearModel<TriageUrgency>
    /// The learned probability of "emergency" at or above which a message is an emergency
    /// even without a red flag.
    public let emergencyThreshold: Double
    /// The learned probability of "urgent" (plus emergency) at or above which it is urgent.
    public let urgentThreshold: Double
    public let trainingSize: Int
    /// Each feature either model knows → its row in the intent and in the urgency model (-1:
    /// unknown to that one), so that classifying hashes each feature's name once (it was four
    /// times: for each model's scores and again for its evidence).
    private let rows: [String: (intent: Int, urgency: Int)]

    public struct LabelledMessage: Sendable, Decodable {
        public var id: String?
        public var channel: String?
        public var subject: String?
        public var text: String
        public var intent: TriageIntent?
        public var urgency: TriageUrgency?
        public var language: TriageLanguage?
    }

    /// Trained from the corpus embedded in the binary.
    public static let shared = TriageClassifier(corpus: TriageClassifier.embeddedCorpus())

    public static func embeddedCorpus() -> [LabelledMessage] {
        let decoder = JSONDecoder()
        return TriageCorpus.jsonl.split(separator: "\n").compactMap { line in
            try? decoder.decode(LabelledMessage.self, from: Data(line.utf8))
        }
    }

    public init(corpus: [LabelledMessage], emergencyThreshold: Double = 0.35, urgentThreshold: Double = 0.45) {
        var intentExamples: [LinearModel<TriageIntent>.Example] = []
        var urgencyExamples: [LinearModel<TriageUrgency>.Example] = []
        for message in corpus {
            let features = Self.features(channel: message.channel, subject: message.subject, text: message.text).features
            if let intent = message.intent { intentExamples.append(.init(features: features, label: intent)) }
            if let urgency = message.urgency { urgencyExamples.append(.init(features: features, label: urgency)) }
        }
        intentModel = LinearModel(labels: TriageIntent.allCases, examples: intentExamples)
        // Emergencies are rare and missing one is the costly error: weigh them up.
        urgencyModel = LinearModel(labels: TriageUrgency.allCases, examples: urgencyExamples,
                                   classWeights: [.emergency: 3, .urgent: 1.5])
        self.emergencyThreshold = emergencyThreshold
        self.urgentThreshold = urgentThreshold
        trainingSize = corpus.count
        var rows = intentModel.rows.mapValues { (intent: $0, urgency: -1) }
        for (feature, row) in urgencyModel.rows { rows[feature, default: (intent: -1, urgency: -1)].urgency = row }
        self.rows = rows
    }

    /// The message's features each model knows, looked up once for both.
    private func known(_ features: [String: Double])
        -> (intent: LinearModel<TriageIntent>.KnownFeatures, urgency: LinearModel<TriageUrgency>.KnownFeatures) {
        var intent = LinearModel<TriageIntent>.KnownFeatures()
        var urgency = LinearModel<TriageUrgency>.KnownFeatures()
        intent.entries.reserveCapacity(features.count)
        urgency.entries.reserveCapacity(features.count)
        for (feature, value) in features {
            guard let row = rows[feature] else { continue }
            if row.intent >= 0 { intent.entries.append((feature, row.intent, value)) }
            if row.urgency >= 0 { urgency.entries.append((feature, row.urgency, value)) }
        }
        return (intent, urgency)
    }

    static func features(channel: String?, subject: String?, text: String)
        -> (features: [String: Double], clauses: [[String]], newText: String) {
        let newText = TriageText.newText(subject: subject, text: text)
        let clauses = TriageText.clauses(TriageText.fold(newText))
        return (TriageText.features(channel: channel, clauses: clauses), clauses, newText)
    }

    public func classify(channel: String?, subject: String?, text: String) -> TriageResult {
        let (features, clauses, newText) = Self.features(channel: channel, subject: subject, text: text)
        let (language, languageConfidence) = LanguageDetector.detect(original: newText, tokens: Array(clauses.joined()))

        let (intentFeatures, urgencyFeatures) = known(features)
        let intentProbabilities = intentModel.probabilities(intentFeatures)
        let intent = intentProbabilities.max { $0.value < $1.value }?.key ?? .generalInfo

        let urgencyProbabilities = urgencyModel.probabilities(urgencyFeatures)
        let redFlags = RedFlagRule.evaluate(clauses: clauses)
        let emergencyScore = urgencyProbabilities[.emergency] ?? 0
        let urgentScore = (urgencyProbabilities[.urgent] ?? 0) + emergencyScore
        let urgency: TriageUrgency
        let reason: String
        if !redFlags.fired.isEmpty {
            urgency = .emergency
            reason = "red flag: " + redFlags.fired.map(\.rule).joined(separator: ", ")
        } else if emergencyScore >= emergencyThreshold {
            urgency = .emergency
            reason = "learned emergency score \(Self.percent(emergencyScore)) ≥ \(Self.percent(emergencyThreshold))"
        } else if urgentScore >= urgentThreshold {
            urgency = .urgent
            reason = "learned urgent score \(Self.percent(urgentScore)) ≥ \(Self.percent(urgentThreshold))"
        } else {
            urgency = .routine
            reason = "no red flag; learned scores below thresholds"
        }
        return TriageResult(
            intent: intent, urgency: urgency, language: language,
            intentConfidence: intentProbabilities, urgencyConfidence: urgencyProbabilities,
            languageConfidence: languageConfidence,
            redFlags: redFlags.fired, suppressedRedFlags: redFlags.setAside,
            intentTerms: intentModel.evidence(intentFeatures, for: intent).map(Self.readable),
            urgencyTerms: urgencyModel.evidence(urgencyFeatures, for: urgency).map(Self.readable),
            urgencyReason: reason)
    }

    static func percent(_ value: Double) -> String { String(format: "%.2f", value) }

    /// Feature names as a person reads them: `w:refill` → `refill`, `b:chest_pain` →
    /// `chest pain`, `c:#ref` → `ref…`. By Characters, as Foundation's `replacingOccurrences`
    /// matched (an underscore carrying a combining mark is not an underscore), without
    /// bridging every term of every message to NSString.
    static func readable(_ feature: String) -> String {
        let body = feature.dropFirst(2)
        switch feature.prefix(2) {
        case "b:":
            var text = ""
            for character in body { text.append(character == "_" ? " " : character) }
            return text
        case "c:":
            var text = ""
            for character in body where character != "#" { text.append(character) }
            return text + "…"
        case "ch": return "channel " + feature.dropFirst(3)
        default: return String(body)
        }
    }
}
