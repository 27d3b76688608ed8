// How the watcher reads etcd (watches, never polls) and what the template sees (the seed's
// variables, in name order), observed from outside: etcd's own statistics and the watcher's
// dry run (`render --dump-context`) against the same etcd.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

final class WatchAndContextTests: PipelineTestCase {
    func testWatcherHoldsOneWatchPerPrefixAndDoesNotPollWhileIdle() throws {
        let pipeline = try startServingWeb()
        let keys = pipeline.store.keys
        func statistic(_ name: String) -> Int? { (try? keys.storeStatistics())?[name]?.intValue }
        func reads() -> Int { (statistic("getsSuccess") ?? 0) + (statistic("getsFail") ?? 0) }
        // Pods, the lb ConfigMaps and the lb Secrets: three long-polls, not the whole keyspace.
        XCTAssertTrue(waitUntil(timeout: 5) { statistic("watchers") == 3 }, "watchers: \(String(describing: statistic("watchers")))")
        let before = reads()
        Thread.sleep(forTimeInterval: 2)
        XCTAssertEqual(reads(), before, "an idle watcher reads nothing")
        XCTAssertEqual(statistic("watchers"), 3)

        // After changes, the watches are back in place and still nothing is polled.
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(pipeline.waitForConfig { $0.contains("server web-2 ") }, pipeline.log)
        XCTAssertTrue(waitUntil(timeout: 5) { statistic("watchers") == 3 })
        let after = reads()
        Thread.sleep(forTimeInterval: 1)
        XCTAssertEqual(reads(), after)
    }

    func testTemplateContextIsTheSeedsVariablesWithServicesPodsAndCertificatesInNameOrder() throws {
        let pipeline = try makePipeline()
        for (name, address) in [("web-c", "127.0.0.2"), ("web-a", "127.0.0.3"), ("web-b", "127.0.0.4")] {
            try pipeline.backend(name, address: address)
            try pipeline.putWebPod(name, address: address)
        }
        try pipeline.putWebPod("web-d", address: "127.0.0.5", ready: false)
        let zeta = serviceObject(namespace: "web", selector: [("app", "web")], hostnames: ["zeta.example"], ports: [pipeline.podPort])
        let alpha = serviceObject(namespace: "web", selector: [("app", "web")], hostnames: ["alpha.example"], ports: [pipeline.podPort],
                                  extra: [("custom", .object([("weight", .integer(3))]))])
        try pipeline.store.putServices([("zeta", zeta), ("alpha", alpha)])
        try pipeline.store.putTemplate(Pipeline.routingTemplate)
        let authority = try TestCertificateAuthority(directory: directory)
        let second = try authority.issue("site-b", commonName: "zeta.example", subjectAltNames: ["DNS:zeta.example"])
        let first = try authority.issue("site-a", commonName: "alpha.example", subjectAltNames: ["DNS:alpha.example"])
        try pipeline.store.putConfigMap("certificates", data: [("site-b", second.certificatePEM), ("site-a", first.certificatePEM)])
        try pipeline.store.putSecret("keys", data: [("site-b", second.keyPEM), ("site-a", first.keyPEM)])
        let supervisor = try pipeline.start()
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering("alpha.example") == ["web-a", "web-b", "web-c"] }, pipeline.log)

        var environment = supervisor.environment
        environment["KUBE_HAPROXY_SSL_DIR"] = supervisor.sslDirectory
        let dump = try runCommand(TestPaths.watcher, ["render", "--dump-context"], environment: environment, timeout: 20)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let context = try JSONValue.parse(dump.stdout)
        guard case .object(let variables) = context else { return XCTFail("not a JSON object: \(dump.stdout)") }
        XCTAssertEqual(variables.map(\.0), ["services", "certificates", "ssldir", "stats", "env"])

        guard case .array(let services)? = context["services"] else { return XCTFail("no services list") }
        XCTAssertEqual(services.map { $0["name"]?.stringValue ?? "" }, ["alpha", "zeta"])
        guard case .object(let alphaMembers)? = services.first else { return XCTFail("alpha is not an object") }
        XCTAssertEqual(alphaMembers.map(\.0), ["namespace", "selector", "hostnames", "ports", "custom", "name", "pods"],
                       "the service's own keys, in its order, then name and pods")
        XCTAssertEqual(services.first?["custom"], .object([("weight", .integer(3))]))
        for service in services {
            guard case .object(let pods)? = service["pods"] else { return XCTFail("no pods dict") }
            XCTAssertEqual(pods.map(\.0), ["web-a", "web-b", "web-c"], "backends only, by name")
            XCTAssertEqual(service["pods"]?["web-a"]?["status"]?["podIP"], .string("127.0.0.3"), "the whole pod object")
            XCTAssertEqual(service["pods"]?["web-a"]?["metadata"]?["uid"]?.stringValue?.count, 36)
        }
        XCTAssertEqual(context["certificates"], .array([.string("site-a"), .string("site-b")]))
        XCTAssertEqual(context["ssldir"], .string(supervisor.sslDirectory))
        XCTAssertEqual(context["stats"], .object([("username", .string("stats")), ("password", .string("test-statistics-password"))]))
        XCTAssertEqual(context["env"]?["HTTP_PORT"], .string(String(pipeline.httpPort)))

        // What the dry run renders is what the watcher sent.
        XCTAssertEqual(pipeline.liveConfig, try pipeline.freshRender())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: supervisor.sslDirectory).sorted(), ["site-a.pem", "site-b.pem"])
    }

    func testKeyPrefixAndLoadBalancerNamespaceComeFromTheEnvironment() throws {
        let pipeline = try makePipeline()
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.backend("decoy", address: "127.0.0.3")
        let store = try KubernetesStore(etcd: pipeline.etcd, prefix: "/kubernetes.io", lbNamespace: "edge")
        try store.putServices([("web", pipeline.webService())])
        try store.putTemplate(Pipeline.routingTemplate)
        try store.putPod("web-1", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.2")
        // The default places hold another cluster's objects, which must be ignored.
        try pipeline.writeWebService()
        try pipeline.putWebPod("decoy", address: "127.0.0.3")
        try pipeline.start(environment: ["ETCD2_PREFIX": "/kubernetes.io", "LB_NAMESPACE": "edge"])
        XCTAssertTrue(pipeline.waitForBody("web-1"), pipeline.log)
        XCTAssertEqual(pipeline.servers(of: "web"), ["web-1"])
        // Followed there too.
        try pipeline.backend("web-2", address: "127.0.0.4")
        try store.putPod("web-2", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.4")
        XCTAssertTrue(pipeline.waitForConfig { _ in pipeline.servers(of: "web") == ["web-1", "web-2"] }, pipeline.log)
        XCTAssertEqual(pipeline.answering(), ["web-1", "web-2"])
    }
}
