import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import SwitchboardRules
import UnixSignals

/// The rules in force, shared by triage and the reloader.
public final class RulesHolder: Sendable {
    private let current: Mutex<RuleSet>
    public init(_ rules: RuleSet) { current = Mutex(rules) }
    public var rules: RuleSet { current.withLock { $0 } }
    func replace(_ rules: RuleSet) { current.withLock { $0 = rules } }

    /// Reads and parses a rules file; errors carry the file name and line.
    public static func load(path: String) throws -> RuleSet {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RulesError(file: path, line: nil, reason: "cannot be read")
        }
        do {
            return try RuleSet.parse(String(decoding: data, as: UTF8.self))
        } catch {
            throw RulesError(file: path, line: error.line, reason: error.reason)
        }
    }
}

/// Reloads the rules file on SIGHUP. A file that does not parse is rejected with its line
/// and reason in the log, and the rules in force stay.
public struct RulesReloadService: Service, CustomStringConvertible {
    let path: String?
    let holder: RulesHolder
    let logger: Logger

    public var description: String { "RulesReloadService" }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() {
                guard let path else {
                    logger.notice("SIGHUP: no rules file configured", metadata: ["key": "triage.rules_file"])
                    continue
                }
                do {
                    let rules = try RulesHolder.load(path: path)
                    holder.replace(rules)
                    logger.notice("rules reloaded", metadata: ["rules.count": "\(rules.rules.count)", "rules.file": "\(path)"])
                } catch let error as RulesError {
                    logger.error("rules file rejected; previous rules stay in force", metadata: [
                        "rules.file": "\(path)", "line": "\(error.line.map(String.init) ?? "-")", "reason": "\(error.reason)",
                    ])
                } catch {
                    logger.error("rules file rejected; previous rules stay in force", metadata: ["rules.file": "\(path)"])
                }
            }
        } onGracefulShutdown: {}
    }
}
