import Foundation
import GRDB
import SwitchboardCore

/// Who an event is for. Resolved when it is read, against the reader's role and teams.
public enum EventAudience: String, Sendable {
    /// Only `agent_id` (and admins).
    case agent
    /// The conversation's agent — or, while unassigned, the agents of its team (everyone
    /// for no team) — and the team's supervisors.
    case conversation
    /// The supervisors of `team_id` (of every team when nil).
    case supervisors
}

/// One event of the live stream. `data` carries identifiers and states, never message
/// text or contact details: a client fetches those through the audited API.
public struct StreamEvent: Sendable, Equatable {
    public var seq: Int64
    public var at: Int64
    public var kind: String
    public var conversationID: String?
    public var dataJSON: String
}

/// The event stream agents follow, and internal notes. Events are written in the same
/// transaction as the change they report: an event exists if and only if its change does.
extension SwitchboardStore {
    static func event(_ db: Database, kind: String, audience: EventAudience, agentID: String?, teamID: String?,
                      conversationID: String?, data: [String: Any], now: Int64) throws {
        var data = data
        if let conversationID { data["conversation_id"] = conversationID }
        try db.execute(cachedSQL: """
            INSERT INTO events (at, kind, audience, agent_id, team_id, conversation_id, data) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [now, kind, audience.rawValue, agentID, teamID, conversationID, jsonText(data)])
    }

    /// An event for whoever follows the conversation now: its agent, or its team while it
    /// is unassigned (and the team's supervisors).
    static func conversationEvent(_ db: Database, kind: String, conversationID: String, data: [String: Any], now: Int64) throws {
        let placement = try Row.fetchOne(db, cachedSQL: "SELECT assignee_id, team_id FROM conversations WHERE id = ?", arguments: [conversationID])
        try event(db, kind: kind, audience: .conversation, agentID: placement?["assignee_id"], teamID: placement?["team_id"],
                  conversationID: conversationID, data: data, now: now)
    }

    /// A message's delivery status changed.
    static func messageStatusEvent(_ db: Database, messageID: String, conversationID: String, status: DeliveryStatus,
                                   now: Int64) throws {
        try conversationEvent(db, kind: "message.status", conversationID: conversationID,
                              data: ["message_id": messageID, "status": status.rawValue], now: now)
    }

    /// Events after `seq` that `agent` may see, oldest first.
    public func events(for agent: Agent, after seq: Int64, limit: Int = 500) async throws -> [StreamEvent] {
        try await pool.read { db in
            try Row.fetchAll(db, cachedSQL: """
                SELECT e.seq, e.at, e.kind, e.conversation_id, e.data FROM events e
                WHERE e.seq > ? AND (? OR e.agent_id = ?
                    OR (e.audience = 'conversation' AND e.agent_id IS NULL
                        AND (e.team_id IS NULL OR e.team_id IN (SELECT team_id FROM agent_teams WHERE agent_id = ?)))
                    OR (e.audience IN ('conversation','supervisors') AND ?
                        AND (e.team_id IS NULL OR e.team_id IN (SELECT team_id FROM agent_teams WHERE agent_id = ?))))
                ORDER BY e.seq LIMIT ?
                """, arguments: [seq, agent.role == .admin, agent.id, agent.id, agent.role == .supervisor, agent.id, limit]).map {
                StreamEvent(seq: $0["seq"], at: $0["at"], kind: $0["kind"], conversationID: $0["conversation_id"], dataJSON: $0["data"])
            }
        }
    }

    /// The newest sequence number, and the oldest one still retained (nil when none is).
    public func eventBounds() async throws -> (newest: Int64, oldestRetained: Int64?) {
        try await pool.read { db in
            let newest = try Int64.fetchOne(db, cachedSQL: "SELECT seq FROM sqlite_sequence WHERE name = 'events'") ?? 0
            let oldest = try Int64.fetchOne(db, cachedSQL: "SELECT MIN(seq) FROM events")
            return (newest, oldest)
        }
    }

    /// Retention: deletes the events up to the newest one older than `cutoff` — a prefix of
    /// the sequence, so that what remains has no hole a reconnecting client could fall into.
    /// Returns how many.
    @discardableResult
    public func pruneEvents(olderThan cutoff: Int64) async throws -> Int {
        try await write { db in
            guard let through = try Int64.fetchOne(db, cachedSQL: "SELECT MAX(seq) FROM events WHERE at < ?", arguments: [cutoff]) else { return 0 }
            try db.execute(cachedSQL: "DELETE FROM events WHERE seq <= ?", arguments: [through])
            return db.changesCount
        }
    }

    /// An internal note on a conversation: visible to agents, never sent to the patient.
    public func addNote(conversationID id: String, by agent: Agent, text: String, sourceAddress: String? = nil,
                        now: Int64 = Timestamp.now()) async throws -> MessageView {
        let text = text.trimmingWhitespace()
        guard !text.isEmpty else { throw StoreError.invalid("text must not be empty") }
        return try await scoped(id, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            let messageID = try Self.insertNote(db, conversation: conversation, agentID: agent.id, text: text, now: now)
            return MessageView(id: messageID, direction: .note, senderAgentID: agent.id, channel: conversation.channel,
                               text: text, sentAt: now, createdAt: now, deliveryStatus: nil, failureReason: nil)
        }
    }

    static func insertNote(_ db: Database, conversation: ConversationSummary, agentID: String, text: String, now: Int64) throws -> String {
        let messageID = Identifier.makeOrdered(prefix: "msg")
        try db.execute(cachedSQL: """
            INSERT INTO messages (id, conversation_id, direction, sender_kind, sender_agent_id, channel, body_text, sent_at, created_at, seq)
            VALUES (?, ?, 'note', 'agent', ?, ?, ?, ?, ?, \(Schema.nextMessageSeq))
            """, arguments: [messageID, conversation.id, agentID, conversation.channel.rawValue, text, now, now])
        try audit(db, actorKind: "agent", actorID: agentID, action: "note.added", conversationID: conversation.id,
                  messageID: messageID, now: now)
        try event(db, kind: "note.created", audience: .conversation, agentID: conversation.assigneeID, teamID: conversation.teamID,
                  conversationID: conversation.id, data: ["message_id": messageID], now: now)
        return messageID
    }

    /// Checks a transfer is allowed (visible conversation, existing target) and records the
    /// note that goes with it. The router then moves the conversation.
    public func prepareTransfer(conversationID id: String, by agent: Agent, toAgent: String?, toTeam: String?, note: String?,
                                sourceAddress: String? = nil, now: Int64 = Timestamp.now()) async throws -> (toAgent: String?, toTeam: String?) {
        try await scoped(id, agent: agent, sourceAddress: sourceAddress, now: now) { db in
            let conversation = try Self.visibleConversation(db, id: id, agent: agent)
            guard conversation.status != .resolved else { throw StoreError.conflict("the conversation is resolved; reopen it first") }
            if conversation.assigneeID != nil, conversation.assigneeID != agent.id, agent.role == .agent {
                throw StoreError.conflict("the conversation is assigned to another agent")
            }
            var targetAgent: String?
            if let toAgent {
                guard try Bool.fetchOne(db, cachedSQL: "SELECT 1 FROM agents WHERE id = ? AND active = 1", arguments: [toAgent]) == true else {
                    throw StoreError.invalid("to_agent: no such agent")
                }
                targetAgent = toAgent
            }
            var targetTeam: String?
            if let toTeam {
                guard let teamID = try String.fetchOne(db, cachedSQL: "SELECT id FROM teams WHERE id = ? OR name = ?", arguments: [toTeam, toTeam]) else {
                    throw StoreError.invalid("to_team: no such team")
                }
                targetTeam = teamID
                try db.execute(cachedSQL: "UPDATE conversations SET team_id = ?, updated_at = ? WHERE id = ?", arguments: [teamID, now, id])
            }
            if let note = note?.trimmingWhitespace(), !note.isEmpty {
                _ = try Self.insertNote(db, conversation: conversation, agentID: agent.id, text: note, now: now)
            }
            try Self.audit(db, actorKind: "agent", actorID: agent.id, action: "conversation.transferred", conversationID: id, now: now)
            try Self.event(db, kind: "conversation.transferred", audience: .conversation, agentID: conversation.assigneeID,
                           teamID: targetTeam ?? conversation.teamID, conversationID: id,
                           data: ["from_agent_id": conversation.assigneeID ?? NSNull(), "to_agent_id": targetAgent ?? NSNull(),
                                  "to_team_id": targetTeam ?? NSNull()], now: now)
            return (targetAgent, targetTeam)
        }
    }
}

/// Keeps a commit observation alive; cancelled when released.
public final class CommitObservation: Sendable {
    private let observer: TableCommitObserver
    private let pool: DatabasePool

    init(observer: TableCommitObserver, pool: DatabasePool) {
        self.observer = observer
        self.pool = pool
    }

    /// Stops the calls. Released without it, the observation ends too (GRDB holds the
    /// observer weakly); never call this from inside a store write.
    public func cancel() { pool.remove(transactionObserver: observer) }
}

/// Hears of every committed transaction that inserted, updated or deleted rows of one table.
///
/// Why not GRDB's `DatabaseRegionObservation`: SQLite's writer asks every observer about every
/// statement it runs, and a region observer answers by building a `DatabaseRegion` each time;
/// with two of them that was about 5% of the daemon's CPU while storing messages (perf,
/// BENCHMARKS.md). This one compares a table name, and stops listening for the rest of a
/// transaction as soon as it has seen one change.
/// Trusts: GRDB to call it only on the writer's queue, one transaction at a time, which is what
/// makes `changed` safe without a lock. On failure: a rolled-back transaction is not reported.
final class TableCommitObserver: TransactionObserver, @unchecked Sendable {
    private let table: [UInt8]
    private let onCommit: @Sendable () -> Void
    private var changed = false

    init(table: String, onCommit: @escaping @Sendable () -> Void) {
        self.table = ASCII.lowercased(table.utf8)
        self.onCommit = onCommit
    }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        // ASCII case-insensitively, as SQLite compares table names.
        ASCII.equalsIgnoringCase(eventKind.tableName.utf8, lowercase: table)
    }

    func databaseDidChange(with event: DatabaseEvent) {
        changed = true
        stopObservingDatabaseChangesUntilNextTransaction()
    }

    func databaseDidCommit(_ db: Database) {
        guard changed else { return }
        changed = false
        onCommit()
    }

    func databaseDidRollback(_ db: Database) {
        changed = false
    }
}

extension SwitchboardStore {
    /// Calls `onChange` after every committed transaction that wrote to `table` — how the
    /// router and the event stream learn of new signals and events without polling, from
    /// whichever part of the daemon wrote them. `onChange` runs on the writer's queue, right
    /// after the commit: it must only hand the news on (signal a wake-up), never wait.
    public func observeCommits(to table: String, _ onChange: @escaping @Sendable () -> Void) -> CommitObservation {
        let observer = TableCommitObserver(table: table, onCommit: onChange)
        pool.add(transactionObserver: observer, extent: .observerLifetime)
        return CommitObservation(observer: observer, pool: pool)
    }
}
