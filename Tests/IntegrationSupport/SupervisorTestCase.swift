// What every supervisor test class shares: a directory of the test's own, the supervisor
// started in it, and the check that a reply says ok.
import Foundation
import JSON
import XCTest

open class SupervisorTestCase: XCTestCase {
    /// Made before each test and removed after it.
    public var directory = ""

    open override func setUpWithError() throws {
        try super.setUpWithError()
        directory = try makeTemporaryDirectory()
    }

    open override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }

    /// The supervisor binary with its run directory in the test's directory.
    public func startSupervisor(_ environment: [String: String] = [:], watcher: String = "none") throws -> SupervisorProcess {
        try SupervisorProcess(directory: directory, environment: environment, watcher: watcher)
    }

    public func ok(_ reply: JSONValue, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(reply["ok"], .bool(true), "reply: \(reply.serialized)", file: file, line: line)
    }
}
