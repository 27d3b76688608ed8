// Python's repr(), float printing, HTML escaping and `%`-formatting.

#if canImport(Glibc)
import Glibc
#endif

/// Python's `repr(x)`.
public func repr(_ value: Value) -> String {
    var out = ""
    var stack: [ObjectIdentifier] = []
    writeRepr(value, to: &out, &stack)
    return out
}

func writeRepr(_ value: Value, to out: inout String) {
    var stack: [ObjectIdentifier] = []
    writeRepr(value, to: &out, &stack)
}

private let maximumReprDepth = 1000

/// `reprStack` holds the containers being printed, innermost last: a list that contains
/// itself prints as `[...]`, as in Python, and absurdly deep nesting is cut short instead of
/// exhausting the stack.
func writeRepr(_ value: Value, to out: inout String, _ reprStack: inout [ObjectIdentifier]) {
    var identity: ObjectIdentifier? = nil
    switch value {
    case .list(let ref): identity = ObjectIdentifier(ref)
    case .dict(let ref): identity = ObjectIdentifier(ref)
    case .namespace(let ns): identity = ObjectIdentifier(ns)
    case .tuple: if reprStack.count > maximumReprDepth { out += "(...)"; return }
    default: break
    }
    if let identity {
        if reprStack.count > maximumReprDepth || reprStack.contains(identity) {
            if case .dict = value { out += "{...}" } else { out += "[...]" }
            return
        }
        reprStack.append(identity)
    }
    defer { if identity != nil { reprStack.removeLast() } }
    switch value {
    case .none: out += "None"
    case .bool(let b): out += b ? "True" : "False"
    case .int(let i): out += String(i)
    case .bigInt(let b): out += b.description
    case .float(let d): out += formatFloatRepr(d)
    case .string(let s): out += reprString(s)
    case .markup(let s): out += "Markup("; out += reprString(s); out += ")"
    case .list(let ref) where !ref.isList:
        switch ref.kind {
        case .range(let start, let stop, let step):
            out += "range(\(start), \(stop)" + (step == 1 ? ")" : ", \(step))")
            return
        case .iterator(let name):
            out += "<\(name) object>"
            return
        case .dictKeys: out += "dict_keys("
        case .dictValues: out += "dict_values("
        default: out += "dict_items("
        }
        writeRepr(.list(ListRef(ref.items)), to: &out, &reprStack)
        out += ")"
    case .list(let ref):
        out += "["
        for (i, item) in ref.items.enumerated() {
            if i > 0 { out += ", " }
            writeRepr(item, to: &out, &reprStack)
        }
        out += "]"
    case .tuple(let items):
        out += "("
        for (i, item) in items.enumerated() {
            if i > 0 { out += ", " }
            writeRepr(item, to: &out, &reprStack)
        }
        if items.count == 1 { out += "," }
        out += ")"
    case .dict(let ref):
        out += "{"
        let keys = ref.keys, values = ref.values
        for i in keys.indices {
            if i > 0 { out += ", " }
            writeRepr(keys[i], to: &out, &reprStack)
            out += ": "
            writeRepr(values[i], to: &out, &reprStack)
        }
        out += "}"
    case .undefined: out += "Undefined"
    case .namespace(let ns):
        out += "<Namespace "
        writeRepr(.dict(ns.attributes), to: &out, &reprStack)
        out += ">"
    case .function(let f):
        switch f.kind {
        case .macro(let closure): out += "<Macro '\(closure.macro.name)'>"
        case .builtin: out += "<function \(f.name)>"
        case .boundMethod(let receiver, let name): out += "<built-in method \(name) of \(receiver.typeName) object>"
        case .loopRecurse: out += "<bound method LoopContext.__call__>"
        case .block: out += "<jinja2.runtime.BlockReference object>"
        }
    case .loop(let loop): out += "<LoopContext \(loop.index0 + 1)/\(loop.length)>"
    case .cycler: out += "<jinja2.utils.Cycler object>"
    case .joiner: out += "<jinja2.utils.Joiner object>"
    // Jinja2 names the template; a template made from a string has no name.
    case .templateReference: out += "<TemplateReference None>"
    }
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and no double one.
public func reprString(_ s: String) -> String {
    var hasSingle = false
    var hasDouble = false
    for byte in s.utf8 {
        if byte == UInt8(ascii: "'") { hasSingle = true } else if byte == UInt8(ascii: "\"") { hasDouble = true }
    }
    let quote: Unicode.Scalar = (hasSingle && !hasDouble) ? "\"" : "'"
    var out = String(quote)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar == quote {
                out += "\\"
                out.unicodeScalars.append(scalar)
            } else if scalar.value < 0x20 || (scalar.value >= 0x7f && scalar.value < 0xa0) {
                out += "\\x" + hex(scalar.value, width: 2)
            } else if scalar.value == 0xad {
                out += "\\xad"
            } else if (scalar.value >= 0xd800 && scalar.value < 0xe000) || scalar.value == 0x2028 || scalar.value == 0x2029
                        || (scalar.properties.generalCategory == .unassigned) || scalar.properties.generalCategory == .format
                        || scalar.properties.generalCategory == .lineSeparator || scalar.properties.generalCategory == .paragraphSeparator
                        || (scalar.properties.generalCategory == .spaceSeparator && scalar.value != 0x20)
                        || scalar.properties.generalCategory == .privateUse {
                if scalar.value <= 0xff { out += "\\x" + hex(scalar.value, width: 2) }
                else if scalar.value <= 0xffff { out += "\\u" + hex(scalar.value, width: 4) }
                else { out += "\\U" + hex(scalar.value, width: 8) }
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    out.unicodeScalars.append(quote)
    return out
}

private func hex(_ value: UInt32, width: Int) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// Python's `repr(float)`: the shortest round-tripping digits, fixed notation for decimal
/// exponents in [-4, 16), scientific otherwise, always with a `.0` or exponent.
public func formatFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
    let (negative, digits, exponent) = shortestDigits(d)
    var out = negative ? "-" : ""
    // `exponent` is the decimal exponent of the first digit.
    if exponent >= -4 && exponent < 16 {
        if exponent < 0 {
            out += "0." + String(repeating: "0", count: -exponent - 1) + digits
        } else if digits.count <= exponent + 1 {
            out += digits + String(repeating: "0", count: exponent + 1 - digits.count) + ".0"
        } else {
            let split = digits.index(digits.startIndex, offsetBy: exponent + 1)
            out += digits[..<split] + "." + digits[split...]
        }
    } else {
        out += String(digits.prefix(1))
        if digits.count > 1 { out += "." + digits.dropFirst() }
        out += exponent < 0 ? "e-" : "e+"
        let magnitude = String(abs(exponent))
        if magnitude.count < 2 { out += "0" }
        out += magnitude
    }
    return out
}

/// Shortest round-trip digits (no leading/trailing zeros) and the first digit's exponent,
/// taken from Swift's own shortest representation.
func shortestDigits(_ d: Double) -> (Bool, String, Int) {
    let text = abs(d).description
    var mantissa = Substring(text)
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        mantissa = text[..<e]
        exponent = Int(text[text.index(after: e)...]) ?? 0
    }
    var digits = ""
    var pointPosition: Int? = nil
    for character in mantissa {
        if character == "." { pointPosition = digits.count } else { digits.append(character) }
    }
    let integerDigits = pointPosition ?? digits.count
    // Strip leading zeros, adjusting the exponent.
    var leading = 0
    for character in digits { if character == "0" { leading += 1 } else { break } }
    digits.removeFirst(min(leading, digits.count))
    while digits.last == "0" { digits.removeLast() }
    if digits.isEmpty { return (d < 0, "0", 0) }
    let firstExponent = integerDigits - leading - 1 + exponent
    return (d < 0, digits, firstExponent)
}

/// markupsafe's escape: & < > " ' as entities.
public func htmlEscape(_ s: String) -> String {
    var needs = false
    for byte in s.utf8 {
        switch byte {
        case UInt8(ascii: "&"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\""), UInt8(ascii: "'"): needs = true
        default: continue
        }
        if needs { break }
    }
    if !needs { return s }
    var out = ""
    out.reserveCapacity(s.utf8.count + 16)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&#34;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}

// MARK: - %-formatting

/// Python's `format % values` for str (Markup callers escape arguments before).
public func percentFormat(_ format: String, _ values: Value) throws(TemplateError) -> String {
    if let simple = simplePercentFormat(format, values) { return simple }
    return try generalPercentFormat(format, values)
}

/// `percentFormat` for what `simplePercentFormat` leaves: flags, widths, precision, mapping
/// keys and every conversion.
func generalPercentFormat(_ format: String, _ values: Value) throws(TemplateError) -> String {
    var arguments: [Value]
    var mapping: DictRef? = nil
    switch values {
    case .tuple(let items): arguments = items
    case .dict(let ref): arguments = [values]; mapping = ref
    default: arguments = [values]
    }
    var next = 0
    var usedMapping = false
    var out = ""
    let scalars = Array(format.unicodeScalars)
    var i = 0
    func nextArgument() throws(TemplateError) -> Value {
        guard next < arguments.count else { throw TemplateError(.type, "not enough arguments for format string") }
        defer { next += 1 }
        return arguments[next]
    }
    while i < scalars.count {
        let c = scalars[i]
        if c != "%" { out.unicodeScalars.append(c); i += 1; continue }
        i += 1
        guard i < scalars.count else { throw TemplateError(.value, "incomplete format") }
        var key: String? = nil
        if scalars[i] == "(" {
            var depth = 1
            var j = i + 1
            var name = ""
            while j < scalars.count {
                if scalars[j] == "(" { depth += 1 } else if scalars[j] == ")" { depth -= 1; if depth == 0 { break } }
                name.unicodeScalars.append(scalars[j])
                j += 1
            }
            guard j < scalars.count else { throw TemplateError(.value, "incomplete format key") }
            key = name
            i = j + 1
        }
        var leftAlign = false, plus = false, space = false, alternate = false, zero = false
        flags: while i < scalars.count {
            switch scalars[i] {
            case "-": leftAlign = true
            case "+": plus = true
            case " ": space = true
            case "#": alternate = true
            case "0": zero = true
            default: break flags
            }
            i += 1
        }
        var width: Int? = nil
        if i < scalars.count, scalars[i] == "*" {
            guard let w = try nextArgument().intValue else { throw TemplateError(.type, "* wants int") }
            width = w
            if w < 0 { leftAlign = true; width = -w }
            i += 1
        } else {
            var w = 0, any = false
            while i < scalars.count, let digit = Int(String(scalars[i])), scalars[i].isASCII { w = w * 10 + digit; any = true; i += 1 }
            if any { width = w }
        }
        var precision: Int? = nil
        if i < scalars.count, scalars[i] == "." {
            i += 1
            if i < scalars.count, scalars[i] == "*" {
                guard let p = try nextArgument().intValue else { throw TemplateError(.type, "* wants int") }
                precision = max(0, p)
                i += 1
            } else {
                var p = 0
                while i < scalars.count, let digit = Int(String(scalars[i])), scalars[i].isASCII { p = p * 10 + digit; i += 1 }
                precision = p
            }
        }
        while i < scalars.count, scalars[i] == "l" || scalars[i] == "h" || scalars[i] == "L" { i += 1 }
        guard i < scalars.count else { throw TemplateError(.value, "incomplete format") }
        let conversion = scalars[i]
        i += 1
        if conversion == "%" { out += "%"; continue }
        var argument: Value
        if let key {
            guard let mapping else { throw TemplateError(.type, "format requires a mapping") }
            usedMapping = true
            guard let value = mapping[.string(key)] else { throw TemplateError(.key, reprString(key)) }
            argument = value
        } else {
            argument = try nextArgument()
        }
        if case .undefined(let u) = argument, "diuxXoeEfFgGc".unicodeScalars.contains(conversion) {
            if "diueEfFgG".unicodeScalars.contains(conversion) { throw u.error }
            argument = .undefined(u)
        }
        var body: String
        var signPrefix = ""
        var numeric = false
        switch conversion {
        case "s":
            body = argument.pyStr
            if let precision { body = String(body.unicodeScalars.prefix(precision)) }
        case "r", "a":
            body = repr(argument)
            if let precision { body = String(body.unicodeScalars.prefix(precision)) }
        case "d", "i", "u":
            numeric = true
            var integer: Value
            switch argument {
            case .int, .bigInt: integer = argument
            case .bool(let b): integer = .int(b ? 1 : 0)
            case .float(let d):
                guard d.isFinite else { throw TemplateError(d.isNaN ? .value : .overflow, d.isNaN ? "cannot convert float NaN to integer" : "cannot convert float infinity to integer") }
                integer = floatToInteger(d.rounded(.towardZero))
            default: throw TemplateError(.type, "%\(conversion) format: a real number is required, not \(argument.typeName)")
            }
            var text = integer.pyStr
            if text.hasPrefix("-") { text.removeFirst(); signPrefix = "-" } else if plus { signPrefix = "+" } else if space { signPrefix = " " }
            if let precision, text.count < precision { text = String(repeating: "0", count: precision - text.count) + text }
            body = text
        case "x", "X", "o":
            numeric = true
            let radix = conversion == "o" ? 8 : 16
            var text: String
            switch argument {
            case .int(let v): text = String(v.magnitude, radix: radix); if v < 0 { signPrefix = "-" }
            case .bool(let b): text = b ? "1" : "0"
            case .bigInt(let b):
                text = bigRadix(b, radix: radix)
                if b.negative { signPrefix = "-" }
            default: throw TemplateError(.type, "%\(conversion) format: an integer is required, not \(argument.typeName)")
            }
            if conversion == "X" { text = text.uppercased() }
            if signPrefix.isEmpty { if plus { signPrefix = "+" } else if space { signPrefix = " " } }
            if let precision, text.count < precision { text = String(repeating: "0", count: precision - text.count) + text }
            if alternate { signPrefix += conversion == "o" ? "0o" : (conversion == "X" ? "0X" : "0x") }
            body = text
        case "e", "E", "f", "F", "g", "G":
            numeric = true
            guard let d = argument.doubleValue else {
                throw TemplateError(.type, "must be real number, not \(argument.typeName)")
            }
            if d.isNaN || d.isInfinite {
                body = d.isNaN ? "nan" : "inf"
                if conversion == "E" || conversion == "F" || conversion == "G" { body = body.uppercased() }
                zero = false
            } else {
                var spec = "%"
                if alternate { spec += "#" }
                spec += ".\(precision ?? 6)"
                spec.unicodeScalars.append(conversion)
                body = cFormat(spec, abs(d))
            }
            if d < 0 || (d == 0 && d.sign == .minus) { signPrefix = "-" } else if plus { signPrefix = "+" } else if space { signPrefix = " " }
        case "c":
            if case .bool(let b) = argument { argument = .int(b ? 1 : 0) }
            switch argument {
            case .bigInt: throw TemplateError(.overflow, "%c arg not in range(0x110000)")
            case .int(let v):
                guard let scalar = Unicode.Scalar(UInt32(clamping: max(0, v))), v >= 0 else { throw TemplateError(.overflow, "%c arg not in range(0x110000)") }
                body = String(scalar)
            case .string(let s), .markup(let s):
                guard s.unicodeScalars.count == 1 else { throw TemplateError(.type, "%c requires int or char") }
                body = s
            default: throw TemplateError(.type, "%c requires int or char")
            }
        default:
            let code = "0x" + String(conversion.value, radix: 16)
            throw TemplateError(.value, "unsupported format character '\(conversion)' (\(code)) at index \(i - 1)")
        }
        let total = signPrefix.unicodeScalars.count + body.unicodeScalars.count
        if let width, total < width {
            let padding = width - total
            if leftAlign {
                out += signPrefix + body + String(repeating: " ", count: padding)
            } else if zero && numeric {
                out += signPrefix + String(repeating: "0", count: padding) + body
            } else {
                out += String(repeating: " ", count: padding) + signPrefix + body
            }
        } else {
            out += signPrefix + body
        }
    }
    // Python skips this check when the argument is a mapping or any other subscriptable
    // that is not a tuple or str (a list, say).
    var subscriptable = false
    switch values {
    case .dict, .list, .undefined: subscriptable = true
    default: break
    }
    if next < arguments.count, !subscriptable {
        throw TemplateError(.type, "not all arguments converted during string formatting")
    }
    _ = usedMapping
    return out
}

/// The common case without flags or widths (`"%d_%d" % (a, b)`, `"%s" % name`) in one pass
/// over the bytes; nil sends anything else to the general implementation.
func simplePercentFormat(_ format: String, _ values: Value) -> String? {
    switch values {
    case .tuple(let items): return simplePercentFormat(format, arguments: items)
    case .dict, .list, .undefined: return nil
    default: return simplePercentFormat(format, arguments: CollectionOfOne(values))
    }
}

/// `simplePercentFormat` of the items of a tuple (or of one value), however they are held.
func simplePercentFormat<Arguments: RandomAccessCollection<Value>>(_ format: String, arguments: Arguments) -> String?
where Arguments.Index == Int {
    // Written straight into a buffer as long as the longest result can be (on the stack for a
    // `"%d_%d"` of a loop's counters), and the String made from it once.
    // Each conversion may pad its field to `maximumSimpleWidth`.
    var capacity = format.utf8.count + arguments.count * maximumSimpleWidth
    for argument in arguments {
        switch argument {
        case .int: capacity += Output.maximumDecimalLength
        case .string(let text): capacity += text.utf8.count
        default: return nil
        }
    }
    return format.withUTF8Bytes { utf8 in
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            simplePercentFormat(utf8, arguments: arguments, into: buffer)
        }
    }
}

/// The widest field `simplePercentFormat` pads (`%03d`, `%-20s`); wider ones go the general way.
private let maximumSimpleWidth = 64

/// The formatting itself, into `buffer` (large enough): nil for anything but `%s`, `%d` and
/// `%%` with as many arguments as they take; `%s` and `%d` may have the flags `0` and `-` and
/// a width (of an ASCII str or an int: Python counts code points).
@inline(__always)
private func simplePercentFormat<Arguments: RandomAccessCollection<Value>>(
    _ utf8: UnsafeBufferPointer<UInt8>, arguments: Arguments, into buffer: UnsafeMutableBufferPointer<UInt8>
) -> String? where Arguments.Index == Int {
    guard let base = buffer.baseAddress else { return nil }
    var length = 0
    var next = 0
    var index = 0
    while index < utf8.count {
        let byte = utf8[index]
        index += 1
        // Literal text, byte by byte: formats are short.
        if byte != UInt8(ascii: "%") {
            base[length] = byte
            length += 1
            continue
        }
        guard index < utf8.count else { return nil }
        var zeroPadding = false, leftAligned = false, width = 0
        if utf8[index] == UInt8(ascii: "-") || (utf8[index] >= UInt8(ascii: "0") && utf8[index] <= UInt8(ascii: "9")) {
            flags: while index < utf8.count {
                switch utf8[index] {
                case UInt8(ascii: "0"): zeroPadding = true
                case UInt8(ascii: "-"): leftAligned = true
                default: break flags
                }
                index += 1
            }
            while index < utf8.count, utf8[index] >= UInt8(ascii: "0"), utf8[index] <= UInt8(ascii: "9") {
                width = width * 10 + Int(utf8[index] - UInt8(ascii: "0"))
                guard width <= maximumSimpleWidth else { return nil }
                index += 1
            }
            guard index < utf8.count else { return nil }
        }
        let conversion = utf8[index]
        index += 1
        switch conversion {
        case UInt8(ascii: "%"):
            guard width == 0, !zeroPadding, !leftAligned else { return nil }
            base[length] = UInt8(ascii: "%")
            length += 1
        case UInt8(ascii: "s"), UInt8(ascii: "d"):
            guard next < arguments.count else { return nil }
            let field = length
            switch arguments[arguments.startIndex + next] {
            case .int(let i):
                length += Output.writeDecimal(i, to: base + length)
            case .string(let text) where conversion == UInt8(ascii: "s"):
                for unit in text.utf8 {
                    if width > 0 && unit >= 0x80 { return nil }
                    base[length] = unit
                    length += 1
                }
            default:
                return nil
            }
            if width > length - field {
                let padding = width - (length - field)
                if leftAligned {
                    (base + length).initialize(repeating: UInt8(ascii: " "), count: padding)
                } else {
                    // Zeros go after the sign, and only for numbers (`%05s` pads with spaces).
                    let zeros = zeroPadding && conversion == UInt8(ascii: "d")
                    let sign = zeros && base[field] == UInt8(ascii: "-") ? 1 : 0
                    let moved = length - field - sign
                    memmove(base + field + sign + padding, base + field + sign, moved)
                    (base + field + sign).initialize(repeating: zeros ? UInt8(ascii: "0") : UInt8(ascii: " "), count: padding)
                }
                length += padding
            }
            next += 1
        default:
            return nil
        }
    }
    guard next == arguments.count else { return nil }
    return String(decoding: UnsafeBufferPointer(start: base, count: length), as: UTF8.self)
}

func floatToInteger(_ d: Double) -> Value {
    if let i = Int(exactly: d) { return .int(i) }
    // Exact conversion of a large integral double.
    var magnitude = abs(d)
    var limbs: [UInt32] = []
    while magnitude >= 1 {
        let remainder = magnitude.truncatingRemainder(dividingBy: 4294967296.0)
        limbs.append(UInt32(remainder))
        magnitude = (magnitude - remainder) / 4294967296.0
    }
    return BigInt(limbs: limbs, negative: d < 0).normalized
}

func bigRadix(_ b: BigInt, radix: Int) -> String {
    var digits: [Character] = []
    var current = BigInt(limbs: b.limbs, negative: false)
    let alphabet = Array("0123456789abcdef")
    while !current.isZero {
        let (q, r) = current.dividedBySmall(UInt32(radix))
        digits.append(alphabet[Int(r)])
        current = q
    }
    return digits.isEmpty ? "0" : String(digits.reversed())
}

/// C's printf formatting of one double, which Python's own float formatting follows.
func cFormat(_ format: String, _ value: Double) -> String {
    var buffer = [CChar](repeating: 0, count: 128)
    let needed = withVaList([value]) { vsnprintf(&buffer, buffer.count, format, $0) }
    if needed >= buffer.count {
        buffer = [CChar](repeating: 0, count: Int(needed) + 1)
        _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, format, $0) }
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
