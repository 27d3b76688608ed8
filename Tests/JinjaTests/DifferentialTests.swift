import Foundation
import Jinja
import XCTest

extension String {
    /// The bytes as a String when they are valid UTF-8, byte order mark included.
    init?(validatingUTF8Bytes data: Data) {
        let text = String(decoding: data, as: UTF8.self)
        guard text.utf8.elementsEqual(data) else { return nil }
        self = text
    }
}

/// Renders every case under Fixtures/cases/<group>/<case>/ with the engine and compares the
/// result with what Python's jinja2 produced for it (expected.out or expected.err, written by
/// generate-expected.py and committed). Each failing case is reported by its path.
final class DifferentialTests: XCTestCase {
    /// The groups with a test method of their own; any other directory under Fixtures/cases
    /// is run by testGroupsWithoutTheirOwnMethod, so no group can go unrun.
    static let groups = [
        "syntax", "statements", "expressions", "methods", "errors", "unicode", "haproxy",
        "globals", "filters", "tests",
    ]

    func testSyntax() throws { try runGroup("syntax") }
    func testStatements() throws { try runGroup("statements") }
    func testExpressions() throws { try runGroup("expressions") }
    func testMethods() throws { try runGroup("methods") }
    func testErrors() throws { try runGroup("errors") }
    func testUnicode() throws { try runGroup("unicode") }
    func testHAProxy() throws { try runGroup("haproxy") }
    func testGlobals() throws { try runGroup("globals") }
    func testFilters() throws { try runGroup("filters") }
    func testTests() throws { try runGroup("tests") }

    func testGroupsWithoutTheirOwnMethod() throws {
        for group in try Self.directories(in: Self.casesDirectory) where !Self.groups.contains(group) {
            try runGroup(group)
        }
    }

    func testSuiteHasAtLeast400Cases() throws {
        var total = 0
        for group in try Self.directories(in: Self.casesDirectory) {
            total += try Self.cases(in: group).count
        }
        XCTAssertGreaterThanOrEqual(total, 400, "the differential suite shrank to \(total) cases")
    }

    // MARK: - Running a group

    static let casesDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
        .appendingPathComponent("cases")

    private func runGroup(_ group: String) throws {
        let cases = try Self.cases(in: group)
        XCTAssertFalse(cases.isEmpty, "no cases found in \(Self.casesDirectory.path)/\(group)")
        var failed = 0
        for caseDirectory in cases {
            if let failure = Self.check(caseDirectory) {
                failed += 1
                XCTFail("\(group)/\(caseDirectory.lastPathComponent): \(failure)")
            }
        }
        if failed > 0 {
            print("DifferentialTests: \(group): \(failed) of \(cases.count) cases failed")
        }
    }

    static func directories(in url: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path)
            .filter { name in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(
                    atPath: url.appendingPathComponent(name).path, isDirectory: &isDirectory)
                    && isDirectory.boolValue
            }
            .sorted()
    }

    static func cases(in group: String) throws -> [URL] {
        let groupDirectory = casesDirectory.appendingPathComponent(group)
        guard FileManager.default.fileExists(atPath: groupDirectory.path) else { return [] }
        return try directories(in: groupDirectory)
            .map { groupDirectory.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("template.j2").path) }
    }

    /// nil when the engine does what jinja2 did for the case, else what differs.
    static func check(_ caseDirectory: URL) -> String? {
        func read(_ name: String) -> Data? {
            FileManager.default.contents(atPath: caseDirectory.appendingPathComponent(name).path)
        }
        guard let templateData = read("template.j2"),
              // Foundation's String(data:encoding:) drops a leading byte order mark; jinja2 keeps it.
              let source = String(validatingUTF8Bytes: templateData)
        else { return "template.j2 is missing or not UTF-8" }
        let context = read("context.json").flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
        let expectedOut = read("expected.out")
        let expectedErr = read("expected.err").flatMap { String(data: $0, encoding: .utf8) }
        if expectedOut == nil && expectedErr == nil {
            return "neither expected.out nor expected.err (run generate-expected.py)"
        }

        let output: String
        do {
            let template = try Template(source: source, name: "<template>")
            output = try template.render(jsonContext: context)
        } catch let error as TemplateError {
            guard let expectedErr else {
                return "jinja2 renders it, the engine raised \(error.kind.rawValue): \(error.message) (line \(error.line))"
            }
            return compare(error: error, with: ExpectedError(expectedErr))
        } catch {
            return "the engine raised a non-template error: \(error)"
        }
        if let expectedErr {
            let expected = ExpectedError(expectedErr)
            return "jinja2 raises \(expected.kind): \(expected.message)"
                + (expected.line.map { " (line \($0))" } ?? "")
                + ", the engine rendered \(quoted(Substring(output.prefix(200))))"
        }
        let actual = Data(output.utf8)
        if let expectedOut, actual != expectedOut {
            return difference(expected: String(decoding: expectedOut, as: UTF8.self), actual: output)
        }
        return nil
    }

    struct ExpectedError {
        var kind: String
        var message: String
        var line: Int?

        /// "<Kind>: <message>\n" optionally followed by "line: N\n".
        init(_ text: String) {
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            while lines.last == "" { lines.removeLast() }
            line = nil
            if let last = lines.last, last.hasPrefix("line: "), let number = Int(last.dropFirst(6)) {
                line = number
                lines.removeLast()
            }
            let first = lines.joined(separator: "\n")
            if let colon = first.range(of: ": ") {
                kind = String(first[..<colon.lowerBound])
                message = String(first[colon.upperBound...])
            } else {
                kind = first.hasSuffix(":") ? String(first.dropLast()) : first
                message = ""
            }
        }
    }

    static func compare(error: TemplateError, with expected: ExpectedError) -> String? {
        var problems: [String] = []
        if error.kind.rawValue != expected.kind {
            problems.append("kind \(error.kind.rawValue), expected \(expected.kind)")
        }
        if error.message != expected.message {
            problems.append("message \(quoted(Substring(error.message))), expected \(quoted(Substring(expected.message)))")
        }
        if let line = expected.line, error.line != line {
            problems.append("line \(error.line), expected \(line)")
        }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }

    /// The first differing line of two outputs, both shown with escapes.
    static func difference(expected: String, actual: String) -> String {
        let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
        var index = 0
        while index < expectedLines.count, index < actualLines.count, expectedLines[index] == actualLines[index] {
            index += 1
        }
        guard index < expectedLines.count, index < actualLines.count else {
            let want = index < expectedLines.count ? quoted(expectedLines[index]) : "<end of output>"
            let got = index < actualLines.count ? quoted(actualLines[index]) : "<end of output>"
            return "output differs at line \(index + 1) (expected \(expectedLines.count) lines, got \(actualLines.count)):\n"
                + "    expected: \(want)\n"
                + "    actual:   \(got)"
        }
        // Long lines are shown around their first differing character only.
        let want = Array(expectedLines[index].unicodeScalars)
        let got = Array(actualLines[index].unicodeScalars)
        var column = 0
        while column < want.count, column < got.count, want[column] == got[column] { column += 1 }
        let start = max(0, column - 60)
        func window(_ scalars: [Unicode.Scalar]) -> String {
            let end = min(scalars.count, start + 160)
            var text = Substring("")
            if start < end { text = Substring(String(String.UnicodeScalarView(scalars[start..<end]))) }
            return (start > 0 ? "…" : "") + quoted(text) + (end < scalars.count ? "…" : "")
        }
        return "output differs at line \(index + 1), column \(column + 1) "
            + "(expected \(expectedLines.count) lines, got \(actualLines.count)):\n"
            + "    expected: \(window(want))\n"
            + "    actual:   \(window(got))"
    }

    static func quoted(_ text: Substring) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    result += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
