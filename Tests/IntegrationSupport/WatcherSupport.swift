// The supervisor with the real watcher: what the watcher tests read of it.
import Foundation
import Shared

extension SupervisorProcess {
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
