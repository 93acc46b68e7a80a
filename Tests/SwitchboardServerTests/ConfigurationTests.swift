import Foundation
import Testing
@testable import SwitchboardConfig

@Suite struct ConfigurationTests {
    func write(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sb-config-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func problem(file: String? = nil, environment: [String: String] = [:]) async -> SwitchboardConfiguration.Problem? {
        do {
            _ = try await SwitchboardConfiguration.load(file: file, environment: environment)
            return nil
        } catch {
            return error as? SwitchboardConfiguration.Problem
        }
    }

    @Test func embeddedDefaults() async throws {
        let config = try await SwitchboardConfiguration.load(file: nil, environment: [:])
        #expect(config.http.host == "127.0.0.1" && config.http.port == 8080)
        #expect(config.store.path == "./var/switchboard.sqlite")
        #expect(config.portal.webhookSecret == nil && config.portal.maxBodyBytes == 262_144)
        #expect(config.portal.timestampToleranceSeconds == 300)
    }

    @Test func fileThenEnvironment() async throws {
        let file = try write("http:\n  port: 9000\n  host: 0.0.0.0\nlog:\n  level: debug\n")
        let config = try await SwitchboardConfiguration.load(file: file, environment: ["SWITCHBOARD_HTTP_PORT": "9100"])
        #expect(config.http.port == 9100)
        #expect(config.http.host == "0.0.0.0")
        #expect(config.log.level == "debug")
    }

    @Test func secretsFromFilesWin() async throws {
        let secretFile = try write("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
        let config = try await SwitchboardConfiguration.load(file: nil, environment: [
            "SWITCHBOARD_PORTAL_WEBHOOK_SECRET": "whsec_bm90IHRoaXMgb25lIGF0IGFsbA==",
            "SWITCHBOARD_PORTAL_WEBHOOK_SECRET_FILE": secretFile,
        ])
        #expect(config.portal.webhookSecret != nil)
        #expect(await problem(environment: ["SWITCHBOARD_PORTAL_WEBHOOK_SECRET_FILE": "/nonexistent/secret"])?.key
                == "portal.webhook_secret_file")
    }

    /// ServiceLifecycle and others print values with `\(…)`: secrets must not show.
    @Test func descriptionsRedactSecrets() async throws {
        let config = try await SwitchboardConfiguration.load(file: nil, environment: [
            "SWITCHBOARD_TWILIO_AUTH_TOKEN": "tok-abcdef-123456",
            "SWITCHBOARD_KANNEL_SHARED_SECRET": "kannel-secret-0123456789",
            "SWITCHBOARD_KANNEL_PASSWORD": "kannel-pass-xyz",
            "SWITCHBOARD_PORTAL_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ])
        #expect(config.twilio.authToken?.value == "tok-abcdef-123456")
        for text in [String(describing: config), String(reflecting: config), "\(config.twilio)", "\(config.kannel)"] {
            for secret in ["tok-abcdef-123456", "kannel-secret-0123456789", "kannel-pass-xyz", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
                #expect(!text.contains(secret))
            }
        }
    }

    @Test func badValuesNameTheKey() async throws {
        #expect(await problem(file: try write("http:\n  port: notaport\n"))?.key == "http.port")
        #expect(await problem(file: try write("http:\n  port: 70000\n"))?.reason == "must be between 0 and 65535")
        #expect(await problem(environment: ["SWITCHBOARD_LOG_LEVEL": "loud"])?.key == "log.level")
        #expect(await problem(environment: ["SWITCHBOARD_PORTAL_WEBHOOK_SECRET": "whsec_***"])?.key == "portal.webhook_secret")
        #expect(await problem(environment: ["SWITCHBOARD_PORTAL_OUTBOUND_URL": "ftp://x"])?.key == "portal.outbound_url")
        #expect(await problem(environment: ["SWITCHBOARD_PORTAL_OUTBOUND_URL": "http://portal.example/hook"])?.key == "portal.outbound_secret")
        #expect(await problem(environment: ["SWITCHBOARD_OUTBOX_INITIAL_BACKOFF_MS": "999999"])?.key == "outbox.initial_backoff_ms")
    }

    @Test func unknownKeysAndSectionsAreRefused() async throws {
        #expect(await problem(file: try write("htp:\n  port: 1\n"))?.key == "htp")
        #expect(await problem(file: try write("http:\n  prot: 1\n"))?.key == "http.prot")
        #expect(await problem(file: try write("http:\n  port: [1, 2]\n"))?.key == "http.port")
        #expect(await problem(file: try write("http: [\n"))?.reason == "is not valid YAML")
        #expect(await problem(file: "/nonexistent/switchboard.yaml")?.key == "/nonexistent/switchboard.yaml")
    }

    /// The example configuration documents every key, with its embedded default, and loads.
    @Test func exampleFileDocumentsEveryKey() async throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/switchboard.example.yaml").path
        let text = try String(contentsOfFile: example, encoding: .utf8)
        for key in SwitchboardConfiguration.keys {
            let leaf = String(key.name.split(separator: ".")[1])
            #expect(text.contains("\(leaf):"), "deploy/switchboard.example.yaml does not document \(key.name)")
            #expect(text.contains(SwitchboardConfiguration.environmentName(key.name)), "no env name for \(key.name)")
        }
        _ = try await SwitchboardConfiguration.load(file: example, environment: [:])
    }
}
