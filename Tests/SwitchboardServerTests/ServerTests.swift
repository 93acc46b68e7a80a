import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import SwitchboardConfig
@testable import SwitchboardCore
@testable import SwitchboardServer
@testable import SwitchboardStore

/// The application in process, through the same `buildApplication` the daemon runs.
@Suite struct ServerTests {
    let secretText = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    func makeApp() throws -> (some ApplicationProtocol, SwitchboardStore, LogOutput) {
        var configuration = SwitchboardConfiguration()
        configuration.http.port = 0
        configuration.portal.webhookSecret = try StandardWebhooks.Secret(secretText)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-server-\(UUID().uuidString)")
        let store = try SwitchboardStore(path: directory.appendingPathComponent("switchboard.sqlite").path)
        let output = LogOutput(capturing: ())
        let logger = Logger(label: "test") { LogfmtLogHandler(label: $0, level: .debug, format: .logfmt, output: output) }
        let app = buildApplication(SwitchboardDependencies(configuration: configuration, store: store, logger: logger, prometheus: nil))
        return (app, store, output)
    }

    func signedHeaders(_ body: String, id: String = "wh_\(UUID().uuidString)", at: Int64? = nil) throws -> HTTPFields {
        let timestamp = at ?? Int64(Date().timeIntervalSince1970)
        let signature = StandardWebhooks.signature(id: id, timestamp: timestamp, body: Array(body.utf8), secret: try .init(secretText))
        return [.contentType: "application/json", HTTPField.Name("webhook-id")!: id,
                HTTPField.Name("webhook-timestamp")!: String(timestamp), HTTPField.Name("webhook-signature")!: signature]
    }

    let body = #"{"type":"message.created","patient":{"id":"P-7","name":"Zebulon Quixote","phone":"+1 555 867 5309"},"message":{"id":"M-7","text":"my rash ZQX","sent_at":"2026-11-29T10:00:00Z"}}"#

    @Test func webhookThenAgentFlow() async throws {
        let (app, store, output) = try makeApp()
        let token = try await store.createAgent(name: "A", email: "a@example.org", role: .agent, team: nil).token
        try await app.test(.router) { client in
            let headers = try signedHeaders(body, id: "wh-fixed")
            var conversationID = ""
            try await client.execute(uri: "/webhooks/portal", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .accepted)
                let json = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: String]
                conversationID = json?["conversation_id"] ?? ""
            }
            #expect(conversationID.hasPrefix("cnv_"))
            try await client.execute(uri: "/webhooks/portal", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .accepted)
                #expect(String(buffer: response.body).contains(conversationID))
            }
            try await client.execute(uri: "/api/v1/conversations", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("\"code\":\"unauthorized\""))
            }
            let auth: HTTPFields = [.authorization: "Bearer \(token)"]
            try await client.execute(uri: "/api/v1/conversations?assignee=unassigned", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains(conversationID))
            }
            try await client.execute(uri: "/api/v1/conversations?status=bogus", method: .get, headers: auth) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("status"))
            }
            try await client.execute(uri: "/api/v1/conversations/\(conversationID)", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("my rash ZQX"))
            }
            try await client.execute(uri: "/api/v1/conversations/cnv_nope", method: .get, headers: auth) { response in
                #expect(response.status == .notFound)
            }
            var replyHeaders = auth
            replyHeaders[.contentType] = "application/json"
            try await client.execute(uri: "/api/v1/conversations/\(conversationID)/messages", method: .post,
                                     headers: replyHeaders, body: ByteBuffer(string: #"{"text":"We will call you"}"#)) { response in
                #expect(response.status == .accepted)
                #expect(String(buffer: response.body).contains("\"delivery_status\":\"queued\""))
            }
            try await client.execute(uri: "/api/v1/conversations/\(conversationID)/messages", method: .post,
                                     headers: replyHeaders, body: ByteBuffer(string: #"{"txt":"x"}"#)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("text"))
            }
        }
        #expect(try await store.count("messages") == 2)
        let log = output.capturedLines.joined()
        #expect(log.contains("portal message stored"))
        for phi in ["Zebulon", "5309", "rash", "ZQX", "We will call you"] {
            #expect(!log.contains(phi), "log contains patient data")
        }
    }

    @Test(arguments: [
        ("application/json", true), ("Application/JSON; charset=utf-8", true), (" application/json ;x", true),
        ("\tapplication/json", true), ("application/json;", true), ("application/jsonx", false), ("application/js", false),
        ("text/plain", false), ("", false), ("application/ json", false),
    ])
    func contentTypeIsComparedByMediaType(value: String, matches: Bool) {
        #expect(Request.mediaType(value, is: "application/json") == matches)
    }

    @Test func webhookRefusals() async throws {
        let (app, store, _) = try makeApp()
        try await app.test(.router) { client in
            var headers = try signedHeaders(body)
            headers[.contentType] = "text/plain"
            try await client.execute(uri: "/webhooks/portal", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .unsupportedMediaType)
            }
            let stale = try signedHeaders(body, at: Int64(Date().timeIntervalSince1970) - 301)
            try await client.execute(uri: "/webhooks/portal", method: .post, headers: stale, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("webhook-timestamp"))
            }
            try await client.execute(uri: "/webhooks/portal", method: .post, headers: try signedHeaders(body),
                                     body: ByteBuffer(string: body.replacingOccurrences(of: "ZQX", with: "ZQY"))) { response in
                #expect(response.status == .unauthorized)
            }
            let missing = #"{"type":"message.created","patient":{"id":"P"},"message":{"id":"M","sent_at":"2026-11-29T10:00:00Z"}}"#
            try await client.execute(uri: "/webhooks/portal", method: .post, headers: try signedHeaders(missing), body: ByteBuffer(string: missing)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("message.text"))
            }
            let badPhone = body.replacingOccurrences(of: "+1 555 867 5309", with: "call me")
            try await client.execute(uri: "/webhooks/portal", method: .post, headers: try signedHeaders(badPhone), body: ByteBuffer(string: badPhone)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("patient.phone"))
            }
            let huge = #"{"type":"message.created","patient":{"id":"P"},"message":{"id":"M","text":""# + String(repeating: "a", count: 300_000) + #"","sent_at":"2026-11-29T10:00:00Z"}}"#
            try await client.execute(uri: "/webhooks/portal", method: .post, headers: try signedHeaders(huge), body: ByteBuffer(string: huge)) { response in
                #expect(response.status == .contentTooLarge)
            }
        }
        #expect(try await store.count("messages") == 0)
        #expect(try await store.count("inbound_journal") == 0)
    }
}
