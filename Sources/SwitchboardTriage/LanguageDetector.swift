/// English or Spanish, from function words and Spanish spelling. Function words carry the
/// language even through SMS shorthand and borrowed terms ("mi copay", "la app"); a message
/// with no evidence either way is taken as English.
enum LanguageDetector {
    static let english: Set<String> = [
        "the", "and", "is", "are", "was", "my", "i", "you", "to", "of", "it", "for", "on", "with", "have", "has", "this",
        "that", "can", "cant", "dont", "please", "pls", "plz", "what", "when", "how", "do", "does", "need", "im", "ive",
        "be", "not", "at", "will", "would", "could", "should", "just", "get", "got", "your", "our", "me", "we", "he", "she",
        "they", "thanks", "thank", "hi", "hello", "appointment", "appt", "tomorrow", "today", "an", "in", "from",
        "about", "if", "there", "been", "had", "did", "still", "again", "any", "why", "where", "its", "am", "hes", "shes",
    ]
    static let spanish: Set<String> = [
        "el", "la", "los", "las", "de", "del", "que", "y", "en", "un", "una", "mi", "mis", "es", "por", "para", "con",
        "se", "lo", "le", "su", "sus", "al", "como", "pero", "esta", "estoy", "tengo", "tiene", "hola",
        "gracias", "cita", "quiero", "necesito", "puedo", "puede", "porfa", "favor", "q", "xq", "porque", "hoy",
        "manana", "ayer", "muy", "ya", "mas", "cuando", "donde", "hijo", "hija", "esposo", "esposa", "mama", "papa",
        "doctora", "dolor", "receta", "factura", "resultados", "buenas", "buenos", "dias", "tardes", "usted",
        "ustedes", "nos", "yo", "fue", "ser", "hay", "si", "tambien", "tb", "pq", "sobre", "desde", "hasta", "sin",
    ]

    /// The language and the share of the evidence behind it (0.5 = no evidence).
    static func detect(original: String, tokens: [String]) -> (TriageLanguage, Double) {
        var en = 0.0
        var es = 0.0
        for token in tokens {
            let inEnglish = english.contains(token)
            let inSpanish = spanish.contains(token)
            if inEnglish && !inSpanish { en += 1 }
            if inSpanish && !inEnglish { es += 1 }
        }
        for scalar in original.unicodeScalars where "ñ¿¡áéíóú".unicodeScalars.contains(scalar) {
            es += 0.5
        }
        let total = en + es
        guard total > 0 else { return (.en, 0.5) }
        return es > en ? (.es, es / total) : (.en, en / total)
    }
}
