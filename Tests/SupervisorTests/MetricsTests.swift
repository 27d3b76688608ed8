// The metrics and health endpoint, scraped over real HTTP while the supervisor works.
import Foundation
import IntegrationSupport
import Shared
import XCTest

final class MetricsTests: SupervisorTestCase {
    func testMetricsMoveWithAppliesReloadsReportsAndRestarts() throws {
        let script = directory + "/watcher.sh"
        try "#!/bin/sh\nexec sleep 1000\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let metricsPort = try freePort()
        let supervisor = try startSupervisor(["KUBE_HAPROXY_METRICS_ADDR": "127.0.0.1:\(metricsPort)"],
                                               watcher: script)
        let base = "http://127.0.0.1:\(metricsPort)"
        XCTAssertTrue(waitUntil(timeout: 5) { isListening("127.0.0.1", metricsPort) }, supervisor.log)

        XCTAssertEqual(httpGet(base + "/readyz").code, "503", "not ready before a config is applied")
        XCTAssertEqual(httpGet(base + "/healthz").code, "200", "alive, with no config to run yet")
        XCTAssertEqual(httpGet(base + "/nothing").code, "404")
        var samples = try scrape(base)
        XCTAssertEqual(samples["kube_haproxy_config_generation"], 0)
        XCTAssertEqual(samples["kube_haproxy_up"], 0)

        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let port = try freePort()
        let config = httpConfig(port: port, servers: [(backend.address, backend.port)])
        XCTAssertEqual(try supervisor.apply(config)["ok"], .bool(true))
        XCTAssertEqual(try supervisor.apply(config)["changed"], .bool(false))
        XCTAssertEqual(try supervisor.apply(config + "backend broken\n    frobnicate yes\n")["ok"], .bool(false))
        XCTAssertEqual(httpGet(base + "/readyz").code, "200")
        samples = try scrape(base)
        XCTAssertEqual(samples["kube_haproxy_applies_total{result=\"changed\"}"], 1)
        XCTAssertEqual(samples["kube_haproxy_applies_total{result=\"unchanged\"}"], 1)
        XCTAssertEqual(samples["kube_haproxy_applies_total{result=\"rejected\"}"], 1)
        XCTAssertEqual(samples["kube_haproxy_reloads_total{result=\"success\"}"], 1)
        XCTAssertEqual(samples["kube_haproxy_reloads_total{result=\"failure\"}"], 1)
        XCTAssertEqual(samples["kube_haproxy_reload_duration_seconds_count"], 1)
        XCTAssertEqual(samples["kube_haproxy_reload_duration_seconds_bucket{le=\"+Inf\"}"], 1)
        XCTAssertEqual(samples["kube_haproxy_config_generation"], 1)
        XCTAssertEqual(samples["kube_haproxy_up"], 1)
        XCTAssertGreaterThan(samples["kube_haproxy_last_apply_success_timestamp_seconds"] ?? 0, Date().timeIntervalSince1970 - 60)

        // The watcher's figures arrive as increments and add up.
        var report = WatcherReport()
        report.etcdEvents = 5
        report.indexClearedResyncs = 1
        report.renderSeconds = [0.003, 0.2]
        XCTAssertEqual(try supervisor.request(ControlRequest.report(report).json)["ok"], .bool(true))
        report.staleSince = Date().timeIntervalSince1970 - 30
        XCTAssertEqual(try supervisor.request(ControlRequest.report(report).json)["ok"], .bool(true))
        samples = try scrape(base)
        XCTAssertEqual(samples["kube_haproxy_etcd_events_total"], 10)
        XCTAssertEqual(samples["kube_haproxy_resyncs_total{reason=\"index_cleared\"}"], 2)
        XCTAssertEqual(samples["kube_haproxy_render_duration_seconds_count"], 4)
        XCTAssertEqual(samples["kube_haproxy_render_duration_seconds_bucket{le=\"0.005\"}"], 2)
        XCTAssertGreaterThanOrEqual(samples["kube_haproxy_state_stale_seconds"] ?? 0, 29)

        // A killed HAProxy counts as a restart; a killed watcher as a watcher restart, and the
        // counters the supervisor keeps stay.
        guard let haproxyPid = try supervisor.status()["haproxy_pid"]?.intValue,
              let watcherPid = try supervisor.status()["watcher_pid"]?.intValue else { return XCTFail("no pids") }
        kill(pid_t(haproxyPid), SIGKILL)
        kill(pid_t(watcherPid), SIGKILL)
        XCTAssertTrue(waitUntil(timeout: 5) {
            let now = (try? self.scrape(base)) ?? [:]
            return now["kube_haproxy_haproxy_restarts_total"] == 1 && now["kube_haproxy_watcher_restarts_total"] == 1
        }, supervisor.log)
        samples = try scrape(base)
        XCTAssertEqual(samples["kube_haproxy_etcd_events_total"], 10)
        XCTAssertEqual(samples["kube_haproxy_config_generation"], 2)
    }

    func testMalformedMetricsAddressIsNamedAndExitsTwo() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["KUBE_HAPROXY_RUN_DIR"] = directory + "/run"
        environment["KUBE_HAPROXY_WATCHER"] = "none"
        environment["KUBE_HAPROXY_METRICS_ADDR"] = "everywhere"
        let result = try runCommand(TestPaths.supervisor, [], environment: environment, timeout: 10)
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("KUBE_HAPROXY_METRICS_ADDR=\"everywhere\" is not valid"), result.stderr)
    }

    private func scrape(_ base: String) throws -> [String: Double] {
        try scrapeMetrics(base + "/metrics")
    }
}
