// The etcd2 source's loop: read the cluster, watch it (never poll), render on change, send the
// desired state to the supervisor (DesiredState.swift paces and sends).
import CSystem
import Dispatch
import Jinja
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Watch results handed from the watch threads to the loop.
typealias EventQueue = Queue<EtcdEvent>

enum EtcdEvent: Sendable {
    case change(EtcdResponse, round: Int)
    case failure(EtcdError, round: Int)
}

/// Hands events from threads to the loop that waits for them.
final class Queue<Event: Sendable>: Sendable {
    private let events = Mutex<[Event]>([])
    private let available = DispatchSemaphore(value: 0)

    func push(_ event: Event) {
        events.withLock { $0.append(event) }
        available.signal()
    }

    /// The next event, waiting up to `timeout` seconds (nil: wait as long as it takes).
    func pop(timeout: Double?) -> Event? {
        let result = timeout.map { available.wait(timeout: .now() + max(0, $0)) } ?? { available.wait(); return .success }()
        guard result == .success else { return nil }
        return events.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }
}

/// The etcd2 source's loop.
final class WatchLoop {
    let settings: WatcherSettings
    let etcd: EtcdSettings
    let queue = EventQueue()
    let metrics: WatcherMetrics
    private let sender: DesiredStateSender
    private var state: EtcdClusterState
    private var round = 0
    private var cancel = CancelFlag()

    init(settings: WatcherSettings, etcd: EtcdSettings) {
        self.settings = settings
        self.etcd = etcd
        metrics = WatcherMetrics(controlSocket: settings.controlSocket)
        sender = DesiredStateSender(settings: settings, metrics: metrics, reporter: nil)
        state = EtcdClusterState(prefix: settings.prefix, lbNamespace: settings.lbNamespace)
    }

    func run() -> Never {
        let client: EtcdClient
        do {
            client = try EtcdClient(settings: etcd)
        } catch {
            Log.error("cannot create an etcd client", ["error": error.description])
            exit(1)
        }
        let reader = ClusterReader(settings: settings, client: client)
        var backoff = Backoff(initial: 1, maximum: 32)
        metrics.startReporting()
        var afterFailure: Bool? = nil
        while true {
            let index: Int
            do {
                (state, index) = try reader.read()
            } catch {
                metrics.setCurrent(false)
                let delay = backoff.next()
                Log.error("cannot read the cluster state from etcd; HAProxy keeps its last config",
                          ["error": error.description, "retry_in_seconds": formatSeconds(delay)])
                sleepSeconds(delay)
                continue
            }
            backoff.reset()
            _ = csystem_malloc_trim()
            if let indexCleared = afterFailure { metrics.countResync(indexCleared ? .indexCleared : .reconnect) }
            metrics.setCurrent(true)
            Log.info("cluster state read", ["services": String(state.cluster.services.count), "etcd_index": String(index),
                                            "pods": String(state.cluster.pods.values.reduce(0) { $0 + $1.count })])
            startWatches(from: index + 1)
            switch follow(reader: reader) {
            case .resyncNow:
                afterFailure = true
                continue
            case .resyncAfterBackoff(let error):
                afterFailure = false
                metrics.setCurrent(false)
                let delay = backoff.next()
                Log.error("lost the etcd watch; HAProxy keeps its last config", ["error": error.description, "retry_in_seconds": formatSeconds(delay)])
                sleepSeconds(delay)
            }
        }
    }

    enum Interruption {
        case resyncNow
        case resyncAfterBackoff(EtcdError)
    }

    /// Applies watch events and sends the desired state until the watch breaks.
    private func follow(reader: ClusterReader) -> Interruption {
        var pacer = ApplyPacer(interval: settings.reloadInterval)
        while true {
            pacer.applyIfDue { sender.apply(&state.cluster) }
            guard let event = queue.pop(timeout: pacer.timeout) else { continue }
            switch event {
            case .change(let response, let eventRound):
                guard eventRound == round else { continue }
                metrics.countEvent()
                if state.apply(response) {
                    pacer.changed()
                    if !state.cluster.namespacesToRead.isEmpty {
                        do {
                            try reader.readNewNamespaces(into: &state)
                        } catch {
                            stopWatches()
                            return .resyncAfterBackoff(error)
                        }
                    }
                }
            case .failure(let error, let eventRound):
                guard eventRound == round else { continue }
                stopWatches()
                if case .indexCleared = error {
                    Log.warning("the watch fell more than etcd's event history behind; re-reading everything")
                    return .resyncNow
                }
                return .resyncAfterBackoff(error)
            }
        }
    }

    private func startWatches(from index: Int) {
        round += 1
        cancel = CancelFlag()
        let keys = [settings.prefix + "/pods", state.key(.configmaps, settings.lbNamespace), state.key(.secrets, settings.lbNamespace)]
        for key in keys {
            let (queue, round, cancel, etcd) = (self.queue, self.round, self.cancel, self.etcd)
            do {
                try startThread {
                    WatchLoop.watch(key, from: index, settings: etcd, queue: queue, round: round, cancel: cancel)
                }
            } catch {
                queue.push(.failure(.transport("cannot start a watch thread: \(error)"), round: round))
            }
        }
    }

    private func stopWatches() {
        cancel.cancel()
    }

    /// One watch: long-polls etcd for the next change after the last one seen, forever.
    private static func watch(_ key: String, from index: Int, settings: EtcdSettings, queue: EventQueue, round: Int, cancel: CancelFlag) {
        let client: EtcdClient
        do {
            client = try EtcdClient(settings: settings)
        } catch {
            queue.push(.failure(error, round: round))
            return
        }
        var waitIndex = index
        while !cancel.isCancelled {
            do {
                let response = try client.watch(key, waitIndex: waitIndex, cancel: cancel)
                waitIndex = (response.node?.modifiedIndex ?? response.etcdIndex) + 1
                queue.push(.change(response, round: round))
            } catch {
                if case .cancelled = error { return }
                queue.push(.failure(error, round: round))
                return
            }
        }
    }
}

