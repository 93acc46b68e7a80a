// Byte-level grammar of SMTP command arguments (RFC 5321 4.1.2, RFC 6531 3.3) and the base64 of
// SASL responses (RFC 4648 4). Everything works on raw bytes of one command line; nothing allocates
// a String until an address is known to be valid.

extension SMTPServerSession {
    enum Grammar {
        static let tab: UInt8 = 0x09
        static let lf: UInt8 = 0x0A
        static let cr: UInt8 = 0x0D
        static let space: UInt8 = 0x20
        static let quote: UInt8 = 0x22
        static let star: UInt8 = 0x2A
        static let comma: UInt8 = 0x2C
        static let dot: UInt8 = 0x2E
        static let colon: UInt8 = 0x3A
        static let lessThan: UInt8 = 0x3C
        static let equals: UInt8 = 0x3D
        static let greaterThan: UInt8 = 0x3E
        static let at: UInt8 = 0x40
        static let openBracket: UInt8 = 0x5B
        static let backslash: UInt8 = 0x5C
        static let closeBracket: UInt8 = 0x5D

        static func uppercased(_ bytes: [UInt8]) -> [UInt8] {
            bytes.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }
        }

        static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        static func isAlpha(_ byte: UInt8) -> Bool { (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A }

        /// The bytes as a String if they are well-formed UTF-8.
        static func utf8String(_ bytes: [UInt8]) -> String? {
            let string = String(decoding: bytes, as: UTF8.self)
            return string.utf8.elementsEqual(bytes) ? string : nil
        }

        static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
            var slice = bytes
            while let first = slice.first, first == space || first == tab { slice.removeFirst() }
            while let last = slice.last, last == space || last == tab { slice.removeLast() }
            return slice
        }

        /// The bytes after `keyword` ("FROM:", "TO:"; ASCII, case-insensitive) and any spaces after it
        /// (tolerated, as "MAIL FROM: <a@b>" is common).
        static func afterKeyword(_ arguments: ArraySlice<UInt8>, _ keyword: String) -> ArraySlice<UInt8>? {
            let expected = Array(keyword.utf8)
            guard arguments.count >= expected.count,
                  uppercased(Array(arguments.prefix(expected.count))) == expected else { return nil }
            var rest = arguments.dropFirst(expected.count)
            while rest.first == space { rest.removeFirst() }
            return rest
        }

        /// Splits "<path> params" into the bytes between the angle brackets and the parameters (which must
        /// be empty or start with a space). Angle brackets inside a quoted local part do not count.
        static func splitPath(_ bytes: ArraySlice<UInt8>) -> (path: ArraySlice<UInt8>, rest: ArraySlice<UInt8>)? {
            guard bytes.first == lessThan else { return nil }
            var index = bytes.startIndex + 1
            var quoted = false
            while index < bytes.endIndex {
                let byte = bytes[index]
                if quoted && byte == backslash {
                    index += 2
                    continue
                }
                if byte == quote {
                    quoted.toggle()
                } else if !quoted && byte == greaterThan {
                    let rest = bytes[(index + 1)...]
                    guard rest.isEmpty || rest.first == space else { return nil }
                    return (bytes[(bytes.startIndex + 1)..<index], rest)
                } else if !quoted && byte == lessThan {
                    return nil
                }
                index += 1
            }
            return nil
        }

        /// The mailbox of a path, without its source route ("@a,@b:user@d" → "user@d"; RFC 5321 4.1.2
        /// says to accept and ignore it). Nil when the route is malformed.
        static func withoutSourceRoute(_ path: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
            guard path.first == at else { return path }
            var index = path.startIndex
            while index < path.endIndex {
                guard path[index] == at else { return nil }
                index += 1
                let domainStart = index
                if index < path.endIndex && path[index] == openBracket {
                    while index < path.endIndex && path[index] != closeBracket { index += 1 }
                    guard index < path.endIndex else { return nil }
                    index += 1
                } else {
                    while index < path.endIndex && path[index] != comma && path[index] != colon { index += 1 }
                }
                guard index > domainStart, index < path.endIndex, checkDomain(path[domainStart..<index], utf8Allowed: true) != .invalid
                else { return nil }
                if path[index] == colon {
                    let mailbox = path[(index + 1)...]
                    return mailbox.isEmpty ? nil : mailbox
                }
                guard path[index] == comma else { return nil }
                index += 1
            }
            return nil
        }

        enum MailboxCheck: Equatable {
            case valid
            case invalid
            /// Valid, but with non-ASCII characters, which need the SMTPUTF8 parameter.
            case needsSMTPUTF8
        }

        /// RFC 5321 Mailbox = Local-part "@" ( Domain / address-literal ), extended by RFC 6531 to UTF-8.
        /// Lenient on dots in a dot-string local part ("a..b", as Postfix): they are accepted anywhere.
        /// The caller has checked that the whole line is well-formed UTF-8 without control characters.
        static func checkMailbox(_ mailbox: ArraySlice<UInt8>, utf8Allowed: Bool) -> MailboxCheck {
            var index = mailbox.startIndex
            var nonASCII = false
            if mailbox.first == quote {
                index += 1
                var closed = false
                while index < mailbox.endIndex {
                    let byte = mailbox[index]
                    if byte == quote {
                        closed = true
                        index += 1
                        break
                    }
                    if byte == backslash {
                        guard index + 1 < mailbox.endIndex else { return .invalid }
                        let escaped = mailbox[index + 1]
                        if escaped >= 0x80 { nonASCII = true } else if escaped < 0x20 || escaped > 0x7E { return .invalid }
                        index += 2
                        continue
                    }
                    if byte >= 0x80 { nonASCII = true } else if byte < 0x20 || byte > 0x7E { return .invalid }
                    index += 1
                }
                guard closed else { return .invalid }
            } else {
                let start = index
                while index < mailbox.endIndex && mailbox[index] != at {
                    let byte = mailbox[index]
                    if byte >= 0x80 { nonASCII = true } else if !isAtext(byte) && byte != dot { return .invalid }
                    index += 1
                }
                guard index > start else { return .invalid }
            }
            guard index < mailbox.endIndex, mailbox[index] == at else { return .invalid }
            switch checkDomain(mailbox[(index + 1)...], utf8Allowed: utf8Allowed) {
            case .invalid: return .invalid
            case .needsSMTPUTF8: return .needsSMTPUTF8
            case .valid: break
            }
            return nonASCII && !utf8Allowed ? .needsSMTPUTF8 : .valid
        }

        /// Domain (dot-separated labels of letters, digits, hyphens; U-labels with SMTPUTF8) or an
        /// address literal "[...]".
        static func checkDomain(_ domain: ArraySlice<UInt8>, utf8Allowed: Bool) -> MailboxCheck {
            guard !domain.isEmpty, domain.count <= 255 else { return .invalid }
            if domain.first == openBracket {
                guard domain.count > 2, domain.last == closeBracket else { return .invalid }
                let inner = domain.dropFirst().dropLast()
                // dtext: %d33-90 / %d94-126
                return inner.allSatisfy { ($0 >= 33 && $0 <= 90) || ($0 >= 94 && $0 <= 126) } ? .valid : .invalid
            }
            var nonASCII = false
            for label in domain.split(separator: dot, omittingEmptySubsequences: false) {
                guard !label.isEmpty, label.count <= 63 || label.contains(where: { $0 >= 0x80 }) else { return .invalid }
                for byte in label {
                    if byte >= 0x80 { nonASCII = true } else if !isAlpha(byte) && !isDigit(byte) && byte != 0x2D { return .invalid }
                }
            }
            return nonASCII && !utf8Allowed ? .needsSMTPUTF8 : .valid
        }

        /// RFC 5322 atext.
        static func isAtext(_ byte: UInt8) -> Bool {
            if isAlpha(byte) || isDigit(byte) { return true }
            switch byte {
            case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2F, 0x3D, 0x3F, 0x5E, 0x5F, 0x60, 0x7B, 0x7C, 0x7D, 0x7E:
                return true
            default:
                return false
            }
        }

        /// ESMTP parameters after a path: space-separated `keyword[=value]` (RFC 5321 4.1.2), keywords
        /// uppercased. Values are any bytes but space, "=" and controls (UTF-8 allowed, RFC 6531 3.3).
        /// Nil when malformed.
        static func parameters(_ rest: ArraySlice<UInt8>) -> [(keyword: String, value: [UInt8]?)]? {
            var result: [(keyword: String, value: [UInt8]?)] = []
            for token in rest.split(separator: space) {
                let equals = token.firstIndex(of: Grammar.equals)
                let keyword = token[..<(equals ?? token.endIndex)]
                guard let first = keyword.first, isAlpha(first) || isDigit(first),
                      keyword.allSatisfy({ isAlpha($0) || isDigit($0) || $0 == 0x2D }) else { return nil }
                var value: [UInt8]?
                if let equals {
                    let bytes = token[(equals + 1)...]
                    guard !bytes.isEmpty, bytes.allSatisfy({ $0 > 0x20 && $0 != 0x7F && $0 != Grammar.equals }) else { return nil }
                    value = Array(bytes)
                }
                result.append((String(decoding: uppercased(Array(keyword)), as: UTF8.self), value))
            }
            return result
        }

        /// Whether the decimal digits `digits` denote a number above `limit` (without overflowing).
        static func decimalExceeds(_ digits: [UInt8], _ limit: Int) -> Bool {
            var value = 0
            for digit in digits {
                let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(Int(digit - 0x30))
                if overflow1 || overflow2 { return true }
                value = sum
                if value > limit { return true }
            }
            return false
        }

        /// Strict base64 (RFC 4648 4): the standard alphabet, no whitespace; padding optional but, when
        /// present, correct; unused trailing bits must be zero.
        static func base64Decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
            var output: [UInt8] = []
            output.reserveCapacity(text.count / 4 * 3 + 2)
            var accumulator: UInt32 = 0
            var bits = 0
            var symbols = 0
            var padding = 0
            for byte in text {
                if byte == equals {
                    padding += 1
                    continue
                }
                guard padding == 0 else { return nil }
                let value: UInt8
                switch byte {
                case 0x41...0x5A: value = byte - 0x41
                case 0x61...0x7A: value = byte - 0x61 + 26
                case 0x30...0x39: value = byte - 0x30 + 52
                case 0x2B: value = 62
                case 0x2F: value = 63
                default: return nil
                }
                accumulator = (accumulator << 6 | UInt32(value)) & 0xFFFFFF
                bits += 6
                symbols += 1
                if bits >= 8 {
                    bits -= 8
                    output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                }
            }
            guard symbols % 4 != 1, padding <= 2 else { return nil }
            if padding > 0 && (symbols + padding) % 4 != 0 { return nil }
            if bits > 0 && accumulator & ((1 << UInt32(bits)) - 1) != 0 { return nil }
            return output
        }
    }
}
