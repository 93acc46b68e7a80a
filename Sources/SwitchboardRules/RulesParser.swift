import Foundation
import Yams

extension RuleSet {
    /// Parses a rules file. Every problem is reported with its line; nothing is guessed.
    ///
    /// ```yaml
    /// business_hours: {timezone: America/New_York, mon: "08:00-17:00", …}
    /// knowledge_base:
    ///   - {id: hours, keywords: [hours, open], answer: "…", answer_es: "…"}
    /// rules:
    ///   - name: after hours
    ///     when: {after_hours: true}
    ///     then: {auto_reply: "We open {next_opening}."}
    /// ```
    public static func parse(_ text: String) throws(RulesError) -> RuleSet {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { return .empty }
            root = node
        } catch let error as YamlError {
            throw RulesError(line: Self.line(of: error), reason: "not valid YAML")
        } catch {
            throw RulesError(line: nil, reason: "not valid YAML")
        }
        guard let mapping = root.mapping else { throw RulesError(line: root.mark?.line, reason: "the file must be a mapping") }
        try checkKeys(mapping, allowed: ["business_hours", "knowledge_base", "rules"], context: "top level")
        var set = RuleSet.empty
        if let hours = mapping["business_hours"] { set.hours = try parseHours(hours) }
        if let entries = mapping["knowledge_base"] {
            guard let sequence = entries.sequence else { throw RulesError(line: entries.mark?.line, reason: "knowledge_base must be a list") }
            set.knowledgeBase = try sequence.map(parseKnowledgeEntry)
        }
        if let rules = mapping["rules"] {
            guard let sequence = rules.sequence else { throw RulesError(line: rules.mark?.line, reason: "rules must be a list") }
            set.rules = try sequence.map(parseRule)
        }
        return set
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    private static func checkKeys(_ mapping: Node.Mapping, allowed: Set<String>, context: String) throws(RulesError) {
        for (key, _) in mapping {
            guard let name = key.string, allowed.contains(name) else {
                throw RulesError(line: key.mark?.line, reason: "unknown key '\(key.string ?? "?")' in \(context); expected one of \(allowed.sorted().joined(separator: ", "))")
            }
        }
    }

    private static func string(_ node: Node, _ what: String) throws(RulesError) -> String {
        guard let value = node.scalar?.string, !value.isEmpty else { throw RulesError(line: node.mark?.line, reason: "\(what) must be a non-empty text") }
        return value
    }

    private static func strings(_ node: Node, _ what: String, allowed: Set<String>? = nil) throws(RulesError) -> [String] {
        let values: [String]
        if let sequence = node.sequence {
            var collected: [String] = []
            for item in sequence { collected.append(try string(item, what)) }
            values = collected
        } else {
            values = [try string(node, what)]
        }
        if let allowed, let bad = values.first(where: { !allowed.contains($0) }) {
            throw RulesError(line: node.mark?.line, reason: "unknown \(what) '\(bad)'; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
        return values
    }

    private static func bool(_ node: Node, _ what: String) throws(RulesError) -> Bool {
        switch node.scalar?.string.lowercased() {
        case "true", "yes": return true
        case "false", "no": return false
        default: throw RulesError(line: node.mark?.line, reason: "\(what) must be true or false")
        }
    }

    private static func parseHours(_ node: Node) throws(RulesError) -> BusinessHours {
        guard let mapping = node.mapping else { throw RulesError(line: node.mark?.line, reason: "business_hours must be a mapping") }
        try checkKeys(mapping, allowed: Set(BusinessHours.days.keys).union(["timezone"]), context: "business_hours")
        guard let zoneNode = mapping["timezone"] else { throw RulesError(line: node.mark?.line, reason: "business_hours needs a timezone") }
        let zoneName = try string(zoneNode, "timezone")
        guard let zone = TimeZone(identifier: zoneName) else { throw RulesError(line: zoneNode.mark?.line, reason: "unknown timezone '\(zoneName)'") }
        var week: [Int: [Range<Int>]] = [:]
        for (day, number) in BusinessHours.days {
            guard let value = mapping[day] else { continue }
            let text = try string(value, day)
            if text.lowercased() == "closed" { continue }
            guard let ranges = BusinessHours.parseRanges(text) else {
                throw RulesError(line: value.mark?.line, reason: "\(day) must be like \"08:00-12:00, 13:00-17:00\" or \"closed\"")
            }
            week[number] = ranges
        }
        return BusinessHours(timeZone: zone, week: week)
    }

    private static func parseKnowledgeEntry(_ node: Node) throws(RulesError) -> KnowledgeEntry {
        guard let mapping = node.mapping else { throw RulesError(line: node.mark?.line, reason: "a knowledge_base entry must be a mapping") }
        try checkKeys(mapping, allowed: ["id", "keywords", "answer", "answer_es"], context: "knowledge_base entry")
        guard let id = mapping["id"], let keywords = mapping["keywords"], let answer = mapping["answer"] else {
            throw RulesError(line: node.mark?.line, reason: "a knowledge_base entry needs id, keywords and answer")
        }
        var answers = ["en": try string(answer, "answer")]
        if let spanish = mapping["answer_es"] { answers["es"] = try string(spanish, "answer_es") }
        return KnowledgeEntry(id: try string(id, "id"), keywords: try strings(keywords, "keyword").map { $0.lowercased() }, answers: answers)
    }

    private static func parseRule(_ node: Node) throws(RulesError) -> Rule {
        guard let mapping = node.mapping else { throw RulesError(line: node.mark?.line, reason: "a rule must be a mapping") }
        try checkKeys(mapping, allowed: ["name", "when", "then", "stop"], context: "rule")
        guard let nameNode = mapping["name"] else { throw RulesError(line: node.mark?.line, reason: "a rule needs a name") }
        var rule = Rule(name: try string(nameNode, "name"), skills: [], tags: [], autoReply: [:], answerFromKnowledgeBase: false, stop: false)
        if let when = mapping["when"] {
            guard let conditions = when.mapping else { throw RulesError(line: when.mark?.line, reason: "when must be a mapping") }
            try checkKeys(conditions, allowed: ["channel", "intent", "urgency", "language", "contact_has", "after_hours", "text_matches"], context: "when")
            if let value = conditions["channel"] { rule.channels = Set(try strings(value, "channel", allowed: channels)) }
            if let value = conditions["intent"] { rule.intents = Set(try strings(value, "intent", allowed: intents)) }
            if let value = conditions["urgency"] { rule.urgencies = Set(try strings(value, "urgency", allowed: urgencies)) }
            if let value = conditions["language"] { rule.languages = Set(try strings(value, "language", allowed: ["en", "es"])) }
            if let value = conditions["contact_has"] { rule.contactHas = Set(try strings(value, "contact identity", allowed: identities)) }
            if let value = conditions["after_hours"] { rule.afterHours = try bool(value, "after_hours") }
            if let value = conditions["text_matches"] {
                let pattern = try string(value, "text_matches")
                guard let expression = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else {
                    throw RulesError(line: value.mark?.line, reason: "text_matches is not a valid regular expression")
                }
                rule.textPattern = NSRegularExpressionBox(expression: expression)
            }
        }
        guard let then = mapping["then"], let actions = then.mapping else {
            throw RulesError(line: node.mark?.line, reason: "rule '\(rule.name)' needs a then: mapping of actions")
        }
        try checkKeys(actions, allowed: ["team", "skills", "priority", "tag", "auto_reply", "auto_reply_es", "answer_from_knowledge_base"], context: "then")
        if let value = actions["team"] { rule.team = try string(value, "team") }
        if let value = actions["skills"] { rule.skills = try strings(value, "skill") }
        if let value = actions["priority"] { rule.priority = try strings(value, "priority", allowed: priorities).first }
        if let value = actions["tag"] { rule.tags = try strings(value, "tag") }
        if let value = actions["auto_reply"] { rule.autoReply["en"] = try string(value, "auto_reply") }
        if let value = actions["auto_reply_es"] { rule.autoReply["es"] = try string(value, "auto_reply_es") }
        if let value = actions["answer_from_knowledge_base"] { rule.answerFromKnowledgeBase = try bool(value, "answer_from_knowledge_base") }
        if let value = mapping["stop"] { rule.stop = try bool(value, "stop") }
        return rule
    }
}
