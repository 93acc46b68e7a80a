import Foundation
import Testing
@testable import SwitchboardMail

/// Golden files: each `Golden/NN-name.eml` (a real client's message shape) beside
/// `NN-name.json`, what the parser must extract from it. A change in what the parser
/// extracts shows as a failing comparison; after reviewing that the new output is right,
/// `SWITCHBOARD_UPDATE_GOLDEN=1 swift test --filter GoldenTests` rewrites the JSON files.
@Suite struct GoldenTests {
    struct Extracted: Codable, Equatable {
        struct Attachment: Codable, Equatable {
            var filename: String?
            var contentType: String
            var size: Int
            var contentID: String?
            var inline: Bool
            var kept: Bool
            /// The first 16 decoded bytes, hex: enough to see the transfer decoding worked.
            var head: String?
        }

        struct Report: Codable, Equatable {
            struct Recipient: Codable, Equatable {
                var finalRecipient: String?
                var action: String
                var status: String?
                var diagnosticCode: String?
            }

            var originalMessageID: String?
            var isFailure: Bool
            var recipients: [Recipient]
        }

        var messageID: String?
        var inReplyTo: [String]
        var references: [String]
        var subject: String?
        var from: [String]
        var to: [String]
        var cc: [String]
        var replyTo: [String]
        var date: String?
        var text: String
        var reply: String
        var quoted: String?
        var html: String?
        var attachments: [Attachment]
        var droppedAttachments: Int
        var truncatedParts: Int
        var autoReply: String?
        var deliveryReport: Report?

        init(_ mail: ParsedMail) {
            func render(_ addresses: [MailAddress]) -> [String] {
                addresses.map { address in address.displayName.map { "\($0) <\(address.address)>" } ?? address.address }
            }
            messageID = mail.messageID
            inReplyTo = mail.inReplyTo
            references = mail.references
            subject = mail.subject
            from = render(mail.from)
            to = render(mail.to)
            cc = render(mail.cc)
            replyTo = render(mail.replyTo)
            date = mail.date.map { ISO8601DateFormatter().string(from: $0) }
            text = mail.text
            reply = mail.reply
            quoted = mail.quoted
            html = mail.html
            attachments = mail.attachments.map {
                Attachment(filename: $0.filename, contentType: $0.contentType, size: $0.size, contentID: $0.contentID,
                           inline: $0.isInline, kept: $0.data != nil,
                           head: $0.data.map { $0.prefix(16).map { String(format: "%02x", $0) }.joined() })
            }
            droppedAttachments = mail.droppedAttachments
            truncatedParts = mail.truncatedParts
            autoReply = mail.autoReply?.rawValue
            deliveryReport = mail.deliveryReport.map { report in
                Report(originalMessageID: report.originalMessageID, isFailure: report.isFailure,
                       recipients: report.recipients.map {
                           .init(finalRecipient: $0.finalRecipient, action: $0.action, status: $0.status, diagnosticCode: $0.diagnosticCode)
                       })
            }
        }
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    static var messages: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".eml") }.sorted()
    }

    @Test func thereAreGoldenFiles() {
        #expect(Self.messages.count >= 10)
    }

    @Test(arguments: GoldenTests.messages)
    func parserOutputMatchesTheGoldenFile(_ name: String) throws {
        let raw = try Data(contentsOf: Self.directory.appendingPathComponent(name))
        let actual = Extracted(MIMEParser.parse(Array(raw)))
        let expectedURL = Self.directory.appendingPathComponent(String(name.dropLast(4)) + ".json")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if ProcessInfo.processInfo.environment["SWITCHBOARD_UPDATE_GOLDEN"] == "1" {
            try (encoder.encode(actual) + Data("\n".utf8)).write(to: expectedURL)
            return
        }
        let expected = try JSONDecoder().decode(Extracted.self, from: Data(contentsOf: expectedURL))
        #expect(actual == expected, "\(name): the parser's output changed; review, then SWITCHBOARD_UPDATE_GOLDEN=1")
    }
}
