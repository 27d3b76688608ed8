// The figures of both processes, kept by the supervisor (a watcher restart resets nothing) and
// served in Prometheus' text exposition format.
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// A Prometheus histogram: cumulative bucket counts, sum and count.
struct Histogram: Sendable {
    static let defaultBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    let bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var count = 0

    init(bounds: [Double] = Histogram.defaultBounds) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ value: Double) {
        for (index, bound) in bounds.enumerated() where value <= bound { counts[index] += 1 }
        sum += value
        count += 1
    }

    func write(name: String, help: String, to output: inout String) {
        output += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (index, bound) in bounds.enumerated() {
            output += "\(name)_bucket{le=\"\(Metrics.number(bound))\"} \(counts[index])\n"
        }
        output += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(Metrics.number(sum))\n\(name)_count \(count)\n"
    }
}

final class Metrics: Sendable {
    struct State {
        var applies: [String: Int] = ["changed": 0, "unchanged": 0, "rejected": 0, "error": 0]
        var reloads: [String: Int] = ["success": 0, "failure": 0]
        var reloadDuration = Histogram()
        var runtimeUpdates: [String: Int] = [RuntimeUpdateResult.success.rawValue: 0, RuntimeUpdateResult.fallback.rawValue: 0]
        var lastSuccessfulApply: Double?
        var haproxyRestarts = 0
        // Reported by the watcher.
        var etcdEvents = 0
        var resyncs: [String: Int] = ["index_cleared": 0, "reconnect": 0, "expired": 0]
        var renderErrors = 0
        var renderDuration = Histogram()
        /// Wall-clock time since which the watcher's state is not known to be current; nil when current.
        var staleSince: Double?
        var watcherReported = false
        var skippedServices: [String] = []
        var skippedCertificates: [String] = []
    }

    let state = Mutex(State())

    func recordApply(_ result: String) {
        state.withLock { state in
            state.applies[result, default: 0] += 1
            if result == "changed" || result == "unchanged" { state.lastSuccessfulApply = Metrics.wallClock() }
        }
    }

    func recordReload(success: Bool, seconds: Double?) {
        state.withLock { state in
            state.reloads[success ? "success" : "failure", default: 0] += 1
            if let seconds { state.reloadDuration.observe(seconds) }
        }
    }

    /// How a runtime update ended; the raw value is the metric's `result` label.
    enum RuntimeUpdateResult: String {
        /// Applied through the runtime API.
        case success
        /// Tried, and replaced by a reload.
        case fallback
    }

    func recordRuntimeUpdate(_ result: RuntimeUpdateResult) {
        state.withLock { $0.runtimeUpdates[result.rawValue, default: 0] += 1 }
    }

    /// The runtime updates so far: applied, and tried but replaced by a reload.
    func runtimeUpdateCounts() -> (applied: Int, fallbacks: Int) {
        state.withLock { ($0.runtimeUpdates[RuntimeUpdateResult.success.rawValue] ?? 0, $0.runtimeUpdates[RuntimeUpdateResult.fallback.rawValue] ?? 0) }
    }

    func recordHAProxyRestart() {
        state.withLock { $0.haproxyRestarts += 1 }
    }

    /// Adds what the watcher counted since its last report.
    func record(_ report: WatcherReport) {
        state.withLock { state in
            state.etcdEvents += report.etcdEvents
            state.resyncs["index_cleared", default: 0] += report.indexClearedResyncs
            state.resyncs["reconnect", default: 0] += report.reconnectResyncs
            state.resyncs["expired", default: 0] += report.expiredResyncs
            state.renderErrors += report.renderErrors
            for seconds in report.renderSeconds { state.renderDuration.observe(seconds) }
            state.staleSince = report.staleSince
            state.skippedServices = report.skippedServices
            state.skippedCertificates = report.skippedCertificates
            state.watcherReported = true
        }
    }

    /// The exposition text; `live` holds the gauges read from the other parts at scrape time.
    func exposition(generation: Int, draining: Int, watcherRestarts: Int, haproxyUp: Bool) -> String {
        let state = state.withLock { $0 }
        var text = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { text += "\(name)\(sample.labels) \(Metrics.number(sample.value))\n" }
        }
        func labelled(_ counts: [String: Int], _ label: String) -> [(labels: String, value: Double)] {
            counts.keys.sorted().map { ("{\(label)=\"\($0)\"}", Double(counts[$0] ?? 0)) }
        }
        family("kube_haproxy_applies_total", "counter", "Apply requests by result: changed, unchanged, rejected (HAProxy refused the config), error.",
               labelled(state.applies, "result"))
        family("kube_haproxy_reloads_total", "counter", "New HAProxy generations started, by result.", labelled(state.reloads, "result"))
        state.reloadDuration.write(name: "kube_haproxy_reload_duration_seconds",
                                   help: "Time from starting a new HAProxy generation to it serving.", to: &text)
        family("kube_haproxy_runtime_updates_total", "counter",
               "Changes applied through HAProxy's runtime API without a reload: success, fallback (a command failed or the result differed, so a reload followed).",
               labelled(state.runtimeUpdates, "result"))
        family("kube_haproxy_config_generation", "gauge", "The serving HAProxy generation (0 before the first).", [("", Double(generation))])
        family("kube_haproxy_last_apply_success_timestamp_seconds", "gauge", "Unix time of the last successful apply (0: none yet).",
               [("", state.lastSuccessfulApply ?? 0)])
        family("kube_haproxy_up", "gauge", "1 when an HAProxy generation is serving.", [("", haproxyUp ? 1 : 0)])
        family("kube_haproxy_haproxy_restarts_total", "counter", "Restarts of HAProxy after it died unexpectedly.", [("", Double(state.haproxyRestarts))])
        family("kube_haproxy_draining_generations", "gauge", "Old HAProxy generations still finishing their connections.", [("", Double(draining))])
        family("kube_haproxy_watcher_restarts_total", "counter", "Restarts of the watcher.", [("", Double(watcherRestarts))])
        family("kube_haproxy_etcd_events_total", "counter", "Watch events received from the source (etcd or the Kubernetes API).", [("", Double(state.etcdEvents))])
        family("kube_haproxy_resyncs_total", "counter", "Full re-reads of the cluster state, by reason: index_cleared (etcd error 401), reconnect, expired (Kubernetes API 410 Gone).",
               labelled(state.resyncs, "reason"))
        family("kube_haproxy_render_errors_total", "counter", "Template renders that failed.", [("", Double(state.renderErrors))])
        state.renderDuration.write(name: "kube_haproxy_render_duration_seconds", help: "Time to render the template.", to: &text)
        let stale = state.watcherReported ? max(0, state.staleSince.map { Metrics.wallClock() - $0 } ?? 0) : 0
        family("kube_haproxy_state_stale_seconds", "gauge",
               "Seconds since the watcher's state was last known to be current (0 while it is; grows while etcd or the Kubernetes API is unreachable).",
               [("", stale)])
        family("kube_haproxy_skipped_objects", "gauge",
               "Services and certificates the watcher leaves out of the config because they break it.",
               [("{kind=\"certificate\"}", Double(state.skippedCertificates.count)), ("{kind=\"service\"}", Double(state.skippedServices.count))])
        return text
    }

    /// What the watcher leaves out, as its last report said.
    func skipped() -> (services: [String], certificates: [String]) {
        state.withLock { ($0.skippedServices, $0.skippedCertificates) }
    }

    static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// A sample value as Prometheus writes it: integers without a fraction.
    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return String(value)
    }
}
