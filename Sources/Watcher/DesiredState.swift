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

/// Renders the template with the cluster state and sends the desired state to the supervisor.
final class DesiredStateSender {
    let settings: WatcherSettings
    let metrics: WatcherMetrics
    let reporter: ProblemReporter?
    private var compiled: (source: String, template: Template)?
    private var lastAcknowledged: (config: String, certificates: [String: String])?
    private var lastProblems: [ClusterProblem] = []
    private var loggedNoTemplate = false

    init(settings: WatcherSettings, metrics: WatcherMetrics, reporter: ProblemReporter?) {
        self.settings = settings
        self.metrics = metrics
        self.reporter = reporter
    }

    /// Renders and sends the desired state; false when it must be tried again (the supervisor
    /// could not be reached).
    func apply(_ state: inout ClusterState) -> Bool {
        for problem in state.takeProblems() { reporter?.report(problem, uid: state.uids[problem.object]) }
        let problems = state.certificateProblems
        // Each problem is logged once, when it appears.
        for problem in problems where !lastProblems.contains(problem) {
            Log.warning("skipping a certificate", ["problem": problem.message])
            reporter?.report(problem, uid: state.uids[problem.object])
        }
        lastProblems = problems
        let configObject = ObjectKey(kind: .configmaps, namespace: settings.lbNamespace, name: "config")
        guard let source = state.template else {
            if !loggedNoTemplate {
                Log.error("no template yet: nothing is sent until ConfigMap \(settings.lbNamespace)/config has a \"template\" key")
                loggedNoTemplate = true
            }
            return true
        }
        loggedNoTemplate = false
        let started = monotonicSeconds()
        let config: String
        do {
            config = try render(source, state)
        } catch {
            metrics.countRenderError()
            Log.error("template error: the last good config stays live",
                      ["object": configObject.description, "key": "template", "line": String(error.line), "error": error.message])
            reporter?.report(ClusterProblem(object: configObject, reason: "TemplateError",
                                            message: "template error: the last good config stays live: key template, line \(error.line): \(error.message)"),
                             uid: state.uids[configObject])
            return true
        }
        let rendered = monotonicSeconds()
        metrics.observeRender(seconds: rendered - started)
        let certificates = state.certificateFiles
        if let last = lastAcknowledged, last.config == config, last.certificates == certificates { return true }
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
        case .failed(let failure):
            Log.error("the supervisor rejected the config; the last good one stays live", ["error": failure.message])
            reporter?.report(ClusterProblem(object: configObject, reason: "ConfigRejected",
                                            message: "the supervisor rejected the config; the last good one stays live: \(failure.message)"),
                             uid: state.uids[configObject])
        case .status, .acknowledged:
            Log.error("the supervisor answered an apply with something else; will send again", ["reply": reply.json.serialized])
            lastAcknowledged = nil
            return false
        }
        return true
    }

    private func render(_ source: String, _ state: ClusterState) throws(TemplateError) -> String {
        let template: Template
        if let compiled, compiled.source == source {
            template = compiled.template
        } else {
            template = try Template(source: source, name: "template")
            compiled = (source, template)
        }
        return try template.render(state.context(ssldir: settings.sslDirectory, statsPassword: settings.statisticsPassword,
                                                 environment: settings.environment))
    }
}
