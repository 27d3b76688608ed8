// The Kubernetes API as the source, end to end: the test API server (lists, watches with
// bookmarks, 410s, tokens, 403s, going down), the real supervisor and watcher binaries, real
// HAProxy and traffic to real backends on loopback addresses.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

final class KubernetesSourceTests: PipelineTestCase {
    // MARK: The same objects through either source

    func testTheSameObjectsThroughEtcdAndThroughTheAPIRenderByteIdenticalConfigs() throws {
        let etcd = try makePipeline()
        let api = try makeKubePipeline()
        let authority = try TestCertificateAuthority(directory: directory)
        let site = try authority.issue("site", commonName: "web.example", subjectAltNames: ["DNS:web.example"])
        let template = try String(contentsOfFile: TestPaths.packageRoot + "/Tests/WatcherTests/Fixtures/objects.cfg.j2", encoding: .utf8)
        for store in [etcd.objects, api.objects] {
            let shop = serviceObject(namespace: "shop", selector: [("app", "shop")], hostnames: ["shop.example"], ports: [8080],
                                     extra: [("ssl", .bool(true))])
            try store.putServices([("web", etcd.webService()), ("shop", shop)])
            try store.putTemplate(template)
            try store.putPod("web-1", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.2")
            try store.putPod("web-2", namespace: "web", labels: [("app", "web"), ("track", "canary")], podIP: "127.0.0.3",
                             containersReady: [true, true])
            try store.putPod("web-3", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.4", containersReady: [true, false])
            try store.putPod("web-4", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.5", terminating: true)
            try store.putPod("shop-1", namespace: "shop", labels: [("app", "shop")], podIP: "127.0.0.6")
            try store.putPod("other-1", namespace: "elsewhere", labels: [("app", "web")], podIP: "127.0.0.7")
            try store.putConfigMap("certificates", data: [("site", site.certificatePEM)])
            try store.putSecret("keys", data: [("site", site.keyPEM)])
        }
        var base = ProcessInfo.processInfo.environment
        for name in ["ETCD2BASE", "KUBE_HAPROXY_API_SERVER", "KUBERNETES_SERVICE_HOST", "KUBE_HAPROXY_SOURCE"] { base[name] = nil }
        base["HTTP_PORT"] = "8080"
        base["KUBE_HAPROXY_SSL_DIR"] = "/run/kube-haproxy/ssl"
        let throughEtcd = try runCommand(TestPaths.watcher, ["render"], environment: base.merging(etcd.sourceEnvironment) { $1 }, timeout: 20)
        let throughAPI = try runCommand(TestPaths.watcher, ["render"], environment: base.merging(api.sourceEnvironment) { $1 }, timeout: 20)
        XCTAssertEqual(throughEtcd.status, 0, throughEtcd.stderr)
        XCTAssertEqual(throughAPI.status, 0, throughAPI.stderr)
        XCTAssertTrue(throughAPI.stdout.contains("  server web-1 127.0.0.2:\(etcd.podPort)\n  # ['kind', 'apiVersion', 'metadata', 'spec', 'status'] Pod v1 web/web-2"),
                      throughAPI.stdout)
        XCTAssertTrue(throughAPI.stdout.hasSuffix("# certificates ['site'] in /run/kube-haproxy/ssl"), throughAPI.stdout)
        XCTAssertFalse(throughAPI.stdout.contains("web-3") || throughAPI.stdout.contains("web-4") || throughAPI.stdout.contains("other-1"),
                       "not ready, terminating, or of a namespace no service names: \(throughAPI.stdout)")
        XCTAssertEqual(Array(throughAPI.stdout.utf8), Array(throughEtcd.stdout.utf8), "the same bytes through either source")
    }

    func testAPIServerOverHTTPSWithItsCAAndAClientCertificateWorks() throws {
        let pipeline = try makeKubePipeline(tls: KubeAPIServer.TLS(directory: directory, requireClientCertificates: true))
        XCTAssertTrue(pipeline.server.url.hasPrefix("https://"))
        _ = try serveWeb(pipeline, reloadInterval: "100ms", environment: [:])
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering() == ["web-1", "web-2"] }, pipeline.log)
    }

    // MARK: Changes

    func testServiceAddedThroughTheAPIRoutesToItsNamespacesPodsAndRemovedStopsRouting() throws {
        let pipeline = try startServingWebThroughAPI()
        try pipeline.backend("api-1", address: "127.0.0.5")
        try pipeline.store.putPod("api-1", namespace: "api", labels: [("app", "api")], podIP: "127.0.0.5")
        XCTAssertEqual(pipeline.get("api.example").code, "503", "no backend for an unknown host yet")

        let api = serviceObject(namespace: "api", selector: [("app", "api")], hostnames: ["api.example"], ports: [pipeline.podPort])
        try pipeline.store.putServices([("web", pipeline.webService()), ("api", api)])
        XCTAssertTrue(pipeline.waitForBody("api-1", host: "api.example"), pipeline.log)
        // The newly named namespace's pods keep being followed.
        try pipeline.backend("api-2", address: "127.0.0.6")
        try pipeline.store.putPod("api-2", namespace: "api", labels: [("app", "api")], podIP: "127.0.0.6")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering("api.example") == ["api-1", "api-2"] }, pipeline.log)
        XCTAssertEqual(pipeline.get().body, "web-1\n")

        try pipeline.store.putServices([("web", pipeline.webService())])
        XCTAssertTrue(pipeline.waitForConfig { !$0.contains("backend api") }, pipeline.log)
        XCTAssertEqual(pipeline.get("api.example").code, "503")
        XCTAssertEqual(pipeline.get().body, "web-1\n")
        // Only what RBAC can name: the four objects by field selector, pods per named namespace.
        let lists = try pipeline.server.requests().filter { $0.method == "GET" && !$0.query.contains("watch=1") }.map { "\($0.path)?\($0.query)" }
        for name in ["services", "certificates", "config"] {
            XCTAssertTrue(lists.contains { $0.hasPrefix("/api/v1/namespaces/lb/configmaps?") && $0.contains("fieldSelector=metadata.name%3D\(name)") },
                          "\(name): \(lists)")
        }
        XCTAssertTrue(lists.contains { $0.hasPrefix("/api/v1/namespaces/lb/secrets?") && $0.contains("fieldSelector=metadata.name%3Dkeys") }, "\(lists)")
        XCTAssertTrue(lists.contains { $0.hasPrefix("/api/v1/namespaces/api/pods?limit=500") }, "\(lists)")
        XCTAssertFalse(lists.contains { $0.hasPrefix("/api/v1/pods") || $0.hasPrefix("/api/v1/namespaces/lb/configmaps?limit=500") && !$0.contains("fieldSelector") },
                       "no cluster-wide or namespace-wide lb list: \(lists)")
    }

    func testPodsThroughTheAPIReceiveTrafficOnlyWhileReadyAndNotTerminatingOrDeleted() throws {
        let pipeline = try startServingWebThroughAPI()
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering() == ["web-1", "web-2"] }, pipeline.log)

        let states: [(String, () throws -> Void)] = [
            ("a container not ready", { try pipeline.store.putPod("web-2", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.3",
                                                                 containersReady: [true, false]) }),
            ("pending, without podIP", { try pipeline.store.putPod("web-2", namespace: "web", labels: [("app", "web")], podIP: nil,
                                                                  containersReady: [false]) }),
            ("terminating (a graceful delete)", { try pipeline.putWebPod("web-2", address: "127.0.0.3", terminating: true) }),
            ("deleted", { try pipeline.store.deletePod("web-2", namespace: "web") }),
        ]
        // A terminating pod is deleted for good before the next state re-creates it.
        try assertEachStateTakesWeb2OutOfService(pipeline, states) {
            try pipeline.store.server.delete(resource: "pods", namespace: "web", name: "web-2")
        }
    }

    func testTemplateChangeAndCertificatesThroughTheAPIGoLive() throws {
        let pipeline = try startServingWebThroughAPI()
        let changed = Pipeline.routingTemplate.replacingOccurrences(
            of: "frontend web\n", with: "frontend web\n  http-request return status 200 content-type text/plain string \"maintenance\\n\" if { path /maintenance }\n")
        try pipeline.store.putTemplate(changed)
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.get(path: "/maintenance").body == "maintenance\n" }, pipeline.log)
        XCTAssertEqual(pipeline.get().body, "web-1\n")

        let (authority, site) = try putSiteCertificate(pipeline)
        let supervisor = try XCTUnwrap(pipeline.supervisor)
        let file = supervisor.sslDirectory + "/site.pem"
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answeringHTTPS(authority: authority) }, pipeline.log)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), site.keyPEM + site.certificatePEM, "the key, then the certificate")

        try pipeline.store.remove(resource: "configmaps", namespace: "lb", name: "certificates")
        XCTAssertTrue(waitUntil(timeout: 10) { !FileManager.default.fileExists(atPath: file) }, pipeline.log)
        XCTAssertFalse(pipeline.liveConfig.contains("frontend secure"), pipeline.liveConfig)
        XCTAssertEqual(pipeline.get().body, "web-1\n")
        XCTAssertEqual(pipeline.liveConfig, try pipeline.freshRender())
    }

    // MARK: Bad input, as Events

    func testATemplateErrorIsOneWarningEventOnConfigMapConfigWhoseCountRisesOnRepeat() throws {
        let pipeline = try startServingWebThroughAPI()
        let broken = Pipeline.routingTemplate + "{{ services[0].nothing.here }}\n"
        try pipeline.store.putTemplate(broken)
        XCTAssertTrue(pipeline.waitForLog("error", "template error", "line="), pipeline.log)
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? pipeline.warningEvents(reason: "TemplateError")) ?? []).count == 1 }, pipeline.log)
        let config = try XCTUnwrap(try pipeline.server.objects(resource: "configmaps", namespace: "lb")
            .first { $0["metadata"]?["name"]?.stringValue == "config" })
        var event = try XCTUnwrap(try pipeline.warningEvents(reason: "TemplateError").first)
        XCTAssertEqual(event["involvedObject"]?["kind"]?.stringValue, "ConfigMap")
        XCTAssertEqual(event["involvedObject"]?["namespace"]?.stringValue, "lb")
        XCTAssertEqual(event["involvedObject"]?["name"]?.stringValue, "config")
        XCTAssertEqual(event["involvedObject"]?["apiVersion"]?.stringValue, "v1")
        XCTAssertEqual(event["involvedObject"]?["uid"], config["metadata"]?["uid"])
        XCTAssertEqual(event["count"]?.intValue, 1)
        let message = try XCTUnwrap(event["message"]?.stringValue)
        XCTAssertTrue(message.contains("template error") && message.contains("has no attribute 'nothing'"), message)
        XCTAssertEqual(pipeline.get().body, "web-1\n", "the last good config stays live")

        // Each render that meets the same error again: the same Event, counted.
        for round in 0..<2 {
            try pipeline.putWebPod("web-1", address: "127.0.0.2", labels: [("app", "web"), ("round", String(round))])
            XCTAssertTrue(waitUntil(timeout: 10) {
                ((try? pipeline.warningEvents(reason: "TemplateError")) ?? []).first?["count"]?.intValue == round + 2
            }, "\(String(describing: try? pipeline.warningEvents(reason: "TemplateError")))\n\(pipeline.log)")
        }
        event = try XCTUnwrap(try pipeline.warningEvents(reason: "TemplateError").first)
        XCTAssertEqual(try pipeline.warningEvents(reason: "TemplateError").count, 1, "one Event per distinct problem")
        XCTAssertNotNil(event["lastTimestamp"]?.stringValue)
        XCTAssertEqual(pipeline.get().body, "web-1\n")

        // A new watcher (the old one killed) meets the same error: the same Event counts on.
        let supervisor = try XCTUnwrap(pipeline.supervisor)
        let watcher = try XCTUnwrap(try supervisor.status()["watcher_pid"]?.intValue)
        kill(pid_t(watcher), SIGKILL)
        XCTAssertTrue(waitUntil(timeout: 15) {
            ((try? pipeline.warningEvents(reason: "TemplateError")) ?? []).first?["count"]?.intValue == 4
        }, "\(String(describing: try? pipeline.warningEvents(reason: "TemplateError")))\n\(pipeline.log)")
        XCTAssertEqual(try pipeline.warningEvents(reason: "TemplateError").count, 1)
    }

    func testBadServicesCertificatesWithoutKeysAndRejectedConfigsAreWarningEventsOnTheirObjects() throws {
        let pipeline = try startServingWebThroughAPI()
        try pipeline.store.putConfigMap("services", data: [("web", pipeline.webService().serialized), ("broken", #"{"selector":{"app":"x"}}"#)])
        let authority = try TestCertificateAuthority(directory: directory)
        let lonely = try authority.issue("lonely", commonName: "lonely.example")
        try pipeline.store.putConfigMap("certificates", data: [("lonely", lonely.certificatePEM)])
        for (reason, object) in [("InvalidService", "services"), ("CertificateWithoutKey", "certificates")] {
            XCTAssertTrue(waitUntil(timeout: 10) {
                ((try? pipeline.warningEvents(reason: reason)) ?? []).first?["involvedObject"]?["name"]?.stringValue == object
            }, "\(reason)\n\(pipeline.log)")
        }
        let invalid = try XCTUnwrap(try pipeline.warningEvents(reason: "InvalidService").first?["message"]?.stringValue)
        XCTAssertTrue(invalid.contains(#"key "broken""#) && invalid.contains("namespace"), invalid)
        let missing = try XCTUnwrap(try pipeline.warningEvents(reason: "CertificateWithoutKey").first?["message"]?.stringValue)
        XCTAssertTrue(missing.contains(#"certificate "lonely" has no key in Secret lb/keys"#), missing)

        // A config HAProxy refuses.
        try pipeline.store.putTemplate(Pipeline.routingTemplate.replacingOccurrences(of: "defaults\n", with: "defaults\n  reqadd X-Old:\\ yes\n"))
        XCTAssertTrue(waitUntil(timeout: 15) { ((try? pipeline.warningEvents(reason: "ConfigRejected")) ?? []).count == 1 }, pipeline.log)
        let rejected = try XCTUnwrap(try pipeline.warningEvents(reason: "ConfigRejected").first)
        XCTAssertEqual(rejected["involvedObject"]?["name"]?.stringValue, "config")
        XCTAssertTrue(rejected["message"]?.stringValue?.contains("reqadd") == true, rejected.serialized)
        XCTAssertEqual(pipeline.get().body, "web-1\n", "the last good config stays live")
        XCTAssertEqual(try pipeline.warningEvents(reason: "InvalidService").count, 1)
    }

    func testAServiceThatBreaksTheConfigIsSkippedAndAWarningEventOnConfigMapServices() throws {
        let pipeline = try startServingWebThroughAPI()
        let broken = serviceObject(namespace: "web", selector: [("app", "web")], hostnames: ["broken.example"], ports: [99999])
        try pipeline.store.putServices([("web", pipeline.webService()), ("broken", broken)])
        XCTAssertTrue(waitUntil(timeout: 15) { ((try? pipeline.warningEvents(reason: "ServiceBreaksConfig")) ?? []).count == 1 }, pipeline.log)
        let event = try XCTUnwrap(try pipeline.warningEvents(reason: "ServiceBreaksConfig").first)
        XCTAssertEqual(event["involvedObject"]?["name"]?.stringValue, "services")
        XCTAssertTrue(event["message"]?.stringValue.map { $0.contains("key broken") && $0.contains("invalid port") } == true, event.serialized)
        XCTAssertFalse(pipeline.liveConfig.contains("backend broken"), pipeline.liveConfig)
        XCTAssertEqual(pipeline.get().body, "web-1\n", "everything else goes live")
    }

    // MARK: The API server away, behind, or strict

    func testAPIServerDownForTenSecondsHAProxyKeepsServingAndTheWatcherCatchesUp() throws {
        let pipeline = try startServingWebThroughAPI()
        try pipeline.server.down(seconds: 10)
        XCTAssertTrue(pipeline.waitForLog("from the API server; HAProxy keeps its last config"), pipeline.log)
        XCTAssertEqual(pipeline.answersOtherThanWeb1(during: 9), [], "HAProxy must keep serving the last config while the API server is down")
        XCTAssertTrue(waitUntil(timeout: 10) { (try? pipeline.server.request("GET", "/healthz"))?.status == 200 }, "the API server did not come back")
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        // Back within the backoff (1 s doubling to 32 s).
        XCTAssertTrue(waitUntil(timeout: 40, interval: 0.1) { pipeline.answering() == ["web-1", "web-2"] }, pipeline.log)
        XCTAssertEqual(pipeline.liveConfig, try pipeline.freshRender())
    }

    func testExpiredResourceVersionsDuringABurstRelistAndConvergeToTheRightConfig() throws {
        let metricsPort = try freePort()
        let pipeline = try startServingWebThroughAPI(environment: ["KUBE_HAPROXY_METRICS_ADDR": "127.0.0.1:\(metricsPort)"])
        for (name, address) in [("web-2", "127.0.0.3"), ("web-3", "127.0.0.4")] { try pipeline.backend(name, address: address) }
        // 300 changes; 410 as an ERROR event in the middle of open watches, then, after a
        // compaction, as the answer to a watch resumed from a forgotten resourceVersion.
        for round in 0..<150 {
            try pipeline.putWebPod("web-2", address: "127.0.0.3", ready: round % 2 == 1)
            try pipeline.putWebPod("web-3", address: "127.0.0.4", ready: round % 2 == 0)
            if round == 50 {
                try pipeline.server.compact()
                try pipeline.server.watchError410()
            }
            if round == 100 {
                try pipeline.server.setWatch410Mode(.http)
                try pipeline.server.compact()
                try pipeline.server.closeWatches()
            }
        }
        try pipeline.store.deletePod("web-1", namespace: "web")
        XCTAssertTrue(pipeline.waitForConfig { _ in pipeline.servers(of: "web") == ["web-2"] }, pipeline.liveConfig + pipeline.log)
        XCTAssertEqual(pipeline.answering(), ["web-2"])
        XCTAssertEqual(pipeline.liveConfig, try pipeline.freshRender(), "exactly what a fresh start renders")
        XCTAssertGreaterThan(pipeline.logLines("resourceVersion expired (410 Gone); listing again").count, 0, pipeline.log)
        let metrics = "http://127.0.0.1:\(metricsPort)/metrics"
        XCTAssertTrue(waitUntil(timeout: 10) {
            let now = (try? scrapeMetrics(metrics)) ?? [:]
            return (now["kube_haproxy_resyncs_total{reason=\"expired\"}"] ?? 0) >= 1 && (now["kube_haproxy_etcd_events_total"] ?? 0) >= 100
                && now["kube_haproxy_state_stale_seconds"] == 0
        }, "\(String(describing: try? scrapeMetrics(metrics)))")
    }

    func testRotatedTokenIsReadAgainAfterA401AndTheWatcherKeepsWorking() throws {
        let pipeline = try startServingWebThroughAPI()
        try pipeline.rotateToken(to: "token-2")
        try pipeline.server.clearRequests()
        // Renewed watches present the old token, are refused, and the file is read again.
        try pipeline.server.closeWatches()
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(waitUntil(timeout: 15) { pipeline.answering() == ["web-1", "web-2"] }, pipeline.log)
        let requests = try pipeline.server.requests()
        XCTAssertTrue(requests.contains { $0.token == "token-1" && $0.status == 401 }, "the old token is refused: \(requests)")
        XCTAssertTrue(requests.contains { $0.token == "token-2" && $0.status == 200 && $0.query.contains("watch=1") }, "\(requests)")
        XCTAssertEqual(pipeline.logLines("Unauthorized").count, 0, "a rotation is not an error:\n\(pipeline.log)")
    }

    func testForbiddenListIsLoggedOnceNamingVerbResourceAndNamespaceAndRetriedUntilAllowed() throws {
        let pipeline = try makeKubePipeline()
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.writeWebService()
        try pipeline.putWebPod("web-1", address: "127.0.0.2")
        try pipeline.server.forbid(verb: "list", resource: "pods", namespace: "web")
        try pipeline.start()
        XCTAssertTrue(waitUntil(timeout: 15) {
            ((try? pipeline.server.requests()) ?? []).filter { $0.path == "/api/v1/namespaces/web/pods" && $0.status == 403 }.count >= 3
        }, pipeline.log)
        let lines = pipeline.logLines("forbids")
        XCTAssertEqual(lines.count, 1, pipeline.log)
        XCTAssertTrue(lines.first.map { $0.contains("verb=list") && $0.contains("resource=pods") && $0.contains("namespace=web") } == true,
                      "\(lines)")
        XCTAssertEqual(try pipeline.supervisor?.status()["generation"], .integer(0), "nothing rendered without the pods")

        try pipeline.server.allowAll()
        XCTAssertTrue(pipeline.waitForBody("web-1", timeout: 40), pipeline.log)
    }

    // MARK: The watcher killed

    func testKilledWatcherUnderLoadLosesNoRequestAndCausesNoReload() throws {
        try assertKilledWatcherUnderLoadLosesNoRequestAndCausesNoReload(try startServingWebThroughAPI())
    }
}
