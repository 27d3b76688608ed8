// The test Kubernetes API server through its Swift wrapper, over HTTPS with a bearer token: the
// objects the end-to-end tests write reach its REST API as they reach etcd, and a client sees
// them in lists and watches.
import Foundation
import IntegrationSupport
import JSON
import Shared
import XCTest

final class KubeAPIServerTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory("kube-haproxy-kubeapi")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func makeServer() throws -> KubeAPIServer {
        try KubeAPIServer(directory: directory, tls: KubeAPIServer.TLS(directory: directory, requireClientCertificates: true),
                          tokens: ["watcher-token"])
    }

    /// curl against the REST API with the server's CA, client certificate and token.
    func get(_ server: KubeAPIServer, _ path: String, extra: [String] = []) throws -> (status: String, body: String) {
        let response = httpGet(server.url + path, extra: server.curlArguments + extra)
        return (response.code, response.body)
    }

    /// The object without what the API server sets itself.
    func withoutServerFields(_ object: JSONValue) -> JSONValue {
        guard case .object(let members) = object else { return object }
        return .object(members.map { key, value in
            guard key == "metadata", case .object(let metadata) = value else { return (key, value) }
            return (key, .object(metadata.filter { !["resourceVersion", "uid", "creationTimestamp", "managedFields"].contains($0.0) }))
        })
    }

    func testObjectsWrittenThroughTheStoreAreListedAndWatchedOverTLSWithAToken() throws {
        let server = try makeServer()
        XCTAssertTrue(server.url.hasPrefix("https://127.0.0.1:"))
        let store: any ClusterObjectStore = KubeAPIStore(server: server)
        try store.putTemplate("global\n")
        let before = try XCTUnwrap(try JSONValue.parse(get(server, "/api/v1/pods").body)["metadata"]?["resourceVersion"]?.stringValue)

        let version = try store.putPod("web-1", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.2")
        let expected = KubernetesObjects.pod(name: "web-1", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.2")
        let stored = try XCTUnwrap(server.objects(resource: "pods").first)
        XCTAssertEqual(withoutServerFields(stored), withoutServerFields(expected), "the pod through the API is the pod etcd gets")
        XCTAssertEqual(stored["metadata"]?["resourceVersion"]?.stringValue, String(version))

        let list = try get(server, "/api/v1/pods?labelSelector=app%3Dweb")
        XCTAssertEqual(list.status, "200")
        let listed = try JSONValue.parse(list.body)
        XCTAssertEqual(listed["kind"]?.stringValue, "PodList")
        guard case .array(let items)? = listed["items"] else { return XCTFail("no items in \(list.body)") }
        XCTAssertEqual(items.map { $0["metadata"]?["name"]?.stringValue }, ["web-1"])
        XCTAssertNil(items.first?["kind"], "list items carry no kind")

        let watch = try get(server, "/api/v1/namespaces/web/pods?watch=1&resourceVersion=\(before)&timeoutSeconds=1")
        XCTAssertEqual(watch.status, "200")
        let lines = watch.body.split(separator: "\n").map { try? JSONValue.parse(String($0)) }
        XCTAssertEqual(lines.map { $0?["type"]?.stringValue }, ["ADDED"])
        XCTAssertEqual(lines.first??["object"]?["metadata"]?["resourceVersion"]?.stringValue, String(version))

        try store.deletePod("web-1", namespace: "web")
        XCTAssertEqual(try server.objects(resource: "pods"), [])
        XCTAssertEqual(try server.objects(resource: "configmaps").map { $0["metadata"]?["name"]?.stringValue }, ["config"])
        XCTAssertEqual(try server.requests().filter { $0.path == "/api/v1/pods" }.map(\.token), ["watcher-token", "watcher-token"])
    }

    func testATerminatingPodIsAGracefulDeleteThroughTheAPI() throws {
        let server = try makeServer()
        let store = KubeAPIStore(server: server)
        let created = try store.putPod("web-1", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.2")
        let terminating = try store.putPod("web-1", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.2", terminating: true)
        XCTAssertGreaterThan(terminating, created)
        let pod = try XCTUnwrap(server.objects(resource: "pods").first)
        XCTAssertNotNil(pod["metadata"]?["deletionTimestamp"])
        XCTAssertEqual(pod["metadata"]?["deletionGracePeriodSeconds"], .integer(30))
    }

    func testRequestsWithoutTheTokenOrAfterItsRotationAreUnauthorized() throws {
        let server = try makeServer()
        XCTAssertEqual(httpGet(server.url + "/api/v1/pods", extra: ["--cacert", server.tls?.certificates.authority.certificateFile ?? "",
                                                                    "--cert", server.tls?.certificates.client.certificateFile ?? "",
                                                                    "--key", server.tls?.certificates.client.keyFile ?? ""]).code, "401")
        try server.setTokens(["rotated-token"])
        let refused = try get(server, "/api/v1/pods")
        XCTAssertEqual(refused.status, "401")
        XCTAssertEqual(try JSONValue.parse(refused.body)["reason"]?.stringValue, "Unauthorized")
        server.token = "rotated-token"
        XCTAssertEqual(try get(server, "/api/v1/pods").status, "200")
    }

    func testAdminCallsExpireWatchesSendBookmarksAndInjectFailures() throws {
        let server = try makeServer()
        let store = KubeAPIStore(server: server)
        let first = try store.putPod("web-1", namespace: "web", labels: [("app", "web")], podIP: "127.0.0.2")
        try server.compact()
        func events(_ query: String) throws -> [String?] {
            try get(server, "/api/v1/namespaces/web/pods?watch=1&timeoutSeconds=1&" + query).body
                .split(separator: "\n").map { try? JSONValue.parse(String($0)) }.map { $0?["type"]?.stringValue }
        }
        XCTAssertEqual(try events("resourceVersion=\(first)"), ["ERROR"])
        try server.setWatch410Mode(.http)
        XCTAssertEqual(try get(server, "/api/v1/namespaces/web/pods?watch=1&resourceVersion=\(first)").status, "410")
        try server.setBookmarkInterval(seconds: 0.3)
        let current = try XCTUnwrap(try JSONValue.parse(get(server, "/api/v1/pods").body)["metadata"]?["resourceVersion"]?.stringValue)
        XCTAssertEqual(try events("resourceVersion=\(current)&allowWatchBookmarks=true").first, "BOOKMARK")
        try server.failNext(code: 503)
        XCTAssertEqual(try get(server, "/api/v1/pods").status, "503")
        XCTAssertEqual(try get(server, "/api/v1/pods").status, "200")
        try server.clearRequests()
        XCTAssertEqual(try server.requests(), [])
        XCTAssertTrue(waitUntil(timeout: 5) { (try? server.watches()) == [] }, "ended watches are no longer open")
    }

    func testForbiddenAndDownAreAnsweredAsTheRealServerWould() throws {
        let server = try makeServer()
        try server.forbid(verb: "watch", resource: "pods", namespace: "web")
        let forbidden = try get(server, "/api/v1/namespaces/web/pods?watch=1")
        XCTAssertEqual(forbidden.status, "403")
        XCTAssertEqual(try JSONValue.parse(forbidden.body)["message"]?.stringValue,
                       "pods is forbidden: User \"system:serviceaccount:lb:kube-haproxy\" cannot watch resource \"pods\" in API group \"\" in the namespace \"web\"")
        try server.allowAll()
        try server.down(seconds: 1)
        XCTAssertEqual(try get(server, "/healthz").status, "000", "nothing listens while down")
        XCTAssertTrue(waitUntil(timeout: 10, interval: 0.1) { (try? get(server, "/healthz").status) == "200" })
    }
}
