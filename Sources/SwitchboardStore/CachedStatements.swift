import GRDB

// Every statement the store runs comes from the connection's statement cache.
//
// Preparing is not free: an INSERT into `messages` compiles its triggers, and a SELECT on
// `conversations` plans its joins. Profiling the signed-webhook benchmark showed
// `sqlite3_prepare_v3` at 28% of the daemon's CPU when every call prepared its SQL afresh.
// GRDB keeps one cache per connection; the SQL the store builds is a fixed set of strings
// (the only variable parts are table names and placeholder counts from bounded lists), so
// the caches stay small. Migrations (`Schema`) still prepare once, as they run once.
extension Database {
    func execute(cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}

extension Row {
    static func fetchOne(_ db: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> Row? {
        try fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    static func fetchAll(_ db: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> [Row] {
        try fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
    }
}

extension DatabaseValueConvertible {
    static func fetchOne(_ db: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> Self? {
        try fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    static func fetchAll(_ db: Database, cachedSQL sql: String, arguments: StatementArguments = StatementArguments()) throws -> [Self] {
        try fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
    }
}
