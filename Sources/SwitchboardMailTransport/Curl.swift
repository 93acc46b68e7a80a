import CCurl
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Mail client transport through libcurl: SMTP submission of our replies and IMAP polling
/// of the organisation's mailboxes. libcurl does the protocol work (TLS, STARTTLS, SASL,
/// pipelining of IMAP commands); this module only sets it up and reads its answers.
///
/// Trusts: the configured server and, for TLS, the system CA store or the configured CA
/// file (certificate and host name are always verified; there is no switch to turn that
/// off). On failure: every call throws a `MailTransportError` naming the curl error and the
/// server's reply code — never the server's reply text, which can quote a patient's address.
///
/// libcurl blocks. Every call runs on a dedicated dispatch queue, never on Swift's
/// cooperative pool (two threads on this machine: one blocked IMAP fetch would stall the
/// daemon), and each call has a hard timeout.
public struct MailServerOptions: Sendable {
    public var url: String
    public var username: String?
    public var password: String?
    /// `starttls` (required before anything is sent) or `none`; an smtps:// or imaps:// URL
    /// is TLS from the first byte whatever this says.
    public var tls: String
    public var caFile: String?
    public var timeoutMilliseconds: Int64

    public init(url: String, username: String?, password: String?, tls: String, caFile: String?, timeoutMilliseconds: Int64) {
        self.url = url
        self.username = username
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// The URL without a trailing slash, to which paths are appended.
    var base: String { url.hasSuffix("/") ? String(url.dropLast()) : url }
}

public struct MailTransportError: Error, Sendable, CustomStringConvertible, Equatable {
    /// libcurl's error code (`CURLcode`).
    public var curlCode: Int
    /// The server's last reply code (SMTP 550, IMAP has none: 0), if any.
    public var responseCode: Int
    /// libcurl's own description of the error code: no server text, no addresses.
    public var reason: String

    public var description: String { responseCode > 0 ? "\(reason) (curl \(curlCode), reply \(responseCode))" : "\(reason) (curl \(curlCode))" }

    /// A refusal that retrying will not fix: the server answered 5xx.
    public var isPermanent: Bool { responseCode >= 500 && responseCode < 600 }
    /// Wrong or missing credentials: an operator must act (retried meanwhile). libcurl's own
    /// code, or the SMTP replies that mean it: 530 authentication required, 534 mechanism too
    /// weak, 535 credentials invalid, 538 encryption required for the mechanism.
    public var isLoginDenied: Bool {
        curlCode == Int(CURLE_LOGIN_DENIED.rawValue) || [530, 534, 535, 538].contains(responseCode)
    }
    /// The UIDVALIDITY given in an IMAP URL no longer matches the mailbox.
    public var isUIDValidityMismatch: Bool { curlCode == Int(CURLE_REMOTE_FILE_NOT_FOUND.rawValue) && responseCode == 0 }
}

/// One libcurl easy handle, used by one thread at a time. Keeping it across calls keeps the
/// connection (and for IMAP the selected mailbox) alive.
final class CurlHandle {
    private let handle: UnsafeMutableRawPointer
    private let options: MailServerOptions

    static let globalInit: Void = { _ = sb_curl_global_init() }()

    init(_ options: MailServerOptions) {
        _ = Self.globalInit
        self.options = options
        self.handle = curl_easy_init()
    }

    deinit { curl_easy_cleanup(handle) }

    /// Resets per-request options and applies the server options.
    private func prepare(url: String) {
        curl_easy_reset(handle)
        sb_curl_setopt_string(handle, CURLOPT_URL, url)
        sb_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        sb_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(options.timeoutMilliseconds))
        sb_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(min(options.timeoutMilliseconds, 10_000)))
        sb_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
        sb_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
        if options.tls == "starttls" {
            sb_curl_setopt_long(handle, CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
        }
        if let caFile = options.caFile { sb_curl_setopt_string(handle, CURLOPT_CAINFO, caFile) }
        if let username = options.username { sb_curl_setopt_string(handle, CURLOPT_USERNAME, username) }
        if let password = options.password { sb_curl_setopt_string(handle, CURLOPT_PASSWORD, password) }
    }

    /// Runs one request. `upload` is sent as the request body (SMTP DATA); the response body
    /// is returned, at most `maxResponseBytes`.
    func perform(url: String, upload: [UInt8]? = nil, recipients: [String] = [],
                 mailFrom: String? = nil, maxResponseBytes: Int = 64 << 20) throws(MailTransportError) -> [UInt8] {
        prepare(url: url)
        let box = TransferBox(upload: upload ?? [], limit: maxResponseBytes)
        let opaque = Unmanaged.passUnretained(box).toOpaque()
        sb_curl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { buffer, size, count, userdata in
            let box = Unmanaged<TransferBox>.fromOpaque(userdata!).takeUnretainedValue()
            let total = size * count
            guard box.received.count + total <= box.limit, let buffer else { return 0 }
            buffer.withMemoryRebound(to: UInt8.self, capacity: total) { box.received.append(contentsOf: UnsafeBufferPointer(start: $0, count: total)) }
            return total
        }
        sb_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, opaque)
        var list: UnsafeMutablePointer<curl_slist>?
        defer { if let list { curl_slist_free_all(list) } }
        if upload != nil {
            sb_curl_setopt_long(handle, CURLOPT_UPLOAD, 1)
            sb_curl_setopt_data_callback(handle, CURLOPT_READFUNCTION) { buffer, size, count, userdata in
                let box = Unmanaged<TransferBox>.fromOpaque(userdata!).takeUnretainedValue()
                let room = size * count
                let remaining = box.upload.count - box.sent
                let n = min(room, remaining)
                guard n > 0, let buffer else { return 0 }
                box.upload.withUnsafeBufferPointer { source in
                    UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + box.sent, byteCount: n)
                }
                box.sent += n
                return n
            }
            sb_curl_setopt_pointer(handle, CURLOPT_READDATA, opaque)
        }
        if let mailFrom {
            sb_curl_setopt_string(handle, CURLOPT_MAIL_FROM, "<\(mailFrom)>")
            for recipient in recipients { list = curl_slist_append(list, "<\(recipient)>") }
            sb_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, list)
        }
        let code = curl_easy_perform(handle)
        var response = 0
        sb_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &response)
        guard code == CURLE_OK else { throw Self.error(code, responseCode: response) }
        return box.received
    }
}

/// A session libcurl opened and handed over (`CURLOPT_CONNECT_ONLY`): libcurl connects,
/// negotiates TLS (implicit, or STARTTLS refusing to go on without it) and logs in with the
/// configured credentials; the caller then speaks the protocol itself over `send` and
/// `receive`. This is how the IMAP poller issues `BODY.PEEK[]`, which libcurl's own fetch
/// cannot: it leaves `\Seen` alone until the message is committed.
extension CurlHandle {
    /// Connects and logs in. Fails as `perform` does (login denied, certificate refused, …).
    func openSession() throws(MailTransportError) {
        prepare(url: options.base + "/")
        sb_curl_setopt_long(handle, CURLOPT_CONNECT_ONLY, 1)
        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else { throw Self.error(code) }
    }

    /// Sends all of `bytes`, waiting for the socket as needed, until `deadline` (monotonic
    /// nanoseconds).
    func send(_ bytes: [UInt8], deadline: UInt64) throws(MailTransportError) {
        var offset = 0
        while offset < bytes.count {
            var sent = 0
            let code = bytes.withUnsafeBytes { raw in
                curl_easy_send(handle, raw.baseAddress! + offset, raw.count - offset, &sent)
            }
            if code == CURLE_AGAIN {
                try wait(for: Int16(POLLOUT), deadline: deadline)
                continue
            }
            guard code == CURLE_OK else { throw Self.error(code) }
            offset += sent
        }
    }

    /// Whatever arrives next (at most `capacity` bytes), waiting until `deadline`. Throws
    /// when the server closed the connection.
    func receive(capacity: Int = 64 << 10, deadline: UInt64) throws(MailTransportError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: capacity)
        while true {
            var received = 0
            // TLS may hold decrypted bytes the socket no longer shows as readable: read first,
            // wait only when libcurl says there is nothing.
            let code = buffer.withUnsafeMutableBytes { raw in curl_easy_recv(handle, raw.baseAddress!, raw.count, &received) }
            if code == CURLE_AGAIN {
                try wait(for: Int16(POLLIN), deadline: deadline)
                continue
            }
            guard code == CURLE_OK else { throw Self.error(code) }
            guard received > 0 else {
                throw MailTransportError(curlCode: Int(CURLE_RECV_ERROR.rawValue), responseCode: 0,
                                         reason: "the server closed the connection")
            }
            return Array(buffer.prefix(received))
        }
    }

    private func wait(for events: Int16, deadline: UInt64) throws(MailTransportError) {
        var socket: curl_socket_t = -1
        guard sb_curl_getinfo_socket(handle, &socket) == CURLE_OK, socket >= 0 else {
            throw MailTransportError(curlCode: Int(CURLE_RECV_ERROR.rawValue), responseCode: 0, reason: "the connection is gone")
        }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now < deadline else {
            throw MailTransportError(curlCode: Int(CURLE_OPERATION_TIMEDOUT.rawValue), responseCode: 0,
                                     reason: String(cString: curl_easy_strerror(CURLE_OPERATION_TIMEDOUT)))
        }
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        _ = poll(&descriptor, 1, Int32(min((deadline - now) / 1_000_000 + 1, 1_000)))
    }

    static func error(_ code: CURLcode, responseCode: Int = 0) -> MailTransportError {
        MailTransportError(curlCode: Int(code.rawValue), responseCode: responseCode, reason: String(cString: curl_easy_strerror(code)))
    }
}

/// The buffers one transfer reads from and writes to (reached from C through `userdata`).
private final class TransferBox {
    let upload: [UInt8]
    var sent = 0
    var received: [UInt8] = []
    let limit: Int

    init(upload: [UInt8], limit: Int) {
        self.upload = upload
        self.limit = limit
    }
}

/// The queue blocking libcurl calls run on, off Swift's cooperative pool.
let curlQueue = DispatchQueue(label: "switchboard.curl", attributes: .concurrent)

func onCurlQueue<T: Sendable>(_ body: @escaping @Sendable () throws(MailTransportError) -> T) async throws(MailTransportError) -> T {
    let result: Result<T, MailTransportError> = await withCheckedContinuation { continuation in
        curlQueue.async {
            do throws(MailTransportError) {
                continuation.resume(returning: .success(try body()))
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
    }
    return try result.get()
}
