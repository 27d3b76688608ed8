// Finding what breaks a config, function by function.
@testable import Watcher
import XCTest

final class FaultIsolationTests: XCTestCase {
    let refusal = """
        haproxy rejected the configuration (exit code 1): [NOTICE]   (7) : haproxy version is 2.6.12
        [ALERT]    (7) : config : parsing [/run/kube-haproxy/haproxy.cfg.candidate:3] : 'bind :443' in section 'frontend' : unable to load certificate from file '/run/kube-haproxy/ssl/www.example.com.pem'.
        [ALERT]    (7) : config : parsing [/run/kube-haproxy/haproxy.cfg.candidate:3] : 'bind :443' in section 'frontend' : No Private Key found in '/run/kube-haproxy/ssl/api.pem.key'.
        [ALERT]    (7) : config : [/run/kube-haproxy/haproxy.cfg.candidate:5] : 'server b/s1' : invalid port '99999'
        [ALERT]    (7) : config : parsing [/run/kube-haproxy/supervisor.cfg:2] : unknown keyword
        [WARNING]  (7) : config : parsing [/run/kube-haproxy/haproxy.cfg.candidate:1] : a warning, not a refusal
        [ALERT]    (7) : config : Error(s) found in configuration file : /run/kube-haproxy/haproxy.cfg.candidate
        """

    func testCertificatesAreNamedByTheFilesHAProxyCannotLoad() {
        XCTAssertEqual(FaultIsolation.certificates(namedIn: refusal, ssldir: "/run/kube-haproxy/ssl"), ["www.example.com", "api"])
        XCTAssertEqual(FaultIsolation.certificates(namedIn: refusal, ssldir: "/elsewhere"), [])
    }

    func testRefusedLinesAreTheCandidateConfigsLinesTheAlertsPointAt() {
        let config = "global\nfrontend web\n  bind :443 ssl crt x\nbackend b\n  server s1 127.0.0.2:99999\n"
        XCTAssertEqual(FaultIsolation.refusedLines(in: refusal, config: config), ["  bind :443 ssl crt x", "  server s1 127.0.0.2:99999"])
        XCTAssertEqual(FaultIsolation.refusedLines(in: "[ALERT] (1) : config : [haproxy.cfg.candidate:99] : beyond the end", config: config), [])
    }

    func testFaultyServicesAreFoundByBinarySearch() {
        let services = (0..<100).map { "svc-\($0)" }
        for bad in [Set<String>(), ["svc-0"], ["svc-99"], ["svc-3", "svc-64"], ["svc-10", "svc-11", "svc-12"]] {
            var renders = 0
            let found = FaultIsolation.faultyServices(services) { excluded in
                renders += 1
                return !bad.isSubset(of: excluded)
            }
            XCTAssertEqual(found, bad)
            // One search per culprit, each about log2(100) renders, plus the final check.
            XCTAssertLessThanOrEqual(renders, 1 + bad.count * 8, "\(bad)")
        }
    }

    func testASearchPastTheBudgetGivesUp() {
        var renders = 0
        let found = FaultIsolation.faultyServices((0..<100).map { "svc-\($0)" }) { excluded in
            renders += 1
            return renders > 5 ? nil : !excluded.contains("svc-50")
        }
        XCTAssertNil(found)
    }

    func testWhatIsSkippedStaysSkippedUntilItsFingerprintChanges() {
        var skipped = SkippedObjects()
        let back = skipped.replace(services: ["a": .init(fingerprint: 1, reason: "r"), "b": .init(fingerprint: 2, reason: "r")],
                                   certificates: ["c": .init(fingerprint: 3, reason: "r")])
        XCTAssertEqual(back.services, [])
        let exclusions = skipped.exclusions(serviceFingerprint: { $0 == "a" ? 1 : 9 }, certificateFingerprint: { _ in 3 })
        XCTAssertEqual(exclusions, Exclusions(services: ["a"], certificates: ["c"]))
        XCTAssertEqual(skipped.replace(services: [:], certificates: [:]).services, ["a", "b"])
    }
}
