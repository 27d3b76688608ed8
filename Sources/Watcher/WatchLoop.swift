// The watcher's loop: read the cluster, watch it (never poll), render on change, send the
// desired state to the supervisor. Latency first, storms bounded: an isolated change goes out at
// once; changes within the reload interval of the last apply go out together at its end.
import CSystem
import Dispatch
import Jinja
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Reads the whole state the template depends on with recursive GETs.
struct ClusterReader {
    let settings: WatcherSettings
    let client: EtcdClient

    /// The state and the etcd index of the first read: watching from the next index misses nothing.
    func read() throws(EtcdError) -> (state: ClusterState, index: Int) {
        var state = ClusterState(prefix: settings.prefix, lbNamespace: settings.lbNamespace)
        let index = try load(.configmaps, settings.lbNamespace, into: &state)
        _ = try load(.secrets, settings.lbNamespace, into: &state)
        try readNewNamespaces(into: &state)
        return (state, index)
    }

    /// Reads the pods of namespaces that services name and that were not read yet.
    func readNewNamespaces(into state: inout ClusterState) throws(EtcdError) {
        for namespace in state.namespacesToRead {
            _ = try load(.pods, namespace, into: &state)
        }
    }

    private func load(_ kind: ObjectKind, _ namespace: String, into state: inout ClusterState) throws(EtcdError) -> Int {
        do {
            let response = try client.get(state.key(kind, namespace), recursive: true)
            state.load(kind, namespace: namespace, nodes: response.node?.leaves ?? [], etcdIndex: response.etcdIndex)
            return response.etcdIndex
        } catch {
            guard case .notFound(let index) = error else { throw error }
            state.load(kind, namespace: namespace, nodes: [], etcdIndex: index)
            return index
        }
    }
}

/// Watch results handed from the watch threads to the loop.
final class EventQueue: Sendable {
    enum Event: Sendable {
        case change(EtcdResponse, round: Int)
        case failure(EtcdError, round: Int)
    }

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

final class WatchLoop {
    let settings: WatcherSettings
    let queue = EventQueue()
    let metrics: WatcherMetrics
    private var state: ClusterState
    private var round = 0
    private var cancel = CancelFlag()
    private var compiled: (source: String, template: Template)?
    private var lastAcknowledged: (config: String, certificates: [String: String])?
    private var lastProblems: [String] = []
    private var loggedNoTemplate = false
    private var skipped = SkippedObjects()

    init(settings: WatcherSettings) {
        self.settings = settings
        metrics = WatcherMetrics(controlSocket: settings.controlSocket)
        state = ClusterState(prefix: settings.prefix, lbNamespace: settings.lbNamespace)
    }

    func run() -> Never {
        let client: EtcdClient
        do {
            client = try EtcdClient(settings: settings.etcd)
        } catch {
            Log.error("cannot create an etcd client", ["error": error.description])
            exit(1)
        }
        let reader = ClusterReader(settings: settings, client: client)
        var backoff = Backoff(initial: 1, maximum: 32)
        metrics.startReporting()
        var afterFailure: Bool? = nil
        if settings.statisticsPassword == WatcherSettings.defaultStatisticsPassword {
            Log.warning("STATISTICS_PASSWORD is not set: the template's stats.password is the well-known default")
        }
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
            if let indexCleared = afterFailure { metrics.countResync(indexCleared: indexCleared) }
            metrics.setCurrent(true)
            Log.info("cluster state read", ["services": String(state.services.count), "etcd_index": String(index),
                                            "pods": String(state.pods.values.reduce(0) { $0 + $1.count })])
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
        var pending = true
        var nextApplyAt = 0.0
        while true {
            let now = monotonicSeconds()
            if pending && now >= nextApplyAt {
                let sent = applyDesiredState()
                // A render's transient memory (context, output, the decoded parts of pods) goes
                // back to the system rather than idling in the heap until the next one.
                _ = csystem_malloc_trim()
                pending = !sent
                nextApplyAt = monotonicSeconds() + (sent ? settings.reloadInterval : 1)
            }
            let timeout: Double? = pending ? nextApplyAt - monotonicSeconds() : nil
            guard let event = queue.pop(timeout: timeout) else { continue }
            switch event {
            case .change(let response, let eventRound):
                guard eventRound == round else { continue }
                metrics.countEvent()
                if state.apply(response) {
                    pending = true
                    if !state.namespacesToRead.isEmpty {
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
            let (queue, round, cancel, etcd) = (self.queue, self.round, self.cancel, settings.etcd)
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

    // MARK: Render and send

    /// Renders and sends the desired state; false when it must be tried again (the supervisor
    /// could not be reached).
    private func applyDesiredState() -> Bool {
        let problems = state.certificateProblems
        // Each problem is logged once, when it appears.
        for problem in problems where !lastProblems.contains(problem) {
            Log.warning("skipping a certificate", ["problem": problem])
        }
        lastProblems = problems
        guard let source = state.template else {
            if !loggedNoTemplate {
                Log.error("no template yet: nothing is sent until ConfigMap \(settings.lbNamespace)/config has a \"template\" key")
                loggedNoTemplate = true
            }
            return true
        }
        loggedNoTemplate = false
        var exclusions = skipped.exclusions(serviceFingerprint: { self.serviceFingerprint($0, template: source) },
                                            certificateFingerprint: certificateFingerprint)
        var reasons: [String: String] = [:]
        var renders = 0
        var rejections = 0
        while true {
            let started = monotonicSeconds()
            let config: String
            do {
                renders += 1
                config = try render(source, excluding: exclusions)
            } catch {
                metrics.countRenderError()
                // Without the services at fault, does the template render? Then only they are skipped.
                let found = isolate(source, exclusions, renders: &renders) { output in output == nil }
                guard let found, !found.isEmpty else {
                    Log.error("template error: the last good config stays live",
                              ["object": "ConfigMap \(settings.lbNamespace)/config", "key": "template", "line": String(error.line), "error": error.message])
                    return true
                }
                for name in found { reasons["service " + name] = "the template fails with it: line \(error.line): \(error.message)" }
                exclusions.services.formUnion(found)
                continue
            }
            let rendered = monotonicSeconds()
            metrics.observeRender(seconds: rendered - started)
            let certificates = state.certificateFiles(excluding: exclusions.certificates)
            if let last = lastAcknowledged, last.config == config, last.certificates == certificates {
                remember(exclusions, reasons: reasons, template: source)
                return true
            }
            let reply: ControlReply
            do {
                var client = try ControlClient(path: settings.controlSocket)
                reply = try client.send(.apply(config: config, certificates: certificates))
            } catch {
                Log.warning("cannot reach the supervisor; will send again", ["socket": settings.controlSocket, "error": error.description])
                lastAcknowledged = nil
                return false
            }
            lastAcknowledged = (config, certificates)
            switch reply {
            case .applied(let applied):
                Log.info(applied.changed ? "config applied" : "config unchanged",
                         ["generation": String(applied.generation), "render_seconds": formatSeconds(rendered - started),
                          "apply_seconds": formatSeconds(monotonicSeconds() - rendered), "bytes": String(config.utf8.count),
                          "certificates": String(certificates.count)])
                remember(exclusions, reasons: reasons, template: source)
                return true
            case .failed(let failure):
                if failure.reason == .rejected && rejections < FaultIsolation.maximumRejections {
                    rejections += 1
                    let alert = failure.message.split(separator: "\n").first { $0.contains("[ALERT]") }.map(String.init) ?? failure.message
                    // A certificate HAProxy cannot load: its [ALERT] names the file.
                    let named = FaultIsolation.certificates(namedIn: failure.message, ssldir: settings.sslDirectory)
                        .subtracting(exclusions.certificates).intersection(certificates.keys)
                    if !named.isEmpty {
                        for name in named { reasons["certificate " + name] = "HAProxy cannot load it: " + alert }
                        exclusions.certificates.formUnion(named)
                        continue
                    }
                    // A line HAProxy refuses: the services whose absence takes it out of the config.
                    let refused = FaultIsolation.refusedLines(in: failure.message, config: config)
                    if !refused.isEmpty,
                       let found = isolate(source, exclusions, renders: &renders, stillFails: { output in
                           guard let output else { return true }
                           let lines = Set(output.split(separator: "\n", omittingEmptySubsequences: false))
                           return refused.contains { lines.contains(Substring($0)) }
                       }), !found.isEmpty {
                        for name in found { reasons["service " + name] = "HAProxy refuses what it renders: " + alert }
                        exclusions.services.formUnion(found)
                        continue
                    }
                }
                Log.error("the supervisor rejected the config; the last good one stays live", ["error": failure.message])
                return true
            case .status, .history, .acknowledged:
                Log.error("the supervisor answered an apply with something else; will send again", ["reply": reply.json.serialized])
                lastAcknowledged = nil
                return false
            }
        }
    }

    /// The services whose presence keeps `stillFails` true for the render's output (nil: the
    /// render failed), found by rendering without them within the render budget; nil when no
    /// service is to blame (it still fails without any) or the budget is spent.
    private func isolate(_ source: String, _ exclusions: Exclusions, renders: inout Int,
                         stillFails: (String?) -> Bool) -> Set<String>? {
        let candidates = state.services.map(\.name).filter { !exclusions.services.contains($0) }
        guard !candidates.isEmpty else { return nil }
        var used = renders
        defer { renders = used }
        func trial(_ excluded: Set<String>) -> Bool? {
            guard used < FaultIsolation.renderBudget else { return nil }
            used += 1
            var without = exclusions
            without.services.formUnion(excluded)
            return stillFails(try? render(source, excluding: without))
        }
        guard trial(Set(candidates)) == false else { return nil }
        let found = FaultIsolation.faultyServices(candidates, fails: trial)
        if found == nil {
            Log.warning("too many renders to find the services at fault; the last good config stays live",
                        ["renders": String(used), "budget": String(FaultIsolation.renderBudget)])
        }
        return found
    }

    /// Remembers what this apply left out, logging what is newly skipped and what came back.
    private func remember(_ exclusions: Exclusions, reasons: [String: String], template: String) {
        var services: [String: SkippedObjects.Entry] = [:]
        for name in exclusions.services {
            guard let fingerprint = serviceFingerprint(name, template: template) else { continue }
            let reason = reasons["service " + name] ?? skipped.services[name]?.reason ?? ""
            if skipped.services[name] == nil {
                Log.error("skipping a service that breaks the config; everything else goes live",
                          ["object": "ConfigMap \(settings.lbNamespace)/services", "key": name, "error": reason])
            }
            services[name] = SkippedObjects.Entry(fingerprint: fingerprint, reason: reason)
        }
        var certificates: [String: SkippedObjects.Entry] = [:]
        for name in exclusions.certificates {
            guard let fingerprint = certificateFingerprint(name) else { continue }
            let reason = reasons["certificate " + name] ?? skipped.certificates[name]?.reason ?? ""
            if skipped.certificates[name] == nil {
                Log.error("skipping a certificate that breaks the config; everything else goes live",
                          ["object": "ConfigMap \(settings.lbNamespace)/certificates", "key": name, "error": reason])
            }
            certificates[name] = SkippedObjects.Entry(fingerprint: fingerprint, reason: reason)
        }
        let back = skipped.replace(services: services, certificates: certificates)
        for name in back.services { Log.info("a skipped service is in the config again", ["key": name]) }
        for name in back.certificates { Log.info("a skipped certificate is in the config again", ["key": name]) }
        metrics.setSkipped(services: skipped.services.keys.sorted(), certificates: skipped.certificates.keys.sorted())
    }

    /// What a service's part of the config depends on: the template, its entry, its backends.
    private func serviceFingerprint(_ name: String, template: String) -> UInt64? {
        guard let service = state.services.first(where: { $0.name == name }), let entry = state.serviceEntry(name) else { return nil }
        return SkippedObjects.fingerprint([template, entry] + state.backendNames(of: service))
    }

    private func certificateFingerprint(_ name: String) -> UInt64? {
        state.certificateNames.contains(name) ? SkippedObjects.fingerprint([state.certificateSource(name)]) : nil
    }

    private func render(_ source: String, excluding exclusions: Exclusions) throws(TemplateError) -> String {
        let template: Template
        if let compiled, compiled.source == source {
            template = compiled.template
        } else {
            template = try Template(source: source, name: "template")
            compiled = (source, template)
        }
        return try template.render(state.context(ssldir: settings.sslDirectory, statsPassword: settings.statisticsPassword,
                                                 environment: settings.environment, excluding: exclusions))
    }
}

/// 1 s doubling to a cap, with up to 20 % jitter so a fleet does not retry in step.
struct Backoff {
    let initial: Double
    let maximum: Double
    private var current: Double

    init(initial: Double, maximum: Double) {
        self.initial = initial
        self.maximum = maximum
        current = initial
    }

    mutating func next() -> Double {
        let delay = current * (1 + Double.random(in: 0..<0.2))
        current = min(maximum, current * 2)
        return delay
    }

    mutating func reset() { current = initial }
}

