/// Decoding the text of a Kannel MO (mobile-originated) request.
///
/// Kannel passes `coding` (0 = GSM 7-bit, 1 = 8-bit data, 2 = UCS-2) and, with `%C` in the
/// URL, `charset`. UCS-2 text arrives as raw UTF-16BE bytes unless smsbox recodes it
/// (`mo-recode = true`, then it is UTF-8 with coding 0). 7-bit text arrives in smsbox's
/// internal charset, UTF-8 on current builds; anything that is not valid UTF-8 is read as
/// Windows-1252/Latin-1, the historical default — never a crash, never a lost message.
public enum KannelText {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case binaryData
        case oddUCS2Length

        public var description: String {
            switch self {
            case .binaryData: "coding 1 (8-bit data) is not a text message"
            case .oddUCS2Length: "text with coding 2 (UCS-2) has an odd number of bytes"
            }
        }
    }

    public static func decode(_ bytes: [UInt8], coding: String?, charset: String?) throws(Error) -> String {
        let charset = charset?.uppercased().replacingOccurrences(of: "_", with: "-")
        switch coding {
        case "1":
            throw .binaryData
        case "2" where charset == nil || charset!.hasPrefix("UTF-16") || charset!.hasPrefix("UCS-2") || charset!.hasPrefix("UNICODE"):
            guard bytes.count % 2 == 0 else { throw .oddUCS2Length }
            var units: [UInt16] = []
            units.reserveCapacity(bytes.count / 2)
            var index = 0
            while index < bytes.count {
                units.append(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]))
                index += 2
            }
            return String(decoding: units, as: UTF16.self)
        default:
            if charset == "ISO-8859-1" || charset == "LATIN1" || charset == "WINDOWS-1252" {
                return latin1(bytes)
            }
            if let text = String(validating: bytes, as: UTF8.self) { return text }
            return latin1(bytes)
        }
    }

    private static func latin1(_ bytes: [UInt8]) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }
}
