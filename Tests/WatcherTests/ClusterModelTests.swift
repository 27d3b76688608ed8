// The watcher's cluster model, function by function: Secret values, selectors, readiness, the
// state an etcd event leaves, durations. A failure here names the function at fault.
import IntegrationSupport
import Jinja
import JSON
import Shared
@testable import Watcher
import XCTest

final class ClusterModelTests: XCTestCase {
    func testSecretValuesAreStandardBase64WithOptionalPaddingAndWhitespace() {
        XCTAssertEqual(decodeBase64("a2V5"), Array("key".utf8))
        XCTAssertEqual(decodeBase64("a2V5cw=="), Array("keys".utf8))
        XCTAssertEqual(decodeBase64("a2V5cw"), Array("keys".utf8))
        XCTAssertEqual(decodeBase64("a2V5\ncw==\n"), Array("keys".utf8))
        XCTAssertEqual(decodeBase64(""), [])
        XCTAssertNil(decodeBase64("a2V5c"), "six leftover bits are no byte")
        XCTAssertNil(decodeBase64("a2V5cw==a2"), "nothing after padding")
        XCTAssertNil(decodeBase64("a2V5-w=="), "the URL alphabet is not a Secret's")
    }

    private func pod(_ json: String, name: String = "web-1") throws -> Pod {
        try Pod(key: ObjectKey(kind: .pods, namespace: "web", name: name), json: json)
    }

    private let ready = #""status":{"podIP":"10.1.2.3","containerStatuses":[{"name":"a","ready":true},{"name":"b","ready":true}]}"#

    func testAPodIsABackendOnlyWithAnAddressEveryContainerReadyAndNoDeletion() throws {
        XCTAssertTrue(try pod(#"{"metadata":{"labels":{"app":"web"}},\#(ready)}"#).isBackend)
        XCTAssertFalse(try pod(#"{"metadata":{},"status":{"containerStatuses":[{"ready":true}]}}"#).isBackend, "no podIP")
        XCTAssertFalse(try pod(#"{"metadata":{},"status":{"podIP":"","containerStatuses":[{"ready":true}]}}"#).isBackend, "empty podIP")
        XCTAssertFalse(try pod(#"{"metadata":{},"status":{"podIP":"10.1.2.3","containerStatuses":[]}}"#).isBackend, "no container status yet")
        XCTAssertFalse(try pod(#"{"metadata":{},"status":{"podIP":"10.1.2.3","containerStatuses":[{"ready":true},{"ready":false}]}}"#).isBackend)
        XCTAssertFalse(try pod(#"{"metadata":{"deletionTimestamp":"2026-12-04T00:00:00Z"},\#(ready)}"#).isBackend, "terminating")
        XCTAssertTrue(try pod(#"{"metadata":{"deletionTimestamp":null},\#(ready)}"#).isBackend)
        XCTAssertThrowsError(try pod("[1]")) { error in
            XCTAssertEqual((error as? ObjectProblem)?.description, "pod web/web-1: not a JSON object")
        }
        XCTAssertThrowsError(try pod(#"{"metadata":"#)) { error in
            XCTAssertTrue((error as? ObjectProblem)?.message.hasPrefix("not valid JSON") == true, "\(error)")
        }
    }

    func testASelectorMatchesWhenEveryLabelMatchesInTheServicesNamespace() throws {
        let service = try Service(name: "web", json: #"{"namespace":"web","selector":{"app":"web","tier":"front"}}"#)
        XCTAssertTrue(service.selects(try pod(#"{"metadata":{"labels":{"tier":"front","app":"web","extra":"x"}},\#(ready)}"#), in: "web"))
        XCTAssertFalse(service.selects(try pod(#"{"metadata":{"labels":{"app":"web"}},\#(ready)}"#), in: "web"), "one label missing")
        XCTAssertFalse(service.selects(try pod(#"{"metadata":{"labels":{"app":"web","tier":"back"}},\#(ready)}"#), in: "web"))
        let elsewhere = try Pod(key: ObjectKey(kind: .pods, namespace: "other", name: "web-1"),
                                json: #"{"metadata":{"labels":{"app":"web","tier":"front"}},\#(ready)}"#)
        XCTAssertFalse(service.selects(elsewhere, in: "other"), "another namespace")
        let everything = try Service(name: "all", json: #"{"namespace":"web","selector":{}}"#)
        XCTAssertTrue(everything.selects(try pod(#"{"metadata":{},\#(ready)}"#), in: "web"), "an empty selector selects the namespace")
    }

    func testPackedLabelsCompareAsSwiftStringsDo() throws {
        let long = String(repeating: "v", count: 300)
        // "é" composed in the pod, decomposed in the selector: equal strings, different bytes.
        let labels = PodLabels([("app", "web"), ("tier", "caf\u{E9}"), ("long", long), ("app", "api"), ("", "")])
        XCTAssertTrue(labels.contains(("app", "web")))
        XCTAssertTrue(labels.contains(("app", "api")), "a repeated key keeps each value")
        XCTAssertTrue(labels.contains(("tier", "cafe\u{301}")))
        XCTAssertTrue(labels.contains(("long", long)), "lengths past 127 take two bytes")
        XCTAssertTrue(labels.contains(("", "")))
        XCTAssertFalse(labels.contains(("app", "we")))
        XCTAssertFalse(labels.contains(("tier", "cafe")))
        XCTAssertFalse(labels.contains(("web", "app")))
        var values: [String] = []
        labels.forEachValue(of: "app") { (value: String) in values.append(value) }
        XCTAssertEqual(values, ["web", "api"])
    }

    func testServiceEntriesAreCheckedAndNamed() {
        func problem(_ json: String) -> String {
            do {
                _ = try Service(name: "shop", json: json)
                return "accepted"
            } catch {
                return error.description
            }
        }
        XCTAssertEqual(problem(#"{"selector":{}}"#), #"ConfigMap services, key "shop": needs "namespace", a non-empty string"#)
        XCTAssertEqual(problem(#"{"namespace":"web"}"#), #"ConfigMap services, key "shop": needs "selector", an object of label to value"#)
        XCTAssertEqual(problem(#"{"namespace":"web","selector":{"app":2}}"#),
                       #"ConfigMap services, key "shop": selector values must be strings (label app)"#)
        XCTAssertEqual(problem(#"{"namespace":"web","selector":{}}"#), "accepted")
    }

    private func event(_ action: String, _ key: String, _ value: String?, index: Int) -> EtcdResponse {
        EtcdResponse(etcdIndex: index, action: action,
                     node: EtcdNode(.object([("key", .string(key)), ("value", value.map(JSONValue.string) ?? .null),
                                             ("modifiedIndex", .integer(index))])),
                     previousNode: nil)
    }

    func testWatchEventsChangeTheStateAndSayWhetherARenderIsDue() throws {
        var state = EtcdClusterState(prefix: "/registry", lbNamespace: "lb")
        let services = KubernetesObjects.configMap(name: "services", namespace: "lb",
                                                   data: [("web", #"{"namespace":"web","selector":{"app":"web"}}"#)]).serialized
        state.load(.configmaps, namespace: "lb", nodes: [try XCTUnwrap(event("get", "/registry/configmaps/lb/services", services, index: 5).node)],
                   etcdIndex: 5)
        XCTAssertEqual(state.cluster.namespacesToRead, ["web"])
        state.load(.pods, namespace: "web", nodes: [], etcdIndex: 5)
        XCTAssertEqual(state.cluster.namespacesToRead, [])

        let readyPod = #"{"metadata":{"labels":{"app":"web"}},\#(ready)}"#
        XCTAssertTrue(state.apply(event("set", "/registry/pods/web/web-1", readyPod, index: 6)), "a selected backend appeared")
        XCTAssertFalse(state.apply(event("set", "/registry/pods/web/web-1", readyPod, index: 5)), "at or below the read's index: already in it")
        XCTAssertFalse(state.apply(event("set", "/registry/pods/web/other", #"{"metadata":{"labels":{"app":"db"}},\#(ready)}"#, index: 7)),
                       "a pod no service selects costs no render")
        XCTAssertFalse(state.apply(event("set", "/registry/pods/elsewhere/x", readyPod, index: 8)), "a namespace no service names")
        XCTAssertTrue(state.apply(event("delete", "/registry/pods/web/web-1", nil, index: 9)), "a selected backend went")
        XCTAssertEqual(state.cluster.pods["web"]?.count, 1)
        XCTAssertFalse(state.apply(event("set", "/registry/configmaps/other/config", "{}", index: 10)), "not the lb namespace")
        let config = KubernetesObjects.configMap(name: "config", namespace: "lb", data: [("template", "x")]).serialized
        XCTAssertTrue(state.apply(event("set", "/registry/configmaps/lb/config", config, index: 11)))
        XCTAssertEqual(state.cluster.template, "x")
    }

    func testDurationsAreSecondsOrANumberWithAUnit() {
        XCTAssertEqual(Environment.parseDuration("30"), 30)
        XCTAssertEqual(Environment.parseDuration("1.5s"), 1.5)
        XCTAssertEqual(Environment.parseDuration("250ms"), 0.25)
        XCTAssertEqual(Environment.parseDuration("10m"), 600)
        XCTAssertEqual(Environment.parseDuration("2h"), 7200)
        XCTAssertNil(Environment.parseDuration("-1s"))
        XCTAssertNil(Environment.parseDuration("soon"))
        XCTAssertNil(Environment.parseDuration("inf"))
    }
}
