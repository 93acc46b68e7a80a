import Foundation
import GRDB
import SwitchboardCore

/// Backup, restore, integrity checks and vacuum — the `switchboard db` commands. All of them
/// work while the daemon runs (SQLite in WAL mode); restore is meant for a stopped daemon.
extension SwitchboardStore {
    /// An online, consistent copy through SQLite's backup API (one read transaction: a
    /// snapshot, whatever is being written meanwhile). Written to a temporary file next to
    /// `path`, readable by its owner only, then renamed into place: a failed backup never
    /// leaves a half-written file under the final name.
    public func backup(to path: String, operator who: String = "cli") throws -> BackupSummary {
        // An unpredictable name (no symlink planted in advance can catch it), then rename(2),
        // which replaces an older backup atomically.
        let temporary = path + ".partial-\(UUID().uuidString)"
        let previousMask = umask(0o077)
        defer { umask(previousMask) }
        do {
            let destination = try DatabaseQueue(path: temporary)
            try pool.backup(to: destination)
            try destination.writeWithoutTransaction { db in try db.execute(cachedSQL: "PRAGMA journal_mode = DELETE") }
            try destination.close()
            guard rename(temporary, path) == 0 else { throw StoreError.invalid("cannot move the backup into place at \(path)") }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        // A backup is a copy of every patient's messages: who took one, and when, is audited.
        try pool.write { db in
            try Self.audit(db, actorKind: "admin", actorID: who, action: "db.backup", now: Timestamp.now())
        }
        let checked = try SwitchboardStore.check(path: path)
        return BackupSummary(path: path, bytes: (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0,
                             check: checked)
    }

    /// Replaces this database's content with the backup at `path` (checked first), then
    /// applies any newer migrations. Stop the daemon first: its state in memory would not
    /// match the restored store.
    public func restore(from path: String, operator who: String = "cli") throws -> IntegrityReport {
        let report = try SwitchboardStore.check(path: path)
        guard report.ok else { throw StoreError.invalid("the backup fails its integrity check; nothing was restored") }
        let source = try DatabaseQueue(path: path, configuration: Self.readOnly)
        try source.backup(to: pool)
        try source.close()
        try Schema.migrator.migrate(pool)
        try pool.write { db in
            try Self.audit(db, actorKind: "admin", actorID: who, action: "db.restored", now: Timestamp.now())
        }
        return try integrityCheck()
    }

    public func integrityCheck() throws -> IntegrityReport {
        try pool.read { db in try Self.integrity(db) }
    }

    /// Checks a database file without migrating or changing it.
    public static func check(path: String) throws -> IntegrityReport {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError.invalid("no such file: \(path)") }
        do {
            let queue = try DatabaseQueue(path: path, configuration: readOnly)
            defer { try? queue.close() }
            return try queue.read { db in try integrity(db) }
        } catch let error as DatabaseError {
            // A file too damaged to check is a failed check, not a crash of the command.
            return IntegrityReport(problems: ["\(error.message ?? "unreadable") (SQLite \(error.resultCode.rawValue))"],
                                   foreignKeyViolations: 0, migrations: [], rowCounts: [:])
        }
    }

    /// Rebuilds the file, returning the space of deleted rows to the file system.
    public func vacuum() async throws -> (before: Int, after: Int) {
        let size = { (try? FileManager.default.attributesOfItem(atPath: self.path)[.size] as? Int) ?? 0 }
        let before = size()
        try await pool.vacuum()
        try await pool.writeWithoutTransaction { db in _ = try Row.fetchAll(db, cachedSQL: "PRAGMA wal_checkpoint(TRUNCATE)") }
        return (before, size())
    }

    private static var readOnly: Configuration {
        var configuration = Configuration()
        configuration.readonly = true
        return configuration
    }

    private static func integrity(_ db: Database) throws -> IntegrityReport {
        let problems = try String.fetchAll(db, cachedSQL: "PRAGMA integrity_check").filter { $0 != "ok" }
        let foreignKeys = try Row.fetchAll(db, cachedSQL: "PRAGMA foreign_key_check").count
        let migrations = (try? Schema.migrator.appliedMigrations(db)) ?? []
        var counts: [String: Int] = [:]
        for table in ["conversations", "messages", "contacts", "agents", "audit_events", "outbox"] {
            counts[table] = try Int.fetchOne(db, cachedSQL: "SELECT count(*) FROM \(table)") ?? 0
        }
        return IntegrityReport(problems: problems, foreignKeyViolations: foreignKeys, migrations: migrations, rowCounts: counts)
    }
}

public struct IntegrityReport: Sendable, Equatable {
    /// `PRAGMA integrity_check` lines other than "ok".
    public var problems: [String]
    public var foreignKeyViolations: Int
    public var migrations: [String]
    public var rowCounts: [String: Int]
    public var ok: Bool { problems.isEmpty && foreignKeyViolations == 0 }
}

public struct BackupSummary: Sendable, Equatable {
    public var path: String
    public var bytes: Int
    public var check: IntegrityReport
}

/// An exclusive advisory lock on `<store>.lock`, held by the daemon for its lifetime:
/// a second daemon on the same store refuses to start, and `db restore` / `db vacuum`
/// refuse while the daemon runs. Released when the process exits (flock(2)).
public final class StoreLock: Sendable {
    private let descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    public static func lockPath(for storePath: String) -> String { storePath + ".lock" }

    /// The lock, or nil when another process holds it.
    public static func acquire(storePath: String) throws -> StoreLock? {
        let path = lockPath(for: storePath)
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StoreError.invalid("cannot open the lock file \(path)") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
        return StoreLock(descriptor: descriptor)
    }

    /// True when a process (the daemon) holds the lock now.
    public static func isHeld(storePath: String) -> Bool {
        guard FileManager.default.fileExists(atPath: lockPath(for: storePath)) else { return false }
        guard let lock = try? acquire(storePath: storePath) else { return true }
        _ = lock
        return false
    }
}
