// Reading `show servers state` and comparing it with what a config declares.
import Foundation
import HAProxyConfig
import XCTest

final class ServersStateTests: XCTestCase {
    /// Captured from HAProxy 2.6: pod0 forced into maintenance from the CLI, pod1 `disabled` in
    /// the config, pod2 a host name, pod3 added with `add server` and not yet made ready.
    private func fixture() throws -> [ServerState] {
        let path = (#filePath as NSString).deletingLastPathComponent + "/Fixtures/servers-state.txt"
        return try ServersState.parse(String(contentsOfFile: path, encoding: .utf8))
    }

    private func expected(_ text: String) -> [ExpectedServer] {
        ConfigFile(config(servers: text.split(separator: "\n").map(String.init))).servers(in: 3).map { ExpectedServer($0) }
    }

    func testReadsTheDumpOfHAProxy26() throws {
        let states = try fixture()
        XCTAssertEqual(states.map(\.name), ["pod0", "pod1", "pod2", "pod3"])
        XCTAssertEqual(states.map(\.backend), ["pods", "pods", "pods", "pods"])
        XCTAssertEqual(states.map(\.address), ["127.0.0.2", "::1", "127.0.0.1", "127.0.0.4"])
        XCTAssertEqual(states.map(\.port), [18081, 18082, 18083, 18084])
        XCTAssertEqual(states.map(\.weight), [3, 1, 1, 1])
        XCTAssertEqual(states.map(\.inMaintenance), [true, true, false, true])
    }

    func testAgreementNeedsNamesAddressesPortsWeightsMaintenanceAndHealthChecks() throws {
        let states = try fixture()
        let declared = expected("""
            server pod0 127.0.0.2:18081 weight 3 disabled
            server pod1 [0::1]:18082 disabled
            server pod2 localhost:18083
            server pod3 127.0.0.4:18084 disabled
            """)
        XCTAssertEqual(ServersState.mismatches(backend: "pods", expected: declared, actual: states), [])

        let other = expected("""
            server pod0 127.0.0.2:18081 weight 4
            server pod1 [::2]:18082 disabled
            server pod2 localhost:18083 check
            server pod3 127.0.0.4:18085 disabled
            server pod4 127.0.0.5:80
            """)
        XCTAssertEqual(ServersState.mismatches(backend: "pods", expected: other, actual: states), [
            "pods/pod0 has weight 3, not 4", "pods/pod0 is in maintenance",
            "pods/pod1 has address ::1:18082, not [::2]:18082",
            "pods/pod2 has health checks off, not on",
            "pods/pod3 has address 127.0.0.4:18084, not 127.0.0.4:18085",
            "pods/pod4 is missing",
        ])
    }

    func testARemovedServerMayBeGoneOrInMaintenance() throws {
        let states = try fixture()
        let file = ConfigFile(config(servers: ["server pod1 [::1]:18082 disabled", "server pod2 localhost:18083"]))
        let before = ConfigFile(config(servers: ["server pod0 127.0.0.2:18081 weight 3", "server pod1 [::1]:18082 disabled",
                                                 "server pod2 localhost:18083", "server pod3 127.0.0.4:18084", "server pod9 127.0.0.9:80"]))
        guard case .runtime(let plan) = RuntimePlanner.plan(from: before, to: file) else { return XCTFail() }
        XCTAssertEqual(ServersState.mismatches(backend: "pods", expected: plan.updates[0].expected, actual: states), [])
        let readied = states.map { state -> ServerState in
            var copy = state
            if copy.name == "pod3" { copy.adminState = 0 }
            return copy
        }
        XCTAssertEqual(ServersState.mismatches(backend: "pods", expected: plan.updates[0].expected, actual: readied),
                       ["pods/pod3 is removed but not in maintenance"])
    }

    func testAnAnswerThatIsNotADumpIsAnError() {
        XCTAssertThrowsError(try ServersState.parse("Can't find backend.\n"))
        XCTAssertThrowsError(try ServersState.parse("1\n# be_id be_name\n"))
    }
}

final class AdminAnswerTests: XCTestCase {
    // The answers below are HAProxy 2.6's, as its admin socket gave them.
    func testEachCommandIsJudgedByItsOwnAnswer() {
        XCTAssertNil(AdminAnswer.failure(command: "add server pods/b 10.0.0.2:80", answer: "New server registered.\n\n"))
        XCTAssertEqual(AdminAnswer.failure(command: "add server pods/b 10.0.0.2:80 cookie x",
                                             answer: "'cookie' option is not accepted for dynamic server\n\n"), "'cookie' option is not accepted for dynamic server")
        XCTAssertNil(AdminAnswer.failure(command: "set server pods/a addr 10.0.0.3 port 80",
                                            answer: "IP changed from '10.0.0.2' to '10.0.0.3', no need to change the port by 'stats socket command'\n\n"))
        XCTAssertNil(AdminAnswer.failure(command: "set server pods/a addr 10.0.0.3 port 80",
                                            answer: "no need to change the addr, no need to change the port by 'stats socket command'\n\n"))
        XCTAssertEqual(AdminAnswer.failure(command: "set server pods/a addr 10.0.0.3 port 80", answer: "No such server.\n\n"), "No such server.")
        XCTAssertNil(AdminAnswer.failure(command: "set server pods/a weight 7", answer: "\n"))
        XCTAssertEqual(AdminAnswer.failure(command: "set server pods/a weight 300", answer: "Absolute weight can only be between 0 and 256 inclusive.\n\n"), "Absolute weight can only be between 0 and 256 inclusive.")
        XCTAssertNil(AdminAnswer.failure(command: "enable health pods/a", answer: "\n"))
    }

    func testDeletionTellsBusyFromFailed() {
        XCTAssertEqual(AdminAnswer.deletion("Server deleted."), .deleted)
        XCTAssertEqual(AdminAnswer.deletion("Server still has connections attached to it, cannot remove it.\n"), .busy)
        XCTAssertEqual(AdminAnswer.deletion("Only servers in maintenance mode can be deleted.\n"),
                       .failed("Only servers in maintenance mode can be deleted."))
    }
}
