import Foundation

/// An IMAP mailbox reader on libcurl, for the poller. One connection is kept across calls
/// (libcurl reuses it while the handle lives); calls are made one at a time by one poller.
///
/// What libcurl allows shapes this: a custom command's untagged responses reach us but an
/// IMAP literal does not, so message bodies are fetched through curl's own URL form
/// (`;UIDVALIDITY=v;UID=n`), which issues `UID FETCH n BODY[]` — and so sets `\Seen` as a
/// side effect. The poller therefore reads each message's flags first and gives `\Seen`
/// back when the message could not be committed (see `IMAPPoller`).
public final class IMAPClient: @unchecked Sendable {
    // @unchecked: the handle is used by one caller at a time (the poller awaits each call
    // before the next), on the curl queue.
    private let options: MailServerOptions
    private let handle: CurlHandle

    public init(_ options: MailServerOptions) {
        self.options = options
        self.handle = CurlHandle(options)
    }

    /// UIDVALIDITY, UIDNEXT and the message count of a mailbox (`STATUS`).
    public func status(mailbox: String) async throws(MailTransportError) -> IMAPMailboxStatus {
        let command = "STATUS \(IMAPSyntax.quoted(mailbox)) (UIDVALIDITY UIDNEXT MESSAGES)"
        let url = options.base + "/"
        let lines = try await run { () throws(MailTransportError) in try self.handle.perform(url: url, customRequest: command) }
        guard let status = IMAPResponse.status(lines) else {
            throw MailTransportError(curlCode: 0, responseCode: 0, reason: "the server's STATUS answer had no UIDVALIDITY")
        }
        return status
    }

    /// UIDs above `after`, ascending.
    public func uids(mailbox: String, after: Int64) async throws(MailTransportError) -> [Int64] {
        let url = options.base + "/" + IMAPSyntax.urlPath(mailbox)
        let command = "UID SEARCH UID \(after + 1):*"
        let lines = try await run { () throws(MailTransportError) in try self.handle.perform(url: url, customRequest: command) }
        return IMAPResponse.searchUIDs(lines).filter { $0 > after }.sorted()
    }

    /// The flags of one message, or nil when the UID no longer exists.
    public func flags(mailbox: String, uid: Int64) async throws(MailTransportError) -> [String]? {
        let url = options.base + "/" + IMAPSyntax.urlPath(mailbox)
        let command = "UID FETCH \(uid) (FLAGS)"
        let lines = try await run { () throws(MailTransportError) in try self.handle.perform(url: url, customRequest: command) }
        return IMAPResponse.flags(lines, uid: uid)
    }

    /// The whole message. Fails with `isUIDValidityMismatch` when the mailbox's UIDVALIDITY
    /// is no longer `uidValidity` (so a stale cursor can never fetch a different message).
    public func fetch(mailbox: String, uidValidity: Int64, uid: Int64, maxBytes: Int) async throws(MailTransportError) -> [UInt8] {
        let url = options.base + "/" + IMAPSyntax.urlPath(mailbox) + ";UIDVALIDITY=\(uidValidity);UID=\(uid)"
        return try await run { () throws(MailTransportError) in try self.handle.perform(url: url, maxResponseBytes: maxBytes) }
    }

    /// Adds or removes `\Seen`.
    public func setSeen(mailbox: String, uid: Int64, _ seen: Bool) async throws(MailTransportError) {
        let url = options.base + "/" + IMAPSyntax.urlPath(mailbox)
        let command = "UID STORE \(uid) \(seen ? "+" : "-")FLAGS.SILENT (\\Seen)"
        _ = try await run { () throws(MailTransportError) in try self.handle.perform(url: url, customRequest: command) }
    }

    /// Moves a message to another folder (RFC 6851 `UID MOVE`).
    public func move(mailbox: String, uid: Int64, to folder: String) async throws(MailTransportError) {
        let url = options.base + "/" + IMAPSyntax.urlPath(mailbox)
        let command = "UID MOVE \(uid) \(IMAPSyntax.quoted(folder))"
        _ = try await run { () throws(MailTransportError) in try self.handle.perform(url: url, customRequest: command) }
    }

    private func run(_ body: @escaping @Sendable () throws(MailTransportError) -> [UInt8]) async throws(MailTransportError) -> [UInt8] {
        try await onCurlQueue(body)
    }
}

public struct IMAPMailboxStatus: Sendable, Equatable {
    public var uidValidity: Int64
    public var uidNext: Int64?
    public var messages: Int64?
}

/// IMAP syntax for what we put in commands and URLs.
enum IMAPSyntax {
    /// A quoted string (RFC 3501): backslash and quote escaped; CR/LF never (mailbox names
    /// come from our own configuration, and are refused with them).
    static func quoted(_ value: String) -> String {
        "\"" + value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
    }

    /// A mailbox name as a URL path segment (RFC 5092): percent-encoded outside unreserved.
    static func urlPath(_ mailbox: String) -> String {
        var out = ""
        for byte in mailbox.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out += "%" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 15)])
            }
        }
        return out
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

/// Reading the untagged responses libcurl hands over for custom commands. Pure.
public enum IMAPResponse {
    static func lines(_ bytes: [UInt8]) -> [String] {
        String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\r\n" || $0 == "\n" || $0 == "\r" }).map(String.init)
    }

    /// `* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 1795941960)`
    public static func status(_ bytes: [UInt8]) -> IMAPMailboxStatus? {
        for line in lines(bytes) where line.uppercased().hasPrefix("* STATUS ") {
            guard let open = line.lastIndex(of: "("), let close = line.lastIndex(of: ")"), open < close else { continue }
            let items = line[line.index(after: open)..<close].split(separator: " ").map(String.init)
            var values: [String: Int64] = [:]
            var index = 0
            while index + 1 < items.count {
                if let value = Int64(items[index + 1]) { values[items[index].uppercased()] = value }
                index += 2
            }
            guard let validity = values["UIDVALIDITY"], validity > 0 else { continue }
            return IMAPMailboxStatus(uidValidity: validity, uidNext: values["UIDNEXT"], messages: values["MESSAGES"])
        }
        return nil
    }

    /// `* SEARCH 1 2 3` (possibly several lines).
    public static func searchUIDs(_ bytes: [UInt8]) -> [Int64] {
        lines(bytes).filter { $0.uppercased().hasPrefix("* SEARCH") }.flatMap { line in
            line.dropFirst(8).split(separator: " ").compactMap { Int64($0) }
        }
    }

    /// The FLAGS of the `* n FETCH (UID u FLAGS (...))` line for `uid`.
    public static func flags(_ bytes: [UInt8], uid: Int64) -> [String]? {
        for line in lines(bytes) {
            let upper = line.uppercased()
            guard upper.hasPrefix("* "), upper.contains(" FETCH "), upper.contains("UID \(uid) ") || upper.contains("UID \(uid))"),
                  let flagsStart = upper.range(of: "FLAGS (") else { continue }
            let rest = line[flagsStart.upperBound...]
            guard let close = rest.firstIndex(of: ")") else { continue }
            return rest[..<close].split(separator: " ").map(String.init)
        }
        return nil
    }
}
