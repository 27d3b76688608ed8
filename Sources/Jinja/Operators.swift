// Python's arithmetic and comparison operators on template values.

#if canImport(Glibc)
import Glibc
#endif

/// `TypeError: unsupported operand type(s) for +: 'int' and 'str'`.
func unsupported(_ symbol: String, _ a: Value, _ b: Value) -> TemplateError {
    TemplateError(.type, "unsupported operand type(s) for \(symbol): '\(a.typeName)' and '\(b.typeName)'")
}

/// Int or BigInt view of an integer-like value (bool counts, as in Python).
enum IntegerOperand {
    case small(Int)
    case big(BigInt)

    init?(_ value: Value) {
        switch value {
        case .int(let i): self = .small(i)
        case .bool(let b): self = .small(b ? 1 : 0)
        case .bigInt(let b): self = .big(b)
        default: return nil
        }
    }

    var big: BigInt {
        switch self {
        case .small(let i): return BigInt(i)
        case .big(let b): return b
        }
    }
}

/// Python's `a + b`.
public func pyAdd(_ a: Value, _ b: Value) throws(TemplateError) -> Value {
    switch (a, b) {
    case (.int(let x), .int(let y)):
        let (sum, overflow) = x.addingReportingOverflow(y)
        return overflow ? (BigInt(x) + BigInt(y)).normalized : .int(sum)
    case (.string(let x), .string(let y)): return .string(x + y)
    case (.markup(let x), .markup(let y)): return .markup(x + y)
    case (.markup(let x), .string(let y)): return .markup(x + htmlEscape(y))
    case (.string(let x), .markup(let y)): return .markup(htmlEscape(x) + y)
    case (.list(let x), .list(let y)): return .list(ListRef(x.items + y.items))
    case (.tuple(let x), .tuple(let y)): return .tuple(x + y)
    case (.undefined(let u), _), (_, .undefined(let u)): throw u.error
    case (.markup(let x), _): if !b.isNumber { return .markup(x + htmlEscape(b.pyStr)) }
    default: break
    }
    if let x = IntegerOperand(a), let y = IntegerOperand(b) { return (x.big + y.big).normalized }
    if a.isNumber, b.isNumber, let x = a.doubleValue, let y = b.doubleValue { return .float(x + y) }
    switch a {
    case .string: throw TemplateError(.type, "can only concatenate str (not \"\(b.typeName)\") to str")
    case .list: throw TemplateError(.type, "can only concatenate list (not \"\(b.typeName)\") to list")
    case .tuple: throw TemplateError(.type, "can only concatenate tuple (not \"\(b.typeName)\") to tuple")
    default: throw unsupported("+", a, b)
    }
}

func pySub(_ a: Value, _ b: Value) throws(TemplateError) -> Value {
    if case .int(let x) = a, case .int(let y) = b {
        let (difference, overflow) = x.subtractingReportingOverflow(y)
        return overflow ? (BigInt(x) - BigInt(y)).normalized : .int(difference)
    }
    if case .undefined(let u) = a { throw u.error }
    if case .undefined(let u) = b { throw u.error }
    if let x = IntegerOperand(a), let y = IntegerOperand(b) { return (x.big - y.big).normalized }
    if a.isNumber, b.isNumber, let x = a.doubleValue, let y = b.doubleValue { return .float(x - y) }
    throw unsupported("-", a, b)
}

func repeatSequence(_ sequence: Value, _ count: Int) -> Value? {
    let n = max(0, count)
    switch sequence {
    case .string(let s): return .string(String(repeating: s, count: n))
    case .markup(let s): return .markup(String(repeating: s, count: n))
    case .list(let ref):
        var items: [Value] = []
        for _ in 0..<n { items.append(contentsOf: ref.items) }
        return .list(ListRef(items))
    case .tuple(let t):
        var items: [Value] = []
        for _ in 0..<n { items.append(contentsOf: t) }
        return .tuple(items)
    default: return nil
    }
}

func pyMul(_ a: Value, _ b: Value) throws(TemplateError) -> Value {
    if case .int(let x) = a, case .int(let y) = b {
        let (product, overflow) = x.multipliedReportingOverflow(by: y)
        return overflow ? (BigInt(x) * BigInt(y)).normalized : .int(product)
    }
    if case .undefined(let u) = a { throw u.error }
    if case .undefined(let u) = b { throw u.error }
    if let x = IntegerOperand(a), let y = IntegerOperand(b) { return (x.big * y.big).normalized }
    if a.isNumber, b.isNumber, let x = a.doubleValue, let y = b.doubleValue { return .float(x * y) }
    if let count = b.intValue, let repeated = repeatSequence(a, count) {
        if count > 10_000_000 / max(1, (try? a.length()) ?? 1) { throw TemplateError(.overflow, "repeated sequence is too long") }
        return repeated
    }
    if let count = a.intValue, let repeated = repeatSequence(b, count) {
        if count > 10_000_000 / max(1, (try? b.length()) ?? 1) { throw TemplateError(.overflow, "repeated sequence is too long") }
        return repeated
    }
    switch (a, b) {
    case (.string, _), (.markup, _), (.list, _), (.tuple, _):
        if !b.isNumber || b.doubleValue != nil { throw TemplateError(.type, "can't multiply sequence by non-int of type '\(b.typeName)'") }
    case (_, .string), (_, .markup), (_, .list), (_, .tuple):
        throw TemplateError(.type, "can't multiply sequence by non-int of type '\(a.typeName)'")
    default: break
    }
    throw unsupported("*", a, b)
}

func bigToDouble(_ b: BigInt) throws(TemplateError) -> Double {
    let d = b.doubleValue
    if d.isInfinite { throw TemplateError(.overflow, "int too large to convert to float") }
    return d
}

func pyTrueDiv(_ a: Value, _ b: Value) throws(TemplateError) -> Value {
    if case .undefined(let u) = a { throw u.error }
    if case .undefined(let u) = b { throw u.error }
    guard a.isNumber, b.isNumber else { throw unsupported("/", a, b) }
    let isFloat: Bool = { if case .float = a { return true }; if case .float = b { return true }; return false }()
    let y: Double
    let x: Double
    if case .bigInt(let big) = b { y = try bigToDouble(big) } else { y = b.doubleValue ?? 0 }
    if y == 0 { throw TemplateError(.zeroDivision, isFloat ? "float division by zero" : "division by zero") }
    if case .bigInt(let big) = a { x = try bigToDouble(big) } else { x = a.doubleValue ?? 0 }
    if !isFloat, case .int(let i) = a, case .int(let j) = b, i.magnitude > (1 << 53) || j.magnitude > (1 << 53) {
        // Correctly rounded quotient for large ints: Python divides exactly.
        return .float(Double(i) / Double(j))
    }
    return .float(x / y)
}

func pyFloorDiv(_ a: Value, _ b: Value) throws(TemplateError) -> Value {
    if case .undefined(let u) = a { throw u.error }
    if case .undefined(let u) = b { throw u.error }
    if let x = IntegerOperand(a), let y = IntegerOperand(b) {
        if case .small(let i) = x, case .small(let j) = y {
            if j == 0 { throw TemplateError(.zeroDivision, "integer division or modulo by zero") }
            if !(i == Int.min && j == -1) {
                var q = i / j
                if (i % j != 0) && ((i < 0) != (j < 0)) { q -= 1 }
                return .int(q)
            }
        }
        guard let (q, _) = x.big.floorDivMod(y.big) else { throw TemplateError(.zeroDivision, "integer division or modulo by zero") }
        return q.normalized
    }
    guard a.isNumber, b.isNumber, let x = a.doubleValue, let y = b.doubleValue else { throw unsupported("//", a, b) }
    if y == 0 { throw TemplateError(.zeroDivision, "float floor division by zero") }
    return .float(floorDivide(x, y).0)
}

/// Python's float divmod.
func floorDivide(_ x: Double, _ y: Double) -> (Double, Double) {
    var mod = fmod(x, y)
    var div = (x - mod) / y
    if mod != 0 {
        if (y < 0) != (mod < 0) {
            mod += y
            div -= 1
        }
    } else {
        mod = copysign(0, y)
    }
    var floordiv: Double
    if div != 0 {
        floordiv = div.rounded(.down)
        if div - floordiv > 0.5 { floordiv += 1 }
    } else {
        floordiv = copysign(0, x / y)
    }
    return (floordiv, mod)
}

func pyMod(_ a: Value, _ b: Value) throws(TemplateError) -> Value {
    switch a {
    case .string(let format): return .string(try percentFormat(format, b))
    case .markup(let format): return .markup(try percentFormat(format, escapeFormatArguments(b)))
    case .undefined(let u): throw u.error
    default: break
    }
    if case .undefined(let u) = b { throw u.error }
    if let x = IntegerOperand(a), let y = IntegerOperand(b) {
        if case .small(let i) = x, case .small(let j) = y {
            if j == 0 { throw TemplateError(.zeroDivision, "integer modulo by zero") }
            if j == -1 { return .int(0) }
            var r = i % j
            if r != 0 && ((r < 0) != (j < 0)) { r += j }
            return .int(r)
        }
        guard let (_, r) = x.big.floorDivMod(y.big) else { throw TemplateError(.zeroDivision, "integer modulo by zero") }
        return r.normalized
    }
    guard a.isNumber, b.isNumber, let x = a.doubleValue, let y = b.doubleValue else { throw unsupported("%", a, b) }
    if y == 0 { throw TemplateError(.zeroDivision, "float modulo") }
    return .float(floorDivide(x, y).1)
}

/// Markup's `%`: arguments are escaped unless already Markup.
func escapeFormatArguments(_ value: Value) -> Value {
    func escape(_ v: Value) -> Value {
        switch v {
        case .markup, .int, .float, .bool, .bigInt, .none: return v
        default: return .markup(htmlEscape(v.pyStr))
        }
    }
    switch value {
    case .tuple(let items): return .tuple(items.map(escape))
    case .dict(let ref):
        return .dict(DictRef(zip(ref.keys, ref.values).map { ($0, escape($1)) }))
    default: return escape(value)
    }
}

func pyPow(_ a: Value, _ b: Value) throws(TemplateError) -> Value {
    if case .undefined(let u) = a { throw u.error }
    if case .undefined(let u) = b { throw u.error }
    if let x = IntegerOperand(a), let y = IntegerOperand(b) {
        switch y {
        case .small(let e) where e >= 0:
            let base = x.big
            // Refuse results that would need more than ~1M bits rather than hang.
            let bits = Double(base.limbs.count * 32) * Double(e)
            if bits > 1_000_000, !(base.limbs.count <= 1 && (base.limbs.first ?? 0) <= 1) {
                throw TemplateError(.overflow, "exponent too large")
            }
            if case .small(let i) = x, e < 64 {
                var result = 1
                var overflow = false
                for _ in 0..<e {
                    let (product, o) = result.multipliedReportingOverflow(by: i)
                    if o { overflow = true; break }
                    result = product
                }
                if !overflow { return .int(result) }
            }
            return base.power(e).normalized
        case .small(let e):
            let base = x.big.doubleValue
            if base == 0 { throw TemplateError(.zeroDivision, "0.0 cannot be raised to a negative power") }
            return .float(Glibc.pow(base, Double(e)))
        case .big(let e):
            if e.negative {
                let base = x.big.doubleValue
                if base == 0 { throw TemplateError(.zeroDivision, "0.0 cannot be raised to a negative power") }
                return .float(Glibc.pow(base, e.doubleValue))
            }
            if case .small(let i) = x, i == 0 || i == 1 { return .int(i) }
            if case .small(let i) = x, i == -1 { return .int(e.limbs.first.map { $0 & 1 == 1 ? -1 : 1 } ?? 1) }
            throw TemplateError(.overflow, "exponent too large")
        }
    }
    guard a.isNumber, b.isNumber, let x = a.doubleValue, let y = b.doubleValue else { throw unsupported("** or pow()", a, b) }
    if x == 0 && y < 0 { throw TemplateError(.zeroDivision, "0.0 cannot be raised to a negative power") }
    if x < 0 && y.rounded() != y { throw TemplateError(.type, "complex results are not supported") }
    let result = Glibc.pow(x, y)
    if result.isInfinite && x.isFinite && y.isFinite { throw TemplateError(.overflow, "(34, 'Numerical result out of range')") }
    return .float(result)
}

/// Python's ordering for `<`, `sort` and friends: -1, 0, 1; TypeError when unorderable.
public func pyCompare(_ a: Value, _ b: Value, _ symbol: String = "<") throws(TemplateError) -> Int {
    switch (a, b) {
    case (.int(let x), .int(let y)): return x < y ? -1 : (x == y ? 0 : 1)
    case (.string(let x), .string(let y)), (.markup(let x), .markup(let y)), (.string(let x), .markup(let y)), (.markup(let x), .string(let y)):
        return compareCodePoints(x, y)
    case (.undefined(let u), _), (_, .undefined(let u)): throw u.error
    case (.list(let x), .list(let y)): return try compareSequences(x.items, y.items, symbol)
    case (.tuple(let x), .tuple(let y)): return try compareSequences(x, y, symbol)
    default: break
    }
    if let x = IntegerOperand(a), let y = IntegerOperand(b) {
        let bx = x.big, by = y.big
        return bx < by ? -1 : (bx == by ? 0 : 1)
    }
    if let x = a.intValue, case .float(let d) = b { return compareIntDouble(x, d) }
    if let y = b.intValue, case .float(let d) = a { let c = compareIntDouble(y, d); return c == 2 ? 2 : -c }
    if a.isNumber, b.isNumber, let x = a.doubleValue, let y = b.doubleValue {
        if x.isNaN || y.isNaN { return 2 }
        return x < y ? -1 : (x == y ? 0 : 1)
    }
    throw TemplateError(.type, "'\(symbol)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
}

func compareSequences(_ x: [Value], _ y: [Value], _ symbol: String) throws(TemplateError) -> Int {
    for (p, q) in zip(x, y) where !pyEquals(p, q) {
        return try pyCompare(p, q, symbol)
    }
    return x.count < y.count ? -1 : (x.count == y.count ? 0 : 1)
}

/// Code point order, -1, 0 or 1 (Swift's String `<` uses Unicode canonical ordering, Python
/// does not): UTF-8 byte order is code point order.
@inline(__always) public func compareCodePoints(_ x: String, _ y: String) -> Int {
    var x = x
    var y = y
    return x.withUTF8 { p in
        y.withUTF8 { q in
            let common = Swift.min(p.count, q.count)
            if common > 0, let a = p.baseAddress, let b = q.baseAddress {
                let order = memcmp(a, b, common)
                if order != 0 { return order < 0 ? -1 : 1 }
            }
            return p.count < q.count ? -1 : (p.count == q.count ? 0 : 1)
        }
    }
}

/// Python's `item in container`.
public func pyContains(_ container: Value, _ item: Value) throws(TemplateError) -> Bool {
    switch container {
    case .string(let s), .markup(let s):
        guard let needle = item.stringValue else {
            throw TemplateError(.type, "'in <string>' requires string as left operand, not \(item.typeName)")
        }
        return utf8Find(s, needle, from: 0) != nil
    case .list(let ref): return ref.items.contains { pyEquals($0, item) }
    case .tuple(let items): return items.contains { pyEquals($0, item) }
    case .dict(let ref):
        try requireHashable(item)
        return ref[item] != nil
    case .undefined: return false
    default: throw TemplateError(.type, "argument of type '\(container.typeName)' is not iterable")
    }
}

/// Byte offset of the first occurrence of `needle` in `haystack` at or after `start`
/// (code point semantics, unlike Swift's grapheme-based `contains`).
public func utf8Find(_ haystack: String, _ needle: String, from start: Int) -> Int? {
    var h = haystack
    var n = needle
    return h.withUTF8 { hb in
        n.withUTF8 { nb in
            if nb.count == 0 { return start <= hb.count ? start : nil }
            if nb.count > hb.count { return nil }
            let first = nb[0]
            var i = start
            let last = hb.count - nb.count
            while i <= last {
                if hb[i] == first {
                    var k = 1
                    while k < nb.count && hb[i + k] == nb[k] { k += 1 }
                    if k == nb.count { return i }
                }
                i += 1
            }
            return nil
        }
    }
}
