import CCurl
import Dispatch
import SwitchboardMail

/// An IMAP mailbox reader for the poller: libcurl opens the session (TLS or STARTTLS,
/// certificate checks, SASL login) and hands it over; the commands are ours, read by the
/// I/O-free `IMAPResponseReader` (SwitchboardMail). Speaking the commands ourselves is what
/// lets a message be read with `BODY.PEEK[]`: libcurl's own fetch issues `BODY[]`, which sets
/// `\Seen` as it reads — before the message is committed.
///
/// One session per client, opened at the first call; calls are made one at a time by one
/// poller, each with a deadline. A server's NO or BAD is an error naming the command, never
/// the server's text (which can quote a patient's address).
public final class IMAPClient: @unchecked Sendable {
    // @unchecked: the handle, reader and tag counter are used by one caller at a time (the
    // poller awaits each call before the next), on the curl queue.
    private let options: MailServerOptions
    private var handle: CurlHandle
    private var reader = IMAPResponseReader(maxLineBytes: 16 << 20)
    private var opened = false
    private var nextTag = 1
    /// The mailbox selected in this session and its UIDVALIDITY.
    private var selected: (mailbox: String, uidValidity: Int64)?

    public init(_ options: MailServerOptions) {
        self.options = options
        self.handle = CurlHandle(options)
    }

    /// UIDVALIDITY, UIDNEXT and the message count of a mailbox (`STATUS`).
    public func status(mailbox: String) async throws(MailTransportError) -> IMAPMailboxStatus {
        let responses = try await command("STATUS \(IMAPSyntax.quoted(mailbox)) (UIDVALIDITY UIDNEXT MESSAGES)")
        guard let values = IMAPResponses.status(responses), let validity = values["UIDVALIDITY"], validity > 0 else {
            throw MailTransportError(curlCode: 0, responseCode: 0, reason: "the server's STATUS answer had no UIDVALIDITY")
        }
        return IMAPMailboxStatus(uidValidity: validity, uidNext: values["UIDNEXT"], messages: values["MESSAGES"])
    }

    /// UIDs above `after`, ascending.
    public func uids(mailbox: String, after: Int64) async throws(MailTransportError) -> [Int64] {
        try await select(mailbox)
        let responses = try await command("UID SEARCH UID \(after + 1):*")
        return Array(Set(IMAPResponses.searchUIDs(responses).filter { $0 > after })).sorted()
    }

    /// One message, read without setting `\Seen`. Fails with `isUIDValidityMismatch` when
    /// the mailbox's UIDVALIDITY is no longer `uidValidity` (a stale cursor never fetches a
    /// different message).
    public func fetch(mailbox: String, uidValidity: Int64, uid: Int64, maxBytes: Int) async throws(MailTransportError) -> IMAPFetchResult {
        try await select(mailbox)
        guard selected?.uidValidity == uidValidity else {
            throw MailTransportError(curlCode: Int(CURLE_REMOTE_FILE_NOT_FOUND.rawValue), responseCode: 0,
                                     reason: "the mailbox's UIDVALIDITY changed")
        }
        // The size first: a message over the limit is never transferred.
        guard let sized = try await fetchItems(uid: uid, items: "RFC822.SIZE") else { return .expunged }
        if let size = sized.size, size > Int64(maxBytes) { return .tooLarge(bytes: size) }
        guard let fetched = try await fetchItems(uid: uid, items: "BODY.PEEK[]", maxLiteral: maxBytes) else { return .expunged }
        guard let body = fetched.body else {
            throw MailTransportError(curlCode: 0, responseCode: 0, reason: "the server's FETCH answer had no message body")
        }
        return .message(body)
    }

    /// Adds or removes `\Seen`.
    public func setSeen(mailbox: String, uid: Int64, _ seen: Bool) async throws(MailTransportError) {
        try await select(mailbox)
        _ = try await command("UID STORE \(uid) \(seen ? "+" : "-")FLAGS.SILENT (\\Seen)")
    }

    /// Moves a message to another folder (RFC 6851 `UID MOVE`).
    public func move(mailbox: String, uid: Int64, to folder: String) async throws(MailTransportError) {
        try await select(mailbox)
        _ = try await command("UID MOVE \(uid) \(IMAPSyntax.quoted(folder))")
    }

    /// Ends the session politely. Errors are of no interest: the connection closes anyway.
    public func logout() async {
        guard opened else { return }
        _ = try? await command("LOGOUT")
        opened = false
    }

    private func select(_ mailbox: String) async throws(MailTransportError) {
        guard selected?.mailbox != mailbox else { return }
        selected = nil
        let responses = try await command("SELECT \(IMAPSyntax.quoted(mailbox))")
        guard let validity = IMAPResponses.selectedUIDValidity(responses) else {
            throw MailTransportError(curlCode: 0, responseCode: 0, reason: "the server's SELECT answer had no UIDVALIDITY")
        }
        selected = (mailbox, validity)
    }

    private func fetchItems(uid: Int64, items: String, maxLiteral: Int = 1 << 20) async throws(MailTransportError) -> (size: Int64?, body: [UInt8]?)? {
        let responses = try await command("UID FETCH \(uid) (UID \(items))", maxLiteral: maxLiteral)
        do {
            return try IMAPResponses.fetched(responses, uid: uid)
        } catch {
            throw MailTransportError(curlCode: 0, responseCode: 0, reason: error.reason)
        }
    }

    /// Sends one tagged command and collects the untagged responses up to its completion.
    private func command(_ text: String, maxLiteral: Int = 1 << 20) async throws(MailTransportError) -> [IMAPServerResponse] {
        let verb = text.split(separator: " ").prefix(text.hasPrefix("UID ") ? 2 : 1).joined(separator: " ")
        return try await onCurlQueue { () throws(MailTransportError) -> [IMAPServerResponse] in
            try self.exchange(text, verb: verb, maxLiteral: maxLiteral)
        }
    }

    private func exchange(_ text: String, verb: String, maxLiteral: Int) throws(MailTransportError) -> [IMAPServerResponse] {
        if !opened {
            handle = CurlHandle(options)
            try handle.openSession()
            opened = true
            reader = IMAPResponseReader(maxLineBytes: 16 << 20)
        }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(options.timeoutMilliseconds) * 1_000_000
        let tag = "S\(nextTag)"
        nextTag += 1
        reader.maxLiteralBytes = maxLiteral
        do throws(MailTransportError) {
            try handle.send(Array("\(tag) \(text)\r\n".utf8), deadline: deadline)
            var untagged: [IMAPServerResponse] = []
            while true {
                while let response = try readResponse() {
                    if let status = response.completion(tag: tag) {
                        guard status == "OK" else {
                            throw MailTransportError(curlCode: 0, responseCode: 0, reason: "the server answered \(status) to \(verb)")
                        }
                        return untagged
                    }
                    if response.isUntagged && response.line.uppercased().hasPrefix("* BYE") && verb != "LOGOUT" {
                        throw MailTransportError(curlCode: Int(CURLE_RECV_ERROR.rawValue), responseCode: 0,
                                                 reason: "the server ended the session during \(verb)")
                    }
                    if response.isUntagged { untagged.append(response) }
                }
                reader.append(try handle.receive(deadline: deadline))
            }
        } catch {
            // Whatever went wrong, the session's state is unknown: the next call starts afresh.
            opened = false
            selected = nil
            throw error
        }
    }

    private func readResponse() throws(MailTransportError) -> IMAPServerResponse? {
        do {
            return try reader.next()
        } catch {
            throw MailTransportError(curlCode: Int(CURLE_RECV_ERROR.rawValue), responseCode: 0, reason: error.reason)
        }
    }
}

/// What fetching one message found.
public enum IMAPFetchResult: Sendable, Equatable {
    case message([UInt8])
    /// Over the caller's limit, by the server's RFC822.SIZE; not transferred.
    case tooLarge(bytes: Int64)
    /// Gone since the search (expunged by another client).
    case expunged
}

public struct IMAPMailboxStatus: Sendable, Equatable {
    public var uidValidity: Int64
    public var uidNext: Int64?
    public var messages: Int64?
}
