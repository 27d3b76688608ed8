// The watcher against etcd over HTTPS, etcd going away, falling behind etcd's event history,
// being killed under load, and bursts of changes; and its settings.
import Foundation
import IntegrationSupport
import Shared
import XCTest

final class ResilienceTests: PipelineTestCase {
    // MARK: etcd over HTTPS

    func testEtcdOverHTTPSWithAClientCertificateWorks() throws {
        let pipeline = try makePipeline(tls: EtcdServer.TLS(directory: directory))
        XCTAssertTrue(pipeline.etcd.clientURL.hasPrefix("https://"))
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.writeWebService()
        try pipeline.putWebPod("web-1", address: "127.0.0.2")
        try pipeline.start()
        XCTAssertTrue(pipeline.waitForBody("web-1"), pipeline.log)
        // The watch follows changes over HTTPS too.
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering() == ["web-1", "web-2"] }, pipeline.log)
    }

    func testEtcdOverHTTPSWithoutTheClientCertificateFailsWithAClearError() throws {
        let pipeline = try makePipeline(tls: EtcdServer.TLS(directory: directory))
        try pipeline.writeWebService()
        try pipeline.start(environment: ["ETCD2_CERT_FILE": "", "ETCD2_KEY_FILE": ""])
        XCTAssertTrue(pipeline.waitForLog("error", "cannot read the cluster state from etcd", pipeline.etcd.clientURL), pipeline.log)
        let line = pipeline.logLines("cannot read the cluster state from etcd").first ?? ""
        XCTAssertTrue(line.lowercased().contains("certificate"), "the error should say a certificate is missing: \(line)")
        XCTAssertEqual(try pipeline.supervisor?.status()["generation"], .integer(0))
    }

    // MARK: etcd away

    func testEtcdStoppedForTenSecondsAndRestartedRecoversWhileHAProxyKeepsServing() throws {
        let pipeline = try startServingWeb()
        pipeline.etcd.stop()
        XCTAssertTrue(pipeline.waitForLog("lost the etcd watch"), pipeline.log)
        XCTAssertEqual(pipeline.answersOtherThanWeb1(during: 10), [], "HAProxy must keep serving the last config while etcd is down")
        XCTAssertGreaterThan(pipeline.logLines("cannot read the cluster state from etcd", "retry_in_seconds").count, 0, pipeline.log)

        try pipeline.etcd.start()
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        // Back within the backoff (1 s doubling: the retry after 10 s down comes by about 18 s).
        XCTAssertTrue(waitUntil(timeout: 25, interval: 0.1) { pipeline.answering() == ["web-1", "web-2"] }, pipeline.log)
        XCTAssertEqual(pipeline.liveConfig, try pipeline.freshRender())
    }

    func testWatcherPausedPastEtcdsEventHistoryConvergesToTheRightConfig() throws {
        let pipeline = try startServingWeb()
        let supervisor = try XCTUnwrap(pipeline.supervisor)
        for (name, address) in [("web-2", "127.0.0.3"), ("web-3", "127.0.0.4")] {
            try pipeline.backend(name, address: address)
        }
        let watcher = try XCTUnwrap(try supervisor.status()["watcher_pid"]?.intValue)
        kill(pid_t(watcher), SIGSTOP)
        // 1500 events, more than etcd's 1000-event history; the last state: web-1 gone,
        // web-2 ready, web-3 not ready, and a pod of a namespace no service names.
        let started = Date()
        for round in 0..<500 {
            try pipeline.putWebPod("web-2", address: "127.0.0.3", ready: round % 2 == 1)
            try pipeline.putWebPod("web-3", address: "127.0.0.4", ready: round % 2 == 0)
            try pipeline.store.putPod("other-\(round % 7)", namespace: "elsewhere", labels: [("app", "web")], podIP: "127.0.0.9")
        }
        try pipeline.store.deletePod("web-1", namespace: "web")
        let writing = Date().timeIntervalSince(started)
        kill(pid_t(watcher), SIGCONT)

        XCTAssertTrue(pipeline.waitForLog("fell more than etcd's event history behind"), "writes took \(writing) s\n\(pipeline.log)")
        XCTAssertTrue(pipeline.waitForConfig { _ in pipeline.servers(of: "web") == ["web-2"] }, pipeline.liveConfig + pipeline.log)
        XCTAssertEqual(pipeline.answering(), ["web-2"])
        XCTAssertEqual(pipeline.liveConfig, try pipeline.freshRender(), "exactly what a fresh start renders")
        XCTAssertEqual(try supervisor.status()["watcher_pid"]?.intValue, watcher, "recovered in place, not by a restart")
    }

    // MARK: The watcher killed

    func testKilledWatcherUnderLoadLosesNoRequestAndCausesNoReload() throws {
        try assertKilledWatcherUnderLoadLosesNoRequestAndCausesNoReload(try startServingWeb())
    }

    // MARK: The supervisor away

    func testWatcherKeepsTryingAnUnreachableSupervisorAndSendsTheCurrentStateOnceItListens() throws {
        let pipeline = try makePipeline()
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.writeWebService()
        try pipeline.putWebPod("web-1", address: "127.0.0.2")
        // The watcher alone, its supervisor not started yet.
        let runDirectory = directory + "/run"
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in ["ETCD2BASE": pipeline.etcd.clientURL, "KUBE_HAPROXY_CONTROL_SOCKET": runDirectory + "/control.sock",
                             "KUBE_HAPROXY_SSL_DIR": runDirectory + "/ssl", "HTTP_PORT": String(pipeline.httpPort),
                             "HTTPS_PORT": String(pipeline.httpsPort), "KUBE_HAPROXY_RELOAD_INTERVAL": "100ms"] {
            environment[key] = value
        }
        let watcher = try BackgroundProcess(TestPaths.watcher, [], environment: environment, logPath: directory + "/watcher.log")
        XCTAssertTrue(waitUntil(timeout: 10) { watcher.log.contains("cannot reach the supervisor; will send again") }, watcher.log)
        // A change meanwhile: what is sent at last is the state of that moment, whole.
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        Thread.sleep(forTimeInterval: 0.3)

        let supervisor = try startSupervisor()
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering() == ["web-1", "web-2"] }, watcher.log + supervisor.log)
        XCTAssertTrue(watcher.log.contains("config applied"), watcher.log)
        XCTAssertEqual(try supervisor.status()["reloads"], .integer(1), "one apply with everything, not one per change")
        supervisor.stop()
        watcher.stop()
    }

    // MARK: Coalescing

    func testBurstOfPodUpdatesCostsAHandfulOfAppliesAndEndsRight() throws {
        let pipeline = try startServingWeb(reloadInterval: "1s")
        let names = (2...5).map { "web-\($0)" }
        for (index, name) in names.enumerated() { try pipeline.backend(name, address: "127.0.0.\(index + 3)") }
        Thread.sleep(forTimeInterval: 1.1) // past the reload interval of the first apply
        let changes = try XCTUnwrap(pipeline.configChanges)
        let applied = pipeline.logLines("config applied").count

        // 200 updates: each pod flips readiness 50 times and ends ready, except web-5, not ready.
        for round in 0..<50 {
            for (index, name) in names.enumerated() {
                let ready = name == "web-5" ? round % 2 == 1 && round < 49 : round % 2 == 1
                try pipeline.putWebPod(name, address: "127.0.0.\(index + 3)", ready: ready)
            }
        }
        XCTAssertTrue(pipeline.waitForConfig { _ in pipeline.servers(of: "web") == ["web-1", "web-2", "web-3", "web-4"] },
                      pipeline.liveConfig)
        Thread.sleep(forTimeInterval: 1.2) // one more interval: nothing further may come
        // Pod changes go live through the runtime API or a reload: either way a handful.
        let newChanges = try XCTUnwrap(pipeline.configChanges) - changes
        let newApplies = pipeline.logLines("config applied").count - applied
        XCTAssertGreaterThanOrEqual(newChanges, 1)
        XCTAssertLessThanOrEqual(newChanges, 5, "200 updates in about a second should cost a handful of applies\n\(pipeline.log)")
        XCTAssertEqual(newApplies, newChanges)
        XCTAssertEqual(pipeline.servers(of: "web"), ["web-1", "web-2", "web-3", "web-4"])
        XCTAssertEqual(pipeline.answering(count: 12), ["web-1", "web-2", "web-3", "web-4"])
    }

    func testChangeToAPodNoServiceSelectsCostsNoRender() throws {
        // With a long interval a render would hold back the next change: an unselected pod's
        // change costs nothing, so a selected change right after it goes out at once.
        let pipeline = try startServingWeb(reloadInterval: "3s")
        try pipeline.backend("web-2", address: "127.0.0.3")
        let changes = try XCTUnwrap(pipeline.configChanges)
        let logged = pipeline.logLines("config").count
        Thread.sleep(forTimeInterval: 3.1) // past the reload interval of the first apply

        for round in 0..<5 {
            try pipeline.putWebPod("batch-\(round)", address: "127.0.0.9", labels: [("app", "batch")])
            try pipeline.store.putPod("other-\(round)", namespace: "elsewhere", labels: [("app", "web")], podIP: "127.0.0.9")
        }
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(pipeline.configChanges, changes)
        XCTAssertEqual(pipeline.logLines("config").count, logged, "no apply may be logged:\n\(pipeline.log)")

        let changedAt = Date()
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(pipeline.waitForConfig(timeout: 5) { $0.contains("server web-2 ") }, pipeline.log)
        let latency = Date().timeIntervalSince(changedAt)
        XCTAssertLessThan(latency, 1.5, "a render of the unselected changes would have delayed this one to the interval's end")
        XCTAssertEqual(pipeline.configChanges, changes + 1)
    }

    // MARK: Settings

    func testMissingOrMalformedSettingsAreNamedAndExitTwo() throws {
        let cases: [(environment: [String: String], named: String)] = [
            ([:], "ETCD2BASE"),
            (["ETCD2BASE": "127.0.0.1:2379"], "ETCD2BASE=\"127.0.0.1:2379\""),
            (["ETCD2BASE": "http://127.0.0.1:2379/"], "ETCD2BASE=\"http://127.0.0.1:2379/\""),
            (["ETCD2BASE": "http://127.0.0.1:2379", "KUBE_HAPROXY_RELOAD_INTERVAL": "soon"], "KUBE_HAPROXY_RELOAD_INTERVAL=\"soon\""),
            (["ETCD2BASE": "https://127.0.0.1:2379", "ETCD2_CA_FILE": directory + "/missing-ca.crt"], "ETCD2_CA_FILE"),
            (["ETCD2BASE": "https://127.0.0.1:2379", "ETCD2_CERT_FILE": "/etc/hostname"], "ETCD2_KEY_FILE"),
            (["ETCD2BASE": "http://127.0.0.1:2379", "ETCD2_PREFIX": "registry/"], "ETCD2_PREFIX"),
        ]
        var base = ProcessInfo.processInfo.environment
        for name in ["ETCD2BASE", "ETCD2_CA_FILE", "ETCD2_CERT_FILE", "ETCD2_KEY_FILE", "ETCD2_PREFIX", "KUBE_HAPROXY_RELOAD_INTERVAL"] {
            base[name] = nil
        }
        base["KUBE_HAPROXY_CONTROL_SOCKET"] = directory + "/control.sock"
        for (settings, named) in cases {
            let result = try runCommand(TestPaths.watcher, [], environment: base.merging(settings) { $1 }, timeout: 10)
            XCTAssertEqual(result.status, 2, "\(settings): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(named), "\(settings) should name \(named): \(result.stderr)")
        }
    }
}
