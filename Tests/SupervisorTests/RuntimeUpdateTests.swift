// Server changes through HAProxy's runtime API: the real supervisor, real HAProxy, real backends
// and traffic; each result compared with a fresh HAProxy started from the file the supervisor wrote.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

final class RuntimeUpdateTests: SupervisorTestCase {
    /// A config with a frontend on 127.0.0.1:port and the backend `pods`. `http-reuse never`: a
    /// removed server is deleted as soon as its last request ends, not after HAProxy purges idle
    /// server connections (tens of seconds), so tests compare states without waiting.
    /// `noreuseport`: no other HAProxy on the machine (another test run) can share the port.
    private func podsConfig(port: Int, servers: [String], defaults: [String] = ["balance roundrobin"], backend: [String] = [],
                            frontend: [String] = [], extra: String = "") -> String {
        var lines = ["global", "    maxconn 2000", "    noreuseport", "defaults", "    mode http", "    timeout connect 5s", "    timeout client 30s",
                     "    timeout server 30s", "    option idle-close-on-response", "    http-reuse never"]
        lines += defaults.map { "    " + $0 }
        lines += ["frontend web", "    bind 127.0.0.1:\(port)", "    default_backend pods"] + frontend.map { "    " + $0 }
        lines += ["backend pods"] + backend.map { "    " + $0 } + servers.map { "    " + $0 }
        return lines.joined(separator: "\n") + "\n" + extra
    }

    private func server(_ name: String, _ backend: HTTPBackend, _ settings: String = "") -> String {
        "server \(name) \(backend.address):\(backend.port)" + (settings.isEmpty ? "" : " " + settings)
    }

    private func backends(_ names: [String]) throws -> [HTTPBackend] {
        try names.enumerated().map { index, name in try HTTPBackend(address: "127.0.0.\(index + 2)", name: name, directory: directory) }
    }

    /// The bodies of `count` requests through HAProxy, as a set.
    private func answers(_ port: Int, count: Int = 8) -> Set<String> {
        Set((0..<count).map { _ in httpGet("http://127.0.0.1:\(port)/").body })
    }

    private func assertRuntime(_ reply: JSONValue, generation: Int = 1, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(reply.serialized, #"{"ok":true,"changed":true,"reloaded":false,"runtime":true,"generation":\#(generation)}"#,
                       file: file, line: line)
    }

    private func assertReload(_ reply: JSONValue, generation: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(reply.serialized, #"{"ok":true,"changed":true,"reloaded":true,"runtime":false,"generation":\#(generation)}"#,
                       file: file, line: line)
    }

    /// `show servers state pods` of the supervisor's HAProxy equals that of a fresh HAProxy
    /// started from the haproxy.cfg the supervisor wrote: names, addresses, ports, weights and
    /// maintenance (server ids and initial weights differ by nature and are left out).
    private func assertServersMatchAFreshHAProxy(_ supervisor: SupervisorProcess, file: StaticString = #filePath, line: UInt = #line) throws {
        guard getuid() == 0 else { throw XCTSkip("comparing with a fresh HAProxy needs root (a network namespace of its own)") }
        let live = try servers(at: supervisor.runDirectory + "/admin.sock")
        let socket = directory + "/fresh.sock"
        try "global\n    stats socket \(socket) mode 600 level admin\n".write(toFile: directory + "/fresh.cfg", atomically: true, encoding: .utf8)
        // In a network namespace of its own: the frontend port is the supervisor's.
        let command = "ip link set lo up && exec /usr/sbin/haproxy -db -f \(supervisor.runDirectory)/haproxy.cfg -f \(directory)/fresh.cfg"
        let fresh = try BackgroundProcess("/usr/bin/unshare", ["--net", "--", "/bin/sh", "-c", command], logPath: directory + "/fresh.log")
        defer { fresh.stop() }
        var expected: [String] = []
        let started = waitUntil(timeout: 10) {
            guard let rows = try? servers(at: socket) else { return false }
            expected = rows
            return true
        }
        XCTAssertTrue(started, "the fresh haproxy did not start: \(fresh.log)", file: file, line: line)
        XCTAssertFalse(live.isEmpty, file: file, line: line)
        XCTAssertEqual(live, expected, file: file, line: line)
    }

    /// The rows of `show servers state pods` of the HAProxy behind an admin socket.
    private func servers(at socket: String) throws -> [String] {
        serverRows(try haproxyAdmin(socket, "show servers state pods"))
    }

    /// Rows of `show servers state` as "name address:port weight=W ready|maint checks|-", sorted by name.
    private func serverRows(_ text: String) -> [String] {
        let lines = text.split(separator: "\n")
        guard lines.count > 1 else { return [] }
        let header = lines[1].split(separator: " ").dropFirst().map(String.init)
        func column(_ name: String) -> Int { header.firstIndex(of: name) ?? 0 }
        return lines.dropFirst(2).map { line -> String in
            let fields = line.split(separator: " ").map(String.init)
            let admin = Int(fields[column("srv_admin_state")]) ?? -1
            let checks = Int(fields[column("srv_check_state")]) ?? -1
            return "\(fields[column("srv_name")]) \(fields[column("srv_addr")]):\(fields[column("srv_port")]) "
                + "weight=\(fields[column("srv_uweight")]) \(admin & 0x05 != 0 ? "maint" : "ready") \(checks & 0x04 != 0 ? "checks" : "-")"
        }.sorted()
    }

    // MARK: Endpoint changes without a reload

    func testPodAddedIsServedWithoutAReload() throws {
        let pods = try backends(["alpha", "beta"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        XCTAssertEqual(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0], "check inter 1s")]))["ok"], .bool(true))
        let pid = try supervisor.status()["haproxy_pid"]
        assertRuntime(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0], "check inter 1s"),
                                                                             server("pod-b", pods[1], "check inter 1s weight 2")])))
        XCTAssertEqual(answers(port), ["alpha\n", "beta\n"])
        let status = try supervisor.status()
        XCTAssertEqual(status["haproxy_pid"], pid)
        XCTAssertEqual(status["reloads"], .integer(1))
        XCTAssertEqual(status["runtime_updates"], .integer(1))
        // The history says which way each config went live.
        guard case .array(let history)? = try supervisor.request(ControlRequest.history.json)["history"] else { return XCTFail("no history") }
        XCTAssertEqual(history.map { $0["path"] }, [.string("runtime"), .string("reload")])
        try assertServersMatchAFreshHAProxy(supervisor)
    }

    func testNewServerGetsTheDefaultServerSettingsTheFileGivesIt() throws {
        // add server inherits nothing from default-server: the supervisor puts those settings
        // into the command (here the weight and the health checks of both levels).
        let pods = try backends(["alpha", "beta", "gamma"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        let defaults = ["balance leastconn", "default-server check inter 1s weight 4"]
        let backend = ["default-server fall 2"]
        XCTAssertEqual(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0])], defaults: defaults, backend: backend))["ok"],
                       .bool(true))
        assertRuntime(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-b", pods[1]),
                                                                            server("pod-c", pods[2], "weight 2 no-check")],
                                                      defaults: defaults, backend: backend)))
        XCTAssertEqual(answers(port, count: 12), ["alpha\n", "beta\n", "gamma\n"])
        let rows = try servers(at: supervisor.runDirectory + "/admin.sock")
        XCTAssertEqual(rows.map { $0.split(separator: " ").dropFirst(2).joined(separator: " ") },
                       ["weight=4 ready checks", "weight=4 ready checks", "weight=2 ready -"])
        try assertServersMatchAFreshHAProxy(supervisor)
    }

    func testPodRemovedIsServedWithoutAReload() throws {
        let pods = try backends(["alpha", "beta"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        XCTAssertEqual(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-b", pods[1])]))["ok"], .bool(true))
        XCTAssertEqual(answers(port), ["alpha\n", "beta\n"])
        let pid = try supervisor.status()["haproxy_pid"]
        assertRuntime(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0])])))
        XCTAssertEqual(answers(port), ["alpha\n"])
        XCTAssertEqual(try supervisor.status()["haproxy_pid"], pid)
        XCTAssertTrue(waitUntil(timeout: 5) { (try? self.servers(at: supervisor.runDirectory + "/admin.sock"))?.count == 1 },
                      "the removed server was not deleted")
        try assertServersMatchAFreshHAProxy(supervisor)
    }

    func testPodWithANewAddressPortAndWeightIsServedWithoutAReload() throws {
        let pods = try backends(["alpha", "beta", "gamma"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        XCTAssertEqual(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-b", pods[1])]))["ok"], .bool(true))
        let pid = try supervisor.status()["haproxy_pid"]
        // gamma listens on another address and another port than alpha.
        XCTAssertNotEqual(pods[2].port, pods[0].port)
        assertRuntime(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[2], "weight 3"), server("pod-b", pods[1])])))
        XCTAssertEqual(answers(port), ["gamma\n", "beta\n"])
        XCTAssertEqual(try supervisor.status()["haproxy_pid"], pid)
        try assertServersMatchAFreshHAProxy(supervisor)
        // The same address, another port.
        let delta = try HTTPBackend(address: pods[2].address, name: "delta", directory: directory)
        assertRuntime(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", delta, "weight 3"), server("pod-b", pods[1])])))
        XCTAssertEqual(answers(port), ["delta\n", "beta\n"])
        XCTAssertEqual(try supervisor.status()["haproxy_pid"], pid)
        try assertServersMatchAFreshHAProxy(supervisor)
    }

    func testPodsOfTheSeedsPositionalNamesShiftWithoutAReload() throws {
        // The seed's templates name servers by position (SERVICE_1_1, SERVICE_2_1, …), with
        // `check`: a pod sorted first moves every address down by one and adds the last server.
        let pods = try backends(["alpha", "beta", "gamma"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        let before = podsConfig(port: port, servers: [server("WEB_1_1", pods[1], "check"), server("WEB_2_1", pods[2], "check")],
                                defaults: ["balance leastconn"])
        let after = podsConfig(port: port, servers: [server("WEB_1_1", pods[0], "check"), server("WEB_2_1", pods[1], "check"),
                                                     server("WEB_3_1", pods[2], "check")], defaults: ["balance leastconn"])
        XCTAssertEqual(try supervisor.apply(before)["ok"], .bool(true))
        assertRuntime(try supervisor.apply(after))
        XCTAssertEqual(answers(port, count: 12), ["alpha\n", "beta\n", "gamma\n"])
        try assertServersMatchAFreshHAProxy(supervisor)
        assertRuntime(try supervisor.apply(before))
        XCTAssertEqual(answers(port, count: 12), ["beta\n", "gamma\n"])
        try assertServersMatchAFreshHAProxy(supervisor)
    }

    func testRemovedServerWithALongRequestInFlightFinishesIt() throws {
        let pods = try backends(["alpha", "slow"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        XCTAssertEqual(try supervisor.apply(podsConfig(port: port, servers: [server("pod-slow", pods[1])]))["ok"], .bool(true))
        let request = try slowRequest(port: port, seconds: 3, logPath: directory + "/curl.log")
        let admin = supervisor.runDirectory + "/admin.sock"
        XCTAssertTrue(waitUntil(timeout: 5) { (try? haproxyAdmin(admin, "show sess"))?.contains("srv=pod-slow") == true })
        assertRuntime(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0])])))
        // In maintenance while its request runs: no new traffic, and still there.
        XCTAssertEqual(answers(port), ["alpha\n"])
        let during = try servers(at: admin)
        XCTAssertEqual(during.count, 2, "\(during)")
        XCTAssertTrue(during.contains { $0.hasPrefix("pod-slow ") && $0.contains(" maint") }, "\(during)")
        XCTAssertEqual(request.waitForExit(timeout: 15), 0, request.log)
        XCTAssertEqual(request.log, "slow\n 200")
        // Deleted once the request is over: the supervisor tries again every second.
        XCTAssertTrue(waitUntil(timeout: 10) { (try? self.servers(at: admin))?.count == 1 },
                      supervisor.log)
        try assertServersMatchAFreshHAProxy(supervisor)
        XCTAssertEqual(try supervisor.status()["reloads"], .integer(1))
    }

    // MARK: What needs a reload

    func testEachChangeTheRuntimeAPICannotMakeReloadsWithTheRightResult() throws {
        let pods = try backends(["alpha", "beta"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        let tlsPort = try freePort()
        let first = try makeSelfSignedCertificate(commonName: "localhost", directory: directory).pem
        let second = try makeSelfSignedCertificate(commonName: "localhost", directory: directory).pem
        let tls = "frontend secure\n    bind 127.0.0.1:\(tlsPort) ssl crt \(supervisor.sslDirectory)/site.pem\n    default_backend pods\n"
        let one = [server("pod-a", pods[0])]
        let two = [server("pod-a", pods[0]), server("pod-b", pods[1])]
        // Each case: the config before, the config after, the certificates before and after.
        let cases: [(name: String, before: String, after: String, certificates: (before: [String: String], after: [String: String]))] = [
            ("a default-server keyword add server refuses",
             podsConfig(port: port, servers: one, backend: ["default-server resolve-prefer ipv4"]),
             podsConfig(port: port, servers: two, backend: ["default-server resolve-prefer ipv4"]), ([:], [:])),
            ("a static balance algorithm (from defaults)",
             podsConfig(port: port, servers: one, defaults: ["balance static-rr"]),
             podsConfig(port: port, servers: two, defaults: ["balance static-rr"]), ([:], [:])),
            ("a cookie on the new server",
             podsConfig(port: port, servers: [server("pod-a", pods[0], "cookie a")], backend: ["cookie SRV insert indirect nocache"]),
             podsConfig(port: port, servers: [server("pod-a", pods[0], "cookie a"), server("pod-b", pods[1], "cookie b")],
                        backend: ["cookie SRV insert indirect nocache"]), ([:], [:])),
            ("another line changed beside the servers",
             podsConfig(port: port, servers: one), podsConfig(port: port, servers: two, frontend: ["http-response set-header X-Variant 2"]), ([:], [:])),
            ("a certificate changed beside the servers",
             podsConfig(port: port, servers: one, extra: tls), podsConfig(port: port, servers: two, extra: tls), (["site": first], ["site": second])),
        ]
        var generation = 0
        for change in cases {
            let before = try supervisor.apply(change.before, certificates: change.certificates.before)
            XCTAssertEqual(before["ok"], .bool(true), "\(change.name): \(before.serialized)")
            generation = try supervisor.status()["generation"]?.intValue ?? 0
            XCTAssertEqual(answers(port), ["alpha\n"], change.name)
            let after = try supervisor.apply(change.after, certificates: change.certificates.after)
            XCTAssertEqual(after.serialized, #"{"ok":true,"changed":true,"reloaded":true,"runtime":false,"generation":\#(generation + 1)}"#,
                           change.name)
            XCTAssertEqual(answers(port), ["alpha\n", "beta\n"], change.name)
        }
        XCTAssertEqual(try supervisor.status()["runtime_updates"], .integer(0))
        XCTAssertTrue(supervisor.log.contains("'resolve-prefer' is not among the keywords add server accepts"), supervisor.log)
        XCTAssertTrue(supervisor.log.contains("not balance static-rr"), supervisor.log)
        XCTAssertTrue(supervisor.log.contains("'cookie' is not among the keywords add server accepts"), supervisor.log)
        XCTAssertTrue(supervisor.log.contains("certificates changed"), supervisor.log)
    }

    func testRuntimeCommandFailingMidwayFallsBackToAReload() throws {
        let pods = try backends(["alpha", "beta", "gamma", "delta"])
        let metricsPort = try freePort()
        let supervisor = try startSupervisor(["KUBE_HAPROXY_METRICS_ADDR": "127.0.0.1:\(metricsPort)"])
        let port = try freePort()
        XCTAssertEqual(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-b", pods[1])]))["ok"], .bool(true))
        // pod-b goes behind the supervisor's back: the runtime update adds pod-c, then fails to
        // set pod-b's address.
        let admin = supervisor.runDirectory + "/admin.sock"
        _ = try haproxyAdmin(admin, "set server pods/pod-b state maint")
        XCTAssertEqual(try haproxyAdmin(admin, "del server pods/pod-b").trimmingCharacters(in: .whitespacesAndNewlines), "Server deleted.")
        let reply = try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-b", pods[2]), server("pod-c", pods[3])]))
        assertReload(reply, generation: 2)
        XCTAssertEqual(answers(port, count: 12), ["alpha\n", "gamma\n", "delta\n"])
        XCTAssertTrue(supervisor.log.contains("runtime update failed; reloading with the new config"), supervisor.log)
        XCTAssertTrue(supervisor.log.contains("No such server."), supervisor.log)
        let status = try supervisor.status()
        XCTAssertEqual(status["runtime_updates"], .integer(0))
        XCTAssertEqual(status["runtime_fallbacks"], .integer(1))
        let samples = try scrapeMetrics("http://127.0.0.1:\(metricsPort)/metrics")
        XCTAssertEqual(samples["kube_haproxy_runtime_updates_total{result=\"fallback\"}"], 1)
        XCTAssertEqual(samples["kube_haproxy_runtime_updates_total{result=\"success\"}"], 0)
        try assertServersMatchAFreshHAProxy(supervisor)

        // The next endpoint change goes through the runtime API again and is counted.
        assertRuntime(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-b", pods[2])])), generation: 2)
        XCTAssertEqual(try scrapeMetrics("http://127.0.0.1:\(metricsPort)/metrics")["kube_haproxy_runtime_updates_total{result=\"success\"}"], 1)
    }

    func testRuntimeUpdateThatFailsWithAConfigHAProxyRejectsLeavesTheLiveConfigServing() throws {
        // pod-c is added, then pod-b's `track` of a server that does not exist fails: the reload
        // with the new config is rejected too, and a generation from the live config replaces the
        // partly updated one, so nothing of the new config stays in service.
        let pods = try backends(["alpha", "beta", "gamma"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        let live = podsConfig(port: port, servers: [server("pod-a", pods[0])])
        XCTAssertEqual(try supervisor.apply(live)["ok"], .bool(true))
        let reply = try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-c", pods[2]),
                                                                          server("pod-b", pods[1], "track pods/nowhere")]))
        XCTAssertEqual(reply["ok"], .bool(false), reply.serialized)
        XCTAssertEqual(reply["reason"], .string("rejected"))
        XCTAssertTrue(supervisor.log.contains("runtime update failed; reloading with the new config"), supervisor.log)
        XCTAssertTrue(supervisor.log.contains("undo a failed runtime update"), supervisor.log)
        XCTAssertEqual(answers(port), ["alpha\n"])
        XCTAssertEqual(try String(contentsOfFile: supervisor.runDirectory + "/haproxy.cfg", encoding: .utf8), live)
        XCTAssertEqual(try supervisor.status()["generation"], .integer(2))
        try assertServersMatchAFreshHAProxy(supervisor)
    }

    func testStateThatDiffersFromTheConfigAfterTheCommandsFallsBackToAReload() throws {
        let pods = try backends(["alpha", "beta", "gamma"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        XCTAssertEqual(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-b", pods[1])]))["ok"], .bool(true))
        // A weight set behind the supervisor's back: every command succeeds, the check does not.
        _ = try haproxyAdmin(supervisor.runDirectory + "/admin.sock", "set server pods/pod-a weight 5")
        let reply = try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-b", pods[1]), server("pod-c", pods[2])]))
        assertReload(reply, generation: 2)
        XCTAssertTrue(supervisor.log.contains("pods/pod-a has weight 5, not 1"), supervisor.log)
        XCTAssertEqual(answers(port, count: 12), ["alpha\n", "beta\n", "gamma\n"])
        try assertServersMatchAFreshHAProxy(supervisor)
    }

    func testRuntimeUpdatesOffReloadsForEveryChange() throws {
        let pods = try backends(["alpha", "beta"])
        let supervisor = try startSupervisor(["KUBE_HAPROXY_RUNTIME_UPDATES": "off"])
        let port = try freePort()
        XCTAssertEqual(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0])]))["ok"], .bool(true))
        assertReload(try supervisor.apply(podsConfig(port: port, servers: [server("pod-a", pods[0]), server("pod-b", pods[1])])), generation: 2)
        XCTAssertEqual(answers(port), ["alpha\n", "beta\n"])
    }

    func testMalformedRuntimeUpdatesSettingIsNamedAndExitsTwo() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["KUBE_HAPROXY_RUN_DIR"] = directory + "/run"
        environment["KUBE_HAPROXY_WATCHER"] = "none"
        environment["KUBE_HAPROXY_RUNTIME_UPDATES"] = "sometimes"
        let result = try runCommand(TestPaths.supervisor, [], environment: environment, timeout: 10)
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("KUBE_HAPROXY_RUNTIME_UPDATES=\"sometimes\" is not valid: expected on or off"), result.stderr)
    }

    // MARK: Under load

    func testTwoHundredEndpointChangesUnderKeepAliveLoadFailNoRequestAndNeverReload() throws {
        let pods = try backends(["alpha", "beta", "gamma", "delta", "epsilon"])
        let supervisor = try startSupervisor()
        let port = try freePort()
        // Positional names over a rotating window of 2 to 5 pods: every change adds, removes or
        // readdresses servers. HAProxy's default connection reuse: removed servers wait in
        // maintenance for their idle connections to go, and come back while they wait.
        func endpoints(_ index: Int) -> String {
            let count = 2 + index % 4
            let servers = (0..<count).map { position in server("pod\(position)", pods[(index + position) % pods.count]) }
            return podsConfig(port: port, servers: servers, defaults: ["balance roundrobin", "http-reuse safe"])
        }
        XCTAssertEqual(try supervisor.apply(endpoints(0))["ok"], .bool(true))
        let pid = try supervisor.status()["haproxy_pid"]
        let load = try BackgroundProcess("/usr/bin/wrk", ["-t2", "-c20", "-d10s", "--timeout", "5s", "http://127.0.0.1:\(port)/"],
                                         logPath: directory + "/wrk.log")
        Thread.sleep(forTimeInterval: 0.5)
        var haproxyCounts: Set<Int> = []
        for index in 1...200 {
            let reply = try supervisor.apply(endpoints(index))
            XCTAssertEqual(reply["runtime"], .bool(true), "change \(index): \(reply.serialized)")
            if index % 10 == 0 { haproxyCounts.insert(supervisor.children().filter { $0.command == "haproxy" }.count) }
            Thread.sleep(forTimeInterval: 0.03)
        }
        XCTAssertNotNil(load.waitForExit(timeout: 30), "wrk did not finish")
        let report = WrkReport(load.log)
        XCTAssertGreaterThan(report.requests, 500, report.text)
        XCTAssertEqual(report.failures, [], report.text)
        XCTAssertEqual(haproxyCounts, [1], "HAProxy processes seen during the changes")
        let status = try supervisor.status()
        XCTAssertEqual(status["haproxy_pid"], pid)
        XCTAssertEqual(status["reloads"], .integer(1))
        XCTAssertEqual(status["runtime_updates"], .integer(200))
        XCTAssertEqual(status["runtime_fallbacks"], .integer(0))
        XCTAssertEqual(answers(port, count: 12), Set((0..<(2 + 200 % 4)).map { pods[(200 + $0) % pods.count].name + "\n" }))
    }
}
