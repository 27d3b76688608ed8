// Changes in the cluster reach HAProxy: etcd → watcher → supervisor → HAProxy, all real, with
// traffic through HAProxy to real backends on loopback addresses.
import Foundation
import IntegrationSupport
import Shared
import XCTest

final class ClusterChangeTests: PipelineTestCase {
    // MARK: Pods

    func testPodThatBecomesReadyReceivesTraffic() throws {
        let pipeline = try startServingWeb()
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3", ready: false)
        // A later change the watcher must render shows the not-ready pod was seen and left out.
        try pipeline.backend("web-3", address: "127.0.0.4")
        try pipeline.putWebPod("web-3", address: "127.0.0.4")
        XCTAssertTrue(pipeline.waitForConfig { $0.contains("server web-3 ") }, pipeline.log)
        XCTAssertEqual(pipeline.servers(of: "web"), ["web-1", "web-3"])
        XCTAssertEqual(pipeline.answering(), ["web-1", "web-3"])

        try pipeline.putWebPod("web-2", address: "127.0.0.3", ready: true)
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering().contains("web-2") }, pipeline.log)
        XCTAssertEqual(pipeline.servers(of: "web"), ["web-1", "web-2", "web-3"], "pods in name order")
        XCTAssertTrue(pipeline.liveConfig.contains("server web-2 127.0.0.3:\(pipeline.podPort)\n"), pipeline.liveConfig)
    }

    func testPodNotReadyPendingTerminatingOrDeletedReceivesNoTraffic() throws {
        let pipeline = try startServingWeb()
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering().contains("web-2") }, pipeline.log)

        // Each state in turn, from ready: the pod leaves the config and gets no request.
        let states: [(String, () throws -> Void)] = [
            ("a container not ready", { try pipeline.store.putPod("web-2", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.3",
                                                                 containersReady: [true, false]) }),
            ("pending, without podIP", { try pipeline.store.putPod("web-2", namespace: "web", labels: [("app", "web")], podIP: nil,
                                                                  containersReady: [false]) }),
            ("no container status yet", { try pipeline.store.putPod("web-2", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.3",
                                                                   containersReady: []) }),
            ("terminating (deletionTimestamp)", { try pipeline.putWebPod("web-2", address: "127.0.0.3", terminating: true) }),
            ("deleted", { try pipeline.store.deletePod("web-2", namespace: "web") }),
        ]
        try assertEachStateTakesWeb2OutOfService(pipeline, states)
    }

    // MARK: Services

    func testServiceAddedRoutesAndRemovedStopsRouting() throws {
        let pipeline = try startServingWeb()
        try pipeline.backend("api-1", address: "127.0.0.5")
        try pipeline.store.putPod("api-1", namespace: "api", labels: [("app", "api"), ("tier", "backend")], podIP: "127.0.0.5")
        XCTAssertEqual(pipeline.get("api.example").code, "503", "no backend for an unknown host yet")

        let api = serviceObject(namespace: "api", selector: [("app", "api")], hostnames: ["api.example"], ports: [pipeline.podPort])
        try pipeline.store.putServices([("web", pipeline.webService()), ("api", api)])
        XCTAssertTrue(pipeline.waitForBody("api-1", host: "api.example"), pipeline.log)
        XCTAssertEqual(pipeline.get().body, "web-1\n")
        // Services in name order: api before web.
        let config = pipeline.liveConfig
        let apiAt = config.range(of: "backend api")?.lowerBound
        let webAt = config.range(of: "backend web")?.lowerBound
        XCTAssertNotNil(apiAt, config)
        XCTAssertNotNil(webAt, config)
        if let apiAt, let webAt { XCTAssertLessThan(apiAt, webAt, config) }

        try pipeline.store.putServices([("web", pipeline.webService())])
        XCTAssertTrue(pipeline.waitForConfig { !$0.contains("backend api") }, pipeline.log)
        XCTAssertEqual(pipeline.get("api.example").code, "503")
        XCTAssertEqual(pipeline.get().body, "web-1\n")
    }

    func testSelectorChangeMovesTrafficToTheNewlySelectedPods() throws {
        let pipeline = try startServingWeb()
        try pipeline.backend("canary-1", address: "127.0.0.6")
        try pipeline.putWebPod("canary-1", address: "127.0.0.6", labels: [("app", "web"), ("track", "canary")])
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering() == ["web-1", "canary-1"] }, pipeline.log)

        // Every label of the selector must match: only the canary has track=canary.
        try pipeline.store.putServices([("web", pipeline.webService(selector: [("app", "web"), ("track", "canary")]))])
        XCTAssertTrue(pipeline.waitForConfig { !$0.contains("server web-1 ") }, pipeline.log)
        XCTAssertEqual(pipeline.servers(of: "web"), ["canary-1"])
        XCTAssertEqual(pipeline.answering(), ["canary-1"])

        try pipeline.store.putServices([("web", pipeline.webService(selector: [("app", "web"), ("track", "stable")]))])
        XCTAssertTrue(pipeline.waitForConfig { !$0.contains("server canary-1 ") }, pipeline.log)
        XCTAssertEqual(pipeline.servers(of: "web"), [])
        XCTAssertEqual(pipeline.get().code, "503")
    }

    func testServiceInAnotherNamespaceSeesThatNamespacesPods() throws {
        let pipeline = try startServingWeb()
        try pipeline.backend("shop-1", address: "127.0.0.7")
        // Same labels as web's pods, other namespace: only the shop service selects it.
        try pipeline.store.putPod("shop-1", namespace: "shop", labels: [("app", "web")], podIP: "127.0.0.7")
        let shop = serviceObject(namespace: "shop", selector: [("app", "web")], hostnames: ["shop.example"], ports: [pipeline.podPort])
        try pipeline.store.putServices([("shop", shop), ("web", pipeline.webService())])
        XCTAssertTrue(pipeline.waitForBody("shop-1", host: "shop.example"), pipeline.log)
        XCTAssertEqual(pipeline.servers(of: "web"), ["web-1"])
        XCTAssertEqual(pipeline.servers(of: "shop"), ["shop-1"])
        // Pods of the newly watched namespace keep being followed.
        try pipeline.backend("shop-2", address: "127.0.0.8")
        try pipeline.store.putPod("shop-2", namespace: "shop", labels: [("app", "web")], podIP: "127.0.0.8")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering("shop.example") == ["shop-1", "shop-2"] }, pipeline.log)
    }

    // MARK: Template

    func testTemplateChangeGoesLive() throws {
        let pipeline = try startServingWeb()
        let reloads = try XCTUnwrap(pipeline.reloads)
        let changed = Pipeline.routingTemplate.replacingOccurrences(
            of: "frontend web\n", with: "frontend web\n  http-request return status 200 content-type text/plain string \"maintenance\\n\" if { path /maintenance }\n")
        XCTAssertNotEqual(changed, Pipeline.routingTemplate)
        try pipeline.store.putTemplate(changed)
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.get(path: "/maintenance").body == "maintenance\n" }, pipeline.log)
        XCTAssertEqual(pipeline.get().body, "web-1\n")
        XCTAssertEqual(pipeline.reloads, reloads + 1)
    }

    func testReloadsForClusterChangesAreNotTakenForHAProxyCrashes() throws {
        // Pod changes alone would go through the runtime API: reloads need it off.
        let pipeline = try startServingWeb(environment: ["KUBE_HAPROXY_RUNTIME_UPDATES": "off"])
        try pipeline.backend("web-2", address: "127.0.0.3")
        for round in 0..<8 {
            try pipeline.putWebPod("web-2", address: "127.0.0.3", ready: round % 2 == 0)
            XCTAssertTrue(pipeline.waitForConfig { $0.contains("server web-2 ") == (round % 2 == 0) }, pipeline.log)
        }
        XCTAssertEqual(pipeline.logLines("haproxy exited unexpectedly"), [], "an old generation finishing is not a crash")
        // A real crash after those reloads is still repaired at once (0.1 s for a first crash).
        let supervisor = try XCTUnwrap(pipeline.supervisor)
        let pid = try XCTUnwrap(try supervisor.status()["haproxy_pid"]?.intValue)
        kill(pid_t(pid), SIGKILL)
        let back = waitUntil(timeout: 1, interval: 0.01) {
            guard let current = (try? supervisor.status())?["haproxy_pid"]?.intValue, current != pid else { return false }
            return pipeline.get().code == "200"
        }
        XCTAssertTrue(back, "HAProxy not back within 1 s of a crash after 8 reloads:\n\(pipeline.log)")
    }

    // MARK: Certificates

    func testCertificateAndKeyAddedServeHTTPSAndRemovedLeaveNoFile() throws {
        let pipeline = try startServingWeb()
        let (authority, site) = try putSiteCertificate(pipeline)
        let supervisor = try XCTUnwrap(pipeline.supervisor)
        let file = supervisor.sslDirectory + "/site.pem"
        XCTAssertTrue(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: file) && isListening("127.0.0.1", pipeline.httpsPort) },
                      pipeline.log)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), site.keyPEM + site.certificatePEM, "the key, then the certificate")
        XCTAssertTrue(pipeline.liveConfig.contains("crt \(supervisor.sslDirectory)/site.pem"), pipeline.liveConfig)
        let secure = httpGet("https://web.example:\(pipeline.httpsPort)/",
                             extra: ["--cacert", authority.certificateFile, "--resolve", "web.example:\(pipeline.httpsPort):127.0.0.1"])
        XCTAssertEqual(secure.code, "200", secure.body)
        XCTAssertEqual(secure.body, "web-1\n")

        try pipeline.store.putConfigMap("certificates", data: [])
        XCTAssertTrue(waitUntil(timeout: 10) { !FileManager.default.fileExists(atPath: file) }, pipeline.log)
        XCTAssertFalse(pipeline.liveConfig.contains("frontend secure"), pipeline.liveConfig)
        XCTAssertFalse(isListening("127.0.0.1", pipeline.httpsPort) && pipeline.answeringHTTPS(authority: authority))
        XCTAssertEqual(pipeline.get().body, "web-1\n")
    }
}

extension PipelineTestCase {
    /// A certificate for web.example and its key, issued by a new CA, put as `site`.
    func putSiteCertificate(_ pipeline: ClusterPipeline) throws -> (TestCertificateAuthority, TestCertificateAuthority.Issued) {
        let authority = try TestCertificateAuthority(directory: directory)
        let site = try authority.issue("site", commonName: "web.example", subjectAltNames: ["DNS:web.example"])
        try pipeline.objects.putConfigMap("certificates", data: [("site", site.certificatePEM)])
        try pipeline.objects.putSecret("keys", data: [("site", site.keyPEM)])
        return (authority, site)
    }
}

extension ClusterPipeline {
    /// Requests for web.example every quarter second for `seconds`: the answers other than web-1's.
    func answersOtherThanWeb1(during seconds: Double) -> [String] {
        let started = Date()
        var failures: [String] = []
        while Date().timeIntervalSince(started) < seconds {
            let response = get()
            if response.body != "web-1\n" { failures.append("\(response)") }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return failures
    }

    /// Whether an HTTPS request with the given CA gets an answer from the pods.
    func answeringHTTPS(authority: TestCertificateAuthority) -> Bool {
        httpGet("https://web.example:\(httpsPort)/", extra: ["--cacert", authority.certificateFile, "--resolve", "web.example:\(httpsPort):127.0.0.1"],
                timeout: 3).code == "200"
    }
}
