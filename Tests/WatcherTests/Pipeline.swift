// The whole pipeline for one test: a real etcd holding the load balancer's objects the way
// Kubernetes writes them, real HTTP backends standing in for pods on loopback addresses, and the
// real supervisor running the real watcher and real HAProxy.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

final class Pipeline {
    let directory: String
    let etcd: EtcdServer
    let store: KubernetesStore
    let httpPort: Int
    let httpsPort: Int
    /// The port every pod of the tests' services listens on (each pod on its own address).
    let podPort: Int
    private var backends: [String: HTTPBackend] = [:]
    private(set) var supervisor: SupervisorProcess?

    static let podAddresses = (2...9).map { "127.0.0.\($0)" }
    static var routingTemplate: String {
        (try? String(contentsOfFile: TestPaths.packageRoot + "/Tests/WatcherTests/Fixtures/routing.cfg.j2", encoding: .utf8)) ?? ""
    }

    init(directory: String, tls: EtcdServer.TLS? = nil) throws {
        self.directory = directory
        etcd = try EtcdServer(directory: directory, tls: tls)
        store = try KubernetesStore(etcd: etcd)
        httpPort = try freePort()
        httpsPort = try freePort()
        podPort = try freePort(addresses: Pipeline.podAddresses)
    }

    /// A real backend answering with `name` on `address`:podPort (the pod's IP and port).
    @discardableResult
    func backend(_ name: String, address: String) throws -> HTTPBackend {
        let backend = try HTTPBackend(address: address, name: name, directory: directory, port: podPort)
        backends[name] = backend
        return backend
    }

    /// The tests' usual cluster: service `web` (namespace web, app=web, host web.example) and the
    /// routing template.
    func writeWebService(extraServices: [(String, JSONValue)] = []) throws {
        try store.putServices([("web", webService())] + extraServices)
        try store.putTemplate(Pipeline.routingTemplate)
    }

    func webService(selector: [(String, String)] = [("app", "web")]) -> JSONValue {
        serviceObject(namespace: "web", selector: selector, hostnames: ["web.example"], ports: [podPort])
    }

    func putWebPod(_ name: String, address: String, ready: Bool = true, labels: [(String, String)] = [("app", "web")],
                   terminating: Bool = false) throws {
        try store.putPod(name, namespace: "web", labels: labels, podIP: address, containersReady: [ready], terminating: terminating)
    }

    /// Starts the supervisor with the watcher; the template gets HTTP_PORT and HTTPS_PORT.
    @discardableResult
    func start(reloadInterval: String = "100ms", environment: [String: String] = [:]) throws -> SupervisorProcess {
        var variables = ["HTTP_PORT": String(httpPort), "HTTPS_PORT": String(httpsPort), "KUBE_HAPROXY_RELOAD_INTERVAL": reloadInterval,
                         "STATISTICS_PASSWORD": "test-statistics-password"]
        for (key, value) in environment { variables[key] = value }
        let started = try SupervisorProcess(directory: directory, watching: etcd, environment: variables)
        supervisor = started
        return started
    }

    var log: String { supervisor?.log ?? "" }
    /// The config HAProxy serves. A new generation serves (and answers requests) a moment before
    /// the supervisor renames its candidate file into place: wait for that moment to pass.
    var liveConfig: String {
        guard let supervisor else { return "" }
        waitUntil(timeout: 5, interval: 0.005) { !FileManager.default.fileExists(atPath: supervisor.runDirectory + "/haproxy.cfg.candidate") }
        return supervisor.liveConfig ?? ""
    }
    var reloads: Int? { supervisor?.reloads }
    /// Changed configs made live, by reload or through the runtime API.
    var configChanges: Int? { supervisor?.configChanges }

    /// What a fresh watcher would send now: `kube-haproxy-watcher render` (a dry run) against
    /// etcd, in the environment the supervisor gives the watcher.
    func freshRender() throws -> String {
        guard let supervisor else { return "" }
        var environment = supervisor.environment
        environment["KUBE_HAPROXY_SSL_DIR"] = supervisor.sslDirectory
        environment["KUBE_HAPROXY_CONTROL_SOCKET"] = supervisor.controlSocket
        let result = try runCommand(TestPaths.watcher, ["render"], environment: environment, timeout: 20)
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.stdout.hasSuffix("\n") || result.stdout.isEmpty ? result.stdout : result.stdout + "\n"
    }

    /// A request through HAProxy with the given Host header.
    func get(_ host: String = "web.example", path: String = "/") -> (code: String, body: String) {
        httpGet("http://127.0.0.1:\(httpPort)\(path)", headers: ["Host: \(host)"], timeout: 5)
    }

    /// Waits until HAProxy answers `host` with `body`.
    func waitForBody(_ body: String, host: String = "web.example", timeout: Double = 10) -> Bool {
        waitUntil(timeout: timeout, interval: 0.05) { get(host).body == body + "\n" }
    }

    /// Waits until the live config satisfies the condition.
    func waitForConfig(timeout: Double = 10, _ condition: (String) -> Bool) -> Bool {
        waitUntil(timeout: timeout, interval: 0.02) { condition(liveConfig) }
    }

    /// The pod names that answered `count` requests for `host`.
    func answering(_ host: String = "web.example", count: Int = 8) -> Set<String> {
        Set((0..<count).map { _ in get(host).body.trimmingCharacters(in: .whitespacesAndNewlines) })
    }

    /// The server lines of a backend in the live config: the pod names it routes to.
    func servers(of backend: String) -> [String] {
        var inBackend = false
        var names: [String] = []
        for line in liveConfig.split(separator: "\n") {
            if line.hasPrefix("backend ") { inBackend = line == "backend \(backend)"; continue }
            if !line.hasPrefix(" ") { inBackend = false; continue }
            let words = line.split(separator: " ")
            if inBackend, words.first == "server", words.count > 1 { names.append(String(words[1])) }
        }
        return names
    }

    /// Log lines of the watcher (and supervisor) containing every one of the fragments.
    func logLines(_ fragments: String...) -> [String] {
        log.split(separator: "\n").map(String.init).filter { line in fragments.allSatisfy { line.contains($0) } }
    }

    func waitForLog(_ fragments: String..., timeout: Double = 10) -> Bool {
        waitUntil(timeout: timeout, interval: 0.05) {
            log.split(separator: "\n").contains { line in fragments.allSatisfy { line.contains($0) } }
        }
    }

    func stop() {
        supervisor?.stop()
        for backend in backends.values { backend.stop() }
        etcd.stop()
    }
}

/// Common set-up and tear-down of the watcher tests.
class PipelineTestCase: XCTestCase {
    var directory = ""
    var pipelines: [Pipeline] = []

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory("kube-haproxy-watcher-test")
    }

    override func tearDown() {
        // The whole story of a failed test (or of every test, with WATCHER_TESTS_LOG=1).
        if (testRun?.totalFailureCount ?? 0) > 0 || ProcessInfo.processInfo.environment["WATCHER_TESTS_LOG"] == "1" {
            for pipeline in pipelines { print("--- log of \(name)\n\(pipeline.log)") }
        }
        for pipeline in pipelines { pipeline.stop() }
        pipelines = []
        try? FileManager.default.removeItem(atPath: directory)
    }

    func makePipeline(tls: EtcdServer.TLS? = nil) throws -> Pipeline {
        let pipeline = try Pipeline(directory: directory, tls: tls)
        pipelines.append(pipeline)
        return pipeline
    }

    /// The usual start: service web with ready pod web-1 on 127.0.0.2, serving.
    func startServingWeb(reloadInterval: String = "100ms", environment: [String: String] = [:]) throws -> Pipeline {
        let pipeline = try makePipeline()
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.writeWebService()
        try pipeline.putWebPod("web-1", address: "127.0.0.2")
        try pipeline.start(reloadInterval: reloadInterval, environment: environment)
        XCTAssertTrue(pipeline.waitForBody("web-1"), "never served web-1:\n\(pipeline.log)")
        return pipeline
    }
}
