// Which config changes HAProxy 2.6 can take at run time, and with which commands.
import Foundation
import HAProxyConfig
import XCTest

/// A config with one frontend and one backend `pods`; each argument is a list of lines.
func config(defaults: [String] = ["balance roundrobin"], backend: [String] = [], servers: [String],
            frontend: [String] = ["bind 127.0.0.1:8080", "default_backend pods"], extra: [String] = []) -> String {
    let sections: [(String, [String])] = [
        ("global", ["maxconn 100"]),
        ("defaults", ["mode http", "timeout connect 5s", "timeout client 30s", "timeout server 30s"] + defaults),
        ("frontend web", frontend),
        ("backend pods", backend + servers),
    ]
    return sections.map { header, lines in ([header] + lines.map { "    " + $0 }).joined(separator: "\n") }.joined(separator: "\n")
        + "\n" + extra.joined(separator: "\n") + "\n"
}

func plan(_ before: String, _ after: String, pending: [PendingDeletion] = []) -> RuntimeDecision {
    RuntimePlanner.plan(from: ConfigFile(before), to: ConfigFile(after), pending: pending)
}

final class RuntimePlanTests: XCTestCase {
    private func commands(_ decision: RuntimeDecision, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        guard case .runtime(let plan) = decision else {
            XCTFail("expected a runtime plan, got \(decision)", file: file, line: line)
            return []
        }
        return plan.updates.flatMap { $0.commands + $0.removals.map { "remove \($0.name)" } }
    }

    private func reloadReason(_ decision: RuntimeDecision, file: StaticString = #filePath, line: UInt = #line) -> String {
        guard case .reload(let reason) = decision else {
            XCTFail("expected a reload, got \(decision)", file: file, line: line)
            return ""
        }
        return reason
    }

    // MARK: Server changes HAProxy takes at run time

    func testAddedServerIsAddedWithHealthChecksEnabledAndMadeReady() {
        let before = config(servers: ["server a 10.0.0.1:80 check"])
        let after = config(servers: ["server a 10.0.0.1:80 check", "server b 10.0.0.2:80 check"])
        XCTAssertEqual(commands(plan(before, after)), [
            "add server pods/b 10.0.0.2:80 check", "enable health pods/b", "set server pods/b state ready",
        ])
    }

    func testRemovedServerIsTakenOut() {
        let before = config(servers: ["server a 10.0.0.1:80", "server b 10.0.0.2:80"])
        let after = config(servers: ["server a 10.0.0.1:80"])
        XCTAssertEqual(commands(plan(before, after)), ["remove b"])
        guard case .runtime(let runtime) = plan(before, after) else { return XCTFail() }
        XCTAssertEqual(runtime.updates[0].expected.map(\.name), ["a", "b"])
        XCTAssertEqual(runtime.updates[0].expected.map(\.beingRemoved), [false, true])
    }

    func testNewAddressPortAndWeightAreSetOnTheServer() {
        let before = config(servers: ["server a 10.0.0.1:80 check", "server b 10.0.0.2:80 weight 3"])
        let after = config(servers: ["server a 10.0.0.9:8080 check", "server b 10.0.0.2:80 weight 7"])
        XCTAssertEqual(commands(plan(before, after)), ["set server pods/a addr 10.0.0.9 port 8080", "set server pods/b weight 7"])
    }

    func testIPv6AddressesAreSetWithoutBrackets() {
        let before = config(servers: ["server a [fd00::1]:80"])
        let after = config(servers: ["server a [fd00::2]:80", "server b fd00::3:80"])
        XCTAssertEqual(commands(plan(before, after)), [
            "add server pods/b [fd00::3]:80", "set server pods/b state ready", "set server pods/a addr fd00::2 port 80",
        ])
    }

    func testTheSameAddressWrittenAnotherWayNeedsNoCommand() {
        XCTAssertEqual(commands(plan(config(servers: ["server a [fd00::1]:80"]), config(servers: ["server a fd00:0::1:80"]))), [])
    }

    func testPositionalServerNamesShiftAddressesAndAddTheLastOne() {
        // The seed's templates name servers by position: a pod sorted before the others moves
        // every address down by one.
        let before = config(servers: ["server WEB_1_1 10.0.0.1:80 check", "server WEB_2_1 10.0.0.3:80 check"])
        let after = config(servers: ["server WEB_1_1 10.0.0.1:80 check", "server WEB_2_1 10.0.0.2:80 check", "server WEB_3_1 10.0.0.3:80 check"])
        XCTAssertEqual(commands(plan(before, after)), [
            "add server pods/WEB_3_1 10.0.0.3:80 check", "enable health pods/WEB_3_1", "set server pods/WEB_3_1 state ready",
            "set server pods/WEB_2_1 addr 10.0.0.2 port 80",
        ])
    }

    func testCommentsAndBlanksAloneNeedNoCommand() {
        let before = config(servers: ["server a 10.0.0.1:80"])
        let after = "# rendered again\n" + config(servers: ["server   a\t10.0.0.1:80   # pod a"]).replacingOccurrences(of: "\n", with: "\n\n")
        XCTAssertEqual(plan(before, after), .runtime(RuntimePlan(updates: [])))
    }

    func testDisabledServerIsAddedInMaintenance() {
        let after = config(servers: ["server a 10.0.0.1:80", "server b 10.0.0.2:80 disabled"])
        XCTAssertEqual(commands(plan(config(servers: ["server a 10.0.0.1:80"]), after)), ["add server pods/b 10.0.0.2:80 disabled"])
    }

    func testAgentCheckIsEnabledOnAnAddedServer() {
        let after = config(servers: ["server b 10.0.0.2:80 agent-check agent-port 9999"])
        XCTAssertEqual(commands(plan(config(servers: []), after)), [
            "add server pods/b 10.0.0.2:80 agent-check agent-port 9999", "enable agent pods/b", "set server pods/b state ready",
        ])
    }

    func testListenSectionsHoldServersToo() {
        let before = "listen web\n    bind 127.0.0.1:8080\n    mode http\n    server a 10.0.0.1:80\n"
        let after = "listen web\n    bind 127.0.0.1:8080\n    mode http\n    server a 10.0.0.2:80\n    server b 10.0.0.3:80\n"
        XCTAssertEqual(commands(plan(before, after)), [
            "add server web/b 10.0.0.3:80", "set server web/b state ready", "set server web/a addr 10.0.0.2 port 80",
        ])
    }

    // MARK: default-server

    func testDefaultServerSettingsAreMergedIntoAddServer() {
        // add server inherits nothing from default-server lines: their settings go into the
        // command, each overridden by the line's own (no-check undoes check).
        let before = config(defaults: ["balance leastconn", "default-server inter 3s fall 2 check"],
                            backend: ["default-server weight 5"], servers: [])
        let after = config(defaults: ["balance leastconn", "default-server inter 3s fall 2 check"],
                           backend: ["default-server weight 5"], servers: ["server a 10.0.0.1:80 inter 1s no-check"])
        XCTAssertEqual(commands(plan(before, after)), ["add server pods/a 10.0.0.1:80 inter 1s fall 2 weight 5", "set server pods/a state ready"])
    }

    func testDefaultServerLinesComeThroughDefaultsNamedWithFrom() {
        let text = """
            defaults base
                mode http
                default-server check inter 3s
            defaults web from base
                balance leastconn
                default-server fall 2
            backend pods from web

            """
        XCTAssertEqual(commands(plan(text, text + "    server a 10.0.0.1:80\n")),
                       ["add server pods/a 10.0.0.1:80 check inter 3s fall 2", "enable health pods/a", "set server pods/a state ready"])
    }

    func testDefaultServerBelowAServerDoesNotApplyToIt() {
        let before = config(backend: [], servers: ["server a 10.0.0.1:80", "default-server weight 9"])
        let after = config(backend: [], servers: ["server a 10.0.0.1:80", "server b 10.0.0.2:80", "default-server weight 9"])
        XCTAssertEqual(commands(plan(before, after)), ["add server pods/b 10.0.0.2:80", "set server pods/b state ready"])
    }

    func testInitAddrIsDroppedForAnIPAddress() {
        let lines = ["default-server init-addr last,libc,none"]
        let after = config(defaults: ["balance roundrobin"] + lines, servers: ["server a 10.0.0.1:80 init-addr none check"])
        XCTAssertEqual(commands(plan(config(defaults: ["balance roundrobin"] + lines, servers: []), after)),
                       ["add server pods/a 10.0.0.1:80 check", "enable health pods/a", "set server pods/a state ready"])
    }

    func testDefaultServerKeywordAddServerRefusesMeansReload() {
        let lines = ["balance roundrobin", "default-server resolvers dns"]
        let reason = reloadReason(plan(config(defaults: lines, servers: []), config(defaults: lines, servers: ["server a 10.0.0.1:80"])))
        XCTAssertTrue(reason.contains("'resolvers' is not among the keywords add server accepts"), reason)
    }

    func testCookieOnANewServerMeansReload() {
        let reason = reloadReason(plan(config(servers: []), config(servers: ["server a 10.0.0.1:80 cookie a"])))
        XCTAssertTrue(reason.contains("server a (line"), reason)
        XCTAssertTrue(reason.contains("'cookie'"), reason)
    }

    func testAddressChangeOfAServerWithACookieIsSetAtRunTime() {
        // set server addr works on any server; only add server refuses cookies.
        let before = config(servers: ["server a 10.0.0.1:80 cookie a"])
        XCTAssertEqual(commands(plan(before, config(servers: ["server a 10.0.0.2:80 cookie a"]))), ["set server pods/a addr 10.0.0.2 port 80"])
    }

    // MARK: Balance

    func testStaticAlgorithmsMeanReloadForNewServers() {
        for balance in [["balance static-rr"], ["balance source"], ["balance uri"], ["balance hdr(host)"]] {
            let reason = reloadReason(plan(config(defaults: balance, servers: []), config(defaults: balance, servers: ["server a 10.0.0.1:80"])))
            XCTAssertTrue(reason.contains("needs a dynamic algorithm"), reason)
        }
    }

    func testDynamicAlgorithmsTakeNewServers() {
        for balance in [["balance leastconn"], ["balance random(2)"], ["balance source", "hash-type consistent"],
                        ["balance hdr(host)", "hash-type consistent sdbm"], []] {
            XCTAssertEqual(commands(plan(config(defaults: balance, servers: []), config(defaults: balance, servers: ["server a 10.0.0.1:80"]))),
                           ["add server pods/a 10.0.0.1:80", "set server pods/a state ready"], "\(balance)")
        }
    }

    func testTheBackendsOwnBalanceOverridesTheDefaults() {
        let before = config(defaults: ["balance static-rr"], backend: ["balance leastconn"], servers: [])
        let after = config(defaults: ["balance static-rr"], backend: ["balance leastconn"], servers: ["server a 10.0.0.1:80"])
        XCTAssertEqual(commands(plan(before, after)).first, "add server pods/a 10.0.0.1:80")
        let inherited = reloadReason(plan(config(defaults: ["balance static-rr"], servers: []),
                                          config(defaults: ["balance static-rr"], servers: ["server a 10.0.0.1:80"])))
        XCTAssertTrue(inherited.contains("not balance static-rr"), inherited)
    }

    func testNamedDefaultsAreFoundThroughFrom() {
        let text = """
            defaults fast
                mode http
                balance leastconn
            defaults slow
                mode http
                balance static-rr
            backend pods from fast

            """
        let decision = plan(text, text + "    server a 10.0.0.1:80\n")
        XCTAssertEqual(commands(decision).first, "add server pods/a 10.0.0.1:80")
        let other = text.replacingOccurrences(of: "from fast", with: "from slow")
        XCTAssertTrue(reloadReason(plan(other, other + "    server a 10.0.0.1:80\n")).contains("static-rr"))
    }

    func testBalanceFirstMeansReloadForNewServersButNotForNewAddresses() {
        let lines = ["balance first"]
        let reason = reloadReason(plan(config(defaults: lines, servers: []), config(defaults: lines, servers: ["server a 10.0.0.1:80"])))
        XCTAssertTrue(reason.contains("balance first"), reason)
        XCTAssertEqual(commands(plan(config(defaults: lines, servers: ["server a 10.0.0.1:80"]), config(defaults: lines, servers: ["server a 10.0.0.2:80"]))),
                       ["set server pods/a addr 10.0.0.2 port 80"])
    }

    func testWeightChangeInAStaticFarmMeansReloadButAnAddressChangeDoesNot() {
        let lines = ["balance static-rr"]
        let reason = reloadReason(plan(config(defaults: lines, servers: ["server a 10.0.0.1:80 weight 2"]),
                                       config(defaults: lines, servers: ["server a 10.0.0.1:80 weight 3"])))
        XCTAssertTrue(reason.contains("weight can change at run time only with a dynamic algorithm"), reason)
        XCTAssertEqual(commands(plan(config(defaults: lines, servers: ["server a 10.0.0.1:80"]), config(defaults: lines, servers: ["server a 10.0.0.3:80"]))),
                       ["set server pods/a addr 10.0.0.3 port 80"])
    }

    // MARK: Everything else reloads

    func testOtherLineChangedMeansReloadNamingTheLine() {
        let reason = reloadReason(plan(config(servers: ["server a 10.0.0.1:80"]),
                                       config(servers: ["server a 10.0.0.2:80"], frontend: ["bind 127.0.0.1:8081", "default_backend pods"])))
        XCTAssertEqual(reason, "frontend web (line 9): line 10 (bind) changed; only server lines can change at run time")
    }

    func testLineAddedToABackendMeansReload() {
        let reason = reloadReason(plan(config(servers: []), config(backend: ["option httpchk"], servers: [])))
        XCTAssertTrue(reason.contains("line 13 (option) is new"), reason)
    }

    func testSectionAddedMeansReload() {
        let reason = reloadReason(plan(config(servers: []), config(servers: [], extra: ["backend more", "    server a 10.0.0.1:80"])))
        XCTAssertTrue(reason.contains("sections were added or removed"), reason)
    }

    func testServerLinesOfOtherSectionsMeanReload() {
        let before = config(servers: [], extra: ["ring logs", "    server syslog 10.0.0.1:514"])
        let reason = reloadReason(plan(before, config(servers: [], extra: ["ring logs", "    server syslog 10.0.0.2:514"])))
        XCTAssertTrue(reason.hasPrefix("ring logs"), reason)
    }

    func testOtherChangeToAServerLineMeansReload() {
        let reason = reloadReason(plan(config(servers: ["server a 10.0.0.1:80"]), config(servers: ["server a 10.0.0.1:80 check"])))
        XCTAssertTrue(reason.contains("server a (line 13) changed in more than its address, port and weight"), reason)
    }

    func testHostNamesMeanReload() {
        XCTAssertTrue(reloadReason(plan(config(servers: ["server a 10.0.0.1:80"]), config(servers: ["server a pod.example:80"])))
            .contains("only an IP address with a port"))
        XCTAssertTrue(reloadReason(plan(config(servers: []), config(servers: ["server a pod.example:80"])))
            .contains("not an IP address with a port"))
        XCTAssertTrue(reloadReason(plan(config(servers: []), config(servers: ["server a 10.0.0.1"])))
            .contains("not an IP address with a port"))
    }

    func testQuotedOrVariableServerLinesMeanReload() {
        let reason = reloadReason(plan(config(servers: []), config(servers: ["server a \"${POD_IP}:80\""])))
        XCTAssertTrue(reason.contains("quotes, escapes or variables"), reason)
    }

    func testDuplicateServerNamesMeanReload() {
        let reason = reloadReason(plan(config(servers: []), config(servers: ["server a 10.0.0.1:80", "server a 10.0.0.2:80"])))
        XCTAssertTrue(reason.contains("declared twice"), reason)
    }

    func testConditionalDirectivesMeanReload() {
        let before = config(servers: [], extra: [".if defined(X)", ".endif"])
        let reason = reloadReason(plan(before, config(servers: ["server a 10.0.0.1:80"], extra: [".if defined(X)", ".endif"])))
        XCTAssertTrue(reason.contains("conditional directive (.if)"), reason)
    }

    // MARK: Servers waiting for their connections to end

    func testServerWaitingToBeDeletedIsBroughtBackWhenItReturns() throws {
        let removed = config(servers: ["server a 10.0.0.1:80", "server b 10.0.0.2:80 check"])
        let declaration = try XCTUnwrap(ConfigFile(removed).servers(in: 3).last)
        let pending = [PendingDeletion(backend: "pods", server: declaration)]
        let decision = plan(config(servers: ["server a 10.0.0.1:80"]), config(servers: ["server a 10.0.0.1:80", "server b 10.0.0.5:80 check"]), pending: pending)
        XCTAssertEqual(commands(decision), ["set server pods/b addr 10.0.0.5 port 80", "set server pods/b state ready"])
        guard case .runtime(let runtime) = decision else { return }
        XCTAssertEqual(runtime.updates[0].revived, ["b"])
        XCTAssertEqual(runtime.updates[0].expected.map(\.beingRemoved), [false, false])
    }

    func testServerWaitingToBeDeletedStaysExpectedInMaintenance() throws {
        let declaration = try XCTUnwrap(ConfigFile(config(servers: ["server b 10.0.0.2:80"])).servers(in: 3).first)
        let decision = plan(config(servers: ["server a 10.0.0.1:80"]), config(servers: ["server a 10.0.0.3:80"]),
                            pending: [PendingDeletion(backend: "pods", server: declaration)])
        guard case .runtime(let runtime) = decision else { return XCTFail("\(decision)") }
        XCTAssertEqual(runtime.updates[0].expected.map(\.name), ["a", "b"])
        XCTAssertEqual(runtime.updates[0].expected.map(\.inMaintenance), [false, true])
    }

    func testServerBackWithOtherSettingsWhileWaitingToBeDeletedMeansReload() throws {
        let declaration = try XCTUnwrap(ConfigFile(config(servers: ["server b 10.0.0.2:80"])).servers(in: 3).first)
        let reason = reloadReason(plan(config(servers: []), config(servers: ["server b 10.0.0.2:80 check"]),
                                       pending: [PendingDeletion(backend: "pods", server: declaration)]))
        XCTAssertTrue(reason.contains("while the old one waits for its connections to end"), reason)
    }
}
