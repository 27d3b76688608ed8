// What every source shares once the cluster model is current: when to apply (pacing), and how
// (render the template, send the desired state to the supervisor, report problems).
import CSystem
import Jinja
import JSON
import Shared

/// Where problems are reported besides the log: Events on the objects at fault, when the source
/// is the Kubernetes API.
protocol ProblemReporter: AnyObject {
    func report(_ problem: ClusterProblem, uid: String?)
}

/// Latency first, storms bounded: an isolated change goes out at once; changes within the
/// reload interval of the last apply go out together at its end.
struct ApplyPacer {
    let interval: Double
    private(set) var pending = true
    private var nextApplyAt = 0.0

    init(interval: Double) { self.interval = interval }

    mutating func changed() { pending = true }

    /// Runs `send` when an apply is due; `send` answers false when it must be tried again (in 1 s).
    mutating func applyIfDue(_ send: () -> Bool) {
        guard pending, monotonicSeconds() >= nextApplyAt else { return }
        let sent = send()
        // A render's transient memory (context, output, the decoded parts of pods) goes back to
        // the system rather than idling in the heap until the next one.
        _ = csystem_malloc_trim()
        pending = !sent
        nextApplyAt = monotonicSeconds() + (sent ? interval : 1)
    }

    /// How long to wait for events before the next apply is due (nil: nothing is due).
    var timeout: Double? { pending ? nextApplyAt - monotonicSeconds() : nil }
}

/// Renders the template with the cluster state and sends the desired state to the supervisor,
/// leaving out the services and certificates that break the config (FaultIsolation.swift).
final class DesiredStateSender {
    let settings: WatcherSettings
    let metrics: WatcherMetrics
    let reporter: ProblemReporter?
    private var compiled: (source: String, template: Template)?
    private var lastAcknowledged: (config: String, certificates: [String: String])?
    private var lastProblems: [ClusterProblem] = []
    private var loggedNoTemplate = false
    private var skipped = SkippedObjects()

    init(settings: WatcherSettings, metrics: WatcherMetrics, reporter: ProblemReporter?) {
        self.settings = settings
        self.metrics = metrics
        self.reporter = reporter
    }

    /// Renders and sends the desired state; false when it must be tried again (the supervisor
    /// could not be reached). The problems found in the objects are reported first. The state
    /// is passed down, never kept: kept, it would make the loop's next change copy every pod
    /// (copy on write).
    func apply(_ state: inout ClusterState) -> Bool {
        for problem in state.takeProblems() { reporter?.report(problem, uid: state.uids[problem.object]) }
        return applyDesiredState(state)
    }

    private func report(_ reason: String, _ object: ObjectKey, _ message: String, _ state: ClusterState) {
        reporter?.report(ClusterProblem(object: object, reason: reason, message: message), uid: state.uids[object])
    }

    /// Renders and sends the desired state; false when it must be tried again (the supervisor
    /// could not be reached).
    private func applyDesiredState(_ state: ClusterState) -> Bool {
        let problems = state.certificateProblems
        // Each problem is logged once, when it appears.
        for problem in problems where !lastProblems.contains(problem) {
            Log.warning("skipping a certificate", ["problem": problem.message])
            report(problem.reason, problem.object, problem.message, state)
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
        let configObject = ObjectKey(kind: .configmaps, namespace: settings.lbNamespace, name: "config")
        var exclusions = skipped.exclusions(serviceFingerprint: { serviceFingerprint($0, template: source, state) },
                                            certificateFingerprint: { certificateFingerprint($0, state) })
        var reasons: [String: String] = [:]
        var renders = 0
        var rejections = 0
        while true {
            let started = monotonicSeconds()
            let config: String
            do {
                renders += 1
                config = try render(source, excluding: exclusions, state)
            } catch {
                metrics.countRenderError()
                // Without the services at fault, does the template render? Then only they are skipped.
                let found = isolate(source, exclusions, state, renders: &renders) { output in output == nil }
                guard let found, !found.isEmpty else {
                    Log.error("template error: the last good config stays live",
                              ["object": configObject.description, "key": "template", "line": String(error.line), "error": error.message])
                    report("TemplateError", configObject,
                           "template error: the last good config stays live: key template, line \(error.line): \(error.message)", state)
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
                remember(exclusions, reasons: reasons, template: source, state)
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
                remember(exclusions, reasons: reasons, template: source, state)
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
                       let found = isolate(source, exclusions, state, renders: &renders, stillFails: { output in
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
                report("ConfigRejected", configObject, "the supervisor rejected the config; the last good one stays live: \(failure.message)",
                       state)
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
    private func isolate(_ source: String, _ exclusions: Exclusions, _ state: ClusterState, renders: inout Int,
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
            return stillFails(try? render(source, excluding: without, state))
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
    private func remember(_ exclusions: Exclusions, reasons: [String: String], template: String, _ state: ClusterState) {
        /// One kind of object: its entries, each newly skipped one logged and reported once.
        func entries(_ names: Set<String>, kind: String, configMap: String, eventReason: String, known: [String: SkippedObjects.Entry],
                     fingerprint: (String) -> UInt64?) -> [String: SkippedObjects.Entry] {
            var result: [String: SkippedObjects.Entry] = [:]
            for name in names {
                guard let value = fingerprint(name) else { continue }
                let reason = reasons["\(kind) \(name)"] ?? known[name]?.reason ?? ""
                if known[name] == nil {
                    let message = "skipping a \(kind) that breaks the config; everything else goes live"
                    Log.error(message, ["object": "ConfigMap \(settings.lbNamespace)/\(configMap)", "key": name, "error": reason])
                    report(eventReason, ObjectKey(kind: .configmaps, namespace: settings.lbNamespace, name: configMap),
                           "\(message): key \(name): \(reason)", state)
                }
                result[name] = SkippedObjects.Entry(fingerprint: value, reason: reason)
            }
            return result
        }
        let services = entries(exclusions.services, kind: "service", configMap: "services", eventReason: "ServiceBreaksConfig",
                               known: skipped.services) { serviceFingerprint($0, template: template, state) }
        let certificates = entries(exclusions.certificates, kind: "certificate", configMap: "certificates",
                                   eventReason: "CertificateBreaksConfig", known: skipped.certificates) { certificateFingerprint($0, state) }
        let back = skipped.replace(services: services, certificates: certificates)
        for name in back.services { Log.info("a skipped service is in the config again", ["key": name]) }
        for name in back.certificates { Log.info("a skipped certificate is in the config again", ["key": name]) }
        metrics.setSkipped(services: skipped.services.keys.sorted(), certificates: skipped.certificates.keys.sorted())
    }

    /// What a service's part of the config depends on: the template, its entry, its backends.
    private func serviceFingerprint(_ name: String, template: String, _ state: ClusterState) -> UInt64? {
        guard let service = state.services.first(where: { $0.name == name }), let entry = state.serviceEntry(name) else { return nil }
        return SkippedObjects.fingerprint([template, entry] + state.backendNames(of: service))
    }

    private func certificateFingerprint(_ name: String, _ state: ClusterState) -> UInt64? {
        state.certificateNames.contains(name) ? SkippedObjects.fingerprint([state.certificateSource(name)]) : nil
    }

    private func render(_ source: String, excluding exclusions: Exclusions, _ state: ClusterState) throws(TemplateError) -> String {
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
