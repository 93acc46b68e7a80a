import Foundation
import Logging
import Testing
@testable import SwitchboardCore

@Suite struct PhoneNumberTests {
    @Test(arguments: [
        ("+1 (555) 010-0000", "1", "+15550100000"),
        ("+15550100000", "1", "+15550100000"),
        ("555.010.0000", "1", "+15550100000"),
        ("1-555-010-0000", "1", "+15550100000"),
        ("0044 20 7946 0000", "1", "+442079460000"),
        ("020 7946 0000", "44", "+442079460000"),
        ("  +34 612 34 56 78 ", "1", "+34612345678"),
    ])
    func normalises(raw: String, country: String, expected: String) throws {
        #expect(try PhoneNumber.normalise(raw, defaultCountryCode: country) == expected)
    }

    @Test(arguments: ["call me", "+1 555 010 000x", "12", "+1234567890123456", "5+55"])
    func rejects(raw: String) {
        #expect(throws: PhoneNumber.Error.self) { try PhoneNumber.normalise(raw, defaultCountryCode: "1") }
    }
}

@Suite struct TimestampTests {
    @Test func formatsAndParsesRoundTrip() {
        #expect(Timestamp.format(0) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.format(1_795_946_400_007) == "2026-11-29T10:00:00.007Z")
        #expect(Timestamp.parse("2026-11-29T10:00:00.007Z") == 1_795_946_400_007)
        #expect(Timestamp.parse("2026-11-29T11:00:00+01:00") == 1_795_946_400_000)
        #expect(Timestamp.parse("2026-11-29") == nil)
    }

    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)),
        ("1969-12-31T23:59:59.999Z", Int64(-1)),
        ("2000-02-29T12:00:00Z", Int64(951_825_600_000)),
        ("2026-11-29t10:00:00.0079z", Int64(1_795_946_400_007)),
        ("2026-11-29T10:00:00.5Z", Int64(1_795_946_400_500)),
        ("2026-11-29T04:30:00-05:30", Int64(1_795_946_400_000)),
        ("0001-01-01T00:00:00Z", Int64(-62_135_596_800_000)),
    ])
    func parsesInternetDateTimes(text: String, expected: Int64) {
        #expect(Timestamp.parse(text) == expected)
    }

    @Test(arguments: [
        "", "2026-11-29T10:00:00", "2026-11-29 10:00:00Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-29T24:00:00Z", "2026-11-29T10:60:00Z",
        "2026-11-29T10:00:60Z", "2026-11-29T10:00:00.Z", "2026-11-29T10:00:00+0100", "2026-11-29T10:00:00+24:00",
        "2026-11-29T10:00:00Z ", "+2026-11-29T10:00:00Z", "2026-1-29T10:00:00Z", "２０２６-11-29T10:00:00Z",
    ])
    func refusesAnythingElse(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    /// The hand-written parser agrees with Foundation's (what it replaced) on random
    /// instants from 1900 to 2100 written with random offsets.
    @Test func agreesWithFoundation() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let millis = Int64.random(in: -2_208_988_800_000...4_102_444_800_000, using: &generator)
            let offset = Int.random(in: -14 * 60...14 * 60, using: &generator)
            let formatter = ISO8601DateFormatter()
            formatter.timeZone = TimeZone(secondsFromGMT: offset * 60)
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let text = formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
            let expected = formatter.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
            #expect(Timestamp.parse(text) == expected, "\(text)")
        }
    }
}

@Suite struct IdentifierTests {
    @Test func identifiersArePrefixedUniqueAndBase32() {
        let ids = (0..<1000).map { _ in Identifier.make(prefix: "msg") }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.hasPrefix("msg_"))
            #expect(id.count == 4 + 26)
            #expect(id.dropFirst(4).allSatisfy { "abcdefghijklmnopqrstuvwxyz234567".contains($0) })
        }
        #expect(Identifier.base32([0xFF]) == "74")
        #expect(Identifier.base32(Array("foobar".utf8)) == "mzxw6ytboi")
        // Every base32 digit position takes many values: no random byte is stuck.
        for position in 4..<(4 + 25) {
            let digits = Set(ids.map { Array($0)[position] })
            #expect(digits.count > 16, "position \(position) took only \(digits.count) values")
        }
    }

    @Test func orderedIdentifiersHaveTheSameShapeAndSortByCreationTime() {
        let start = Date(timeIntervalSince1970: 1_796_670_481.123)
        // A thousand instants a millisecond or more apart, many ids at each of a few of them.
        let instants = (0..<1000).map { start.addingTimeInterval(Double($0) * 0.001 + Double($0 * $0) * 0.5) }
        let ids = instants.map { Identifier.makeOrdered(prefix: "cnv", now: $0) }
        #expect(ids == ids.sorted(), "ids made later sort later, byte by byte")
        let sameMillisecond = (0..<1000).map { _ in Identifier.makeOrdered(prefix: "cnv", now: start) }
        #expect(Set(sameMillisecond).count == 1000, "80 random bits tell ids of one millisecond apart")
        for id in ids + sameMillisecond {
            #expect(id.hasPrefix("cnv_"))
            #expect(id.count == 4 + 26)
            #expect(id.dropFirst(4).allSatisfy { "abcdefghijklmnopqrstuvwxyz234567".contains($0) })
        }
        // The first 9 digits (45 bits) are the time's; the random part varies in every digit after it.
        #expect(Set(sameMillisecond.map { $0.prefix(4 + 9) }).count == 1)
        for position in (4 + 10)..<(4 + 25) {
            let digits = Set(sameMillisecond.map { Array($0)[position] })
            #expect(digits.count > 16, "position \(position) took only \(digits.count) values")
        }
        // Across the epoch's whole range the order holds too (the alphabet is in byte order).
        let far = [0.0, 1.0, 1_000_000_000, 4_000_000_000, 200_000_000_000].map {
            Identifier.makeOrdered(prefix: "msg", now: Date(timeIntervalSince1970: $0))
        }
        #expect(far == far.sorted())
    }

    @Test(arguments: [0, 1, 7, 8, 9, 16, 33])
    func randomBytesGivesExactlyTheCountAsked(count: Int) {
        var generator = SystemRandomNumberGenerator()
        #expect(Identifier.randomBytes(count, using: &generator).count == count)
    }
}

@Suite struct LogfmtTests {
    @Test func writesOneEscapedLinePerEvent() {
        let output = LogOutput(capturing: ())
        var logger = Logger(label: "test") { LogfmtLogHandler(label: $0, level: .info, format: .logfmt, output: output) }
        logger[metadataKey: "conversation.id"] = "cnv_1"
        logger.info("hello world", metadata: ["note": "a \"quoted\"\nsecond=line"])
        logger.debug("not shown")
        let lines = output.capturedLines
        #expect(lines.count == 1)
        let line = lines[0]
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().contains("\n") == false)
        #expect(line.contains("level=info"))
        #expect(line.contains(#"msg="hello world""#))
        #expect(line.contains("conversation.id=cnv_1"))
        #expect(line.contains(#"note="a \"quoted\"\nsecond=line""#))
    }

    @Test func writesJSONLines() throws {
        let output = LogOutput(capturing: ())
        let logger = Logger(label: "test") { LogfmtLogHandler(label: $0, level: .info, format: .json, output: output) }
        logger.warning("x", metadata: ["k": "v"])
        let line = try #require(output.capturedLines.first)
        #expect(line.hasPrefix("{") && line.hasSuffix("}\n"))
        #expect(line.contains(#""level":"warning""#) && line.contains(#""k":"v""#))
    }
}
