import Foundation
import GRDB
import Testing
@testable import SwitchboardStore

/// The keyed audit chain: a chain rewritten by someone without the key is detected.
@Suite struct AuditMacTests {
    let key = Array("an audit chain key of 32 bytes!!".utf8)

    func keyedStore() throws -> SwitchboardStore {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-test-\(UUID().uuidString)")
        return try SwitchboardStore(path: directory.appendingPathComponent("db/switchboard.sqlite").path, auditKey: key)
    }

    @Test func keyedRowsVerifyAndARecomputedChainDoesNot() async throws {
        let store = try keyedStore()
        for i in 0..<3 { _ = try await store.record(delivery: "d\(i)", message: "m\(i)") }
        let good = try await store.verifyAudit(key: key)
        #expect(good.ok && good.macsChecked && good.keyedRows == good.rows && good.keyedFrom == 1)
        #expect(try await store.verifyAudit().ok)  // without the key: the chain alone
        #expect(try await store.verifyAudit(key: Array("another key, also thirty-two by".utf8)).brokenAt == 1)

        // Someone with write access changes a row and recomputes every hash after it —
        // the plain chain verifies again, the MACs do not.
        try await store.pool.write { db in
            try db.execute(sql: "DROP TRIGGER audit_events_no_update")
            try db.execute(sql: "UPDATE audit_events SET source_address = '198.51.100.9' WHERE id = 2")
            var previous: Data = try Data.fetchOne(db, sql: "SELECT hash FROM audit_events WHERE id = 1")!
            for row in try Row.fetchAll(db, sql: "SELECT * FROM audit_events WHERE id >= 2 ORDER BY id") {
                let digest = AuditChain.hash(previous: previous, AuditChain.fields(row))
                try db.execute(sql: "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?", arguments: [previous, digest, row["id"] as Int64])
                previous = digest
            }
        }
        #expect(try await store.verifyAudit().ok)
        let caught = try await store.verifyAudit(key: key)
        #expect(caught.brokenAt == 2 && caught.problem?.contains("MAC") == true)

        // Stripping the MACs after a row is caught too.
        try await store.pool.write { db in
            try db.execute(sql: "UPDATE audit_events SET mac = NULL WHERE id >= 2")
        }
        #expect(try await store.verifyAudit(key: key).brokenAt == 2)
    }

    @Test func aStoreWithoutAKeyWritesNoMACs() async throws {
        let store = try makeStore()
        _ = try await store.record(delivery: "d", message: "m")
        let result = try await store.verifyAudit(key: key)
        #expect(result.ok && result.keyedRows == 0 && result.keyedFrom == nil)
    }
}
