// The whole pipeline for one test: the load balancer's objects in a real source (etcd holding
// them the way Kubernetes writes them, or the test Kubernetes API server), real HTTP backends
// standing in for pods on loopback addresses, and the real supervisor running the real watcher
// and real HAProxy.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

/// What every pipeline shares, whatever the source.
class ClusterPipeline {
    let directory: String
    /// Where the tests write the cluster's objects.
    let objects: ClusterObjectStore
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

    init(directory: String, objects: ClusterObjectStore) throws {
        self.directory = directory
        self.objects = objects
        httpPort = try freePort()
        httpsPort = try freePort()
        podPort = try freePort(addresses: Pipeline.podAddresses)
    }

    /// The source's part of the watcher's environment.
    var sourceEnvironment: [String: String] { [:] }

    func stopSource() {}

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
        try objects.putServices([("web", webService())] + extraServices)
        try objects.putTemplate(Pipeline.routingTemplate)
    }

    func webService(selector: [(String, String)] = [("app", "web")]) -> JSONValue {
        serviceObject(namespace: "web", selector: selector, hostnames: ["web.example"], ports: [podPort])
    }

    func putWebPod(_ name: String, address: String, ready: Bool = true, labels: [(String, String)] = [("app", "web")],
                   terminating: Bool = false) throws {
        try objects.putPod(name, namespace: "web", labels: labels, podIP: address, containersReady: [ready], terminating: terminating)
    }

    /// Starts the supervisor with the watcher; the template gets HTTP_PORT and HTTPS_PORT.
    @discardableResult
    func start(reloadInterval: String = "100ms", environment: [String: String] = [:]) throws -> SupervisorProcess {
        var variables = ["HTTP_PORT": String(httpPort), "HTTPS_PORT": String(httpsPort), "KUBE_HAPROXY_RELOAD_INTERVAL": reloadInterval,
                         "STATISTICS_PASSWORD": "test-statistics-password"]
        for (key, value) in environment { variables[key] = value }
        for (key, value) in sourceEnvironment where variables[key] == nil { variables[key] = value }
        let started = try SupervisorProcess(directory: directory, environment: variables, watcher: TestPaths.watcher)
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
    /// the source, in the environment the supervisor gives the watcher.
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
        stopSource()
    }
}

/// etcd2 as the source.
final class Pipeline: ClusterPipeline {
    let etcd: EtcdServer
    let store: KubernetesStore

    init(directory: String, tls: EtcdServer.TLS? = nil) throws {
        etcd = try EtcdServer(directory: directory, tls: tls)
        store = try KubernetesStore(etcd: etcd)
        try super.init(directory: directory, objects: store)
    }

    override var sourceEnvironment: [String: String] {
        var environment = ["ETCD2BASE": etcd.clientURL]
        if let tls = etcd.tls {
            environment["ETCD2_CA_FILE"] = tls.authority.certificateFile
            environment["ETCD2_CERT_FILE"] = tls.client.certificateFile
            environment["ETCD2_KEY_FILE"] = tls.client.keyFile
        }
        return environment
    }

    override func stopSource() { etcd.stop() }
}

/// The Kubernetes API as the source: the test API server, with a bearer token the watcher reads
/// from its file as it reads a service account's.
final class KubePipeline: ClusterPipeline {
    let server: KubeAPIServer
    let store: KubeAPIStore
    let tokenFile: String

    init(directory: String, tls: KubeAPIServer.TLS? = nil, token: String = "token-1") throws {
        server = try KubeAPIServer(directory: directory, tls: tls, tokens: [token])
        store = KubeAPIStore(server: server)
        let serviceAccount = directory + "/serviceaccount"
        try FileManager.default.createDirectory(atPath: serviceAccount, withIntermediateDirectories: true)
        tokenFile = serviceAccount + "/token"
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        try super.init(directory: directory, objects: store)
    }

    override var sourceEnvironment: [String: String] {
        var environment = ["KUBE_HAPROXY_API_SERVER": server.url, "KUBE_HAPROXY_API_TOKEN_FILE": tokenFile]
        if let tls = server.tls {
            environment["KUBE_HAPROXY_API_CA_FILE"] = tls.certificates.authority.certificateFile
            if tls.requireClientCertificates {
                environment["KUBE_HAPROXY_API_CERT_FILE"] = tls.certificates.client.certificateFile
                environment["KUBE_HAPROXY_API_KEY_FILE"] = tls.certificates.client.keyFile
            }
        }
        return environment
    }

    /// A rotated token: the server accepts only the new one, and the watcher's file holds it.
    func rotateToken(to token: String) throws {
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        try server.setTokens([token])
        server.token = token
    }

    /// The Warning Events in the load balancer's namespace, as the API server stores them.
    func warningEvents(reason: String) throws -> [JSONValue] {
        try server.objects(resource: "events", namespace: "lb").filter { $0["reason"]?.stringValue == reason && $0["type"]?.stringValue == "Warning" }
    }

    override func stopSource() { server.stop() }
}

/// Common set-up and tear-down of the watcher tests.
/// A supervisor test case (its own directory, `startSupervisor`) whose pipelines stop after it.
class PipelineTestCase: SupervisorTestCase {
    var pipelines: [ClusterPipeline] = []

    override func tearDown() {
        // The whole story of a failed test (or of every test, with WATCHER_TESTS_LOG=1).
        if (testRun?.totalFailureCount ?? 0) > 0 || ProcessInfo.processInfo.environment["WATCHER_TESTS_LOG"] == "1" {
            for pipeline in pipelines { print("--- log of \(name)\n\(pipeline.log)") }
        }
        for pipeline in pipelines { pipeline.stop() }
        pipelines = []
        super.tearDown()
    }

    func makePipeline(tls: EtcdServer.TLS? = nil) throws -> Pipeline {
        let pipeline = try Pipeline(directory: directory, tls: tls)
        pipelines.append(pipeline)
        return pipeline
    }

    func makeKubePipeline(tls: KubeAPIServer.TLS? = nil) throws -> KubePipeline {
        let pipeline = try KubePipeline(directory: directory, tls: tls)
        pipelines.append(pipeline)
        return pipeline
    }

    /// The usual start: service web with ready pod web-1 on 127.0.0.2, serving.
    func startServingWeb(reloadInterval: String = "100ms", environment: [String: String] = [:]) throws -> Pipeline {
        try serveWeb(makePipeline(), reloadInterval: reloadInterval, environment: environment)
    }

    /// The usual start through the Kubernetes API.
    func startServingWebThroughAPI(reloadInterval: String = "100ms", environment: [String: String] = [:]) throws -> KubePipeline {
        try serveWeb(makeKubePipeline(), reloadInterval: reloadInterval, environment: environment)
    }

    func serveWeb<P: ClusterPipeline>(_ pipeline: P, reloadInterval: String, environment: [String: String]) throws -> P {
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.writeWebService()
        try pipeline.putWebPod("web-1", address: "127.0.0.2")
        try pipeline.start(reloadInterval: reloadInterval, environment: environment)
        XCTAssertTrue(pipeline.waitForBody("web-1"), "never served web-1:\n\(pipeline.log)")
        return pipeline
    }

    /// web-2 ready, then each state in turn (from ready again): it leaves the config and gets
    /// no request. `cleanUp` runs after each state.
    func assertEachStateTakesWeb2OutOfService(_ pipeline: ClusterPipeline, _ states: [(String, () throws -> Void)],
                                              cleanUp: () throws -> Void = {}) throws {
        for (state, change) in states {
            try pipeline.putWebPod("web-2", address: "127.0.0.3")
            XCTAssertTrue(pipeline.waitForConfig { $0.contains("server web-2 ") }, "\(state): web-2 not back\n\(pipeline.log)")
            try change()
            XCTAssertTrue(pipeline.waitForConfig { !$0.contains("server web-2 ") }, "\(state): web-2 still in the config\n\(pipeline.log)")
            XCTAssertEqual(pipeline.servers(of: "web"), ["web-1"], state)
            XCTAssertEqual(pipeline.answering(count: 6), ["web-1"], state)
            try cleanUp()
        }
    }

    /// Kills the watcher under wrk's load (web-1 and web-2 serving): no request fails, the new
    /// watcher sends the same desired state, and nothing reloads.
    func assertKilledWatcherUnderLoadLosesNoRequestAndCausesNoReload(_ pipeline: ClusterPipeline) throws {
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering() == ["web-1", "web-2"] }, pipeline.log)
        let supervisor = try XCTUnwrap(pipeline.supervisor)
        let before = try supervisor.status()
        let watcher = try XCTUnwrap(before["watcher_pid"]?.intValue)

        let load = try BackgroundProcess("/usr/bin/wrk", ["-t2", "-c20", "-d5s", "--timeout", "5s", "-H", "Host: web.example",
                                                         "http://127.0.0.1:\(pipeline.httpPort)/"], logPath: directory + "/wrk.log")
        Thread.sleep(forTimeInterval: 0.5)
        kill(pid_t(watcher), SIGKILL)
        let restarted = waitUntil(timeout: 5) {
            guard let pid = (try? supervisor.status())?["watcher_pid"]?.intValue else { return false }
            return pid != watcher
        }
        XCTAssertTrue(restarted, pipeline.log)
        // The new watcher reads everything and sends the same desired state: nothing to do.
        XCTAssertTrue(pipeline.waitForLog("config unchanged"), pipeline.log)
        XCTAssertNotNil(load.waitForExit(timeout: 20), "wrk did not finish")

        let after = try supervisor.status()
        XCTAssertEqual(after["reloads"], before["reloads"], after.serialized)
        XCTAssertEqual(after["haproxy_pid"], before["haproxy_pid"])
        XCTAssertEqual(after["config_hash"], before["config_hash"])
        let report = WrkReport(load.log)
        XCTAssertGreaterThan(report.requests, 500, report.text)
        XCTAssertEqual(report.failures, [], report.text)
    }
}
