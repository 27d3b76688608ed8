// Python's str.format() and format(value, spec).

/// Python's `str.format(*args, **kwargs)`.
func pyStrFormat(_ format: String, _ args: Arguments, mapping: Value? = nil, escape: Bool = false) throws(TemplateError) -> String {
    var state = FormatState(args: args, mapping: mapping, escape: escape)
    return try state.render(Array(format.unicodeScalars), depth: 2)
}

private struct FormatState {
    let args: Arguments
    /// `format_map`'s argument: names are looked up with `mapping[name]`.
    let mapping: Value?
    let escape: Bool
    var autoNumber = 0
    /// nil until the first field decides between automatic and manual numbering.
    var automatic: Bool? = nil

    init(args: Arguments, mapping: Value?, escape: Bool) {
        self.args = args
        self.mapping = mapping
        self.escape = escape
    }

    mutating func render(_ s: [Unicode.Scalar], depth: Int) throws(TemplateError) -> String {
        if depth < 0 { throw TemplateError(.value, "Max string recursion exceeded") }
        var out = ""
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "}" {
                if i + 1 < s.count && s[i + 1] == "}" { out += "}"; i += 2; continue }
                throw TemplateError(.value, "Single '}' encountered in format string")
            }
            if c != "{" { out.unicodeScalars.append(c); i += 1; continue }
            if i + 1 < s.count && s[i + 1] == "{" { out += "{"; i += 2; continue }
            if i + 1 == s.count { throw TemplateError(.value, "Single '{' encountered in format string") }
            // Find the matching close brace, counting nested fields in the spec.
            var level = 1
            var j = i + 1
            var bracket = false
            while j < s.count {
                let d = s[j]
                if bracket {
                    if d == "]" { bracket = false }
                } else if d == "[" {
                    bracket = true
                } else if d == "{" {
                    level += 1
                } else if d == "}" {
                    level -= 1
                    if level == 0 { break }
                }
                j += 1
            }
            if j >= s.count { throw TemplateError(.value, "expected '}' before end of string") }
            out += try field(Array(s[(i + 1)..<j]), depth: depth)
            i = j + 1
        }
        return out
    }

    mutating func field(_ body: [Unicode.Scalar], depth: Int) throws(TemplateError) -> String {
        // field_name [! conversion] [: spec]
        var k = 0
        var bracket = false
        while k < body.count {
            let c = body[k]
            if bracket { if c == "]" { bracket = false } } else if c == "[" { bracket = true } else if c == "!" || c == ":" { break }
            k += 1
        }
        let name = Array(body[0..<k])
        var conversion: Unicode.Scalar? = nil
        var spec: [Unicode.Scalar] = []
        if k < body.count && body[k] == "!" {
            guard k + 1 < body.count else { throw TemplateError(.value, "end of string while looking for conversion specifier") }
            conversion = body[k + 1]
            k += 2
            if k < body.count && body[k] != ":" { throw TemplateError(.value, "expected ':' after conversion specifier") }
        }
        if k < body.count && body[k] == ":" { spec = Array(body[(k + 1)...]) }
        var value = try lookup(name)
        switch conversion {
        case nil: break
        case "r": value = .string(repr(value))
        case "s": value = .string(value.pyStr)
        case "a": value = .string(asciiRepr(value))
        case let other?: throw TemplateError(.value, "Unknown conversion specifier \(String(other))")
        }
        let renderedSpec = spec.contains("{") ? try render(spec, depth: depth - 1) : scalarString(spec)
        let formatted = try formatValue(value, renderedSpec)
        if escape, !(value.stringValue != nil && { if case .markup = value { return true } else { return false } }()) {
            return htmlEscape(formatted)
        }
        return formatted
    }

    mutating func lookup(_ name: [Unicode.Scalar]) throws(TemplateError) -> Value {
        var k = 0
        while k < name.count && name[k] != "." && name[k] != "[" { k += 1 }
        let first = scalarString(name[0..<k])
        var value: Value
        if first.isEmpty {
            if automatic == false {
                throw TemplateError(.value, "cannot switch from manual field specification to automatic field numbering")
            }
            automatic = true
            value = try positional(autoNumber)
            autoNumber += 1
        } else if let index = Int(first), first.unicodeScalars.allSatisfy({ $0.value >= 0x30 && $0.value <= 0x39 }) {
            if automatic == true {
                throw TemplateError(.value, "cannot switch from automatic field numbering to manual field specification")
            }
            automatic = false
            value = try positional(index)
        } else {
            if let mapping {
                value = try pythonGetitem(mapping, .string(first))
            } else {
                guard let found = args.keyword(first) else { throw TemplateError(.key, reprString(first)) }
                value = found
            }
        }
        while k < name.count {
            if name[k] == "." {
                var j = k + 1
                while j < name.count && name[j] != "." && name[j] != "[" { j += 1 }
                let attribute = scalarString(name[(k + 1)..<j])
                if attribute.isEmpty { throw TemplateError(.value, "Empty attribute in format string") }
                value = try pythonGetattr(value, attribute)
                k = j
            } else if name[k] == "[" {
                var j = k + 1
                while j < name.count && name[j] != "]" { j += 1 }
                if j >= name.count { throw TemplateError(.value, "Missing ']' in format string") }
                let keyText = scalarString(name[(k + 1)..<j])
                if keyText.isEmpty { throw TemplateError(.value, "Empty attribute in format string") }
                let key: Value = keyText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? (Int(keyText).map(Value.int) ?? .string(keyText)) : .string(keyText)
                value = try pythonGetitem(value, key)
                k = j + 1
                if k < name.count && name[k] != "." && name[k] != "[" {
                    throw TemplateError(.value, "Only '.' or '[' may follow ']' in format field specifier")
                }
            } else {
                k += 1
            }
        }
        return value
    }

    func positional(_ index: Int) throws(TemplateError) -> Value {
        guard index < args.positional.count else {
            throw TemplateError(.index, "Replacement index \(index) out of range for positional args tuple")
        }
        return args.positional[index]
    }
}

/// Python's `getattr(obj, name)` (no fallback to items, unlike Jinja2's lookup).
private func pythonGetattr(_ value: Value, _ name: String) throws(TemplateError) -> Value {
    if case .dict = value, !methodExists(value, name) {
        throw TemplateError(.attribute, "'dict' object has no attribute '\(name)'")
    }
    let found = getAttribute(value, name)
    if case .undefined = found { throw TemplateError(.attribute, "'\(value.typeName)' object has no attribute '\(name)'") }
    return found
}

/// Python's `obj[key]`.
private func pythonGetitem(_ value: Value, _ key: Value) throws(TemplateError) -> Value {
    switch value {
    case .dict(let ref):
        guard let found = ref[key] else { throw TemplateError(.key, repr(key)) }
        return found
    case .list(let ref):
        guard let i = key.intValue else { throw TemplateError(.type, "list indices must be integers or slices, not \(key.typeName)") }
        guard let found = pyIndex(ref.items, i) else { throw TemplateError(.index, "list index out of range") }
        return found
    case .tuple(let items):
        guard let i = key.intValue else { throw TemplateError(.type, "tuple indices must be integers or slices, not \(key.typeName)") }
        guard let found = pyIndex(items, i) else { throw TemplateError(.index, "tuple index out of range") }
        return found
    case .string(let s), .markup(let s):
        guard let i = key.intValue else { throw TemplateError(.type, "string indices must be integers, not '\(key.typeName)'") }
        let scalars = Array(s.unicodeScalars)
        let position = i < 0 ? i + scalars.count : i
        guard position >= 0 && position < scalars.count else { throw TemplateError(.index, "string index out of range") }
        return .string(String(scalars[position]))
    default:
        throw TemplateError(.type, "'\(value.typeName)' object is not subscriptable")
    }
}

/// Python's `ascii(x)`: repr with non-ASCII characters escaped.
func asciiRepr(_ value: Value) -> String {
    var out = ""
    for c in repr(value).unicodeScalars {
        if c.isASCII { out.unicodeScalars.append(c); continue }
        let hex = String(c.value, radix: 16)
        if c.value <= 0xFF { out += "\\x" + String(repeating: "0", count: 2 - hex.count) + hex } else if c.value <= 0xFFFF {
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else { out += "\\U" + String(repeating: "0", count: 8 - hex.count) + hex }
    }
    return out
}

// MARK: - format(value, spec)

private struct FormatSpec {
    var fill: Unicode.Scalar = " "
    var align: Unicode.Scalar? = nil
    var sign: Unicode.Scalar? = nil
    var coerceNegativeZero = false
    var alternate = false
    var width = 0
    var grouping: Unicode.Scalar? = nil
    var precision: Int? = nil
    var type: Unicode.Scalar? = nil
    /// The '0' flag without an explicit alignment: numbers pad after the sign.
    var zeroPadded = false

    init(_ text: String, typeName: String) throws(TemplateError) {
        let p = Array(text.unicodeScalars)
        var i = 0
        func isAlign(_ c: Unicode.Scalar) -> Bool { c == "<" || c == ">" || c == "=" || c == "^" }
        if p.count >= 2 && isAlign(p[1]) {
            fill = p[0]; align = p[1]; i = 2
        } else if p.count >= 1 && isAlign(p[0]) {
            align = p[0]; i = 1
        }
        if i < p.count && (p[i] == "+" || p[i] == "-" || p[i] == " ") { sign = p[i]; i += 1 }
        if i < p.count && p[i] == "z" { coerceNegativeZero = true; i += 1 }
        if i < p.count && p[i] == "#" { alternate = true; i += 1 }
        if i < p.count && p[i] == "0" {
            if align == nil { fill = "0"; zeroPadded = true }
            i += 1
        }
        while i < p.count, p[i].value >= 0x30 && p[i].value <= 0x39 {
            let (tens, o1) = width.multipliedReportingOverflow(by: 10)
            let (next, o2) = tens.addingReportingOverflow(Int(p[i].value - 0x30))
            if o1 || o2 { throw TemplateError(.value, "Too many decimal digits in format string") }
            width = next; i += 1
        }
        if i < p.count && (p[i] == "," || p[i] == "_") { grouping = p[i]; i += 1 }
        if i < p.count && p[i] == "." {
            i += 1
            var value = 0
            var any = false
            while i < p.count, p[i].value >= 0x30 && p[i].value <= 0x39 {
                let (tens, o1) = value.multipliedReportingOverflow(by: 10)
                let (next, o2) = tens.addingReportingOverflow(Int(p[i].value - 0x30))
                if o1 || o2 { throw TemplateError(.value, "Too many decimal digits in format string") }
                value = next; i += 1; any = true
            }
            if !any { throw TemplateError(.value, "Format specifier missing precision") }
            precision = value
        }
        if p.count - i > 1 {
            throw TemplateError(.value, "Invalid format specifier '\(text)' for object of type '\(typeName)'")
        }
        if i < p.count { type = p[i] }
    }

    /// Pads `body` (with `prefix` = sign and base prefix) to the width.
    func pad(_ prefix: String, _ body: String, defaultAlign: Unicode.Scalar) throws(TemplateError) -> String {
        let length = prefix.unicodeScalars.count + body.unicodeScalars.count
        guard width > length else { return prefix + body }
        try requireBuildable(width)
        let padding = width - length
        switch align ?? (zeroPadded && defaultAlign == ">" ? "=" : defaultAlign) {
        case "<": return prefix + body + repeated(fill, padding)
        case "^": return repeated(fill, padding / 2) + prefix + body + repeated(fill, padding - padding / 2)
        case "=": return prefix + repeated(fill, padding) + body
        default: return repeated(fill, padding) + prefix + body
        }
    }
}

/// Inserts `separator` every `every` digits from the right of a digit string.
private func grouped(_ digits: String, _ separator: Unicode.Scalar, every: Int) -> String {
    let scalars = Array(digits.unicodeScalars)
    var out = ""
    for (i, c) in scalars.enumerated() {
        if i > 0 && (scalars.count - i) % every == 0 { out.unicodeScalars.append(separator) }
        out.unicodeScalars.append(c)
    }
    return out
}

/// Grouped digits; with zero padding the zeros are grouped too, as Python pads before grouping.
private func groupedPadded(_ digits: String, _ separator: Unicode.Scalar, every: Int, spec: FormatSpec, used: Int) -> String {
    var result = grouped(digits, separator, every: every)
    guard spec.fill == "0", spec.align == "=" || (spec.align == nil && spec.zeroPadded) else { return result }
    var padded = digits
    while result.count < spec.width - used {
        padded = "0" + padded
        result = grouped(padded, separator, every: every)
    }
    return result
}

/// Python's `format(value, spec)`.
func formatValue(_ value: Value, _ specText: String) throws(TemplateError) -> String {
    switch value {
    case .string(let s), .markup(let s):
        if specText.isEmpty { return s }
        let spec = try FormatSpec(specText, typeName: "str")
        if let type = spec.type, type != "s" {
            throw TemplateError(.value, "Unknown format code '\(String(type))' for object of type 'str'")
        }
        if spec.sign == " " { throw TemplateError(.value, "Space not allowed in string format specifier") }
        if spec.sign != nil { throw TemplateError(.value, "Sign not allowed in string format specifier") }
        if spec.alternate { throw TemplateError(.value, "Alternate form (#) not allowed in string format specifier") }
        if spec.align == "=" { throw TemplateError(.value, "'=' alignment not allowed in string format specifier") }
        if let grouping = spec.grouping { throw TemplateError(.value, "Cannot specify '\(String(grouping))' with 's'.") }
        var body = s
        if let precision = spec.precision, precision < s.unicodeScalars.count {
            body = scalarString(s.unicodeScalars.prefix(precision))
        }
        return try spec.pad("", body, defaultAlign: "<")
    case .int, .bigInt, .bool:
        if case .bool = value, specText.isEmpty { return value.pyStr }
        let spec = try FormatSpec(specText, typeName: "int")
        switch spec.type {
        case "e", "E", "f", "F", "g", "G", "%":
            return try formatFloat(value.doubleValue ?? 0, spec)
        default:
            return try formatInteger(value, spec)
        }
    case .float(let d):
        if specText.isEmpty { return formatFloatRepr(d) }
        return try formatFloat(d, try FormatSpec(specText, typeName: "float"))
    default:
        if specText.isEmpty { return value.pyStr }
        throw TemplateError(.type, "unsupported format string passed to \(value.typeName).__format__")
    }
}

private func formatInteger(_ value: Value, _ spec: FormatSpec) throws(TemplateError) -> String {
    if spec.precision != nil { throw TemplateError(.value, "Precision not allowed in integer format specifier") }
    let negative: Bool
    var magnitude: String
    let radix: Int
    var prefix = ""
    switch spec.type {
    case nil, "d", "n": radix = 10
    case "b": radix = 2; prefix = "0b"
    case "o": radix = 8; prefix = "0o"
    case "x", "X": radix = 16; prefix = "0x"
    case "c":
        if spec.sign != nil { throw TemplateError(.value, "Sign not allowed with integer format specifier 'c'") }
        guard let code = value.intValue, code >= 0, code <= 0x10FFFF, let scalar = Unicode.Scalar(UInt32(code)) else {
            throw TemplateError(.overflow, "%c arg not in range(0x110000)")
        }
        return try spec.pad("", String(scalar), defaultAlign: ">")
    case let other?:
        throw TemplateError(.value, "Unknown format code '\(String(other))' for object of type '\(value.typeName)'")
    }
    switch value {
    case .bigInt(let b):
        negative = b.negative
        magnitude = radix == 10 ? (b.negative ? String(b.description.dropFirst()) : b.description) : bigRadix(b, radix: radix)
    default:
        let i = value.intValue ?? 0
        negative = i < 0
        magnitude = String(i.magnitude, radix: radix)
    }
    if spec.type == "X" { magnitude = magnitude.uppercased(); prefix = "0X" }
    if let grouping = spec.grouping {
        if radix != 10 && grouping == "," {
            throw TemplateError(.value, "Cannot specify ',' with '\(String(spec.type ?? "d"))'.")
        }
        let head = (negative || spec.sign == "+" || spec.sign == " " ? 1 : 0) + (spec.alternate ? prefix.count : 0)
        magnitude = groupedPadded(magnitude, grouping, every: radix == 10 ? 3 : 4, spec: spec, used: head)
    }
    let sign = negative ? "-" : spec.sign == "+" ? "+" : spec.sign == " " ? " " : ""
    return try spec.pad(sign + (spec.alternate ? prefix : ""), magnitude, defaultAlign: ">")
}

private func formatFloat(_ value: Double, _ spec: FormatSpec) throws(TemplateError) -> String {
    var d = value
    var type = spec.type
    switch type {
    case nil, "e", "E", "f", "F", "g", "G", "n", "%": break
    case let other?: throw TemplateError(.value, "Unknown format code '\(String(other))' for object of type 'float'")
    }
    if type == "n" { type = "g" }
    var suffix = ""
    if type == "%" { d *= 100; suffix = "%"; type = "f" }
    var negative = d.sign == .minus && !d.isNaN
    let magnitude = Swift.abs(d)
    var body: String
    if magnitude.isNaN || magnitude.isInfinite {
        body = magnitude.isNaN ? "nan" : "inf"
        if type == "E" || type == "F" || type == "G" { body = body.uppercased() }
    } else if type == nil {
        if let precision = spec.precision {
            body = cFormat(magnitude, precision: Swift.max(precision, 1), conversion: spec.alternate ? "#g" : "g")
            if !body.contains(".") && !body.contains("e") { body += ".0" }
        } else {
            body = formatFloatRepr(magnitude)
        }
    } else {
        let conversion = String(type ?? "g")
        var precision = spec.precision ?? 6
        if (type == "g" || type == "G") && precision == 0 { precision = 1 }
        body = cFormat(magnitude, precision: precision, conversion: (spec.alternate ? "#" : "") + conversion)
    }
    if spec.coerceNegativeZero && negative, body.allSatisfy({ $0 == "0" || $0 == "." || $0 == "e" || $0 == "+" || $0 == "-" }) {
        negative = false
    }
    if let grouping = spec.grouping {
        var integerEnd = body.startIndex
        while integerEnd < body.endIndex, body[integerEnd].isASCII, body[integerEnd].isNumber { integerEnd = body.index(after: integerEnd) }
        let rest = String(body[integerEnd...])
        let head = (negative || spec.sign == "+" || spec.sign == " " ? 1 : 0) + rest.count + suffix.count
        body = groupedPadded(String(body[..<integerEnd]), grouping, every: 3, spec: spec, used: head) + rest
    }
    let sign = negative ? "-" : spec.sign == "+" ? "+" : spec.sign == " " ? " " : ""
    return try spec.pad(sign, body + suffix, defaultAlign: ">")
}

/// C's printf conversion of a finite non-negative double (glibc rounds correctly, as Python does).
func cFormat(_ d: Double, precision: Int, conversion: String) -> String {
    let alternate = conversion.hasPrefix("#")
    return cFormat("%\(alternate ? "#" : "").\(precision)\(conversion.dropFirst(alternate ? 1 : 0))", d)
}
