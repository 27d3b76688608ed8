// One line per event on stderr: timestamp, level, message, key=value fields.
import JSON
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

public enum LogLevel: String, Sendable {
    case debug, info, warning, error
}

public enum Log {
    public static func debug(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.debug, message, fields) }
    public static func info(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.info, message, fields) }
    public static func warning(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.warning, message, fields) }
    public static func error(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.error, message, fields) }

    /// Debug lines appear only when KUBE_HAPROXY_DEBUG is set to 1.
    public static let debugEnabled: Bool = getenv("KUBE_HAPROXY_DEBUG").map { String(cString: $0) == "1" } ?? false

    public static func write(_ level: LogLevel, _ message: String, _ fields: KeyValuePairs<String, String>) {
        if level == .debug && !debugEnabled { return }
        try? FileIO.writeAll(2, format(level, message, fields))
    }

    /// The line as written, newline included. Each field value is quoted when it holds a
    /// space, quote, equals sign or control character, so a line always parses back.
    public static func format(_ level: LogLevel, _ message: String, _ fields: KeyValuePairs<String, String>) -> String {
        var line = timestampUTC()
        line += " "
        line += level.rawValue
        line += " "
        line += quotedIfNeeded(message, alwaysQuoteEquals: false)
        for (key, value) in fields {
            line += " "
            line += key
            line += "="
            line += quotedIfNeeded(value, alwaysQuoteEquals: true)
        }
        line += "\n"
        return line
    }

    static func quotedIfNeeded(_ text: String, alwaysQuoteEquals: Bool) -> String {
        let needsQuotes = text.isEmpty && alwaysQuoteEquals || text.utf8.contains { byte in
            byte < 0x20 || byte == 0x22 || byte == 0x7F || (alwaysQuoteEquals && (byte == 0x20 || byte == 0x3D))
        }
        guard needsQuotes else { return text }
        var quoted = ""
        JSONValue.writeString(text, to: &quoted)
        return quoted
    }
}

/// Seconds with millisecond precision, for log fields: "0.042".
public func formatSeconds(_ seconds: Double) -> String {
    let milliseconds = Int((seconds * 1000).rounded())
    let fraction = String(milliseconds % 1000)
    return "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
}
