import Foundation
import Testing
@testable import SwitchboardRules

@Suite struct RulesTests {
    let file = """
        business_hours:
          timezone: America/New_York
          mon: "08:00-17:00"
          tue: "08:00-17:00"
          wed: "08:00-12:00, 13:00-17:00"
          thu: "08:00-17:00"
          fri: "08:00-17:00"
          sat: closed
        knowledge_base:
          - id: hours
            keywords: [hours, open, horario]
            answer: "We are open Monday to Friday, 8am to 5pm."
            answer_es: "Abrimos de lunes a viernes, de 8 a 17 h."
        rules:
          - name: billing team
            when: {intent: billing}
            then: {team: billing, skills: [billing], tag: money}
          - name: refunds are urgent
            when: {intent: [billing], text_matches: "refund|reembolso"}
            then: {priority: urgent, tag: [refund]}
          - name: after hours
            when: {after_hours: true, urgency: [routine, urgent]}
            then:
              auto_reply: "We are closed; we reopen {next_opening}."
              auto_reply_es: "Estamos cerrados; abrimos el {next_opening}."
          - name: info from the knowledge base
            when: {intent: general_info}
            then: {answer_from_knowledge_base: true}
            stop: true
          - name: never reached for general info
            when: {intent: general_info}
            then: {team: nobody}
        """

    func input(intent: String, urgency: String = "routine", text: String = "", language: String = "en", at date: String) -> RuleInput {
        RuleInput(channel: "sms", intent: intent, urgency: urgency, language: language, text: text,
                  contactIdentities: ["phone"], now: ISO8601DateFormatter().date(from: date)!)
    }

    @Test func evaluatesInOrderAndMerges() throws {
        let rules = try RuleSet.parse(file)
        // Tuesday 10:00 in New York (15:00 UTC): open.
        let actions = rules.evaluate(input(intent: "billing", text: "I want a refund", at: "2026-12-01T15:00:00Z"))
        #expect(actions.matchedRules == ["billing team", "refunds are urgent"])
        #expect(actions.team == "billing" && actions.skills == ["billing"] && actions.priority == "urgent")
        #expect(actions.tags == ["money", "refund"] && actions.autoReply == nil)
    }

    @Test func afterHoursNamesTheNextOpening() throws {
        let rules = try RuleSet.parse(file)
        // Saturday 12:00 in New York: closed until Monday 08:00.
        let actions = rules.evaluate(input(intent: "appointment_new", at: "2026-12-05T17:00:00Z"))
        #expect(actions.autoReply == "We are closed; we reopen Monday 08:00.")
        let spanish = rules.evaluate(input(intent: "appointment_new", language: "es", at: "2026-12-05T17:00:00Z"))
        #expect(spanish.autoReply == "Estamos cerrados; abrimos el Monday 08:00.")
        // Wednesday 12:30 is the lunch break; the next opening is 13:00 the same day.
        let lunch = rules.evaluate(input(intent: "appointment_new", at: "2026-12-02T17:30:00Z"))
        #expect(lunch.autoReply == "We are closed; we reopen Wednesday 13:00.")
        // Emergencies get no after-hours auto-reply from this rule.
        #expect(rules.evaluate(input(intent: "clinical_question", urgency: "emergency", at: "2026-12-05T17:00:00Z")).autoReply == nil)
    }

    @Test func answersFromTheKnowledgeBaseAndStops() throws {
        let rules = try RuleSet.parse(file)
        let actions = rules.evaluate(input(intent: "general_info", text: "what are your hours on friday?", at: "2026-12-01T15:00:00Z"))
        #expect(actions.knowledgeBaseAnswer == "We are open Monday to Friday, 8am to 5pm.")
        #expect(actions.team == nil && actions.matchedRules == ["info from the knowledge base"])
        let spanish = rules.evaluate(input(intent: "general_info", text: "¿cuál es su horario?", language: "es", at: "2026-12-01T15:00:00Z"))
        #expect(spanish.knowledgeBaseAnswer == "Abrimos de lunes a viernes, de 8 a 17 h.")
    }

    @Test(arguments: [
        ("rules:\n  - name: x\n    when: {intent: bill}\n    then: {team: a}\n", 3, "unknown intent 'bill'"),
        ("rules:\n  - name: x\n    then: {colour: red}\n", 3, "unknown key 'colour' in then"),
        ("rules:\n  - name: x\n    when: {text_matches: \"([\"}\n    then: {team: a}\n", 3, "text_matches is not a valid regular expression"),
        ("business_hours:\n  timezone: Mars/Olympus\n", 2, "unknown timezone 'Mars/Olympus'"),
        ("business_hours:\n  timezone: UTC\n  mon: \"9-5\"\n", 3, "mon must be like"),
        ("rules:\n  - name: x\n    when: {priority: urgent}\n    then: {team: a}\n", 3, "unknown key 'priority' in when"),
        ("rules: [\n", nil, "not valid YAML"),
        ("rulez: []\n", 1, "unknown key 'rulez' in top level"),
    ] as [(String, Int?, String)])
    func rejectsBadFilesWithTheLine(text: String, line: Int?, reason: String) {
        do {
            _ = try RuleSet.parse(text)
            Issue.record("expected an error for \(text)")
        } catch {
            if let line { #expect(error.line == line, "\(error)") }
            #expect(error.reason.hasPrefix(reason), "\(error)")
        }
    }

    @Test func recognisesRequestsForAPerson() {
        for text in ["PERSON", "person.", "talk to a person please", "Persona", "quiero hablar con alguien", "agent"] {
            #expect(RuleSet.isHandoverRequest(text), "\(text)")
        }
        for text in ["what are your hours", "my person is sick", "I need a refill for my personal medication"] {
            #expect(!RuleSet.isHandoverRequest(text), "\(text)")
        }
    }

    /// ASCII text is folded on its bytes; the result is Foundation's, for every ASCII character
    /// at either end or inside, and for texts that are not ASCII (which take Foundation's path).
    @Test func asciiFoldingMatchesFoundation() {
        var texts = ["  Talk To A Person!!  ", "\t\n0\r\n", "...", "", "$5 (please)", "`~agent~`", "Ágente", "¿hablar con alguien?"]
        for byte in UInt8(0)..<128 {
            let character = String(decoding: [byte], as: UTF8.self)
            texts += [character, character + "Agent" + character, "x" + character + "Y"]
        }
        for text in texts {
            #expect(RuleSet.handoverFolded(text) == RuleSet.foundationFolded(text), "\(Array(text.utf8))")
        }
        #expect(RuleSet.isHandoverRequest("¡AGENTE!") && RuleSet.isHandoverRequest("  SomeOne?? "))
    }
}
