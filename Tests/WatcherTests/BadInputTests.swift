// Bad input in the cluster: one error naming the object and key (and the template line where
// there is one), everything else keeps working, and no broken config reaches HAProxy.
import Foundation
import IntegrationSupport
import Shared
import XCTest

final class BadInputTests: PipelineTestCase {
    func testInvalidServicesAreSkippedWithOneErrorNamingTheKey() throws {
        let pipeline = try makePipeline()
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.putWebPod("web-1", address: "127.0.0.2")
        let bad: [(key: String, value: String, expected: String)] = [
            ("not-json", "{namespace: web", "not valid JSON"),
            ("not-an-object", #"["web"]"#, "must be a JSON object"),
            ("no-namespace", #"{"selector":{"app":"web"},"hostnames":["a.example"],"ports":[80]}"#, #"needs \"namespace\""#),
            ("no-selector", #"{"namespace":"web","hostnames":["b.example"],"ports":[80]}"#, #"needs \"selector\""#),
            ("selector-not-strings", #"{"namespace":"web","selector":{"app":1},"hostnames":["c.example"],"ports":[80]}"#, "selector values must be strings"),
            ("selector-a-list", #"{"namespace":"web","selector":["app"],"hostnames":["d.example"],"ports":[80]}"#, #"needs \"selector\""#),
        ]
        try pipeline.store.putConfigMap("services", data: bad.map { ($0.key, $0.value) } + [("web", pipeline.webService().serialized)])
        try pipeline.store.putTemplate(Pipeline.routingTemplate)
        try pipeline.start()
        XCTAssertTrue(pipeline.waitForBody("web-1"), pipeline.log)
        XCTAssertEqual(pipeline.liveConfig.split(separator: "\n").filter { $0.hasPrefix("backend ") }, ["backend web"])

        // A later render (a new pod) logs nothing again: each problem is reported once.
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(pipeline.waitForConfig { $0.contains("server web-2 ") }, pipeline.log)
        for (key, _, expected) in bad {
            let lines = pipeline.logLines("error", "skipping a service", #"ConfigMap services, key \"\#(key)\""#)
            XCTAssertEqual(lines.count, 1, "\(key): \(lines)\n\(pipeline.log)")
            XCTAssertTrue(lines.first?.contains(expected) == true, "\(key) should say \(expected): \(lines)")
        }
        XCTAssertEqual(try pipeline.supervisor?.status()["last_error"], .null, "nothing broken was sent")
        XCTAssertEqual(pipeline.answering(), ["web-1", "web-2"])
    }

    func testKeyThatIsNotBase64AndCertificatesWithoutAPartnerAreSkipped() throws {
        let pipeline = try makePipeline()
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.writeWebService()
        try pipeline.putWebPod("web-1", address: "127.0.0.2")
        let authority = try TestCertificateAuthority(directory: directory)
        let site = try authority.issue("site", commonName: "web.example", subjectAltNames: ["DNS:web.example"])
        let other = try authority.issue("other", commonName: "other.example", subjectAltNames: ["DNS:other.example"])
        try pipeline.store.putConfigMap("certificates", data: [("site", site.certificatePEM), ("lonely", other.certificatePEM),
                                                               ("garbled", other.certificatePEM)])
        try pipeline.store.putRaw(pipeline.store.secretKey("keys"), KubernetesObjects.secret(name: "keys", namespace: "lb", encodedData: [
            ("site", Data(site.keyPEM.utf8).base64EncodedString()),
            ("orphan", Data(other.keyPEM.utf8).base64EncodedString()),
            ("garbled", "this is *not* base64!"),
        ]).serialized)
        let supervisor = try pipeline.start()
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answeringHTTPS(authority: authority) }, pipeline.log)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: supervisor.sslDirectory).sorted(), ["site.pem"])
        XCTAssertEqual(pipeline.logLines("error", "not base64", #"object="Secret lb/keys""#, "key=garbled").count, 1, pipeline.log)
        XCTAssertEqual(pipeline.logLines("skipping a certificate", #"certificate \"lonely\" has no key in Secret lb/keys"#).count, 1, pipeline.log)
        XCTAssertEqual(pipeline.logLines("skipping a certificate", #"key \"orphan\" has no certificate in ConfigMap lb/certificates"#).count, 1,
                       pipeline.log)
        XCTAssertEqual(try supervisor.status()["last_error"], .null)
        XCTAssertEqual(pipeline.get().body, "web-1\n")
    }

    func testNothingIsSentUntilConfigMapConfigHasATemplate() throws {
        let pipeline = try makePipeline()
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.store.putServices([("web", pipeline.webService())])
        try pipeline.putWebPod("web-1", address: "127.0.0.2")
        let supervisor = try pipeline.start()
        XCTAssertTrue(pipeline.waitForLog("error", "no template yet", "ConfigMap lb/config"), pipeline.log)

        try pipeline.store.putConfigMap("config", data: [("templat", Pipeline.routingTemplate)])
        XCTAssertTrue(pipeline.waitForLog("error", "no template", #"object="ConfigMap lb/config""#, "key=template"), pipeline.log)
        // A rendered change would be sent within the reload interval; nothing may be.
        try pipeline.putWebPod("web-1", address: "127.0.0.2", labels: [("app", "web"), ("version", "2")])
        Thread.sleep(forTimeInterval: 0.5)
        let status = try supervisor.status()
        XCTAssertEqual(status["generation"], .integer(0), status.serialized)
        XCTAssertEqual(status["haproxy_pid"], .null)
        XCTAssertNil(pipeline.supervisor?.liveConfig)

        try pipeline.store.putTemplate(Pipeline.routingTemplate)
        XCTAssertTrue(pipeline.waitForBody("web-1"), pipeline.log)
    }

    func testTemplateErrorsAreReportedWithTheirLineAndTheLastGoodConfigStaysLive() throws {
        let pipeline = try startServingWeb()
        let good = pipeline.liveConfig
        let reloads = try XCTUnwrap(pipeline.reloads)
        var lines = Pipeline.routingTemplate.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let frontendLine = try XCTUnwrap(lines.firstIndex(of: "frontend web")) + 1

        // A syntax error: an unclosed block tag, on the line after "frontend web".
        var broken = lines
        broken.insert("{% for x in %}", at: frontendLine)
        try pipeline.store.putTemplate(broken.joined(separator: "\n"))
        XCTAssertTrue(pipeline.waitForLog("error", "template error", #"object="ConfigMap lb/config""#, "key=template", "line=\(frontendLine + 1)"),
                      pipeline.log)

        // A render error: an attribute of an undefined value.
        lines.insert("  # {{ services[0].nosuch.deeper }}", at: frontendLine)
        try pipeline.store.putTemplate(lines.joined(separator: "\n"))
        XCTAssertTrue(pipeline.waitForLog("error", "template error", "key=template", "line=\(frontendLine + 1)", "nosuch"), pipeline.log)
        XCTAssertEqual(pipeline.logLines("template error").count, 2, pipeline.log)

        XCTAssertEqual(pipeline.liveConfig, good)
        XCTAssertEqual(pipeline.reloads, reloads)
        XCTAssertEqual(pipeline.get().body, "web-1\n")

        try pipeline.store.putTemplate(Pipeline.routingTemplate.replacingOccurrences(of: "maxconn 1000", with: "maxconn 900"))
        XCTAssertTrue(pipeline.waitForConfig { $0.contains("maxconn 900") }, pipeline.log)
        XCTAssertEqual(pipeline.get().body, "web-1\n")
    }

    func testConfigHAProxyRejectsIsLoggedAndTheLastGoodConfigStaysLive() throws {
        let pipeline = try startServingWeb()
        let good = pipeline.liveConfig
        let rejected = Pipeline.routingTemplate.replacingOccurrences(of: "frontend web\n", with: "frontend web\n  frobnicate yes\n")
        try pipeline.store.putTemplate(rejected)
        XCTAssertTrue(pipeline.waitForLog("error", "the supervisor rejected the config", "unknown keyword 'frobnicate'"), pipeline.log)
        XCTAssertEqual(pipeline.liveConfig, good)
        XCTAssertEqual(pipeline.get().body, "web-1\n")

        // Still rejected with a new pod: the pod waits for a config HAProxy accepts.
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.logLines("the supervisor rejected the config").count == 2 }, pipeline.log)
        XCTAssertEqual(pipeline.liveConfig, good)

        try pipeline.store.putTemplate(Pipeline.routingTemplate)
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering() == ["web-1", "web-2"] }, pipeline.log)
    }

    func testObjectsThatAreNotValidJSONAreSkippedWithAnError() throws {
        let pipeline = try startServingWeb()
        try pipeline.store.putRaw(pipeline.store.podKey("web", "web-9"), #"{"kind":"Pod","metadata":{"name":"web-9""#)
        try pipeline.store.putRaw(pipeline.store.configMapKey("certificates"), "certificates, but not JSON")
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering() == ["web-1", "web-2"] }, pipeline.log)
        XCTAssertEqual(pipeline.logLines("error", "skipping an object that is not valid", #"object="pod web/web-9""#, "not valid JSON").count, 1,
                       pipeline.log)
        XCTAssertEqual(pipeline.logLines("error", "skipping an object that is not valid", #"object="ConfigMap lb/certificates""#).count, 1,
                       pipeline.log)
        XCTAssertEqual(pipeline.servers(of: "web"), ["web-1", "web-2"])
    }
}
