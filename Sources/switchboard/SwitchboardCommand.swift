import ArgumentParser
import Foundation
import SwitchboardConfig
import SwitchboardCore
import SwitchboardRouting
import SwitchboardStore

/// switchboard — the admin command line. It opens the same database as the daemon (SQLite
/// in WAL mode allows both at once), so it works while the daemon runs.
///
/// Exit codes: 0 success; 1 the operation failed (message on stderr); 64 usage error;
/// 78 configuration error.
@main
struct SwitchboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "Administer a Switchboard installation.",
        subcommands: [AgentCommand.self, AuditCommand.self, ConfigCommand.self, ConversationCommand.self, DBCommand.self,
                      JournalCommand.self, OutboxCommand.self, PurgeCommand.self, TeamCommand.self, TriageCommand.self]
    )

    /// `--config PATH` and `--json` may stand before the subcommand too
    /// (`switchboard --config /etc/switchboard/switchboard.yaml agent list`, as `postconf -c`
    /// users expect); they are moved after it, where the subcommands declare them.
    static func main() async {
        await main(GlobalOptions.movingGlobalOptionsLast(Array(CommandLine.arguments.dropFirst())))
    }
}

struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Path of the daemon's YAML configuration file (to find the database).")
    var config: String?

    @Flag(name: .long, help: "Print machine-readable JSON.")
    var json = false

    static func movingGlobalOptionsLast(_ arguments: [String]) -> [String] {
        var rest: [String] = []
        var globals: [String] = []
        var index = 0
        var seenSubcommand = false
        while index < arguments.count {
            let argument = arguments[index]
            if !seenSubcommand && argument == "--config" && index + 1 < arguments.count {
                globals += [argument, arguments[index + 1]]
                index += 2
                continue
            }
            if !seenSubcommand && (argument.hasPrefix("--config=") || argument == "--json") {
                globals.append(argument)
            } else {
                if !argument.hasPrefix("-") { seenSubcommand = true }
                rest.append(argument)
            }
            index += 1
        }
        return rest + globals
    }

    /// Opens the configured database. Only commands that may start an installation
    /// (`agent add`, `db restore`) create it: any other finding no file is a wrong
    /// `--config` or store path, said plainly instead of answering from an empty new store.
    /// Exits 1 when the daemon holds the store (its lock file is locked).
    func requireDaemonStopped(_ what: String) async throws {
        guard let settings = try? await SwitchboardConfiguration.load(file: config) else { return }
        if StoreLock.isHeld(storePath: settings.store.path) {
            fail("\(what) needs the daemon stopped: it holds \(StoreLock.lockPath(for: settings.store.path)) (systemctl stop switchboard)", code: 1)
        }
    }

    func openStore(create: Bool = false) async throws -> SwitchboardStore {
        let settings: SwitchboardConfiguration
        do {
            settings = try await SwitchboardConfiguration.load(file: config)
        } catch let problem as SwitchboardConfiguration.Problem {
            fail("configuration error: \(problem)", code: 78)
        }
        let exists = FileManager.default.fileExists(atPath: settings.store.path)
        if !create && !exists {
            fail("no database at \(settings.store.path) (store.path); give the daemon's --config, or set SWITCHBOARD_STORE_PATH", code: 1)
        }
        do {
            // Only a new installation's first command migrates; otherwise the daemon owns the schema.
            return try SwitchboardStore(path: settings.store.path, migrate: !exists,
                                        auditKey: settings.audit.chainKey.map { Array($0.value.utf8) })
        } catch let error as StoreError {
            fail("\(error)", code: 1)
        } catch {
            fail("cannot open the database at \(settings.store.path): \(error)", code: 1)
        }
    }
}

func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("switchboard: \(message)\n".utf8))
    exit(code)
}

func printJSON(_ object: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    print(String(decoding: data, as: UTF8.self))
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Manage agents.", subcommands: [Add.self, List.self, Update.self, SetPassword.self, Deactivate.self])

    /// `a,b , c` → ["a", "b", "c"]; nil when the option was not given.
    static func list(_ text: String?) -> [String]? {
        text.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
    }

    static func describe(_ detail: AgentDetail) -> [String: Any] {
        ["agent_id": detail.agent.id, "name": detail.agent.name, "email": detail.agent.email, "role": detail.agent.role.rawValue,
         "teams": detail.agent.teams.sorted(), "skills": detail.profile.skills.sorted(), "languages": detail.profile.languages.sorted(),
         "capacity": Dictionary(uniqueKeysWithValues: detail.profile.capacity.map { ($0.key.rawValue, $0.value) }),
         "presence": detail.profile.presence.rawValue]
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an agent's role, teams, skills, languages or capacity (the running router follows at once).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The agent id.") var id: String
        @Option(help: "agent, supervisor or admin.") var role: String?
        @Option(help: "Comma-separated team names (replaces the agent's teams; missing teams are created).") var teams: String?
        @Option(help: "Comma-separated skills (replaces them).") var skills: String?
        @Option(help: "Comma-separated language codes, e.g. en,es (replaces them).") var languages: String?
        @Option(help: "Capacity per channel, e.g. chat=3,sms=5,email=10,portal=10 (replaces it).") var capacity: String?

        func run() async throws {
            let parsedRole: AgentRole? = option(role, "--role")
            var parsedCapacity: [SwitchboardCore.Channel: Int]?
            if let capacity {
                var map: [SwitchboardCore.Channel: Int] = [:]
                for pair in AgentCommand.list(capacity) ?? [] {
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2, let channel = SwitchboardCore.Channel(rawValue: parts[0]), let count = Int(parts[1]),
                          (0...1000).contains(count) else {
                        fail("--capacity: \(pair) is not CHANNEL=N (channels email, sms, chat, portal; N from 0 to 1000)", code: 64)
                    }
                    map[channel] = count
                }
                parsedCapacity = map
            }
            let store = try await options.openStore()
            do {
                let detail = try await store.updateAgent(id: id, role: parsedRole, skills: AgentCommand.list(skills),
                                                         languages: AgentCommand.list(languages), capacity: parsedCapacity,
                                                         teams: AgentCommand.list(teams))
                if options.json { printJSON(AgentCommand.describe(detail)) } else { print("agent \(detail.agent.id) updated") }
            } catch StoreError.notFound {
                fail("no such agent", code: 1)
            } catch let error as StoreError {
                fail("agent not updated: \(error)", code: 1)
            }
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Set an agent's console password, read from the first line of standard input (never an argument: arguments show in ps). Ends the agent's console sessions.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The agent's email address.") var email: String

        func run() async throws {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                fail("no password on standard input (e.g. printf '%s\\n' \"$PASSWORD\" | switchboard agent set-password EMAIL)", code: 64)
            }
            guard line.count >= 12, line.utf8.count <= 1024 else {
                fail("the password must be 12 to 1024 characters long", code: 64)
            }
            do {
                let id = try await options.openStore().setPassword(agentEmail: email, password: line)
                if options.json { printJSON(["agent_id": id, "password_set": true]) } else { print("password set for agent \(id)") }
            } catch StoreError.notFound {
                fail("no active agent with that email", code: 1)
            }
        }
    }

    struct Deactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deactivate an agent: tokens revoked, offers withdrawn, open conversations back to the queue.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The agent id.") var id: String

        func run() async throws {
            do {
                try await options.openStore().deactivateAgent(id: id)
            } catch StoreError.notFound {
                fail("no such agent", code: 1)
            }
            if options.json { printJSON(["agent_id": id, "active": false]) } else { print("agent \(id) deactivated") }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an agent and print its API token (shown once, stored only as a hash).")

        @OptionGroup var options: GlobalOptions
        @Option(help: "The agent's name.") var name: String
        @Option(help: "The agent's email address (unique).") var email: String
        @Option(help: "A team to put the agent in (created if missing).") var team: String?
        @Option(help: "agent, supervisor or admin.") var role: String = "agent"

        func run() async throws {
            guard let agentRole = AgentRole(rawValue: role) else {
                fail("--role must be one of agent, supervisor, admin", code: 64)
            }
            let store = try await options.openStore(create: true)
            do {
                let (agent, token) = try await store.createAgent(name: name, email: email, role: agentRole, team: team)
                if options.json {
                    printJSON(["agent_id": agent.id, "name": agent.name, "email": agent.email, "role": agent.role.rawValue,
                               "teams": agent.teams, "token": token])
                } else {
                    print("agent \(agent.id) created (\(agent.role.rawValue))")
                    print("API token (shown once, keep it safe): \(token)")
                }
            } catch let error as StoreError {
                fail("agent not created: \(error)", code: 1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List active agents.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let agents = try await options.openStore().listAgents()
            if options.json {
                printJSON(agents.map { ["agent_id": $0.id, "name": $0.name, "email": $0.email, "role": $0.role.rawValue, "teams": $0.teams] as [String: Any] })
            } else {
                for agent in agents {
                    print("\(agent.id)\t\(agent.role.rawValue)\t\(agent.email)\t\(agent.name)\t\(agent.teams.joined(separator: ","))")
                }
            }
        }
    }
}

/// `switchboard db backup|restore|check|vacuum`.
struct DBCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Back up, restore, check and vacuum the database.",
        subcommands: [Backup.self, Restore.self, Check.self, Vacuum.self])

    static func describe(_ report: IntegrityReport) -> [String: Any] {
        ["ok": report.ok, "problems": report.problems, "foreign_key_violations": report.foreignKeyViolations,
         "migrations": report.migrations, "rows": report.rowCounts]
    }

    /// Runs `operation`, prints its report, and exits 1 when it failed or the report shows a problem.
    static func report(json: Bool, failure: String, _ operation: () throws -> (IntegrityReport, [String: Any])) throws {
        let result: (IntegrityReport, [String: Any])
        do {
            result = try operation()
        } catch {
            fail("\(failure): \(error)", code: 1)
        }
        printReport(result.0, json: json, extra: result.1)
        if !result.0.ok { throw ExitCode(1) }
    }

    static func printReport(_ report: IntegrityReport, json: Bool, extra: [String: Any] = [:]) {
        if json {
            printJSON(describe(report).merging(extra) { $1 })
        } else {
            for (key, value) in extra.sorted(by: { $0.key < $1.key }) { print("\(key): \(value)") }
            print("integrity: \(report.ok ? "ok" : "FAILED")")
            for problem in report.problems.prefix(20) { print("  \(problem)") }
            if report.foreignKeyViolations > 0 { print("foreign key violations: \(report.foreignKeyViolations)") }
            print("migrations: \(report.migrations.joined(separator: ", "))")
            print("rows: " + report.rowCounts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
    }

    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an online, consistent copy of the database (SQLite backup API) and check it.",
            discussion: "Safe while the daemon runs. The copy holds PHI: keep it encrypted and access-controlled.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "Where to write the backup (replaced if it exists).") var destination: String

        func run() async throws {
            let store = try await options.openStore()
            try DBCommand.report(json: options.json, failure: "backup failed") {
                let summary = try store.backup(to: destination, operator: operatorName())
                return (summary.check, ["backup": summary.path, "bytes": summary.bytes])
            }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the database with a backup (checked first). Stop the daemon before.",
            discussion: "Refuses without --force: everything stored since the backup is lost.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The backup file.") var source: String
        @Flag(help: "Confirm that the current content is replaced.") var force = false

        func run() async throws {
            guard force else { fail("restore replaces every conversation stored since the backup; add --force to confirm (stop the daemon first)", code: 64) }
            try await options.requireDaemonStopped("restore")
            let store = try await options.openStore(create: true)
            try DBCommand.report(json: options.json, failure: "restore failed") {
                (try store.restore(from: source, operator: operatorName()), ["restored_from": source])
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the database (or a backup file): integrity, foreign keys, migrations, row counts. Exit 1 on a problem.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Check this file instead of the configured database (read-only).") var file: String?

        func run() async throws {
            let report: IntegrityReport
            do {
                if let file {
                    report = try SwitchboardStore.check(path: file)
                } else {
                    report = try await options.openStore().integrityCheck()
                }
            } catch {
                fail("check failed: \(error)", code: 1)
            }
            DBCommand.printReport(report, json: options.json)
            if !report.ok { throw ExitCode(1) }
        }
    }

    struct Vacuum: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild the database file to return free space.",
            discussion: "Holds the write lock for the whole rebuild (webhooks get 503 meanwhile and the systemd watchdog may fire on a large store): stop the daemon first.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            try await options.requireDaemonStopped("vacuum")
            let (before, after) = try await options.openStore().vacuum()
            if options.json {
                printJSON(["bytes_before": before, "bytes_after": after])
            } else {
                print("vacuumed: \(before) → \(after) bytes")
            }
        }
    }
}

/// `switchboard audit verify|export`: the hash-chained audit log.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Verify and export the audit log (who did what to which conversation, and when).",
        subcommands: [Verify.self, Export.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the audit log's hash chain. Exit 1 naming the first row changed or deleted.",
            discussion: "Prints the head (newest row id and hash): compare it with one recorded earlier (the daemon logs it hourly as msg=\"audit head\") to detect rows cut off the end.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let key = try? await SwitchboardConfiguration.load(file: options.config).audit.chainKey.map { Array($0.value.utf8) }
            let result = try await options.openStore().verifyAudit(key: key ?? nil)
            let macs = result.macsChecked
                ? (result.keyedRows > 0 ? "MACs checked on \(result.keyedRows) rows (from row \(result.keyedFrom ?? 0))" : "no row carries a MAC")
                : "MACs not checked (no audit.chain_key)"
            if options.json {
                var object: [String: Any] = ["ok": result.ok, "rows": result.rows, "macs_checked": result.macsChecked,
                                             "keyed_rows": result.keyedRows]
                object["keyed_from"] = result.keyedFrom
                object["head_id"] = result.headID
                object["head_hash"] = result.headHash
                object["broken_at"] = result.brokenAt
                object["problem"] = result.problem
                printJSON(object)
            } else if result.ok {
                print("audit chain ok: \(result.rows) rows; head \(result.headID.map(String.init) ?? "-") \(result.headHash ?? "-"); \(macs)")
            } else {
                print("audit chain BROKEN at row \(result.brokenAt ?? 0): \(result.problem ?? "")")
                print("last good row: \(result.headID.map(String.init) ?? "none") \(result.headHash ?? "")")
            }
            if !result.ok { throw ExitCode(1) }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the audit log to standard output as JSON lines or CSV (ids, actions, times, sources — never message text).")
        @OptionGroup var options: GlobalOptions
        @Option(help: "jsonl or csv.") var format = "jsonl"
        @Option(help: "Only rows at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).") var since: String?

        func run() async throws {
            guard format == "jsonl" || format == "csv" else { fail("--format must be jsonl or csv", code: 64) }
            var sinceMillis: Int64?
            if let since {
                guard let parsed = Timestamp.parse(since) else { fail("--since must be an RFC 3339 time", code: 64) }
                sinceMillis = parsed
            }
            let store = try await options.openStore()
            if format == "csv" { print("id,at,actor_kind,actor_id,action,conversation_id,message_id,source_address,hash") }
            var after: Int64 = 0
            while true {
                let records = try await store.auditRecords(after: after, since: sinceMillis)
                for record in records {
                    if format == "csv" {
                        let fields = [String(record.id), Timestamp.format(record.at), record.actorKind, record.actorID ?? "", record.action,
                                      record.conversationID ?? "", record.messageID ?? "", record.sourceAddress ?? "", record.hash]
                        print(fields.map(Self.csvField).joined(separator: ","))
                    } else {
                        var object: [String: Any] = ["id": record.id, "at": Timestamp.format(record.at), "actor_kind": record.actorKind,
                                                     "action": record.action, "hash": record.hash]
                        object["actor_id"] = record.actorID
                        object["conversation_id"] = record.conversationID
                        object["message_id"] = record.messageID
                        object["source_address"] = record.sourceAddress
                        printJSON(object)
                    }
                    after = record.id
                }
                if records.count < 1000 { break }
            }
        }

        static func csvField(_ value: String) -> String {
            value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
        }
    }
}

/// `switchboard config check|show`.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check and show the effective configuration.", subcommands: [Check.self, Show.self])

    static func load(_ options: GlobalOptions) async -> [SwitchboardConfiguration.EffectiveValue] {
        do {
            return try await SwitchboardConfiguration.effectiveValues(file: options.config)
        } catch let problem as SwitchboardConfiguration.Problem {
            fail("configuration error: \(problem)", code: 78)
        } catch {
            fail("configuration error: \(error)", code: 78)
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration (file, environment, secret files). Exit 0, or 78 naming the key and why.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            _ = await ConfigCommand.load(options)
            if options.json { printJSON(["ok": true]) } else { print("configuration ok") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every key's effective value and where it came from; secrets are redacted.")
        @OptionGroup var options: GlobalOptions
        @Flag(name: .customLong("non-default"), help: "Only keys set in the file or the environment (like postconf -n).")
        var nonDefault = false

        func run() async throws {
            let values = await ConfigCommand.load(options).filter { !nonDefault || !$0.isDefault }
            if options.json {
                printJSON(values.map { ["key": $0.key, "value": $0.value, "default": $0.defaultValue, "source": $0.source, "secret": $0.secret] as [String: Any] })
            } else {
                for value in values {
                    let shown = value.value.contains(where: { $0 == " " || $0 == "#" || $0 == ":" }) ? "\"\(value.value)\"" : value.value
                    print("\(value.key) = \(shown)" + (value.isDefault ? "" : "    # \(value.source)"))
                }
            }
        }
    }
}

/// An option whose value must be one of an enumeration's raw values; exits 64 listing them.
func option<T: RawRepresentable & CaseIterable>(_ text: String?, _ name: String) -> T? where T.RawValue == String {
    guard let text else { return nil }
    guard let value = T(rawValue: text) else {
        fail("\(name) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))", code: 64)
    }
    return value
}

/// A list as one JSON array (`--json`) or one tab-separated line per item.
func printList<T>(_ items: [T], json: Bool, object: (T) -> [String: Any], line: (T) -> String) {
    if json {
        printJSON(items.map(object))
    } else {
        for item in items { print(line(item)) }
    }
}

/// Who runs the command, for the audit log: `cli:<login>` from the real user id (not from
/// $USER, which anyone sets); under sudo (uid 0), the sudo caller is added.
func operatorName() -> String {
    let uid = getuid()
    var name = "uid\(uid)"
    if let entry = getpwuid(uid), let login = entry.pointee.pw_name { name = String(cString: login) }
    if uid == 0, let caller = ProcessInfo.processInfo.environment["SUDO_USER"], !caller.isEmpty,
       caller.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) {
        name += "(sudo:\(caller))"
    }
    return "cli:" + name
}

/// `switchboard outbox list|retry|discard`: dead letters.
struct OutboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox", abstract: "List, retry and discard undeliverable replies (dead letters).",
        subcommands: [List.self, Retry.self, Discard.self])

    /// Runs one change on a dead letter; a refusal (not a dead letter) exits 1 with the reason.
    static func act(_ options: GlobalOptions, id: Int64, json: [String: Any], text: String,
                    _ change: (SwitchboardStore) async throws -> Void) async throws {
        let store = try await options.openStore()
        do {
            try await change(store)
        } catch let error as StoreError {
            fail("\(error)", code: 1)
        }
        if options.json { printJSON(json) } else { print(text) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List outbox items (dead letters by default), newest first.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "dead or pending.") var state = "dead"
        @Option(help: "At most this many.") var limit = 100

        func run() async throws {
            guard state == "dead" || state == "pending" else { fail("--state must be dead or pending", code: 64) }
            let entries = try await options.openStore().outboxEntries(state: state, limit: max(1, min(limit, 10_000)))
            printList(entries, json: options.json) { entry in
                var object: [String: Any] = ["id": entry.id, "message_id": entry.messageID, "conversation_id": entry.conversationID,
                                             "channel": entry.channel, "state": entry.state, "attempts": entry.attempts,
                                             "created_at": Timestamp.format(entry.createdAt)]
                object["last_error"] = entry.lastError
                object["finished_at"] = entry.finishedAt.map(Timestamp.format)
                return object
            } line: { entry in
                "\(entry.id)\t\(entry.channel)\t\(entry.conversationID)\t\(entry.messageID)\tattempts=\(entry.attempts)\t\(entry.lastError ?? "-")"
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deliver a dead letter again (in order with its conversation's replies).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The outbox item id (from outbox list).") var id: Int64

        func run() async throws {
            try await OutboxCommand.act(options, id: id, json: ["id": id, "state": "pending"], text: "outbox item \(id) queued again") {
                try await $0.retryOutbox(id: id, operator: operatorName())
            }
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a dead letter off the list (the failed message stays in its conversation).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The outbox item id (from outbox list).") var id: Int64

        func run() async throws {
            try await OutboxCommand.act(options, id: id, json: ["id": id, "discarded": true], text: "outbox item \(id) discarded") {
                try await $0.discardOutbox(id: id, operator: operatorName())
            }
        }
    }
}

/// `switchboard purge`: retention.
struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Remove message text, raw deliveries and attachment references older than N days (conversations quiet since).",
        discussion: "Kept: conversations, ids, times, delivery states, triage labels, the audit log, replies still waiting to be delivered or in the dead-letter list, and contact details (names, numbers, addresses). Deleted content is overwritten (secure_delete); run `db vacuum` afterwards, with the daemon stopped, to shrink the file.")
    @OptionGroup var options: GlobalOptions
    @Option(name: .customLong("older-than-days"), help: "Age in days (at least 1).") var days: Int
    @Flag(name: .customLong("dry-run"), help: "Count what would be removed; change nothing.") var dryRun = false

    func run() async throws {
        guard days >= 1 else { fail("--older-than-days must be at least 1", code: 64) }
        let cutoff = Timestamp.now() - Int64(days) * 86_400_000
        let result = try await options.openStore().purge(olderThan: cutoff, operator: operatorName(), dryRun: dryRun)
        if options.json {
            printJSON(["messages": result.messages, "attachments": result.attachments, "journal_entries": result.journalEntries,
                       "dry_run": result.dryRun])
        } else {
            print("\(dryRun ? "would purge" : "purged"): \(result.messages) messages, \(result.attachments) attachments, \(result.journalEntries) raw deliveries")
        }
    }
}

/// `switchboard conversation list|show`: read from the command line — audited like the API.
struct ConversationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conversation", abstract: "List and show conversations (reads are audited as the operator's).",
        subcommands: [List.self, Show.self])

    static var operatorAgent: Agent {
        Agent(id: operatorName(), name: "command line", email: "cli@localhost", role: .admin, teams: [])
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List conversations, most recent first.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "open, pending, snoozed, resolved or any.") var status = "open"
        @Option(help: "At most this many (1-500).") var limit = 50

        func run() async throws {
            guard let filter = ConversationListStatus(rawValue: status) else { fail("--status must be open, pending, snoozed, resolved or any", code: 64) }
            let conversations = try await options.openStore().listConversations(for: ConversationCommand.operatorAgent, status: filter,
                                                                                 assignee: .any, limit: max(1, min(limit, 500)))
            printList(conversations, json: options.json) { c in
                ["id": c.id, "status": c.status.rawValue, "priority": c.priority.rawValue, "channel": c.channel.rawValue,
                 "assignee_id": c.assigneeID as Any, "team_id": c.teamID as Any, "last_message_at": Timestamp.format(c.lastMessageAt)]
            } line: { c in
                "\(c.id)\t\(c.status.rawValue)\t\(c.priority.rawValue)\t\(c.channel.rawValue)\t\(c.assigneeID ?? "-")\t\(Timestamp.format(c.lastMessageAt))"
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one conversation with its messages (the read is audited).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The conversation id.") var id: String

        func run() async throws {
            let detail: ConversationDetail
            do {
                detail = try await options.openStore().readConversation(id: id, by: ConversationCommand.operatorAgent, sourceAddress: "cli")
            } catch StoreError.notFound {
                fail("no such conversation", code: 1)
            }
            let c = detail.conversation
            if options.json {
                printJSON(["id": c.id, "status": c.status.rawValue, "priority": c.priority.rawValue, "channel": c.channel.rawValue,
                           "assignee_id": c.assigneeID as Any, "team_id": c.teamID as Any,
                           "messages": detail.messages.map { ["id": $0.id, "direction": $0.direction.rawValue, "text": $0.text,
                                                             "created_at": Timestamp.format($0.createdAt),
                                                             "delivery_status": $0.deliveryStatus?.rawValue as Any] as [String: Any] }])
            } else {
                print("\(c.id) \(c.status.rawValue) \(c.priority.rawValue) \(c.channel.rawValue) assignee=\(c.assigneeID ?? "-")")
                for m in detail.messages {
                    print("[\(Timestamp.format(m.createdAt))] \(m.direction.rawValue)\(m.deliveryStatus.map { " (\($0.rawValue))" } ?? ""): \(m.text)")
                }
            }
        }
    }
}

/// `switchboard team list|set`.
struct TeamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "team", abstract: "List teams and set their routing policy.", subcommands: [List.self, SetPolicy.self])

    static func describe(_ team: TeamSettings) -> [String: Any] {
        var object: [String: Any] = ["team_id": team.id, "name": team.name, "policy": team.policy.rawValue, "auto_accept": team.autoAccept]
        switch team.overflow {
        case .language: object["overflow"] = "language"
        case .team(let id): object["overflow"] = "team:\(id)"
        case nil: object["overflow"] = NSNull()
        }
        return object
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List teams with their policy.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            printList(try await options.openStore().listTeams(), json: options.json, object: TeamCommand.describe) { team in
                "\(team.id)\t\(team.name)\t\(team.policy.rawValue)\tauto_accept=\(team.autoAccept)"
            }
        }
    }

    struct SetPolicy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Create a team or change its policy, auto-accept and overflow (the running router follows at once).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The team name.") var name: String
        @Option(help: "least-loaded, round-robin or manual.") var policy: String?
        @Option(name: .customLong("auto-accept"), help: "true or false.") var autoAccept: Bool?
        @Option(help: "language, another team's name, or none.") var overflow: String?

        func run() async throws {
            let parsedPolicy: RoutingPolicy? = option(policy, "--policy")
            // nil: leave it; .some(nil): clear it; .some(name): set it.
            var overflowValue: String?? = nil
            if let overflow { overflowValue = .some(overflow == "none" ? nil : overflow) }
            do {
                let team = try await options.openStore(create: true).upsertTeam(name: name, policy: parsedPolicy, autoAccept: autoAccept,
                                                                                overflow: overflowValue)
                if options.json { printJSON(TeamCommand.describe(team)) } else { print("team \(team.name) (\(team.id)): \(team.policy.rawValue)") }
            } catch let error as StoreError {
                fail("team not saved: \(error)", code: 1)
            }
        }
    }
}
