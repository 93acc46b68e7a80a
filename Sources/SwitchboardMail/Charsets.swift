// Charset decoding for mail bodies and headers, free of Foundation's `String.Encoding` (whose
// single-byte encodings are incomplete on Linux): UTF-8 and US-ASCII through the standard
// library, the single-byte charsets through the tables below.
//
// Trust: none. Any byte sequence decodes to a `String`; bytes that have no meaning in the
// declared charset become U+FFFD. Nothing here throws or traps.

/// A charset this module decodes. `init?(name:)` accepts the IANA name and the usual aliases
/// (case-insensitive: "UTF8", "latin1", "cp1252", "ascii", …).
public enum MIMECharset: String, Sendable, CaseIterable {
    case utf8 = "utf-8"
    case usASCII = "us-ascii"
    case isoLatin1 = "iso-8859-1"
    case isoLatin2 = "iso-8859-2"
    case isoLatin9 = "iso-8859-15"
    case windows1250 = "windows-1250"
    case windows1252 = "windows-1252"

    /// The charset for a label, or nil when it is not one of ours. Quotes, surrounding
    /// whitespace, case, `-`/`_`/`.`/`:`/space and an RFC 2231 language suffix (`*en`) are ignored.
    public init?(name: String) {
        var key = ""
        for scalar in name.unicodeScalars {
            if scalar == "*" { break }
            guard scalar.isASCII else { return nil }
            switch scalar {
            case "-", "_", ".", ":", " ", "\t", "\"", "'": continue
            default: key.unicodeScalars.append(scalar.properties.lowercaseMapping.unicodeScalars.first ?? scalar)
            }
        }
        switch key {
        case "utf8", "unicode11utf8", "xunicode20utf8", "unicode20utf8":
            self = .utf8
        case "usascii", "ascii", "ansix341968", "ansix341986", "iso646us", "us", "646", "cp367", "ibm367", "csascii", "isoir6":
            self = .usASCII
        case "iso88591", "latin1", "l1", "cp819", "ibm819", "isoir100", "iso885911987", "csisolatin1", "iso8859":
            self = .isoLatin1
        case "iso88592", "latin2", "l2", "isoir101", "iso885921987", "csisolatin2":
            self = .isoLatin2
        case "iso885915", "latin9", "l9", "latin0", "csisolatin9", "iso8859151998":
            self = .isoLatin9
        case "windows1250", "cp1250", "xcp1250", "win1250":
            self = .windows1250
        case "windows1252", "cp1252", "xcp1252", "win1252", "msansi":
            self = .windows1252
        default:
            return nil
        }
    }

    /// Decodes `bytes` labelled with `charset`.
    ///
    /// - No label, or US-ASCII: ASCII as is; bytes ≥ 0x80 (mail lies about its charset) as
    ///   UTF-8 when the whole text is valid UTF-8, else as windows-1252.
    /// - An unknown label: UTF-8 when valid, else ASCII kept and every other byte U+FFFD.
    /// - ISO-8859-1: bytes 0x80–0x9F (C1 controls, never meant in mail) as windows-1252, as
    ///   the WHATWG Encoding Standard and every mail client do.
    public static func decode(_ bytes: some Collection<UInt8>, charset: String?) -> String {
        guard let charset, !charset.isEmpty else { return decodeLeniently(bytes) }
        guard let known = MIMECharset(name: charset) else {
            if let text = String(validating: bytes, as: UTF8.self) { return text }
            return decodeSingleByte(bytes) { _ in 0xFFFD }
        }
        return known.decode(bytes)
    }

    /// Decodes `bytes` in this charset; see `decode(_:charset:)` for US-ASCII's leniency.
    public func decode(_ bytes: some Collection<UInt8>) -> String {
        switch self {
        case .utf8:
            return String(decoding: bytes, as: UTF8.self)
        case .usASCII:
            return Self.decodeLeniently(bytes)
        case .isoLatin1, .windows1252:
            return Self.decodeSingleByte(bytes) { byte in
                byte < 0xA0 ? Self.windows1252C1[Int(byte) - 0x80] : UInt16(byte)
            }
        case .isoLatin2:
            return Self.decodeSingleByte(bytes) { byte in
                byte < 0xA0 ? UInt16(byte) : Self.isoLatin2High[Int(byte) - 0xA0]
            }
        case .isoLatin9:
            return Self.decodeSingleByte(bytes) { byte in
                switch byte {
                case 0xA4: 0x20AC
                case 0xA6: 0x0160
                case 0xA8: 0x0161
                case 0xB4: 0x017D
                case 0xB8: 0x017E
                case 0xBC: 0x0152
                case 0xBD: 0x0153
                case 0xBE: 0x0178
                default: UInt16(byte)
                }
            }
        case .windows1250:
            return Self.decodeSingleByte(bytes) { byte in Self.windows1250High[Int(byte) - 0x80] }
        }
    }

    /// ASCII as is; otherwise UTF-8 when valid, else windows-1252.
    static func decodeLeniently(_ bytes: some Collection<UInt8>) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return MIMECharset.windows1252.decode(bytes)
    }

    /// ASCII bytes map to themselves; `high` maps bytes 0x80–0xFF to a BMP scalar value
    /// (0xFFFD for undefined bytes).
    private static func decodeSingleByte(_ bytes: some Collection<UInt8>, high: (UInt8) -> UInt16) -> String {
        var utf8: [UInt8] = []
        utf8.reserveCapacity(bytes.count + bytes.count / 4)
        for byte in bytes {
            if byte < 0x80 {
                utf8.append(byte)
                continue
            }
            let value = high(byte)
            if value < 0x800 {
                utf8.append(UInt8(0xC0 | (value >> 6)))
                utf8.append(UInt8(0x80 | (value & 0x3F)))
            } else {
                utf8.append(UInt8(0xE0 | (value >> 12)))
                utf8.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
                utf8.append(UInt8(0x80 | (value & 0x3F)))
            }
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    // MARK: Tables (Unicode's mapping files, cross-checked against Python's codecs)

    /// windows-1252 0x80–0x9F; the five undefined bytes are U+FFFD.
    static let windows1252C1: [UInt16] = [
        0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
        0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
    ]

    /// ISO-8859-2 0xA0–0xFF (0x80–0x9F are the C1 controls).
    private static let isoLatin2High: [UInt16] = [
        0x00A0, 0x0104, 0x02D8, 0x0141, 0x00A4, 0x013D, 0x015A, 0x00A7,
        0x00A8, 0x0160, 0x015E, 0x0164, 0x0179, 0x00AD, 0x017D, 0x017B,
        0x00B0, 0x0105, 0x02DB, 0x0142, 0x00B4, 0x013E, 0x015B, 0x02C7,
        0x00B8, 0x0161, 0x015F, 0x0165, 0x017A, 0x02DD, 0x017E, 0x017C,
        0x0154, 0x00C1, 0x00C2, 0x0102, 0x00C4, 0x0139, 0x0106, 0x00C7,
        0x010C, 0x00C9, 0x0118, 0x00CB, 0x011A, 0x00CD, 0x00CE, 0x010E,
        0x0110, 0x0143, 0x0147, 0x00D3, 0x00D4, 0x0150, 0x00D6, 0x00D7,
        0x0158, 0x016E, 0x00DA, 0x0170, 0x00DC, 0x00DD, 0x0162, 0x00DF,
        0x0155, 0x00E1, 0x00E2, 0x0103, 0x00E4, 0x013A, 0x0107, 0x00E7,
        0x010D, 0x00E9, 0x0119, 0x00EB, 0x011B, 0x00ED, 0x00EE, 0x010F,
        0x0111, 0x0144, 0x0148, 0x00F3, 0x00F4, 0x0151, 0x00F6, 0x00F7,
        0x0159, 0x016F, 0x00FA, 0x0171, 0x00FC, 0x00FD, 0x0163, 0x02D9,
    ]

    /// windows-1250 0x80–0xFF; the five undefined bytes are U+FFFD.
    private static let windows1250High: [UInt16] = [
        0x20AC, 0xFFFD, 0x201A, 0xFFFD, 0x201E, 0x2026, 0x2020, 0x2021,
        0xFFFD, 0x2030, 0x0160, 0x2039, 0x015A, 0x0164, 0x017D, 0x0179,
        0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0xFFFD, 0x2122, 0x0161, 0x203A, 0x015B, 0x0165, 0x017E, 0x017A,
        0x00A0, 0x02C7, 0x02D8, 0x0141, 0x00A4, 0x0104, 0x00A6, 0x00A7,
        0x00A8, 0x00A9, 0x015E, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x017B,
        0x00B0, 0x00B1, 0x02DB, 0x0142, 0x00B4, 0x00B5, 0x00B6, 0x00B7,
        0x00B8, 0x0105, 0x015F, 0x00BB, 0x013D, 0x02DD, 0x013E, 0x017C,
        0x0154, 0x00C1, 0x00C2, 0x0102, 0x00C4, 0x0139, 0x0106, 0x00C7,
        0x010C, 0x00C9, 0x0118, 0x00CB, 0x011A, 0x00CD, 0x00CE, 0x010E,
        0x0110, 0x0143, 0x0147, 0x00D3, 0x00D4, 0x0150, 0x00D6, 0x00D7,
        0x0158, 0x016E, 0x00DA, 0x0170, 0x00DC, 0x00DD, 0x0162, 0x00DF,
        0x0155, 0x00E1, 0x00E2, 0x0103, 0x00E4, 0x013A, 0x0107, 0x00E7,
        0x010D, 0x00E9, 0x0119, 0x00EB, 0x011B, 0x00ED, 0x00EE, 0x010F,
        0x0111, 0x0144, 0x0148, 0x00F3, 0x00F4, 0x0151, 0x00F6, 0x00F7,
        0x0159, 0x016F, 0x00FA, 0x0171, 0x00FC, 0x00FD, 0x0163, 0x02D9,
    ]
}
