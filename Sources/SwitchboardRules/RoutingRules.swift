import Foundation
import Yams
import enum SwitchboardCore.ASCII

// SwitchboardRules — the operator's rules file: conditions on a triaged message (channel,
// intent, urgency, language, contact attributes, business hours, text patterns) → actions
// (team, skills, priority, tags, an auto-reply template, an answer from the knowledge base),
// plus the business hours and the knowledge base themselves.
//
// Trusts: nothing in the file. Parsing checks every key and value and reports the first
// problem with its line ("rules.yaml:14: unknown intent 'bill'"); the daemon keeps the rules
// in force when a reload fails. Evaluation is pure: the same message and time, the same
// actions.

public struct RulesError: Error, CustomStringConvertible, Equatable {
    public var file: String?
    public var line: Int?
    public var reason: String

    /// `rules.yaml:14: unknown intent 'bill'`, like a compiler.
    public var description: String {
        [file, line.map(String.init)].compactMap { $0 }.joined(separator: ":") + (file == nil && line == nil ? "" : ": ") + reason
    }

    public init(file: String? = nil, line: Int?, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }
}

/// What the rules look at.
public struct RuleInput: Sendable {
    public var channel: String
    public var intent: String
    public var urgency: String
    public var language: String
    public var text: String
    /// Identity kinds the contact has: "email", "phone", "portal", "chat".
    public var contactIdentities: Set<String>
    public var now: Date

    public init(channel: String, intent: String, urgency: String, language: String, text: String,
                contactIdentities: Set<String>, now: Date) {
        self.channel = channel
        self.intent = intent
        self.urgency = urgency
        self.language = language
        self.text = text
        self.contactIdentities = contactIdentities
        self.now = now
    }
}

/// What the matching rules decided, merged in rule order (later rules add tags and skills;
/// the first team, priority and reply win).
public struct RuleActions: Sendable, Equatable {
    public var matchedRules: [String] = []
    public var team: String?
    public var skills: [String] = []
    public var priority: String?
    public var tags: [String] = []
    public var autoReply: String?
    public var knowledgeBaseAnswer: String?
    public init() {}
}

public struct RuleSet: Sendable {
    public struct Rule: Sendable {
        public var name: String
        var channels: Set<String>?
        var intents: Set<String>?
        var urgencies: Set<String>?
        var languages: Set<String>?
        var contactHas: Set<String>?
        var afterHours: Bool?
        var textPattern: NSRegularExpressionBox?
        var team: String?
        var skills: [String]
        var priority: String?
        var tags: [String]
        var autoReply: [String: String]
        var answerFromKnowledgeBase: Bool
        var stop: Bool
    }

    public struct KnowledgeEntry: Sendable {
        public var id: String
        var keywords: [String]
        var answers: [String: String]
    }

    public var rules: [Rule]
    public var hours: BusinessHours?
    public var knowledgeBase: [KnowledgeEntry]

    public static let empty = RuleSet(rules: [], hours: nil, knowledgeBase: [])

    static let intents: Set<String> = ["appointment_new", "appointment_change", "billing", "prescription_refill", "test_results",
                                       "medical_records", "clinical_question", "portal_technical", "complaint", "general_info"]
    static let urgencies: Set<String> = ["emergency", "urgent", "routine"]
    static let channels: Set<String> = ["email", "sms", "chat", "portal"]
    static let priorities: Set<String> = ["emergency", "urgent", "normal", "low"]
    static let identities: Set<String> = ["email", "phone", "portal", "chat"]

    /// Evaluates the rules in order; a rule with `stop: true` ends evaluation when it matches.
    public func evaluate(_ input: RuleInput) -> RuleActions {
        var actions = RuleActions()
        let afterHours = hours.map { !$0.isOpen(at: input.now) } ?? false
        for rule in rules {
            if let channels = rule.channels, !channels.contains(input.channel) { continue }
            if let intents = rule.intents, !intents.contains(input.intent) { continue }
            if let urgencies = rule.urgencies, !urgencies.contains(input.urgency) { continue }
            if let languages = rule.languages, !languages.contains(input.language) { continue }
            if let has = rule.contactHas, !has.isSubset(of: input.contactIdentities) { continue }
            if let wanted = rule.afterHours, wanted != afterHours { continue }
            if let pattern = rule.textPattern, !pattern.matches(input.text) { continue }
            actions.matchedRules.append(rule.name)
            if actions.team == nil { actions.team = rule.team }
            actions.skills += rule.skills.filter { !actions.skills.contains($0) }
            if actions.priority == nil { actions.priority = rule.priority }
            actions.tags += rule.tags.filter { !actions.tags.contains($0) }
            if actions.autoReply == nil, let template = rule.autoReply[input.language] ?? rule.autoReply["en"] {
                actions.autoReply = render(template, now: input.now)
            }
            if actions.knowledgeBaseAnswer == nil, rule.answerFromKnowledgeBase {
                actions.knowledgeBaseAnswer = answer(input.text, language: input.language)
            }
            if rule.stop { break }
        }
        return actions
    }

    /// The knowledge-base entry whose keywords best match the text, in the message's language.
    public func answer(_ text: String, language: String) -> String? {
        let folded = text.lowercased()
        let best = knowledgeBase.map { entry in (entry, entry.keywords.filter { folded.contains($0) }.count) }
            .filter { $0.1 > 0 }
            .max { $0.1 < $1.1 }
        guard let entry = best?.0 else { return nil }
        return entry.answers[language] ?? entry.answers["en"]
    }

    /// `{next_opening}` becomes the next time the practice opens, in its time zone.
    func render(_ template: String, now: Date) -> String {
        guard template.contains("{next_opening}") else { return template }
        let opening = hours?.nextOpening(after: now).map { hours!.describe($0) } ?? "our next business day"
        return template.replacingOccurrences(of: "{next_opening}", with: opening)
    }
}

/// NSRegularExpression is not Sendable; it is immutable once built, so sharing it is safe.
struct NSRegularExpressionBox: @unchecked Sendable {
    let expression: NSRegularExpression
    func matches(_ text: String) -> Bool {
        expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}

extension RuleSet {
    /// "Talk to a person": a short reply asking for a human after an automatic answer. The
    /// conversation is tagged `handover` and no automatic reply is sent.
    public static func isHandoverRequest(_ text: String) -> Bool {
        let folded = handoverFolded(text)
        guard folded.count <= 60 else { return false }
        if handoverWords.contains(folded) { return true }
        return handoverPhrases.contains { folded.contains($0) }
    }

    private static let handoverWords: Set<String> = [
        "person", "persona", "agent", "agente", "human", "humano", "operator", "operador", "representative", "staff", "someone",
        "alguien", "0",
    ]
    private static let handoverPhrases = [
        "talk to a person", "speak to a person", "talk to someone", "speak to someone", "talk to a human", "real person",
        "speak with someone", "talk with someone", "talk to an agent", "talk to a nurse", "hablar con alguien",
        "hablar con una persona", "hablar con un agente", "persona real", "hablar con la enfermera",
    ]

    /// Lower-cased, diacritics removed, whitespace and punctuation trimmed from both ends.
    /// Every message passes here after triage; most are ASCII, which has no diacritics, so
    /// those are folded on their bytes: Foundation's folding and trimming went through
    /// NSString and cost about 3% of the CPU of storing and triaging a message.
    static func handoverFolded(_ text: String) -> String {
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return foundationFolded(text) }
        var bytes = text.utf8[...]
        while let first = bytes.first, asciiTrimmed[Int(first)] { bytes = bytes.dropFirst() }
        while let last = bytes.last, asciiTrimmed[Int(last)] { bytes = bytes.dropLast() }
        return String(decoding: ASCII.lowercased(bytes), as: UTF8.self)
    }

    /// The reference folding, for any text.
    static func foundationFolded(_ text: String) -> String {
        text.lowercased().folding(options: [.diacriticInsensitive], locale: nil)
            .trimmingCharacters(in: trimmedCharacters)
    }

    private static let trimmedCharacters = CharacterSet.whitespacesAndNewlines.union(.punctuationCharacters)
    /// For each ASCII byte, whether `trimmedCharacters` holds it: the same set by construction.
    private static let asciiTrimmed: [Bool] = (0..<128).map { trimmedCharacters.contains(Unicode.Scalar(UInt8($0))) }
}
