/// ASCII case folding on bytes, for the hot paths that compare protocol tokens (media
/// types, SQLite table names) or fold mostly-ASCII text: Foundation's `lowercased()` and
/// trimming go through NSString and allocate, and these run for every request or statement.
/// Only A–Z change; every other byte, including each byte of a multi-byte UTF-8 sequence
/// (all ≥ 0x80), is left as it is, so folded UTF-8 stays valid UTF-8.
public enum ASCII {
    /// `byte` with A–Z mapped to a–z.
    @inlinable
    public static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// `bytes` with A–Z mapped to a–z.
    @inlinable
    public static func lowercased(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        bytes.map(lowercased)
    }

    /// Whether `bytes`, folded to lower case, equal `lowercase` (which the caller gives
    /// already in lower case).
    @inlinable
    public static func equalsIgnoringCase(_ bytes: some Collection<UInt8>, lowercase: some Collection<UInt8>) -> Bool {
        bytes.count == lowercase.count && zip(bytes, lowercase).allSatisfy { lowercased($0) == $1 }
    }
}
