// The yardstick for the ingest benchmark: the smallest Hummingbird server, built from the
// same dependencies and in the same configuration as switchboardd, answering the benchmark's
// POSTs with what switchboardd answers, fixed: /webhooks/portal a 202 with a JSON body of the
// same size, /webhooks/sms/twilio an empty TwiML 200.
// What switchboardd adds on top — signature check, JSON decoding, the durable commit,
// triage and routing — is the difference between the two rates.
//
//     hello-bench PORT      (binds 127.0.0.1)
import Hummingbird

@main
struct HelloBench {
    static func main() async throws {
        let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8081
        let router = Router()
        let answer = #"{"conversation_id":"cnv_aaaaaaaaaaaaaaaaaaaaaaaaaa","message_id":"msg_aaaaaaaaaaaaaaaaaaaaaaaaaa"}"#
        router.post("/webhooks/portal") { request, _ -> Response in
            _ = try await request.body.collect(upTo: 262_144)
            return Response(status: .accepted, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: answer)))
        }
        router.post("/webhooks/sms/twilio") { request, _ -> Response in
            _ = try await request.body.collect(upTo: 65_536)
            return Response(status: .ok, headers: [.contentType: "text/xml"],
                            body: .init(byteBuffer: ByteBuffer(string: #"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#)))
        }
        router.get("/readyz") { _, _ in "ok" }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
    }
}
