import Foundation
import XCTest

/// `kube-haproxy-watcher render --template FILE [--context FILE.json]`, run as a process the
/// way users and scripts run it: output on stdout byte for byte, `FILE:LINE: message` on
/// stderr and exit 1 on a template error, exit 2 on bad usage.
final class RenderCommandTests: XCTestCase {
    struct Run {
        var status: Int32
        var stdout: Data
        var stderr: String
    }

    /// The watcher binary sits next to the test bundle in the build directory.
    static var watcher: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("kube-haproxy-watcher")
    }

    /// The engine's differential cases: the command must render them as the library does.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("JinjaTests").appendingPathComponent("Fixtures").appendingPathComponent("cases")

    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("render-command-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    struct MissingWatcher: Error {}

    /// Runs the watcher in the test's temporary directory.
    func run(_ arguments: [String]) throws -> Run {
        let binary = Self.watcher
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("no \(binary.path): swift test builds it with the tests")
            throw MissingWatcher()
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting so a large output cannot block the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: stdout, stderr: String(decoding: stderr, as: UTF8.self))
    }

    func write(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    func testSeedSSLTemplateRendersExactlyAsJinja2() throws {
        let fixture = Self.fixtures.appendingPathComponent("haproxy").appendingPathComponent("seed-ssl-typical")
        let result = try run(["render", "--template", fixture.appendingPathComponent("template.j2").path,
                              "--context", fixture.appendingPathComponent("context.json").path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "")
        let expected = try Data(contentsOf: fixture.appendingPathComponent("expected.out"))
        XCTAssertEqual(result.stdout, expected, "stdout differs from jinja2's output")
    }

    func testWithoutContextVariablesAreUndefined() throws {
        let template = try write("t.j2", "[{{ name }}]{% for x in items %}x{% endfor %}\n")
        let result = try run(["render", "--template", template])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(String(decoding: result.stdout, as: UTF8.self), "[]")
    }

    func testEqualsFormOfOptions() throws {
        let template = try write("t.j2", "{{ a }}-{{ b }}")
        let context = try write("c.json", #"{"a": 1, "b": "two"}"#)
        let result = try run(["render", "--template=\(template)", "--context=\(context)"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(String(decoding: result.stdout, as: UTF8.self), "1-two")
    }

    func testSyntaxErrorPrintsFileAsGivenLineAndMessageAndNothingOnStdout() throws {
        _ = try write("bad.j2", "line one\n{% if x %}\n{{ 1 + }}\n{% endif %}\n")
        let result = try run(["render", "--template", "./bad.j2"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stdout, Data())
        XCTAssertEqual(result.stderr, "./bad.j2:3: unexpected 'end of print statement'\n")
    }

    func testUnknownFilterIsReportedAtCompileTime() throws {
        let template = try write("filter.j2", "ok\n\n{{ name|nosuchfilter }}\n")
        let result = try run(["render", "--template", template])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stdout, Data())
        XCTAssertEqual(result.stderr, "\(template):3: No filter named 'nosuchfilter'.\n")
    }

    func testRenderErrorAfterOutputPrintsNothingOnStdout() throws {
        let template = try write("undefined.j2", "rendered before the error\n{{ service.name }}\n{{ service.pods.p1.status }}\n")
        let context = try write("c.json", #"{"service": {"name": "web"}}"#)
        let result = try run(["render", "--template", template, "--context", context])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stdout, Data(), "a failed render must not leave partial output")
        XCTAssertEqual(result.stderr, "\(template):3: 'dict object' has no attribute 'pods'\n")
    }

    func testTypeErrorCarriesItsLine() throws {
        let template = try write("type.j2", "{% for port in ports %}\n{{ port + 1 }}\n{% endfor %}")
        let context = try write("c.json", #"{"ports": ["80"]}"#)
        let result = try run(["render", "--template", template, "--context", context])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "\(template):2: can only concatenate str (not \"int\") to str\n")
    }

    func testMissingTemplateOptionIsBadUsage() throws {
        let result = try run(["render"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdout, Data())
        XCTAssertFalse(result.stderr.isEmpty)
    }

    func testUnknownOptionIsBadUsage() throws {
        let template = try write("t.j2", "x")
        let result = try run(["render", "--template", template, "--frobnicate"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdout, Data())
        XCTAssertTrue(result.stderr.contains("--frobnicate"), result.stderr)
    }

    func testUnreadableTemplateIsAnError() throws {
        let result = try run(["render", "--template", directory.appendingPathComponent("absent.j2").path])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdout, Data())
        XCTAssertTrue(result.stderr.contains("absent.j2"), result.stderr)
    }

    func testInvalidJSONContextIsAnError() throws {
        let template = try write("t.j2", "x")
        let context = try write("c.json", #"{"a": [1, 2"#)
        let result = try run(["render", "--template", template, "--context", context])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdout, Data())
        XCTAssertTrue(result.stderr.contains("c.json"), result.stderr)
    }

    func testContextMustBeAnObject() throws {
        let template = try write("t.j2", "x")
        let context = try write("c.json", "[1, 2]")
        let result = try run(["render", "--template", template, "--context", context])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdout, Data())
    }

    func testHelpDescribesTheRenderCommand() throws {
        let result = try run(["render", "--help"])
        XCTAssertEqual(result.status, 0)
        let help = String(decoding: result.stdout, as: UTF8.self)
        XCTAssertTrue(help.contains("render --template FILE [--context FILE.json]"), help)
    }
}
