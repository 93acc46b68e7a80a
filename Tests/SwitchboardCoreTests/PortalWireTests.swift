import Foundation
import Testing
@testable import SwitchboardCore

@Suite struct PortalWireTests {
    let valid = #"{"type":"message.created","patient":{"id":"P-1001","name":"Ana","phone":"+1 555 010 0000","email":"Ana@Example.org"},"thread_id":"T-1","message":{"id":"M-1","text":"Hello","sent_at":"2026-11-29T10:00:00Z"}}"#

    func decode(_ text: String) throws(PortalInboundEvent.DecodingError) -> PortalInboundEvent {
        try PortalInboundEvent.decode(Array(text.utf8))
    }

    @Test func decodesTheDocumentedBody() throws {
        let event = try decode(valid)
        #expect(event.patient == .init(id: "P-1001", name: "Ana", phone: "+1 555 010 0000", email: "Ana@Example.org"))
        #expect(event.threadID == "T-1")
        #expect(event.message.id == "M-1")
        #expect(event.message.text == "Hello")
        #expect(event.message.sentAt == 1_795_946_400_000)
    }

    @Test func optionalFieldsMayBeAbsentOrNull() throws {
        let event = try decode(#"{"type":"message.created","patient":{"id":"P-1","phone":null},"message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00.250+01:00"}}"#)
        #expect(event.threadID == nil)
        #expect(event.patient.phone == nil)
        #expect(event.message.sentAt == 1_795_942_800_250)
    }

    @Test(arguments: [
        (#"{"type":"message.created","patient":{"id":"P"},"message":{"id":"M","sent_at":"2026-11-29T10:00:00Z"}}"#, "message.text"),
        (#"{"type":"message.created","patient":{},"message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#, "patient.id"),
        (#"{"type":"message.created","message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#, "patient"),
        (#"{"type":"message.created","patient":{"id":"P"},"message":{"text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#, "message.id"),
        (#"{"type":"message.created","patient":{"id":"P"},"message":{"id":"M","text":"x"}}"#, "message.sent_at"),
        (#"{"type":"message.created","patient":{"id":"P"},"message":{"id":"M","text":"x","sent_at":"yesterday"}}"#, "message.sent_at"),
        (#"{"type":"message.created","patient":{"id":42},"message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#, "patient.id"),
        (#"{"type":"message.created","patient":{"id":"P"},"message":{"id":"M","text":"  ","sent_at":"2026-11-29T10:00:00Z"}}"#, "message.text"),
        (#"{"type":"message.created","patient":{"id":"P","email":"nope"},"message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#, "patient.email"),
        (#"{"type":"message.created","patient":{"id":"P"},"thread_id":"","message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#, "thread_id"),
        (#"{"type":"message.deleted","patient":{"id":"P"},"message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#, "type"),
        (#"{"patient":{"id":"P"},"message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#, "type"),
        (#"{"type":"message.created","patient":"P","message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#, "patient"),
    ])
    func namesTheBadField(body: String, field: String) {
        #expect {
            try decode(body)
        } throws: { error in
            (error as? PortalInboundEvent.DecodingError)?.field == field
                && (error as! PortalInboundEvent.DecodingError).description.contains(field)
        }
    }

    @Test(arguments: ["", "{", "[]", "null", "\"text\"", "{\"type\":"])
    func rejectsMalformedJSON(body: String) {
        #expect(throws: PortalInboundEvent.DecodingError.malformedJSON) { try decode(body) }
    }

    @Test func errorsNeverEchoValues() {
        let secretText = "my rash is spreading"
        let body = #"{"type":"message.created","patient":{"id":"P","email":"\#(secretText)"},"message":{"id":"M","text":"x","sent_at":"2026-11-29T10:00:00Z"}}"#
        do {
            _ = try decode(body)
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains(secretText))
        }
    }

    @Test func encodesTheOutboundBodyDeterministically() throws {
        let event = PortalOutboundEvent(patientID: "P-1001", threadID: "T-1", messageID: "msg_1", text: "Hi \"there\"/", sentAt: 1_795_946_400_123)
        let bytes = event.encoded()
        #expect(bytes == event.encoded())
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["type"] as? String == "message.created")
        #expect((object["patient"] as? [String: Any])?["id"] as? String == "P-1001")
        #expect(object["thread_id"] as? String == "T-1")
        let message = try #require(object["message"] as? [String: Any])
        #expect(message["id"] as? String == "msg_1")
        #expect(message["text"] as? String == "Hi \"there\"/")
        #expect(message["sent_at"] as? String == "2026-11-29T10:00:00.123Z")
    }
}

@Suite struct JSONTextTests {
    @Test func quotesControlCharactersAndOptionallyHTML() {
        #expect(JSONText.quote("a\"b\\c\n\u{1}") == #""a\"b\\c\n\u0001""#)
        #expect(JSONText.quote("<b>&") == #""<b>&""#)
        #expect(JSONText.quote("<b>&\u{2028}", escapingHTML: true) == #""\u003cb\u003e\u0026\u2028""#)
    }
}
