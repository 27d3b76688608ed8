// The last-good bundle and the history, end to end: the real supervisor (restarted), the real
// watcher with its etcd unreachable, real HAProxy and traffic.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

final class LastGoodTests: SupervisorTestCase {
    var stateDirectory: String { directory + "/state" }

    func testARestartWithTheClusterUnreachableServesTheLastGoodBundleAtOnce() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let port = try freePort()
        let metricsPort = try freePort()
        let authority = try TestCertificateAuthority(directory: directory)
        let site = try authority.issue("site", commonName: "site.example.com", subjectAltNames: ["DNS:site.example.com"])
        let httpsPort = try freePort()
        let config = httpConfig(port: port, servers: [(backend.address, backend.port)],
                                extraFrontend: "    bind 127.0.0.1:\(httpsPort) ssl crt RUN/ssl/site.pem")
        let environment = ["KUBE_HAPROXY_STATE_DIR": stateDirectory, "KUBE_HAPROXY_METRICS_ADDR": "127.0.0.1:\(metricsPort)",
                           // The watcher's etcd: a port nothing listens on, as when the cluster is down.
                           "ETCD2BASE": "http://127.0.0.1:\(try freePort())"]
        do {
            let first = try startSupervisor(environment, watcher: TestPaths.watcher)
            let runConfig = config.replacingOccurrences(of: "RUN/", with: first.runDirectory + "/")
            ok(try first.apply(runConfig, certificates: ["site": site.keyPEM + site.certificatePEM]))
            XCTAssertEqual(httpGet("http://127.0.0.1:\(port)/").body, "alpha\n")
            XCTAssertEqual(httpGet("http://127.0.0.1:\(metricsPort)/readyz").body, "ok\n")
            first.stop()
        }
        let bundle = stateDirectory + "/last-good.json"
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: bundle)[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o600, "the bundle holds private keys")
        XCTAssertFalse(isListening("127.0.0.1", port))

        let started = monotonicSeconds()
        let second = try startSupervisor(environment, watcher: TestPaths.watcher)
        XCTAssertTrue(waitUntil(timeout: 10) { httpGet("http://127.0.0.1:\(port)/", timeout: 1).body == "alpha\n" }, second.log)
        print("last-good bundle: serving \(formatSeconds(monotonicSeconds() - started)) after the supervisor started")
        let https = httpGet("https://site.example.com:\(httpsPort)/",
                            extra: ["--cacert", authority.certificateFile, "--resolve", "site.example.com:\(httpsPort):127.0.0.1"])
        XCTAssertEqual(https.body, "alpha\n", "the bundle's certificate is written and served")
        let readiness = httpGet("http://127.0.0.1:\(metricsPort)/readyz")
        XCTAssertEqual(readiness.code, "200")
        XCTAssertTrue(readiness.body.hasPrefix("serving the last-good bundle from 20"), readiness.body)
        XCTAssertNotEqual(try second.status()["serving_bundle_since"], .null)
        XCTAssertTrue(second.log.contains("cannot read the cluster state from etcd"), "the watcher really had nothing: \(second.log)")

        // The first apply (the watcher's, once the cluster is back) replaces it as usual.
        let beta = try HTTPBackend(address: "127.0.0.3", name: "beta", directory: directory)
        ok(try second.apply(httpConfig(port: port, servers: [(beta.address, beta.port)])))
        XCTAssertEqual(httpGet("http://127.0.0.1:\(port)/").body, "beta\n")
        XCTAssertEqual(httpGet("http://127.0.0.1:\(metricsPort)/readyz").body, "ok\n")
        XCTAssertEqual(try second.status()["serving_bundle_since"], .null)
    }

    func testABundleEditedToGarbageIsIgnoredWithAClearLog() throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        try "{\"format\":1,\"config\":\"garbage".write(toFile: stateDirectory + "/last-good.json", atomically: true, encoding: .utf8)
        let metricsPort = try freePort()
        let supervisor = try startSupervisor([
            "KUBE_HAPROXY_STATE_DIR": stateDirectory, "KUBE_HAPROXY_METRICS_ADDR": "127.0.0.1:\(metricsPort)"])
        XCTAssertTrue(waitUntil(timeout: 5) { supervisor.log.contains("ignoring the last-good bundle") }, supervisor.log)
        XCTAssertTrue(supervisor.log.contains("not valid JSON"), supervisor.log)
        XCTAssertEqual(httpGet("http://127.0.0.1:\(metricsPort)/readyz").code, "503")

        // A bundle whose content does not match its hash (edited by hand) is refused the same way.
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let port = try freePort()
        ok(try supervisor.apply(httpConfig(port: port, servers: [(backend.address, backend.port)])))
        supervisor.stop()
        let saved = try String(contentsOfFile: stateDirectory + "/last-good.json", encoding: .utf8)
        XCTAssertTrue(saved.contains("backend pods"), "the apply replaced the garbage with a bundle")
        try saved.replacingOccurrences(of: "backend pods", with: "backend edited")
            .write(toFile: stateDirectory + "/last-good.json", atomically: true, encoding: .utf8)
        let again = try startSupervisor(["KUBE_HAPROXY_STATE_DIR": stateDirectory])
        XCTAssertTrue(waitUntil(timeout: 5) { again.log.contains("does not match its hash") }, again.log)
        XCTAssertFalse(isListening("127.0.0.1", port), "an edited bundle must not be served")
    }

    func testHistoryListsAppliesAndDiffMasksEveryPassword() throws {
        let supervisor = try startSupervisor()
        let alpha = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let port = try freePort()
        let statsPort = try freePort()
        func config(servers: [(String, Int)], statsPassword: String, userPassword: String) -> String {
            httpConfig(port: port, servers: servers) + """
                userlist admins
                    user ops insecure-password \(userPassword)
                    user audit password $5$rounds=5000$salt$\(userPassword)hash
                listen stats
                    bind 127.0.0.1:\(statsPort)
                    stats enable
                    stats uri /
                    stats auth stats:\(statsPassword)

                """
        }
        ok(try supervisor.apply(config(servers: [(alpha.address, alpha.port)], statsPassword: "FirstStatsSecret", userPassword: "FirstUserSecret")))
        ok(try supervisor.apply(config(servers: [(alpha.address, alpha.port), ("127.0.0.9", 8080)],
                                       statsPassword: "SecondStatsSecret", userPassword: "FirstUserSecret")))
        let environment = supervisor.environment
        let history = try runCommand(TestPaths.supervisor, ["history"], environment: environment)
        XCTAssertEqual(history.status, 0, history.stderr)
        let rows = history.stdout.split(separator: "\n")
        XCTAssertEqual(rows.count, 3, history.stdout)
        XCTAssertTrue(rows[1].hasPrefix("0   ") && rows[1].hasSuffix("(live)") && rows[1].contains(" reload "), history.stdout)
        XCTAssertTrue(rows[2].hasPrefix("1   "), history.stdout)

        let diff = try runCommand(TestPaths.supervisor, ["diff", "1"], environment: environment)
        XCTAssertEqual(diff.status, 0, diff.stderr)
        for secret in ["FirstStatsSecret", "SecondStatsSecret", "FirstUserSecret"] {
            XCTAssertFalse(diff.stdout.contains(secret), "the diff shows a password: \(diff.stdout)")
        }
        XCTAssertTrue(diff.stdout.contains("+    server pod1 127.0.0.9:8080\n"), diff.stdout)
        // The stats password changed: the line differs, its value is not shown.
        XCTAssertTrue(diff.stdout.contains("-    stats auth stats:<secret 3>\n"), diff.stdout)
        XCTAssertTrue(diff.stdout.contains("+    stats auth stats:<secret 4>\n"), diff.stdout)
        XCTAssertTrue(diff.stdout.hasPrefix("--- 1 20"), diff.stdout)

        let files = try FileManager.default.contentsOfDirectory(atPath: supervisor.runDirectory + "/history").filter { $0.hasSuffix(".cfg") }
        XCTAssertEqual(files.count, 2)
        for file in files {
            let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: supervisor.runDirectory + "/history/" + file)[.posixPermissions] as? Int)
            XCTAssertEqual(mode, 0o600)
        }
        let missing = try runCommand(TestPaths.supervisor, ["diff", "7"], environment: environment)
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.stderr, "kube-haproxy diff: no entry 7: the history holds 2\n")
    }

    func testTheHistoryKeepsTheLastTwenty() throws {
        let supervisor = try startSupervisor()
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let port = try freePort()
        for weight in 1...23 {
            ok(try supervisor.apply(httpConfig(port: port, servers: [(backend.address, backend.port)]) + "    # change \(weight)\n"))
        }
        let history = try runCommand(TestPaths.supervisor, ["history"], environment: supervisor.environment)
        XCTAssertEqual(history.stdout.split(separator: "\n").count, 21, history.stdout)
        XCTAssertTrue(waitUntil(timeout: 5) {
            ((try? FileManager.default.contentsOfDirectory(atPath: supervisor.runDirectory + "/history")) ?? [])
                .filter { $0.hasSuffix(".cfg") }.count == 20
        })
        let diff = try runCommand(TestPaths.supervisor, ["diff", "19"], environment: supervisor.environment)
        XCTAssertEqual(diff.stdout.split(separator: "\n").filter { $0.hasPrefix("-    # change") }, ["-    # change 4"], diff.stdout)
    }
}
