import Foundation
import Testing
@testable import SwitchboardCore

/// The Standard Webhooks specification's published example, then a matrix of ways a
/// request can be wrong.
@Suite struct StandardWebhooksTests {
    // From the specification (standard-webhooks/standard-webhooks, spec/standard-webhooks.md).
    let secret = try! StandardWebhooks.Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    let timestamp: Int64 = 1_614_265_330
    let body = Array(#"{"test": 2432232314}"#.utf8)
    let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    var now: Date { Date(timeIntervalSince1970: TimeInterval(timestamp) + 10) }

    func verify(id: String? = nil, timestamp: String? = nil, signature: String? = nil, body: [UInt8]? = nil,
                secret: StandardWebhooks.Secret? = nil, now: Date? = nil) throws(StandardWebhooks.VerificationError) {
        try StandardWebhooks.verify(id: id ?? self.id, timestamp: timestamp ?? String(self.timestamp),
                                    signatureHeader: signature ?? expected, body: body ?? self.body,
                                    secret: secret ?? self.secret, now: now ?? self.now, toleranceSeconds: 300)
    }

    @Test func signsTheSpecificationExample() {
        #expect(StandardWebhooks.signature(id: id, timestamp: timestamp, body: body, secret: secret) == expected)
    }

    @Test func verifiesTheSpecificationExample() throws {
        try verify()
    }

    @Test func acceptsAnyOfSeveralSignatures() throws {
        try verify(signature: "v1,Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI= \(expected)")
        try verify(signature: "v1a,abc \(expected)")
    }

    @Test func rejectsATamperedBody() {
        #expect(throws: StandardWebhooks.VerificationError.noValidSignature) {
            try verify(body: Array(#"{"test": 2432232315}"#.utf8))
        }
    }

    @Test func rejectsAnotherSecret() throws {
        let other = try StandardWebhooks.Secret("whsec_" + Data(repeating: 7, count: 24).base64EncodedString())
        #expect(throws: StandardWebhooks.VerificationError.noValidSignature) { try verify(secret: other) }
    }

    @Test func rejectsAnotherIDOrTimestamp() {
        #expect(throws: StandardWebhooks.VerificationError.noValidSignature) { try verify(id: "msg_other") }
        #expect(throws: StandardWebhooks.VerificationError.noValidSignature) { try verify(timestamp: String(timestamp + 1)) }
    }

    @Test func rejectsStaleAndFutureTimestamps() {
        let late = Date(timeIntervalSince1970: TimeInterval(timestamp) + 301)
        let early = Date(timeIntervalSince1970: TimeInterval(timestamp) - 301)
        #expect(throws: StandardWebhooks.VerificationError.timestampTooOld) { try verify(now: late) }
        #expect(throws: StandardWebhooks.VerificationError.timestampInFuture) { try verify(now: early) }
    }

    @Test func rejectsMissingAndMalformedHeaders() {
        #expect(throws: StandardWebhooks.VerificationError.missingHeader("webhook-id")) {
            try StandardWebhooks.verify(id: nil, timestamp: "1", signatureHeader: "v1,x", body: body, secret: secret, now: now, toleranceSeconds: 300)
        }
        #expect(throws: StandardWebhooks.VerificationError.missingHeader("webhook-timestamp")) {
            try StandardWebhooks.verify(id: id, timestamp: nil, signatureHeader: "v1,x", body: body, secret: secret, now: now, toleranceSeconds: 300)
        }
        #expect(throws: StandardWebhooks.VerificationError.missingHeader("webhook-signature")) {
            try StandardWebhooks.verify(id: id, timestamp: String(timestamp), signatureHeader: "", body: body, secret: secret, now: now, toleranceSeconds: 300)
        }
        #expect(throws: StandardWebhooks.VerificationError.invalidTimestamp) { try verify(timestamp: "16142653x0") }
        #expect(throws: StandardWebhooks.VerificationError.noValidSignature) { try verify(signature: "v1,not-base64!!") }
        #expect(throws: StandardWebhooks.VerificationError.noValidSignature) { try verify(signature: String(expected.dropFirst(3))) }
        #expect(throws: StandardWebhooks.VerificationError.noValidSignature) { try verify(signature: "v2," + expected.dropFirst(3)) }
    }

    @Test func parsesSecrets() throws {
        #expect(throws: StandardWebhooks.Secret.ParseError.empty) { try StandardWebhooks.Secret("whsec_") }
        #expect(throws: StandardWebhooks.Secret.ParseError.notBase64) { try StandardWebhooks.Secret("whsec_***") }
        #expect(throws: StandardWebhooks.Secret.ParseError.tooShort) { try StandardWebhooks.Secret("whsec_AAAA") }
        // The prefix is optional; surrounding white space (a file's newline) is ignored.
        let bare = try StandardWebhooks.Secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
        #expect(StandardWebhooks.signature(id: id, timestamp: timestamp, body: body, secret: bare) == expected)
    }

    @Test func errorDescriptionsNameHeadersNotValues() {
        let errors: [StandardWebhooks.VerificationError] = [.missingHeader("webhook-id"), .invalidTimestamp, .timestampTooOld, .timestampInFuture, .noValidSignature]
        for error in errors {
            #expect(!error.description.contains(expected))
            #expect(error.description.contains("webhook-"))
        }
    }
}
