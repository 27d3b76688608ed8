import JSON
import Shared
import XCTest

final class ControlReplyTests: XCTestCase {
    private func decode(_ text: String) throws -> ControlReply { try ControlReply.parse(Array(text.utf8)) }

    func testEachReplyReadsBackAsItWasWritten() throws {
        let replies: [ControlReply] = [
            .applied(AppliedState(changed: true, reloaded: false, runtime: true, generation: 7)),
            .applied(AppliedState(changed: false, reloaded: false, generation: 0)),
            .acknowledged,
            .failed(ControlFailure(.rejected, "haproxy rejected the configuration (exit code 1): [ALERT] unknown keyword")),
            .failed(ControlFailure(.invalidRequest, "request is not valid JSON")),
            .status(SupervisorStatus(pid: 1, haproxyPid: 42, generation: 3, drainingPids: [40, 41], reloads: 2,
                                     lastReload: "2026-12-04T15:00:00Z", lastReloadSeconds: 0.0425, lastError: nil,
                                     configHash: "00ff00ff00ff00ff", watcherPid: 43, watcherRestarts: 1)),
            .status(SupervisorStatus(pid: 9, haproxyPid: nil, generation: 0, drainingPids: [], reloads: 0, lastReload: nil,
                                     lastReloadSeconds: nil, lastError: "no configuration has been applied yet",
                                     configHash: nil, watcherPid: nil, watcherRestarts: 0)),
        ]
        for reply in replies {
            XCTAssertEqual(try decode(reply.json.serialized), reply, reply.json.serialized)
        }
    }

    func testRepliesKeepTheirDocumentedWireShape() {
        XCTAssertEqual(ControlReply.applied(AppliedState(changed: true, reloaded: true, generation: 3)).json.serialized,
                       #"{"ok":true,"changed":true,"reloaded":true,"runtime":false,"generation":3}"#)
        XCTAssertEqual(ControlReply.failed(ControlFailure(.unavailable, "the supervisor is shutting down")).json.serialized,
                       #"{"ok":false,"error":"the supervisor is shutting down","reason":"unavailable"}"#)
        XCTAssertEqual(ControlReply.acknowledged.json.serialized, #"{"ok":true}"#)
    }

    func testAFailureWithoutAKnownReasonIsStillAFailure() throws {
        XCTAssertEqual(try decode(#"{"ok":false,"error":"boom"}"#), .failed(ControlFailure(.internal, "boom")))
        XCTAssertEqual(try decode(#"{"ok":false,"error":"boom","reason":"from the future"}"#), .failed(ControlFailure(.internal, "boom")))
        XCTAssertFalse(try decode(#"{"ok":false,"error":"boom"}"#).isSuccess)
    }

    func testMalformedRepliesNameWhatIsWrong() {
        func message(_ text: String) -> String {
            do {
                _ = try decode(text)
                return "decoded"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(message("not json"), "reply is not valid JSON: Expecting value at line 1 column 1")
        XCTAssertEqual(message(#"{"changed":true}"#), #"reply has no boolean "ok""#)
        XCTAssertEqual(message(#"{"ok":true,"changed":"yes","reloaded":true,"generation":1}"#), #"reply: "changed" must be a boolean"#)
        XCTAssertEqual(message(#"{"ok":true,"changed":true,"reloaded":true}"#), #"reply: "generation" must be an integer"#)
        XCTAssertEqual(message(#"{"ok":true,"pid":1,"generation":0,"draining_pids":["a"],"reloads":0}"#),
                       #"reply: "draining_pids" must be an array of integers"#)
        XCTAssertEqual(message(#"{"ok":false}"#), #"reply: "error" must be a string"#)
    }

    func testAnOlderSupervisorsApplyReplyWithoutRuntimeReadsAsAReload() throws {
        XCTAssertEqual(try decode(#"{"ok":true,"changed":true,"reloaded":true,"generation":2}"#),
                       .applied(AppliedState(changed: true, reloaded: true, runtime: false, generation: 2)))
    }
}
