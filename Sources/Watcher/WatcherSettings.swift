// The watcher's settings, all from the environment (which the supervisor passes on whole).
import Shared

struct WatcherSettings: Sendable {
    static let defaultStatisticsPassword = "IAmAnIdiotForNotChangingTheDefaultPassword"
    static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// Where the cluster state comes from.
    enum Source: Sendable {
        case etcd2(EtcdSettings)
        case kubernetes(KubernetesAPISettings)
    }

    /// Which source, as KUBE_HAPROXY_SOURCE names it.
    enum SourceKind: String, Sendable {
        case etcd2, kubernetes
    }

    var source: Source
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
        let source: Source
        switch try sourceKind(environment) {
        case .etcd2: source = .etcd2(try etcdSettings(environment))
        case .kubernetes: source = .kubernetes(try kubernetesSettings(environment))
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
            source: source,
            prefix: prefix == "/" ? "" : prefix,
            lbNamespace: lbNamespace,
            reloadInterval: try environment.duration("KUBE_HAPROXY_RELOAD_INTERVAL", default: 1),
            controlSocket: environment.string("KUBE_HAPROXY_CONTROL_SOCKET", default: paths.controlSocket),
            sslDirectory: environment.string("KUBE_HAPROXY_SSL_DIR", default: paths.sslDirectory),
            statisticsPassword: environment.string("STATISTICS_PASSWORD", default: defaultStatisticsPassword),
            environment: pairs)
    }
}

extension WatcherSettings {
    /// Whether the environment names a source (else `render` needs --context).
    static func isSourceSet(_ environment: Environment) -> Bool {
        isSet(environment, "KUBE_HAPROXY_SOURCE") || impliedSourceKind(environment) != nil
    }

    static func sourceKind(_ environment: Environment) throws(SettingError) -> SourceKind {
        if let name = environment["KUBE_HAPROXY_SOURCE"], !name.isEmpty {
            guard let kind = SourceKind(rawValue: name) else {
                throw SettingError(name: "KUBE_HAPROXY_SOURCE", value: name, expected: "etcd2 or kubernetes")
            }
            return kind
        }
        if let kind = impliedSourceKind(environment) { return kind }
        throw SettingError(name: "KUBE_HAPROXY_SOURCE", value: "",
                           expected: "etcd2 or kubernetes: set ETCD2BASE to read etcd2, or KUBE_HAPROXY_API_SERVER (KUBERNETES_SERVICE_HOST "
                               + "inside a pod) to read the Kubernetes API")
    }

    /// The source the other variables imply, without KUBE_HAPROXY_SOURCE: etcd2 before the API.
    private static func impliedSourceKind(_ environment: Environment) -> SourceKind? {
        if isSet(environment, "ETCD2BASE") { return .etcd2 }
        if isSet(environment, "KUBE_HAPROXY_API_SERVER") || isSet(environment, "KUBERNETES_SERVICE_HOST") { return .kubernetes }
        return nil
    }

    private static func isSet(_ environment: Environment, _ name: String) -> Bool {
        !(environment[name] ?? "").isEmpty
    }

    /// A file that must be readable when its variable is set.
    static func readableFile(_ environment: Environment, _ name: String) throws(SettingError) -> String? {
        guard let path = environment[name], !path.isEmpty else { return nil }
        guard (try? FileIO.readFile(path)) ?? nil != nil else {
            throw SettingError(name: name, value: path, expected: "a readable file")
        }
        return path
    }

    /// A client certificate needs both its files.
    static func bothOrNeither(_ certificate: (name: String, path: String?), _ key: (name: String, path: String?)) throws(SettingError)
        -> (certificateFile: String?, keyFile: String?) {
        if (certificate.path == nil) != (key.path == nil) {
            let (missing, other) = certificate.path == nil ? (certificate.name, key.name) : (key.name, certificate.name)
            throw SettingError(name: missing, value: "", expected: "set together with \(other) (a client certificate needs both)")
        }
        return (certificate.path, key.path)
    }

    static func etcdSettings(_ environment: Environment) throws(SettingError) -> EtcdSettings {
        guard let base = environment["ETCD2BASE"], !base.isEmpty else {
            throw SettingError(name: "ETCD2BASE", value: "", expected: "the base URL of etcd's v2 API, e.g. http://127.0.0.1:2379 (required)")
        }
        guard base.hasPrefix("http://") || base.hasPrefix("https://"), !base.hasSuffix("/"),
              base.split(separator: "/", omittingEmptySubsequences: true).count >= 2 else {
            throw SettingError(name: "ETCD2BASE", value: base, expected: "an http:// or https:// URL with no trailing slash")
        }
        let file = { (name: String) throws(SettingError) in (name, try readableFile(environment, name)) }
        let client = try bothOrNeither(try file("ETCD2_CERT_FILE"), try file("ETCD2_KEY_FILE"))
        return EtcdSettings(base: base, tls: TLSFiles(caFile: try file("ETCD2_CA_FILE").1, certificateFile: client.certificateFile,
                                                      keyFile: client.keyFile))
    }

    static func kubernetesSettings(_ environment: Environment) throws(SettingError) -> KubernetesAPISettings {
        var server: String
        if let explicit = environment["KUBE_HAPROXY_API_SERVER"], !explicit.isEmpty {
            server = explicit
        } else if let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty {
            let port = environment.string("KUBERNETES_SERVICE_PORT", default: "443")
            server = "https://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        } else {
            throw SettingError(name: "KUBE_HAPROXY_API_SERVER", value: "",
                               expected: "the API server's URL, e.g. https://10.96.0.1:443 or http://127.0.0.1:8001 (kubectl proxy); "
                                   + "inside a pod KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT give it")
        }
        while server.hasSuffix("/") { server.removeLast() }
        guard server.hasPrefix("http://") || server.hasPrefix("https://"),
              server.split(separator: "/", omittingEmptySubsequences: true).count >= 2 else {
            throw SettingError(name: "KUBE_HAPROXY_API_SERVER", value: server, expected: "an http:// or https:// URL")
        }
        let tokenFile = environment.string("KUBE_HAPROXY_API_TOKEN_FILE", default: serviceAccountDirectory + "/token")
        let file = { (name: String) throws(SettingError) in (name, try readableFile(environment, name)) }
        var caFile = try file("KUBE_HAPROXY_API_CA_FILE").1
        if caFile == nil {
            // The service account's CA sits beside its token.
            let beside = tokenFile.lastIndex(of: "/").map { String(tokenFile[...$0]) + "ca.crt" } ?? "ca.crt"
            if (try? FileIO.readFile(beside)) ?? nil != nil { caFile = beside }
        }
        let client = try bothOrNeither(try file("KUBE_HAPROXY_API_CERT_FILE"), try file("KUBE_HAPROXY_API_KEY_FILE"))
        return KubernetesAPISettings(server: server, tokenFile: tokenFile,
                                     tls: TLSFiles(caFile: caFile, certificateFile: client.certificateFile, keyFile: client.keyFile))
    }
}
