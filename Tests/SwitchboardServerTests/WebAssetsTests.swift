import Foundation
import Testing
@testable import SwitchboardServer

/// Every file under Sources/SwitchboardServer/Web is served, and every route has its file.
@Suite struct WebAssetsTests {
    static let web = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/SwitchboardServer/Web")

    @Test func everyFileIsEmbeddedAndServed() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.web.path)
        #expect(Set(names) == Set(WebAssets.files.keys), "add the file to Package.swift's resources and WebAssets.files")
        for name in names {
            let onDisk = try [UInt8](Data(contentsOf: Self.web.appendingPathComponent(name)))
            #expect(WebAssets.files[name]?.bytes == onDisk)
        }
        #expect(Set(WebAssets.routes.map(\.file)) == Set(names))
    }
}
