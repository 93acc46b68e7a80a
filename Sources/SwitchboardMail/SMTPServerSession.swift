// The ESMTP server state machine (RFC 5321 with RFC 1870 SIZE, RFC 2920 PIPELINING, RFC 6152 8BITMIME,
// RFC 6531 SMTPUTF8, RFC 2034 ENHANCEDSTATUSCODES, RFC 3207 STARTTLS and RFC 4954 AUTH), driven by bytes.
//
// The session is pure: no I/O, no clocks, no concurrency. The channel handler feeds it the bytes it
// reads and performs the actions it returns, in order. Nothing the client sends is ever echoed in a
// reply, and no reply text carries an address or message content, so replies may be logged freely.

/// Limits and policy of one SMTP listener.
public struct SMTPServerConfiguration: Sendable {
    /// Used in the greeting, the EHLO reply and 421 replies. Characters outside printable ASCII
    /// (and spaces) are dropped before use.
    public var hostname: String
    /// Advertised with SIZE. A message whose dot-unstuffed content is larger is consumed to its end
    /// and then refused with `552 5.3.4`; `MAIL FROM:<…> SIZE=n` with a larger `n` is refused at once.
    public var maxMessageBytes: Int = 25 * 1024 * 1024
    /// Distinct recipients per transaction; further ones get `452 4.5.3` (which does not count as an error,
    /// so that a client may deliver to the rest in a later transaction, as RFC 5321 4.5.3.1.10 expects).
    public var maxRecipients: Int = 100
    /// Longest command line, CRLF included (RFC 5321 4.5.3.1.4). A longer line is discarded up to its
    /// line feed and answered with `500 5.5.2 Error: line too long`. SASL response lines (after a 334)
    /// may be up to 12,288 bytes (RFC 4954 4) or this value if it is larger.
    public var maxCommandLineBytes: Int = 512
    /// Accepted for configuration compatibility; has no effect. Like Postfix, DATA lines of any length
    /// are accepted (RFC 5321's 1,000-byte text line limit is not enforced on receipt). The session never
    /// buffers a DATA line on its own: DATA bytes stream straight into the message, whose size is bounded
    /// by `maxMessageBytes` (once over it, nothing more is kept), so no partial line can grow unbounded.
    public var maxDataLineBytes: Int = 1000
    /// Header section of the message (everything up to the first empty line, where a line ends in LF
    /// with or without CR). Larger → the message is consumed to its end, then `552 5.3.4`.
    public var maxHeaderBytes: Int = 256 * 1024
    /// Command lines per session (SASL response lines not included). The command after the last one
    /// allowed is answered `421 4.7.0 <hostname> Error: too many commands` and the session closes.
    public var maxCommands: Int = 1000
    /// 4xx/5xx replies caused by the client. The reply that reaches this count is followed by
    /// `421 4.7.0 <hostname> Error: too many errors` and the session closes.
    public var maxErrors: Int = 10
    /// Messages per session (every end of DATA counts, accepted or not). The reply to the last one is
    /// followed by `421 4.7.0 <hostname> Error: too many messages` and the session closes.
    public var maxTransactions: Int = 100
    /// Advertise and accept STARTTLS (never once TLS is active).
    public var startTLSAvailable: Bool
    /// SASL mechanisms to offer, advertised only once TLS is active. Only PLAIN and LOGIN are
    /// implemented; other names are ignored. Empty = no AUTH.
    public var authMechanisms: [String]
    /// MAIL before a successful AUTH → `530 5.7.0 Authentication required`.
    public var requireAuth: Bool = false
    /// MAIL before STARTTLS → `530 5.7.0 Must issue a STARTTLS command first`.
    public var requireTLS: Bool = false
    /// Recipient domains accepted (case-insensitive, exact domain: subdomains are not included).
    /// Any local part is accepted, including subaddresses such as `support+token`.
    public var acceptedDomains: [String]
    /// Exact recipient addresses accepted (case-insensitive).
    public var acceptedAddresses: [String]

    public init(hostname: String, startTLSAvailable: Bool, authMechanisms: [String], acceptedDomains: [String],
                acceptedAddresses: [String]) {
        self.hostname = hostname
        self.startTLSAvailable = startTLSAvailable
        self.authMechanisms = authMechanisms
        self.acceptedDomains = acceptedDomains
        self.acceptedAddresses = acceptedAddresses
    }
}

/// One received message and its envelope.
public struct SMTPEnvelope: Sendable, Equatable {
    /// The first word of the EHLO/HELO argument.
    public var heloName: String
    /// Reverse-path without `<>` (source route removed); "" for the null sender.
    public var mailFrom: String
    /// Forward-paths without `<>` (source routes removed), in order, duplicates (case-insensitive) collapsed.
    public var recipients: [String]
    public var smtpUTF8: Bool
    /// "7BIT" or "8BITMIME" when the client gave BODY=.
    public var bodyType: String?
    /// The message as transmitted, dot-unstuffed, line endings as received, without the final ".\r\n".
    public var data: [UInt8]
    public var tls: Bool
    public var authenticatedUser: String?

    public init(heloName: String, mailFrom: String, recipients: [String], smtpUTF8: Bool, bodyType: String?,
                data: [UInt8], tls: Bool, authenticatedUser: String?) {
        self.heloName = heloName
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.smtpUTF8 = smtpUTF8
        self.bodyType = bodyType
        self.data = data
        self.tls = tls
        self.authenticatedUser = authenticatedUser
    }
}

/// What the channel handler must do, in order.
public enum SMTPAction: Sendable, Equatable {
    /// Bytes to write: one full reply (one or more CRLF-terminated lines).
    case send([UInt8])
    /// Follows the `.send` of `220 2.0.0 Ready to start TLS`: begin the TLS handshake now. Bytes the
    /// client had pipelined after STARTTLS were discarded (RFC 3207 5, CVE-2011-0411); this is their count.
    case startTLS(discardedPlaintextBytes: Int)
    /// Verify the credentials, then call `authenticationResult(_:)`.
    case authenticate(mechanism: String, user: String, password: String)
    /// Commit the message, then call `deliveryResult(_:)`.
    case deliver(SMTPEnvelope)
    /// Close the connection once pending writes are flushed. Always the last action of a session.
    case close
}

/// The outcome of a `.deliver`, answered to the client as the reply to DATA.
public enum SMTPDeliveryResult: Sendable, Equatable {
    /// `250 2.0.0 Ok: queued as <queueID>`
    case stored(queueID: String)
    /// Same reply as `.stored`: the message was already there.
    case duplicate(queueID: String)
    /// `451 4.3.0 Error: queue file write error`
    case temporaryFailure
    /// Answered as given, after sanitising: `code` outside 400...599 becomes 554; an enhanced code that is
    /// malformed or of another class becomes "<class>.0.0"; `text` keeps printable ASCII only (others → "?"),
    /// at most 200 characters.
    case rejected(code: Int, enhanced: String, text: String)
}

/// The server side of one SMTP connection.
public struct SMTPServerSession: Sendable {
    private enum Phase: Sendable, Equatable {
        case command
        case data
        case saslPlainResponse
        case saslLoginUser
        case saslLoginPassword(user: String)
        case awaitingAuthentication(user: String)
        case awaitingDelivery
        case awaitingTLS
        case closed
    }

    private enum LineEvent {
        case none
        case tooLong
        case line([UInt8])
    }

    static let implementedMechanisms = ["PLAIN", "LOGIN"]
    /// RFC 4954 4: a SASL response line may be up to 12,288 octets.
    static let saslLineLimit = 12_288

    private let configuration: SMTPServerConfiguration
    private let hostname: String
    private let mechanisms: [String]
    private let domains: Set<String>
    private let addresses: Set<String>
    /// Input kept while a result is awaited (pipelined commands behind DATA): more is a protocol abuse.
    private let pipelineLimit: Int

    private var phase: Phase = .command
    private var tlsActive: Bool
    private var heloName: String?
    private var authenticatedUser: String?

    // The mail transaction; `mailFrom == nil` means none.
    private var mailFrom: String?
    private var recipients: [String] = []
    private var recipientKeys: Set<String> = []
    private var smtpUTF8 = false
    private var bodyType: String?
    private var reader = DataReader(maxMessageBytes: 0, maxHeaderBytes: 0)

    // Unprocessed input: `input[readIndex...]`; no line feed in `input[readIndex..<scanIndex]`.
    private var input: [UInt8] = []
    private var readIndex = 0
    private var scanIndex = 0
    private var discardingLongLine = false
    private var inputOverflow = false

    private var commandCount = 0
    private var errorCount = 0
    private var transactionCount = 0
    private var output: [SMTPAction] = []

    public init(configuration: SMTPServerConfiguration, tlsActive: Bool = false) {
        self.configuration = configuration
        self.tlsActive = tlsActive
        let host = String(decoding: configuration.hostname.utf8.filter { $0 > 0x20 && $0 < 0x7F }, as: UTF8.self)
        self.hostname = host.isEmpty ? "localhost" : host
        var mechanisms: [String] = []
        for name in configuration.authMechanisms {
            let upper = String(decoding: Grammar.uppercased(Array(name.utf8)), as: UTF8.self)
            if Self.implementedMechanisms.contains(upper) && !mechanisms.contains(upper) { mechanisms.append(upper) }
        }
        self.mechanisms = mechanisms
        self.domains = Set(configuration.acceptedDomains.map { $0.lowercased() })
        self.addresses = Set(configuration.acceptedAddresses.map { $0.lowercased() })
        self.pipelineLimit = max(64 * 1024, configuration.maxCommandLineBytes * (configuration.maxRecipients + 8))
    }

    /// True while a `.deliver` or `.authenticate` is outstanding. The handler should stop reading meanwhile;
    /// input that still arrives is kept (up to a bound; beyond it the session closes after the result).
    public var isAwaitingResult: Bool {
        switch phase {
        case .awaitingDelivery, .awaitingAuthentication: return true
        default: return false
        }
    }

    public var isInData: Bool { phase == .data }

    // MARK: - Entry points

    /// `220 <hostname> ESMTP Switchboard`
    public mutating func greeting() -> [SMTPAction] {
        guard phase != .closed else { return [] }
        send("220 \(hostname) ESMTP Switchboard")
        return takeOutput()
    }

    /// Buffers `bytes` and processes as many complete commands (and as much DATA) as possible.
    /// While a result is awaited nothing is processed; after STARTTLS (until `tlsEstablished()`) and
    /// after `.close`, bytes are dropped.
    public mutating func receive(_ bytes: ArraySlice<UInt8>) -> [SMTPAction] {
        switch phase {
        case .closed, .awaitingTLS:
            return []
        case .awaitingDelivery, .awaitingAuthentication:
            if inputOverflow || input.count - readIndex + bytes.count > pipelineLimit {
                inputOverflow = true
            } else {
                input.append(contentsOf: bytes)
            }
            return []
        case .data where readIndex == input.count:
            // Stream straight from the caller's buffer: no copy for the bulk of a message.
            let consumed = bytes.withUnsafeBufferPointer { reader.consume($0) }
            guard let consumed else { return takeOutput() }
            compactInput()
            input.append(contentsOf: bytes[(bytes.startIndex + consumed)...])
            finishData()
        default:
            input.append(contentsOf: bytes)
        }
        run()
        return takeOutput()
    }

    /// The handler's verdict on the last `.authenticate`.
    public mutating func authenticationResult(_ ok: Bool) -> [SMTPAction] {
        guard case .awaitingAuthentication(let user) = phase else { return [] }
        phase = .command
        if ok {
            authenticatedUser = user
            reply(235, "2.7.0", "Authentication successful")
        } else {
            reply(535, "5.7.8", "Authentication credentials invalid", clientError: true)
        }
        resumeAfterResult()
        return takeOutput()
    }

    /// The handler's outcome for the last `.deliver`: the reply to DATA.
    public mutating func deliveryResult(_ result: SMTPDeliveryResult) -> [SMTPAction] {
        guard phase == .awaitingDelivery else { return [] }
        phase = .command
        switch result {
        case .stored(let queueID), .duplicate(let queueID):
            reply(250, "2.0.0", "Ok: queued as \(Self.sanitizedQueueID(queueID))")
        case .temporaryFailure:
            reply(451, "4.3.0", "Error: queue file write error")
        case .rejected(let code, let enhanced, let text):
            let code = (400...599).contains(code) ? code : 554
            reply(code, Self.sanitizedEnhancedCode(enhanced, code: code), Self.sanitizedText(text), clientError: true)
        }
        endTransaction()
        resumeAfterResult()
        return takeOutput()
    }

    /// The TLS handshake completed: back to the initial state (RFC 3207 4.2), with TLS active.
    public mutating func tlsEstablished() -> [SMTPAction] {
        guard phase != .closed else { return [] }
        tlsActive = true
        heloName = nil
        authenticatedUser = nil
        resetTransaction()
        phase = .command
        input = []
        readIndex = 0
        scanIndex = 0
        discardingLongLine = false
        inputOverflow = false
        return []
    }

    /// The daemon is stopping: `421 4.3.2 Service shutting down`, then close.
    public mutating func shutdown() -> [SMTPAction] {
        guard phase != .closed else { return [] }
        closeWith421("4.3.2", "Service shutting down")
        return takeOutput()
    }

    /// An idle or session time limit expired: `421 4.4.2 <hostname> Error: timeout exceeded`, then close.
    public mutating func timeout() -> [SMTPAction] {
        guard phase != .closed else { return [] }
        closeWith421("4.4.2", "\(hostname) Error: timeout exceeded")
        return takeOutput()
    }

    // MARK: - Processing

    private mutating func run() {
        processing: while true {
            switch phase {
            case .closed, .awaitingDelivery, .awaitingAuthentication, .awaitingTLS:
                break processing
            case .data:
                guard readIndex < input.count else { break processing }
                if let consumed = reader.consume(input, from: readIndex) {
                    readIndex += consumed
                    finishData()
                } else {
                    readIndex = input.count
                    break processing
                }
            case .command, .saslPlainResponse, .saslLoginUser, .saslLoginPassword:
                switch nextLine() {
                case .none: break processing
                case .tooLong: lineTooLong()
                case .line(let line): handle(line)
                }
            }
        }
        compactInput()
    }

    private mutating func resumeAfterResult() {
        if inputOverflow && phase != .closed {
            closeWith421("4.7.0", "\(hostname) Error: too much pipelined input")
        }
        run()
    }

    private var lineLimit: Int {
        phase == .command ? configuration.maxCommandLineBytes : max(configuration.maxCommandLineBytes, Self.saslLineLimit)
    }

    /// The next line terminated by LF (a preceding CR is removed). Bare LF is accepted as a command
    /// terminator; DATA never goes through here.
    private mutating func nextLine() -> LineEvent {
        let limit = lineLimit
        let end = input.count
        var index = max(scanIndex, readIndex)
        while index < end && input[index] != Grammar.lf { index += 1 }
        guard index < end else {
            scanIndex = end
            if discardingLongLine || end - readIndex >= limit {
                // Too long already: drop what we have and the rest of the line as it comes.
                discardingLongLine = true
                readIndex = end
            }
            return .none
        }
        let start = readIndex
        readIndex = index + 1
        scanIndex = readIndex
        if discardingLongLine {
            discardingLongLine = false
            return .tooLong
        }
        if index + 1 - start > limit { return .tooLong }
        var lineEnd = index
        if lineEnd > start && input[lineEnd - 1] == Grammar.cr { lineEnd -= 1 }
        return .line(Array(input[start..<lineEnd]))
    }

    private mutating func compactInput() {
        if readIndex >= input.count {
            input.removeAll(keepingCapacity: input.capacity <= 128 * 1024)
            readIndex = 0
            scanIndex = 0
        } else if readIndex > 0 {
            input.removeFirst(readIndex)
            scanIndex = max(0, scanIndex - readIndex)
            readIndex = 0
        }
    }

    private mutating func lineTooLong() {
        if phase == .command {
            guard countCommand() else { return }
        } else {
            phase = .command  // abandons the SASL exchange
        }
        reply(500, "5.5.2", "Error: line too long", clientError: true)
    }

    /// Counts a command; false (and the session closed) when there were too many.
    private mutating func countCommand() -> Bool {
        commandCount += 1
        guard commandCount <= configuration.maxCommands else {
            closeWith421("4.7.0", "\(hostname) Error: too many commands")
            return false
        }
        return true
    }

    private mutating func handle(_ line: [UInt8]) {
        switch phase {
        case .saslPlainResponse:
            phase = .command
            saslResponse(line) { session, decoded in session.plainCredentials(decoded) }
        case .saslLoginUser:
            phase = .command
            saslResponse(line) { session, decoded in
                guard let user = Grammar.utf8String(decoded), !user.isEmpty else {
                    session.reply(501, "5.5.2", "Error: invalid authentication data", clientError: true)
                    return
                }
                session.send("334 UGFzc3dvcmQ6")
                session.phase = .saslLoginPassword(user: user)
            }
        case .saslLoginPassword(let user):
            phase = .command
            saslResponse(line) { session, decoded in
                guard let password = Grammar.utf8String(decoded) else {
                    session.reply(501, "5.5.2", "Error: invalid authentication data", clientError: true)
                    return
                }
                session.requestAuthentication(mechanism: "LOGIN", user: user, password: password)
            }
        default:
            command(line)
        }
    }

    private mutating func command(_ line: [UInt8]) {
        guard countCommand() else { return }
        if line.contains(where: { ($0 < 0x20 && $0 != Grammar.tab) || $0 == 0x7F }) || line.isEmpty {
            reply(500, "5.5.2", "Error: bad syntax", clientError: true)
            return
        }
        guard Grammar.utf8String(line) != nil else {
            reply(500, "5.5.2", "Error: bad UTF-8 syntax", clientError: true)
            return
        }
        let space = line.firstIndex(of: Grammar.space) ?? line.endIndex
        let verb = String(decoding: Grammar.uppercased(Array(line[..<space])), as: UTF8.self)
        let arguments = space < line.endIndex ? line[(space + 1)...] : []
        switch verb {
        case "EHLO": hello(arguments, extended: true)
        case "HELO": hello(arguments, extended: false)
        case "MAIL": mail(arguments)
        case "RCPT": rcpt(arguments)
        case "DATA": data(arguments)
        case "RSET":
            if !Grammar.trimmed(arguments).isEmpty {
                reply(501, "5.5.4", "Syntax: RSET", clientError: true)
            } else {
                resetTransaction()
                reply(250, "2.0.0", "Ok")
            }
        case "NOOP": reply(250, "2.0.0", "Ok")
        case "QUIT":
            send("221 2.0.0 Bye")
            close()
        case "VRFY":
            if Grammar.trimmed(arguments).isEmpty {
                reply(501, "5.5.4", "Syntax: VRFY address", clientError: true)
            } else {
                reply(252, "2.5.2", "Cannot VRFY user")
            }
        case "HELP": reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH")
        case "STARTTLS": startTLS(arguments)
        case "AUTH": auth(arguments)
        case "BDAT", "EXPN", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML":
            reply(502, "5.5.1", "Error: command not implemented", clientError: true)
        default:
            reply(500, "5.5.2", "Error: command not recognized", clientError: true)
        }
    }

    // MARK: - Commands

    private mutating func hello(_ arguments: ArraySlice<UInt8>, extended: Bool) {
        let argument = Grammar.trimmed(arguments)
        guard !argument.isEmpty else {
            reply(501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname", clientError: true)
            return
        }
        resetTransaction()
        let name = argument.prefix { $0 != Grammar.space }
        heloName = String(decoding: name, as: UTF8.self)
        guard extended else {
            reply(250, nil, hostname)
            return
        }
        var lines = [hostname, "PIPELINING", "SIZE \(max(0, configuration.maxMessageBytes))", "8BITMIME", "SMTPUTF8",
                     "ENHANCEDSTATUSCODES"]
        if configuration.startTLSAvailable && !tlsActive { lines.append("STARTTLS") }
        if tlsActive && !mechanisms.isEmpty { lines.append("AUTH " + mechanisms.joined(separator: " ")) }
        var text = ""
        for (index, line) in lines.enumerated() {
            text += (index == lines.count - 1 ? "250 " : "250-") + line + "\r\n"
        }
        output.append(.send(Array(text.utf8)))
    }

    private mutating func mail(_ arguments: ArraySlice<UInt8>) {
        guard heloName != nil else {
            reply(503, "5.5.1", "Error: send HELO/EHLO first", clientError: true)
            return
        }
        if configuration.requireTLS && !tlsActive {
            reply(530, "5.7.0", "Must issue a STARTTLS command first", clientError: true)
            return
        }
        if configuration.requireAuth && authenticatedUser == nil {
            reply(530, "5.7.0", "Authentication required", clientError: true)
            return
        }
        guard mailFrom == nil else {
            reply(503, "5.5.1", "Error: nested MAIL command", clientError: true)
            return
        }
        guard let afterKeyword = Grammar.afterKeyword(arguments, "FROM:") else {
            reply(501, "5.5.4", "Syntax: MAIL FROM:<address>", clientError: true)
            return
        }
        guard let (path, rest) = Grammar.splitPath(afterKeyword) else {
            reply(501, "5.1.7", "Bad sender address syntax", clientError: true)
            return
        }
        guard let parameters = Grammar.parameters(rest) else {
            reply(501, "5.5.4", "Bad parameter syntax", clientError: true)
            return
        }
        var utf8 = false
        var body: String?
        for parameter in parameters {
            switch parameter.keyword {
            case "SIZE":
                guard let value = parameter.value, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    reply(501, "5.5.4", "Bad SIZE parameter syntax", clientError: true)
                    return
                }
                if Grammar.decimalExceeds(value, configuration.maxMessageBytes) {
                    reply(552, "5.3.4", "Message size exceeds fixed limit", clientError: true)
                    return
                }
            case "BODY":
                let value = parameter.value.map { String(decoding: Grammar.uppercased($0), as: UTF8.self) }
                guard let value, value == "7BIT" || value == "8BITMIME" else {
                    reply(501, "5.5.4", "Unsupported BODY parameter", clientError: true)
                    return
                }
                body = value
            case "SMTPUTF8":
                guard parameter.value == nil else {
                    reply(501, "5.5.4", "Bad SMTPUTF8 parameter syntax", clientError: true)
                    return
                }
                utf8 = true
            case "AUTH":
                break  // RFC 4954 5: we do not relay, so the original submitter is of no use.
            default:
                reply(555, "5.5.4", "Unsupported option", clientError: true)
                return
            }
        }
        var sender = ""
        if !path.isEmpty {
            guard let mailbox = Grammar.withoutSourceRoute(path) else {
                reply(501, "5.1.7", "Bad sender address syntax", clientError: true)
                return
            }
            switch Grammar.checkMailbox(mailbox, utf8Allowed: utf8) {
            case .invalid:
                reply(501, "5.1.7", "Bad sender address syntax", clientError: true)
                return
            case .needsSMTPUTF8:
                reply(553, "5.6.7", "Must declare SMTPUTF8 to send non-ASCII addresses", clientError: true)
                return
            case .valid:
                sender = String(decoding: mailbox, as: UTF8.self)
            }
        }
        mailFrom = sender
        smtpUTF8 = utf8
        bodyType = body
        reply(250, "2.1.0", "Ok")
    }

    private mutating func rcpt(_ arguments: ArraySlice<UInt8>) {
        guard mailFrom != nil else {
            reply(503, "5.5.1", "Error: need MAIL command", clientError: true)
            return
        }
        guard let afterKeyword = Grammar.afterKeyword(arguments, "TO:") else {
            reply(501, "5.5.4", "Syntax: RCPT TO:<address>", clientError: true)
            return
        }
        guard let (path, rest) = Grammar.splitPath(afterKeyword), !path.isEmpty else {
            reply(501, "5.1.3", "Bad recipient address syntax", clientError: true)
            return
        }
        // NOTIFY, ORCPT and any other parameter: accepted when well-formed, ignored.
        guard Grammar.parameters(rest) != nil else {
            reply(501, "5.5.4", "Bad parameter syntax", clientError: true)
            return
        }
        let recipient: String
        if Grammar.uppercased(Array(path)) == Array("POSTMASTER".utf8) {
            recipient = String(decoding: path, as: UTF8.self)  // RFC 5321 4.5.1: always accepted
        } else {
            guard let mailbox = Grammar.withoutSourceRoute(path) else {
                reply(501, "5.1.3", "Bad recipient address syntax", clientError: true)
                return
            }
            switch Grammar.checkMailbox(mailbox, utf8Allowed: smtpUTF8) {
            case .invalid:
                reply(501, "5.1.3", "Bad recipient address syntax", clientError: true)
                return
            case .needsSMTPUTF8:
                reply(553, "5.6.7", "Must declare SMTPUTF8 to send non-ASCII addresses", clientError: true)
                return
            case .valid:
                recipient = String(decoding: mailbox, as: UTF8.self)
            }
            guard isAccepted(recipient) else {
                reply(550, "5.7.1", "Relay access denied", clientError: true)
                return
            }
        }
        let key = recipient.lowercased()
        if recipientKeys.contains(key) {
            reply(250, "2.1.5", "Ok")
            return
        }
        guard recipients.count < configuration.maxRecipients else {
            reply(452, "4.5.3", "Error: too many recipients")
            return
        }
        recipients.append(recipient)
        recipientKeys.insert(key)
        reply(250, "2.1.5", "Ok")
    }

    private func isAccepted(_ address: String) -> Bool {
        let lowered = address.lowercased()
        if addresses.contains(lowered) { return true }
        guard let at = lowered.lastIndex(of: "@") else { return false }
        return domains.contains(String(lowered[lowered.index(after: at)...]))
    }

    private mutating func data(_ arguments: ArraySlice<UInt8>) {
        guard mailFrom != nil else {
            reply(503, "5.5.1", "Error: need MAIL command", clientError: true)
            return
        }
        guard !recipients.isEmpty else {
            reply(503, "5.5.1", "Error: need RCPT command", clientError: true)
            return
        }
        guard Grammar.trimmed(arguments).isEmpty else {
            reply(501, "5.5.4", "Syntax: DATA", clientError: true)
            return
        }
        send("354 End data with <CR><LF>.<CR><LF>")
        reader = DataReader(maxMessageBytes: configuration.maxMessageBytes, maxHeaderBytes: configuration.maxHeaderBytes)
        phase = .data
    }

    private mutating func finishData() {
        let message = reader
        reader = DataReader(maxMessageBytes: 0, maxHeaderBytes: 0)
        phase = .command
        if message.tooLarge {
            reply(552, "5.3.4", "Message size exceeds fixed maximum message size", clientError: true)
            endTransaction()
        } else if message.headerTooLarge {
            reply(552, "5.3.4", "Message header size exceeds limit", clientError: true)
            endTransaction()
        } else {
            phase = .awaitingDelivery
            output.append(.deliver(SMTPEnvelope(
                heloName: heloName ?? "", mailFrom: mailFrom ?? "", recipients: recipients, smtpUTF8: smtpUTF8,
                bodyType: bodyType, data: message.bytes, tls: tlsActive, authenticatedUser: authenticatedUser)))
        }
    }

    private mutating func endTransaction() {
        resetTransaction()
        transactionCount += 1
        if transactionCount >= configuration.maxTransactions && phase != .closed {
            closeWith421("4.7.0", "\(hostname) Error: too many messages")
        }
    }

    private mutating func resetTransaction() {
        mailFrom = nil
        recipients = []
        recipientKeys = []
        smtpUTF8 = false
        bodyType = nil
    }

    private mutating func startTLS(_ arguments: ArraySlice<UInt8>) {
        guard configuration.startTLSAvailable else {
            reply(502, "5.5.1", "Error: command not implemented", clientError: true)
            return
        }
        guard !tlsActive else {
            reply(554, "5.5.1", "Error: TLS already active", clientError: true)
            return
        }
        guard Grammar.trimmed(arguments).isEmpty else {
            reply(501, "5.5.4", "Syntax: STARTTLS", clientError: true)
            return
        }
        send("220 2.0.0 Ready to start TLS")
        // Anything pipelined behind STARTTLS arrived in plaintext and must not be acted on after the
        // handshake (RFC 3207 5; the CVE-2011-0411 command injection).
        let discarded = input.count - readIndex
        input = []
        readIndex = 0
        scanIndex = 0
        discardingLongLine = false
        output.append(.startTLS(discardedPlaintextBytes: discarded))
        phase = .awaitingTLS
    }

    private mutating func auth(_ arguments: ArraySlice<UInt8>) {
        guard heloName != nil else {
            reply(503, "5.5.1", "Error: send HELO/EHLO first", clientError: true)
            return
        }
        guard !mechanisms.isEmpty else {
            reply(503, "5.5.1", "Error: authentication not enabled", clientError: true)
            return
        }
        guard tlsActive else {
            reply(538, "5.7.11", "Encryption required for requested authentication mechanism", clientError: true)
            return
        }
        guard authenticatedUser == nil else {
            reply(503, "5.5.1", "Error: already authenticated", clientError: true)
            return
        }
        guard mailFrom == nil else {
            reply(503, "5.5.1", "Error: MAIL transaction in progress", clientError: true)
            return
        }
        let words = Grammar.trimmed(arguments).split(separator: Grammar.space)
        guard (1...2).contains(words.count) else {
            reply(501, "5.5.4", "Syntax: AUTH mechanism", clientError: true)
            return
        }
        let mechanism = String(decoding: Grammar.uppercased(Array(words[0])), as: UTF8.self)
        guard mechanisms.contains(mechanism) else {
            reply(504, "5.5.4", "Unrecognized authentication type", clientError: true)
            return
        }
        let initialResponse = words.count == 2 ? Array(words[1]) : nil
        switch (mechanism, initialResponse) {
        case ("PLAIN", nil):
            send("334 ")
            phase = .saslPlainResponse
        case ("PLAIN", let response?):
            saslResponse(response) { session, decoded in session.plainCredentials(decoded) }
        case (_, nil):
            send("334 VXNlcm5hbWU6")
            phase = .saslLoginUser
        case (_, let response?):
            phase = .saslLoginUser
            handle(response)
        }
    }

    /// Decodes one SASL response ("=" is the empty initial response, RFC 4954 4) and hands it on;
    /// "*" cancels the exchange.
    private mutating func saslResponse(_ line: [UInt8], _ next: (inout SMTPServerSession, [UInt8]) -> Void) {
        if line == [Grammar.star] {
            reply(501, "5.7.0", "Authentication aborted", clientError: true)
            return
        }
        let decoded = line == [Grammar.equals] ? [] : Grammar.base64Decode(line[...])
        guard let decoded else {
            reply(501, "5.5.2", "Error: invalid base64 data", clientError: true)
            return
        }
        next(&self, decoded)
    }

    /// PLAIN (RFC 4616): authzid NUL authcid NUL passwd. The authorization identity is ignored: the
    /// session always acts as the authenticated user.
    private mutating func plainCredentials(_ decoded: [UInt8]) {
        let parts = decoded.split(separator: 0, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[1].isEmpty,
              let user = Grammar.utf8String(Array(parts[1])), let password = Grammar.utf8String(Array(parts[2])) else {
            reply(501, "5.5.2", "Error: invalid authentication data", clientError: true)
            return
        }
        requestAuthentication(mechanism: "PLAIN", user: user, password: password)
    }

    private mutating func requestAuthentication(mechanism: String, user: String, password: String) {
        output.append(.authenticate(mechanism: mechanism, user: user, password: password))
        phase = .awaitingAuthentication(user: user)
    }

    // MARK: - Replies

    private mutating func send(_ line: String) {
        output.append(.send(Array((line + "\r\n").utf8)))
    }

    private mutating func reply(_ code: Int, _ enhanced: String?, _ text: String, clientError: Bool = false) {
        send(enhanced.map { "\(code) \($0) \(text)" } ?? "\(code) \(text)")
        guard clientError else { return }
        errorCount += 1
        if errorCount >= configuration.maxErrors {
            closeWith421("4.7.0", "\(hostname) Error: too many errors")
        }
    }

    private mutating func closeWith421(_ enhanced: String, _ text: String) {
        guard phase != .closed else { return }
        send("421 \(enhanced) \(text)")
        close()
    }

    private mutating func close() {
        output.append(.close)
        phase = .closed
        input = []
        readIndex = 0
        scanIndex = 0
        reader = DataReader(maxMessageBytes: 0, maxHeaderBytes: 0)
    }

    private mutating func takeOutput() -> [SMTPAction] {
        defer { output = [] }
        return output
    }

    static func sanitizedText(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars.prefix(200) {
            result.unicodeScalars.append(scalar.value >= 0x20 && scalar.value < 0x7F ? scalar : "?")
        }
        return result.isEmpty ? "Error" : result
    }

    static func sanitizedQueueID(_ queueID: String) -> String {
        let kept = queueID.utf8.prefix(64).map { $0 > 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "?") }
        return kept.isEmpty ? "?" : String(decoding: kept, as: UTF8.self)
    }

    /// "c.s.d" with c the code's class and s, d of one to three digits (RFC 3463); else "c.0.0".
    static func sanitizedEnhancedCode(_ enhanced: String, code: Int) -> String {
        let parts = enhanced.split(separator: ".", omittingEmptySubsequences: false)
        let digitsOK = parts.count == 3 && parts.allSatisfy { part in
            (1...3).contains(part.utf8.count) && part.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        }
        guard digitsOK, parts[0] == "\(code / 100)" else { return "\(code / 100).0.0" }
        return enhanced
    }
}

// MARK: - DATA

extension SMTPServerSession {
    /// The DATA phase, byte by byte in one pass (O(n), whatever the chunking).
    ///
    /// The message ends only at CR LF "." CR LF, where the leading CR LF may be the one that ended the DATA
    /// command (so "DATA\r\n.\r\n" is the empty message). Bare LF and bare CR never start a line, so none of
    /// "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n" ends the message: they are content (SMTP smuggling).
    /// A line that begins with ".." loses its first dot; every other byte is kept exactly, CR LF included
    /// (the CR LF before the final "." is part of the message). RFC 5321 4.5.2 would also drop the dot of
    /// a line such as ".x", which a conforming client never sends (it doubles every leading dot); keeping
    /// it keeps such a line, like any smuggling attempt, visible exactly as sent.
    struct DataReader: Sendable {
        private enum State: Sendable {
            case lineStart  // after CR LF (or at the start)
            case midLine
            case sawCR  // mid-line CR: an LF now makes a line start
            case dot  // "." at a line start, held back
            case dotCR  // "." CR at a line start, held back
        }

        private var state: State = .lineStart
        private(set) var bytes: [UInt8] = []
        /// Dot-unstuffed bytes seen, kept or not.
        private(set) var size = 0
        private(set) var tooLarge = false
        private(set) var headerTooLarge = false
        private var headerDone = false
        private var headerBytes = 0
        private var headerLineHasContent = false
        let maxMessageBytes: Int
        let maxHeaderBytes: Int

        init(maxMessageBytes: Int, maxHeaderBytes: Int) {
            self.maxMessageBytes = maxMessageBytes
            self.maxHeaderBytes = maxHeaderBytes
        }

        private var discarding: Bool { tooLarge || headerTooLarge }

        /// Consumes `buffer[start...]`: the count consumed up to and including the terminator, or nil if
        /// everything was consumed without finding it.
        mutating func consume(_ buffer: [UInt8], from start: Int) -> Int? {
            buffer.withUnsafeBufferPointer { consume(UnsafeBufferPointer(rebasing: $0[start...])) }
        }

        mutating func consume(_ buffer: UnsafeBufferPointer<UInt8>) -> Int? {
            let cr = Grammar.cr, lf = Grammar.lf, dot = Grammar.dot
            let count = buffer.count
            var index = 0
            while index < count {
                let byte = buffer[index]
                switch state {
                case .midLine:
                    if headerDone {
                        // Fast path: everything up to the next CR is plain content.
                        var end = index
                        while end < count && buffer[end] != cr { end += 1 }
                        if end > index {
                            append(UnsafeBufferPointer(rebasing: buffer[index..<end]))
                            index = end
                            continue
                        }
                    }
                    emit(byte)
                    if byte == cr { state = .sawCR }
                case .lineStart:
                    if byte == dot {
                        state = .dot
                    } else {
                        emit(byte)
                        state = byte == cr ? .sawCR : .midLine
                    }
                case .sawCR:
                    emit(byte)
                    state = byte == lf ? .lineStart : byte == cr ? .sawCR : .midLine
                case .dot:
                    if byte == cr {
                        state = .dotCR
                    } else {
                        emit(dot)  // ".." → "."; "." + anything else is kept as is
                        if byte != dot { emit(byte) }
                        state = .midLine
                    }
                case .dotCR:
                    if byte == lf { return index + 1 }
                    emit(dot)
                    emit(cr)
                    emit(byte)
                    state = byte == cr ? .sawCR : .midLine
                }
                index += 1
            }
            return nil
        }

        private mutating func emit(_ byte: UInt8) {
            size += 1
            if !headerDone {
                headerBytes += 1
                if byte == Grammar.lf {
                    if headerLineHasContent { headerLineHasContent = false } else { headerDone = true }
                } else if byte != Grammar.cr {
                    headerLineHasContent = true
                }
                if !headerDone && headerBytes > maxHeaderBytes {
                    headerTooLarge = true
                    headerDone = true
                    bytes = []
                }
            }
            guard !discarding else { return }
            if size > maxMessageBytes {
                tooLarge = true
                bytes = []
            } else {
                bytes.append(byte)
            }
        }

        private mutating func append(_ run: UnsafeBufferPointer<UInt8>) {
            size += run.count
            guard !discarding else { return }
            if size > maxMessageBytes {
                tooLarge = true
                bytes = []
            } else {
                bytes.append(contentsOf: run)
            }
        }
    }
}
