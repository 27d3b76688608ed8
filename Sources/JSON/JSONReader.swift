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
                    let scalar = try parseUnicodeEscape()
                    // A lone surrogate cannot be held by a Swift String: it becomes U+FFFD.
                    let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    utf8.append(contentsOf: String(Character(unicode)).utf8)
                default:
                    throw error("Invalid \\escape", at: position - 2)
                }
            }
            throw error("Unterminated string starting", at: start)
        }

        /// The code point of the `\uXXXX` escape whose digits start at `position`, with the
        /// escape after it when the two are a surrogate pair (a lone surrogate is returned as is).
        mutating func parseUnicodeEscape() throws(JSONError) -> UInt32 {
            let scalar = try parseHex4()
            if (0xD800..<0xDC00).contains(scalar), position + 1 < bytes.count,
               bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                let save = position
                position += 2
                let low = try parseHex4()
                if (0xDC00..<0xE000).contains(low) { return 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00) }
                position = save
            }
            return scalar
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

