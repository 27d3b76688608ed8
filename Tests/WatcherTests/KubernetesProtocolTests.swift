// The Kubernetes API's wire format as the watcher reads it: watch streams cut into arbitrary
// chunks, watch events, Status objects (410 above all), list items made to look as kubectl shows
// them, and how the source is chosen from the environment.
@testable import Watcher
import Foundation
import JSON
import Shared
import XCTest

final class WatchProtocolTests: XCTestCase {
    static let events = [
        #"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"web","resourceVersion":"11"}}}"#,
        #"{"type":"MODIFIED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"web","resourceVersion":"12"},"status":{"podIP":"10.0.0.1"}}}"#,
        #"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"15"}}}"#,
        #"{"type":"DELETED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"web","resourceVersion":"16"}}}"#,
        #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 16 (20)","reason":"Expired","code":410}}"#,
    ]

    func testLinesSplitAcrossChunksAtEveryPossiblePlaceComeOutWhole() throws {
        let stream = Array(WatchProtocolTests.events.joined(separator: "\n").utf8) + [UInt8(ascii: "\n")]
        for chunkSize in [1, 2, 3, 7, 64, 100, 1000, stream.count] {
            var splitter = LineSplitter()
            var lines: [String] = []
            var start = 0
            while start < stream.count {
                let chunk = Array(stream[start..<min(stream.count, start + chunkSize)])
                lines += try splitter.feed(chunk).map { String(decoding: $0, as: UTF8.self) }
                start += chunkSize
            }
            XCTAssertNil(splitter.finish())
            XCTAssertEqual(lines, WatchProtocolTests.events, "chunks of \(chunkSize) bytes")
        }
    }

    func testSeveralEventsInOneChunkAndALastLineWithoutNewline() throws {
        var splitter = LineSplitter()
        let lines = try splitter.feed(Array("first\n\nsecond\r\nthi".utf8))
        XCTAssertEqual(lines.map { String(decoding: $0, as: UTF8.self) }, ["first", "second\r"], "empty lines are skipped")
        XCTAssertEqual(try splitter.feed(Array("rd".utf8)), [])
        XCTAssertEqual(splitter.finish().map { String(decoding: $0, as: UTF8.self) }, "third")
        XCTAssertNil(splitter.finish())
    }

    func testALineLongerThanTheLimitIsAnError() throws {
        var splitter = LineSplitter(maximumLineLength: 10)
        XCTAssertEqual(try splitter.feed(Array("0123456789\n".utf8)).count, 1)
        XCTAssertThrowsError(try splitter.feed(Array("0123456789ab".utf8)))
    }

    func testWatchEventsAreReadWithTheirResourceVersions() throws {
        let parsed = try WatchProtocolTests.events.map { try WatchEvent.parse(Array($0.utf8), kind: .pods) }
        guard case .object(let name, let object?, let version) = parsed[0] else { return XCTFail("\(parsed[0])") }
        XCTAssertEqual(name, "web-1")
        XCTAssertEqual(version, "11")
        XCTAssertEqual(try JSONValue.parse(object)["metadata"]?["namespace"]?.stringValue, "web")
        guard case .object(_, let modified?, "12") = parsed[1] else { return XCTFail("\(parsed[1])") }
        XCTAssertEqual(try JSONValue.parse(modified)["status"]?["podIP"]?.stringValue, "10.0.0.1")
        XCTAssertEqual(parsed[2], .bookmark(resourceVersion: "15"))
        XCTAssertEqual(parsed[3], .object(name: "web-1", json: nil, resourceVersion: "16"), "a deletion carries no object")
        XCTAssertEqual(parsed[4], .error(APIStatus(code: 410, reason: "Expired", message: "too old resource version: 16 (20)")))
        if case .error(let status) = parsed[4] { XCTAssertTrue(status.isExpired) }
    }

    func testMalformedWatchEventsAreErrorsNamingWhatIsWrong() {
        let cases = [("not json", "not JSON"), (#"{"object":{}}"#, "without type"), (#"{"type":"ADDED","object":{"metadata":{}}}"#, "no metadata.name"),
                     (#"{"type":"RENAMED","object":{"metadata":{"name":"x"}}}"#, "unknown type RENAMED")]
        for (line, expected) in cases {
            XCTAssertThrowsError(try WatchEvent.parse(Array(line.utf8), kind: .pods), line) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(line): \(error)")
            }
        }
    }

    func testStatusOfAnHTTPErrorIsReadFromItsBodyOrMadeFromTheCode() {
        let gone = APIStatus(httpStatus: 410, body: Array(#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The provided continue parameter is too old","reason":"Expired","code":410}"#.utf8))
        XCTAssertEqual(gone, APIStatus(code: 410, reason: "Expired", message: "The provided continue parameter is too old"))
        XCTAssertTrue(gone.isExpired)
        let forbidden = APIStatus(httpStatus: 403, body: Array(#"{"kind":"Status","message":"pods is forbidden","reason":"Forbidden","code":403}"#.utf8))
        XCTAssertEqual(forbidden.code, 403)
        XCTAssertFalse(forbidden.isExpired)
        let proxy = APIStatus(httpStatus: 502, body: Array("<html>Bad Gateway</html>\n".utf8))
        XCTAssertEqual(proxy, APIStatus(code: 502, reason: "", message: "<html>Bad Gateway</html>"))
        XCTAssertTrue(APIStatus(httpStatus: 410, body: []).isExpired, "a bare 410 is expiry too")
    }

    /// The object a MODIFIED event of a watch on `kind` hands to the model.
    private func watched(_ object: String, kind: ObjectKind) throws -> String? {
        guard case .object(_, let json, _) = try WatchEvent.parse(Array(#"{"type":"MODIFIED","object":\#(object)}"#.utf8), kind: kind) else {
            return nil
        }
        return json
    }

    func testObjectsLookAsKubectlShowsThemKindAndAPIVersionFirstAndNoManagedFields() throws {
        XCTAssertEqual(try watched(#"{"metadata":{"name":"web-1"},"spec":{},"status":{"podIP":"10.0.0.1"}}"#, kind: .pods),
                       #"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1"},"spec":{},"status":{"podIP":"10.0.0.1"}}"#)
        let shown = #"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"config"},"data":{}}"#
        XCTAssertEqual(try watched(shown, kind: .configmaps), shown)
        XCTAssertEqual(try watched(#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","managedFields":[{"manager":"kubelet"}],"uid":"u"}}"#,
                                   kind: .pods),
                       #"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","uid":"u"}}"#, "managedFields hidden, as kubectl hides them")
        XCTAssertEqual(try watched(#"{"metadata":{"name":"keys"},"kind":"Secret","apiVersion":"v1","data":{}}"#, kind: .secrets),
                       #"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"keys"},"data":{}}"#)
    }

    /// The object as kubectl shows it, made from a tree of values: the reference the text cut
    /// from a list page is held to.
    private static func kubectlShapeOfTree(_ object: JSONValue, kind: ObjectKind) -> JSONValue {
        guard case .object(var members) = object else { return object }
        if let index = members.firstIndex(where: { $0.0 == "metadata" }), case .object(let metadata) = members[index].1,
           metadata.contains(where: { $0.0 == "managedFields" }) {
            members[index].1 = .object(metadata.filter { $0.0 != "managedFields" })
        }
        if members.count >= 2, members[0].0 == "kind", members[1].0 == "apiVersion" { return .object(members) }
        return .object([("kind", .string(kind.kindName)), ("apiVersion", .string("v1"))]
            + members.filter { $0.0 != "kind" && $0.0 != "apiVersion" })
    }

    func testAListPagesItemsAreCutFromItsTextAsKubectlShowsThem() throws {
        // Spacing as a pretty printer writes it, escapes, a large object (past the container-end
        // table's threshold), items in every order the object shapes allow.
        let big = String(repeating: "x", count: 400)
        let page = """
            {
              "kind": "PodList", "apiVersion": "v1",
              "metadata": {"resourceVersion": "42", "continue": "next-page"},
              "items": [
                {"metadata": {"name": "web-1", "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}], "uid": "u1"},
                 "spec": {"note": "a \\"quoted\\" \\u00e9 \(big)"}, "status": {"podIP": "10.0.0.1"}},
                {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web-2"}, "status": {}},
                {"metadata": {"managedFields": [], "name": "web-3"}, "kind": "Pod", "data": [1, 2.5, true, null]},
                {"metadata": {"uid": "nameless"}},
                "not an object"
              ]
            }
            """
        let read = try ListPage(Array(page.utf8), kind: .pods)
        XCTAssertEqual(read.items.map(\.name), ["web-1", "web-2", "web-3"])
        XCTAssertEqual(read.metadata?["resourceVersion"], .string("42"))
        XCTAssertEqual(read.metadata?["continue"], .string("next-page"))
        // The same objects as the tree path makes them, member for member.
        guard case .array(let items)? = try JSONValue.parse(page)["items"] else { return XCTFail("no items") }
        for (listed, item) in zip(read.items, items) {
            XCTAssertEqual(try JSONValue.parse(listed.json), WatchProtocolTests.kubectlShapeOfTree(item, kind: .pods), listed.json)
        }
        XCTAssertTrue(read.items[0].json.hasPrefix(#"{"kind":"Pod","apiVersion":"v1","metadata":{"name": "web-1","uid": "u1"}"#),
                      read.items[0].json)
        XCTAssertEqual(try ListPage(Array(#"{"kind":"PodList","metadata":{"resourceVersion":"7"},"items":[]}"#.utf8), kind: .pods).items.count, 0)
        XCTAssertThrowsError(try ListPage(Array(#"{"items":[{"metadata":"#.utf8), kind: .pods))
        XCTAssertThrowsError(try ListPage(Array(#"{"items":{}}"#.utf8), kind: .pods))
    }

    func testTheSameProblemAlwaysNamesTheSameEventAndOthersAnother() {
        let object = ObjectKey(kind: .configmaps, namespace: "lb", name: "config")
        let problem = ClusterProblem(object: object, reason: "TemplateError", message: "template error: line 3: unexpected '}'")
        let name = EventSender.eventName(problem)
        // The name earlier releases gave this problem: an upgraded watcher counts on its Event.
        XCTAssertEqual(name, "config.kube-haproxy.da8ae21393884c24")
        XCTAssertTrue(name.hasPrefix("config.kube-haproxy."), name)
        XCTAssertTrue(name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "." || $0 == "-" }, "a DNS subdomain: \(name)")
        var other = problem
        other.message = "template error: line 4: unexpected '}'"
        XCTAssertNotEqual(EventSender.eventName(other), name)
    }

    // MARK: Settings

    func testSourceIsEtcd2WithETCD2BASEElseKubernetesWithAnAPIServerElseAnErrorNamingBoth() throws {
        XCTAssertEqual(try WatcherSettings.sourceKind(Environment(["ETCD2BASE": "http://127.0.0.1:2379", "KUBERNETES_SERVICE_HOST": "10.96.0.1"])), .etcd2)
        XCTAssertEqual(try WatcherSettings.sourceKind(Environment(["KUBERNETES_SERVICE_HOST": "10.96.0.1"])), .kubernetes)
        XCTAssertEqual(try WatcherSettings.sourceKind(Environment(["KUBE_HAPROXY_API_SERVER": "http://127.0.0.1:8001"])), .kubernetes)
        XCTAssertEqual(try WatcherSettings.sourceKind(Environment(["KUBE_HAPROXY_SOURCE": "kubernetes", "ETCD2BASE": "http://e:2379"])), .kubernetes)
        XCTAssertThrowsError(try WatcherSettings.sourceKind(Environment([:]))) { error in
            XCTAssertTrue("\(error)".contains("ETCD2BASE") && "\(error)".contains("KUBE_HAPROXY_API_SERVER"), "\(error)")
        }
        XCTAssertThrowsError(try WatcherSettings.sourceKind(Environment(["KUBE_HAPROXY_SOURCE": "etcd3"]))) { error in
            XCTAssertTrue("\(error)".contains("KUBE_HAPROXY_SOURCE=\"etcd3\""), "\(error)")
        }
    }

    func testInAPodTheAPIServerTokenAndCAComeFromTheServiceAccount() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokenFile = directory + "/token"
        XCTAssertTrue(FileManager.default.createFile(atPath: tokenFile, contents: Data("abc\n".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/ca.crt", contents: Data("-----BEGIN CERTIFICATE-----\n".utf8)))
        let inPod = try WatcherSettings.kubernetesSettings(Environment(["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "6443",
                                                                        "KUBE_HAPROXY_API_TOKEN_FILE": tokenFile]))
        XCTAssertEqual(inPod.server, "https://10.96.0.1:6443")
        XCTAssertEqual(inPod.tls.caFile, directory + "/ca.crt", "the CA beside the token")
        XCTAssertEqual(BearerToken(path: inPod.tokenFile).current, "abc")
        let ipv6 = try WatcherSettings.kubernetesSettings(Environment(["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBE_HAPROXY_API_TOKEN_FILE": directory + "/elsewhere/token"]))
        XCTAssertEqual(ipv6.server, "https://[fd00::1]:443")
        XCTAssertNil(ipv6.tls.caFile, "no CA file beside it: the system CAs")
        XCTAssertNil(BearerToken(path: ipv6.tokenFile).current, "an absent token file: no token")
        let proxy = try WatcherSettings.kubernetesSettings(Environment(["KUBE_HAPROXY_API_SERVER": "http://127.0.0.1:8001/",
                                                                        "KUBERNETES_SERVICE_HOST": "10.96.0.1"]))
        XCTAssertEqual(proxy.server, "http://127.0.0.1:8001")
        XCTAssertThrowsError(try WatcherSettings.kubernetesSettings(Environment(["KUBE_HAPROXY_API_SERVER": "127.0.0.1:8001"])))
        XCTAssertThrowsError(try WatcherSettings.kubernetesSettings(Environment(["KUBE_HAPROXY_API_SERVER": "http://a", "KUBE_HAPROXY_API_CERT_FILE": tokenFile]))) { error in
            XCTAssertTrue("\(error)".contains("KUBE_HAPROXY_API_KEY_FILE"), "\(error)")
        }
    }

    func makeDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "/kube-protocol-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
