// swift-tools-version:6.1
import PackageDescription

// Every dependency is named by its GitHub URL and a version that the local mirrors carry.
let package = Package(
    name: "Switchboard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchboardd", targets: ["switchboardd"]),
        .executable(name: "switchboard", targets: ["switchboard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // Pure logic, no I/O: model values, identifiers, phone numbers, Standard Webhooks
        // signatures, the portal wire format, the logfmt log handler.
        .target(
            name: "SwitchboardCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // SMS gateways' wire formats and rules (Twilio, Kannel, segments, opt-out), free of I/O.
        .target(
            name: "SwitchboardSMS",
            dependencies: ["SwitchboardCore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Triage: intent, urgency and language of each message; trained from the shipped corpus.
        // Optimised even in debug builds: the daemon trains it at start, and unoptimised
        // string handling made that take seconds per start (and the black-box suite minutes).
        .target(name: "SwitchboardTriage", dependencies: ["SwitchboardCore"], swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // The web chat's wire protocol (frames, visitor tokens, identity hashes, rate
        // limits), free of I/O.
        .target(name: "SwitchboardChat", dependencies: ["SwitchboardCore", .product(name: "Crypto", package: "swift-crypto")]),
        // The router: who answers which conversation, and when (offers, capacity, SLA).
        // Pure and clock-free, so whole days of routing are simulated in tests. Optimised in
        // debug too: its benchmark and the black-box suite route thousands of conversations.
        .target(name: "SwitchboardRouting", dependencies: ["SwitchboardCore"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // The operator's rules file: conditions on triaged messages → team, skills, priority,
        // tags, auto-replies, knowledge-base answers; business hours. Pure; reloadable.
        .target(name: "SwitchboardRules", dependencies: ["SwitchboardCore", .product(name: "Yams", package: "Yams")]),
        // The one configuration surface: file (YAML) < environment, secrets from files.
        .target(
            name: "SwitchboardConfig",
            dependencies: [
                "SwitchboardCore",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Email's wire formats, free of I/O: the MIME parser (RFC 5322/2045-2049/2047/2231,
        // charsets, HTML to text and sanitising, quoted-reply separation, bounces and
        // auto-replies), the SMTP server state machine and the outbound message composer.
        .target(name: "SwitchboardMail", dependencies: ["SwitchboardCore"]),
        // libcurl, through typed wrappers its variadic C API needs in Swift.
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // Mail client transport on libcurl: SMTP submission, IMAP polling.
        .target(name: "SwitchboardMailTransport", dependencies: ["CCurl", "SwitchboardMail"]),
        // The store façade: every SQL statement of the project lives here.
        .target(
            name: "SwitchboardStore",
            dependencies: [
                "SwitchboardCore", "SwitchboardRouting",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // The daemon's parts: HTTP routes, the agent API, the outbox, metrics, lifecycle.
        .target(
            name: "SwitchboardServer",
            dependencies: [
                "SwitchboardCore", "SwitchboardConfig", "SwitchboardStore", "SwitchboardSMS", "SwitchboardTriage", "SwitchboardRules",
                "SwitchboardRouting", "SwitchboardMail", "SwitchboardMailTransport", "SwitchboardChat",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            // The chat widget and the agent console, compiled into the binary: nothing to
            // install beside it.
            resources: ["widget.js", "demo.html", "console.html", "console.js", "console.css"].map { .embedInCode("Web/\($0)") }
        ),
        .executableTarget(
            name: "switchboardd",
            dependencies: [
                "SwitchboardServer", "SwitchboardConfig", "SwitchboardCore", "SwitchboardStore", "SwitchboardRules",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "switchboard",
            dependencies: [
                "SwitchboardStore", "SwitchboardConfig", "SwitchboardCore", "SwitchboardTriage", "SwitchboardRouting", "SwitchboardServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // `make bench`: dispatch time with 1,000 agents and 100,000 waiting conversations.
        // libFuzzer target for the MIME parser and the SMTP session (`make fuzz`); in an
        // ordinary build, a replayer of saved inputs.
        .target(name: "CFuzzDriver", path: "Fuzz/CFuzzDriver"),
        .executableTarget(name: "mail-fuzz", dependencies: ["SwitchboardMail", "CFuzzDriver"], path: "Fuzz/MailFuzz"),
        .executableTarget(name: "wire-fuzz", dependencies: ["SwitchboardCore", "SwitchboardSMS", "SwitchboardChat", "CFuzzDriver"],
                          path: "Fuzz/WireFuzz", exclude: ["Corpus"]),
        .executableTarget(name: "hello-bench", dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
                          path: "Benchmarks/HelloBench"),
        .executableTarget(name: "routing-bench", dependencies: ["SwitchboardRouting", "SwitchboardCore"], path: "Benchmarks/RoutingBench"),
        .testTarget(name: "SwitchboardCoreTests", dependencies: ["SwitchboardCore", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SwitchboardSMSTests", dependencies: ["SwitchboardSMS"]),
        .testTarget(name: "SwitchboardChatTests", dependencies: ["SwitchboardChat"]),
        .testTarget(name: "SwitchboardMailTests", dependencies: ["SwitchboardMail", "SwitchboardMailTransport"], exclude: ["Golden"]),
        .testTarget(name: "SwitchboardTriageTests", dependencies: ["SwitchboardTriage"]),
        .testTarget(name: "SwitchboardRulesTests", dependencies: ["SwitchboardRules"]),
        .testTarget(name: "SwitchboardRoutingTests", dependencies: ["SwitchboardRouting", "SwitchboardCore"]),
        .testTarget(name: "SwitchboardStoreTests", dependencies: ["SwitchboardStore", "SwitchboardCore", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "SwitchboardServerTests",
            dependencies: [
                "SwitchboardServer", "SwitchboardConfig", "SwitchboardStore", "SwitchboardCore",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
