import Foundation
import Testing
@testable import SwitchboardTriage

@Suite struct RedFlagTests {
    func fired(_ text: String) -> [String] {
        RedFlagRule.evaluate(clauses: TriageText.clauses(TriageText.fold(text))).fired.map(\.rule)
    }

    @Test(arguments: [
        ("I have crushing chest pain and my left arm is numb", "en.chest_pain"),
        ("my father has chest pain right now", "en.chest_pain"),
        ("her face is drooping and her speech is slurred", "en.stroke"),
        ("he cant move his right arm", "en.stroke"),
        ("I can't breathe", "en.breathing"),
        ("my son's lips are turning blue", "en.breathing"),
        ("the bleeding won't stop after the extraction", "en.bleeding"),
        ("I've been vomiting blood", "en.bleeding"),
        ("I want to kill myself", "en.suicide"),
        ("having suicidal thoughts tonight", "en.suicide"),
        ("I don't want to wake up tomorrow", "en.suicide"),
        ("my toddler swallowed some pills", "en.overdose"),
        ("she took a whole bottle of tylenol", "en.overdose"),
        ("my throat is closing after eating shrimp", "en.anaphylaxis"),
        ("grandpa collapsed and is unresponsive", "en.unresponsive"),
        ("he is having a seizure and it won't stop", "en.seizure"),
        ("worst headache of my life came on suddenly", "en.headache"),
        ("baby has a fever of 103 and a stiff neck", "en.meningitis"),
        ("tengo dolor de pecho muy fuerte", "es.chest_pain"),
        ("mi papá tiene dolor en el pecho", "es.chest_pain"),
        ("a mi mamá se le cayó la cara y habla arrastrada", "es.stroke"),
        ("mi hijo no puede respirar", "es.breathing"),
        ("el sangrado no para", "es.bleeding"),
        ("quiero morirme, ya no aguanto", "es.suicide"),
        ("mi hija se tomó todas las pastillas", "es.overdose"),
        ("se me está cerrando la garganta", "es.anaphylaxis"),
        ("mi esposo se desmayó y no responde", "es.unresponsive"),
        ("el niño está convulsionando", "es.seizure"),
        ("I gave my dad his insulin twice by accident, he had already had his shot", "en.overdose"),
        ("accidentally injected insulin before lunch and again after, 40 units", "en.overdose"),
        ("le puse la insulina dos veces a mi mamá", "es.overdose"),
        ("we had to use her EpiPen, her lips are still puffy", "en.anaphylaxis"),
        ("le pusimos el epipen y sigue con ronchas", "es.anaphylaxis"),
        ("I'm giving away my things, I won't be around much longer", "en.suicide"),
        ("please make sure my son gets my records after I'm gone, I've decided", "en.suicide"),
        ("ya estoy regalando mis cosas, cuando ya no esté que mi hija tenga todo", "es.suicide"),
    ])
    func fires(text: String, rule: String) {
        #expect(fired(text).contains(rule), "expected \(rule) for: \(text)")
    }

    @Test(arguments: [
        "no chest pain, just a cough",
        "I'm not having any trouble breathing",
        "not suicidal, just feeling down lately",
        "I had chest pain last year and need those records",
        "records from my stroke in 2019 please",
        "what are the signs of a stroke?",
        "I'm dying to know my results",
        "this bill is killing me",
        "I nearly had a heart attack when I saw the bill",
        "need a refill on my seizure medication",
        "no tengo dolor de pecho, solo tos",
        "me muero de ganas de saber mis resultados",
        "casi me da un infarto cuando vi la factura",
        "¿cuáles son los síntomas de un derrame?",
        "necesito mi medicina para las convulsiones",
        "sin dificultad para respirar, solo congestión",
        "my son's EpiPen expired, can you send a new one to the pharmacy before camp?",
        "EpiPen needed for school tomorrow",
        "do you give out naloxone in case of an overdose?",
        "keep an epipen at home in case of a reaction",
        "¿me dan naloxona por si hay una sobredosis?",
        "how much insulin should I take before dinner?",
        "need a refill on my insulin pens",
    ])
    func staysQuiet(text: String) {
        #expect(fired(text).isEmpty, "unexpected red flag \(fired(text)) for: \(text)")
    }

    @Test func setAsideMatchesSayWhy() {
        let result = RedFlagRule.evaluate(clauses: TriageText.clauses(TriageText.fold("no chest pain")))
        #expect(result.fired.isEmpty)
        #expect(result.setAside.first?.setAsideBecause == "negated by \"no\"")
    }
}

@Suite struct TriageTextTests {
    @Test func dropsQuotedHistoryAndSignatures() {
        let text = "Can I move my appointment?\nSent from my iPhone\n\nOn Mon, Mar 2, 2026 at 9:00 AM Clinic <noreply@example.com> wrote:\n> chest pain clinic reminder"
        let kept = TriageText.newText(subject: "Re: reminder", text: text)
        #expect(kept.contains("Can I move my appointment?"))
        #expect(!kept.contains("chest pain"))
        #expect(!kept.contains("iPhone"))
        #expect(kept.hasPrefix("Re: reminder"))
    }

    @Test func foldsAccentsAndSplitsClauses() {
        #expect(TriageText.fold("Mañana, ¿está?") == "manana, ¿esta?")
        #expect(TriageText.clauses("no pain but i can't breathe") == [["no", "pain"], ["i", "cant", "breathe"]])
    }
}

@Suite struct ClassifierTests {
    let classifier = TriageClassifier.shared

    @Test func trainsFromTheEmbeddedCorpus() {
        #expect(classifier.trainingSize == TriageCorpus.lineCount)
        #expect(classifier.trainingSize >= 800)
    }

    @Test func classifiesTypicalMessages() {
        #expect(classifier.classify(channel: "sms", subject: nil, text: "need a refill on my lisinopril pls").intent == .prescriptionRefill)
        #expect(classifier.classify(channel: "webchat", subject: nil, text: "I forgot my password and can't log in to the portal").intent == .portalTechnical)
        #expect(classifier.classify(channel: "email", subject: "Bill", text: "Why was I charged twice for my visit?").intent == .billing)
        let spanish = classifier.classify(channel: "sms", subject: nil, text: "Hola, necesito cambiar mi cita del martes por favor")
        #expect(spanish.language == .es && spanish.intent == .appointmentChange)
    }

    @Test func emergenciesCarryTheirEvidence() {
        let result = classifier.classify(channel: "sms", subject: nil, text: "my husband has chest pain and is sweating")
        #expect(result.urgency == .emergency)
        #expect(result.redFlags.map(\.rule) == ["en.chest_pain"])
        #expect(result.urgencyReason.contains("en.chest_pain"))
        #expect(!result.intentTerms.isEmpty)
        let idiom = classifier.classify(channel: "sms", subject: nil, text: "dying to know my lab results lol")
        #expect(idiom.urgency != .emergency)
    }

    /// The embedded corpus is exactly triage/corpus/*.jsonl (run triage/build_corpus.py).
    @Test func embeddedCorpusMatchesTheFiles() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("triage/corpus")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".jsonl") }.sorted()
        var ids: [String] = []
        for file in files {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                ids.append(object?["id"] as? String ?? "")
            }
        }
        let embedded = TriageClassifier.embeddedCorpus().map { $0.id ?? "" }
        let firstDifference = zip(ids, embedded).first { $0 != $1 }.map { "\($0.0) vs \($0.1)" } ?? "none"
        #expect(ids.count == embedded.count && ids == embedded,
                "Corpus.generated.swift is stale (\(ids.count) in files, \(embedded.count) embedded, first difference \(firstDifference)): run python3 triage/build_corpus.py")
    }
}
