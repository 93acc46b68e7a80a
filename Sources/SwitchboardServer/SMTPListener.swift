import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import ServiceLifecycle
import Synchronization
import SwitchboardConfig
import SwitchboardCore
import SwitchboardMail
import SwitchboardStore

/// The SMTP listener: the organisation's MTA (or any sender, for the accepted domains)
/// delivers mail here. The protocol lives in `SMTPServerSession` (pure, tested on bytes);
/// this is its socket: NIO reads feed the session, its actions are carried out here.
///
/// Promises: `250` after DATA only once the message is committed (`451` when the store
/// cannot commit); mail only for the accepted domains and addresses (`550 5.7.1`
/// otherwise: no relaying); STARTTLS with the configured certificate, and whatever the
/// client pipelined in plaintext after STARTTLS is discarded; `421` on shutdown, on idle
/// and session time-outs, and to connections over `email.max_connections`.
///
/// Trusts: nothing the client sends. Logs name the connection, the delivery (queue id),
/// message and conversation ids, and reply codes — never an address, a subject or text.
public struct SMTPListenerService: Service, CustomStringConvertible {
    public var description: String { "SMTPListenerService" }

    let configuration: SwitchboardConfiguration.Email
    let ingest: EmailIngest
    let metrics: SwitchboardMetrics
    let logger: Logger
    let readiness: Readiness
    let onListening: @Sendable (SocketAddress?) async -> Void

    init(configuration: SwitchboardConfiguration.Email, ingest: EmailIngest, metrics: SwitchboardMetrics, logger: Logger,
         readiness: Readiness, onListening: @escaping @Sendable (SocketAddress?) async -> Void) {
        self.configuration = configuration
        self.ingest = ingest
        self.metrics = metrics
        self.logger = logger
        self.readiness = readiness
        self.onListening = onListening
    }

    /// The session configuration the listener gives every connection.
    static func sessionConfiguration(_ email: SwitchboardConfiguration.Email) -> SMTPServerConfiguration {
        var session = SMTPServerConfiguration(
            hostname: email.hostname, startTLSAvailable: email.startTLSAvailable,
            authMechanisms: email.authUsername == nil ? [] : ["PLAIN", "LOGIN"],
            acceptedDomains: email.acceptedDomains, acceptedAddresses: email.acceptedAddresses)
        session.maxMessageBytes = email.maxMessageBytes
        session.maxRecipients = email.maxRecipients
        session.requireAuth = email.authUsername != nil
        session.requireTLS = email.requireTLS
        return session
    }

    static func tlsContext(_ email: SwitchboardConfiguration.Email) throws -> NIOSSLContext? {
        guard let certificateFile = email.tlsCertificateFile, let keyFile = email.tlsKeyFile else { return nil }
        let chain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: tls)
    }

    public func run() async throws {
        let tls: NIOSSLContext?
        do {
            tls = try Self.tlsContext(configuration)
        } catch {
            logger.critical("SMTP TLS certificate or key cannot be loaded", metadata: [
                "certificate": "\(configuration.tlsCertificateFile ?? "")", "key": "\(configuration.tlsKeyFile ?? "")",
                "error.type": "\(type(of: error))"])
            throw error
        }
        let connections = SMTPConnections(limit: configuration.maxConnections)
        let context = SMTPConnectionContext(
            session: Self.sessionConfiguration(configuration), tls: tls, ingest: ingest, metrics: metrics, logger: logger,
            connections: connections, idleTimeout: .seconds(configuration.idleTimeoutSeconds),
            sessionTimeout: .seconds(configuration.sessionTimeoutSeconds),
            authUsername: configuration.authUsername, authPassword: configuration.authPassword?.value)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: context.idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(SMTPConnectionHandler(context))
                }
            }
            .bind(host: configuration.smtpHost, port: configuration.smtpPort).get()
        logger.info("SMTP listening", metadata: [
            "smtp.address": "\(server.localAddress?.ipAddress ?? configuration.smtpHost):\(server.localAddress?.port ?? configuration.smtpPort)",
            "starttls": "\(tls != nil)", "auth": "\(configuration.authUsername != nil)"])
        await onListening(server.localAddress)
        await withGracefulShutdownHandler {
            try? await server.closeFuture.get()
        } onGracefulShutdown: {
            // Intake stops: no new connections; every open session is told 421 (a session
            // committing a message answers it first).
            server.close(promise: nil)
            connections.shutdownAll()
        }
        // Give sessions in the middle of a commit the time to answer it.
        for _ in 0..<50 where connections.count > 0 {
            try? await Task.sleep(for: .milliseconds(100))
        }
        logger.info("SMTP listener stopped")
    }
}

/// What every connection handler shares.
struct SMTPConnectionContext: Sendable {
    let session: SMTPServerConfiguration
    let tls: NIOSSLContext?
    let ingest: EmailIngest
    let metrics: SwitchboardMetrics
    let logger: Logger
    let connections: SMTPConnections
    let idleTimeout: TimeAmount
    let sessionTimeout: TimeAmount
    let authUsername: String?
    let authPassword: String?

    /// Constant-time comparison of the AUTH credentials.
    func verify(user: String, password: String) -> Bool {
        guard let authUsername, let authPassword else { return false }
        // Both compared in full, whichever is wrong: no timing hint about which one it was.
        let userMatches = ConstantTime.equal(user, authUsername)
        let passwordMatches = ConstantTime.equal(password, authPassword)
        return userMatches && passwordMatches
    }
}

/// The open connections: counted for the limit, told to stop on shutdown.
final class SMTPConnections: Sendable {
    private struct State {
        var open: [ObjectIdentifier: @Sendable () -> Void] = [:]
        var shuttingDown = false
    }
    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    var count: Int { state.withLock { $0.open.count } }
    var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// Registers a connection; false when over the limit or shutting down.
    func admit(_ id: ObjectIdentifier, shutdown: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            guard !state.shuttingDown, state.open.count < limit else { return false }
            state.open[id] = shutdown
            return true
        }
    }

    func remove(_ id: ObjectIdentifier) { _ = state.withLock { $0.open.removeValue(forKey: id) } }

    func shutdownAll() {
        let callbacks = state.withLock { state in
            state.shuttingDown = true
            return Array(state.open.values)
        }
        callbacks.forEach { $0() }
    }
}

/// One SMTP connection: bytes in → session → actions out. Runs on the channel's event loop;
/// the store commit runs in a task and its result hops back to the loop.
final class SMTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let context: SMTPConnectionContext
    private var session: SMTPServerSession
    private var logger: Logger
    private let connectionID = Identifier.make(prefix: "smtp")
    private var admitted = false
    private var closing = false
    private var readPending = false
    private var shutdownRequested = false
    /// The session time limit passed while a message was being committed.
    private var timeLimitReached = false
    private var sessionTimer: Scheduled<Void>?

    init(_ context: SMTPConnectionContext) {
        self.context = context
        self.session = SMTPServerSession(configuration: context.session)
        self.logger = context.logger
        logger[metadataKey: "smtp.connection"] = "\(connectionID)"
    }

    func handlerAdded(context channelContext: ChannelHandlerContext) {
        // The sending MTA's address (an organisation's relay, not a patient datum): what an
        // operator needs to trace AUTH guessing or a misbehaving client.
        if let address = channelContext.channel.remoteAddress?.ipAddress {
            logger[metadataKey: "source.address"] = "\(address)"
        }
    }

    func channelActive(context channelContext: ChannelHandlerContext) {
        let loop = channelContext.eventLoop
        let bound = NIOLoopBound((self, channelContext), eventLoop: loop)
        admitted = context.connections.admit(ObjectIdentifier(self)) {
            loop.execute { bound.value.0.shutdown(context: bound.value.1) }
        }
        context.metrics.smtpConnections(context.connections.count)
        guard admitted else {
            let shuttingDown = context.connections.isShuttingDown
            logger.notice(shuttingDown ? "SMTP connection refused: shutting down" : "SMTP connection refused: too many connections",
                          metadata: ["limit": "\(context.connections.limit)"])
            context.metrics.smtpRefused(reason: shuttingDown ? "closing" : "connection_limit")
            let text = shuttingDown
                ? "421 4.3.2 \(context.session.hostname) Service shutting down, try again later\r\n"
                : "421 4.7.0 \(context.session.hostname) Error: too many connections, try again later\r\n"
            closing = true
            channelContext.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text))).whenComplete { _ in
                bound.value.1.close(promise: nil)
            }
            return
        }
        logger.debug("SMTP connection opened")
        sessionTimer = loop.scheduleTask(in: context.sessionTimeout) {
            let (handler, ctx) = bound.value
            handler.logger.notice("SMTP session time limit reached")
            // A message being committed gets its answer first; the 421 follows it.
            if handler.session.isAwaitingResult {
                handler.timeLimitReached = true
            } else {
                handler.perform(handler.session.timeout(), context: ctx)
            }
        }
        perform(session.greeting(), context: channelContext)
    }

    func channelInactive(context channelContext: ChannelHandlerContext) {
        sessionTimer?.cancel()
        if admitted {
            context.connections.remove(ObjectIdentifier(self))
            context.metrics.smtpConnections(context.connections.count)
        }
        logger.debug("SMTP connection closed")
        channelContext.fireChannelInactive()
    }

    func channelRead(context channelContext: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var buffer = unwrapInboundIn(data)
        guard let bytes = buffer.readBytes(length: buffer.readableBytes) else { return }
        perform(session.receive(bytes[...]), context: channelContext)
    }

    func userInboundEventTriggered(context channelContext: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, !session.isAwaitingResult {
            logger.notice("SMTP idle time-out")
            perform(session.timeout(), context: channelContext)
            return
        }
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            logger.debug("SMTP TLS established")
            perform(session.tlsEstablished(), context: channelContext)
            return
        }
        channelContext.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context channelContext: ChannelHandlerContext, error: any Error) {
        // TLS handshake failures and resets: nothing was acknowledged that is not stored.
        logger.notice("SMTP connection error", metadata: ["error.type": "\(type(of: error))"])
        closing = true
        channelContext.close(promise: nil)
    }

    /// Back-pressure: while a commit or an AUTH check is outstanding, stop reading (the
    /// session would only buffer what a pipelining client sends meanwhile).
    func read(context channelContext: ChannelHandlerContext) {
        if session.isAwaitingResult {
            readPending = true
        } else {
            channelContext.read()
        }
    }

    private func resumeReading(_ channelContext: ChannelHandlerContext) {
        if readPending && !session.isAwaitingResult {
            readPending = false
            channelContext.read()
        }
    }

    private func shutdown(context channelContext: ChannelHandlerContext) {
        guard !closing else { return }
        shutdownRequested = true
        // A commit in progress answers first; `deliveryFinished` then sends the 421.
        guard !session.isAwaitingResult else { return }
        perform(session.shutdown(), context: channelContext)
    }

    /// Carries out the session's actions in order.
    private func perform(_ actions: [SMTPAction], context channelContext: ChannelHandlerContext) {
        var wrote = false
        for action in actions {
            switch action {
            case .send(let bytes):
                channelContext.write(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
                wrote = true
                countRefusal(bytes)
            case .startTLS(let discarded):
                channelContext.flush()
                wrote = false
                if discarded > 0 {
                    logger.warning("SMTP client pipelined commands after STARTTLS; discarded",
                                   metadata: ["bytes": "\(discarded)"])
                    context.metrics.smtpRefused(reason: "starttls_injection")
                }
                guard let tls = context.tls else {
                    closing = true
                    channelContext.close(promise: nil)
                    return
                }
                do {
                    try channelContext.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
                } catch {
                    logger.error("SMTP STARTTLS could not start", metadata: ["error.type": "\(type(of: error))"])
                    closing = true
                    channelContext.close(promise: nil)
                    return
                }
            case .authenticate(let mechanism, let user, let password):
                let ok = context.verify(user: user, password: password)
                if !ok {
                    // Counted once, as the 535 reply (reason "auth").
                    logger.warning("SMTP AUTH failed", metadata: ["mechanism": "\(mechanism)"])
                }
                if wrote { channelContext.flush() }
                wrote = false
                perform(session.authenticationResult(ok), context: channelContext)
                return
            case .deliver(let envelope):
                if wrote { channelContext.flush() }
                deliver(envelope, context: channelContext)
                return
            case .close:
                closing = true
                // Close once everything written before (the last reply) has gone out.
                let channel = channelContext.channel
                channelContext.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in
                    channel.close(promise: nil)
                }
                return
            }
        }
        if wrote { channelContext.flush() }
        resumeReading(channelContext)
    }

    /// Counts refusals by reply code (never logs the reply, which names nothing anyway).
    private func countRefusal(_ bytes: [UInt8]) {
        guard bytes.count >= 3, bytes[0] == UInt8(ascii: "4") || bytes[0] == UInt8(ascii: "5") else { return }
        let code = String(decoding: bytes.prefix(3), as: UTF8.self)
        let reason: String
        switch code {
        case "550": reason = "relay_denied"
        case "552": reason = "too_large"
        case "421": reason = "closing"
        // 4.3.2 is load shedding (the write queue full), counted apart from a store failure.
        case "451": reason = bytes.starts(with: Array("451 4.3.2".utf8)) ? "overloaded" : "store_unavailable"
        case "535", "538", "530": reason = "auth"
        case "500", "501", "502", "503", "504", "555", "553": reason = "protocol"
        default: reason = "other"
        }
        context.metrics.smtpRefused(reason: reason)
    }

    /// Commits the message off the event loop, then answers on it.
    private func deliver(_ envelope: SMTPEnvelope, context channelContext: ChannelHandlerContext) {
        let queueID = Identifier.make(prefix: "q")
        let ingest = context.ingest
        let logger = logger
        let bound = NIOLoopBound((self, channelContext), eventLoop: channelContext.eventLoop)
        let recipients = envelope.recipients.filter { ingest.isOurs($0) || $0.lowercased() == "postmaster" }
        let data = envelope.data
        let loop = channelContext.eventLoop
        Task {
            let result: SMTPDeliveryResult
            do {
                let outcome = try await ingest.ingest(raw: data, source: .smtp, deliveryID: "smtp:" + queueID, recipients: recipients)
                logger.info("mail received", metadata: [
                    "smtp.queue_id": "\(queueID)", "outcome": "\(outcome.label)", "message.id": "\(outcome.messageID ?? "-")",
                    "conversation.id": "\(outcome.conversationID ?? "-")", "bytes": "\(data.count)", "tls": "\(envelope.tls)"])
                if case .duplicate = outcome {
                    result = .duplicate(queueID: queueID)
                } else {
                    result = .stored(queueID: queueID)
                }
            } catch is StoreOverloaded {
                LoadShedding.shared.refused(.email, metrics: ingest.metrics, logger: logger)
                ingest.metrics.mailIn(source: "smtp", outcome: "shed")
                result = .rejected(code: 451, enhanced: "4.3.2", text: "Server busy, try again later")
            } catch {
                logger.error("mail could not be stored; answered 451", metadata: [
                    "smtp.queue_id": "\(queueID)", "error.type": "\(type(of: error))"])
                ingest.metrics.storeFailure()
                ingest.metrics.mailIn(source: "smtp", outcome: "failed")
                result = .temporaryFailure
            }
            loop.execute {
                let (handler, ctx) = bound.value
                handler.deliveryFinished(result, context: ctx)
            }
        }
    }

    private func deliveryFinished(_ result: SMTPDeliveryResult, context channelContext: ChannelHandlerContext) {
        guard channelContext.channel.isActive else { return }
        perform(session.deliveryResult(result), context: channelContext)
        guard !closing, !session.isAwaitingResult else { return }
        if shutdownRequested {
            perform(session.shutdown(), context: channelContext)
        } else if timeLimitReached {
            perform(session.timeout(), context: channelContext)
        }
    }
}
