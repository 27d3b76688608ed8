// The watcher's settings, all from the environment (which the supervisor passes on whole).
import Shared

struct WatcherSettings: Sendable {
    static let defaultStatisticsPassword = "IAmAnIdiotForNotChangingTheDefaultPassword"

    var etcd: EtcdSettings
    var prefix: String
    var lbNamespace: String
    var reloadInterval: Double
    var controlSocket: String
    var sslDirectory: String
    var statisticsPassword: String
    var environment: [(String, String)]

    static func fromEnvironment() throws(SettingError) -> WatcherSettings {
        let pairs = Environment.processEnvironment()
        let environment = Environment(Dictionary(pairs, uniquingKeysWith: { first, _ in first }))
        guard let base = environment["ETCD2BASE"], !base.isEmpty else {
            throw SettingError(name: "ETCD2BASE", value: "", expected: "the base URL of etcd's v2 API, e.g. http://127.0.0.1:2379 (required)")
        }
        guard base.hasPrefix("http://") || base.hasPrefix("https://"), !base.hasSuffix("/"),
              base.split(separator: "/", omittingEmptySubsequences: true).count >= 2 else {
            throw SettingError(name: "ETCD2BASE", value: base, expected: "an http:// or https:// URL with no trailing slash")
        }
        func file(_ name: String) throws(SettingError) -> String? {
            guard let path = environment[name], !path.isEmpty else { return nil }
            guard (try? FileIO.readFile(path)) ?? nil != nil else {
                throw SettingError(name: name, value: path, expected: "a readable file")
            }
            return path
        }
        let etcd = EtcdSettings(base: base, caFile: try file("ETCD2_CA_FILE"), certificateFile: try file("ETCD2_CERT_FILE"),
                                keyFile: try file("ETCD2_KEY_FILE"))
        if (etcd.certificateFile == nil) != (etcd.keyFile == nil) {
            let missing = etcd.certificateFile == nil ? "ETCD2_CERT_FILE" : "ETCD2_KEY_FILE"
            throw SettingError(name: missing, value: "", expected: "set together with \(missing == "ETCD2_CERT_FILE" ? "ETCD2_KEY_FILE" : "ETCD2_CERT_FILE") (a client certificate needs both)")
        }
        let prefix = environment.string("ETCD2_PREFIX", default: "/registry")
        guard prefix.hasPrefix("/"), prefix == "/" || !prefix.hasSuffix("/") else {
            throw SettingError(name: "ETCD2_PREFIX", value: prefix, expected: "a key path starting with / and without a trailing slash")
        }
        let lbNamespace = environment.string("LB_NAMESPACE", default: "lb")
        guard !lbNamespace.contains("/") else {
            throw SettingError(name: "LB_NAMESPACE", value: lbNamespace, expected: "a namespace name")
        }
        let paths = RunPaths(environment: environment)
        return WatcherSettings(
            etcd: etcd,
            prefix: prefix == "/" ? "" : prefix,
            lbNamespace: lbNamespace,
            reloadInterval: try environment.duration("KUBE_HAPROXY_RELOAD_INTERVAL", default: 1),
            controlSocket: environment.string("KUBE_HAPROXY_CONTROL_SOCKET", default: paths.controlSocket),
            sslDirectory: environment.string("KUBE_HAPROXY_SSL_DIR", default: paths.sslDirectory),
            statisticsPassword: environment.string("STATISTICS_PASSWORD", default: defaultStatisticsPassword),
            environment: pairs)
    }
}
