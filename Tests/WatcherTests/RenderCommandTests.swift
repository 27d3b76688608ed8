import Foundation
import IntegrationSupport
import XCTest

/// `kube-haproxy-watcher render --template FILE [--context FILE.json]`, run as a process the
/// way users and scripts run it: output on stdout byte for byte, `FILE:LINE: message` on
/// stderr and exit 1 on a template error, exit 2 on bad usage.
final class RenderCommandTests: XCTestCase {
    /// The engine's differential cases: the command must render them as the library does.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("JinjaTests").appendingPathComponent("Fixtures").appendingPathComponent("cases")

    var directory = ""

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory("render-command-tests")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    struct MissingWatcher: Error {}

    /// Runs the watcher in the test's temporary directory.
    func run(_ arguments: [String]) throws -> CommandResult {
        guard FileManager.default.isExecutableFile(atPath: TestPaths.watcher) else {
            XCTFail("no \(TestPaths.watcher): swift test builds it with the tests")
            throw MissingWatcher()
        }
        return try runCommand(TestPaths.watcher, arguments, currentDirectory: directory)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = directory + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testSeedSSLTemplateRendersExactlyAsJinja2() throws {
        let fixture = Self.fixtures.appendingPathComponent("haproxy").appendingPathComponent("seed-ssl-typical")
        let result = try run(["render", "--template", fixture.appendingPathComponent("template.j2").path,
                              "--context", fixture.appendingPathComponent("context.json").path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "")
        let expected = try Data(contentsOf: fixture.appendingPathComponent("expected.out"))
        XCTAssertEqual(result.stdoutData, expected, "stdout differs from jinja2's output")
    }

    func testWithoutContextVariablesAreUndefined() throws {
        let template = try write("t.j2", "[{{ name }}]{% for x in items %}x{% endfor %}\n")
        let result = try run(["render", "--template", template])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "[]")
    }

    func testEqualsFormOfOptions() throws {
        let template = try write("t.j2", "{{ a }}-{{ b }}")
        let context = try write("c.json", #"{"a": 1, "b": "two"}"#)
        let result = try run(["render", "--template=\(template)", "--context=\(context)"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "1-two")
    }

    func testSyntaxErrorPrintsFileAsGivenLineAndMessageAndNothingOnStdout() throws {
        _ = try write("bad.j2", "line one\n{% if x %}\n{{ 1 + }}\n{% endif %}\n")
        let result = try run(["render", "--template", "./bad.j2"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stdoutData, Data())
        XCTAssertEqual(result.stderr, "./bad.j2:3: unexpected 'end of print statement'\n")
    }

    func testUnknownFilterIsReportedAtCompileTime() throws {
        let template = try write("filter.j2", "ok\n\n{{ name|nosuchfilter }}\n")
        let result = try run(["render", "--template", template])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stdoutData, Data())
        XCTAssertEqual(result.stderr, "\(template):3: No filter named 'nosuchfilter'.\n")
    }

    func testRenderErrorAfterOutputPrintsNothingOnStdout() throws {
        let template = try write("undefined.j2", "rendered before the error\n{{ service.name }}\n{{ service.pods.p1.status }}\n")
        let context = try write("c.json", #"{"service": {"name": "web"}}"#)
        let result = try run(["render", "--template", template, "--context", context])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stdoutData, Data(), "a failed render must not leave partial output")
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
        XCTAssertEqual(result.stdoutData, Data())
        XCTAssertFalse(result.stderr.isEmpty)
    }

    func testUnknownOptionIsBadUsage() throws {
        let template = try write("t.j2", "x")
        let result = try run(["render", "--template", template, "--frobnicate"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdoutData, Data())
        XCTAssertTrue(result.stderr.contains("--frobnicate"), result.stderr)
    }

    func testUnreadableTemplateIsAnError() throws {
        let result = try run(["render", "--template", directory + "/absent.j2"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdoutData, Data())
        XCTAssertTrue(result.stderr.contains("absent.j2"), result.stderr)
    }

    func testInvalidJSONContextIsAnError() throws {
        let template = try write("t.j2", "x")
        let context = try write("c.json", #"{"a": [1, 2"#)
        let result = try run(["render", "--template", template, "--context", context])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdoutData, Data())
        XCTAssertTrue(result.stderr.contains("c.json"), result.stderr)
    }

    func testContextMustBeAnObject() throws {
        let template = try write("t.j2", "x")
        let context = try write("c.json", "[1, 2]")
        let result = try run(["render", "--template", template, "--context", context])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdoutData, Data())
    }

    func testHelpDescribesTheRenderCommand() throws {
        let result = try run(["render", "--help"])
        XCTAssertEqual(result.status, 0)
        let help = result.stdout
        XCTAssertTrue(help.contains("render --template FILE [--context FILE.json]"), help)
    }
}
