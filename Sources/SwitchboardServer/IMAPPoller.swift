import Foundation
import Logging
import ServiceLifecycle
import SwitchboardConfig
import SwitchboardCore
import SwitchboardMailTransport
import SwitchboardStore

/// Polls the configured IMAP mailboxes (libcurl) every `email.imap_poll_interval_seconds`.
///
/// The cursor is UIDVALIDITY + the last committed UID per mailbox, in the store. Each poll
/// fetches every UID above the cursor, in order, however many (in batches of
/// `email.imap_batch_size`, one after another until none are left): after an outage
/// nothing is skipped. A message is committed first; only then is it marked `\Seen` (or
/// moved to `email.imap_processed_folder`) and the cursor advanced. Nothing is ever deleted.
/// A changed UIDVALIDITY restarts the mailbox from the beginning; the Message-ID dedupe
/// keeps that from storing anything twice.
///
/// Messages are read with `BODY.PEEK[]`, which leaves `\Seen` alone: a message that could
/// not be committed (store down, load shed, a crash between fetch and commit) stays exactly
/// as unread as it was, and the cursor, still before it, fetches it again.
///
/// On failure (server down, wrong password, store unavailable): logged with the mailbox
/// and the curl error, counted in `switchboard_imap_polls_total{outcome="error"}`, and
/// tried again at the next interval. Never a patient datum in a log line.
struct IMAPPoller: Service, CustomStringConvertible {
    var description: String { "IMAPPoller" }

    let email: SwitchboardConfiguration.Email
    let store: SwitchboardStore
    let ingest: EmailIngest
    let metrics: SwitchboardMetrics
    let logger: Logger

    func run() async throws {
        guard let url = email.imapURL else { return }
        let options = MailServerOptions(url: url, username: email.imapUsername, password: email.imapPassword?.value,
                                        tls: url.lowercased().hasPrefix("imaps:") ? "none" : email.imapTLS,
                                        caFile: email.imapCAFile, timeoutMilliseconds: 60_000)
        logger.info("IMAP polling", metadata: ["mailboxes": "\(email.imapMailboxes.joined(separator: ","))",
                                               "interval_seconds": "\(email.imapPollIntervalSeconds)"])
        let account = Self.accountKey(url: url, username: email.imapUsername ?? "")
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            for mailbox in email.imapMailboxes {
                guard !Task.isShuttingDownGracefully else { break }
                var logger = logger
                logger[metadataKey: "imap.mailbox"] = "\(mailbox)"
                do {
                    // A fresh connection (and login) per mailbox and poll: a session kept open
                    // keeps its view of a selected mailbox, and a server-side UIDVALIDITY change
                    // or mailbox rebuild is only seen by a new session.
                    let client = IMAPClient(options)
                    // Logged out however the poll ends (LOGOUT failing is not an error).
                    let outcome: Result<Int, any Error>
                    do {
                        outcome = .success(try await poll(client: client, mailbox: mailbox, cursorKey: account + "/" + mailbox, logger: logger))
                    } catch {
                        outcome = .failure(error)
                    }
                    await client.logout()
                    let count = try outcome.get()
                    metrics.imapPoll(outcome: "ok")
                    if count > 0 { logger.info("IMAP poll stored mail", metadata: ["messages": "\(count)"]) }
                } catch let error as MailTransportError {
                    metrics.imapPoll(outcome: "error")
                    logger.warning("IMAP poll failed; retrying at the next interval", metadata: [
                        "error": "\(error)", "hint": "\(error.isLoginDenied ? "check email.imap_username and email.imap_password" : "-")"])
                } catch is StoreOverloaded {
                    // Not a failure: the store is shedding inbound load. The cursor stays
                    // before the message, which is fetched again at the next poll.
                    metrics.imapPoll(outcome: "shed")
                    LoadShedding.shared.refused(.email, metrics: metrics, logger: logger)
                } catch {
                    metrics.imapPoll(outcome: "error")
                    metrics.storeFailure()
                    logger.error("IMAP poll could not store mail; retrying at the next interval",
                                 metadata: ["error.type": "\(type(of: error))"])
                }
            }
            try? await cancelWhenGracefulShutdown {
                try await Task.sleep(for: .seconds(email.imapPollIntervalSeconds))
            }
        }
    }

    /// The cursor's name: server, user and mailbox (a different account never inherits a
    /// cursor). No password, no path beyond the host.
    static func accountKey(url: String, username: String) -> String {
        let host = URL(string: url)?.host ?? url
        let port = URL(string: url)?.port.map { ":\($0)" } ?? ""
        return username + "@" + host + port
    }

    /// One mailbox: everything above the cursor, in order. Returns how many were stored.
    func poll(client: IMAPClient, mailbox: String, cursorKey: String, logger: Logger) async throws -> Int {
        let status = try await client.status(mailbox: mailbox)
        var cursor = try await store.imapCursor(mailbox: cursorKey) ?? IMAPCursor(uidValidity: status.uidValidity, lastUID: 0)
        if cursor.uidValidity != status.uidValidity {
            logger.warning("IMAP UIDVALIDITY changed; re-reading the mailbox (duplicates are recognised by Message-ID)", metadata: [
                "uidvalidity.old": "\(cursor.uidValidity)", "uidvalidity.new": "\(status.uidValidity)"])
            cursor = IMAPCursor(uidValidity: status.uidValidity, lastUID: 0)
            try await store.setIMAPCursor(mailbox: cursorKey, cursor)
        }
        var stored = 0
        while !Task.isShuttingDownGracefully {
            let uids = try await client.uids(mailbox: mailbox, after: cursor.lastUID)
            guard !uids.isEmpty else { break }
            for uid in uids.prefix(email.imapBatchSize) {
                guard !Task.isShuttingDownGracefully else { break }
                let deliveryID = "imap:\(cursorKey):\(cursor.uidValidity):\(uid)"
                if try await store.hasInboundDelivery(channel: .email, deliveryID: deliveryID) {
                    // Committed before a crash that came before the cursor moved.
                    try await markProcessed(client: client, mailbox: mailbox, uid: uid)
                } else {
                    let raw: [UInt8]
                    switch try await client.fetch(mailbox: mailbox, uidValidity: cursor.uidValidity, uid: uid,
                                                  maxBytes: email.maxMessageBytes) {
                    case .message(let bytes):
                        raw = bytes
                        logger.debug("IMAP message fetched, not yet flagged", metadata: ["imap.uid": "\(uid)", "bytes": "\(bytes.count)"])
                    case .expunged:
                        // Gone since the search: nothing to read. The cursor moves past it
                        // (staying would search and skip it again forever).
                        cursor.lastUID = uid
                        try await store.setIMAPCursor(mailbox: cursorKey, cursor)
                        continue
                    case .tooLarge(let bytes):
                        // Refused like SMTP's 552; left unread in the mailbox for a person.
                        logger.warning("IMAP message over email.max_message_bytes; left in the mailbox, skipped",
                                       metadata: ["imap.uid": "\(uid)", "bytes": "\(bytes)"])
                        metrics.mailIn(source: "imap", outcome: "rejected")
                        cursor.lastUID = uid
                        try await store.setIMAPCursor(mailbox: cursorKey, cursor)
                        continue
                    }
                    do {
                        let outcome = try await ingest.ingest(raw: raw, source: .imap, deliveryID: deliveryID, recipients: [])
                        logger.info("mail received", metadata: [
                            "imap.uid": "\(uid)", "outcome": "\(outcome.label)", "message.id": "\(outcome.messageID ?? "-")",
                            "conversation.id": "\(outcome.conversationID ?? "-")", "bytes": "\(raw.count)"])
                        if case .stored = outcome { stored += 1 }
                    } catch {
                        // Read with BODY.PEEK[]: the message is still unread on the server.
                        metrics.mailIn(source: "imap", outcome: "failed")
                        throw error
                    }
                    try await markProcessed(client: client, mailbox: mailbox, uid: uid)
                }
                cursor.lastUID = uid
                try await store.setIMAPCursor(mailbox: cursorKey, cursor)
            }
        }
        return stored
    }

    /// After the commit: `\Seen`, or a move to the processed folder.
    private func markProcessed(client: IMAPClient, mailbox: String, uid: Int64) async throws {
        if let folder = email.imapProcessedFolder {
            try await client.move(mailbox: mailbox, uid: uid, to: folder)
        } else {
            try await client.setSeen(mailbox: mailbox, uid: uid, true)
        }
    }
}
