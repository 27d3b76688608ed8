// The supervisor end to end: the real binary, real HAProxy, real sockets, real traffic on loopback.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

final class SupervisorTests: SupervisorTestCase {
    // MARK: Applying configs

    func testApplyRoutesTrafficToTheConfiguredBackend() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let supervisor = try startSupervisor()
        let port = try freePort()
        let reply = try supervisor.apply(httpConfig(port: port, servers: [(backend.address, backend.port)]))
        ok(reply)
        XCTAssertEqual(reply["changed"], .bool(true))
        XCTAssertEqual(reply["reloaded"], .bool(true))
        XCTAssertEqual(reply["generation"], .integer(1))
        let response = httpGet("http://127.0.0.1:\(port)/")
        XCTAssertEqual(response.code, "200")
        XCTAssertEqual(response.body, "alpha\n")
        XCTAssertEqual(try String(contentsOfFile: supervisor.runDirectory + "/haproxy.cfg", encoding: .utf8),
                       httpConfig(port: port, servers: [(backend.address, backend.port)]))
    }

    func testNewConfigMovesTrafficToTheNewBackend() throws {
        let alpha = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let beta = try HTTPBackend(address: "127.0.0.3", name: "beta", directory: directory)
        // Each apply changes only servers: reloads only with runtime updates off.
        let supervisor = try startSupervisor(["KUBE_HAPROXY_RUNTIME_UPDATES": "off"])
        let port = try freePort()
        ok(try supervisor.apply(httpConfig(port: port, servers: [(alpha.address, alpha.port)])))
        XCTAssertEqual(httpGet("http://127.0.0.1:\(port)/").body, "alpha\n")
        let reply = try supervisor.apply(httpConfig(port: port, servers: [(beta.address, beta.port)]))
        ok(reply)
        XCTAssertEqual(reply["generation"], .integer(2))
        XCTAssertEqual(httpGet("http://127.0.0.1:\(port)/").body, "beta\n")
    }

    func testInvalidConfigIsRejectedWithHAProxysMessageAndTheOldOneKeepsServing() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let supervisor = try startSupervisor()
        let port = try freePort()
        let good = httpConfig(port: port, servers: [(backend.address, backend.port)])
        ok(try supervisor.apply(good))
        let pidBefore = try supervisor.status()["haproxy_pid"]

        let reply = try supervisor.apply(good + "backend broken\n    frobnicate yes\n")
        XCTAssertEqual(reply["ok"], .bool(false))
        XCTAssertEqual(reply["reason"], .string("rejected"))
        let error = reply["error"]?.stringValue ?? ""
        XCTAssertTrue(error.contains("unknown keyword 'frobnicate'"), "error should carry HAProxy's message: \(error)")
        XCTAssertTrue(error.contains("[ALERT]"), error)

        let status = try supervisor.status()
        XCTAssertEqual(status["haproxy_pid"], pidBefore)
        XCTAssertEqual(status["generation"], .integer(1))
        XCTAssertEqual(status["last_error"]?.stringValue, error)
        XCTAssertEqual(httpGet("http://127.0.0.1:\(port)/").body, "alpha\n")
        XCTAssertEqual(try String(contentsOfFile: supervisor.runDirectory + "/haproxy.cfg", encoding: .utf8), good)
        XCTAssertFalse(FileManager.default.fileExists(atPath: supervisor.runDirectory + "/haproxy.cfg.candidate"))
    }

    func testUnchangedApplyDoesNotReload() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let supervisor = try startSupervisor()
        let port = try freePort()
        let config = httpConfig(port: port, servers: [(backend.address, backend.port)])
        ok(try supervisor.apply(config))
        let pid = try supervisor.status()["haproxy_pid"]
        let again = try supervisor.apply(config)
        ok(again)
        XCTAssertEqual(again["changed"], .bool(false))
        XCTAssertEqual(again["reloaded"], .bool(false))
        XCTAssertEqual(again["generation"], .integer(1))
        XCTAssertEqual(try supervisor.status()["haproxy_pid"], pid)
        XCTAssertEqual(try supervisor.status()["reloads"], .integer(1))
    }

    func testConfigWithoutFinalNewlineIsCompletedAndAccepted() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let supervisor = try startSupervisor()
        let port = try freePort()
        var config = httpConfig(port: port, servers: [(backend.address, backend.port)])
        config.removeLast()
        ok(try supervisor.apply(config))
        XCTAssertEqual(httpGet("http://127.0.0.1:\(port)/").body, "alpha\n")
    }

    // MARK: Certificates

    func testCertificatesAreWrittenPrivatelyServedAndRemovedWhenUnused() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "secure", directory: directory)
        let (pem, certificate) = try makeSelfSignedCertificate(commonName: "localhost", directory: directory)
        let supervisor = try startSupervisor()
        let port = try freePort()
        let tlsPort = try freePort()
        let plain = httpConfig(port: port, servers: [(backend.address, backend.port)])
        let tls = plain + """
            frontend secure
                bind 127.0.0.1:\(tlsPort) ssl crt \(supervisor.sslDirectory)/site.pem
                default_backend pods

            """
        ok(try supervisor.apply(tls, certificates: ["site": pem]))
        let file = supervisor.sslDirectory + "/site.pem"
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), pem)
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let response = httpGet("https://localhost:\(tlsPort)/", extra: ["--cacert", certificate, "--resolve", "localhost:\(tlsPort):127.0.0.1"])
        XCTAssertEqual(response.code, "200")
        XCTAssertEqual(response.body, "secure\n")

        ok(try supervisor.apply(plain))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file), "an unused certificate file must be removed")
    }

    func testRejectedApplyPutsBackTheLiveCertificates() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "secure", directory: directory)
        let (pem, _) = try makeSelfSignedCertificate(commonName: "localhost", directory: directory)
        let supervisor = try startSupervisor()
        let port = try freePort()
        let tlsPort = try freePort()
        let tls = httpConfig(port: port, servers: [(backend.address, backend.port)]) + """
            frontend secure
                bind 127.0.0.1:\(tlsPort) ssl crt \(supervisor.sslDirectory)/site.pem
                default_backend pods

            """
        ok(try supervisor.apply(tls, certificates: ["site": pem]))
        let reply = try supervisor.apply(tls, certificates: ["site": "not a certificate\n", "extra": pem])
        XCTAssertEqual(reply["ok"], .bool(false), reply.serialized)
        XCTAssertEqual(try String(contentsOfFile: supervisor.sslDirectory + "/site.pem", encoding: .utf8), pem)
        XCTAssertFalse(FileManager.default.fileExists(atPath: supervisor.sslDirectory + "/extra.pem"))
    }

    func testCertificateNamesThatAreNotFileNamesAreRefused() throws {
        let supervisor = try startSupervisor()
        let reply = try supervisor.apply("global\n", certificates: ["../escape": "x"])
        XCTAssertEqual(reply["ok"], .bool(false))
        XCTAssertTrue(reply["error"]?.stringValue?.contains("not a valid file name") == true, reply.serialized)
        XCTAssertFalse(FileManager.default.fileExists(atPath: supervisor.runDirectory + "/escape.pem"))
    }

    // MARK: Reloads without loss

    func testFiftyReloadsUnderKeepAliveLoadFailNoRequest() throws {
        try assertNoFailedRequestsDuringReloads(headers: [])
    }

    func testFiftyReloadsUnderConnectionCloseLoadFailNoRequest() throws {
        try assertNoFailedRequestsDuringReloads(headers: ["Connection: close"])
    }

    private func assertNoFailedRequestsDuringReloads(headers: [String]) throws {
        let alpha = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let beta = try HTTPBackend(address: "127.0.0.3", name: "beta", directory: directory)
        // Each apply changes only servers: reloads only with runtime updates off.
        let supervisor = try startSupervisor(["KUBE_HAPROXY_RUNTIME_UPDATES": "off"])
        let port = try freePort()
        let configs = [httpConfig(port: port, servers: [(alpha.address, alpha.port)]),
                       httpConfig(port: port, servers: [(beta.address, beta.port)])]
        ok(try supervisor.apply(configs[0]))
        var arguments = ["-t2", "-c20", "-d8s", "--timeout", "5s"]
        for header in headers { arguments += ["-H", header] }
        let load = try BackgroundProcess("/usr/bin/wrk", arguments + ["http://127.0.0.1:\(port)/"], logPath: directory + "/wrk.log")
        Thread.sleep(forTimeInterval: 0.5)
        for index in 1...50 {
            let reply = try supervisor.apply(configs[index % 2])
            ok(reply)
            XCTAssertEqual(reply["reloaded"], .bool(true))
            Thread.sleep(forTimeInterval: 0.08)
        }
        XCTAssertNotNil(load.waitForExit(timeout: 30), "wrk did not finish")
        let report = WrkReport(load.log)
        XCTAssertGreaterThan(report.requests, 500, report.text)
        XCTAssertEqual(report.failures, [], report.text)
        XCTAssertEqual(try supervisor.status()["generation"], .integer(51))
    }

    func testAnIdleOldGenerationThatLeavesAtOnceIsNotTakenForACrash() throws {
        // Each apply changes only servers: reloads only with runtime updates off.
        let supervisor = try startSupervisor(["KUBE_HAPROXY_RUNTIME_UPDATES": "off"])
        let port = try freePort()
        // No traffic: each old generation exits as soon as the new one signals it, often before
        // the supervisor has made the new one current.
        for index in 0..<20 {
            ok(try supervisor.apply(httpConfig(port: port, servers: [("127.0.0.2", 9000 + index)])))
        }
        XCTAssertTrue(waitUntil(timeout: 5) { (try? supervisor.status()["draining_pids"]) == .array([]) })
        XCTAssertFalse(supervisor.log.contains("exited unexpectedly"), supervisor.log)
        XCTAssertEqual(supervisor.log.components(separatedBy: "old haproxy generation finished").count - 1, 19, supervisor.log)
        // A real crash right after is still restarted at once (no crash count built up).
        guard let pid = try supervisor.status()["haproxy_pid"]?.intValue else { return XCTFail("no pid") }
        kill(pid_t(pid), SIGKILL)
        XCTAssertTrue(supervisor.log.contains("restart_in_seconds=0.100") || waitUntil(timeout: 2) { supervisor.log.contains("restart_in_seconds=0.100") },
                      supervisor.log)
    }

    func testSIGHUPStartsANewGeneration() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let supervisor = try startSupervisor()
        let port = try freePort()
        ok(try supervisor.apply(httpConfig(port: port, servers: [(backend.address, backend.port)])))
        supervisor.process.signal(SIGHUP)
        XCTAssertTrue(waitUntil(timeout: 5) { (try? supervisor.status()["generation"]) == .integer(2) }, supervisor.log)
        XCTAssertEqual(httpGet("http://127.0.0.1:\(port)/").body, "alpha\n")
    }

    func testReloadRequestStartsANewGenerationAndFailsWithoutAConfig() throws {
        let supervisor = try startSupervisor()
        let early = try supervisor.request(ControlRequest.reload.json)
        XCTAssertEqual(early["ok"], .bool(false))
        XCTAssertEqual(early["error"], .string("no configuration has been applied yet"))
        let port = try freePort()
        ok(try supervisor.apply(httpConfig(port: port, servers: [("127.0.0.2", 9)])))
        let reply = try supervisor.request(ControlRequest.reload.json)
        ok(reply)
        XCTAssertEqual(reply["generation"], .integer(2))
    }

    // MARK: Crashes

    func testKilledHAProxyIsBackWithinOneSecond() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let supervisor = try startSupervisor()
        let port = try freePort()
        ok(try supervisor.apply(httpConfig(port: port, servers: [(backend.address, backend.port)])))
        guard let pid = try supervisor.status()["haproxy_pid"]?.intValue else { return XCTFail("no haproxy pid") }
        kill(pid_t(pid), SIGKILL)
        let killedAt = Date()
        // The kill is asynchronous: "back" means a new pid serves, not the dying one's socket.
        let back = waitUntil(timeout: 1.0, interval: 0.01) {
            guard let current = try? supervisor.status()["haproxy_pid"]?.intValue, current != pid else { return false }
            return isListening("127.0.0.1", port)
        }
        let elapsed = Date().timeIntervalSince(killedAt)
        XCTAssertTrue(back, "HAProxy not serving again \(elapsed) s after kill -9:\n\(supervisor.log)")
        let response = httpGet("http://127.0.0.1:\(port)/")
        XCTAssertEqual(response.body, "alpha\n", "\(response) \(supervisor.log)")
        let status = try supervisor.status()
        XCTAssertNotEqual(status["haproxy_pid"]?.intValue, pid)
        XCTAssertTrue(supervisor.log.contains("haproxy exited unexpectedly"), supervisor.log)
    }

    func testKilledWatcherIsRestartedWithoutAReload() throws {
        let script = directory + "/watcher.sh"
        try "#!/bin/sh\nexec sleep 1000\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        let supervisor = try startSupervisor(watcher: script)
        let port = try freePort()
        ok(try supervisor.apply(httpConfig(port: port, servers: [(backend.address, backend.port)])))
        let before = try supervisor.status()
        guard let watcherPid = before["watcher_pid"]?.intValue else { return XCTFail("no watcher pid: \(before.serialized)") }
        kill(pid_t(watcherPid), SIGKILL)
        let restarted = waitUntil(timeout: 5) {
            guard let status = try? supervisor.status(), let pid = status["watcher_pid"]?.intValue else { return false }
            return pid != watcherPid
        }
        XCTAssertTrue(restarted, supervisor.log)
        let after = try supervisor.status()
        XCTAssertEqual(after["watcher_restarts"], .integer(1))
        XCTAssertEqual(after["haproxy_pid"], before["haproxy_pid"])
        XCTAssertEqual(after["generation"], before["generation"])
        XCTAssertEqual(after["reloads"], .integer(1))
        XCTAssertEqual(httpGet("http://127.0.0.1:\(port)/").body, "alpha\n")
    }

    func testWatcherGetsTheRunDirectorySslDirectoryAndSocketPath() throws {
        let script = directory + "/watcher.sh"
        let output = directory + "/watcher-env"
        try "#!/bin/sh\nenv > \(output).tmp && mv \(output).tmp \(output)\nexec sleep 1000\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let supervisor = try startSupervisor(["SOME_SETTING": "kept"], watcher: script)
        XCTAssertTrue(waitUntil(timeout: 5) { FileManager.default.fileExists(atPath: output) })
        let environment = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertTrue(environment.contains("KUBE_HAPROXY_RUN_DIR=\(supervisor.runDirectory)"), environment.joined(separator: "\n"))
        XCTAssertTrue(environment.contains("KUBE_HAPROXY_SSL_DIR=\(supervisor.sslDirectory)"))
        XCTAssertTrue(environment.contains("KUBE_HAPROXY_CONTROL_SOCKET=\(supervisor.controlSocket)"))
        XCTAssertTrue(environment.contains("SOME_SETTING=kept"))
    }

    func testOrphanedGrandchildIsReaped() throws {
        let script = directory + "/watcher.sh"
        // The subshell exits at once, orphaning its `sleep`, which the supervisor inherits.
        try "#!/bin/sh\n(sleep 0.7 &)\nexec sleep 1000\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let supervisor = try startSupervisor(watcher: script)
        var watcherPid: pid_t = 0
        XCTAssertTrue(waitUntil(timeout: 5) {
            watcherPid = pid_t((try? supervisor.status()["watcher_pid"]?.intValue) ?? 0)
            return watcherPid > 0
        })
        let adopted = waitUntil(timeout: 5) {
            supervisor.children().contains { $0.command == "sleep" && $0.state != "Z" && $0.pid != watcherPid }
        }
        XCTAssertTrue(adopted, "the orphan was not re-parented to the supervisor: \(supervisor.children())")
        Thread.sleep(forTimeInterval: 1.2)
        let zombies = supervisor.children().filter { $0.state == "Z" }
        XCTAssertTrue(zombies.isEmpty, "zombies left: \(zombies)")
        XCTAssertEqual(supervisor.children().filter { $0.command == "sleep" }.count, 1, "\(supervisor.children())")
    }

    func testAsPID1ItReapsOrphansAndStopsOnSIGTERM() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
            throw XCTSkip("needs root and unshare for a PID namespace")
        }
        let script = directory + "/watcher.sh"
        try "#!/bin/sh\n(sleep 0.5 &)\nexec sleep 1000\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        var environment = ProcessInfo.processInfo.environment
        environment["KUBE_HAPROXY_RUN_DIR"] = directory + "/run"
        environment["KUBE_HAPROXY_WATCHER"] = script
        let container = try BackgroundProcess("/usr/bin/unshare", ["--pid", "--fork", "--mount-proc", TestPaths.supervisor],
                                              environment: environment, logPath: directory + "/pid1.log")
        let socket = directory + "/run/control.sock"
        XCTAssertTrue(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: socket) }, container.log)
        var client = try ControlClient(path: socket)
        guard case .status(let status) = try client.send(.status) else { return XCTFail("status did not answer a status") }
        XCTAssertEqual(status.pid, 1)
        let port = try freePort()
        ok(try client.send(.apply(config: httpConfig(port: port, servers: [(backend.address, backend.port)]), certificates: [:])).json)
        XCTAssertEqual(httpGet("http://127.0.0.1:\(port)/").body, "alpha\n")

        // The supervisor is unshare's only child; its own children are listed in /proc.
        func children(of pid: pid_t) -> [pid_t] {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { pid_t($0) }
        }
        func state(_ pid: pid_t) -> String {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            guard let close = stat.lastIndex(of: ")") else { return "?" }
            return String(stat[stat.index(close, offsetBy: 2)])
        }
        guard let supervisorPid = children(of: container.pid).first else { return XCTFail("no supervisor under unshare") }
        Thread.sleep(forTimeInterval: 1.2)
        let zombies = children(of: supervisorPid).filter { state($0) == "Z" }
        XCTAssertTrue(zombies.isEmpty, "zombies under PID 1: \(zombies)")

        kill(supervisorPid, SIGTERM)
        XCTAssertEqual(container.waitForExit(timeout: 15), 0, container.log)
        XCTAssertTrue(container.log.contains("stopped"), container.log)
        XCTAssertFalse(isListening("127.0.0.1", port))
    }

    // MARK: Stopping

    func testSIGTERMDrainsAnInFlightSlowRequestAndExitsZero() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "slow", directory: directory)
        let supervisor = try startSupervisor(["KUBE_HAPROXY_GRACE": "20s"])
        let port = try freePort()
        ok(try supervisor.apply(httpConfig(port: port, servers: [(backend.address, backend.port)])))
        let request = try slowRequest(port: port, seconds: 2, logPath: directory + "/curl.log")
        Thread.sleep(forTimeInterval: 0.5)
        let signalledAt = Date()
        supervisor.process.signal(SIGTERM)
        XCTAssertEqual(request.waitForExit(timeout: 15), 0, request.log)
        XCTAssertEqual(request.log, "slow\n 200")
        let code = supervisor.process.waitForExit(timeout: 15)
        XCTAssertEqual(code, 0, supervisor.log)
        XCTAssertLessThan(Date().timeIntervalSince(signalledAt), 10, "the supervisor should exit once connections are done, not wait out the grace period")
        XCTAssertFalse(isListening("127.0.0.1", port))
    }

    func testGracePeriodBoundsTheStop() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "slow", directory: directory)
        let supervisor = try startSupervisor(["KUBE_HAPROXY_GRACE": "1s"])
        let port = try freePort()
        ok(try supervisor.apply(httpConfig(port: port, servers: [(backend.address, backend.port)])))
        let request = try slowRequest(port: port, seconds: 10, logPath: directory + "/curl.log")
        Thread.sleep(forTimeInterval: 0.5)
        supervisor.process.signal(SIGTERM)
        XCTAssertEqual(supervisor.process.waitForExit(timeout: 6), 0, supervisor.log)
        XCTAssertTrue(supervisor.log.contains("grace period over"), supervisor.log)
        XCTAssertNotEqual(request.waitForExit(timeout: 5), 0)
    }

    func testOldGenerationStillDrainingAfterTheDrainTimeoutIsStopped() throws {
        let backend = try HTTPBackend(address: "127.0.0.2", name: "slow", directory: directory)
        let supervisor = try startSupervisor(["KUBE_HAPROXY_DRAIN_TIMEOUT": "1s"])
        let port = try freePort()
        let config = httpConfig(port: port, servers: [(backend.address, backend.port)])
        ok(try supervisor.apply(config))
        guard let oldPid = try supervisor.status()["haproxy_pid"]?.intValue else { return XCTFail("no pid") }
        let request = try slowRequest(port: port, seconds: 10, logPath: directory + "/curl.log")
        Thread.sleep(forTimeInterval: 0.5)
        ok(try supervisor.request(ControlRequest.reload.json))
        XCTAssertEqual(try supervisor.status()["draining_pids"], .array([.integer(oldPid)]))
        let stopped = waitUntil(timeout: 4) { (try? supervisor.status()["draining_pids"]) == .array([]) }
        XCTAssertTrue(stopped, supervisor.log)
        XCTAssertTrue(supervisor.log.contains("still draining after the drain timeout"), supervisor.log)
        XCTAssertNotEqual(request.waitForExit(timeout: 5), 0)
    }

    // MARK: The control socket

    func testMalformedUnknownAndOversizedRequestsGetErrorsAndTheSupervisorCarriesOn() throws {
        let supervisor = try startSupervisor(["KUBE_HAPROXY_MAX_REQUEST_BYTES": "2048"])
        let fd = try UnixSocket.connect(supervisor.controlSocket).release()
        defer { close(fd) }
        var reader = LineReader(fd: fd, maximumLength: 1 << 20)
        func exchange(_ line: String) throws -> JSONValue {
            try UnixSocket.send(fd, line + "\n")
            guard case .line(let bytes) = try reader.next() else { throw SystemError("reply", errno: EPROTO) }
            return try JSONReader.parse(bytes, as: JSONValueBuilder.self)
        }
        let malformed = try exchange("this is not json")
        XCTAssertEqual(malformed["ok"], .bool(false))
        XCTAssertTrue(malformed["error"]?.stringValue?.hasPrefix("request is not valid JSON") == true, malformed.serialized)
        XCTAssertEqual(malformed["reason"], .string("invalid_request"))
        let unknown = try exchange(#"{"op":"explode"}"#)
        XCTAssertEqual(unknown["error"], .string(#"unknown op "explode" (expected apply, status, reload, report or history)"#))
        let noConfig = try exchange(#"{"op":"apply"}"#)
        XCTAssertEqual(noConfig["error"], .string(#"apply needs "config", a string"#))
        let oversized = try exchange(#"{"op":"apply","config":""# + String(repeating: "x", count: 5000) + #""}"#)
        XCTAssertEqual(oversized["error"], .string("request longer than 2048 bytes (KUBE_HAPROXY_MAX_REQUEST_BYTES)"))
        let status = try exchange(#"{"op":"status"}"#)
        XCTAssertEqual(status["ok"], .bool(true))
        XCTAssertTrue(supervisor.process.isRunning)
    }

    func testARefusedHugeRequestAndManyReloadsLeavePID1AsSmallAsItWas() throws {
        // A request beyond the default cap (64 MiB): the supervisor reads it, refuses it and gives
        // the memory back, and stays so through reloads. Debug builds idle larger than release
        // ones (about 11 MB against 7 MB), so the bound is on the growth.
        let supervisor = try startSupervisor()
        let backend = try HTTPBackend(address: "127.0.0.2", name: "alpha", directory: directory)
        ok(try supervisor.apply(httpConfig(port: try freePort(), servers: [(backend.address, backend.port)])))
        let before = try XCTUnwrap(residentKilobytes(supervisor.process.pid))
        var client = try ControlClient(path: supervisor.controlSocket)
        let huge = #"{"op":"apply","config":""# + String(repeating: "x", count: 70 << 20) + #""}"#
        let refusal = try JSONValue.parse(String(decoding: try client.exchange(huge), as: UTF8.self))
        XCTAssertEqual(refusal["reason"], .string("invalid_request"), refusal.serialized)
        // The connection that sent it stays usable, and holds no copy of it.
        guard case .status = try client.send(.status) else { return XCTFail("no status after the refusal") }
        for _ in 0..<29 { ok(try supervisor.request(ControlRequest.reload.json)) }
        let after = try XCTUnwrap(residentKilobytes(supervisor.process.pid))
        XCTAssertLessThan(after - before, 2048, "PID 1 grew from \(before) kB to \(after) kB")
    }

    func testControlSocketIsPrivateAndRefusesAPeerOfAnotherUser() throws {
        let supervisor = try startSupervisor()
        let attributes = try FileManager.default.attributesOfItem(atPath: supervisor.controlSocket)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        guard getuid() == 0 else { throw XCTSkip("needs root to connect as another user") }
        // Open the file permissions so only the peer-credential check stands in the way.
        chmod(directory, 0o755)
        chmod(supervisor.runDirectory, 0o755)
        chmod(supervisor.controlSocket, 0o666)
        let client = """
            import os, socket, sys
            os.setgid(65534); os.setuid(65534)
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
            try:
                s.sendall(b'{"op":"status"}\\n')
            except BrokenPipeError:
                pass  # refused peers get their reply at once and the connection closed
            print(s.makefile().readline().strip())
            """
        let result = try runCommand("python3", ["-c", client, supervisor.controlSocket])
        XCTAssertEqual(result.status, 0, result.stderr)
        let reply = try JSONValue.parse(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(reply["ok"], .bool(false))
        XCTAssertTrue(reply["error"]?.stringValue?.hasPrefix("permission denied: peer uid 65534") == true, reply.serialized)
        XCTAssertNil(reply["pid"])
    }

    // MARK: The command line

    func testStatusAndReloadCommandsReportThroughExitCodes() throws {
        let supervisor = try startSupervisor()
        var environment = ProcessInfo.processInfo.environment
        environment["KUBE_HAPROXY_RUN_DIR"] = supervisor.runDirectory
        let status = try runCommand(TestPaths.supervisor, ["status"], environment: environment)
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertEqual(try JSONValue.parse(status.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["ok"], .bool(true))
        let reload = try runCommand(TestPaths.supervisor, ["reload"], environment: environment)
        XCTAssertEqual(reload.status, 1, "reload without a config is an error")
        XCTAssertTrue(reload.stdout.contains("no configuration has been applied yet"), reload.stdout)

        let configFile = directory + "/haproxy.cfg"
        try httpConfig(port: try freePort(), servers: [("127.0.0.2", 9)]).write(toFile: configFile, atomically: true, encoding: .utf8)
        let apply = try runCommand(TestPaths.supervisor, ["apply", configFile], environment: environment)
        XCTAssertEqual(apply.status, 0, apply.stdout + apply.stderr)

        environment["KUBE_HAPROXY_RUN_DIR"] = directory + "/nowhere"
        let unreachable = try runCommand(TestPaths.supervisor, ["status"], environment: environment)
        XCTAssertEqual(unreachable.status, 3)
        XCTAssertTrue(unreachable.stderr.contains("cannot reach the supervisor"), unreachable.stderr)
    }

    func testMalformedSettingIsNamedAndExitsTwo() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["KUBE_HAPROXY_RUN_DIR"] = directory + "/run"
        environment["KUBE_HAPROXY_GRACE"] = "soon"
        let result = try runCommand(TestPaths.supervisor, [], environment: environment, timeout: 10)
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("KUBE_HAPROXY_GRACE=\"soon\" is not valid"), result.stderr)
        let help = try runCommand(TestPaths.supervisor, ["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("KUBE_HAPROXY_DRAIN_TIMEOUT"))
        let unknown = try runCommand(TestPaths.supervisor, ["frobnicate"])
        XCTAssertEqual(unknown.status, 2)
    }
}
