// SwitchboardTriage — what a patient message is about (intent), how urgent it is, and its
// language, with the evidence behind each answer. In process, no I/O, no model download:
// the models are trained when the classifier is built, from the labelled corpus that ships
// in the binary (triage/corpus/*.jsonl, embedded by triage/build_corpus.py).
//
// Emergencies are caught twice: by explicit red-flag rules (RedFlagRules.swift: reviewable
// phrases in English and Spanish with negation, history, idiom and "what are the signs of"
// guards) and by the learned urgency model. Either one is enough: missing an emergency costs
// far more than an extra look by a clinician.
//
// Trusts: nothing; any text is classified. Never logs, never throws on input.

import SwitchboardCore

/// The ten things patients write about.
public enum TriageIntent: String, Sendable, CaseIterable, Codable {
    case appointmentNew = "appointment_new"
    case appointmentChange = "appointment_change"
    case billing
    case prescriptionRefill = "prescription_refill"
    case testResults = "test_results"
    case medicalRecords = "medical_records"
    case clinicalQuestion = "clinical_question"
    case portalTechnical = "portal_technical"
    case complaint
    case generalInfo = "general_info"
}

public enum TriageUrgency: String, Sendable, CaseIterable, Codable {
    case emergency, urgent, routine
}

public enum TriageLanguage: String, Sendable, CaseIterable, Codable {
    case en, es
}

/// One classification with its confidences and evidence.
public struct TriageResult: Sendable, Equatable {
    public var intent: TriageIntent
    public var urgency: TriageUrgency
    public var language: TriageLanguage
    /// Probability of each label from the learned models (intent, urgency) or the language
    /// scorer.
    public var intentConfidence: [TriageIntent: Double]
    public var urgencyConfidence: [TriageUrgency: Double]
    public var languageConfidence: Double
    /// Red-flag rules that fired (ids), and those that matched but were set aside, with why.
    public var redFlags: [RedFlagMatch]
    public var suppressedRedFlags: [RedFlagMatch]
    /// The features that pushed most towards the chosen intent and urgency.
    public var intentTerms: [String]
    public var urgencyTerms: [String]
    /// Why the urgency is what it is, in words.
    public var urgencyReason: String
}

extension TriageResult {
    /// The labels, confidences and evidence (the command line's output).
    public var json: JSONValue {
        .object(["intent": .string(intent.rawValue), "urgency": .string(urgency.rawValue), "language": .string(language.rawValue),
                 "confidence": confidenceJSON, "evidence": evidenceJSON])
    }

    /// What the store keeps with the message: the evidence with the confidences beside it.
    public var storedEvidenceJSON: JSONValue {
        guard case .object(var members) = evidenceJSON else { return evidenceJSON }
        members["confidence"] = confidenceJSON
        return .object(members)
    }

    /// Each label set's probabilities, rounded to three places.
    public var confidenceJSON: JSONValue {
        func rounded<L: RawRepresentable>(_ values: [L: Double]) -> JSONValue where L.RawValue == String {
            .object(Dictionary(uniqueKeysWithValues: values.map { ($0.key.rawValue, .number(($0.value * 1000).rounded() / 1000)) }))
        }
        return .object(["intent": rounded(intentConfidence), "urgency": rounded(urgencyConfidence),
                        "language": .number((languageConfidence * 1000).rounded() / 1000)])
    }

    /// Why: the red flags that fired and those set aside, the strongest learned terms.
    public var evidenceJSON: JSONValue {
        .object([
            "intent_terms": .array(intentTerms.map(JSONValue.string)), "urgency_terms": .array(urgencyTerms.map(JSONValue.string)),
            "urgency_reason": .string(urgencyReason),
            "red_flags": .array(redFlags.map { .object(["rule": .string($0.rule), "phrase": .string($0.phrase)]) }),
            "set_aside": .array(suppressedRedFlags.map {
                .object(["rule": .string($0.rule), "phrase": .string($0.phrase), "because": .string($0.setAsideBecause ?? "")])
            }),
        ])
    }
}
