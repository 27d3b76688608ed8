// Skip only what is broken: a service the template fails on, a service whose config HAProxy
// refuses and a certificate HAProxy cannot load are left out, named, and everything else goes
// live; fixing them brings them back. Real etcd, supervisor, watcher, HAProxy and traffic.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

final class SkipBrokenTests: PipelineTestCase {
    func testOneBadServiceAmongFiftyAndABadCertificateAreSkippedAndTheRestGoesLive() throws {
        let pipeline = try makePipeline()
        try pipeline.backend("web-1", address: "127.0.0.2")
        try pipeline.putWebPod("web-1", address: "127.0.0.2")
        func service(_ name: String, ports: JSONValue?) -> (String, JSONValue) {
            var members: [(String, JSONValue)] = [("namespace", .string("web")), ("selector", .object([("app", .string("web"))])),
                                                  ("hostnames", .array([.string("\(name).example")]))]
            if let ports { members.append(("ports", ports)) }
            return (name, .object(members))
        }
        let good = JSONValue.array([.integer(pipeline.podPort)])
        func services(fixed: Bool) -> [(String, JSONValue)] {
            [("web", pipeline.webService())] + (0..<50).map { number in
                let name = String(format: "svc-%02d", number)
                switch number {
                case 13: return service(name, ports: fixed ? good : .array([.integer(99999)]))  // HAProxy: invalid port
                case 31: return service(name, ports: fixed ? good : nil)  // the template: no attribute 'ports'
                default: return service(name, ports: good)
                }
            }
        }
        try pipeline.store.putServices(services(fixed: false))
        try pipeline.store.putTemplate(Pipeline.routingTemplate)
        let authority = try TestCertificateAuthority(directory: directory)
        let site = try authority.issue("site", commonName: "web.example", subjectAltNames: ["DNS:web.example"])
        let other = try authority.issue("other", commonName: "other.example", subjectAltNames: ["DNS:other.example"])
        let keys = [("site", site.keyPEM), ("other", other.keyPEM), ("broken", other.keyPEM)]
        try pipeline.store.putSecret("keys", data: keys)
        try pipeline.store.putConfigMap("certificates", data: [("site", site.certificatePEM), ("other", other.certificatePEM),
                                                               ("broken", "this is not a certificate\n")])
        let supervisor = try pipeline.start()

        XCTAssertTrue(pipeline.waitForBody("web-1", host: "svc-00.example"), pipeline.log)
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answeringHTTPS(authority: authority) }, pipeline.log)
        let backends = pipeline.liveConfig.split(separator: "\n").filter { $0.hasPrefix("backend ") }
        XCTAssertEqual(backends.count, 49, "web and the 48 good services: \(backends)")
        XCTAssertFalse(backends.contains("backend svc-13") || backends.contains("backend svc-31"), "\(backends)")
        XCTAssertEqual(pipeline.get("svc-49.example").body, "web-1\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: supervisor.sslDirectory).sorted(), ["other.pem", "site.pem"])

        XCTAssertEqual(pipeline.logLines("error", "skipping a service that breaks the config", "key=svc-13", "invalid port").count, 1,
                       pipeline.log)
        XCTAssertEqual(pipeline.logLines("error", "skipping a service that breaks the config", "key=svc-31", "the template fails with it",
                                         "has no attribute 'ports'").count, 1, pipeline.log)
        XCTAssertEqual(pipeline.logLines("error", "skipping a certificate that breaks the config", "key=broken", "broken.pem").count, 1,
                       pipeline.log)
        XCTAssertTrue(waitUntil(timeout: 10) {
            let status = try? supervisor.status()
            return status?["skipped_services"] == .array([.string("svc-13"), .string("svc-31")])
                && status?["skipped_certificates"] == .array([.string("broken")])
        }, (try? supervisor.status().serialized) ?? "")

        // A pod change re-renders: what was skipped stays skipped without a new search or log.
        try pipeline.backend("web-2", address: "127.0.0.3")
        try pipeline.putWebPod("web-2", address: "127.0.0.3")
        XCTAssertTrue(pipeline.waitForConfig { $0.contains("server web-2 ") }, pipeline.log)
        XCTAssertEqual(pipeline.logLines("skipping a service that breaks the config").count, 2, pipeline.log)
        XCTAssertEqual(pipeline.logLines("the supervisor rejected the config").count, 0, "nothing broken reached HAProxy twice: \(pipeline.log)")

        // Fixed, they come back.
        let fixed = try authority.issue("broken", commonName: "broken.example", subjectAltNames: ["DNS:broken.example"])
        try pipeline.store.putSecret("keys", data: keys.dropLast() + [("broken", fixed.keyPEM)])
        try pipeline.store.putConfigMap("certificates", data: [("site", site.certificatePEM), ("other", other.certificatePEM),
                                                               ("broken", fixed.certificatePEM)])
        try pipeline.store.putServices(services(fixed: true))
        XCTAssertTrue(pipeline.waitForBody("web-1", host: "svc-13.example") || pipeline.waitForBody("web-2", host: "svc-13.example"), pipeline.log)
        XCTAssertTrue(pipeline.waitForConfig { $0.contains("backend svc-31") && $0.contains("/broken.pem") }, pipeline.log)
        XCTAssertTrue(waitUntil(timeout: 10) { (try? FileManager.default.contentsOfDirectory(atPath: supervisor.sslDirectory).sorted()) == ["broken.pem", "other.pem", "site.pem"] })
        XCTAssertTrue(pipeline.waitForLog("a skipped service is in the config again", "key=svc-31"), pipeline.log)
        XCTAssertTrue(pipeline.waitForLog("a skipped certificate is in the config again", "key=broken"), pipeline.log)
        XCTAssertTrue(waitUntil(timeout: 10) {
            let status = try? supervisor.status()
            return status?["skipped_services"] == .array([]) && status?["skipped_certificates"] == .array([])
        }, (try? supervisor.status().serialized) ?? "")
    }

    func testATemplateThatFailsWithoutAnyServiceKeepsTheLastGoodConfig() throws {
        let pipeline = try startServingWeb()
        let good = pipeline.liveConfig
        try pipeline.store.putTemplate(Pipeline.routingTemplate + "\n  # {{ nosuch.attribute }}\n")
        XCTAssertTrue(pipeline.waitForLog("error", "template error", "key=template", "nosuch"), pipeline.log)
        XCTAssertEqual(pipeline.logLines("skipping a service").count, 0, pipeline.log)
        XCTAssertEqual(pipeline.liveConfig, good)
        XCTAssertEqual(pipeline.get().body, "web-1\n")
    }
}
