// The watcher proper (no subcommand): the process the supervisor starts.
import Shared

enum WatchCommand {
    static func run() -> Int32 {
        let settings: WatcherSettings
        do {
            settings = try WatcherSettings.fromEnvironment()
        } catch {
            FileIO.writeError("kube-haproxy-watcher: \(error)\n")
            return 2
        }
        EtcdClient.globalInit()
        Log.info("watcher started", ["etcd": settings.etcd.base, "prefix": settings.prefix, "namespace": settings.lbNamespace,
                                     "reload_interval_seconds": formatSeconds(settings.reloadInterval)])
        WatchLoop(settings: settings).run()
    }
}
