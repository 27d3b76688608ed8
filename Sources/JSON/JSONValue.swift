// JSON as a plain value, and its writer: what the control protocol speaks.

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

