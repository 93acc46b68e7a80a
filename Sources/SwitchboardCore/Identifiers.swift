/// Opaque, unguessable identifiers: a short type prefix (so an operator reading a log line
/// knows what an id names) and 128 random bits in lower-case base32.
public enum Identifier {
    private static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    public static func make(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + "_" + base32(randomBytes(16, using: &generator))
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
