// The templates of examples/ (the seed's, updated for HAProxy 2.6), read out of their ConfigMap
// YAML and pushed through etcd → watcher → supervisor → HAProxy, with examples/services.yaml's
// services (their ports replaced by the test backends' port) and traffic through HAProxy.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

final class ExampleTests: PipelineTestCase {
    static let examples = TestPaths.packageRoot + "/examples"

    /// The pods of services.yaml's services: name, namespace, labels, address.
    static let pods: [(name: String, namespace: String, labels: [(String, String)], address: String)] = [
        ("www-1", "web", [("app", "www")], "127.0.0.2"),
        ("api-1", "api", [("app", "api"), ("tier", "backend")], "127.0.0.3"),
        ("docs-1", "docs", [("app", "docs")], "127.0.0.4"),
    ]

    var statsPort = 0

    /// Starts the pipeline with examples/<file>'s ConfigMap, services.yaml and one pod a service.
    /// `prepare` returns environment variables for the template (it may start backends).
    private func startExample(_ file: String, certificate: TestCertificateAuthority.Issued? = nil,
                              prepare: (Pipeline) throws -> [String: String] = { _ in [:] }) throws -> Pipeline {
        let pipeline = try makePipeline()
        let environment = try prepare(pipeline)
        let config = try ConfigMapYAML(path: "\(ExampleTests.examples)/\(file)")
        XCTAssertEqual(config.name, "config")
        XCTAssertEqual(config.namespace, "lb")
        let template = try XCTUnwrap(config["template"], "\(file) has no template")
        XCTAssertFalse(template.contains("reqadd"), "reqadd was removed in HAProxy 2.1")
        XCTAssertTrue(template.contains("option idle-close-on-response"))
        try pipeline.store.putConfigMap(config.name, data: config.data, namespace: config.namespace)

        let services = try ConfigMapYAML(path: "\(ExampleTests.examples)/services.yaml")
        XCTAssertEqual(services.name, "services")
        var objects: [(String, JSONValue)] = []
        for (name, json) in services.data {
            guard case .object(let members) = try JSONValue.parse(json) else {
                throw ConfigMapYAML.ParseError(description: "services.yaml: \(name) is not a JSON object")
            }
            objects.append((name, .object(members.map { $0.0 == "ports" ? ("ports", .array([.integer(pipeline.podPort)])) : $0 })))
        }
        try pipeline.store.putServices(objects)
        for pod in ExampleTests.pods {
            try pipeline.backend(pod.name, address: pod.address)
            try pipeline.store.putPod(pod.name, namespace: pod.namespace, labels: pod.labels, podIP: pod.address)
        }
        if let certificate {
            try pipeline.store.putConfigMap("certificates", data: [("example", certificate.certificatePEM)])
            try pipeline.store.putSecret("keys", data: [("example", certificate.keyPEM)])
        }
        statsPort = try freePort()
        var variables = ["LISTEN_ADDRESS": "127.0.0.1", "STATS_PORT": String(statsPort)]
        for (key, value) in environment { variables[key] = value }
        try pipeline.start(environment: variables)
        XCTAssertTrue(pipeline.waitForBody("www-1", host: "www.example.com"), pipeline.log)
        XCTAssertEqual(try pipeline.supervisor?.status()["last_error"], .null)
        XCTAssertEqual(pipeline.logLines("[ALERT]"), [])
        return pipeline
    }

    private func https(_ pipeline: Pipeline, _ host: String, path: String = "/", authority: TestCertificateAuthority,
                       headers: [String] = [], extra: [String] = []) -> (code: String, body: String) {
        httpGet("https://\(host):\(pipeline.httpsPort)\(path)", headers: headers,
                extra: extra + ["--cacert", authority.certificateFile, "--resolve", "\(host):\(pipeline.httpsPort):127.0.0.1"], timeout: 5)
    }

    private func exampleCertificate() throws -> (TestCertificateAuthority, TestCertificateAuthority.Issued) {
        let authority = try TestCertificateAuthority(directory: directory)
        let names = ["www.example.com", "example.com", "api.example.com", "docs.example.org"]
        return (authority, try authority.issue("example", commonName: "www.example.com", subjectAltNames: names.map { "DNS:" + $0 }))
    }

    func testBasicExampleRoutesByHostAndPathAndServesStatistics() throws {
        let pipeline = try startExample("basic.yaml")
        XCTAssertEqual(pipeline.get("example.com").body, "www-1\n")
        XCTAssertEqual(pipeline.get("www.example.com:\(pipeline.httpPort)").body, "www-1\n", "the Host rule with the port from HTTP_PORT")
        XCTAssertEqual(pipeline.get("api.example.com", path: "/v1/users").body, "api-1\n")
        XCTAssertEqual(pipeline.get("api.example.com", path: "/other").code, "503", "api is routed only under its path")
        XCTAssertEqual(pipeline.get("docs.example.org").body, "docs-1\n", "a ^hostname is a regular expression")
        XCTAssertEqual(pipeline.get("docs.example.com").body, "docs-1\n")
        XCTAssertEqual(pipeline.get("unknown.example").code, "503")
        XCTAssertTrue(pipeline.liveConfig.contains("server WWW_1_1 127.0.0.2:\(pipeline.podPort) check"), pipeline.liveConfig)

        let statistics = httpGet("http://127.0.0.1:\(statsPort)/", extra: ["-u", "stats:test-statistics-password"])
        XCTAssertEqual(statistics.code, "200")
        XCTAssertTrue(statistics.body.contains("SERVICE_WWW"), "the statistics page lists the backends")
        XCTAssertEqual(httpGet("http://127.0.0.1:\(statsPort)/", extra: ["-u", "stats:wrong"]).code, "401")

        // A second pod of www joins the rotation.
        try pipeline.backend("www-2", address: "127.0.0.5")
        try pipeline.store.putPod("www-2", namespace: "web", labels: [("app", "www")], podIP: "127.0.0.5")
        XCTAssertTrue(waitUntil(timeout: 10) { pipeline.answering("www.example.com") == ["www-1", "www-2"] }, pipeline.log)
    }

    func testSSLExampleServesHTTPSWithTheCertificateAndForwardedProto() throws {
        let (authority, certificate) = try exampleCertificate()
        let pipeline = try startExample("ssl.yaml", certificate: certificate)
        let secure = https(pipeline, "www.example.com", path: "/headers", authority: authority)
        XCTAssertEqual(secure.code, "200", secure.body)
        XCTAssertTrue(secure.body.hasPrefix("www-1\n"), secure.body)
        XCTAssertTrue(secure.body.contains("x-forwarded-proto: https\n"), secure.body)
        XCTAssertTrue(secure.body.contains("x-forwarded-for: 127.0.0.1\n"), secure.body)
        XCTAssertFalse(pipeline.get("www.example.com", path: "/headers").body.contains("x-forwarded-proto"))
        XCTAssertEqual(https(pipeline, "api.example.com", path: "/v1/", authority: authority).body, "api-1\n")
        XCTAssertEqual(https(pipeline, "docs.example.org", authority: authority).code, "503", "docs has no \"ssl\": HTTP only")
        XCTAssertEqual(pipeline.get("docs.example.org").body, "docs-1\n")
        let supervisor = try XCTUnwrap(pipeline.supervisor)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: supervisor.sslDirectory), ["example.pem"])
    }

    func testVarnishExampleSendsGETRequestsThroughVarnishAndVarnishsOwnToThePods() throws {
        let (authority, certificate) = try exampleCertificate()
        let pipeline = try startExample("varnish.yaml", certificate: certificate) { pipeline in
            // A stand-in for Varnish that answers with its name.
            try pipeline.backend("varnish", address: "127.0.0.6")
            return ["VARNISH_ADDR": "127.0.0.6", "VARNISH_PORT": String(pipeline.podPort), "VARNISH_SECRET": "s3cret"]
        }
        XCTAssertEqual(https(pipeline, "www.example.com", authority: authority).body, "varnish\n", "a GET goes through Varnish")
        XCTAssertEqual(https(pipeline, "www.example.com", authority: authority, headers: ["X-From-Varnish: s3cret"]).body, "www-1\n",
                       "Varnish's own fetch goes to the pods")
        XCTAssertEqual(https(pipeline, "www.example.com", authority: authority, headers: ["X-From-Varnish: guess"]).body, "varnish\n")
        XCTAssertEqual(https(pipeline, "www.example.com", authority: authority, extra: ["-X", "POST", "-d", "x"]).body, "www-1\n",
                       "only GET requests are cached")
        XCTAssertEqual(https(pipeline, "api.example.com", path: "/v1/", authority: authority).body, "api-1\n", "api has no \"varnish\"")
        XCTAssertEqual(pipeline.get("www.example.com").body, "www-1\n", "plain HTTP does not go through Varnish")
        XCTAssertTrue(pipeline.liveConfig.contains("server VARNISH 127.0.0.6:\(pipeline.podPort)"), pipeline.liveConfig)
    }

    func testExamplesWithTheirDefaultPortsAndAddressesAreConfigsHAProxyAccepts() throws {
        // Rendered with an empty environment (ports 80, 443, 1936 on every address), checked with
        // `haproxy -c` (which binds nothing), so the defaults work for a container run as root.
        let (_, certificate) = try exampleCertificate()
        let ssldir = directory + "/ssl"
        try FileManager.default.createDirectory(atPath: ssldir, withIntermediateDirectories: true)
        try (certificate.keyPEM + certificate.certificatePEM).write(toFile: ssldir + "/example.pem", atomically: true, encoding: .utf8)
        let services = try ConfigMapYAML(path: "\(ExampleTests.examples)/services.yaml")
        var serviceValues: [JSONValue] = []
        for (name, json) in services.data.sorted(by: { $0.0 < $1.0 }) {
            guard case .object(let members) = try JSONValue.parse(json) else { return XCTFail("\(name) is not an object") }
            let pod = ExampleTests.pods.first { $0.name.hasPrefix(name) }
            let pods: JSONValue = pod.map { .object([($0.name, KubernetesObjects.pod(name: $0.name, namespace: $0.namespace, labels: $0.labels,
                                                                                    podIP: $0.address))]) } ?? .object([])
            serviceValues.append(.object(members + [("name", .string(name)), ("pods", pods)]))
        }
        let context: JSONValue = .object([
            ("services", .array(serviceValues)), ("certificates", .array([.string("example")])), ("ssldir", .string(ssldir)),
            ("stats", .object([("username", .string("stats")), ("password", .string("secret"))])),
            ("env", .object([("VARNISH_ADDR", .string("127.0.0.6")), ("VARNISH_SECRET", .string("s3cret"))])),
        ])
        try context.serialized.write(toFile: directory + "/context.json", atomically: true, encoding: .utf8)
        for file in ["basic.yaml", "ssl.yaml", "varnish.yaml"] {
            let template = try XCTUnwrap(ConfigMapYAML(path: "\(ExampleTests.examples)/\(file)")["template"])
            try template.write(toFile: directory + "/template.j2", atomically: true, encoding: .utf8)
            let rendered = try runCommand(TestPaths.watcher, ["render", "--template", directory + "/template.j2", "--context", directory + "/context.json"])
            XCTAssertEqual(rendered.status, 0, "\(file): \(rendered.stderr)")
            XCTAssertTrue(rendered.stdout.contains("bind :::80 v4v6"), "\(file):\n\(rendered.stdout)")
            XCTAssertEqual(file != "basic.yaml", rendered.stdout.contains("bind :::443 v4v6 ssl crt \(ssldir)/example.pem"), file)
            try (rendered.stdout.hasSuffix("\n") ? rendered.stdout : rendered.stdout + "\n").write(toFile: directory + "/haproxy.cfg", atomically: true, encoding: .utf8)
            let check = try runCommand("/usr/sbin/haproxy", ["-c", "-f", directory + "/haproxy.cfg"])
            XCTAssertEqual(check.status, 0, "\(file): \(check.stdout)\(check.stderr)")
        }
    }
}
