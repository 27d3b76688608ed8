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
}
