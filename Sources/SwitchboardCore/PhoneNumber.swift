/// E.164 normalisation of phone numbers as patients and portals write them
/// ("+1 (555) 010-0000", "555.010.0000", "0044 20 7946 0000").
///
/// This is deliberately not a full numbering-plan database: it removes formatting, turns an
/// international `00` prefix into `+`, applies the configured default country code to a
/// national number (dropping one trunk `0`, or a leading `1` for NANP numbers written with
/// it), and checks the E.164 length of 8 to 15 digits.
public enum PhoneNumber {
    public enum Error: Swift.Error, Equatable {
        case invalidCharacters
        case invalidLength
    }

    public static func normalise(_ raw: String, defaultCountryCode: String) throws(Error) -> String {
        var digits = ""
        var international = false
        for (index, character) in raw.trimmingWhitespace().enumerated() {
            if character == "+" && index == 0 {
                international = true
            } else if character.isASCII, character.isNumber {
                digits.append(character)
            } else if " -().\u{00A0}/".contains(character) {
                continue
            } else {
                throw .invalidCharacters
            }
        }
        if !international, digits.hasPrefix("00") {
            international = true
            digits.removeFirst(2)
        }
        if !international {
            if defaultCountryCode == "1", digits.count == 11, digits.hasPrefix("1") {
                // NANP number written with its leading 1 but without "+".
            } else {
                if defaultCountryCode != "1", digits.hasPrefix("0") { digits.removeFirst() }
                digits = defaultCountryCode + digits
            }
        }
        guard (8...15).contains(digits.count), digits.first != "0" else { throw .invalidLength }
        return "+" + digits
    }
}

extension StringProtocol {
    /// The string without leading and trailing spaces, tabs and newlines.
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }),
              let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
