import ArgumentParser
import Foundation
import SwitchboardConfig
import SwitchboardCore
import SwitchboardServer
import SwitchboardStore

/// `switchboard journal replay`.
struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal", abstract: "Work with the inbound journal (every delivery's raw bytes).", subcommands: [Replay.self])

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse stored raw inbound again (after a parser fix) and update the messages whose text, HTML, quoted history, subject or attachments come out different. Triage is not run again. Works while the daemon runs; every change is audited.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Only this channel: email, sms, portal or chat.") var channel: String?
        @Option(help: "Only this message id.") var message: String?
        @Option(help: "Only deliveries received in the last N days.") var sinceDays: Int?
        @Flag(help: "Report what would change; change nothing.") var dryRun = false

        func run() async throws {
            var parsedChannel: SwitchboardCore.Channel?
            if let channel {
                guard let value = SwitchboardCore.Channel(rawValue: channel) else {
                    fail("--channel must be one of email, sms, portal, chat", code: 64)
                }
                parsedChannel = value
            }
            if let sinceDays, sinceDays < 0 { fail("--since-days must be 0 or more", code: 64) }
            let settings: SwitchboardConfiguration
            do {
                settings = try await SwitchboardConfiguration.load(file: options.config)
            } catch let problem as SwitchboardConfiguration.Problem {
                fail("configuration error: \(problem)", code: 78)
            }
            let store = try await options.openStore()
            let since = sinceDays.map { Timestamp.now() - Int64($0) * 86_400_000 }
            let report = try await JournalReplay(store: store, configuration: settings)
                .run(channel: parsedChannel, since: since, messageID: message, dryRun: dryRun, operator: "cli")
            if options.json {
                printJSON(["examined": report.examined, "changed": report.changed, "unchanged": report.unchanged,
                           "skipped": report.skipped, "dry_run": dryRun])
            } else {
                print("\(report.examined) deliveries examined: \(report.changed.count) \(dryRun ? "would change" : "changed"), \(report.unchanged) unchanged, \(report.skipped.count) skipped")
                for id in report.changed { print("\(dryRun ? "would change" : "changed")\t\(id)") }
                for id in report.skipped { print("skipped\t\(id)") }
            }
        }
    }
}
