// The watcher: started at boot, restarted with capped exponential backoff whenever it exits.
// It is disposable; killing it never touches HAProxy.
import Dispatch
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

final class WatcherProcess: Sendable {
    struct State {
        var pid: pid_t?
        var startedAt = 0.0
        var restarts = 0
        var backoff = Backoff(initial: 1, maximum: 30, jitter: 0)
        var stopping = false
    }

    /// A run this long counts as healthy: the next restart starts again from the initial delay.
    static let healthyRun = 60.0

    let executable: String
    let environment: [(String, String)]
    let reaper: Reaper
    let state = Mutex(State())
    let queue = DispatchQueue(label: "kube-haproxy.watcher")

    init(executable: String, settings: SupervisorSettings, reaper: Reaper) {
        self.executable = executable
        self.reaper = reaper
        let added = [("KUBE_HAPROXY_RUN_DIR", settings.paths.runDirectory),
                     ("KUBE_HAPROXY_SSL_DIR", settings.paths.sslDirectory),
                     ("KUBE_HAPROXY_CONTROL_SOCKET", settings.paths.controlSocket)]
        let addedNames = Set(added.map(\.0))
        environment = settings.environment.filter { !addedNames.contains($0.0) } + added
    }

    func start() {
        let result: Result<pid_t, SystemError> = state.withLock { state in
            if state.stopping { return .failure(SystemError("spawn", errno: ECANCELED)) }
            do throws(SystemError) {
                let pid = try reaper.spawn(SpawnRequest(executable: executable, arguments: [], environment: environment), role: .watcher)
                state.pid = pid
                state.startedAt = monotonicSeconds()
                return .success(pid)
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let pid):
            Log.info("watcher started", ["pid": String(pid), "executable": executable])
        case .failure(let error) where error.errno == ECANCELED:
            break
        case .failure(let error):
            Log.error("could not start the watcher", ["error": error.description])
            scheduleRestart()
        }
    }

    func handleExit(pid: pid_t, status: ExitStatus) {
        reaper.forget(pid)
        let stopping = state.withLock { state -> Bool in
            state.pid = nil
            if monotonicSeconds() - state.startedAt >= WatcherProcess.healthyRun { state.backoff.reset() }
            return state.stopping
        }
        if stopping {
            Log.info("watcher stopped", ["pid": String(pid), "status": status.description])
            return
        }
        Log.warning("watcher exited; restarting it", ["pid": String(pid), "status": status.description])
        scheduleRestart()
    }

    private func scheduleRestart() {
        let delay = state.withLock { state -> Double in
            state.restarts += 1
            return state.backoff.next()
        }
        Log.info("watcher restart scheduled", ["in_seconds": formatSeconds(delay)])
        queue.asyncAfter(deadline: .now() + delay) { [self] in start() }
    }

    /// Asks the watcher to stop; returns its pid if it is running.
    func stop() -> pid_t? {
        let pid = state.withLock { state -> pid_t? in
            state.stopping = true
            return state.pid
        }
        if let pid { kill(pid, SIGTERM) }
        return pid
    }

    var restarts: Int { state.withLock { $0.restarts } }

    /// Fills in the watcher's part of the status.
    func describe(into status: inout SupervisorStatus) {
        (status.watcherPid, status.watcherRestarts) = state.withLock { state in (state.pid.map { Int($0) }, state.restarts) }
    }
}
