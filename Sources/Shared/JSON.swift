// An order-preserving JSON reader and writer.
//
// Foundation's JSON parsers lose object key order, and templates iterate dicts in document
// order (Python semantics), so the project reads JSON itself. The reader is generic over a
// `JSONBuilder`, so one parser produces both the protocol's `JSONValue` and the template
// engine's own value type in a single pass, with no existential boxing in the loop.

/// Builds values of one type from what the parser reads.
public protocol JSONBuilder {
    associatedtype Value
    static func makeNull() -> Value
    static func makeBool(_ value: Bool) -> Value
    static func makeInteger(_ value: Int) -> Value
    /// An integer literal too large for `Int`; `digits` is its text, sign included.
    static func makeBigInteger(digits: String) -> Value
    static func makeDouble(_ value: Double) -> Value
    static func makeString(_ value: String) -> Value
    static func makeArray(_ elements: [Value]) -> Value
    /// Members in document order; a repeated key appears more than once (Python keeps the last
    /// value at the first key's position).
    static func makeObject(_ members: [(String, Value)]) -> Value
}

public struct JSONError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var column: Int
    public var description: String { "\(message) at line \(line) column \(column)" }
}

public enum JSONReader {
    /// The deepest nesting accepted: deeper input is an error rather than a stack overflow.
    public static let maximumDepth = 512

    public static func parse<B: JSONBuilder>(_ text: String, as builder: B.Type) throws(JSONError) -> B.Value {
        var copy = text
        return try copy.withUTF8 { bytes in Result { () throws(JSONError) in try parse(bytes, as: builder) } }.get()
    }

    public static func parse<B: JSONBuilder>(_ bytes: [UInt8], as builder: B.Type) throws(JSONError) -> B.Value {
        try bytes.withUnsafeBufferPointer { buffer in Result { () throws(JSONError) in try parse(buffer, as: builder) } }.get()
    }

    public static func parse<B: JSONBuilder>(_ bytes: UnsafeBufferPointer<UInt8>, as builder: B.Type) throws(JSONError) -> B.Value {
        var parser = Parser<B>(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.position != bytes.count { throw parser.error("Extra data after the JSON value") }
        return value
    }

    struct Parser<B: JSONBuilder> {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        func error(_ message: String, at offset: Int? = nil) -> JSONError {
            let end = min(offset ?? position, bytes.count)
            var line = 1
            var column = 1
            for index in 0..<end {
                if bytes[index] == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
            }
            return JSONError(message: message, line: line, column: column)
        }

        @inline(__always) mutating func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x0A, 0x0D, 0x09: position += 1
                default: return
                }
            }
        }

        mutating func parseValue(depth: Int) throws(JSONError) -> B.Value {
            guard position < bytes.count else { throw error("Expecting value") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return B.makeString(try parseString())
            case UInt8(ascii: "t"): try expectLiteral("true"); return B.makeBool(true)
            case UInt8(ascii: "f"): try expectLiteral("false"); return B.makeBool(false)
            case UInt8(ascii: "n"): try expectLiteral("null"); return B.makeNull()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw error("Expecting value")
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw error("Expecting value") }
            let expected = literal.utf8Start
            for index in 0..<count where bytes[position + index] != expected[index] {
                throw error("Expecting value")
            }
            position += count
        }

        mutating func parseObject(depth: Int) throws(JSONError) -> B.Value {
            if depth > JSONReader.maximumDepth { throw error("Nesting deeper than \(JSONReader.maximumDepth) levels") }
            position += 1
            var members: [(String, B.Value)] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return B.makeObject(members)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw error("Expecting property name enclosed in double quotes")
                }
                let key = try parseString()
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                    throw error("Expecting ':' delimiter")
                }
                position += 1
                skipWhitespace()
                members.append((key, try parseValue(depth: depth)))
                skipWhitespace()
                guard position < bytes.count else { throw error("Expecting ',' delimiter") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return B.makeObject(members) }
                throw error("Expecting ',' delimiter")
            }
        }

        mutating func parseArray(depth: Int) throws(JSONError) -> B.Value {
            if depth > JSONReader.maximumDepth { throw error("Nesting deeper than \(JSONReader.maximumDepth) levels") }
            position += 1
            var elements: [B.Value] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return B.makeArray(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth))
                skipWhitespace()
                guard position < bytes.count else { throw error("Expecting ',' delimiter") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return B.makeArray(elements) }
                throw error("Expecting ',' delimiter")
            }
        }

        mutating func parseNumber() throws(JSONError) -> B.Value {
            let start = position
            let isInteger = try scanNumber()
            let slice = UnsafeBufferPointer(rebasing: bytes[start..<position])
            if isInteger {
                if slice.count <= 18 {
                    var value = 0
                    var negative = false
                    for byte in slice {
                        if byte == UInt8(ascii: "-") { negative = true } else { value = value &* 10 &+ Int(byte &- 48) }
                    }
                    return B.makeInteger(negative ? -value : value)
                }
                let digits = String(decoding: slice, as: UTF8.self)
                if let value = Int(digits) { return B.makeInteger(value) }
                return B.makeBigInteger(digits: digits)
            }
            let text = String(decoding: slice, as: UTF8.self)
            guard let value = Double(text) else { throw error("Invalid number", at: start) }
            return B.makeDouble(value)
        }

        /// Moves past a number's text; true when it is an integer (no fraction, no exponent).
        mutating func scanNumber() throws(JSONError) -> Bool {
            let start = position
            var isInteger = true
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("Expecting value", at: start) }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
            } else {
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                isInteger = false
                position += 1
                guard position < bytes.count, isDigit(bytes[position]) else { throw error("Expecting digits after '.'") }
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                isInteger = false
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard position < bytes.count, isDigit(bytes[position]) else { throw error("Expecting exponent digits") }
                while position < bytes.count, isDigit(bytes[position]) { position += 1 }
            }
            return isInteger
        }

        @inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

        mutating func parseString() throws(JSONError) -> String {
            let start = position
            position += 1
            let contentStart = position
            // Fast path: no escapes, so the bytes are the string.
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[contentStart..<position]), as: UTF8.self)
                    position += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { throw error("Invalid control character in string") }
                position += 1
            }
            guard position < bytes.count else { throw error("Unterminated string starting", at: start) }
            var utf8 = Array(bytes[contentStart..<position])
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    position += 1
                    return String(decoding: utf8, as: UTF8.self)
                }
                if byte < 0x20 { throw error("Invalid control character in string") }
                if byte != UInt8(ascii: "\\") {
                    utf8.append(byte)
                    position += 1
                    continue
                }
                position += 1
                guard position < bytes.count else { break }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5C)
                case UInt8(ascii: "/"): utf8.append(0x2F)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800..<0xDC00).contains(scalar), position + 1 < bytes.count,
                       bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                        let save = position
                        position += 2
                        let low = try parseHex4()
                        if (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            position = save
                        }
                    }
                    // A lone surrogate cannot be held by a Swift String: it becomes U+FFFD.
                    let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    utf8.append(contentsOf: String(Character(unicode)).utf8)
                default:
                    throw error("Invalid \\escape", at: position - 2)
                }
            }
            throw error("Unterminated string starting", at: start)
        }

        mutating func parseHex4() throws(JSONError) -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("Invalid \\uXXXX escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt32
                switch byte {
                case 48...57: digit = UInt32(byte - 48)
                case 65...70: digit = UInt32(byte - 55)
                case 97...102: digit = UInt32(byte - 87)
                default: throw error("Invalid \\uXXXX escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }
    }
}

/// A JSON document as a plain value: what the control protocol speaks.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.integer(a), .integer(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        try JSONReader.parse(text, as: JSONValueBuilder.self)
    }

    /// The value of `key` in an object (the last one, as Python keeps it), or nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.0 == key })?.1
    }

    public var stringValue: String? { if case .string(let value) = self { return value } else { return nil } }
    public var intValue: Int? { if case .integer(let value) = self { return value } else { return nil } }
    public var boolValue: Bool? { if case .bool(let value) = self { return value } else { return nil } }

    /// Compact JSON text on one line (no raw newlines: the control protocol is line-framed).
    public var serialized: String {
        var output = ""
        write(to: &output)
        return output
    }

    /// Indented JSON text for people to read (two spaces a level).
    public var prettyPrinted: String {
        var output = ""
        writePretty(to: &output, level: 0)
        return output
    }

    private func writePretty(to output: inout String, level: Int) {
        let indent = String(repeating: "  ", count: level + 1)
        let closing = String(repeating: "  ", count: level)
        switch self {
        case .array(let elements) where !elements.isEmpty:
            output += "[\n"
            for (index, element) in elements.enumerated() {
                output += indent
                element.writePretty(to: &output, level: level + 1)
                output += index + 1 < elements.count ? ",\n" : "\n"
            }
            output += closing + "]"
        case .object(let members) where !members.isEmpty:
            output += "{\n"
            for (index, member) in members.enumerated() {
                output += indent
                JSONValue.writeString(member.0, to: &output)
                output += ": "
                member.1.writePretty(to: &output, level: level + 1)
                output += index + 1 < members.count ? ",\n" : "\n"
            }
            output += closing + "}"
        default:
            write(to: &output)
        }
    }

    public func write(to output: inout String) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .integer(let value): output += String(value)
        case .double(let value):
            output += value.isFinite ? String(value) : "null"
        case .string(let value): JSONValue.writeString(value, to: &output)
        case .array(let elements):
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += "," }
                element.write(to: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { output += "," }
                JSONValue.writeString(member.0, to: &output)
                output += ":"
                member.1.write(to: &output)
            }
            output += "}"
        }
    }

    public static func writeString(_ value: String, to output: inout String) {
        output += "\""
        var pendingStart = value.utf8.startIndex
        let utf8 = value.utf8
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte < 0x20 || byte == 0x22 || byte == 0x5C {
                output += String(value[pendingStart..<index])
                switch byte {
                case 0x22: output += "\\\""
                case 0x5C: output += "\\\\"
                case 0x0A: output += "\\n"
                case 0x0D: output += "\\r"
                case 0x09: output += "\\t"
                default:
                    let hex = String(byte, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
                pendingStart = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        output += String(value[pendingStart..<utf8.endIndex])
        output += "\""
    }
}

public enum JSONValueBuilder: JSONBuilder {
    public static func makeNull() -> JSONValue { .null }
    public static func makeBool(_ value: Bool) -> JSONValue { .bool(value) }
    public static func makeInteger(_ value: Int) -> JSONValue { .integer(value) }
    public static func makeBigInteger(digits: String) -> JSONValue { .double(Double(digits) ?? .nan) }
    public static func makeDouble(_ value: Double) -> JSONValue { .double(value) }
    public static func makeString(_ value: String) -> JSONValue { .string(value) }
    public static func makeArray(_ elements: [JSONValue]) -> JSONValue { .array(elements) }
    public static func makeObject(_ members: [(String, JSONValue)]) -> JSONValue { .object(members) }
}

// MARK: - Checking without building, and walking checked text

extension JSONReader {
    /// Checks that `bytes` hold one JSON value, failing with the error `parse` would report,
    /// without building anything. Documents read lazily are checked once this way, so that
    /// the unchecked walks below can never meet malformed text.
    public static func validate(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONError) {
        var ends = JSONContainerEnds(recording: false)
        try validate(bytes, containerEnds: &ends)
    }

    /// `validate`, noting where the larger objects and arrays end on the way.
    public static func validate(_ bytes: UnsafeBufferPointer<UInt8>, containerEnds: inout JSONContainerEnds) throws(JSONError) {
        // Positions are noted in 32 bits.
        if bytes.count > Int(UInt32.max) { containerEnds = JSONContainerEnds(recording: false) }
        // The builder type is never used: checking builds no values.
        var parser = Parser<JSONValueBuilder>(bytes: bytes)
        parser.skipWhitespace()
        try parser.skipValue(depth: 0, &containerEnds)
        parser.skipWhitespace()
        if parser.position != bytes.count { throw parser.error("Extra data after the JSON value") }
        containerEnds.releaseUnusedCapacity()
    }

    /// The position after the whitespace at `position` in text `validate` accepted.
    @inline(__always)
    public static func skipValidatedWhitespace(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int) -> Int {
        var position = position
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return position
            }
        }
        return position
    }

    /// The end of the string whose opening quote is at `position` (the position after its
    /// closing quote), in text `validate` accepted.
    @inline(__always)
    public static func endOfValidatedString(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int) -> Int {
        var position = position + 1
        while position < bytes.count {
            position += JSONReader.plainBytes(bytes, from: position, stoppingAtControlCharacters: false)
            guard position < bytes.count else { break }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") { return position + 1 }
            position += byte == UInt8(ascii: "\\") ? 2 : 1
        }
        return bytes.count
    }

    /// How many bytes from `position` on, read eight at a time, are no quote, backslash or
    /// (when asked) control character; the bytes after the last whole eight are left to the
    /// caller. Strings are most of a Kubernetes object's text.
    @inline(__always)
    static func plainBytes(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int, stoppingAtControlCharacters: Bool) -> Int {
        #if _endian(big)
        // The lowest flagged byte below is the first in memory only on little-endian machines.
        return 0
        #else
        guard let base = bytes.baseAddress else { return 0 }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        var offset = 0
        while position + offset + 8 <= bytes.count {
            let word = UnsafeRawPointer(base + position + offset).loadUnaligned(as: UInt64.self)
            // A byte's high bit is set in `found` where that byte of `quote` or `backslash` is
            // zero (or, for the control test, the byte is below 0x20). The lowest flag is
            // exact; a borrow can raise false ones above it, which are never read.
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            var found = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
            if stoppingAtControlCharacters { found |= (word &- ones &* 0x20) & ~word }
            found &= highBits
            if found != 0 { return offset + found.trailingZeroBitCount / 8 }
            offset += 8
        }
        return offset
        #endif
    }

    /// The end of the value that starts at `position`, in text `validate` accepted: a larger
    /// object or array ends where `containerEnds` says, a smaller one is stepped over by
    /// counting brackets outside strings.
    public static func endOfValidatedValue(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int,
                                           containerEnds: JSONContainerEnds) -> Int {
        var position = position
        guard position < bytes.count else { return position }
        switch bytes[position] {
        case UInt8(ascii: "\""):
            return endOfValidatedString(bytes, from: position)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            if let end = containerEnds.end(ofContainerAt: position) { return end }
            var depth = 0
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "\""):
                    position = endOfValidatedString(bytes, from: position)
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return position + 1 }
                default:
                    break
                }
                position += 1
            }
            return position
        default:
            // A number or a literal: it runs to the next delimiter.
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09: return position
                default: position += 1
                }
            }
            return position
        }
    }
}

extension JSONReader.Parser {
    /// `parseValue` without the values: the same checks in the same order, so the same
    /// errors at the same places.
    mutating func skipValue(depth: Int, _ ends: inout JSONContainerEnds) throws(JSONError) {
        guard position < bytes.count else { throw error("Expecting value") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            let note = ends.open(at: position)
            try skipObject(depth: depth + 1, &ends)
            ends.close(note, at: position)
        case UInt8(ascii: "["):
            let note = ends.open(at: position)
            try skipArray(depth: depth + 1, &ends)
            ends.close(note, at: position)
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
        default: throw error("Expecting value")
        }
    }

    mutating func skipObject(depth: Int, _ ends: inout JSONContainerEnds) throws(JSONError) {
        if depth > JSONReader.maximumDepth { throw error("Nesting deeper than \(JSONReader.maximumDepth) levels") }
        position += 1
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error("Expecting property name enclosed in double quotes")
            }
            try skipString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw error("Expecting ':' delimiter")
            }
            position += 1
            skipWhitespace()
            try skipValue(depth: depth, &ends)
            skipWhitespace()
            guard position < bytes.count else { throw error("Expecting ',' delimiter") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "}") { position += 1; return }
            throw error("Expecting ',' delimiter")
        }
    }

    mutating func skipArray(depth: Int, _ ends: inout JSONContainerEnds) throws(JSONError) {
        if depth > JSONReader.maximumDepth { throw error("Nesting deeper than \(JSONReader.maximumDepth) levels") }
        position += 1
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            try skipValue(depth: depth, &ends)
            skipWhitespace()
            guard position < bytes.count else { throw error("Expecting ',' delimiter") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "]") { position += 1; return }
            throw error("Expecting ',' delimiter")
        }
    }

    /// `parseString`'s checks (control characters, escapes, `\uXXXX` and surrogate pairs,
    /// termination) without decoding.
    mutating func skipString() throws(JSONError) {
        let start = position
        position += 1
        while position < bytes.count {
            position += JSONReader.plainBytes(bytes, from: position, stoppingAtControlCharacters: true)
            guard position < bytes.count else { break }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return
            }
            if byte < 0x20 { throw error("Invalid control character in string") }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            position += 1
            guard position < bytes.count else { break }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                 UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                continue
            case UInt8(ascii: "u"):
                let scalar = try parseHex4()
                if (0xD800..<0xDC00).contains(scalar), position + 1 < bytes.count,
                   bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                    let save = position
                    position += 2
                    let low = try parseHex4()
                    if !(0xDC00..<0xE000).contains(low) { position = save }
                }
            default:
                throw error("Invalid \\escape", at: position - 2)
            }
        }
        throw error("Unterminated string starting", at: start)
    }
}

/// Where the objects and arrays of at least `minimumLength` bytes of a validated document end,
/// by where they start: walking over one of them later (to reach the members after it) costs
/// a binary search instead of a scan, however deep the document is read.
public struct JSONContainerEnds: Sendable {
    /// Smaller containers are scanned faster than searched for, and most of a document's
    /// containers are small: a handful of entries per Kubernetes object.
    public static let minimumLength = 256
    private var recording: Bool
    /// (start, end) by start: an entry is made when a container opens (after its parent's)
    /// and dropped when it closes short, by which time its smaller children are dropped too.
    private var spans: [(start: UInt32, end: UInt32)] = []

    public init(recording: Bool = true) { self.recording = recording }

    @inline(__always) mutating func open(at position: Int) -> Int {
        guard recording else { return -1 }
        spans.append((UInt32(truncatingIfNeeded: position), 0))
        return spans.count - 1
    }

    @inline(__always) mutating func close(_ note: Int, at end: Int) {
        guard note >= 0 else { return }
        if end - Int(spans[note].start) < JSONContainerEnds.minimumLength {
            spans.removeLast()
        } else {
            spans[note].end = UInt32(truncatingIfNeeded: end)
        }
    }

    /// Many small documents may be kept (one per Kubernetes object): no spare room each.
    mutating func releaseUnusedCapacity() {
        if spans.capacity > spans.count { spans = spans.withUnsafeBufferPointer { Array($0) } }
    }

    /// The position after the object or array that starts at `start`, if it was noted.
    public func end(ofContainerAt start: Int) -> Int? {
        var low = 0
        var high = spans.count
        let wanted = UInt32(truncatingIfNeeded: start)
        while low < high {
            let middle = (low + high) / 2
            if spans[middle].start < wanted { low = middle + 1 } else { high = middle }
        }
        guard low < spans.count, spans[low].start == wanted else { return nil }
        return Int(spans[low].end)
    }
}
