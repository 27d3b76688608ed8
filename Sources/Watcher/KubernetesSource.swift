// The Kubernetes API as a source of the cluster model: one list+watch (a reflector, as
// client-go has it) per object set, each on its own thread: the load balancer's four objects by
// name, and the pods of each namespace the services name. The loop applies what they find to
// the model and renders once every set has been listed.
import JSON
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// What the reflectors hand to the loop; `id` tells which reflector (a stopped one's are ignored).
enum ReflectorEvent: Sendable {
    /// A full list: the set is exactly these objects. `resync` says why it was listed again.
    case listed(id: Int, objects: [ListedObject], resync: WatcherMetrics.ResyncReason?)
    /// One object set (`json`) or deleted (nil).
    case changed(id: Int, name: String, json: String?)
    /// The reflector cannot reach the set; it retries with backoff and lists again.
    case failed(id: Int)
}

/// Runs one list+watch until cancelled.
struct Reflector {
    let id: Int
    let watch: ResourceWatch
    let client: KubernetesClient
    let queue: Queue<ReflectorEvent>
    let cancel: CancelFlag
    let forbidden: ForbiddenLog

    func run() {
        var backoff = Backoff(initial: 1, maximum: 32)
        var resync: WatcherMetrics.ResyncReason? = nil
        while !cancel.isCancelled {
            var resourceVersion: String
            do {
                // The listed objects go to the loop, and no copy stays here while the watch runs.
                let listed = try client.list(watch, cancel: cancel)
                queue.push(.listed(id: id, objects: listed.objects, resync: resync))
                resourceVersion = listed.resourceVersion
            } catch {
                guard fail(error, verb: "list", backoff: &backoff) else { return }
                resync = .reconnect
                continue
            }
            while !cancel.isCancelled {
                // As client-go: a random timeout spreads the watches' renewals.
                let started = monotonicSeconds()
                var received = false
                do {
                    try client.watch(watch, from: resourceVersion, timeoutSeconds: Int.random(in: 300...600), cancel: cancel) { event in
                        // The set is followed again: the next failure starts the backoff afresh.
                        if !received { backoff.reset() }
                        received = true
                        switch event {
                        case .object(let name, let json, let version):
                            resourceVersion = version.isEmpty ? resourceVersion : version
                            queue.push(.changed(id: id, name: name, json: json))
                        case .bookmark(let version):
                            resourceVersion = version.isEmpty ? resourceVersion : version
                        case .error:
                            break
                        }
                    }
                } catch {
                    if error.isExpired {
                        Log.warning("the watch's resourceVersion expired (410 Gone); listing again",
                                    ["objects": watch.description, "resource_version": resourceVersion])
                        resync = .expired
                        break
                    }
                    if monotonicSeconds() - started > 10 { backoff.reset() }
                    guard fail(error, verb: "watch", backoff: &backoff) else { return }
                    resync = .reconnect
                    break
                }
                // A watch the server ends at once, again and again, must not spin.
                if !received && monotonicSeconds() - started < 1 { sleep(backoff.next()) }
            }
        }
    }

    /// Reports a failure and waits before the next try; false when cancelled.
    private func fail(_ error: KubernetesAPIError, verb: String, backoff: inout Backoff) -> Bool {
        if case .cancelled = error { return false }
        queue.push(.failed(id: id))
        let delay = backoff.next()
        if case .status(let status, _, _) = error, status.code == 403 {
            forbidden.note(verb: verb, resource: watch.kind.rawValue, namespace: watch.namespace, name: watch.name, message: status.message)
        } else {
            Log.error("cannot \(verb) \(watch.description) from the API server; HAProxy keeps its last config",
                      ["error": error.description, "retry_in_seconds": formatSeconds(delay)])
        }
        sleep(delay)
        return !cancel.isCancelled
    }

    /// Sleeps, waking early when cancelled.
    private func sleep(_ seconds: Double) {
        let end = monotonicSeconds() + seconds
        while !cancel.isCancelled && monotonicSeconds() < end { sleepSeconds(min(0.1, end - monotonicSeconds())) }
    }
}

/// The Kubernetes source's loop.
final class KubernetesSourceLoop {
    private struct Running {
        var watch: ResourceWatch
        var cancel: CancelFlag
        var listed = false
        var failing = false
    }

    let settings: WatcherSettings
    let api: KubernetesAPISettings
    let metrics: WatcherMetrics
    let token: BearerToken
    let queue = Queue<ReflectorEvent>()
    private let forbidden = ForbiddenLog()
    private let sender: DesiredStateSender
    private var state: ClusterState
    private var running: [Int: Running] = [:]
    private var podReflectors: [String: Int] = [:]
    private var nextID = 0
    private var loggedRead = false

    init(settings: WatcherSettings, api: KubernetesAPISettings) {
        self.settings = settings
        self.api = api
        token = BearerToken(path: api.tokenFile)
        metrics = WatcherMetrics(controlSocket: settings.controlSocket)
        let recorder = EventRecorder(settings: api, token: token, namespace: settings.lbNamespace, forbidden: forbidden)
        sender = DesiredStateSender(settings: settings, metrics: metrics, reporter: recorder)
        state = ClusterState(lbNamespace: settings.lbNamespace)
    }

    func run() -> Never {
        metrics.startReporting()
        for (kind, name) in ClusterState.lbObjectNames {
            start(ResourceWatch(kind: kind, namespace: settings.lbNamespace, name: name))
        }
        var pacer = ApplyPacer(interval: settings.reloadInterval)
        while true {
            let listed = running.values.allSatisfy(\.listed)
            if listed {
                if !loggedRead {
                    loggedRead = true
                    Log.info("cluster state read", ["services": String(state.services.count),
                                                    "pods": String(state.pods.values.reduce(0) { $0 + $1.count })])
                }
                pacer.applyIfDue { sender.apply(&state) }
            }
            // Until every set is listed, nothing is rendered: a config without some pods is wrong.
            guard let event = queue.pop(timeout: listed ? pacer.timeout : nil) else { continue }
            switch event {
            case .listed(let id, let objects, let resync):
                guard let reflector = running[id] else { continue }
                if let resync { metrics.countResync(resync) }
                running[id]?.listed = true
                running[id]?.failing = false
                let watch = reflector.watch
                if state.replace(watch.kind, namespace: watch.namespace, name: watch.name, with: objects) {
                    pacer.changed()
                }
                followNamespaces()
            case .changed(let id, let name, let json):
                guard let reflector = running[id] else { continue }
                metrics.countEvent()
                let key = ObjectKey(kind: reflector.watch.kind, namespace: reflector.watch.namespace, name: name)
                // A field selector names one object; anything else is not ours.
                guard reflector.watch.name.map({ $0 == name }) ?? true else { continue }
                if state.set(key, json: json) {
                    pacer.changed()
                    if key.kind == .configmaps && name == "services" { followNamespaces() }
                }
            case .failed(let id):
                running[id]?.failing = true
            }
            metrics.setCurrent(running.values.allSatisfy { $0.listed && !$0.failing })
        }
    }

    /// Starts a reflector for each namespace the services name and stops those of namespaces
    /// they no longer name.
    private func followNamespaces() {
        let needed = state.watchedNamespaces
        for (namespace, id) in podReflectors where !needed.contains(namespace) {
            running[id]?.cancel.cancel()
            running[id] = nil
            podReflectors[namespace] = nil
        }
        for namespace in needed.sorted() where podReflectors[namespace] == nil {
            podReflectors[namespace] = start(ResourceWatch(kind: .pods, namespace: namespace, name: nil))
        }
    }

    @discardableResult
    private func start(_ watch: ResourceWatch) -> Int {
        nextID += 1
        let id = nextID
        let cancel = CancelFlag()
        running[id] = Running(watch: watch, cancel: cancel)
        let (api, token, queue, forbidden) = (self.api, self.token, self.queue, self.forbidden)
        let started = KubernetesClient.startThread(settings: api, token: token) { client in
            Reflector(id: id, watch: watch, client: client, queue: queue, cancel: cancel, forbidden: forbidden).run()
        }
        if let error = started {
            // Without the thread the set would never be listed, and nothing rendered: start afresh.
            Log.error("cannot start a thread for a watch", ["objects": watch.description, "error": error])
            exit(1)
        }
        return id
    }
}

/// Reads the state once through the API (the render command's dry run).
enum KubernetesSnapshot {
    static func read(settings: WatcherSettings, api: KubernetesAPISettings) throws(KubernetesAPIError) -> ClusterState {
        let client = try KubernetesClient(settings: api, token: BearerToken(path: api.tokenFile))
        var state = ClusterState(lbNamespace: settings.lbNamespace)
        for (kind, name) in ClusterState.lbObjectNames {
            let watch = ResourceWatch(kind: kind, namespace: settings.lbNamespace, name: name)
            _ = state.replace(kind, namespace: watch.namespace, name: name, with: try client.list(watch, cancel: nil).objects)
        }
        for namespace in state.watchedNamespaces.sorted() {
            _ = state.replace(.pods, namespace: namespace, with: try client.list(ResourceWatch(kind: .pods, namespace: namespace, name: nil), cancel: nil).objects)
        }
        return state
    }
}
