// The supervisor's small decisions, function by function: the desired state's newline and hash,
// crash restart delays, the metrics address, the bundle's checks.
import Foundation
import Shared
@testable import Supervisor
import XCTest

final class SupervisorLogicTests: XCTestCase {
    func testTheDesiredConfigEndsWithANewlineAndItsHashCoversTheCertificates() {
        XCTAssertEqual(DesiredState(config: "global", certificates: [:]).config, "global\n")
        XCTAssertEqual(DesiredState(config: "global\n", certificates: [:]).config, "global\n")
        XCTAssertEqual(DesiredState(config: "", certificates: [:]).config, "")
        let plain = DesiredState(config: "global\n", certificates: [:])
        let withSite = DesiredState(config: "global\n", certificates: ["site": "PEM"])
        XCTAssertNotEqual(plain.hash, withSite.hash)
        XCTAssertEqual(withSite.hash, DesiredState(config: "global", certificates: ["site": "PEM"]).hash)
        XCTAssertNotEqual(DesiredState(config: "a\n", certificates: ["b": "c"]).hash, DesiredState(config: "a\n", certificates: ["bc": ""]).hash)
        XCTAssertEqual(withSite.hash.count, 16)
    }

    func testCrashRestartsWaitLongerEachTimeUpToThirtySeconds() {
        var backoff = HAProxyGenerations.crashBackoff
        let delays = (1...12).map { _ in backoff.next() }
        let expected = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, 30]
        for (delay, wanted) in zip(delays, expected) { XCTAssertEqual(delay, wanted, accuracy: 1e-9) }
        backoff.reset()
        XCTAssertEqual(backoff.next(), 0.1, accuracy: 1e-9)
    }

    func testTheMetricsAddressIsHostAndPort() {
        XCTAssertEqual(MetricsServer.parse("0.0.0.0:9090")?.host, "0.0.0.0")
        XCTAssertEqual(MetricsServer.parse("[::1]:9090")?.host, "::1")
        XCTAssertNil(MetricsServer.parse(":9090")?.host, "all addresses")
        XCTAssertNil(MetricsServer.parse("9090"))
        XCTAssertNil(MetricsServer.parse("host:0"))
        XCTAssertNil(MetricsServer.parse("host:65536"))
    }

    func testTheBundleReadsBackWhatWasSavedAndRefusesAnythingElse() throws {
        let directory = NSTemporaryDirectory() + "bundle-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bundle = LastGoodBundle(directory: directory)
        XCTAssertNil(try bundle.load())
        let desired = DesiredState(config: "global\n", certificates: ["site": "KEY\nCERT\n"])
        try bundle.save(desired, appliedAt: "2026-12-04T15:00:00Z")
        XCTAssertEqual(try bundle.load(), LastGoodBundle.Saved(desired: desired, savedAt: "2026-12-04T15:00:00Z"))
        let saved = try String(contentsOfFile: bundle.file, encoding: .utf8)
        for (broken, expected) in [(saved.replacingOccurrences(of: "global", with: "globe"), "does not match its hash"),
                                   (String(saved.dropLast(10)), "not valid JSON"),
                                   (saved.replacingOccurrences(of: "\"format\":1", with: "\"format\":2"), "unknown format"),
                                   (saved.replacingOccurrences(of: "\"site\"", with: "\"../site\""), "is not a named PEM text")] {
            try broken.write(toFile: bundle.file, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try bundle.load()) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
