/// Red flags: phrases that mean "possibly life-threatening, now" in English and Spanish.
/// They are data, meant to be read and reviewed by a clinician: each rule has an id, what it
/// stands for, and phrases in a tiny pattern language over accent-folded words:
///
/// - words separated by spaces must follow one another;
/// - `a|b|c` is any one of them; a trailing `*` matches any word with that prefix;
/// - `~` lets up to three other words stand in between.
///
/// A phrase that matches is set aside when, in the same clause, it is negated (a negation
/// word among the three words before it: "no chest pain", "sin dolor de pecho"), told as
/// history ("last year", "in 2019", "hace dos años"), part of a question about warning signs
/// ("what are the signs of a stroke?"), or one of the rule's idioms ("dying to know", "casi
/// me da un infarto con la factura"). Reported speech is not set aside: "my father has chest
/// pain" is an emergency.
public struct RedFlagRule: Sendable {
    public let id: String
    public let meaning: String
    let phrases: [Pattern]
    /// Phrases that, in the same clause, show the match is figurative or about something else.
    let idioms: [Pattern]
    /// When not empty, one of these words must appear somewhere in the message too.
    let requiresAnyWord: Set<String>
    /// Whether the rule's own phrases contain negations ("can't breathe", "no puede
    /// respirar", "won't stop"), so a negation inside a match is not a denial.
    var negationIsPartOfPhrase: Bool { !phrases.allSatisfy { $0.negationFree } }

    init(_ id: String, _ meaning: String, _ phrases: [String], idioms: [String] = [], requiresAnyWord: Set<String> = []) {
        self.id = id
        self.meaning = meaning
        self.phrases = phrases.map(Pattern.init)
        self.idioms = idioms.map(Pattern.init)
        self.requiresAnyWord = requiresAnyWord
    }

    public static let all: [RedFlagRule] = [
        // English
        RedFlagRule("en.chest_pain", "chest pain or pressure", [
            "chest pain|pains|pressure|tightness|hurts|hurting|tight|heavy|heaviness|discomfort|ache|aching",
            "pain|pressure|tightness|squeezing ~ in ~ chest",
            "crushing|squeezing pain|chest",
            "heart attack",
        ], idioms: ["heart attack when|at|over|seeing|looking|reading|because|hearing", "gave|give|giving ~ heart attack",
                    "nearly|almost|practically ~ heart attack"]),
        RedFlagRule("en.stroke", "stroke signs: face drooping, slurred speech, one-sided weakness", [
            "face|mouth|smile ~ droop*|dropped|crooked|lopsided|uneven",
            "slur*",
            "cant|cannot|couldnt|unable ~ move|feel|lift|raise ~ arm|leg|side|face|hand",
            "numb*|weak*|paraly* ~ one|left|right side",
            "one side ~ numb*|weak*|paraly*|droop*",
            "arm and leg ~ weak*|numb*|heavy|gone|dead",
            "arm|hand|leg ~ limp|hanging|dead|useless",
            "curtain ~ eye|vision|came",
            "same question ~ over|every|again",
            "dragging ~ foot|leg",
            "vision ~ suddenly|went ~ double|black|dark",
            "suddenly ~ double vision",
            "stroke|strokes",
        ], idioms: ["stroke of luck|genius", "heat stroke", "wallet|bank|account|budget ~ stroke"]),
        RedFlagRule("en.breathing", "trouble breathing", [
            "cant|cannot|couldnt|unable ~ breathe|breath|breathing",
            "trouble|difficulty|struggling|hard|hardly|labored ~ breathing|breathe|breath",
            "not|stopped|barely breathing",
            "gasping",
            "lips|face|skin ~ blue|purple|grey|gray",
            "turning blue",
            "choking",
            "cant|cannot|barely|hardly ~ get ~ air",
            "few words at a time",
            "cant|cannot|barely ~ talk|speak ~ breath|breathe|air|wheez*",
        ], idioms: ["breathe easy|easier", "breathing down", "choking hazard|hazards"]),
        RedFlagRule("en.bleeding", "severe or uncontrolled bleeding, or blood coughed or vomited", [
            "bleeding|blood|bleed ~ wont|doesnt|not|cant|cannot ~ stop|stopping",
            "heavy|severe|uncontrolled|massive|profuse|lots ~ bleeding",
            "lot|lots|pool of ~ blood",
            "black|tarry ~ stool|stools|poop|tarry",
            "blood everywhere",
            "soaked|soaking ~ pad|pads|towel|towels|bandage|bandages|through",
            "coughing|vomiting|throwing|puking|spitting ~ blood",
            "gushing|spurting",
        ]),
        RedFlagRule("en.suicide", "suicidal thoughts or self-harm", [
            "suicid*",
            "kill|killing|end|ending|take|taking ~ myself|life|lives",
            "end|ending it all",
            "want|wanna|wanting|wish ~ die|dead",
            "dont|not|never ~ want ~ live|alive|wake|exist|here|around",
            "still be here|around",
            "wrote|written|writing ~ letters|goodbye|note|notes ~ kids|children|family|wife|husband",
            "bought|buying|got ~ rope|gun",
            "goodbye ~ forever|everyone",
            "better off dead",
            "better off without me",
            "no reason to live",
            "hurt|hurting|cut|cutting|harm|harming|burn|burning ~ myself|herself|himself",
            "self harm",
            "use|using ~ on myself",
            // Veiled: farewells and the arrangements of someone who means to die.
            "after|once|when im gone|dead",
            "after|once|when i am gone|dead",
            "wont|cant ~ be ~ around|here ~ much|anymore|longer",
            "giving|gave|give ~ away ~ my ~ things|stuff|belongings|possessions|guns|pets",
            "say|said|saying ~ goodbye ~ everyone|all|you|family",
            "no reason|point ~ to ~ go|living|continue",
        ], idioms: ["kill|killing ~ time|pain|bugs|germs", "take|taking ~ life ~ back|easy", "dying to"]),
        RedFlagRule("en.overdose", "overdose or swallowed medication or poison", [
            "overdos*",
            "took|taken|take|swallowed|ate|drank ~ too many|much",
            "took|taken|swallowed|ate|drank ~ whole|handful|bottle",
            "took|taken ~ all ~ pills|tablets|meds|medication|medicine",
            "swallowed ~ all|entire|rest",
            "on purpose",
            "swallowed|ate|drank|chewed ~ pills|pill|tablets|meds|medication|medicine|bleach|detergent|pod|pods|poison|battery",
            "got into ~ pill|pills|pillbox|meds|medication|medicine|bleach|detergent|cleaner|poison",
            "poison*",
            // Insulin given twice or in excess: hypoglycaemia within the hour.
            "injected|took|gave|give|shot|did|used ~ insulin ~ twice|again|double|extra",
            "too much ~ insulin",
            "double|twice|extra ~ dose|doses|shot ~ insulin",
            "insulin ~ by mistake|accident",
            "accidentally|accidently|mistakenly ~ injected|took|gave|double* ~ insulin",
        ], idioms: ["took|take ~ too much ~ time|long|money",
                    "overdos* on netflix|tv|television|chocolate|candy|sugar|coffee|caffeine|shopping|work|news"]),
        RedFlagRule("en.anaphylaxis", "anaphylaxis: throat, tongue or lips swelling", [
            "throat ~ closing|swelling|swollen|tight|tightening|closed|closes",
            "tongue|lips|lip|mouth ~ swell*|swollen|puff*|big|huge",
            "anaphyla*",
            "used|use|gave|give|injected|needed ~ epipen|epi",
        ]),
        RedFlagRule("en.unresponsive", "unresponsive, unconscious or collapsed", [
            "unresponsive|unconscious|collapsed",
            "passed|blacked|black|blacking out",
            "wont|not|cant|cannot|doesnt ~ wake",
            "not responding",
        ], idioms: ["from|of boredom"]),
        RedFlagRule("en.seizure", "a seizure now", [
            "having|had ~ seizure",
            "seizure|seizures ~ wont|not|still|minutes|keeps|stop",
            "seizing|convulsing|convulsions|fitting",
        ]),
        RedFlagRule("en.headache", "sudden worst headache of one's life", ["worst headache", "thunderclap"]),
        RedFlagRule("en.infant", "an infant with a bulging soft spot or a high-pitched cry", ["soft spot ~ bulging|bulge|swollen", "high pitched ~ cry|crying|scream*"]),
        RedFlagRule("en.escalation", "someone says 911 or an ambulance is needed", ["call|calling|called|says ~ 911", "ambulance"],
                    idioms: ["911 or|vs", "number|ever|if",
                             // The bill for a past ride is billing, not an emergency now.
                             "ambulance ~ bill|bills|billed|ride|transport|company|charge|charges|claim|invoice|statement",
                             "bill|billed|charged|charge|owe|paid|pay|invoice ~ ambulance"]),
        RedFlagRule("en.meningitis", "fever with a stiff neck", ["stiff neck", "neck ~ stiff"],
                    requiresAnyWord: ["fever", "temp", "temperature", "fiebre"]),
        // Spanish (accent-folded)
        RedFlagRule("es.chest_pain", "dolor u opresión en el pecho", [
            "dolor|presion|opresion|apreton|ardor ~ pecho",
            "aprieta|duele|oprime ~ pecho",
            "infarto",
            "ataque ~ corazon",
        ], idioms: ["casi|va ~ dar|da|dio ~ infarto", "infarto ~ cuando|con|al|factura|cuenta|precio|nervios",
                    "borde ~ infarto"]),
        RedFlagRule("es.stroke", "signos de derrame: cara caída, habla arrastrada, debilidad de un lado", [
            "cara|boca ~ caida|torcida|chueca|dormida|colgada",
            "cayo ~ cara|boca",
            "habla ~ arrastrada|rara|enredada|trabada",
            "arrastra|arrastrando|enreda ~ palabras",
            "no puede|puedo|podia ~ hablar",
            "no puede|puedo|podia ~ mover|levantar|sentir ~ brazo|pierna|lado|cara|mano",
            "entumid*|adormec*|dormid*|paraliz* ~ lado|brazo|cara",
            "derrame|embolia",
        ]),
        RedFlagRule("es.breathing", "no puede respirar", [
            "no puede|puedo|podia|pueden ~ respirar",
            "cuesta|dificultad|dificil|trabajo ~ respirar",
            "ahoga|ahogando|ahogandose|asfixia*",
            "labios|cara ~ morados|morada|azules|azul",
            "no respira",
        ]),
        RedFlagRule("es.bleeding", "sangrado grave o que no para", [
            "sangr* ~ no para|deja|cesa",
            "sangr* ~ no se detiene|corta",
            "no para|deja ~ sangr*",
            "a chorros",
            "empap* ~ toalla*|gasa*|sabana*",
            "mucha|mucho ~ sangre|sangrado",
            "hemorragia",
            "vomit*|tos*|escup* ~ sangre",
        ]),
        RedFlagRule("es.suicide", "pensamientos suicidas o autolesión", [
            "suicid*",
            "quiero|quisiera|quiere|ganas ~ morir*|matarme|matarse",
            "no quiero|quiere ~ vivir|seguir|despertar",
            "quitarme|quitarse ~ vida",
            "hacerme|hacerse ~ dano",
            "cortarme|cortarse|matarme|matarse",
            "seguir aqui",
            "cartas ~ hijos|familia|esposo|esposa",
            "terminar|acabar|termino|acabo con todo",
            "compre ~ veneno|soga|pistola",
            "cuando|despues ~ ya no ~ este|estar",
            "despues|cuando ~ me muera|vaya|falte",
            "regalando|regale|regalar ~ mis ~ cosas|pertenencias",
            "despedirme|despedi ~ todos|familia",
            "no tiene sentido ~ vivir|seguir",
        ], idioms: ["muero de ganas|hambre|risa|sueno|frio|calor|curiosidad|verguenza"]),
        RedFlagRule("es.overdose", "sobredosis o ingestión de medicamentos o veneno", [
            "sobredosis",
            "tomo|tome|trago|comio|bebio|tomado ~ todas|muchas|frasco|caja|bote|puno ~ pastillas|pildoras|medicina|medicinas|tabletas",
            "trago|comio|bebio ~ pastillas|pildoras|cloro|veneno|detergente|medicina|bateria",
            "proposito",
            "veneno para ratas",
            "intoxica*|envenen*",
            "puse|inyecte|inyecto|puso|pusieron ~ insulina ~ dos veces",
            "puse|inyecte|inyecto|puso|pusieron ~ insulina ~ doble|otra vez",
            "puse|inyecte|inyecto|puso|pusieron ~ insulina ~ de mas",
            "demasiada|doble ~ insulina",
        ]),
        RedFlagRule("es.anaphylaxis", "anafilaxia: garganta, lengua o labios hinchados", [
            "garganta ~ cierra|cerrando|cerro|hinch*|inflam*",
            "cierra|cerrando|cerro|hinch*|inflam* ~ garganta",
            "lengua|labios ~ hinch*|inflam*",
            "anafila*",
            // Used, not prescribed: an EpiPen to be refilled is not a reaction now.
            "use|usar|usamos|use|puse|pusimos|puso|inyecte|inyectamos|inyecto ~ epipen|epinefrina|adrenalina",
        ]),
        RedFlagRule("es.unresponsive", "inconsciente, desmayado o no responde", [
            "desmay*",
            "inconsciente",
            "no responde|reacciona|despierta",
            "perdio ~ conocimiento|sentido",
        ]),
        RedFlagRule("es.seizure", "convulsiones ahora", [
            "convulsion|convulsiones|convulsionando|convulsiona",
            "ataque epileptico",
        ], idioms: ["para ~ convulsiones", "medicina|pastillas|medicamento ~ convulsiones"]),
        RedFlagRule("es.headache", "el peor dolor de cabeza de su vida", ["peor dolor ~ cabeza"]),
        RedFlagRule("es.escalation", "se pide el 911 o una ambulancia", ["llamar|llamo|llame|llamamos ~ 911", "ambulancia"],
                    idioms: ["911 o", "numero|si alguien",
                             "cobro|cobraron|factura|cuenta|bil|bill|pagar|pague|debo ~ ambulancia",
                             "ambulancia ~ cobro|factura|cuenta|traslado|compania"]),
        RedFlagRule("es.meningitis", "fiebre con cuello rígido", ["cuello ~ rigido|tieso|duro"],
                    requiresAnyWord: ["fiebre", "temperatura", "fever"]),
    ]

    /// Words that negate what follows within three words.
    static let negations: Set<String> = [
        "no", "not", "never", "without", "denies", "deny", "dont", "didnt", "doesnt", "isnt", "arent", "wasnt", "werent",
        "havent", "hasnt", "hadnt", "nor", "sin", "nunca", "ni", "tampoco", "ningun", "ninguna", "jamas", "niega",
    ]

    /// Words right after a match that make it the name of a service or a document, not a
    /// symptom ("chest pain clinic", "stroke follow-up", "EpiPen prescription").
    static let administrative: Set<String> = [
        "clinic", "follow", "followup", "rehab", "unit", "department", "plan", "prevention", "training", "kit", "kits",
        "line", "hotline", "class", "screening", "support", "group", "program", "awareness", "risk", "specialist",
        "referral", "prescription", "rx", "refill", "expired", "education", "clinica", "unidad", "seguimiento",
        "action", "survivors", "survivor", "admission", "hospitalization", "prevencion", "sobrevivientes",
    ]

    /// Jokes are not emergencies ("my wallet is having a stroke lol").
    static let humour: Set<String> = ["lol", "haha", "hahaha", "jaja", "jajaja", "lmao", "jk", "broma", "bromeando", "jeje"]

    /// Clause markers that a match is past history, not now.
    static let history: [Pattern] = [
        "last year|yr|month|summer|winter|spring|fall|week|wk", "years|yrs|months|mos|weeks|wks ago", "history of", "back in",
        "in 19*|20*", "previous|prior", "when i was", "thought i|he|she|it ~ was|had",
        "ano|mes pasado", "hace ~ anos|meses|semanas", "antecedente*", "en 19*|20*",
        // A month named as when it happened: "his seizure in November", "en diciembre".
        "in|en|since|desde|last|el ~ january|february|march|april|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec",
        "in|en|since|desde|el ~ enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre",
        "recovering|recovers|recovered|recovery ~ from", "discharged|discharge", "salio ~ hospital", "se recupero|recuperando",
    ].map(Pattern.init)

    /// Clause markers of a question about warning signs, not a report of them.
    static let informational: [Pattern] = [
        "signs|symptoms|warning|sign|symptom of", "what is|are|does", "how do|can ~ know|tell", "is it normal",
        "if someone|somebody|anyone|ever", "number for", "do you do|offer|have", "whats|what the",
        "si alguien", "solo pa|para saber",
        // Hypotheticals: "naloxone at home in case of an overdose", "por si le da una reacción".
        "in case", "in the event", "en caso", "por si",
        "recognize|recognise|recognizing|recognising|spot|spotting|reconocer", "watch|look out for",
        "sintomas|senales|signos|sintoma de", "que es|son", "cuales son", "como ~ saber",
    ].map(Pattern.init)

    /// "4 digit years" need the year test: `19*`/`20*` prefixes also match other numbers, so
    /// only four-digit tokens count.
    static func isYearLike(_ token: String) -> Bool {
        token.count == 4 && token.allSatisfy(\.isNumber) && (token.hasPrefix("19") || token.hasPrefix("20"))
    }
}

/// One phrase of the pattern language, compiled.
struct Pattern: Sendable {
    enum Slot: Sendable {
        case words(Set<String>, prefixes: [String])
        case gap
    }

    let slots: [Slot]
    let source: String

    /// True when no word of the pattern is a negation.
    var negationFree: Bool {
        slots.allSatisfy { slot in
            if case .words(let words, _) = slot { return words.isDisjoint(with: RedFlagRule.negations) }
            return true
        }
    }

    init(_ source: String) {
        self.source = source
        slots = source.split(separator: " ").map { part in
            if part == "~" { return .gap }
            var words: Set<String> = []
            var prefixes: [String] = []
            for alternative in part.split(separator: "|") {
                if alternative.hasSuffix("*") { prefixes.append(String(alternative.dropLast())) } else { words.insert(String(alternative)) }
            }
            return .words(words, prefixes: prefixes)
        }
    }

    /// Every start index where the pattern matches, with the end index (exclusive).
    func matches(_ tokens: [String]) -> [(start: Int, end: Int)] {
        var found: [(Int, Int)] = []
        for start in tokens.indices {
            if let end = match(tokens, slot: 0, at: start) { found.append((start, end)) }
        }
        return found
    }

    /// The end index (exclusive) of a match starting at `start`, if the pattern matches there.
    func match(_ tokens: [String], at start: Int) -> Int? {
        match(tokens, slot: 0, at: start)
    }

    private func match(_ tokens: [String], slot: Int, at position: Int) -> Int? {
        if slot == slots.count { return position }
        switch slots[slot] {
        case .gap:
            for skip in 0...3 where position + skip <= tokens.count {
                if let end = match(tokens, slot: slot + 1, at: position + skip) { return end }
            }
            return nil
        case .words(let words, let prefixes):
            guard position < tokens.count else { return nil }
            let token = tokens[position]
            let isYearPrefix = prefixes.contains { $0 == "19" || $0 == "20" }
            let hit = words.contains(token) || prefixes.contains { token.hasPrefix($0) }
                && (!isYearPrefix || RedFlagRule.isYearLike(token))
            return hit ? match(tokens, slot: slot + 1, at: position + 1) : nil
        }
    }
}

/// A red-flag rule that matched, and — when set aside — why.
public struct RedFlagMatch: Sendable, Equatable {
    public var rule: String
    public var phrase: String
    public var setAsideBecause: String?
}

extension RedFlagRule {
    /// Evaluates every rule over the clauses of a folded message.
    static func evaluate(clauses: [[String]]) -> (fired: [RedFlagMatch], setAside: [RedFlagMatch]) {
        let allWords = Set(clauses.joined())
        // Where each pattern matches, found through the index of first words: only the
        // patterns whose first word is the token at hand are tried there.
        var found: [[Candidate]] = Array(repeating: [], count: all.count)
        for (clauseIndex, clause) in clauses.enumerated() {
            for (start, token) in clause.enumerated() {
                for entry in FirstWordIndex.shared.entries(for: token) {
                    if let end = all[entry.rule].phrases[entry.pattern].match(clause, at: start) {
                        found[entry.rule].append(Candidate(clause: clauseIndex, pattern: entry.pattern, start: start, end: end))
                    }
                }
            }
        }
        var fired: [RedFlagMatch] = []
        var setAside: [RedFlagMatch] = []
        for (ruleIndex, rule) in all.enumerated() where !found[ruleIndex].isEmpty {
            if !rule.requiresAnyWord.isEmpty && allWords.isDisjoint(with: rule.requiresAnyWord) { continue }
            // The order a rule-by-rule scan would give: clause, then pattern, then position.
            let candidates = found[ruleIndex].sorted { ($0.clause, $0.pattern, $0.start) < ($1.clause, $1.pattern, $1.start) }
            var ruleFired = false
            for candidate in candidates {
                let clause = clauses[candidate.clause]
                let phrase = clause[candidate.start..<candidate.end].joined(separator: " ")
                if let reason = setAsideReason(rule: rule, clause: clause, start: candidate.start, end: candidate.end) {
                    setAside.append(RedFlagMatch(rule: rule.id, phrase: phrase, setAsideBecause: reason))
                } else if !ruleFired {
                    fired.append(RedFlagMatch(rule: rule.id, phrase: phrase, setAsideBecause: nil))
                    ruleFired = true
                }
            }
        }
        return (fired, setAside)
    }

    private struct Candidate {
        var clause: Int
        var pattern: Int
        var start: Int
        var end: Int
    }

    /// Every rule's patterns by their first word: exact words in a dictionary, prefixes
    /// (`suicid*`) in a short list. Built once; the rules are constants.
    struct FirstWordIndex: Sendable {
        struct Entry: Sendable, Equatable {
            var rule: Int
            var pattern: Int
        }

        static let shared = FirstWordIndex(rules: RedFlagRule.all)

        private var exact: [String: [Entry]] = [:]
        private var prefixes: [(prefix: String, entry: Entry)] = []
        /// Patterns that begin with a gap match anywhere: always tried.
        private var anywhere: [Entry] = []

        init(rules: [RedFlagRule]) {
            for (ruleIndex, rule) in rules.enumerated() {
                for (patternIndex, pattern) in rule.phrases.enumerated() {
                    let entry = Entry(rule: ruleIndex, pattern: patternIndex)
                    switch pattern.slots.first {
                    case .words(let words, let firstPrefixes):
                        for word in words { exact[word, default: []].append(entry) }
                        for prefix in firstPrefixes { prefixes.append((prefix, entry)) }
                    case .gap, nil:
                        anywhere.append(entry)
                    }
                }
            }
        }

        func entries(for token: String) -> [Entry] {
            var result = exact[token] ?? []
            for (prefix, entry) in prefixes where token.hasPrefix(prefix) {
                guard (prefix != "19" && prefix != "20") || RedFlagRule.isYearLike(token), !result.contains(entry) else { continue }
                result.append(entry)
            }
            return result + anywhere
        }
    }

    private static func setAsideReason(rule: RedFlagRule, clause: [String], start: Int, end: Int) -> String? {
        // A negation shortly before ("no chest pain"), further back across a list joined by
        // "or" ("no fever or chest pain"), or inside the match ("neck not stiff").
        for index in stride(from: start - 1, through: max(0, start - 7), by: -1) where negations.contains(clause[index]) {
            let between = clause[(index + 1)..<start]
            let followedByDoubt = index + 1 < clause.count && ["sure", "se", "idea"].contains(clause[index + 1])
            if !followedByDoubt && (start - index <= 4 || between.contains { ["or", "nor", "o", "ni"].contains($0) }) {
                return "negated by \"\(clause[index])\""
            }
        }
        if let negation = clause[start..<end].first(where: { negations.contains($0) && !rule.negationIsPartOfPhrase }) {
            return "negated by \"\(negation)\" within the phrase"
        }
        if end < clause.count, administrative.contains(clause[end]) {
            return "names a service or document (\"\(clause[end])\")"
        }
        if let joke = clause.first(where: { humour.contains($0) }) {
            return "said as a joke (\"\(joke)\")"
        }
        for idiom in rule.idioms where !idiom.matches(clause).isEmpty {
            return "idiom \"\(idiom.source)\""
        }
        for marker in history where !marker.matches(clause).isEmpty {
            return "history (\"\(marker.source)\")"
        }
        for marker in informational {
            if let first = marker.matches(clause).first, first.start < start {
                return "question about signs (\"\(marker.source)\")"
            }
        }
        return nil
    }
}
