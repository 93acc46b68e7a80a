import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import SwitchboardConfig
import SwitchboardCore
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

/// SIGHUP: reloads what can change while the daemon runs, and says what changed.
///
/// - The configuration file (and environment) is read and checked again. A bad one is
///   refused — the log names the key and why — and the configuration in force stays.
///   Otherwise the changed keys are logged by name (never their values: some are secrets);
///   `log.level` and `routing.*` apply at once; other changed keys are listed as needing a
///   restart.
/// - The rules file is read again; a file that does not parse is rejected with its line and
///   reason, and the rules in force stay.
public struct ReloadService: Service, CustomStringConvertible {
    let configFile: String?
    let rulesPath: String?
    let holder: RulesHolder
    let logLevel: LogLevelControl?
    let router: RouterService?
    let logger: Logger

    public var description: String { "ReloadService" }

    /// Keys whose new value takes effect without a restart.
    static func appliesAtRuntime(_ key: String) -> Bool {
        key == "log.level" || key.hasPrefix("routing.") || key == "triage.rules_file"
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        var current = (try? await SwitchboardConfiguration.effectiveValues(file: configFile)) ?? []
        var rulesPath = self.rulesPath
        await withGracefulShutdownHandler {
            for await _ in signals.cancelOnGracefulShutdown() {
                do {
                    let (configuration, values) = try await SwitchboardConfiguration.resolve(
                        file: configFile, environment: ProcessInfo.processInfo.environment)
                    let before = Dictionary(current.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
                    let changed = values.filter { before[$0.key]?.fingerprint != $0.fingerprint || before[$0.key]?.source != $0.source }.map(\.key)
                    current = values
                    if let logLevel, let level = Logger.Level(rawValue: configuration.log.level) { logLevel.level = level }
                    if changed.contains(where: { $0.hasPrefix("routing.") }) { await router?.updateSettings(configuration.routing) }
                    rulesPath = configuration.triage.rulesFile
                    let restart = changed.filter { !Self.appliesAtRuntime($0) }
                    logger.notice("configuration reloaded", metadata: [
                        "changed": "\(changed.isEmpty ? "-" : changed.joined(separator: ","))",
                        "restart_needed": "\(restart.isEmpty ? "-" : restart.joined(separator: ","))",
                    ])
                } catch let problem as SwitchboardConfiguration.Problem {
                    logger.error("configuration reload refused; the configuration in force stays", metadata: [
                        "key": "\(problem.key)", "reason": "\(problem.reason)",
                    ])
                } catch {
                    logger.error("configuration reload refused; the configuration in force stays", metadata: ["error.type": "\(type(of: error))"])
                }
                reloadRules(rulesPath)
            }
        } onGracefulShutdown: {}
    }

    private func reloadRules(_ path: String?) {
        guard let path else {
            logger.notice("SIGHUP: no rules file configured", metadata: ["key": "triage.rules_file"])
            return
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
}
