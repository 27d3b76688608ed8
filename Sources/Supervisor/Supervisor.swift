// Wires the parts together: settings, run directory, control server, watcher, signal loop.
import CSystem
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

enum Supervisor {
    static func run() -> Int32 {
        // One malloc arena: PID 1 stays small however many connection threads come and go.
        _ = csystem_limit_malloc_arenas(1)
        let settings: SupervisorSettings
        do {
            settings = try SupervisorSettings.fromEnvironment(executablePath: SupervisorSettings.executablePath())
        } catch {
            FileIO.writeError("kube-haproxy: \(error)\n")
            return 2
        }
        if getpid() != 1 {
            // Not PID 1: orphans of our children must still come to us to be reaped.
            if csystem_set_child_subreaper() != 0 {
                Log.warning("could not become child subreaper", ["error": SystemError("prctl PR_SET_CHILD_SUBREAPER").description])
            }
        }
        let paths = settings.paths
        do {
            try FileIO.makeDirectory(paths.runDirectory, mode: 0o755)
            try FileIO.makeDirectory(paths.sslDirectory, mode: 0o700)
            chmod(paths.sslDirectory, 0o700)
            try FileIO.writeAtomically(paths.supervisorConfig, AdminSocket.supervisorConfig(adminSocket: paths.adminSocket), mode: 0o644)
        } catch {
            FileIO.writeError("kube-haproxy: cannot prepare the run directory \(paths.runDirectory): \(error)\n")
            return 1
        }
        let reaper = Reaper()
        let metrics = Metrics()
        let history = ApplyHistory(runDirectory: paths.runDirectory, stateDirectory: settings.stateDirectory)
        let generations = HAProxyGenerations(settings: settings, reaper: reaper, metrics: metrics, history: history)
        let watcher = settings.watcherPath.map { WatcherProcess(executable: $0, settings: settings, reaper: reaper) }
        let server = ControlServer(path: paths.controlSocket, maximumRequestBytes: settings.maximumRequestBytes) { request in
            switch request {
            case .apply(let config, let certificates):
                return generations.apply(DesiredState(config: config, certificates: certificates))
            case .reload:
                return generations.reload()
            case .status:
                var status = generations.status()
                watcher?.describe(into: &status)
                (status.skippedServices, status.skippedCertificates) = metrics.skipped()
                return .status(status)
            case .report(let report):
                metrics.record(report)
                return .acknowledged
            case .history:
                return .history(history.list())
            }
        }
        if let address = settings.metricsAddress {
            let server = MetricsServer(address: address) { path in
                let gauges = generations.gauges()
                switch path {
                case "/metrics":
                    return .init(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
                                 body: metrics.exposition(generation: gauges.generation, draining: gauges.draining,
                                                          watcherRestarts: watcher?.restarts ?? 0, haproxyUp: gauges.serving))
                case "/healthz":
                    // Alive, and HAProxy runs once there is a config for it to run.
                    let healthy = gauges.serving || !gauges.configured
                    return .init(status: healthy ? 200 : 503, contentType: "text/plain; charset=utf-8",
                                 body: healthy ? "ok\n" : "haproxy is not running\n")
                case "/readyz":
                    let body = !gauges.serving ? "no configuration is being served yet\n"
                        : gauges.bundleSince.map { "serving the last-good bundle from \($0)\n" } ?? "ok\n"
                    return .init(status: gauges.serving ? 200 : 503, contentType: "text/plain; charset=utf-8", body: body)
                default:
                    return .init(status: 404, contentType: "text/plain; charset=utf-8", body: "not found: try /metrics, /healthz, /readyz\n")
                }
            }
            do {
                try server.start()
            } catch {
                FileIO.writeError("kube-haproxy: cannot serve metrics: \(error)\n")
                return 1
            }
        }
        do {
            try server.start()
        } catch {
            FileIO.writeError("kube-haproxy: cannot serve the control socket: \(error)\n")
            return 1
        }
        Log.info("supervisor started", ["pid": String(getpid()), "run_dir": paths.runDirectory, "haproxy": settings.haproxyPath,
                                        "watcher": settings.watcherPath ?? "none"])
        if let bundle = history.bundle {
            serveLastGood(bundle, generations: generations)
        }
        watcher?.start()
        let code = SignalLoop.run(generations: generations, watcher: watcher, reaper: reaper, grace: settings.grace)
        unlink(paths.controlSocket)
        history.flush()
        return code
    }

    /// At start, before the watcher has read anything: the bundle last applied successfully,
    /// when there is one and HAProxy accepts it. A bundle that cannot be read is logged and ignored.
    static func serveLastGood(_ bundle: LastGoodBundle, generations: HAProxyGenerations) {
        let saved: LastGoodBundle.Saved
        do {
            guard let found = try bundle.load() else {
                Log.info("no last-good bundle yet", ["file": bundle.file])
                return
            }
            saved = found
        } catch {
            Log.error("ignoring the last-good bundle", ["file": bundle.file, "error": error.description])
            return
        }
        generations.serveBundle(saved)
        _ = csystem_malloc_trim()
    }
}
