// The supervisor's settings, all from the environment.
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

struct SupervisorSettings: Sendable {
    var paths: RunPaths
    var haproxyPath: String
    /// How long in-flight requests may finish after SIGTERM before HAProxy is stopped hard.
    var grace: Double
    /// How long an old generation may keep draining its connections.
    var drainTimeout: Double
    /// How long a new generation may take to start serving.
    var startTimeout: Double
    /// The watcher's executable, or nil when disabled (`none`).
    var watcherPath: String?
    var maximumRequestBytes: Int
    /// Whether server changes go through HAProxy's runtime API instead of a reload when they can.
    var runtimeUpdates: Bool
    /// HOST:PORT of the metrics and health endpoint, or nil when off.
    var metricsAddress: String?
    /// Where the last-good bundle and the history are kept across restarts, or nil (off).
    var stateDirectory: String?
    /// The environment HAProxy and the watcher inherit.
    var environment: [(String, String)]

    static let defaultMaximumRequestBytes = 64 << 20

    static func fromEnvironment(executablePath: String) throws(SettingError) -> SupervisorSettings {
        let pairs = Environment.processEnvironment()
        let environment = Environment(Dictionary(pairs, uniquingKeysWith: { first, _ in first }))
        let haproxyName = environment.string("KUBE_HAPROXY_HAPROXY", default: "haproxy")
        guard let haproxyPath = ChildProcess.resolve(haproxyName, path: environment["PATH"]) else {
            throw SettingError(name: "KUBE_HAPROXY_HAPROXY", value: haproxyName, expected: "an haproxy executable (on PATH or a path)")
        }
        let watcher = environment.string("KUBE_HAPROXY_WATCHER", default: FileIO.parentDirectory(of: executablePath) + "/kube-haproxy-watcher")
        return SupervisorSettings(
            paths: RunPaths(environment: environment),
            haproxyPath: haproxyPath,
            grace: try environment.duration("KUBE_HAPROXY_GRACE", default: 30),
            drainTimeout: try environment.duration("KUBE_HAPROXY_DRAIN_TIMEOUT", default: 600),
            startTimeout: try environment.duration("KUBE_HAPROXY_START_TIMEOUT", default: 60),
            watcherPath: watcher == "none" ? nil : watcher,
            maximumRequestBytes: try environment.integer("KUBE_HAPROXY_MAX_REQUEST_BYTES", default: defaultMaximumRequestBytes,
                                                         range: 1024...(1 << 30)),
            runtimeUpdates: try environment.flag("KUBE_HAPROXY_RUNTIME_UPDATES", default: true),
            metricsAddress: try metricsAddress(environment),
            stateDirectory: try stateDirectory(environment),
            environment: pairs)
    }

    static func metricsAddress(_ environment: Environment) throws(SettingError) -> String? {
        guard let address = environment["KUBE_HAPROXY_METRICS_ADDR"], !address.isEmpty else { return nil }
        guard MetricsServer.parse(address) != nil else {
            throw SettingError(name: "KUBE_HAPROXY_METRICS_ADDR", value: address, expected: "HOST:PORT, e.g. 0.0.0.0:9090")
        }
        return address
    }

    static func stateDirectory(_ environment: Environment) throws(SettingError) -> String? {
        guard var directory = environment["KUBE_HAPROXY_STATE_DIR"], !directory.isEmpty else { return nil }
        guard directory.hasPrefix("/") else {
            throw SettingError(name: "KUBE_HAPROXY_STATE_DIR", value: directory, expected: "an absolute directory path")
        }
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        return directory
    }

    /// The path of the running executable, from /proc.
    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments.first ?? "kube-haproxy" }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
