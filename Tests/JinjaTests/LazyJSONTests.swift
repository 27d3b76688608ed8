import Jinja
import JSON
import XCTest

/// Documents read lazily (`Value.parseJSONLazily`) behave as documents decoded at once: the
/// same errors for malformed text, the same values however they are reached.
final class LazyJSONTests: XCTestCase {
    private func eager(_ text: String) -> Result<Value, JSONError> {
        Result { () throws(JSONError) in try JSONReader.parse(text, as: ValueJSONBuilder.self) }
    }

    private func lazy(_ text: String) -> Result<Value, JSONError> {
        Result { () throws(JSONError) in try Value.parseJSONLazily(text) }
    }

    /// What a template shows of `value`, or the error it meets.
    private func show(_ value: Value, _ source: String) throws -> String {
        let template = try Template(source: source)
        do {
            return try template.render([("v", value)])
        } catch {
            return "\(error.kind.rawValue): \(error)"
        }
    }

    private static let malformed = [
        "", " ", "{", "[", "]", "}", "{\"a\"}", "{\"a\" 1}", "{\"a\": }", "{\"a\": 1,}", "{\"a\": 1 \"b\": 2}",
        "{a: 1}", "{\"a\": 1}}", "[1, 2", "[1 2]", "[1,]", "[,1]", "\"abc", "\"a\\", "\"a\\x\"", "\"\\u12\"",
        "\"\\u12G4\"", "\"\\ud800\\u12\"", "\"tab\there\"", "\"new\nline\"", "-", "-a", "01", "1.", "1.e5", "1e", "1e+",
        "tru", "nul", "fals", "truex", "[true false]", "nan", "Infinity", "{\"a\": [1, {\"b\": [}]}",
        "{\"a\": 1}\n\n  x", "[\n  1,\n  2,\n  oops\n]", String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
        String(repeating: "{\"a\":", count: 600) + "1" + String(repeating: "}", count: 600),
    ]

    func testMalformedDocumentsFailWithTheReadersErrors() {
        for text in Self.malformed {
            guard case .failure(let expected) = eager(text) else {
                XCTFail("expected \(text.debugDescription) to be malformed")
                continue
            }
            guard case .failure(let error) = lazy(text) else {
                XCTFail("\(text.debugDescription) was read lazily")
                continue
            }
            XCTAssertEqual(error, expected, text.debugDescription)
        }
    }

    func testScalarDocumentsAreTheirValues() throws {
        for text in ["1", " -2.5e3 ", "\"a\\u00e9\"", "true", "null", "123456789012345678901234567890", "{}", "[]"] {
            let lazyValue = try lazy(text).get()
            let eagerValue = try eager(text).get()
            XCTAssertEqual(try show(lazyValue, "{{ v }} {{ v|tojson }}"), try show(eagerValue, "{{ v }} {{ v|tojson }}"))
        }
    }

    func testLookupsReadOnlyTheMembersFoundAndKeepTheirIdentity() throws {
        let text = #"{"kind": "Pod", "metadata": {"name": "web-1", "labels": {"app": "web"}}, "status": {"podIP": "10.0.0.1", "containerStatuses": [{"ready": true}]}}"#
        let pod = try lazy(text).get()
        XCTAssertEqual(try show(pod, "{{ v.status.podIP }} {{ v.metadata.labels.app }} {{ v['status'].containerStatuses[0].ready }}"),
                       "10.0.0.1 web True")
        guard case .dict(let root) = pod, case .dict(let status)? = root[string: "status"],
              case .dict(let again)? = root[string: "status"] else {
            return XCTFail("the pod is not a dict of dicts")
        }
        XCTAssertTrue(status === again, "two lookups of one member give one dict")
        status[string: "podIP"] = .string("10.0.0.9")
        XCTAssertEqual(try show(pod, "{{ v.status.podIP }} {{ v }}"),
                       "10.0.0.9 {'kind': 'Pod', 'metadata': {'name': 'web-1', 'labels': {'app': 'web'}}, 'status': {'podIP': '10.0.0.9', 'containerStatuses': [{'ready': True}]}}")
    }

    func testEachValueOfADocumentIsFresh() throws {
        let document = try JSONDocument(#"{"status": {"podIP": "10.0.0.1"}}"#)
        let first = document.value()
        XCTAssertEqual(try show(first, "{% set _ = v.status.update({'podIP': 'changed'}) %}{{ v.status.podIP }}"), "changed")
        XCTAssertEqual(try show(document.value(), "{{ v.status.podIP }}"), "10.0.0.1")
    }

    func testBytesOwnedElsewhereAreReleasedWithTheLastValue() throws {
        final class Released { var count = 0 }
        let released = Released()
        let bytes = Array(#"{"a": [1, {"b": 2}]}"#.utf8)
        try bytes.withUnsafeBufferPointer { buffer in
            var inner: Value? = nil
            do {
                let document = try JSONDocument(unsafeBytes: buffer) { _ in released.count += 1 }
                guard case .dict(let root) = document.value() else { return XCTFail("not a dict") }
                inner = root[string: "a"]
            }
            XCTAssertEqual(released.count, 0, "a value read from the document keeps it")
            XCTAssertEqual(try show(inner ?? .none, "{{ v }}"), "[1, {'b': 2}]")
            inner = nil
            XCTAssertEqual(released.count, 1)
        }
        XCTAssertThrowsError(try JSONDocument(unsafeBytes: UnsafeBufferPointer(start: nil, count: 0)) { _ in released.count += 1 })
        XCTAssertEqual(released.count, 2, "bytes that fail the check are released")
    }

    func testALargeObjectSearchedOftenIsDecodedKeepingWhatLookupsGave() throws {
        let members = (0..<40).map { "\"k\($0)\": {\"n\": \($0)}" } + ["\"k3\": {\"n\": \"last\"}"]
        let object = try lazy("{" + members.joined(separator: ", ") + "}").get()
        guard case .dict(let ref) = object, case .dict(let first)? = ref[string: "k3"] else { return XCTFail("not a dict of dicts") }
        for index in 0..<20 { XCTAssertEqual(try show(object, "{{ v.k\(index).n }}"), index == 3 ? "last" : "\(index)") }
        guard case .dict(let again)? = ref[string: "k3"] else { return XCTFail("k3 is gone") }
        XCTAssertTrue(first === again, "decoding keeps the dict a lookup gave")
        XCTAssertEqual(ref.count, 40)
        XCTAssertEqual(try show(object, "{{ v.k3 }} {{ v.k39.n }} {{ v|length }}"), "{'n': 'last'} 39 40")
    }

    /// Random documents (nesting, repeated and escaped keys, every kind of scalar) read both
    /// ways: looking paths up, printing, and changing them give the same text.
    func testRandomDocumentsReadLazilyAsReadAtOnce() throws {
        var generator = SplitMix(seed: 0x5EED)
        let template = """
            {{ v.a }}|{{ v.b }}|{{ v['a\\u00e9'] }}|{{ v.a.b }}|{{ v.c[0] if v.c is sequence and v.c is not string and v.c|length else '' }}\
            |{% if v is mapping %}{% for k, x in v.items() %}{{ k }}={{ x.a if x is mapping else x }};{% endfor %}{% endif %}\
            |{{ v|tojson }}|{{ v }}
            """
        for _ in 0..<2000 {
            var text = ""
            randomJSON(&generator, depth: 0, into: &text)
            let lazyValue = try lazy(text).get()
            let eagerValue = try eager(text).get()
            let lazyShown = try show(lazyValue, template)
            let eagerShown = try show(eagerValue, template)
            XCTAssertEqual(lazyShown, eagerShown, text)
            if lazyShown != eagerShown { return }
        }
    }

    /// A first lookup reads an object from its last member back: the member Python keeps is
    /// found whatever stands after it (large noted containers, small ones holding brackets and
    /// quotes in strings, escaped quotes, numbers, literals, any spacing), and a repeated key
    /// gives its last value.
    func testAFirstLookupFindsTheLastMemberOfItsName() throws {
        let long = String(repeating: "{[\\\"x", count: 60)
        let afters = [
            #""big": {"k": "\#(long)", "a": 1}"#, #""list": ["\#(long)", {"a": 2}]"#,
            #""small": {"s": "]}\"[{", "t": ["\\"]}"#, #""n": -1.5e3"#, #""t": true"#, #""z": null"#,
            #""e": "say \"hi\"\\""#, #""\u0062": "escaped b""#, #""": """#,
        ]
        let spacing = ["", " ", "\n  ", "\t "]
        var generator = SplitMix(seed: 0xB4C)
        for _ in 0..<400 {
            var members: [String] = []
            for _ in 0..<generator.next(5) { members.append(afters[generator.next(afters.count)]) }
            // The key looked up, once or twice, anywhere among the others.
            for value in ["\"first\"", "{\"b\": \"\(long)\"}"].prefix(1 + generator.next(2)) {
                members.insert("\"a\": \(value)", at: generator.next(members.count + 1))
            }
            let pad = spacing[generator.next(spacing.count)]
            let text = "{" + pad + members.joined(separator: pad + "," + pad) + pad + "}"
            let template = "{{ v.a }}|{{ v.b }}|{{ v.a.b if v.a is mapping else '' }}|{{ v.n }}|{{ v[''] }}"
            XCTAssertEqual(try show(try lazy(text).get(), template), try show(try eager(text).get(), template), text)
        }
    }

    /// Random documents with one byte changed or cut short: the same error or the same value.
    func testDamagedDocumentsFailAsTheReaderFails() throws {
        var generator = SplitMix(seed: 0xBAD)
        let damage: [UInt8] = Array("{}[]\",:\\u0e-+.tfn \n\u{1}".utf8)
        for _ in 0..<3000 {
            var text = ""
            randomJSON(&generator, depth: 0, into: &text)
            var bytes = Array(text.utf8)
            if generator.next(3) == 0 {
                bytes.removeLast(generator.next(bytes.count))
            } else {
                bytes[generator.next(bytes.count)] = damage[generator.next(damage.count)]
            }
            let damaged = String(decoding: bytes, as: UTF8.self)
            switch (eager(damaged), lazy(damaged)) {
            case (.failure(let expected), .failure(let error)):
                XCTAssertEqual(error, expected, damaged)
            case (.success(let eagerValue), .success(let lazyValue)):
                XCTAssertEqual(try show(lazyValue, "{{ v }}"), try show(eagerValue, "{{ v }}"), damaged)
            case (.failure(let expected), .success):
                XCTFail("\(damaged.debugDescription) read lazily, but: \(expected)")
            case (.success, .failure(let error)):
                XCTFail("\(damaged.debugDescription) refused lazily: \(error)")
            }
        }
    }

    private func randomJSON(_ generator: inout SplitMix, depth: Int, into text: inout String) {
        let space = [" ", "", "", "\n  ", "\t"]
        func pad() { text += space[generator.next(space.count)] }
        let keys = ["a", "b", "c", "a\\u00e9", "aé", "\\u0061", "x\\\"y", "", "k\\n"]
        switch generator.next(depth > 3 ? 5 : 8) {
        case 0: text += ["null", "true", "false"][generator.next(3)]
        case 1: text += ["0", "-1", "42", "1.5", "-0.0", "2e10", "1E-3", "123456789012345678901234567890", "-9223372036854775808"][generator.next(9)]
        case 2, 3:
            // Long strings make containers long enough for the validator to note their ends.
            text += ["\"\"", "\"web\"", "\"a\\nb\"", "\"\\u00e9\\ud83d\\ude00\"", "\"\\ud800x\"", "\"q\\\"\\\\\"", "\"caf\u{e9}\"",
                     "\"" + String(repeating: "long [text] {", count: 12) + "\""][generator.next(8)]
        case 4: text += ["[]", "{}", "[ ]", "{ }"][generator.next(4)]
        case 5, 6:
            text += "{"
            for index in 0..<generator.next(6) {
                if index > 0 { text += "," }
                pad()
                text += "\"\(keys[generator.next(keys.count)])\""
                pad()
                text += ":"
                pad()
                randomJSON(&generator, depth: depth + 1, into: &text)
                pad()
            }
            text += "}"
        default:
            text += "["
            for index in 0..<generator.next(5) {
                if index > 0 { text += "," }
                pad()
                randomJSON(&generator, depth: depth + 1, into: &text)
                pad()
            }
            text += "]"
        }
    }
}

/// A small deterministic generator, so that a failure can be reproduced.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(_ bound: Int) -> Int {
        guard bound > 0 else { return 0 }
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Int(z % UInt64(bound))
    }
}
