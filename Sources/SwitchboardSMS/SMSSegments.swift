/// How many SMS segments a text takes, as the network counts them (3GPP TS 23.038/23.040).
///
/// Text that fits the GSM 7-bit default alphabet (with its extension table, whose characters
/// take two septets) is sent as GSM-7: 160 septets in one segment, 153 per segment once
/// concatenated (the user data header takes the rest). Anything else goes as UCS-2: 70
/// UTF-16 units, 67 per segment. Segments are filled greedily and a two-septet character or
/// a surrogate pair is never split across two segments, as phones and gateways do.
public struct SMSSegments: Sendable, Equatable {
    public enum Encoding: String, Sendable, Equatable, Codable {
        case gsm7 = "GSM-7"
        case ucs2 = "UCS-2"
    }

    public let encoding: Encoding
    /// Septets for GSM-7, UTF-16 code units for UCS-2.
    public let units: Int
    public let count: Int

    public init(_ text: String) {
        if let septets = Self.gsmSeptets(text) {
            encoding = .gsm7
            units = septets.reduce(0, +)
            count = Self.segments(septets, single: 160, multi: 153)
        } else {
            let lengths = text.unicodeScalars.map { $0.utf16.count }
            encoding = .ucs2
            units = lengths.reduce(0, +)
            count = Self.segments(lengths, single: 70, multi: 67)
        }
    }

    private static func segments(_ lengths: [Int], single: Int, multi: Int) -> Int {
        let total = lengths.reduce(0, +)
        if total == 0 { return 1 }
        if total <= single { return 1 }
        var count = 1
        var used = 0
        for length in lengths {
            if used + length > multi {
                count += 1
                used = 0
            }
            used += length
        }
        return count
    }

    /// Septets per character, or nil when a character is outside the GSM alphabet.
    static func gsmSeptets(_ text: String) -> [Int]? {
        var septets: [Int] = []
        septets.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if basic.contains(scalar) {
                septets.append(1)
            } else if extended.contains(scalar) {
                septets.append(2)
            } else {
                return nil
            }
        }
        return septets
    }

    static let basic: Set<Unicode.Scalar> = Set(
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà".unicodeScalars)
    static let extended: Set<Unicode.Scalar> = Set("\u{0C}^{}\\[~]|€".unicodeScalars)
}
