import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The files a browser loads: the chat widget (`/widget.js`, `/widget/demo`) and the agent
/// console (`/console`, `/console/*`), from `Web/`. SwiftPM embeds them in the binary
/// (`resources: .embedInCode`), so the daemon has nothing to install beside it.
///
/// Every response carries a strong ETag (a conditional GET answers 304), `nosniff`, and —
/// for HTML — a Content-Security-Policy that allows only the daemon's own scripts and
/// styles, so text a patient typed can never run as script even if a bug rendered it as
/// HTML. The widget script may be embedded anywhere (that is its purpose); the console
/// refuses to be framed.
enum WebAssets {
    struct Asset: Sendable {
        let contentType: String
        let body: ByteBuffer
        let etag: String
    }

    static let files: [String: (contentType: String, bytes: [UInt8])] = [
        "widget.js": ("text/javascript; charset=utf-8", PackageResources.widget_js),
        "demo.html": ("text/html; charset=utf-8", PackageResources.demo_html),
        "console.html": ("text/html; charset=utf-8", PackageResources.console_html),
        "console.js": ("text/javascript; charset=utf-8", PackageResources.console_js),
        "console.css": ("text/css; charset=utf-8", PackageResources.console_css),
    ]

    static let assets: [String: Asset] = files.mapValues { file in
        let digest = SHA256.hash(data: file.bytes).prefix(12).map { String(format: "%02x", $0) }.joined()
        return Asset(contentType: file.contentType, body: ByteBuffer(bytes: file.bytes), etag: "\"\(digest)\"")
    }

    /// Route → web/ file.
    static let routes: [(path: String, file: String)] = [
        ("/widget.js", "widget.js"),
        ("/widget/demo", "demo.html"),
        ("/console", "console.html"),
        ("/console/console.js", "console.js"),
        ("/console/console.css", "console.css"),
    ]

    static let htmlPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

    static func register(on router: Router<AppRequestContext>) {
        for route in routes {
            guard let asset = assets[route.file] else { continue }
            router.get(RouterPath(stringLiteral: route.path)) { request, _ -> Response in
                var headers: HTTPFields = [.contentType: asset.contentType, .eTag: asset.etag, .cacheControl: "no-cache"]
                headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
                headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
                if asset.contentType.hasPrefix("text/html") {
                    headers[HTTPField.Name("Content-Security-Policy")!] = htmlPolicy
                    headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
                }
                if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: {
                    $0.trimmingCharacters(in: .whitespaces) == asset.etag }) {
                    return Response(status: .notModified, headers: headers)
                }
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
            }
        }
    }
}
