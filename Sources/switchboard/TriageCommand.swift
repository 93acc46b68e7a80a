import ArgumentParser
import Foundation
import SwitchboardCore
import SwitchboardTriage

struct TriageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "triage", abstract: "Classify patient messages: intent, urgency, language.",
        subcommands: [Classify.self, Eval.self, Explain.self, CrossValidate.self])

    /// Reads JSON lines `{"channel":…,"subject":…,"text":…}` and writes one result per line.
    struct Classify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read JSON lines {\"channel\",\"subject\",\"text\"} on stdin; write one JSON result per line.")

        func run() async throws {
            let classifier = TriageClassifier.shared
            var lineNumber = 0
            var failed = false
            while let line = readLine() {
                lineNumber += 1
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                guard let message = try? JSONDecoder().decode(TriageClassifier.LabelledMessage.self, from: Data(line.utf8)) else {
                    FileHandle.standardError.write(Data("switchboard: line \(lineNumber): not a JSON object with a \"text\" string\n".utf8))
                    failed = true
                    continue
                }
                let result = classifier.classify(channel: message.channel, subject: message.subject, text: message.text)
                var output = result.json
                if let id = message.id, case .object(var members) = output {
                    members["id"] = .string(id)
                    output = .object(members)
                }
                print(output.text)
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Eval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the classifier on labelled JSON lines (the format of routing-dev.jsonl).")

        @Argument(help: "A JSON-lines file with text and intent, urgency, language labels.") var file: String
        @Flag(help: "Print machine-readable JSON.") var json = false
        @Flag(help: "Also list every message whose intent or urgency was wrong.") var errors = false

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read \(file)", code: 1) }
            var messages: [TriageClassifier.LabelledMessage] = []
            for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
                do {
                    messages.append(try JSONDecoder().decode(TriageClassifier.LabelledMessage.self, from: Data(line.utf8)))
                } catch {
                    fail("\(file):\(index + 1): not a labelled message", code: 1)
                }
            }
            let classifier = TriageClassifier.shared
            let start = Date()
            let results = messages.map { classifier.classify(channel: $0.channel, subject: $0.subject, text: $0.text) }
            let seconds = Date().timeIntervalSince(start)
            let intents = Evaluation(pairs: zip(messages, results).compactMap { m, r in m.intent.map { ($0.rawValue, r.intent.rawValue) } })
            let urgencies = Evaluation(pairs: zip(messages, results).compactMap { m, r in m.urgency.map { ($0.rawValue, r.urgency.rawValue) } })
            let languages = Evaluation(pairs: zip(messages, results).compactMap { m, r in m.language.map { ($0.rawValue, r.language.rawValue) } })
            let emergency = urgencies.scores(for: "emergency")
            if json {
                printJSON([
                    "messages": messages.count, "training_messages": classifier.trainingSize,
                    "intent_accuracy": intents.accuracy, "urgency_accuracy": urgencies.accuracy,
                    "language_accuracy": languages.accuracy,
                    "emergency_recall": emergency.recall, "emergency_precision": emergency.precision,
                    "intent": intents.perLabel, "urgency": urgencies.perLabel, "language": languages.perLabel,
                    "messages_per_second": Double(messages.count) / max(seconds, 1e-9),
                ])
                return
            }
            print("\(messages.count) messages (classifier trained on \(classifier.trainingSize))")
            print(String(format: "intent accuracy    %.3f", intents.accuracy))
            print(String(format: "urgency accuracy   %.3f", urgencies.accuracy))
            print(String(format: "language accuracy  %.3f", languages.accuracy))
            print(String(format: "emergency recall   %.3f  precision %.3f", emergency.recall, emergency.precision))
            print(String(format: "speed              %.0f messages/s (one core, this build)", Double(messages.count) / max(seconds, 1e-9)))
            for (name, evaluation) in [("intent", intents), ("urgency", urgencies), ("language", languages)] {
                print("\n\(name): precision / recall / support")
                for label in evaluation.labels {
                    let s = evaluation.scores(for: label)
                    print(String(format: "  %-20@ %.3f / %.3f / %d", label as NSString, s.precision, s.recall, s.support))
                }
                print("confusion (rows: truth, columns: predicted)")
                print(evaluation.confusionTable())
            }
            if errors {
                print("\nerrors:")
                for (message, result) in zip(messages, results)
                where message.intent != result.intent || message.urgency != result.urgency {
                    let text = message.text.replacingOccurrences(of: "\n", with: " ").prefix(110)
                    print("  \(message.id ?? "-") intent \(message.intent?.rawValue ?? "-")→\(result.intent.rawValue) urgency \(message.urgency?.rawValue ?? "-")→\(result.urgency.rawValue) | \(text)")
                }
            }
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the reasoning behind one message's classification.")
        @Argument(help: "The message text.") var text: String
        @Option(help: "The channel: email, sms, webchat, portal.") var channel: String?
        @Option(help: "The subject (email, portal).") var subject: String?
        @Flag(help: "Print machine-readable JSON.") var json = false

        func run() async throws {
            let result = TriageClassifier.shared.classify(channel: channel, subject: subject, text: text)
            if json { print(result.json.text); return }
            func top<L: RawRepresentable>(_ confidences: [L: Double]) -> String where L.RawValue == String {
                confidences.sorted { $0.value > $1.value }.prefix(3).map { String(format: "%@ %.2f", $0.key.rawValue, $0.value) }.joined(separator: ", ")
            }
            print("intent    \(result.intent.rawValue)   (\(top(result.intentConfidence)))")
            print("          because of: \(result.intentTerms.joined(separator: ", "))")
            print("urgency   \(result.urgency.rawValue)   (\(top(result.urgencyConfidence)))")
            print("          \(result.urgencyReason)")
            for flag in result.redFlags { print("          red flag \(flag.rule): \"\(flag.phrase)\"") }
            for flag in result.suppressedRedFlags { print("          set aside \(flag.rule): \"\(flag.phrase)\" — \(flag.setAsideBecause ?? "")") }
            if !result.urgencyTerms.isEmpty { print("          learned terms: \(result.urgencyTerms.joined(separator: ", "))") }
            print(String(format: "language  %@   (%.2f of the evidence)", result.language.rawValue, result.languageConfidence))
        }
    }
}

/// k-fold cross-validation on the shipped corpus: how to tune the classifier without
/// touching an evaluation set.
struct CrossValidate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crossval", abstract: "Cross-validate the classifier on its own training corpus.")
    @Option(help: "Number of folds.") var folds = 5
    @Option(help: "Learned emergency threshold to try.") var emergencyThreshold = 0.35
    @Option(help: "Learned urgent threshold to try.") var urgentThreshold = 0.45
    @Flag(help: "List the emergencies missed and the false alarms.") var errors = false

    func run() async throws {
        let corpus = TriageClassifier.embeddedCorpus()
        var intents: [(String, String)] = []
        var urgencies: [(String, String)] = []
        for fold in 0..<folds {
            let training = corpus.enumerated().filter { $0.offset % folds != fold }.map(\.element)
            let held = corpus.enumerated().filter { $0.offset % folds == fold }.map(\.element)
            let classifier = TriageClassifier(corpus: training, emergencyThreshold: emergencyThreshold, urgentThreshold: urgentThreshold)
            for message in held {
                let result = classifier.classify(channel: message.channel, subject: message.subject, text: message.text)
                if let intent = message.intent { intents.append((intent.rawValue, result.intent.rawValue)) }
                if let urgency = message.urgency { urgencies.append((urgency.rawValue, result.urgency.rawValue)) }
                if errors, (message.urgency == .emergency) != (result.urgency == .emergency) {
                    let text = message.text.replacingOccurrences(of: "\n", with: " ").prefix(140)
                    print("\(message.urgency == .emergency ? "MISSED" : "FALSE ") \(message.id ?? "-") [\(result.urgencyReason)] \(text)")
                }
            }
        }
        let intentEvaluation = Evaluation(pairs: intents)
        let urgencyEvaluation = Evaluation(pairs: urgencies)
        let emergency = urgencyEvaluation.scores(for: "emergency")
        print("\(folds)-fold cross-validation over \(corpus.count) messages")
        print(String(format: "intent accuracy    %.3f", intentEvaluation.accuracy))
        print(String(format: "urgency accuracy   %.3f", urgencyEvaluation.accuracy))
        print(String(format: "emergency recall   %.3f  precision %.3f", emergency.recall, emergency.precision))
        print(urgencyEvaluation.confusionTable())
    }
}

/// Precision, recall and a confusion matrix for one label set.
struct Evaluation {
    let pairs: [(truth: String, predicted: String)]
    var labels: [String] { Array(Set(pairs.flatMap { [$0.truth, $0.predicted] })).sorted() }
    var accuracy: Double { pairs.isEmpty ? 0 : Double(pairs.filter { $0.truth == $0.predicted }.count) / Double(pairs.count) }

    func scores(for label: String) -> (precision: Double, recall: Double, support: Int) {
        let truePositives = pairs.filter { $0.truth == label && $0.predicted == label }.count
        let predicted = pairs.filter { $0.predicted == label }.count
        let actual = pairs.filter { $0.truth == label }.count
        return (predicted == 0 ? 0 : Double(truePositives) / Double(predicted), actual == 0 ? 0 : Double(truePositives) / Double(actual), actual)
    }

    var perLabel: [String: [String: Double]] {
        Dictionary(uniqueKeysWithValues: labels.map { label in
            let s = scores(for: label)
            return (label, ["precision": s.precision, "recall": s.recall, "support": Double(s.support)])
        })
    }

    func confusionTable() -> String {
        let labels = labels
        let short = labels.map { String($0.prefix(8)) }
        var lines = ["  " + "".padding(toLength: 20, withPad: " ", startingAt: 0) + short.map { $0.padding(toLength: 9, withPad: " ", startingAt: 0) }.joined()]
        for truth in labels {
            let counts = labels.map { predicted in pairs.filter { $0.truth == truth && $0.predicted == predicted }.count }
            lines.append("  " + truth.padding(toLength: 20, withPad: " ", startingAt: 0)
                         + counts.map { String($0).padding(toLength: 9, withPad: " ", startingAt: 0) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}
