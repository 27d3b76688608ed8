// The watcher proper (no subcommand): the process the supervisor starts.
import CSystem
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

enum WatchCommand {
    static func run() -> Int32 {
        let settings: WatcherSettings
        do {
            settings = try WatcherSettings.fromEnvironment()
        } catch {
            FileIO.writeError("kube-haproxy-watcher: \(error)\n")
            return 2
        }
        // One malloc arena: the list pages the watch threads read and free are then reused for
        // the objects the loop keeps, instead of idling in a second arena (10,000 pods: about
        // 10 MB at the peak, and what trimming leaves behind in it).
        _ = csystem_limit_malloc_arenas(1)
        CurlHandle.globalInit()
        exitWhenTheSupervisorGoes()
        if settings.statisticsPassword == WatcherSettings.defaultStatisticsPassword {
            Log.warning("STATISTICS_PASSWORD is not set: the template's stats.password is the well-known default")
        }
        switch settings.source {
        case .etcd2(let etcd):
            Log.info("watcher started", ["source": "etcd2", "etcd": etcd.base, "prefix": settings.prefix, "namespace": settings.lbNamespace,
                                         "reload_interval_seconds": formatSeconds(settings.reloadInterval)])
            WatchLoop(settings: settings, etcd: etcd).run()
        case .kubernetes(let api):
            let token = BearerToken(path: api.tokenFile).current != nil ? "from \(api.tokenFile)" : "none (\(api.tokenFile) absent)"
            Log.info("watcher started", ["source": "kubernetes", "api_server": api.server, "token": token,
                                         "ca": api.tls.caFile ?? "system CAs", "namespace": settings.lbNamespace,
                                         "reload_interval_seconds": formatSeconds(settings.reloadInterval)])
            KubernetesSourceLoop(settings: settings, api: api).run()
        }
    }

    /// The watcher belongs to the supervisor that started it: when that process is gone (we
    /// are re-parented), nothing would read what we send, so we leave too. Checked every second.
    static func exitWhenTheSupervisorGoes() {
        let parent = getppid()
        guard parent > 1 else { return }
        try? startThread {
            while getppid() == parent { sleepSeconds(1) }
            Log.warning("the supervisor is gone; the watcher exits", ["supervisor_pid": String(parent)])
            exit(0)
        }
    }
}
