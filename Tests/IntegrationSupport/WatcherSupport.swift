// The supervisor with the real watcher following a real etcd: the whole pipeline.
import Foundation
import Shared

extension SupervisorProcess {
    /// Starts the supervisor binary with the real watcher (TestPaths.watcher) pointed at `etcd`
    /// (its client URL and, over HTTPS, its CA and client certificate). `environment` adds to
    /// or overrides that; the watcher inherits all of it, so the template's `env` sees it too.
    public convenience init(directory: String, watching etcd: EtcdServer, environment extra: [String: String] = [:]) throws {
        var environment = ["ETCD2BASE": etcd.clientURL]
        if let tls = etcd.tls {
            environment["ETCD2_CA_FILE"] = tls.authority.certificateFile
            environment["ETCD2_CERT_FILE"] = tls.client.certificateFile
            environment["ETCD2_KEY_FILE"] = tls.client.keyFile
        }
        for (key, value) in extra { environment[key] = value }
        try self.init(directory: directory, environment: environment, watcher: TestPaths.watcher)
    }

    /// The config HAProxy serves now (written by the supervisor after a successful apply).
    public var liveConfig: String? { try? String(contentsOfFile: runDirectory + "/haproxy.cfg", encoding: .utf8) }

    /// The log lines (supervisor, watcher and HAProxy share the stream) containing `text`.
    public func logLines(containing text: String) -> [String] {
        log.split(separator: "\n").filter { $0.contains(text) }.map(String.init)
    }

    /// The status field `reloads`: how many HAProxy generations were started.
    public var reloads: Int? { (try? status())?["reloads"]?.intValue }

    /// How many changed configs went live: reloads plus runtime updates.
    public var configChanges: Int? {
        guard let status = try? status(), let reloads = status["reloads"]?.intValue,
              let runtime = status["runtime_updates"]?.intValue else { return nil }
        return reloads + runtime
    }
}
