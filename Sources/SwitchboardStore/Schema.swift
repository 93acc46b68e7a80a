import GRDB

/// Named, append-only migrations. A shipped migration is never edited: change the schema
/// with a new one. They use SQL only, never application types, so that they mean tomorrow
/// what they mean today.
///
/// The schema carries the invariants (trust SQLite more than ourselves): enumerations are
/// CHECKed, every reference is a foreign key, and each channel's own message id is UNIQUE
/// per channel — the dedupe key behind "nothing is stored twice".
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("2026-11-29-foundation") { db in
            try db.execute(sql: foundation)
        }
        migrator.registerMigration("2026-11-29-sms") { db in
            try db.execute(sql: sms)
        }
        migrator.registerMigration("2026-11-29-triage") { db in
            try db.execute(sql: triage)
        }
        migrator.registerMigration("2026-11-29-rules") { db in
            try db.execute(sql: rules)
        }
        migrator.registerMigration("2026-11-29-router") { db in
            try db.execute(sql: router)
        }
        migrator.registerMigration("2026-11-29-router-sla") { db in
            try db.execute(sql: routerSLA)
        }
        migrator.registerMigration("2026-11-29-operations") { db in
            try db.execute(sql: operations)
        }
        migrator.registerMigration("2026-11-29-audit-chain") { db in
            // Hash-chained audit rows; the rows already there are chained in id order.
            // (Code, not only SQL: SQLite has no SHA-256. AuditChain's v1 form is frozen.)
            try db.execute(sql: """
                ALTER TABLE audit_events ADD COLUMN prev_hash BLOB;
                ALTER TABLE audit_events ADD COLUMN hash BLOB;
                """)
            try AuditChain.rechainAll(db)
            // From now on rows are only appended: changing or deleting one takes dropping
            // these triggers first (and still breaks the chain).
            try db.execute(sql: """
                CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
                CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
                """)
        }
        migrator.registerMigration("2026-11-29-email") { db in
            try db.execute(sql: email)
        }
        migrator.registerMigration("2026-12-07-chat") { db in
            try db.execute(sql: chat)
        }
        migrator.registerMigration("2026-12-07-audit-mac") { db in
            // HMAC of each row's hash with a key kept outside the database (AuditChain).
            try db.execute(sql: "ALTER TABLE audit_events ADD COLUMN mac BLOB")
        }
        migrator.registerMigration("2026-12-07-inbound-queue") { db in
            try db.execute(sql: inboundQueue)
        }
        migrator.registerMigration("2026-12-08-messages-seq-inline") { db in
            // The store's INSERTs now set `seq` themselves (`nextMessageSeq`): the trigger's
            // UPDATE wrote every new message row and its index entries a second time. It
            // stays for any INSERT that leaves `seq` out, so no row is ever without one.
            try db.execute(sql: """
                DROP TRIGGER messages_seq;
                CREATE TRIGGER messages_seq AFTER INSERT ON messages WHEN NEW.seq IS NULL
                BEGIN UPDATE messages SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages) WHERE rowid = NEW.rowid; END;
                """)
        }
        migrator.registerMigration("2026-12-08-inbound-queue-appends-only") { db in
            // Receipt's INSERT now writes only at the queue's end. The delivery id's UNIQUE
            // index took a random page per delivery (ids are the sender's, in no order), so
            // every commit wrote a 4 KiB WAL frame for each acknowledgement it carried. A
            // delivery repeated while it waits is now queued again and recognised, from the
            // journal, when it is stored (the journal's and messages' own UNIQUE indexes are
            // what keep anything from being stored twice). SQLite drops a UNIQUE constraint
            // only by rebuilding the table; what is queued keeps its ids and order.
            try db.execute(sql: """
                CREATE TABLE inbound_queue_appending (\(inboundQueueColumns));
                INSERT INTO inbound_queue_appending (id, channel, external_id, received_at, raw, fields, failed_at, failure)
                    SELECT id, channel, external_id, received_at, raw, fields, failed_at, failure FROM inbound_queue ORDER BY id;
                DROP TABLE inbound_queue;
                ALTER TABLE inbound_queue_appending RENAME TO inbound_queue;
                CREATE INDEX inbound_queue_waiting ON inbound_queue(id) WHERE failed_at IS NULL;
                """)
        }
        return migrator
    }

    /// A new message's `seq`, as an SQL expression for its INSERT: one more than the largest
    /// so far (the chat stream's order, which a resuming widget relies on only ever growing).
    static let nextMessageSeq = "(SELECT COALESCE(MAX(seq), 0) + 1 FROM messages)"

    private static let channels = "('email','sms','chat','portal')"

    private static let foundation = """
        CREATE TABLE contacts (
            id           TEXT PRIMARY KEY NOT NULL,
            display_name TEXT,
            created_at   INTEGER NOT NULL,
            updated_at   INTEGER NOT NULL
        );
        CREATE TABLE contact_identities (
            id         INTEGER PRIMARY KEY,
            contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            kind       TEXT NOT NULL CHECK (kind IN ('email','phone','portal','chat')),
            value      TEXT NOT NULL CHECK (length(value) > 0),
            created_at INTEGER NOT NULL,
            UNIQUE (kind, value)
        );
        CREATE INDEX contact_identities_by_contact ON contact_identities(contact_id);

        CREATE TABLE teams (
            id         TEXT PRIMARY KEY NOT NULL,
            name       TEXT NOT NULL UNIQUE CHECK (length(name) > 0),
            created_at INTEGER NOT NULL
        );
        CREATE TABLE agents (
            id         TEXT PRIMARY KEY NOT NULL,
            name       TEXT NOT NULL CHECK (length(name) > 0),
            email      TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (email LIKE '%_@_%'),
            role       TEXT NOT NULL DEFAULT 'agent' CHECK (role IN ('agent','supervisor','admin')),
            active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            created_at INTEGER NOT NULL
        );
        CREATE TABLE agent_teams (
            agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            team_id  TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
            PRIMARY KEY (agent_id, team_id)
        ) WITHOUT ROWID;
        -- Tokens are stored as SHA-256 digests only: the clear token is shown once.
        CREATE TABLE api_tokens (
            id           INTEGER PRIMARY KEY,
            agent_id     TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            token_hash   BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
            created_at   INTEGER NOT NULL,
            last_used_at INTEGER,
            revoked_at   INTEGER
        );

        CREATE TABLE conversations (
            id                    TEXT PRIMARY KEY NOT NULL,
            contact_id            TEXT NOT NULL REFERENCES contacts(id),
            channel               TEXT NOT NULL CHECK (channel IN \(channels)),
            external_thread_id    TEXT CHECK (external_thread_id IS NULL OR length(external_thread_id) > 0),
            status                TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','pending','snoozed','resolved')),
            priority              TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('emergency','urgent','normal','low')),
            intent                TEXT,
            language              TEXT,
            team_id               TEXT REFERENCES teams(id),
            assignee_id           TEXT REFERENCES agents(id),
            created_at            INTEGER NOT NULL,
            updated_at            INTEGER NOT NULL,
            last_message_at       INTEGER NOT NULL,
            resolved_at           INTEGER,
            first_response_due_at INTEGER,
            next_response_due_at  INTEGER,
            UNIQUE (channel, external_thread_id),
            CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
        );
        CREATE INDEX conversations_by_contact ON conversations(contact_id, channel, status, last_message_at);
        CREATE INDEX conversations_by_status ON conversations(status, last_message_at);
        CREATE INDEX conversations_by_assignee ON conversations(assignee_id, status);

        CREATE TABLE messages (
            id                  TEXT PRIMARY KEY NOT NULL,
            conversation_id     TEXT NOT NULL REFERENCES conversations(id),
            direction           TEXT NOT NULL CHECK (direction IN ('inbound','outbound','note')),
            sender_kind         TEXT NOT NULL CHECK (sender_kind IN ('contact','agent','bot','system')),
            sender_agent_id     TEXT REFERENCES agents(id),
            channel             TEXT NOT NULL CHECK (channel IN \(channels)),
            external_id         TEXT,
            body_text           TEXT NOT NULL,
            body_html           TEXT,
            sent_at             INTEGER NOT NULL,
            created_at          INTEGER NOT NULL,
            delivery_status     TEXT CHECK (delivery_status IN ('queued','sent','delivered','failed')),
            delivery_updated_at INTEGER,
            failure_reason      TEXT,
            UNIQUE (channel, external_id),
            CHECK ((direction = 'outbound') = (delivery_status IS NOT NULL)),
            CHECK ((sender_kind = 'agent') = (sender_agent_id IS NOT NULL))
        );
        CREATE INDEX messages_by_conversation ON messages(conversation_id, created_at);

        -- Raw inbound exactly as received, committed in the same transaction as the message
        -- it produced, before the channel is acknowledged. (channel, external_id) is the
        -- delivery's own id (a webhook-id), so a redelivery finds its first answer here.
        CREATE TABLE inbound_journal (
            id              INTEGER PRIMARY KEY,
            channel         TEXT NOT NULL CHECK (channel IN \(channels)),
            external_id     TEXT NOT NULL CHECK (length(external_id) > 0),
            received_at     INTEGER NOT NULL,
            raw             BLOB NOT NULL,
            outcome         TEXT NOT NULL CHECK (outcome IN ('stored','duplicate_message')),
            message_id      TEXT NOT NULL REFERENCES messages(id),
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            UNIQUE (channel, external_id)
        );

        -- One row per outbound message to deliver. `pending` rows of one conversation are
        -- delivered strictly in id order; `dead` is the dead-letter state.
        CREATE TABLE outbox (
            id              INTEGER PRIMARY KEY,
            message_id      TEXT NOT NULL UNIQUE REFERENCES messages(id),
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            channel         TEXT NOT NULL CHECK (channel IN \(channels)),
            state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','dead')),
            attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            next_attempt_at INTEGER NOT NULL,
            last_error      TEXT,
            created_at      INTEGER NOT NULL,
            finished_at     INTEGER,
            CHECK ((state = 'pending') = (finished_at IS NULL))
        );
        CREATE INDEX outbox_pending ON outbox(state, conversation_id, id);

        -- Who did what to which conversation, and when. Never message text.
        CREATE TABLE audit_events (
            id              INTEGER PRIMARY KEY,
            at              INTEGER NOT NULL,
            actor_kind      TEXT NOT NULL CHECK (actor_kind IN ('agent','system','channel','admin')),
            actor_id        TEXT,
            action          TEXT NOT NULL CHECK (length(action) > 0),
            conversation_id TEXT REFERENCES conversations(id),
            message_id      TEXT REFERENCES messages(id),
            source_address  TEXT
        );
        CREATE INDEX audit_events_by_conversation ON audit_events(conversation_id, at);
        """

    /// SMS: which gateway and numbers a conversation uses, attachment references (MMS),
    /// the opt-out consent state and its history, and the purpose of an outbox item
    /// (compliance replies such as a STOP confirmation go out even to an opted-out number).
    private static let sms = """
        ALTER TABLE conversations ADD COLUMN gateway TEXT CHECK (gateway IN ('twilio','kannel'));
        ALTER TABLE conversations ADD COLUMN local_address TEXT;
        ALTER TABLE conversations ADD COLUMN remote_address TEXT;
        CREATE INDEX conversations_by_remote ON conversations(channel, remote_address, status, last_message_at);

        CREATE TABLE attachments (
            id           INTEGER PRIMARY KEY,
            message_id   TEXT NOT NULL REFERENCES messages(id),
            kind         TEXT NOT NULL CHECK (kind IN ('reference','stored')),
            url          TEXT,
            content_type TEXT,
            filename     TEXT,
            size_bytes   INTEGER CHECK (size_bytes IS NULL OR size_bytes >= 0),
            created_at   INTEGER NOT NULL,
            CHECK (kind <> 'reference' OR url IS NOT NULL)
        );
        CREATE INDEX attachments_by_message ON attachments(message_id);

        CREATE TABLE sms_consent (
            phone      TEXT PRIMARY KEY NOT NULL CHECK (phone LIKE '+%'),
            state      TEXT NOT NULL CHECK (state IN ('opted_in','opted_out')),
            keyword    TEXT NOT NULL,
            gateway    TEXT NOT NULL CHECK (gateway IN ('twilio','kannel')),
            message_id TEXT REFERENCES messages(id),
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE sms_consent_events (
            id         INTEGER PRIMARY KEY,
            phone      TEXT NOT NULL,
            action     TEXT NOT NULL CHECK (action IN ('opt_out','opt_in','help')),
            keyword    TEXT NOT NULL,
            gateway    TEXT NOT NULL CHECK (gateway IN ('twilio','kannel')),
            message_id TEXT REFERENCES messages(id),
            at         INTEGER NOT NULL
        );
        CREATE INDEX sms_consent_events_by_phone ON sms_consent_events(phone, at);

        ALTER TABLE outbox ADD COLUMN purpose TEXT NOT NULL DEFAULT 'reply' CHECK (purpose IN ('reply','compliance'));
        """

    /// Triage results on each inbound message (the conversation keeps the latest intent and
    /// language, and its priority only rises), and safety replies as an outbox purpose.
    private static let triage = """
        ALTER TABLE messages ADD COLUMN triage_intent TEXT CHECK (triage_intent IN ('appointment_new','appointment_change',
            'billing','prescription_refill','test_results','medical_records','clinical_question','portal_technical',
            'complaint','general_info'));
        ALTER TABLE messages ADD COLUMN triage_urgency TEXT CHECK (triage_urgency IN ('emergency','urgent','routine'));
        ALTER TABLE messages ADD COLUMN triage_language TEXT;
        ALTER TABLE messages ADD COLUMN triage_evidence TEXT;
        ALTER TABLE messages ADD COLUMN triaged_at INTEGER;
        CREATE INDEX messages_untriaged ON messages(created_at) WHERE direction = 'inbound' AND triaged_at IS NULL;
        """

    /// What the operator's rules set: the skills a conversation needs, and its tags.
    private static let rules = """
        ALTER TABLE conversations ADD COLUMN required_skills TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(required_skills));
        CREATE TABLE conversation_tags (
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            tag             TEXT NOT NULL CHECK (length(tag) BETWEEN 1 AND 64),
            created_at      INTEGER NOT NULL,
            PRIMARY KEY (conversation_id, tag)
        ) WITHOUT ROWID;
        """

    /// The router: teams' policies, agents' skills, languages, capacity and presence, offers,
    /// the routing log, the signals that tell the router a conversation changed, and the
    /// event stream agents follow (AUTOINCREMENT: a sequence number is never reused, even
    /// after retention deletes old events).
    private static let router = """
        ALTER TABLE teams ADD COLUMN policy TEXT NOT NULL DEFAULT 'least-loaded' CHECK (policy IN ('least-loaded','round-robin','manual'));
        ALTER TABLE teams ADD COLUMN auto_accept INTEGER NOT NULL DEFAULT 0 CHECK (auto_accept IN (0, 1));
        ALTER TABLE teams ADD COLUMN overflow TEXT CHECK (overflow IS NULL OR overflow = 'language' OR overflow LIKE 'team:_%');

        ALTER TABLE agents ADD COLUMN skills TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(skills));
        ALTER TABLE agents ADD COLUMN languages TEXT NOT NULL DEFAULT '["en"]' CHECK (json_valid(languages));
        ALTER TABLE agents ADD COLUMN capacity TEXT NOT NULL DEFAULT '{"chat":3,"sms":5,"email":10,"portal":10}' CHECK (json_valid(capacity));
        ALTER TABLE agents ADD COLUMN presence TEXT NOT NULL DEFAULT 'offline' CHECK (presence IN ('online','away','offline'));
        ALTER TABLE agents ADD COLUMN presence_changed_at INTEGER;

        -- waiting_since: the patient's earliest message no agent has answered yet (NULL once
        -- answered); first_response_at: the first agent reply since the conversation (re)opened.
        ALTER TABLE conversations ADD COLUMN waiting_since INTEGER;
        ALTER TABLE conversations ADD COLUMN first_response_at INTEGER;
        UPDATE conversations SET waiting_since = created_at WHERE status <> 'resolved';

        CREATE TABLE offers (
            id              INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            agent_id        TEXT NOT NULL REFERENCES agents(id),
            offered_at      INTEGER NOT NULL,
            expires_at      INTEGER NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','accepted','declined','expired','withdrawn')),
            ended_at        INTEGER,
            CHECK ((state = 'pending') = (ended_at IS NULL))
        );
        CREATE UNIQUE INDEX offers_one_pending ON offers(conversation_id) WHERE state = 'pending';
        CREATE INDEX offers_by_agent ON offers(agent_id, state);

        CREATE TABLE routing_log (
            id              INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            at              INTEGER NOT NULL,
            trigger         TEXT NOT NULL,
            outcome         TEXT NOT NULL CHECK (outcome IN ('offered','assigned','queued')),
            agent_id        TEXT,
            rule            TEXT NOT NULL,
            detail          TEXT NOT NULL CHECK (json_valid(detail))
        );
        CREATE INDEX routing_log_by_conversation ON routing_log(conversation_id, id);

        CREATE TABLE routing_signals (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL,
            kind            TEXT NOT NULL,
            at              INTEGER NOT NULL
        );

        -- audience: 'agent' (agent_id only), 'conversation' (agent_id, or the team's agents
        -- while unassigned — everyone without a team), 'supervisors' (of team_id, or all);
        -- supervisors of team_id see 'conversation' events too, admins see every event.
        CREATE TABLE events (
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            at              INTEGER NOT NULL,
            kind            TEXT NOT NULL CHECK (length(kind) > 0),
            audience        TEXT NOT NULL CHECK (audience IN ('agent','conversation','supervisors')),
            agent_id        TEXT,
            team_id         TEXT,
            conversation_id TEXT,
            data            TEXT NOT NULL CHECK (json_valid(data)),
            CHECK (audience <> 'agent' OR agent_id IS NOT NULL)
        );
        CREATE INDEX events_by_at ON events(at);
        """

    /// What a rebuilt router must not forget: a first-response breach already recorded (no
    /// second breach, no second escalation) and an overflow already opened. Conversations
    /// open before the router existed get their first reply and waiting time from their
    /// messages, so that none looks unanswered when it was answered.
    private static let routerSLA = """
        ALTER TABLE conversations ADD COLUMN first_response_breached_at INTEGER;
        ALTER TABLE conversations ADD COLUMN overflow_open INTEGER NOT NULL DEFAULT 0 CHECK (overflow_open IN (0, 1));
        UPDATE conversations SET first_response_at = (
            SELECT MIN(m.created_at) FROM messages m
            WHERE m.conversation_id = conversations.id AND m.direction = 'outbound' AND m.sender_kind = 'agent')
        WHERE first_response_at IS NULL AND status <> 'resolved';
        UPDATE conversations SET waiting_since = (
            SELECT MIN(m.created_at) FROM messages m
            WHERE m.conversation_id = conversations.id AND m.direction = 'inbound'
              AND m.created_at > COALESCE((SELECT MAX(r.created_at) FROM messages r
                                           WHERE r.conversation_id = conversations.id AND r.direction = 'outbound'
                                             AND r.sender_kind = 'agent'), 0))
        WHERE status <> 'resolved';
        """

    /// Operators' tools: a dead letter can be discarded (kept, out of the list), and message
    /// bodies purged by retention are marked so.
    private static let operations = """
        ALTER TABLE outbox ADD COLUMN discarded_at INTEGER;
        ALTER TABLE messages ADD COLUMN purged_at INTEGER;
        """

    /// Email: each mail message's own header facts (inbound: the sender's; outbound: ours —
    /// the Message-ID replies point back at), the reply token carried in Reply-To
    /// (`support+<token>@…`), attachment bytes kept with the message, the IMAP cursors
    /// (UIDVALIDITY + last committed UID per mailbox), and mail that belongs to no
    /// conversation (a bounce for a message we never sent), kept for the operator.
    /// Web chat and the console: visitors (created at their first message, not at every
    /// page view), the conversations they started (which keep their visitor when they
    /// continue by SMS or email), when the patient read a reply, the daemon's own generated
    /// secrets, agents' passwords and console sessions.
    private static let chat = """
        CREATE TABLE chat_visitors (
            id           TEXT PRIMARY KEY NOT NULL,
            contact_id   TEXT NOT NULL REFERENCES contacts(id),
            identity     TEXT UNIQUE,
            created_at   INTEGER NOT NULL,
            last_seen_at INTEGER NOT NULL
        );
        CREATE INDEX chat_visitors_by_contact ON chat_visitors(contact_id);
        ALTER TABLE conversations ADD COLUMN chat_visitor_id TEXT REFERENCES chat_visitors(id);
        CREATE INDEX conversations_by_visitor ON conversations(chat_visitor_id, status) WHERE chat_visitor_id IS NOT NULL;
        ALTER TABLE messages ADD COLUMN read_at INTEGER;
        -- The chat stream's sequence number. Not the rowid: VACUUM may renumber the rowids
        -- of a table without an INTEGER PRIMARY KEY, and a resuming widget relies on this
        -- number only ever growing. One more than the largest so far, set as each row lands.
        ALTER TABLE messages ADD COLUMN seq INTEGER;
        UPDATE messages SET seq = rowid;
        CREATE UNIQUE INDEX messages_by_seq ON messages(seq);
        CREATE TRIGGER messages_seq AFTER INSERT ON messages
        BEGIN UPDATE messages SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages) WHERE rowid = NEW.rowid; END;
        CREATE TABLE settings (
            key   TEXT PRIMARY KEY NOT NULL,
            value BLOB NOT NULL
        );
        -- The console: agents' passwords (scrypt, never the clear text) and their sign-in
        -- sessions (the cookie's SHA-256 only).
        ALTER TABLE agents ADD COLUMN password_hash TEXT;
        CREATE TABLE console_sessions (
            token_digest   BLOB PRIMARY KEY NOT NULL,
            agent_id       TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            csrf_token     TEXT NOT NULL,
            created_at     INTEGER NOT NULL,
            last_seen_at   INTEGER NOT NULL,
            source_address TEXT
        );
        CREATE INDEX console_sessions_by_agent ON console_sessions(agent_id);
        """

    private static let email = """
        CREATE TABLE email_messages (
            message_id     TEXT PRIMARY KEY NOT NULL REFERENCES messages(id),
            rfc_message_id TEXT NOT NULL CHECK (length(rfc_message_id) > 0),
            subject        TEXT,
            from_address   TEXT,
            to_address     TEXT,
            quoted_text    TEXT,
            auto_reply     TEXT,
            source         TEXT NOT NULL CHECK (source IN ('smtp','imap','outbound','bounce'))
        ) WITHOUT ROWID;
        CREATE INDEX email_messages_by_rfc_id ON email_messages(rfc_message_id);

        ALTER TABLE conversations ADD COLUMN reply_token TEXT;
        CREATE UNIQUE INDEX conversations_by_reply_token ON conversations(reply_token) WHERE reply_token IS NOT NULL;

        ALTER TABLE attachments ADD COLUMN content_id TEXT;
        ALTER TABLE attachments ADD COLUMN is_inline INTEGER NOT NULL DEFAULT 0 CHECK (is_inline IN (0, 1));
        ALTER TABLE attachments ADD COLUMN data BLOB;

        CREATE TABLE imap_cursors (
            mailbox     TEXT PRIMARY KEY NOT NULL,
            uidvalidity INTEGER NOT NULL CHECK (uidvalidity > 0),
            last_uid    INTEGER NOT NULL CHECK (last_uid >= 0),
            updated_at  INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE mail_quarantine (
            id          INTEGER PRIMARY KEY,
            received_at INTEGER NOT NULL,
            source      TEXT NOT NULL,
            reason      TEXT NOT NULL,
            external_id TEXT NOT NULL UNIQUE,
            raw         BLOB NOT NULL
        );
        """

    /// Deliveries acknowledged on receipt (`portal.acknowledge: received`), waiting to be
    /// made into messages: the raw bytes as received and the fields the channel validated
    /// (JSON). A row leaves when its message is stored (the journal then has it); one that
    /// cannot be stored stays, with `failed_at` and the error's type, for an operator.
    /// As first created; `2026-12-08-inbound-queue-appends-only` rebuilds it without the
    /// UNIQUE delivery id.
    private static let inboundQueue = """
        CREATE TABLE inbound_queue (\(inboundQueueColumns),
            UNIQUE (channel, external_id)
        );
        CREATE INDEX inbound_queue_waiting ON inbound_queue(id) WHERE failed_at IS NULL;
        """

    /// The queue's columns, in both of its migrations: never edit (add a migration instead).
    private static let inboundQueueColumns = """

            id          INTEGER PRIMARY KEY,
            channel     TEXT NOT NULL CHECK (channel IN \(channels)),
            external_id TEXT NOT NULL CHECK (length(external_id) > 0),
            received_at INTEGER NOT NULL,
            raw         BLOB NOT NULL,
            fields      TEXT NOT NULL,
            failed_at   INTEGER,
            failure     TEXT
        """
}
