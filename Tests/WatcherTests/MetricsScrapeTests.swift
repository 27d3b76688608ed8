// The metrics endpoint scraped while the whole pipeline works: the watcher's figures reach the
// supervisor and move with the cluster, etcd's absence shows as staleness, its return as a resync.
import Foundation
import IntegrationSupport
import Shared
import XCTest

final class MetricsScrapeTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory("kube-haproxy-watcher-test")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testMetricsMoveWithTheClusterAndShowEtcdsAbsence() throws {
        let pipeline = try Pipeline(directory: directory)
        try pipeline.backend("pod-a", address: "127.0.0.2")
        try pipeline.writeWebService()
        try pipeline.putWebPod("pod-a", address: "127.0.0.2")
        let metricsPort = try freePort()
        let metrics = "http://127.0.0.1:\(metricsPort)/metrics"
        try pipeline.start(environment: ["KUBE_HAPROXY_METRICS_ADDR": "127.0.0.1:\(metricsPort)"])
        XCTAssertTrue(waitUntil(timeout: 10) { httpGet("http://127.0.0.1:\(metricsPort)/readyz").code == "200" }, pipeline.log)
        // The watcher reports every 2 s: wait for its first report (a render observed).
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? scrapeMetrics(metrics))?["kube_haproxy_render_duration_seconds_count"] ?? 0) >= 1 },
                      pipeline.log)
        let before = try scrapeMetrics(metrics)
        XCTAssertEqual(before["kube_haproxy_applies_total{result=\"changed\"}"], 1)
        XCTAssertEqual(before["kube_haproxy_state_stale_seconds"], 0)
        XCTAssertEqual(before["kube_haproxy_config_generation"], 1)

        // A new ready pod: one more event, render and apply.
        try pipeline.backend("pod-b", address: "127.0.0.3")
        try pipeline.putWebPod("pod-b", address: "127.0.0.3")
        XCTAssertTrue(waitUntil(timeout: 10) {
            let now = (try? scrapeMetrics(metrics)) ?? [:]
            return (now["kube_haproxy_etcd_events_total"] ?? 0) >= (before["kube_haproxy_etcd_events_total"] ?? 0) + 1
                && now["kube_haproxy_applies_total{result=\"changed\"}"] == 2
                && (now["kube_haproxy_render_duration_seconds_count"] ?? 0) >= 2
        }, "\(String(describing: try? scrapeMetrics(metrics)))\n\(pipeline.log)")
        // A new pod is a new server line: applied through HAProxy's runtime API, same generation.
        let afterPod = try scrapeMetrics(metrics)
        XCTAssertEqual(afterPod["kube_haproxy_config_generation"], 1)
        XCTAssertEqual(afterPod["kube_haproxy_runtime_updates_total{result=\"success\"}"], 1)

        // etcd goes away: the state turns stale; it comes back: a reconnect resync, fresh again.
        pipeline.etcd.stop()
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? scrapeMetrics(metrics))?["kube_haproxy_state_stale_seconds"] ?? 0) > 0 }, pipeline.log)
        try pipeline.etcd.start()
        XCTAssertTrue(waitUntil(timeout: 20) {
            let now = (try? scrapeMetrics(metrics)) ?? [:]
            return now["kube_haproxy_resyncs_total{reason=\"reconnect\"}"] == 1 && now["kube_haproxy_state_stale_seconds"] == 0
        }, "\(String(describing: try? scrapeMetrics(metrics)))\n\(pipeline.log)")
        XCTAssertEqual(try scrapeMetrics(metrics)["kube_haproxy_render_errors_total"], 0)
    }
}
