// Settings read from the environment, with the errors a user needs when one is malformed.
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

public struct SettingError: Error, CustomStringConvertible, Sendable {
    public var name: String
    public var value: String
    public var expected: String
    public var description: String {
        value.isEmpty ? "\(name) is not set: expected \(expected)" : "\(name)=\"\(value)\" is not valid: expected \(expected)"
    }

    public init(name: String, value: String, expected: String) {
        self.name = name
        self.value = value
        self.expected = expected
    }
}

public struct Environment: Sendable {
    public var variables: [String: String]

    public init(_ variables: [String: String]) { self.variables = variables }

    /// The process environment, in the order `environ` lists it.
    public static func current() -> Environment {
        Environment(Dictionary(processEnvironment(), uniquingKeysWith: { first, _ in first }))
    }

    /// The process environment as name/value pairs, in `environ` order.
    public static func processEnvironment() -> [(String, String)] {
        var pairs: [(String, String)] = []
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                pairs.append((String(text[..<equals]), String(text[text.index(after: equals)...])))
            }
            pointer += 1
        }
        return pairs
    }

    public subscript(name: String) -> String? { variables[name] }

    public func string(_ name: String, default fallback: String) -> String {
        guard let value = variables[name], !value.isEmpty else { return fallback }
        return value
    }

    /// A duration: a number of seconds, or a number with unit `ms`, `s`, `m` or `h`.
    public func duration(_ name: String, default fallback: Double) throws(SettingError) -> Double {
        guard let value = variables[name], !value.isEmpty else { return fallback }
        guard let seconds = Environment.parseDuration(value) else {
            throw SettingError(name: name, value: value, expected: "a duration such as 500ms, 30s, 10m or 1h")
        }
        return seconds
    }

    public func integer(_ name: String, default fallback: Int, range: ClosedRange<Int>) throws(SettingError) -> Int {
        guard let value = variables[name], !value.isEmpty else { return fallback }
        guard let number = Int(value), range.contains(number) else {
            throw SettingError(name: name, value: value, expected: "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// A switch: `on` or `off`.
    public func flag(_ name: String, default fallback: Bool) throws(SettingError) -> Bool {
        switch string(name, default: fallback ? "on" : "off") {
        case "on": return true
        case "off": return false
        case let other: throw SettingError(name: name, value: other, expected: "on or off")
        }
    }

    public static func parseDuration(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number >= 0, number.isFinite else { return nil }
            return number * scale
        }
        guard let number = Double(text), number >= 0, number.isFinite else { return nil }
        return number
    }
}

/// The paths both processes agree on.
public struct RunPaths: Sendable {
    public var runDirectory: String
    public var controlSocket: String { runDirectory + "/control.sock" }
    public var sslDirectory: String { runDirectory + "/ssl" }
    public var adminSocket: String { runDirectory + "/admin.sock" }
    public var liveConfig: String { runDirectory + "/haproxy.cfg" }
    public var candidateConfig: String { runDirectory + "/haproxy.cfg.candidate" }
    public var supervisorConfig: String { runDirectory + "/supervisor.cfg" }

    public static let defaultRunDirectory = "/run/kube-haproxy"

    public init(runDirectory: String) { self.runDirectory = runDirectory }

    public init(environment: Environment) {
        var directory = environment.string("KUBE_HAPROXY_RUN_DIR", default: RunPaths.defaultRunDirectory)
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        self.init(runDirectory: directory)
    }
}
