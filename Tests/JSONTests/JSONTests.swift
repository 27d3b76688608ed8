import XCTest
@testable import JSON

final class JSONTests: XCTestCase {
    func testObjectKeysKeepDocumentOrder() throws {
        let value = try JSONValue.parse(#"{"b": 1, "a": [true, null, 2.5], "c": "x"}"#)
        guard case .object(let members) = value else { return XCTFail("not an object: \(value)") }
        XCTAssertEqual(members.map(\.0), ["b", "a", "c"])
        XCTAssertEqual(value["a"], .array([.bool(true), .null, .double(2.5)]))
    }

    func testEscapesAndSurrogatePairsDecode() throws {
        let value = try JSONValue.parse(#""a\"b\\c\n\u00e9\ud83d\ude00""#)
        XCTAssertEqual(value, .string("a\"b\\c\né😀"))
    }

    func testSerializedTextParsesBackToTheSameValue() throws {
        let original = JSONValue.object([("k\"ey", .string("line\none\u{01}")), ("n", .integer(-42)), ("l", .array([.null, .bool(false)]))])
        let text = original.serialized
        XCTAssertFalse(text.contains("\n"))
        XCTAssertEqual(try JSONValue.parse(text), original)
    }

    func testErrorsNameTheLineAndColumn() {
        XCTAssertThrowsError(try JSONValue.parse("{\n  \"a\": tru\n}")) { error in
            XCTAssertEqual((error as? JSONError)?.line, 2)
        }
        XCTAssertThrowsError(try JSONValue.parse("[1, 2] x"))
        XCTAssertThrowsError(try JSONValue.parse("\"unterminated"))
        XCTAssertThrowsError(try JSONValue.parse(String(repeating: "[", count: 100_000)))
    }

    func testNumbersKeepIntegerAndFloatApart() throws {
        XCTAssertEqual(try JSONValue.parse("12"), .integer(12))
        XCTAssertEqual(try JSONValue.parse("-0"), .integer(0))
        XCTAssertEqual(try JSONValue.parse("1.0"), .double(1.0))
        XCTAssertEqual(try JSONValue.parse("1e3"), .double(1000))
        XCTAssertEqual(try JSONValue.parse("9223372036854775807"), .integer(Int.max))
    }

    func testContainerEndsSearchedFromAnyHintAgreeWithTheWholeSearch() throws {
        // Large objects and arrays nested in an array, each long enough to be noted.
        let padding = String(repeating: "x", count: JSONContainerEnds.minimumLength)
        let item = #"{"pad": "\#(padding)", "inner": {"pad": "\#(padding)", "list": ["\#(padding)"]}}"#
        let text = "[" + Array(repeating: item, count: 6).joined(separator: ", ") + "]"
        let bytes = Array(text.utf8)
        var ends = JSONContainerEnds()
        try bytes.withUnsafeBufferPointer { buffer in try JSONReader.validate(buffer, containerEnds: &ends) }
        let starts = bytes.indices.filter { bytes[$0] == UInt8(ascii: "{") || bytes[$0] == UInt8(ascii: "[") }
        let noted = starts.filter { ends.end(ofContainerAt: $0) != nil }
        XCTAssertEqual(noted.count, 1 + 6 * 3, "the outer array, and each item, its inner object and its list")
        for start in starts {
            // Counted bracket by bracket, without the noted ends.
            let scanned = bytes.withUnsafeBufferPointer {
                JSONReader.endOfValidatedValue($0, from: start, containerEnds: JSONContainerEnds(recording: false))
            }
            for hint in 0...noted.count + 1 {
                var moved = hint
                let found = ends.end(ofContainerAt: start, hint: &moved)
                XCTAssertEqual(found, ends.end(ofContainerAt: start), "container at \(start) from hint \(hint)")
                if let found { XCTAssertEqual(found, scanned, "container at \(start) ends where its brackets do") }
                if let index = noted.firstIndex(of: start) { XCTAssertEqual(found == nil ? -1 : moved, index) }
            }
        }
    }
}
