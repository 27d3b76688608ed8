// HAProxy generations: start a new one with the listening sockets of the old (-x) and tell the
// old to finish its connections (-sf), answer only once the new one serves, keep the last good
// config when a new one is rejected, restart a crashed HAProxy, and bound how long old
// generations may drain.
import Dispatch
import HAProxyConfig
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

struct Generation: Sendable {
    var number: Int
    var pid: pid_t
    var startedAt: Double
}

final class HAProxyGenerations: Sendable {
    struct State {
        var live: DesiredState?
        var current: Generation?
        var generationCounter = 0
        /// Older generations finishing their connections: pid → generation and when it began draining.
        var draining: [pid_t: (generation: Int, since: Double)] = [:]
        var lastReloadTime: String?
        var lastReloadSeconds: Double?
        var lastError: String?
        var reloads = 0
        /// Delays between restarts after HAProxy died: 0.1 s after the first crash, doubling with
        /// each consecutive one (a failed restart counts), at most 30 s; a run of over a minute
        /// starts again from 0.1 s.
        var crashBackoff = HAProxyGenerations.crashBackoff
        var restartPending = false
        /// The generation a starting one was told to replace (-sf): it may finish before the new
        /// one is made current, and that is no crash.
        var superseded: (pid: pid_t, exited: Bool)?
        var shuttingDown = false
        /// `live`'s config as sections, kept from the last runtime update (which set both) until
        /// a reload replaces the live config (which clears it).
        var liveSections: ConfigFile?
        /// Removed servers the serving process keeps in maintenance until their connections end.
        var pendingDeletions: [PendingDeletion] = []
        var deletionRetryScheduled = false
        /// When the live config is the last-good bundle served at start: the time it was saved,
        /// until the first apply from the watcher.
        var servingBundleSince: String?
    }

    let settings: SupervisorSettings
    let reaper: Reaper
    let metrics: Metrics
    let history: ApplyHistory
    let state = Mutex(State())
    /// Every change of generation runs here, one at a time: applies, reloads, crash restarts.
    let queue = DispatchQueue(label: "kube-haproxy.generations")

    init(settings: SupervisorSettings, reaper: Reaper, metrics: Metrics, history: ApplyHistory) {
        self.settings = settings
        self.reaper = reaper
        self.metrics = metrics
        self.history = history
    }

    var paths: RunPaths { settings.paths }

    // MARK: Requests

    /// Applies a desired state; returns the reply for the control socket.
    func apply(_ desired: DesiredState) -> ControlReply {
        let reply = queue.sync { () -> ControlReply in
            let reply = performApply(desired, path: .reload)
            // The watcher has spoken: what serves now is its state, not the bundle.
            if reply.isSuccess { state.withLock { $0.servingBundleSince = nil } }
            return reply
        }
        switch reply {
        case .applied(let applied): metrics.recordApply(applied.changed ? "changed" : "unchanged")
        case .failed(let failure): metrics.recordApply(failure.reason == .rejected ? "rejected" : "error")
        case .status, .history, .acknowledged: break
        }
        return reply
    }

    func reload() -> ControlReply {
        queue.sync { performReload(reason: "requested") }
    }

    /// Serves the last-good bundle at start, before the watcher speaks; a bundle HAProxy
    /// refuses is logged.
    func serveBundle(_ saved: LastGoodBundle.Saved) {
        queue.sync {
            switch performApply(saved.desired, path: .bundle) {
            case .failed(let failure):
                Log.error("the last-good bundle was refused; waiting for the watcher", ["saved_at": saved.savedAt, "error": failure.message])
            default:
                state.withLock { $0.servingBundleSince = saved.savedAt }
                Log.info("serving the last-good bundle until the watcher applies", ["saved_at": saved.savedAt, "hash": saved.desired.hash])
            }
        }
    }

    private func performApply(_ desired: DesiredState, path: HistoryEntry.Path) -> ControlReply {
        let (live, running, shuttingDown) = state.withLock { ($0.live, $0.current != nil, $0.shuttingDown) }
        if shuttingDown { return failure(ControlFailure(.unavailable, "the supervisor is shutting down")) }
        if live == desired && running {
            return .applied(AppliedState(changed: false, reloaded: false, generation: state.withLock { $0.current?.number ?? 0 }))
        }
        var partlyUpdated = false
        if let live, running {
            switch updateAtRunTime(from: live, to: desired) {
            case .applied(let reply): return reply
            case .needsReload: break
            case .failed: partlyUpdated = true
            }
        }
        // The run directory is rebuilt from the watcher's desired state at every start, so its
        // files are written atomically but not fsynced: a reload need not wait for the disk.
        let previousCertificates = live?.certificates ?? [:]
        let changedNames = Set(desired.certificates.keys).union(previousCertificates.keys).filter {
            desired.certificates[$0] != previousCertificates[$0]
        }
        do {
            for name in changedNames.sorted() {
                if let pem = desired.certificates[name] {
                    try FileIO.writeAtomically(certificatePath(name), pem, mode: 0o600, durable: false)
                }
            }
            try FileIO.writeAtomically(paths.candidateConfig, desired.config, mode: 0o644, durable: false)
        } catch {
            restoreCertificates(previousCertificates, names: changedNames)
            if partlyUpdated { undoRuntimeUpdate() }
            return failure(ControlFailure(.internal, "could not write the configuration: \(error)"))
        }
        switch startGeneration(configPath: paths.candidateConfig, reason: "apply") {
        case .success(let generation):
            if rename(paths.candidateConfig, paths.liveConfig) != 0 {
                Log.warning("could not rename the new config into place", ["error": SystemError("rename").description])
            }
            state.withLock { state in
                state.live = desired
                // The sections of the config replaced; the next runtime update reads the live one.
                state.liveSections = nil
            }
            removeUnusedCertificates(keeping: Set(desired.certificates.keys))
            history.record(desired, path: path, generation: generation.number)
            return .applied(AppliedState(changed: true, reloaded: true, generation: generation.number))
        case .failure(let startFailure):
            unlink(paths.candidateConfig)
            restoreCertificates(previousCertificates, names: changedNames)
            if partlyUpdated { undoRuntimeUpdate() }
            return failure(startFailure)
        }
    }

    /// The new config could not start after runtime commands changed the serving process: a
    /// generation from the live config replaces it, so it serves exactly the live config again.
    private func undoRuntimeUpdate() {
        if case .failure(let failure) = startGeneration(configPath: paths.liveConfig, reason: "undo a failed runtime update") {
            Log.error("could not undo a failed runtime update", ["error": failure.message])
        }
    }

    private func performReload(reason: String) -> ControlReply {
        let (hasConfig, shuttingDown) = state.withLock { ($0.live != nil, $0.shuttingDown) }
        if shuttingDown { return failure(ControlFailure(.unavailable, "the supervisor is shutting down")) }
        guard hasConfig else { return failure(ControlFailure(.unavailable, "no configuration has been applied yet")) }
        switch startGeneration(configPath: paths.liveConfig, reason: reason) {
        case .success(let generation):
            return .applied(AppliedState(changed: false, reloaded: true, generation: generation.number))
        case .failure(let startFailure):
            return failure(startFailure)
        }
    }

    private func failure(_ failure: ControlFailure) -> ControlReply {
        state.withLock { $0.lastError = failure.message }
        return .failed(failure)
    }

    // MARK: Certificates

    private func certificatePath(_ name: String) -> String { "\(paths.sslDirectory)/\(name).pem" }

    /// Puts back the certificates the live generation was started with.
    private func restoreCertificates(_ previous: [String: String], names: Set<String>) {
        for name in names {
            if let pem = previous[name] {
                try? FileIO.writeAtomically(certificatePath(name), pem, mode: 0o600, durable: false)
            } else {
                unlink(certificatePath(name))
            }
        }
    }

    /// Certificate files that no live config uses go once the new generation serves.
    private func removeUnusedCertificates(keeping names: Set<String>) {
        guard let files = try? FileIO.listDirectory(paths.sslDirectory) else { return }
        for file in files where file.hasSuffix(".pem") && !names.contains(String(file.dropLast(4))) {
            unlink("\(paths.sslDirectory)/\(file)")
        }
    }

    // MARK: Generations

    enum StartResult {
        case success(Generation)
        case failure(ControlFailure)
    }

    /// Starts a new HAProxy generation and waits until it serves. Runs on `queue` only.
    private func startGeneration(configPath: String, reason: String) -> StartResult {
        let began = monotonicSeconds()
        let (previous, number) = state.withLock { state -> (Generation?, Int) in
            state.restartPending = false
            state.superseded = state.current.map { ($0.pid, false) }
            return (state.current, state.generationCounter + 1)
        }
        var arguments = ["-db", "-f", configPath, "-f", paths.supervisorConfig]
        // -x needs a live old process behind the admin socket: after a crash there is none, and
        // pointing -x at a dead socket is fatal to the new process.
        if let previous, AdminSocket.servingPid(paths.adminSocket) == previous.pid {
            arguments += ["-x", paths.adminSocket, "-sf", String(previous.pid)]
        } else if let previous {
            arguments += ["-sf", String(previous.pid)]
        }
        let output: (read: Int32, write: Int32)
        do {
            output = try ChildProcess.outputPipe()
        } catch {
            endSupersedingAfterFailure()
            return .failure(ControlFailure(.internal, "could not start haproxy: \(error)"))
        }
        let capture = OutputCapture()
        let request = SpawnRequest(executable: settings.haproxyPath, arguments: arguments,
                                   environment: settings.environment, outputFD: output.write)
        let pid: pid_t
        do {
            let spawned: Result<pid_t, SystemError> = state.withLock { state in
                if state.shuttingDown { return .failure(SystemError("spawn", errno: ECANCELED, detail: "(shutting down)")) }
                do throws(SystemError) {
                    return .success(try reaper.spawn(request, role: .haproxy(generation: number)))
                } catch {
                    return .failure(error)
                }
            }
            pid = try spawned.get()
        } catch {
            close(output.read)
            close(output.write)
            endSupersedingAfterFailure()
            return .failure(ControlFailure(.internal, "could not start haproxy: \(error)"))
        }
        close(output.write)
        capture.forward(from: output.read)

        // Serving when its admin socket answers with its pid; failed when it exits first.
        let deadline = began + settings.startTimeout
        while true {
            if let status = reaper.exitStatus(pid) {
                reaper.forget(pid)
                capture.waitForEnd(timeout: 1)
                let message = "haproxy rejected the configuration (\(status)): \(capture.text())"
                metrics.recordReload(success: false, seconds: nil)
                Log.error("new haproxy generation failed", ["generation": String(number), "reason": reason, "status": status.description])
                endSupersedingAfterFailure()
                return .failure(ControlFailure(.rejected, message))
            }
            if AdminSocket.servingPid(paths.adminSocket) == pid { break }
            if monotonicSeconds() > deadline {
                kill(pid, SIGKILL)
                _ = reaper.waitForExit(pid, timeout: 5)
                reaper.forget(pid)
                metrics.recordReload(success: false, seconds: nil)
                endSupersedingAfterFailure()
                return .failure(ControlFailure(.internal, "haproxy did not start serving within \(settings.startTimeout) s: \(capture.text())"))
            }
            sleepSeconds(0.001)
        }
        let now = monotonicSeconds()
        let generation = Generation(number: number, pid: pid, startedAt: now)
        let previousExited = state.withLock { state -> Bool in
            let exited = state.superseded?.exited ?? false
            state.superseded = nil
            state.generationCounter = number
            if let previous = state.current, !exited {
                state.draining[previous.pid] = (previous.number, now)
            }
            state.current = generation
            state.lastReloadTime = timestampUTC()
            state.lastReloadSeconds = now - began
            state.lastError = nil
            state.reloads += 1
            state.pendingDeletions = []
            return exited
        }
        metrics.recordReload(success: true, seconds: now - began)
        Log.info("haproxy generation serving", ["generation": String(number), "pid": String(pid), "reason": reason,
                                                "seconds": formatSeconds(now - began)])
        if let previous, !previousExited {
            scheduleDrainDeadline(pid: previous.pid, generation: previous.number)
        }
        // Died between answering and becoming current: the signal loop took it for a failed
        // candidate, so report the crash here.
        if let status = reaper.exitStatus(pid) {
            handleExit(pid: pid, generation: number, status: status)
        }
        return .success(generation)
    }

    /// A start failed: the generation it was to replace serves on, unless it ended meanwhile,
    /// which makes it a crash like any other.
    private func endSupersedingAfterFailure() {
        let delay: Double? = state.withLock { state in
            defer { state.superseded = nil }
            guard let superseded = state.superseded, superseded.exited, state.current?.pid == superseded.pid else { return nil }
            state.current = nil
            state.restartPending = true
            return state.crashBackoff.next()
        }
        if let delay {
            Log.error("haproxy exited while a new generation failed to start; restarting it with the last good config",
                      ["restart_in_seconds": formatSeconds(delay)])
            scheduleRestart(after: delay)
        }
    }

    /// Older generations still draining after the drain timeout are stopped.
    private func scheduleDrainDeadline(pid: pid_t, generation: Int) {
        queue.asyncAfter(deadline: .now() + settings.drainTimeout) { [self] in
            let stillDraining = state.withLock { $0.draining[pid]?.generation == generation }
            guard stillDraining, reaper.exitStatus(pid) == nil else { return }
            Log.warning("stopping an old haproxy generation still draining after the drain timeout",
                        ["generation": String(generation), "pid": String(pid), "timeout_seconds": formatSeconds(settings.drainTimeout)])
            kill(pid, SIGKILL)
        }
    }

    // MARK: Exits, reported by the signal loop

    func handleExit(pid: pid_t, generation: Int, status: ExitStatus) {
        enum Outcome { case drained, crashed(delay: Double, ranFor: Double), candidate, shuttingDown }
        let outcome: Outcome = state.withLock { state in
            if state.draining.removeValue(forKey: pid) != nil { return .drained }
            if state.superseded?.pid == pid {
                state.superseded?.exited = true
                return .drained
            }
            guard let current = state.current, current.pid == pid else { return .candidate }
            state.current = nil
            if state.shuttingDown { return .shuttingDown }
            let ranFor = monotonicSeconds() - current.startedAt
            if ranFor > 60 { state.crashBackoff.reset() }
            state.restartPending = true
            let delay = state.crashBackoff.next()
            return .crashed(delay: delay, ranFor: ranFor)
        }
        switch outcome {
        case .drained:
            reaper.forget(pid)
            Log.info("old haproxy generation finished", ["generation": String(generation), "pid": String(pid), "status": status.description])
        case .candidate:
            break // the starting thread reads the status itself
        case .shuttingDown:
            reaper.forget(pid)
            Log.info("haproxy stopped", ["generation": String(generation), "pid": String(pid), "status": status.description])
        case .crashed(let delay, let ranFor):
            reaper.forget(pid)
            Log.error("haproxy exited unexpectedly; restarting it with the last good config",
                      ["generation": String(generation), "pid": String(pid), "status": status.description,
                       "ran_seconds": formatSeconds(ranFor), "restart_in_seconds": formatSeconds(delay)])
            scheduleRestart(after: delay)
        }
    }

    /// Restarts HAProxy with the last good config after a delay; a failed restart is tried
    /// again with a doubled delay (capped at 30 s).
    private func scheduleRestart(after delay: Double) {
        queue.asyncAfter(deadline: .now() + delay) { [self] in
            let needed = state.withLock { $0.current == nil && $0.restartPending && !$0.shuttingDown }
            guard needed else { return }
            let result = startGeneration(configPath: paths.liveConfig, reason: "crash restart")
            guard case .failure(let failure) = result else {
                metrics.recordHAProxyRestart()
                return
            }
            let nextDelay: Double = state.withLock { state in
                state.restartPending = true
                return state.crashBackoff.next()
            }
            Log.error("could not restart haproxy", ["error": failure.message, "retry_in_seconds": formatSeconds(nextDelay)])
            scheduleRestart(after: nextDelay)
        }
    }

    /// HAProxy's restart delays after crashes: 0.1 s doubling to 30 s, without jitter (one
    /// HAProxy per pod, nothing to spread).
    static let crashBackoff = Backoff(initial: 0.1, maximum: 30, jitter: 0)

    // MARK: Shutdown and status

    /// Stops starting generations; returns the pids of every HAProxy still running.
    func beginShutdown() -> [pid_t] {
        state.withLock { $0.shuttingDown = true }
        return runningPids()
    }

    func runningPids() -> [pid_t] {
        reaper.pids { if case .haproxy = $0 { return true } else { return false } }
    }

    /// The serving generation (0 before the first), how many older ones drain, and whether one serves.
    func gauges() -> (generation: Int, draining: Int, serving: Bool, configured: Bool, bundleSince: String?) {
        state.withLock { ($0.current?.number ?? 0, $0.draining.count, $0.current != nil, $0.live != nil, $0.servingBundleSince) }
    }

    /// The supervisor's status as far as HAProxy goes; the watcher's part is left empty.
    func status() -> SupervisorStatus {
        let runtime = metrics.runtimeUpdateCounts()
        return state.withLock { state in
            SupervisorStatus(pid: Int(getpid()), haproxyPid: state.current.map { Int($0.pid) }, generation: state.current?.number ?? 0,
                             drainingPids: state.draining.keys.sorted().map { Int($0) }, reloads: state.reloads,
                             lastReload: state.lastReloadTime, lastReloadSeconds: state.lastReloadSeconds, lastError: state.lastError,
                             configHash: state.live?.hash, watcherPid: nil, watcherRestarts: 0,
                             servingBundleSince: state.servingBundleSince, runtimeUpdates: runtime.applied,
                             runtimeFallbacks: runtime.fallbacks)
        }
    }
}
