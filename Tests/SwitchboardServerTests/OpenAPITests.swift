import Foundation
import Hummingbird
import Logging
import Testing
@testable import SwitchboardConfig
@testable import SwitchboardServer
@testable import SwitchboardStore

/// The OpenAPI document is kept true: every route the server registers is documented, and
/// every documented route is registered (same methods, same paths).
@Suite struct OpenAPITests {
    func assembled() throws -> AssembledServer {
        var configuration = SwitchboardConfiguration()
        configuration.http.port = 0
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-openapi-\(UUID().uuidString)")
        let store = try SwitchboardStore(path: directory.appendingPathComponent("switchboard.sqlite").path)
        return assemble(SwitchboardDependencies(configuration: configuration, store: store, logger: Logger(label: "test"), prometheus: nil))
    }

    /// `/api/v1/conversations/:id` → `/api/v1/conversations/{id}`.
    static func templated(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
        }.joined(separator: "/")
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() throws {
        let parts = try assembled()
        let registered = Set(parts.router.routes.map {
            "\($0.method.rawValue) \(Self.templated($0.path.description))"
        })
        let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        for (path, item) in paths {
            for method in item.keys where ["get", "put", "post", "patch", "delete"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(registered.count > 20)
        #expect(registered.subtracting(documented).sorted() == [], "registered but not documented")
        #expect(documented.subtracting(registered).sorted() == [], "documented but not registered")
    }

    @Test func everyOperationHasAnIdAndResponses() throws {
        let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var ids: [String] = []
        for (path, item) in paths {
            for (method, value) in item where ["get", "put", "post", "patch", "delete"].contains(method) {
                let operation = try #require(value as? [String: Any], "\(method) \(path)")
                ids.append(try #require(operation["operationId"] as? String, "\(method) \(path) has no operationId"))
                #expect((operation["responses"] as? [String: Any])?.isEmpty == false, "\(method) \(path) has no responses")
            }
        }
        #expect(Set(ids).count == ids.count, "operationIds are unique")
    }
}
