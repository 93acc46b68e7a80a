import Foundation

/// Opaque, unguessable identifiers: a short type prefix (so an operator reading a log line
/// knows what an id names) and 26 characters of lower-case base32 (a–z, 2–7).
public enum Identifier {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
    /// The same 32 characters in byte order, so that ordered ids sort as their values do.
    private static let sortedAlphabet = Array("234567abcdefghijklmnopqrstuvwxyz".utf8)

    /// 128 random bits: for anything that must not reveal when it was made (agents, visitors).
    public static func make(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + "_" + base32(randomBytes(16, using: &generator))
    }

    /// The creation time in milliseconds (48 bits) followed by 80 random bits, written so
    /// that ids sort by creation time (as ULIDs and UUIDv7 do). For the rows made per message
    /// (messages, conversations, contacts): each of their indexes on an id or on a reference
    /// to one is a B-tree, and a random key lands on a random page of it, so every new
    /// message dirtied a page of each such index, and every commit wrote all of them to the
    /// write-ahead log and fsynced them. Time-ordered keys go where the previous ones went.
    /// 80 random bits still cannot be guessed, even by someone who knows the millisecond;
    /// the time an id reveals is when the row was made, which the row's API shows anyway.
    public static func makeOrdered(prefix: String, now: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var bytes = (0..<6).map { UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * $0)) }
        bytes += randomBytes(10, using: &generator)
        return prefix + "_" + base32(bytes, alphabet: sortedAlphabet)
    }

    /// `count` bytes from the system's cryptographic random source, eight per call to it
    /// (one call per byte was 1.4% of the daemon's CPU under ingest: ids are made per message).
    public static func randomBytes(_ count: Int, using generator: inout SystemRandomNumberGenerator) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 7)
        while bytes.count < count {
            withUnsafeBytes(of: generator.next()) { bytes.append(contentsOf: $0) }
        }
        bytes.removeLast(bytes.count - count)
        return bytes
    }

    public static func base32(_ bytes: [UInt8]) -> String {
        base32(bytes, alphabet: alphabet)
    }

    private static func base32(_ bytes: [UInt8], alphabet: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 {
            output.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)])
        }
        return String(decoding: output, as: UTF8.self)
    }
}
