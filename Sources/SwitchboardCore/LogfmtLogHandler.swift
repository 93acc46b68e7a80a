import Foundation
import Logging
import Synchronization

/// One line per event on stderr, for journald and for `grep`: logfmt
/// (`ts=… level=info msg="webhook accepted" channel=portal conversation.id=cnv_…`) by
/// default, or one JSON object per line.
///
/// Messages are constant strings and metadata carries ids; the handler cannot tell PHI
/// from an id, so keeping PHI out is the callers' rule (and a test scans a scenario's logs).
/// Control characters are escaped so that no value can forge a second log line.
public struct LogfmtLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case logfmt, json
    }

    public var metadata: Logger.Metadata = [:]
    /// The shared level (changed at runtime on SIGHUP) unless this logger set its own.
    public var logLevel: Logger.Level {
        get { ownLevel ?? control.level }
        set { ownLevel = newValue }
    }
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: Format
    private let output: LogOutput
    private let control: LogLevelControl
    private var ownLevel: Logger.Level?

    public init(label: String, level: Logger.Level, format: Format, output: LogOutput = .standardError) {
        self.init(label: label, control: LogLevelControl(level), format: format, output: output)
    }

    /// Every handler made with the same `control` follows its level.
    public init(label: String, control: LogLevelControl, format: Format, output: LogOutput = .standardError) {
        self.label = label
        self.control = control
        self.format = format
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields: [(String, String)] = [
            ("ts", Timestamp.format(Timestamp.now())),
            ("level", event.level.rawValue),
            ("msg", event.message.description),
            ("logger", label),
        ] + merged.sorted { $0.key < $1.key }.map { ($0.key, $0.value.description) }
        let line: String
        switch format {
        case .logfmt:
            line = fields.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            line = "{" + fields.map { "\(Self.jsonString($0.0)):\(Self.jsonString($0.1))" }.joined(separator: ",") + "}"
        }
        output.write(line + "\n")
    }

    static func logfmtValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false }
        guard needsQuotes else { return value }
        return jsonString(value)
    }

    static func jsonString(_ value: String) -> String {
        JSONText.quote(value)
    }
}

/// Where log lines go. Writes are serialised so that lines never interleave.
public final class LogOutput: Sendable {
    private let lock = Mutex<Void>(())
    private let descriptor: Int32
    private let capturing: Bool
    private let captured = Mutex<[String]>([])

    public static let standardError = LogOutput(descriptor: 2)

    public init(descriptor: Int32) {
        self.descriptor = descriptor
        self.capturing = false
    }

    /// An in-memory sink for tests.
    public init(capturing: Void = ()) {
        self.descriptor = -1
        self.capturing = true
    }

    public var capturedLines: [String] { captured.withLock { $0 } }

    func write(_ line: String) {
        if capturing {
            captured.withLock { $0.append(line) }
            return
        }
        lock.withLock { _ in
            var bytes = Array(line.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeMutableBytes { buffer in
                    Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                }
                if written <= 0 {
                    if written < 0 && errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

/// The daemon's log level, shared by all its loggers and changed at runtime (SIGHUP with a
/// new `log.level`).
public final class LogLevelControl: Sendable {
    private static let levels = Logger.Level.allCases
    private let index: Atomic<Int>

    public init(_ level: Logger.Level) {
        index = Atomic(Self.levels.firstIndex(of: level) ?? 2)
    }

    public var level: Logger.Level {
        get { Self.levels[index.load(ordering: .relaxed)] }
        set { index.store(Self.levels.firstIndex(of: newValue) ?? 2, ordering: .relaxed) }
    }
}
