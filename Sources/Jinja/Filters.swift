// Jinja2's builtin filters, keyed by their template name.
//
// Calling convention (filters and tests alike):
//   - A filter is `(FilterCall) throws(TemplateError) -> Value`, a test the same returning Bool.
//   - `call.value` is the value left of `|` (or of `is`); `call.args` holds the positional and
//     keyword arguments written in the template (`x|join(", ", attribute="a")`); bind them the
//     way Python binds a signature with `call.bind(...)`, which raises Python's TypeError for
//     missing, extra or unknown ones.
//   - `call.autoescape` says whether autoescaping is on where the filter is used (filters that
//     build markup, like `join` or `escape`, return `.markup` accordingly).
//   - Other filters and tests by name: `call.filter("lower", value)`, `call.test("odd", value)`
//     (`map`, `select`, `reject`, `selectattr` …).
//   - Attribute/item lookup with Jinja2's fallback: `getAttribute(value, "name")` and
//     `getItem(value, key)` (Value.swift); dotted paths like "a.b.0": `AttributeGetter`.
//   - Errors: throw `TemplateError(.type, "message")` (or `.filterArgument`, `.value`, …) with
//     Jinja2's exact text; the evaluator adds the template line.
//   - Unknown names are rejected at compile time ("No filter named 'x'."), so every name the
//     parser should accept must be a key in `filters`/`tests`.
//   - Python's str()/repr(): `value.pyStr`, `repr(value)`; `%`-formatting: `percentFormat`;
//     HTML escaping: `htmlEscape(_:)` (Format.swift).
//
// Filters that return generators in Jinja2 (`map`, `select`, `batch`, …) return one-pass
// iterators here too: always true, without a length, emptied by their first use.

#if canImport(Glibc)
import Glibc
#endif

public typealias Filter = @Sendable (FilterCall) throws(TemplateError) -> Value
public typealias Test = @Sendable (FilterCall) throws(TemplateError) -> Bool

public struct FilterCall {
    public var value: Value
    public var args: Arguments
    public var autoescape: Bool

    public init(value: Value, args: Arguments = Arguments(), autoescape: Bool = false) {
        self.value = value
        self.args = args
        self.autoescape = autoescape
    }

    /// Applies the filter `name` to `value` with the same autoescape setting.
    public func filter(_ name: String, _ value: Value, _ args: Arguments = Arguments()) throws(TemplateError) -> Value {
        guard let function = filters[name] else { throw TemplateError(.runtime, "No filter named '\(name)'.") }
        return try function(FilterCall(value: value, args: args, autoescape: autoescape))
    }

    /// Applies the test `name` to `value`.
    public func test(_ name: String, _ value: Value, _ args: Arguments = Arguments()) throws(TemplateError) -> Bool {
        guard let function = tests[name] else { throw TemplateError(.runtime, "No test named '\(name)'.") }
        return try function(FilterCall(value: value, args: args, autoescape: autoescape))
    }

    /// Binds the template's arguments to the Python signature `function(value, names...)`,
    /// the first `required` names without defaults; `implicit` counts the parameters Jinja2
    /// passes itself (the value, and the environment or context), which Python's messages
    /// include in their counts.
    func bind(_ function: String, _ names: [String], required: Int = 0, implicit: Int = 1) throws(TemplateError) -> [Value?] {
        let given = args.positional.count
        if given > names.count {
            let most = names.count + implicit
            let least = required + implicit
            let takes = least == most
                ? "\(most) positional argument\(most == 1 ? "" : "s")"
                : "from \(least) to \(most) positional arguments"
            let were = given + implicit
            throw TemplateError(.type, "\(function)() takes \(takes) but \(were) \(were == 1 ? "was" : "were") given")
        }
        var bound: [Value?] = Array(repeating: nil, count: names.count)
        for (i, value) in args.positional.enumerated() { bound[i] = value }
        for (key, value) in args.keywords {
            guard let position = names.firstIndex(of: key) else {
                throw TemplateError(.type, "\(function)() got an unexpected keyword argument '\(key)'")
            }
            if bound[position] != nil { throw TemplateError(.type, "\(function)() got multiple values for argument '\(key)'") }
            bound[position] = value
        }
        if required == 0 || !bound[0..<required].contains(where: { $0 == nil }) { return bound }
        let missing = (0..<required).filter { bound[$0] == nil }.map { "'\(names[$0])'" }
        if !missing.isEmpty {
            let list = missing.count == 1 ? missing[0]
                : missing.dropLast().joined(separator: ", ") + " and " + (missing.last ?? "")
            throw TemplateError(.type, "\(function)() missing \(missing.count) required positional argument\(missing.count == 1 ? "" : "s"): \(list)")
        }
        return bound
    }
}

/// Every builtin filter of Jinja2 3.1 (`FILTERS` in filters.py), plus `re_escape`.
public let filters: [String: Filter] = [
    "abs": filterAbs,
    "attr": filterAttr,
    "batch": filterBatch,
    "capitalize": filterCapitalize,
    "center": filterCenter,
    "count": filterLength,
    "d": filterDefault,
    "default": filterDefault,
    "dictsort": filterDictsort,
    "e": filterEscape,
    "escape": filterEscape,
    "filesizeformat": filterFilesizeformat,
    "first": filterFirst,
    "float": filterFloat,
    "forceescape": filterForceescape,
    "format": filterFormat,
    "groupby": filterGroupby,
    "indent": filterIndent,
    "int": filterInt,
    "items": filterItems,
    "join": filterJoin,
    "last": filterLast,
    "length": filterLength,
    "list": filterList,
    "lower": filterLower,
    "map": filterMap,
    "max": filterMax,
    "min": filterMin,
    "pprint": filterPprint,
    "random": filterRandom,
    "re_escape": filterReEscape,
    "reject": filterReject,
    "rejectattr": filterRejectattr,
    "replace": filterReplace,
    "reverse": filterReverse,
    "round": filterRound,
    "safe": filterSafe,
    "select": filterSelect,
    "selectattr": filterSelectattr,
    "slice": filterSlice,
    "sort": filterSort,
    "string": filterString,
    "striptags": filterStriptags,
    "sum": filterSum,
    "title": filterTitle,
    "tojson": filterTojson,
    "trim": filterTrim,
    "truncate": filterTruncate,
    "unique": filterUnique,
    "upper": filterUpper,
    "urlencode": filterUrlencode,
    "urlize": filterUrlize,
    "wordcount": filterWordcount,
    "wordwrap": filterWordwrap,
    "xmlattr": filterXmlattr,
]

// MARK: - Shared helpers

/// Applies `transform` to the string form of `value`, keeping Markup as Markup (`soft_str`).
func markupPreserving(_ value: Value, _ transform: (String) -> String) throws(TemplateError) -> Value {
    if case .markup(let s) = value { return .markup(transform(s)) }
    return .string(transform(value.pyStr))
}

/// Python's `operator.index`-style integer argument.
private func integerArgument(_ value: Value) throws(TemplateError) -> Int {
    switch value {
    case .int(let i): return i
    case .bool(let b): return b ? 1 : 0
    case .bigInt(let b): return b.negative ? Int.min / 2 : Int.max / 2
    case .undefined(let u): throw u.error
    default: throw TemplateError(.type, "'\(value.typeName)' object cannot be interpreted as an integer")
    }
}

/// Jinja2's `ignore_case` postprocessor: strings compare lowercased.
@inline(__always) private func ignoreCase(_ value: Value) -> Value {
    switch value {
    case .string(let s): return .string(pyLower(s))
    case .markup(let s): return .markup(pyLower(s))
    default: return value
    }
}

/// Jinja2's `make_attrgetter`: a dotted path ("a.b.0", digit parts are indexes) looked up with
/// `environment.getitem`, optionally replacing Undefined with a default.
struct AttributeGetter {
    private var parts: [Value] = []
    private let defaultValue: Value?
    private let lowercase: Bool

    init(_ attribute: Value?, default defaultValue: Value? = nil, lowercase: Bool = false) {
        self.defaultValue = defaultValue.flatMap { $0.isNone ? nil : $0 }
        self.lowercase = lowercase
        guard let attribute, !attribute.isNone else { return }
        if let path = attribute.stringValue {
            let markup: Bool
            if case .markup = attribute { markup = true } else { markup = false }
            parts = path.split(separator: ".", omittingEmptySubsequences: false).map { part in
                if !part.isEmpty, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let i = Int(part) { return .int(i) }
                return markup ? .markup(String(part)) : .string(String(part))
            }
        } else {
            parts = [attribute]
        }
    }

    func get(_ item: Value) -> Value {
        var current = item
        for part in parts {
            current = getItem(current, part)
            if let defaultValue, current.isUndefined { current = defaultValue }
        }
        return lowercase ? ignoreCase(current) : current
    }
}

/// Jinja2's `make_multi_attrgetter`: "age,name" gives a list of both as the sort key.
private func multiAttributeKey(_ attribute: Value?, lowercase: Bool) -> (Value) -> Value {
    guard let attribute, !attribute.isNone else { return { lowercase ? ignoreCase($0) : $0 } }
    guard case .string(let text) = attribute, text.contains(",") else {
        let getter = AttributeGetter(attribute, lowercase: lowercase)
        return { .makeList([getter.get($0)]) }
    }
    let getters = text.split(separator: ",", omittingEmptySubsequences: false).map { AttributeGetter(.string(String($0)), lowercase: lowercase) }
    return { item in .makeList(getters.map { $0.get(item) }) }
}

/// `a < b` as Python's sort sees it.
@inline(__always) private func lessThan(_ a: Value, _ b: Value) throws(TemplateError) -> Bool {
    switch (a, b) {
    case (.int(let x), .int(let y)): return x < y
    case (.string(let x), .string(let y)): return utf8Less(x, y)
    default: return try pyCompare(a, b, "<") == -1
    }
}

/// Code point order of two strings: UTF-8 byte order is code point order.
@inline(__always) func utf8Less(_ a: String, _ b: String) -> Bool {
    var a = a
    var b = b
    return a.withUTF8 { x in
        b.withUTF8 { y in
            let common = Swift.min(x.count, y.count)
            if common > 0, let p = x.baseAddress, let q = y.baseAddress {
                let order = memcmp(p, q, common)
                if order != 0 { return order < 0 }
            }
            return x.count < y.count
        }
    }
}

/// Python's `sorted(items, key=key, reverse=reverse)`: stable, and for short lists it makes
/// the same comparisons in the same order as CPython (so a TypeError names the same types).
func pySorted(_ items: [Value], reverse: Bool, key: (Value) throws(TemplateError) -> Value) throws(TemplateError) -> [Value] {
    var keys: [Value] = []
    keys.reserveCapacity(items.count)
    for item in items { keys.append(try key(item)) }
    // CPython sorts a reversed list and reverses the result, which keeps equal keys in order.
    var order = reverse ? Array((0..<items.count).reversed()) : Array(0..<items.count)
    let n = order.count
    if n >= 64, let strings = homogeneousStrings(keys) {
        order = mergeSorted(order) { strings[$0] < strings[$1] }
    } else if n >= 64, let ints = homogeneousInts(keys) {
        order = mergeSorted(order) { ints[$0] < ints[$1] }
    } else if n >= 2 {
        // CPython's first run (the whole list when short): the same comparisons in the same
        // order, so an unorderable pair fails with the same message.
        try sortFirstRun(&order, keys, minimum: minimumRun(n))
        if n >= 64 {
            var failure: TemplateError? = nil
            order = mergeSorted(order) { i, j in
                if failure != nil { return false }
                do throws(TemplateError) { return try lessThan(keys[i], keys[j]) } catch { failure = error; return false }
            }
            if let failure { throw failure }
        }
    }
    if reverse { order.reverse() }
    return order.map { items[$0] }
}

/// CPython's `merge_compute_minrun`.
private func minimumRun(_ count: Int) -> Int {
    var n = count
    var r = 0
    while n >= 64 {
        r |= n & 1
        n >>= 1
    }
    return n + r
}

/// CPython's `count_run` then `binarysort` up to `minimum` elements (listsort's first step).
private func sortFirstRun(_ order: inout [Int], _ keys: [Value], minimum: Int) throws(TemplateError) {
    let n = order.count
    var run = 2
    if try lessThan(keys[order[1]], keys[order[0]]) {
        while run < n, try lessThan(keys[order[run]], keys[order[run - 1]]) { run += 1 }
        order[0..<run].reverse()
    } else {
        while run < n, !(try lessThan(keys[order[run]], keys[order[run - 1]])) { run += 1 }
    }
    let end = Swift.max(run, Swift.min(minimum, n))
    var start = run
    while start < end {
        let pivot = order[start]
        var low = 0
        var high = start
        while low < high {
            let middle = (low + high) / 2
            if try lessThan(keys[pivot], keys[order[middle]]) { high = middle } else { low = middle + 1 }
        }
        if low < start {
            order.remove(at: start)
            order.insert(pivot, at: low)
        }
        start += 1
    }
}

/// A string key compared by code point through its UTF-8 bytes.
private struct CodePointKey: Comparable {
    let text: String
    static func < (a: CodePointKey, b: CodePointKey) -> Bool { utf8Less(a.text, b.text) }
    static func == (a: CodePointKey, b: CodePointKey) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }
}

/// `sort(attribute=...)` keys are one-element lists (Jinja2's multi-attribute getter); for
/// str and int items comparing the lists is comparing the items.
@inline(__always) private func unwrappedKey(_ key: Value) -> Value {
    if case .list(let ref) = key, ref.isList, ref.items.count == 1 { return ref.items[0] }
    return key
}

private func homogeneousStrings(_ keys: [Value]) -> [CodePointKey]? {
    var out: [CodePointKey] = []
    out.reserveCapacity(keys.count)
    for key in keys {
        guard case .string(let s) = unwrappedKey(key) else { return nil }
        out.append(CodePointKey(text: s))
    }
    return out
}

private func homogeneousInts(_ keys: [Value]) -> [Int]? {
    var out: [Int] = []
    out.reserveCapacity(keys.count)
    for key in keys {
        guard case .int(let i) = unwrappedKey(key) else { return nil }
        out.append(i)
    }
    return out
}

/// Stable bottom-up merge sort of positions for longer lists.
private func mergeSorted(_ input: [Int], by less: (Int, Int) -> Bool) -> [Int] {
    var source = input
    var target = input
    let n = source.count
    var width = 1
    while width < n {
        var start = 0
        while start < n {
            let middle = Swift.min(start + width, n)
            let end = Swift.min(start + 2 * width, n)
            var i = start, j = middle, k = start
            while i < middle && j < end {
                if less(source[j], source[i]) { target[k] = source[j]; j += 1 } else { target[k] = source[i]; i += 1 }
                k += 1
            }
            while i < middle { target[k] = source[i]; i += 1; k += 1 }
            while j < end { target[k] = source[j]; j += 1; k += 1 }
            start = end
        }
        swap(&source, &target)
        width *= 2
    }
    return source
}

/// Python's `float(x)` for str/number arguments.
func pyFloat(_ value: Value) throws(TemplateError) -> Double {
    switch value {
    case .float(let d): return d
    case .int(let i): return Double(i)
    case .bool(let b): return b ? 1 : 0
    case .bigInt(let b):
        let d = b.doubleValue
        if d.isInfinite { throw TemplateError(.overflow, "int too large to convert to float") }
        return d
    case .string(let s), .markup(let s):
        if let d = parsePythonFloat(s) { return d }
        throw TemplateError(.value, "could not convert string to float: \(repr(value))")
    case .undefined(let u): throw u.error
    default:
        throw TemplateError(.type, "float() argument must be a string or a real number, not '\(value.typeName)'")
    }
}

/// Python's float literal grammar as `float(str)` accepts it: surrounding whitespace,
/// underscores between digits, inf/infinity/nan in any case.
func parsePythonFloat(_ text: String) -> Double? {
    let trimmed = pyStrip(text, nil)
    let scalars = Array(trimmed.unicodeScalars)
    guard !scalars.isEmpty else { return nil }
    var negative = false
    var body = scalars[...]
    if body.first == "+" || body.first == "-" { negative = body.first == "-"; body = body.dropFirst() }
    let word = pyLower(scalarString(body))
    if word == "inf" || word == "infinity" { return negative ? -.infinity : .infinity }
    if word == "nan" { return .nan }
    // Digits (any Unicode decimal digit counts, as in Python) with single underscores between them.
    var cleaned = negative ? "-" : ""
    var previousDigit = false
    var sawDigit = false
    var i = body.startIndex
    while i < body.endIndex {
        let c = body[i]
        if isPyDecimal(c) {
            let digit = c.properties.numericType == .decimal ? Int(c.properties.numericValue ?? 0) : 0
            cleaned += String(digit)
            previousDigit = true
            sawDigit = true
        } else if c == "_" {
            let next = body.index(after: i)
            guard previousDigit, next < body.endIndex, isPyDecimal(body[next]) else { return nil }
            previousDigit = false
        } else if c == "." || c == "e" || c == "E" || c == "+" || c == "-" {
            cleaned.unicodeScalars.append(c)
            previousDigit = false
        } else {
            return nil
        }
        i = body.index(after: i)
    }
    guard sawDigit else { return nil }
    // Swift's Double(String) accepts hex and "inf"; the grammar above already excluded those.
    return Double(cleaned)
}

/// Python's `int(str, base)`; nil when Python would raise ValueError.
func parsePythonInt(_ text: String, base: Int) -> Value? {
    var s = pyStrip(text, nil)[...]
    var negative = false
    if s.first == "+" || s.first == "-" { negative = s.first == "-"; s = s.dropFirst() }
    var radix = base
    let lower = pyLower(String(s))
    if base == 0 || base == 16 || base == 8 || base == 2 {
        for (prefix, prefixBase) in [("0x", 16), ("0o", 8), ("0b", 2)] where lower.hasPrefix(prefix) {
            if base == 0 || base == prefixBase {
                radix = prefixBase
                s = s.dropFirst(2)
                // A single underscore may follow the prefix.
                if s.first == "_" { s = s.dropFirst() }
            }
            break
        }
        if radix == 0 {
            radix = 10
            // Base 0 forbids leading zeros on a non-zero decimal.
            let digits = s.filter { $0 != "_" }
            if digits.count > 1, digits.first == "0", digits.contains(where: { $0 != "0" }) { return nil }
        }
    }
    guard radix >= 2 && radix <= 36, !s.isEmpty else { return nil }
    var result = BigInt(0)
    var small = 0
    var overflowed = false
    var previousUnderscore = true
    for c in s.unicodeScalars {
        if c == "_" {
            if previousUnderscore { return nil }
            previousUnderscore = true
            continue
        }
        previousUnderscore = false
        var digit: Int
        if isPyDecimal(c) {
            digit = Int(c.properties.numericValue ?? 0)
        } else if c.isASCII && isPyAlpha(c) {
            digit = Int((c.value | 0x20) - 0x61) + 10
        } else {
            return nil
        }
        guard digit < radix else { return nil }
        if !overflowed {
            let (m, o1) = small.multipliedReportingOverflow(by: radix)
            let (a, o2) = m.addingReportingOverflow(digit)
            if o1 || o2 {
                overflowed = true
                result = BigInt(small).multipliedBySmall(UInt32(radix)).addingSmall(UInt32(digit))
            } else {
                small = a
            }
        } else {
            result = result.multipliedBySmall(UInt32(radix)).addingSmall(UInt32(digit))
        }
    }
    if previousUnderscore { return nil }
    if !overflowed { return .int(negative ? -small : small) }
    return (negative ? -result : result).normalized
}

/// Python's `round(x)` for a float: half to even, result an int.
private func roundHalfEven(_ d: Double) throws(TemplateError) -> Value {
    if d.isNaN { throw TemplateError(.value, "cannot convert float NaN to integer") }
    if d.isInfinite { throw TemplateError(.overflow, "cannot convert float infinity to integer") }
    return floatToInteger(d.rounded(.toNearestOrEven))
}

/// Python's `round(x, n)` for a float: correctly rounded to `n` decimals.
private func roundFloat(_ d: Double, _ digits: Int) -> Double {
    if !d.isFinite || d == 0 { return d }
    if digits > 323 { return d }
    if digits < -308 { return 0.0 * d }
    if digits >= 0 {
        let text = cFormat("%.\(digits)f", d)
        return Double(text) ?? d
    }
    let scale = pow(10.0, Double(-digits))
    let rounded = (d / scale).rounded(.toNearestOrEven) * scale
    return rounded == 0 ? copysign(0, d) : rounded
}

/// Python's `round(int, n)` for n < 0: half to even on the dropped digits.
private func roundInteger(_ value: Value, _ digits: Int) -> Value {
    guard digits < 0, let i = value.intValue else { return value.intValue.map(Value.int) ?? value }
    if digits < -18 { return .int(0) }
    var scale = 1
    for _ in 0..<(-digits) { scale *= 10 }
    var quotient = i / scale
    var remainder = i % scale
    if remainder < 0 { remainder += scale; quotient -= 1 }
    if remainder * 2 > scale || (remainder * 2 == scale && quotient % 2 != 0) { quotient += 1 }
    return .int(quotient * scale)
}

/// Python's `10 ** n` as a float: the int converted (correctly rounded) for n >= 0, C's
/// `pow` for negative n.
private func pow10(_ n: Int) -> Double {
    if n >= 0 { return Double("1e\(n)") ?? .infinity }
    return pow(10.0, Double(n))
}

/// A Python generator (or another one-pass iterator) over `items`.
@inline(__always) func generator(_ items: [Value], _ typeName: String = "generator") -> Value {
    .list(ListRef(items, kind: .iterator(typeName)))
}

/// Elements of an iterable, with Jinja2's "Undefined iterates empty".
@inline(__always) private func elements(_ value: Value) throws(TemplateError) -> [Value] {
    try value.iterate()
}

// MARK: - The filters

@Sendable func filterAbs(_ call: FilterCall) throws(TemplateError) -> Value {
    if !call.args.isEmpty {
        throw TemplateError(.type, "abs() takes exactly one argument (\(call.args.positional.count + call.args.keywords.count + 1) given)")
    }
    switch call.value {
    case .int(let i): return i == Int.min ? (-BigInt(i)).normalized : .int(Swift.abs(i))
    case .bool(let b): return .int(b ? 1 : 0)
    case .bigInt(let b): return (b.negative ? -b : b).normalized
    case .float(let d): return .float(Swift.abs(d))
    default: throw TemplateError(.type, "bad operand type for abs(): '\(call.value.typeName)'")
    }
}

@Sendable func filterAttr(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_attr", ["name"], required: 1, implicit: 2)
    let object = call.value
    if case .undefined(let u) = object { throw u.error }
    guard let name = a[0]?.stringValue else {
        try requireHashable(a[0] ?? .none)
        throw TemplateError(.type, "attribute name must be string, not '\(a[0]?.typeName ?? "NoneType")'")
    }
    // Python attributes only: a dict key is not an attribute.
    if case .dict = object, !methodExists(object, name) {
        return .undefined(Undefined(owner: object, attribute: name))
    }
    return getAttribute(object, name)
}

@Sendable func filterBatch(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_batch", ["linecount", "fill_with"], required: 1)
    // Python compares `len(tmp) == linecount`, so a float works and a string never matches.
    let linecountValue = a[0] ?? .none
    let fill = a[1].flatMap { $0.isNone ? nil : $0 }
    let linecount: Int? = linecountValue.intValue ?? {
        if case .float(let d) = linecountValue, d.rounded() == d, abs(d) < 1e18 { return Int(d) }
        return nil
    }()
    if fill != nil, linecount == nil, !linecountValue.isNumber {
        throw TemplateError(.type, "unsupported operand type(s) for -: '\(linecountValue.typeName)' and 'int'")
    }
    var rows: [Value] = []
    var current: [Value] = []
    for item in try elements(call.value) {
        if let linecount, current.count == linecount {
            rows.append(.makeList(current))
            current = []
        }
        current.append(item)
    }
    if !current.isEmpty {
        if let fill, let linecount, current.count < linecount {
            try requireBuildable(linecount)
            current.append(contentsOf: repeatElement(fill, count: linecount - current.count))
        }
        rows.append(.makeList(current))
    }
    return generator(rows)
}

@Sendable func filterCapitalize(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_capitalize", [])
    return try markupPreserving(call.value, pyCapitalize)
}

@Sendable func filterCenter(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_center", ["width"])
    let width = try a[0].map(sizeArgument) ?? 80
    let text = call.value.pyStr
    let centered = try pyCenter(text, width)
    if case .markup = call.value { return .markup(centered) }
    return .string(centered)
}

@Sendable func filterLength(_ call: FilterCall) throws(TemplateError) -> Value {
    if !call.args.isEmpty {
        throw TemplateError(.type, "len() takes exactly one argument (\(call.args.positional.count + call.args.keywords.count + 1) given)")
    }
    return .int(try call.value.length())
}

@Sendable func filterDefault(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_default", ["default_value", "boolean"])
    let boolean = a[1]?.isTruthy ?? false
    if call.value.isUndefined || (boolean && !call.value.isTruthy) { return a[0] ?? .string("") }
    return call.value
}

@Sendable func filterDictsort(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_dictsort", ["case_sensitive", "by", "reverse"])
    let caseSensitive = a[0]?.isTruthy ?? false
    let position: Int
    switch a[1]?.stringValue ?? (a[1] == nil ? "key" : "") {
    case "key": position = 0
    case "value": position = 1
    default: throw TemplateError(.filterArgument, "You can only sort by either \"key\" or \"value\"")
    }
    guard case .dict(let ref) = call.value else {
        if case .undefined(let u) = call.value { throw u.error }
        throw TemplateError(.attribute, "'\(call.value.typeName)' object has no attribute 'items'")
    }
    var pairs: [Value] = []
    pairs.reserveCapacity(ref.count)
    for i in 0..<ref.count { pairs.append(.tuple([ref.keys[i], ref.values[i]])) }
    return .makeList(try pySorted(pairs, reverse: a[2]?.isTruthy ?? false) { pair in
        guard case .tuple(let items) = pair else { return pair }
        return caseSensitive ? items[position] : ignoreCase(items[position])
    })
}

@Sendable func filterEscape(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("escape", [])
    if case .markup = call.value { return call.value }
    return .markup(htmlEscape(call.value.pyStr))
}

@Sendable func filterForceescape(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_forceescape", [])
    return .markup(htmlEscape(call.value.pyStr))
}

@Sendable func filterFilesizeformat(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_filesizeformat", ["binary"])
    let binary = a[0]?.isTruthy ?? false
    let bytes = try pyFloat(call.value)
    let base = binary ? 1024.0 : 1000.0
    let prefixes = binary ? ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"] : ["kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    if bytes == 1 { return .string("1 Byte") }
    if bytes < base {
        return .string("\(try roundTowardZero(bytes)) Bytes")
    }
    // Python compares with the exact integer base ** (i + 2), then divides by it as a float.
    var unit = BigInt(binary ? 1024 : 1000)
    var unitDouble = base
    for (i, prefix) in prefixes.enumerated() {
        unit = unit.multipliedBySmall(binary ? 1024 : 1000)
        unitDouble = binary ? unitDouble * 1024 : (Double("1e\(3 * (i + 2))") ?? unitDouble * 1000)
        if bytes.isFinite, floatToInteger(bytes.rounded(.down)).lessThan(unit) {
            return .string(cFormat(base * bytes / unitDouble, precision: 1, conversion: "f") + " " + prefix)
        }
    }
    let value = base * bytes / unitDouble
    return .string((value.isInfinite ? "inf" : cFormat(value, precision: 1, conversion: "f")) + " " + (prefixes.last ?? ""))
}

private extension Value {
    /// `self < other` for an integer value and a BigInt.
    func lessThan(_ other: BigInt) -> Bool {
        switch self {
        case .int(let i): return BigInt(i) < other
        case .bigInt(let b): return b < other
        default: return false
        }
    }
}

/// Python's `int(float)`.
private func roundTowardZero(_ d: Double) throws(TemplateError) -> String {
    if d.isNaN { throw TemplateError(.value, "cannot convert float NaN to integer") }
    if d.isInfinite { throw TemplateError(.overflow, "cannot convert float infinity to integer") }
    return floatToInteger(d.rounded(.towardZero)).pyStr
}

@Sendable func filterFirst(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("sync_do_first", [], implicit: 2)
    switch call.value {
    case .list(let ref):
        if let first = ref.items.first {
            // next() on an iterator takes its first item away.
            if case .iterator = ref.kind { ref.items.removeFirst() }
            return first
        }
    case .tuple(let items): if let first = items.first { return first }
    case .dict(let ref): if ref.count > 0 { return ref.keys[0] }
    // Iterating Markup yields plain str characters.
    case .string(let s), .markup(let s): if let c = s.unicodeScalars.first { return .string(String(c)) }
    default: if let first = try elements(call.value).first { return first }
    }
    return .undefined(Undefined(hint: "No first item, sequence was empty."))
}

@Sendable func filterLast(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_last", [], implicit: 2)
    switch call.value {
    // reversed() indexes, and Markup's items are Markup.
    case .markup(let s): if let c = s.unicodeScalars.last { return .markup(String(c)) }
    case .list(let ref) where { if case .iterator = ref.kind { return true } else { return false } }():
        throw TemplateError(.type, "'\(call.value.typeName)' object is not reversible")
    case .list, .tuple, .dict, .string, .undefined:
        if let last = try elements(call.value).last { return last }
    default:
        throw TemplateError(.type, "'\(call.value.typeName)' object is not reversible")
    }
    return .undefined(Undefined(hint: "No last item, sequence was empty."))
}

@Sendable func filterFloat(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_float", ["default"])
    let fallback = a[0] ?? .float(0)
    do {
        return .float(try pyFloat(call.value))
    } catch {
        if error.kind == .type || error.kind == .value { return fallback }
        throw error
    }
}

@Sendable func filterFormat(_ call: FilterCall) throws(TemplateError) -> Value {
    if !call.args.positional.isEmpty && !call.args.keywords.isEmpty {
        throw TemplateError(.filterArgument, "can't handle positional and keyword arguments at the same time")
    }
    let arguments: Value = call.args.keywords.isEmpty
        ? .tuple(call.args.positional)
        : .dict(DictRef(stringPairs: call.args.keywords))
    if case .markup(let format) = call.value {
        return .markup(try percentFormat(format, escapeFormatArguments(arguments)))
    }
    return .string(try percentFormat(call.value.pyStr, arguments))
}

@Sendable func filterGroupby(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("sync_do_groupby", ["attribute", "default", "case_sensitive"], required: 1, implicit: 2)
    let caseSensitive = a[2]?.isTruthy ?? false
    let key = AttributeGetter(a[0], default: a[1], lowercase: !caseSensitive)
    let sorted = try pySorted(try elements(call.value), reverse: false) { key.get($0) }
    let output = AttributeGetter(a[0], default: a[1])
    var groups: [Value] = []
    var currentKey: Value? = nil
    var members: [Value] = []
    for item in sorted {
        let k = key.get(item)
        if let existing = currentKey, pyEquals(existing, k) {
            members.append(item)
            continue
        }
        if let first = members.first { groups.append(.tuple([caseSensitive ? (currentKey ?? .none) : output.get(first), .makeList(members)])) }
        currentKey = k
        members = [item]
    }
    if let first = members.first { groups.append(.tuple([caseSensitive ? (currentKey ?? .none) : output.get(first), .makeList(members)])) }
    return .makeList(groups)
}

@Sendable func filterIndent(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_indent", ["width", "first", "blank"])
    let indention: String
    switch a[0] {
    case nil: indention = "    "
    case .string(let s)?, .markup(let s)?: indention = s
    case let width?:
        guard width.intValue != nil || { if case .bigInt = width { return true } else { return false } }() else {
            throw TemplateError(.type, "can't multiply sequence by non-int of type '\(width.typeName)'")
        }
        let count = try sizeArgument(width)
        try requireBuildable(count)
        indention = String(repeating: " ", count: Swift.max(0, count))
    }
    let first = a[1]?.isTruthy ?? false
    let blank = a[2]?.isTruthy ?? false
    let text: String
    switch call.value {
    case .string(let s), .markup(let s): text = s + "\n"
    case .undefined(let u): throw u.error
    // `s += "\n"` extends a list, then `s.splitlines()` fails.
    case .list(let ref) where ref.isList: throw TemplateError(.attribute, "'list' object has no attribute 'splitlines'")
    case .tuple: throw TemplateError(.type, "can only concatenate tuple (not \"str\") to tuple")
    default: throw TemplateError(.type, "unsupported operand type(s) for +=: '\(call.value.typeName)' and 'str'")
    }
    var lines = pySplitlines(text)
    var out: String
    if blank {
        out = lines.joined(separator: "\n" + indention)
    } else {
        out = lines.isEmpty ? "" : lines.removeFirst()
        if !lines.isEmpty {
            out += "\n" + lines.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
        }
    }
    if first { out = indention + out }
    if case .markup = call.value { return .markup(out) }
    return .string(out)
}

@Sendable func filterInt(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_int", ["default", "base"])
    let fallback = a[0] ?? .int(0)
    let base = a[1] ?? .int(10)
    switch call.value {
    case .int, .bigInt: return call.value
    case .bool(let b): return .int(b ? 1 : 0)
    case .float(let d):
        if d.isFinite { return floatToInteger(d.rounded(.towardZero)) }
        return fallback
    case .string(let s), .markup(let s):
        if let b = base.intValue, let parsed = parsePythonInt(s, base: b) { return parsed }
        // "42.23"|int is 42: Jinja2 retries through float().
        if let d = parsePythonFloat(s), d.isFinite { return floatToInteger(d.rounded(.towardZero)) }
        return fallback
    case .undefined(let u): throw u.error
    default: return fallback
    }
}

@Sendable func filterItems(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_items", [])
    switch call.value {
    case .undefined: return generator([])
    case .dict(let ref):
        var pairs: [Value] = []
        pairs.reserveCapacity(ref.count)
        for i in 0..<ref.count { pairs.append(.tuple([ref.keys[i], ref.values[i]])) }
        return generator(pairs)
    default: throw TemplateError(.type, "Can only get item pairs from a mapping.")
    }
}

@Sendable func filterJoin(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("sync_do_join", ["d", "attribute"], implicit: 2)
    let separator = a[0] ?? .string("")
    var items = try elements(call.value)
    if let attribute = a[1], !attribute.isNone {
        let getter = AttributeGetter(attribute)
        items = items.map { getter.get($0) }
    }
    if !call.autoescape {
        var out = ""
        let sep = separator.pyStr
        for (i, item) in items.enumerated() {
            if i > 0 { out += sep }
            out += item.pyStr
        }
        return .string(out)
    }
    // Autoescaping: if any item is Markup the result is Markup and plain items are escaped.
    let anyMarkup: Bool
    if case .markup = separator { anyMarkup = true } else {
        anyMarkup = items.contains { if case .markup = $0 { return true } else { return false } }
    }
    if !anyMarkup { return .string(items.map { $0.pyStr }.joined(separator: separator.pyStr)) }
    func escaped(_ v: Value) -> String { if case .markup(let s) = v { return s } else { return htmlEscape(v.pyStr) } }
    return .markup(items.map(escaped).joined(separator: escaped(separator)))
}

@Sendable func filterList(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("sync_do_list", [])
    return .makeList(try elements(call.value))
}

@Sendable func filterLower(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_lower", [])
    return try markupPreserving(call.value, pyLower)
}

@Sendable func filterUpper(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_upper", [])
    return try markupPreserving(call.value, pyUpper)
}

@Sendable func filterMap(_ call: FilterCall) throws(TemplateError) -> Value {
    guard call.value.isTruthy else { return generator([]) }
    let items = try elements(call.value)
    var keywords = call.args.keywords
    if call.args.positional.isEmpty, let position = keywords.firstIndex(where: { $0.0 == "attribute" }) {
        let attribute = keywords.remove(at: position).1
        var defaultValue: Value? = nil
        if let d = keywords.firstIndex(where: { $0.0 == "default" }) { defaultValue = keywords.remove(at: d).1 }
        if let unexpected = keywords.first {
            throw TemplateError(.filterArgument, "Unexpected keyword argument \(reprString(unexpected.0))")
        }
        let getter = AttributeGetter(attribute, default: defaultValue)
        return generator(items.map { getter.get($0) })
    }
    guard let name = call.args.positional.first else { throw TemplateError(.filterArgument, "map requires a filter argument") }
    let arguments = Arguments(Array(call.args.positional.dropFirst()), keywords: keywords)
    var out: [Value] = []
    out.reserveCapacity(items.count)
    for item in items { out.append(try call.filter(name.pyStr, item, arguments)) }
    return generator(out)
}

private func minOrMax(_ call: FilterCall, _ function: String, greater: Bool) throws(TemplateError) -> Value {
    let a = try call.bind(function, ["case_sensitive", "attribute"], implicit: 2)
    let items = try elements(call.value)
    guard var best = items.first else { return .undefined(Undefined(hint: "No aggregated item, sequence was empty.")) }
    let getter = AttributeGetter(a[1], lowercase: !(a[0]?.isTruthy ?? false))
    var bestKey = getter.get(best)
    for item in items.dropFirst() {
        let key = getter.get(item)
        let order = try pyCompare(key, bestKey, greater ? ">" : "<")
        if order == (greater ? 1 : -1) {
            best = item
            bestKey = key
        }
    }
    return best
}

@Sendable func filterMin(_ call: FilterCall) throws(TemplateError) -> Value { try minOrMax(call, "do_min", greater: false) }
@Sendable func filterMax(_ call: FilterCall) throws(TemplateError) -> Value { try minOrMax(call, "do_max", greater: true) }

@Sendable func filterPprint(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_pprint", [])
    return .string(prettyFormat(call.value))
}

@Sendable func filterRandom(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_random", [], implicit: 2)
    let items: [Value]
    switch call.value {
    case .list(let ref) where { if case .iterator = ref.kind { return true } else { return false } }():
        throw TemplateError(.type, "object of type '\(call.value.typeName)' has no len()")
    case .list, .tuple, .string: items = try elements(call.value)
    case .markup(let s): items = s.unicodeScalars.map { .markup(String($0)) }
    case .undefined: items = []
    default: throw TemplateError(.type, "object of type '\(call.value.typeName)' has no len()")
    }
    guard let pick = items.randomElement() else { return .undefined(Undefined(hint: "No random item, sequence was empty.")) }
    return pick
}

@Sendable func filterReEscape(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("escape", [])
    guard let text = call.value.stringValue else {
        // re.escape decodes anything but str as latin-1 bytes.
        throw TemplateError(.type, "decoding to str: need a bytes-like object, \(call.value.typeName) found")
    }
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for c in text.unicodeScalars {
        switch c {
        case "(", ")", "[", "]", "{", "}", "?", "*", "+", "-", "|", "^", "$", "\\", ".", "&", "~", "#", " ", "\t", "\n", "\r", "\u{0B}", "\u{0C}":
            out += "\\"
        default: break
        }
        out.unicodeScalars.append(c)
    }
    // Markup's translate (which re.escape uses) returns Markup.
    if case .markup = call.value { return .markup(out) }
    return .string(out)
}

private func selectOrReject(_ call: FilterCall, keep: Bool, attribute: Bool) throws(TemplateError) -> Value {
    guard call.value.isTruthy else { return generator([]) }
    let items = try elements(call.value)
    var positional = call.args.positional[...]
    var getter: AttributeGetter? = nil
    if attribute {
        guard let name = positional.first else { throw TemplateError(.filterArgument, "Missing parameter for attribute name") }
        getter = AttributeGetter(name)
        positional = positional.dropFirst()
    }
    let testName = positional.first
    let arguments = Arguments(Array(positional.dropFirst()), keywords: call.args.keywords)
    var out: [Value] = []
    for item in items {
        let subject = getter?.get(item) ?? item
        let passed = try testName.map { name throws(TemplateError) in try call.test(name.pyStr, subject, arguments) } ?? subject.isTruthy
        if passed == keep { out.append(item) }
    }
    return generator(out)
}

@Sendable func filterSelect(_ call: FilterCall) throws(TemplateError) -> Value { try selectOrReject(call, keep: true, attribute: false) }
@Sendable func filterReject(_ call: FilterCall) throws(TemplateError) -> Value { try selectOrReject(call, keep: false, attribute: false) }
@Sendable func filterSelectattr(_ call: FilterCall) throws(TemplateError) -> Value { try selectOrReject(call, keep: true, attribute: true) }
@Sendable func filterRejectattr(_ call: FilterCall) throws(TemplateError) -> Value { try selectOrReject(call, keep: false, attribute: true) }

@Sendable func filterReplace(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_replace", ["old", "new", "count"], required: 2, implicit: 2)
    let old = a[0] ?? .none
    let new = a[1] ?? .none
    var count = -1
    if let c = a[2], !c.isNone { count = try integerArgument(c) }
    if !call.autoescape {
        return .string(pyReplace(call.value.pyStr, old.pyStr, new.pyStr, count: count))
    }
    func isMarkup(_ v: Value) -> Bool { if case .markup = v { return true } else { return false } }
    // Markup.replace escapes the replacement but searches for `old` as given.
    func escaped(_ v: Value) -> String { isMarkup(v) ? v.pyStr : htmlEscape(v.pyStr) }
    if isMarkup(old) || (isMarkup(new) && !isMarkup(call.value)) || isMarkup(call.value) {
        return .markup(pyReplace(escaped(call.value), old.pyStr, escaped(new), count: count))
    }
    return .string(pyReplace(call.value.pyStr, old.pyStr, new.pyStr, count: count))
}

@Sendable func filterReverse(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_reverse", [])
    switch call.value {
    case .string(let s): return .string(scalarString(s.unicodeScalars.reversed()))
    case .markup(let s): return .markup(scalarString(s.unicodeScalars.reversed()))
    case .list(let ref):
        switch ref.kind {
        case .list: return generator(ref.items.reversed(), "list_reverseiterator")
        case .range: return generator(ref.items.reversed(), "range_iterator")
        case .dictKeys: return generator(ref.items.reversed(), "dict_reversekeyiterator")
        case .dictValues: return generator(ref.items.reversed(), "dict_reversevalueiterator")
        case .dictItems: return generator(ref.items.reversed(), "dict_reverseitemiterator")
        // An iterator is not reversible: Jinja2 falls back to a reversed list.
        case .iterator: return .makeList(try elements(call.value).reversed())
        }
    case .dict: return generator(try elements(call.value).reversed(), "dict_reversekeyiterator")
    case .tuple, .undefined: return generator(try elements(call.value).reversed(), "reversed")
    default:
        do {
            return .makeList(try elements(call.value).reversed())
        } catch {
            throw TemplateError(.filterArgument, "argument must be iterable")
        }
    }
}

@Sendable func filterRound(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_round", ["precision", "method"])
    let method = a[1]?.stringValue ?? (a[1] == nil ? "common" : "")
    if let given = a[1] { try requireHashable(given) }
    guard method == "common" || method == "ceil" || method == "floor" else {
        throw TemplateError(.filterArgument, "method must be common, ceil or floor")
    }
    let precisionValue = a[0] ?? .int(0)
    let value = call.value
    guard value.isNumber else {
        if method == "common" { throw TemplateError(.type, "type \(value.typeName) doesn't define __round__ method") }
        // math.ceil/floor(value * 10 ** precision): the product fails first, or is not a number.
        let digits = try integerArgument(precisionValue)
        let product = try pyMul(value, digits >= 0 ? (BigInt(10).power(digits).normalized) : .float(pow10(digits)))
        throw TemplateError(.type, "must be real number, not \(product.typeName)")
    }
    if method == "common" {
        if precisionValue.isNone {
            if case .float(let d) = value { return try roundHalfEven(d) }
            return value.intValue.map(Value.int) ?? value
        }
        let digits = try integerArgument(precisionValue)
        if case .float(let d) = value { return .float(roundFloat(d, digits)) }
        if case .bigInt = value { return value }
        return roundInteger(value, digits)
    }
    // math.ceil/floor(value * 10**precision) / 10**precision: always a float.
    let digits = try integerArgument(precisionValue)
    // An int times the int 10 ** precision stays exact; the quotient is the int again.
    if digits >= 0, let i = value.intValue { return .float(Double(i)) }
    if digits > 308 { throw TemplateError(.overflow, "int too large to convert to float") }
    let scale = pow10(digits)
    let scaled = (value.doubleValue ?? 0) * scale
    if !scaled.isFinite {
        throw TemplateError(scaled.isNaN ? .value : .overflow, scaled.isNaN ? "cannot convert float NaN to integer" : "cannot convert float infinity to integer")
    }
    let whole = method == "ceil" ? scaled.rounded(.up) : scaled.rounded(.down)
    if scale == 0 { throw TemplateError(.zeroDivision, "float division by zero") }
    return .float(whole / scale)
}

@Sendable func filterSafe(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_mark_safe", [])
    if case .markup = call.value { return call.value }
    return .markup(call.value.pyStr)
}

@Sendable func filterSlice(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("sync_do_slice", ["slices", "fill_with"], required: 1)
    let slices = try integerArgument(a[0] ?? .none)
    let fill = a[1].flatMap { $0.isNone ? nil : $0 }
    let items = try elements(call.value)
    guard slices > 0 else {
        if slices == 0 { throw TemplateError(.zeroDivision, "integer division or modulo by zero") }
        return generator([])
    }
    // Jinja2 yields the slices lazily; building them all needs one list per slice.
    try requireBuildable(slices)
    let perSlice = items.count / slices
    let withExtra = items.count % slices
    var offset = 0
    var out: [Value] = []
    for number in 0..<slices {
        let start = offset + number * perSlice
        if number < withExtra { offset += 1 }
        let end = offset + (number + 1) * perSlice
        var part = Array(items[Swift.min(start, items.count)..<Swift.min(end, items.count)])
        if let fill, number >= withExtra { part.append(fill) }
        out.append(.makeList(part))
    }
    return generator(out)
}

@Sendable func filterSort(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_sort", ["reverse", "case_sensitive", "attribute"], implicit: 2)
    let key = multiAttributeKey(a[2], lowercase: !(a[1]?.isTruthy ?? false))
    let items = try elements(call.value)
    // sorted() takes `reverse` as an int.
    let reverse = try a[0].map { value throws(TemplateError) in try integerArgument(value) != 0 } ?? false
    return .makeList(try pySorted(items, reverse: reverse) { key($0) })
}

@Sendable func filterString(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("soft_str", [])
    if case .markup = call.value { return call.value }
    return .string(call.value.pyStr)
}

@Sendable func filterStriptags(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_striptags", [])
    return .string(stripTags(call.value.pyStr))
}

@Sendable func filterSum(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("sync_do_sum", ["attribute", "start"], implicit: 2)
    var total = a[1] ?? .int(0)
    var items = try elements(call.value)
    if total.isString { throw TemplateError(.type, "sum() can't sum strings [use ''.join(seq) instead]") }
    if let attribute = a[0], !attribute.isNone {
        let getter = AttributeGetter(attribute)
        items = items.map { getter.get($0) }
    }
    for item in items { total = try pyAdd(total, item) }
    return total
}

@Sendable func filterTitle(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_title", [])
    // Words start after runs of whitespace, '-', '(', '{', '[' or '<'.
    var out = ""
    var rest = ""
    var atWordStart = true
    for c in call.value.pyStr.unicodeScalars {
        if isPySpace(c) || c == "-" || c == "(" || c == "{" || c == "[" || c == "<" {
            if !rest.isEmpty { out += pyLower(rest); rest = "" }
            out.unicodeScalars.append(c)
            atWordStart = true
        } else if atWordStart {
            out += c.properties.uppercaseMapping
            atWordStart = false
        } else {
            rest.unicodeScalars.append(c)
        }
    }
    if !rest.isEmpty { out += pyLower(rest) }
    return .string(out)
}

@Sendable func filterTrim(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_trim", ["chars"])
    var chars: String? = nil
    if let c = a[0], !c.isNone {
        guard let text = c.stringValue else { throw TemplateError(.type, "strip arg must be None or str") }
        chars = text
    }
    return try markupPreserving(call.value) { pyStrip($0, chars) }
}

@Sendable func filterTruncate(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_truncate", ["length", "killwords", "end", "leeway"], implicit: 2)
    // `assert length >= len(end)`: len(end) first, then the comparison, then the assertion.
    let endValue = a[2] ?? .string("...")
    let endLength = try endValue.length()
    guard let end = endValue.stringValue else {
        throw TemplateError(.type, "can only concatenate str (not \"\(endValue.typeName)\") to str")
    }
    let lengthValue = a[0] ?? .int(255)
    guard lengthValue.isNumber else {
        throw TemplateError(.type, "'>=' not supported between instances of '\(lengthValue.typeName)' and 'int'")
    }
    let length = try integerArgument(lengthValue)
    let killwords = a[1]?.isTruthy ?? false
    var leeway = 5
    if let l = a[3], !l.isNone { leeway = try integerArgument(l) }
    if length < endLength { throw TemplateError(.assertionFailure, "expected length >= \(endLength), got \(lengthValue.pyStr)") }
    if leeway < 0 { throw TemplateError(.assertionFailure, "expected leeway >= 0, got \(leeway)") }
    let s: String
    switch call.value {
    case .string(let text), .markup(let text): s = text
    default:
        // Any sized value passes through when short enough; slicing then fails the way Python's does.
        let size = try call.value.length()
        if length > Int.max - leeway || size <= length + leeway { return call.value }
        switch call.value {
        case .dict: throw TemplateError(.type, "unhashable type: 'slice'")
        case .list where killwords: throw TemplateError(.type, "can only concatenate list (not \"str\") to list")
        case .tuple where killwords: throw TemplateError(.type, "can only concatenate tuple (not \"str\") to tuple")
        default: throw TemplateError(.attribute, "'\(call.value.typeName)' object has no attribute 'rsplit'")
        }
    }
    let scalars = Array(s.unicodeScalars)
    if scalars.count <= length.addingReportingOverflow(leeway).partialValue || length > Int.max - leeway { return call.value }
    let head = scalarString(scalars[0..<Swift.max(0, length - endLength)])
    let kept = killwords ? head : ((try? pyRSplit(head, " ", maxsplit: 1))?.first ?? head)
    // A Markup slice stays Markup, and Markup + str escapes the str.
    if case .markup = call.value { return .markup(kept + htmlEscape(end)) }
    return .string(kept + end)
}

@Sendable func filterUnique(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("sync_do_unique", ["case_sensitive", "attribute"], implicit: 2)
    let getter = AttributeGetter(a[1], lowercase: !(a[0]?.isTruthy ?? false))
    var seen = Set<DictKey>()
    var out: [Value] = []
    for item in try elements(call.value) {
        let key = getter.get(item)
        try requireHashable(key)
        if seen.insert(DictKey(key)).inserted { out.append(item) }
    }
    return generator(out)
}

@Sendable func filterUrlencode(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_urlencode", [])
    switch call.value {
    case .dict(let ref):
        var parts: [String] = []
        for i in 0..<ref.count { parts.append(urlQuote(ref.keys[i].pyStr, forQuery: true) + "=" + urlQuote(ref.values[i].pyStr, forQuery: true)) }
        return .string(parts.joined(separator: "&"))
    case .list, .tuple:
        var parts: [String] = []
        for item in try elements(call.value) {
            let pair: [Value]
            do { pair = try elements(item) } catch {
                throw TemplateError(.type, "cannot unpack non-iterable \(item.typeName) object")
            }
            guard pair.count == 2 else {
                throw TemplateError(.value, pair.count < 2 ? "not enough values to unpack (expected 2, got \(pair.count))" : "too many values to unpack (expected 2)")
            }
            parts.append(urlQuote(pair[0].pyStr, forQuery: true) + "=" + urlQuote(pair[1].pyStr, forQuery: true))
        }
        return .string(parts.joined(separator: "&"))
    case .undefined: return .string("")
    default: return .string(urlQuote(call.value.pyStr, forQuery: false))
    }
}

/// Jinja2's `url_quote`: UTF-8 percent-encoding; `/` stays unless quoting for a query string,
/// where spaces become `+`.
func urlQuote(_ text: String, forQuery: Bool) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count)
    let hexDigits = Array("0123456789ABCDEF".utf8)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
            out.append(byte)
        case UInt8(ascii: "/") where !forQuery:
            out.append(byte)
        case UInt8(ascii: " ") where forQuery:
            out.append(UInt8(ascii: "+"))
        default:
            out.append(UInt8(ascii: "%"))
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 15)])
        }
    }
    return String(decoding: out, as: UTF8.self)
}

@Sendable func filterUrlize(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_urlize", ["trim_url_limit", "nofollow", "target", "rel", "extra_schemes"], implicit: 2)
    // Only compared with a URL's length, so a limit of another type goes unnoticed here.
    let trimLimit = a[0]?.intValue
    var relParts = Set<String>()
    if let rel = a[3], !rel.isNone { relParts.formUnion(try pySplit(rel.pyStr, nil)) }
    if a[1]?.isTruthy ?? false { relParts.insert("nofollow") }
    relParts.insert("noopener")
    let rel = relParts.sorted { compareCodePoints($0, $1) < 0 }.joined(separator: " ")
    let target = a[2].flatMap { $0.isNone ? nil : $0.pyStr }
    var schemes: [String] = []
    if let extra = a[4], !extra.isNone {
        for scheme in try elements(extra) {
            let text = scheme.pyStr
            guard isURIScheme(text) else { throw TemplateError(.filterArgument, "\(repr(scheme)) is not a valid URI scheme prefix.") }
            schemes.append(text)
        }
    }
    // markupsafe.escape leaves Markup as it is.
    let escaped: String
    if case .markup(let text) = call.value { escaped = text } else { escaped = htmlEscape(call.value.pyStr) }
    let out = urlize(escaped, trimLimit: trimLimit, rel: rel, target: target, extraSchemes: schemes)
    return call.autoescape ? .markup(out) : .string(out)
}

@Sendable func filterWordcount(_ call: FilterCall) throws(TemplateError) -> Value {
    _ = try call.bind("do_wordcount", [])
    var count = 0
    var inWord = false
    for c in call.value.pyStr.unicodeScalars {
        if isPyWord(c) {
            if !inWord { count += 1; inWord = true }
        } else {
            inWord = false
        }
    }
    return .int(count)
}

@Sendable func filterWordwrap(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_wordwrap", ["width", "break_long_words", "wrapstring", "break_on_hyphens"], implicit: 2)
    // `wrapstring.join` is looked up before anything else is evaluated.
    var wrapstring = "\n"
    if let given = a[2], !given.isNone {
        guard let text = given.stringValue else {
            if case .undefined(let u) = given { throw u.error }
            throw TemplateError(.attribute, "'\(given.typeName)' object has no attribute 'join'")
        }
        wrapstring = text
    }
    let breakLongWords = a[1]?.isTruthy ?? true
    let breakOnHyphens = a[3]?.isTruthy ?? true
    let text: String
    switch call.value {
    case .string(let s), .markup(let s): text = s
    case .undefined(let u): throw u.error
    default: throw TemplateError(.attribute, "'\(call.value.typeName)' object has no attribute 'splitlines'")
    }
    let widthValue = a[0] ?? .int(79)
    guard widthValue.isNumber else {
        throw TemplateError(.type, "'<=' not supported between instances of '\(widthValue.typeName)' and 'int'")
    }
    let width = try integerArgument(widthValue)
    if width <= 0 { throw TemplateError(.value, "invalid width \(repr(widthValue)) (must be > 0)") }
    var wrapper = TextWrapper(width: width, breakLongWords: breakLongWords, breakOnHyphens: breakOnHyphens)
    return .string(pySplitlines(text).map { wrapper.wrap($0).joined(separator: wrapstring) }.joined(separator: wrapstring))
}

@Sendable func filterXmlattr(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_xmlattr", ["autospace"], implicit: 2)
    guard case .dict(let ref) = call.value else {
        if case .undefined(let u) = call.value { throw u.error }
        throw TemplateError(.attribute, "'\(call.value.typeName)' object has no attribute 'items'")
    }
    var parts: [String] = []
    for i in 0..<ref.count {
        let value = ref.values[i]
        if value.isNone || value.isUndefined { continue }
        let key = ref.keys[i]
        guard let name = key.stringValue else {
            throw TemplateError(.type, "expected string or bytes-like object, got '\(key.typeName)'")
        }
        // [\s/>=] with re.ASCII: \s is only space, \t, \n, \r, \f and \v.
        if name.unicodeScalars.contains(where: { " \t\n\r\u{0B}\u{0C}/>=".unicodeScalars.contains($0) }) {
            throw TemplateError(.value, "Invalid character in attribute name: \(reprString(name))")
        }
        let escapedValue: String
        if case .markup(let s) = value { escapedValue = s } else { escapedValue = htmlEscape(value.pyStr) }
        parts.append(htmlEscape(name) + "=\"" + escapedValue + "\"")
    }
    var out = parts.joined(separator: " ")
    if (a[0]?.isTruthy ?? true) && !out.isEmpty { out = " " + out }
    return call.autoescape ? .markup(out) : .string(out)
}

@Sendable func filterTojson(_ call: FilterCall) throws(TemplateError) -> Value {
    let a = try call.bind("do_tojson", ["indent"], implicit: 2)
    var indent: String? = nil
    if let i = a[0], !i.isNone {
        if let text = i.stringValue { indent = text } else {
            let count = try sizeArgument(i)
            try requireBuildable(count)
            indent = String(repeating: " ", count: Swift.max(0, count))
        }
    }
    var out = ""
    try writeJSON(call.value, indent: indent, level: 0, to: &out)
    return .markup(out)
}

// MARK: - tojson: json.dumps(sort_keys=True), then HTML-safe escapes

private func writeJSON(_ value: Value, indent: String?, level: Int, to out: inout String) throws(TemplateError) {
    switch value {
    case .none: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .int(let i): out += String(i)
    case .bigInt(let b): out += b.description
    case .float(let d): out += jsonFloat(d)
    case .string(let s), .markup(let s): writeJSONString(s, to: &out)
    case .list(let ref) where !ref.isList:
        throw TemplateError(.type, "Object of type \(value.typeName) is not JSON serializable")
    case .list, .tuple:
        let items = try value.iterate()
        if items.isEmpty { out += "[]"; return }
        out += "["
        for (i, item) in items.enumerated() {
            if i > 0 { out += indent == nil ? ", " : "," }
            if let indent { out += "\n" + String(repeating: indent, count: level + 1) }
            try writeJSON(item, indent: indent, level: level + 1, to: &out)
        }
        if let indent { out += "\n" + String(repeating: indent, count: level) }
        out += "]"
    case .dict(let ref):
        if ref.count == 0 { out += "{}"; return }
        let order = try pySorted(Array(0..<ref.count).map { Value.int($0) }, reverse: false) { position in
            ref.keys[position.intValue ?? 0]
        }
        out += "{"
        for (n, position) in order.enumerated() {
            let i = position.intValue ?? 0
            if n > 0 { out += indent == nil ? ", " : "," }
            if let indent { out += "\n" + String(repeating: indent, count: level + 1) }
            let key = ref.keys[i]
            switch key {
            case .string(let s), .markup(let s): writeJSONString(s, to: &out)
            case .none: out += "\"null\""
            case .bool(let b): out += b ? "\"true\"" : "\"false\""
            case .int, .bigInt: out += "\"" + key.pyStr + "\""
            case .float(let d): out += "\"" + jsonFloat(d) + "\""
            default: throw TemplateError(.type, "keys must be str, int, float, bool or None, not \(key.typeName)")
            }
            out += ": "
            try writeJSON(ref.values[i], indent: indent, level: level + 1, to: &out)
        }
        if let indent { out += "\n" + String(repeating: indent, count: level) }
        out += "}"
    default:
        throw TemplateError(.type, "Object of type \(value.typeName) is not JSON serializable")
    }
}

private func jsonFloat(_ d: Double) -> String {
    if d.isNaN { return "NaN" }
    if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
    return formatFloatRepr(d)
}

/// A JSON string as `json.dumps` writes it (ASCII only), with `<`, `>`, `&`, `'` escaped.
private func writeJSONString(_ s: String, to out: inout String) {
    out += "\""
    func unicodeEscape(_ unit: UInt16) {
        let hex = String(unit, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        case "<": out += "\\u003c"
        case ">": out += "\\u003e"
        case "&": out += "\\u0026"
        case "'": out += "\\u0027"
        default:
            if c.value < 0x20 || c.value >= 0x7F {
                for unit in String(c).utf16 { unicodeEscape(unit) }
            } else {
                out.unicodeScalars.append(c)
            }
        }
    }
    out += "\""
}

// MARK: - striptags: markupsafe's Markup.striptags

func stripTags(_ text: String) -> String {
    var bytes = Array(text.utf8)
    // Comments first, so a tag inside a comment does not end it early.
    while let start = findBytes(bytes, Array("<!--".utf8)) {
        guard let end = findBytes(bytes, Array("-->".utf8), from: start) else { break }
        bytes.removeSubrange(start..<(end + 3))
    }
    while let start = findBytes(bytes, [UInt8(ascii: "<")]) {
        guard let end = findBytes(bytes, [UInt8(ascii: ">")], from: start) else { break }
        bytes.removeSubrange(start...end)
    }
    let collapsed = (try? pySplit(String(decoding: bytes, as: UTF8.self), nil))?.joined(separator: " ") ?? ""
    return htmlUnescape(collapsed)
}

private let namedEntities: [String: String] = [
    "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}", "copy": "\u{A9}",
    "reg": "\u{AE}", "trade": "\u{2122}", "hellip": "\u{2026}", "mdash": "\u{2014}", "ndash": "\u{2013}",
    "lsquo": "\u{2018}", "rsquo": "\u{2019}", "ldquo": "\u{201C}", "rdquo": "\u{201D}", "laquo": "\u{AB}",
    "raquo": "\u{BB}", "euro": "\u{20AC}", "pound": "\u{A3}", "yen": "\u{A5}", "cent": "\u{A2}",
    "sect": "\u{A7}", "para": "\u{B6}", "deg": "\u{B0}", "plusmn": "\u{B1}", "times": "\u{D7}",
    "divide": "\u{F7}", "middot": "\u{B7}", "bull": "\u{2022}", "shy": "\u{AD}", "iexcl": "\u{A1}",
    "iquest": "\u{BF}", "micro": "\u{B5}", "frac12": "\u{BD}", "frac14": "\u{BC}", "frac34": "\u{BE}",
]
/// Entities html.unescape also accepts without the closing semicolon.
private let legacyEntities: Set<String> = [
    "amp", "lt", "gt", "quot", "nbsp", "copy", "reg", "laquo", "raquo", "pound", "yen", "cent", "sect",
    "para", "deg", "plusmn", "times", "divide", "middot", "shy", "iexcl", "iquest", "micro", "frac12",
    "frac14", "frac34",
]

/// Python's `html.unescape` for numeric references and the common named ones.
func htmlUnescape(_ text: String) -> String {
    guard text.utf8.contains(UInt8(ascii: "&")) else { return text }
    let scalars = Array(text.unicodeScalars)
    var out = ""
    var i = 0
    while i < scalars.count {
        let c = scalars[i]
        guard c == "&", i + 1 < scalars.count else { out.unicodeScalars.append(c); i += 1; continue }
        if scalars[i + 1] == "#" {
            var j = i + 2
            var hex = false
            if j < scalars.count && (scalars[j] == "x" || scalars[j] == "X") { hex = true; j += 1 }
            let digitsStart = j
            while j < scalars.count, hex ? scalars[j].properties.isASCIIHexDigit : (scalars[j].value >= 0x30 && scalars[j].value <= 0x39) { j += 1 }
            if j == digitsStart { out.unicodeScalars.append(c); i += 1; continue }
            let number = UInt32(scalarString(scalars[digitsStart..<j]), radix: hex ? 16 : 10) ?? 0x110000
            if j < scalars.count && scalars[j] == ";" { j += 1 }
            if number == 0 || (number >= 0xD800 && number <= 0xDFFF) || number > 0x10FFFF {
                out += "\u{FFFD}"
            } else if number >= 0x80 && number <= 0x9F, let mapped = windows1252[number] {
                out.unicodeScalars.append(mapped)
            } else if let scalar = Unicode.Scalar(number) {
                out.unicodeScalars.append(scalar)
            }
            i = j
            continue
        }
        var j = i + 1
        while j < scalars.count && j - i <= 32 && (scalars[j].properties.isAlphabetic || isPyDecimal(scalars[j])) && scalars[j].isASCII { j += 1 }
        let name = scalarString(scalars[(i + 1)..<j])
        if j < scalars.count && scalars[j] == ";", let replacement = namedEntities[name] {
            out += replacement
            i = j + 1
            continue
        }
        // Longest legacy prefix without a semicolon.
        var matched = false
        var length = name.unicodeScalars.count
        while length > 1 {
            let prefix = scalarString(name.unicodeScalars.prefix(length))
            if legacyEntities.contains(prefix), let replacement = namedEntities[prefix] {
                out += replacement
                i += 1 + length
                matched = true
                break
            }
            length -= 1
        }
        if !matched { out.unicodeScalars.append(c); i += 1 }
    }
    return out
}

private let windows1252: [UInt32: Unicode.Scalar] = [
    0x80: "\u{20AC}", 0x82: "\u{201A}", 0x83: "\u{0192}", 0x84: "\u{201E}", 0x85: "\u{2026}", 0x86: "\u{2020}",
    0x87: "\u{2021}", 0x88: "\u{02C6}", 0x89: "\u{2030}", 0x8A: "\u{0160}", 0x8B: "\u{2039}", 0x8C: "\u{0152}",
    0x8E: "\u{017D}", 0x91: "\u{2018}", 0x92: "\u{2019}", 0x93: "\u{201C}", 0x94: "\u{201D}", 0x95: "\u{2022}",
    0x96: "\u{2013}", 0x97: "\u{2014}", 0x98: "\u{02DC}", 0x99: "\u{2122}", 0x9A: "\u{0161}", 0x9B: "\u{203A}",
    0x9C: "\u{0153}", 0x9E: "\u{017E}", 0x9F: "\u{0178}",
]

// MARK: - pprint: pprint.pformat(width=80, sort_dicts=True)

func prettyFormat(_ value: Value) -> String {
    var out = ""
    prettyWrite(value, indent: 0, allowance: 0, level: 0, to: &out)
    return out
}

/// `repr` with dict keys sorted, as pprint's `safe_repr` writes it.
private func sortedRepr(_ value: Value) -> String {
    switch value {
    case .list(let ref) where ref.isList: return "[" + ref.items.map(sortedRepr).joined(separator: ", ") + "]"
    case .tuple(let items):
        return "(" + items.map(sortedRepr).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
    case .dict(let ref):
        return "{" + sortedDictPositions(ref).map { sortedRepr(ref.keys[$0]) + ": " + sortedRepr(ref.values[$0]) }.joined(separator: ", ") + "}"
    default: return repr(value)
    }
}

/// Dict positions in pprint's order: sorted keys, falling back to type names for mixed types.
private func sortedDictPositions(_ ref: DictRef) -> [Int] {
    let positions = Array(0..<ref.count)
    return positions.sorted { a, b in
        let x = ref.keys[a], y = ref.keys[b]
        if let order = try? pyCompare(x, y, "<") { return order == -1 }
        return x.typeName < y.typeName
    }
}

private func prettyWrite(_ value: Value, indent: Int, allowance: Int, level: Int, to out: inout String) {
    let rep = sortedRepr(value)
    let maxWidth = 80 - indent - allowance
    if rep.unicodeScalars.count <= maxWidth {
        out += rep
        return
    }
    switch value {
    case .dict(let ref):
        out += "{"
        let positions = sortedDictPositions(ref)
        let inner = indent + 1
        for (n, position) in positions.enumerated() {
            let last = n == positions.count - 1
            let keyRep = sortedRepr(ref.keys[position])
            out += keyRep + ": "
            prettyWrite(ref.values[position], indent: inner + keyRep.unicodeScalars.count + 2, allowance: last ? allowance + 1 : 1, level: level + 1, to: &out)
            if !last { out += ",\n" + String(repeating: " ", count: inner) }
        }
        out += "}"
    case .list(let ref) where ref.isList:
        out += "["
        prettyItems(ref.items, indent: indent, allowance: allowance + 1, level: level, to: &out)
        out += "]"
    case .tuple(let items):
        out += "("
        let end = items.count == 1 ? ",)" : ")"
        prettyItems(items, indent: indent, allowance: allowance + end.count, level: level, to: &out)
        out += end
    case .string(let s) where !s.isEmpty:
        prettyString(s, indent: indent, allowance: allowance, level: level + 1, to: &out)
    default:
        out += rep
    }
}

private func prettyItems(_ items: [Value], indent: Int, allowance: Int, level: Int, to out: inout String) {
    let inner = indent + 1
    for (n, item) in items.enumerated() {
        let last = n == items.count - 1
        if n > 0 { out += ",\n" + String(repeating: " ", count: inner) }
        prettyWrite(item, indent: inner, allowance: last ? allowance : 1, level: level + 1, to: &out)
    }
}

private func prettyString(_ s: String, indent: Int, allowance: Int, level: Int, to out: inout String) {
    var indent = indent
    var allowance = allowance
    if level == 1 { indent += 1; allowance += 1 }
    let lines = pySplitlines(s, keepends: true)
    var chunks: [String] = []
    var maxWidth1 = 80 - indent
    let maxWidth = 80 - indent
    var lastRep = ""
    for (i, line) in lines.enumerated() {
        let rep = reprString(line)
        lastRep = rep
        if i == lines.count - 1 { maxWidth1 -= allowance }
        if rep.unicodeScalars.count <= maxWidth1 {
            chunks.append(rep)
            continue
        }
        // Alternating runs of non-space then space, as re.findall(r'\S*\s*') splits them.
        var parts: [String] = []
        var current = ""
        var inSpace = false
        for c in line.unicodeScalars {
            let space = isPySpace(c)
            if !space && inSpace { parts.append(current); current = ""; inSpace = false }
            if space { inSpace = true }
            current.unicodeScalars.append(c)
        }
        if !current.isEmpty { parts.append(current) }
        var maxWidth2 = maxWidth
        var accumulated = ""
        for (j, part) in parts.enumerated() {
            let candidate = accumulated + part
            if j == parts.count - 1 && i == lines.count - 1 { maxWidth2 -= allowance }
            if reprString(candidate).unicodeScalars.count > maxWidth2 {
                if !accumulated.isEmpty { chunks.append(reprString(accumulated)) }
                accumulated = part
            } else {
                accumulated = candidate
            }
        }
        if !accumulated.isEmpty { chunks.append(reprString(accumulated)) }
    }
    if chunks.count == 1 {
        out += lastRep
        return
    }
    if level == 1 { out += "(" }
    for (i, chunk) in chunks.enumerated() {
        if i > 0 { out += "\n" + String(repeating: " ", count: indent) }
        out += chunk
    }
    if level == 1 { out += ")" }
}

// MARK: - wordwrap: Python's textwrap.TextWrapper (expand_tabs and replace_whitespace off)

private struct TextWrapper {
    let width: Int
    let breakLongWords: Bool
    let breakOnHyphens: Bool

    /// textwrap's whitespace: ASCII only.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        c == " " || c == "\t" || c == "\n" || c == "\u{0B}" || c == "\u{0C}" || c == "\r"
    }

    static func isLetter(_ c: Unicode.Scalar) -> Bool { isPyWord(c) && !isPyDecimal(c) && !(isPyDigit(c)) }
    static func isWordPunct(_ c: Unicode.Scalar) -> Bool {
        isPyWord(c) || c == "!" || c == "\"" || c == "'" || c == "&" || c == "." || c == "," || c == "?"
    }

    /// textwrap's `wordsep_re` (or `wordsep_simple_re`) split into chunks.
    func chunks(_ text: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var out: [[Unicode.Scalar]] = []
        var i = 0
        let n = text.count
        func at(_ k: Int) -> Unicode.Scalar? { k >= 0 && k < n ? text[k] : nil }
        func letter(_ k: Int) -> Bool { at(k).map(TextWrapper.isLetter) ?? false }
        while i < n {
            if TextWrapper.isSpace(text[i]) {
                var j = i
                while j < n && TextWrapper.isSpace(text[j]) { j += 1 }
                out.append(Array(text[i..<j]))
                i = j
                continue
            }
            if !breakOnHyphens {
                var j = i
                while j < n && !TextWrapper.isSpace(text[j]) { j += 1 }
                out.append(Array(text[i..<j]))
                i = j
                continue
            }
            // An em-dash between words: (?<=wp) -{2,} (?=\w)
            if text[i] == "-", let before = at(i - 1), TextWrapper.isWordPunct(before) {
                var j = i
                while j < n && text[j] == "-" { j += 1 }
                if j - i >= 2, let after = at(j), isPyWord(after) {
                    out.append(Array(text[i..<j]))
                    i = j
                    continue
                }
            }
            // A word, possibly hyphenated: the shortest run of non-space that ends at a break.
            var end = i + 1
            var found = false
            while end <= n {
                // Hyphenated word: the chunk ends with '-' after two letters (or letter-letter-),
                // and a letter, optional '-', letter follows.
                if end < n, text[end] == "-" {
                    let hyphenEnd = end + 1
                    let behind = (letter(end - 2) && letter(end - 1)) || (letter(end - 3) && at(end - 2) == "-" && letter(end - 1))
                    let ahead = letter(hyphenEnd) && (letter(hyphenEnd + 1) || (at(hyphenEnd + 1) == "-" && letter(hyphenEnd + 2)))
                    if behind && ahead {
                        end = hyphenEnd
                        found = true
                        break
                    }
                }
                if end == n || TextWrapper.isSpace(text[end]) { found = true; break }
                // Before an em-dash: (?<=wp) (?=-{2,}\w)
                if TextWrapper.isWordPunct(text[end - 1]), text[end] == "-", at(end + 1) == "-" {
                    var k = end
                    while k < n && text[k] == "-" { k += 1 }
                    if let after = at(k), isPyWord(after) { found = true; break }
                }
                end += 1
            }
            if !found { end = n }
            out.append(Array(text[i..<end]))
            i = end
        }
        return out
    }

    mutating func wrap(_ line: String) -> [String] {
        var reversedChunks = Array(chunks(Array(line.unicodeScalars)).reversed())
        var lines: [String] = []
        func isBlank(_ chunk: [Unicode.Scalar]) -> Bool { chunk.allSatisfy(isPySpace) }
        while !reversedChunks.isEmpty {
            var current: [[Unicode.Scalar]] = []
            var currentLength = 0
            if let last = reversedChunks.last, isBlank(last), !lines.isEmpty { reversedChunks.removeLast() }
            while let last = reversedChunks.last {
                if currentLength + last.count <= width {
                    current.append(last)
                    currentLength += last.count
                    reversedChunks.removeLast()
                } else {
                    break
                }
            }
            if let last = reversedChunks.last, last.count > width {
                // _handle_long_word
                let spaceLeft = width < 1 ? 1 : width - currentLength
                if breakLongWords {
                    var end = spaceLeft
                    if breakOnHyphens && last.count > spaceLeft {
                        if let hyphen = last[0..<Swift.min(spaceLeft, last.count)].lastIndex(of: "-"), hyphen > 0,
                           last[0..<hyphen].contains(where: { $0 != "-" }) {
                            end = hyphen + 1
                        }
                    }
                    current.append(Array(last[0..<end]))
                    reversedChunks[reversedChunks.count - 1] = Array(last[end...])
                } else if current.isEmpty {
                    current.append(last)
                    reversedChunks.removeLast()
                }
                currentLength = current.reduce(0) { $0 + $1.count }
            }
            if let last = current.last, isBlank(last) {
                currentLength -= last.count
                current.removeLast()
            }
            if !current.isEmpty { lines.append(scalarString(current.joined())) }
        }
        return lines
    }
}

// MARK: - urlize: jinja2.utils.urlize

private func isURIScheme(_ text: String) -> Bool {
    // ^([\w.+-]{2,}:(/){0,2})$
    let scalars = Array(text.unicodeScalars)
    guard let colon = scalars.firstIndex(of: ":"), colon >= 2 else { return false }
    guard scalars[0..<colon].allSatisfy({ isPyWord($0) || $0 == "." || $0 == "+" || $0 == "-" }) else { return false }
    let rest = scalars[(colon + 1)...]
    return rest.count <= 2 && rest.allSatisfy { $0 == "/" }
}

/// jinja2.utils.urlize over already escaped text.
private func urlize(_ escaped: String, trimLimit: Int?, rel: String, target: String?, extraSchemes: [String]) -> String {
    let relAttribute = rel.isEmpty ? "" : " rel=\"\(htmlEscape(rel))\""
    let targetAttribute = (target?.isEmpty ?? true) ? "" : " target=\"\(htmlEscape(target ?? ""))\""
    func trim(_ url: String) -> String {
        guard let limit = trimLimit, url.unicodeScalars.count > limit else { return url }
        return scalarString(url.unicodeScalars.prefix(Swift.max(0, limit))) + "..."
    }
    var out = ""
    // re.split(r"(\s+)"): words, each followed by the whitespace run after it.
    var word: [Unicode.Scalar] = []
    var inSpace = false
    for c in escaped.unicodeScalars {
        let space = isPySpace(c)
        if space && !inSpace {
            out += urlizeWord(scalarString(word), relAttribute: relAttribute, targetAttribute: targetAttribute, trim: trim, extraSchemes: extraSchemes)
            word.removeAll()
        }
        if space { out.unicodeScalars.append(c) } else { word.append(c) }
        inSpace = space
    }
    out += urlizeWord(scalarString(word), relAttribute: relAttribute, targetAttribute: targetAttribute, trim: trim, extraSchemes: extraSchemes)
    return out
}

private func urlizeWord(_ word: String, relAttribute: String, targetAttribute: String, trim: (String) -> String, extraSchemes: [String]) -> String {
    var head = ""
    var middle = word
    var tail = ""
    // Leading ( < or &lt;
    while true {
        if middle.hasPrefix("(") || middle.hasPrefix("<") { head += String(middle.prefix(1)); middle = String(middle.dropFirst()) } else if middle.hasPrefix("&lt;") {
            head += "&lt;"; middle = String(middle.dropFirst(4))
        } else { break }
    }
    // Trailing ) > . , newline or &gt;
    while true {
        if let last = middle.unicodeScalars.last, last == ")" || last == ">" || last == "." || last == "," || last == "\n" {
            tail = String(last) + tail
            middle = String(middle.unicodeScalars.dropLast())
        } else if middle.hasSuffix("&gt;") {
            tail = "&gt;" + tail
            middle = String(middle.dropLast(4))
        } else { break }
    }
    // Prefer balanced parentheses inside the URL over trailing punctuation.
    for (open, close) in [("(", ")"), ("<", ">"), ("&lt;", "&gt;")] {
        let openCount = pyCount(middle, open, nil, nil)
        if openCount <= pyCount(middle, close, nil, nil) { continue }
        for _ in 0..<Swift.min(openCount, pyCount(tail, close, nil, nil)) {
            let index = pyFind(tail, close, nil, nil, .forward)
            let endIndex = index + close.unicodeScalars.count
            middle += scalarString(tail.unicodeScalars.prefix(endIndex))
            tail = scalarString(tail.unicodeScalars.dropFirst(endIndex))
        }
    }
    if matchesHTTP(middle) {
        let lower = middle
        if lower.hasPrefix("https://") || lower.hasPrefix("http://") {
            middle = "<a href=\"\(middle)\"\(relAttribute)\(targetAttribute)>\(trim(middle))</a>"
        } else {
            middle = "<a href=\"https://\(middle)\"\(relAttribute)\(targetAttribute)>\(trim(middle))</a>"
        }
    } else if middle.hasPrefix("mailto:"), matchesEmail(String(middle.dropFirst(7))) {
        middle = "<a href=\"\(middle)\">\(middle.dropFirst(7))</a>"
    } else if middle.contains("@"), !middle.hasPrefix("www."), !middle.hasPrefix("@"), !middle.contains(":"), matchesEmail(middle) {
        middle = "<a href=\"mailto:\(middle)\">\(middle)</a>"
    } else {
        for scheme in extraSchemes where middle != scheme && middle.hasPrefix(scheme) {
            middle = "<a href=\"\(middle)\"\(relAttribute)\(targetAttribute)>\(middle)</a>"
        }
    }
    return head + middle + tail
}

/// `^\S+@\w[\w.-]*\.\w+$`
private func matchesEmail(_ s: String) -> Bool {
    let scalars = Array(s.unicodeScalars)
    guard !scalars.contains(where: isPySpace), let at = scalars.lastIndex(of: "@"), at >= 1 else { return false }
    let domain = Array(scalars[(at + 1)...])
    guard let first = domain.first, isPyWord(first) else { return false }
    guard domain.allSatisfy({ isPyWord($0) || $0 == "." || $0 == "-" }) else { return false }
    guard let dot = domain.lastIndex(of: "."), dot >= 1, dot < domain.count - 1 else { return false }
    return domain[(dot + 1)...].allSatisfy(isPyWord)
}

/// jinja2.utils `_http_re`, matched against a whole word.
private func matchesHTTP(_ s: String) -> Bool {
    let c = Array(s.unicodeScalars)
    let n = c.count
    func lowerASCII(_ k: Int) -> Unicode.Scalar? {
        guard k < n else { return nil }
        let v = c[k].value
        return (v >= 0x41 && v <= 0x5A) ? Unicode.Scalar(v | 0x20) : c[k]
    }
    func hasPrefix(_ p: String, at k: Int) -> Bool {
        var i = k
        for ch in p.unicodeScalars {
            guard lowerASCII(i) == ch else { return false }
            i += 1
        }
        return true
    }
    func isASCIILetter(_ k: Int) -> Bool { k < n && c[k].isASCII && isPyAlpha(c[k]) }
    func isDigit(_ k: Int) -> Bool { k < n && isPyDecimal(c[k]) }
    func isLabelChar(_ k: Int) -> Bool { k < n && (isPyWord(c[k]) || c[k] == "%" || c[k] == "-") }
    /// (?::\d{1,5})? (?:[/?#]\S*)? $
    func restMatches(_ k: Int) -> Bool {
        if k == n { return true }
        if c[k] == "/" || c[k] == "?" || c[k] == "#" { return true }
        if c[k] == ":" {
            var j = k + 1
            while j < n && j - k - 1 < 5 && isDigit(j) { j += 1 }
            let digits = j - k - 1
            guard digits >= 1 else { return false }
            // Backtracking over fewer port digits cannot help: the next char must end or start a path.
            return j == n || c[j] == "/" || c[j] == "?" || c[j] == "#"
        }
        return false
    }
    var schemeEnd: Int? = nil
    if hasPrefix("https://", at: 0) { schemeEnd = 8 } else if hasPrefix("http://", at: 0) { schemeEnd = 7 }
    // Alternative 1: (https?://|www\.) (([\w%-]+\.)+)? ([a-z]{2,63} | xn--[\w%]{2,59})
    if let start = schemeEnd ?? (hasPrefix("www.", at: 0) ? 4 : nil) {
        // Every position where a TLD may start: the start, or just after a dot that closes a label run.
        var tldStarts = [start]
        var k = start
        while k < n && isLabelChar(k) {
            var j = k
            while j < n && isLabelChar(j) { j += 1 }
            if j < n && c[j] == "." { tldStarts.append(j + 1); k = j + 1 } else { break }
        }
        for t in tldStarts {
            var j = t
            while j < n && j - t < 63 && isASCIILetter(j) { j += 1 }
            if j - t >= 2 {
                var e = j
                while e >= t + 2 { if restMatches(e) { return true }; e -= 1 }
            }
            if hasPrefix("xn--", at: t) {
                var e = t + 4
                while e < n && e - t - 4 < 59 && (isPyWord(c[e]) || c[e] == "%") { e += 1 }
                while e >= t + 6 { if restMatches(e) { return true }; e -= 1 }
            }
        }
    }
    // Alternative 2: ([\w%-]{2,63}\.)+ (com|net|int|edu|gov|org|info|mil)
    do {
        var k = 0
        while k < n {
            var j = k
            while j < n && isLabelChar(j) { j += 1 }
            let length = j - k
            guard length >= 2 && length <= 63, j < n, c[j] == "." else { break }
            let t = j + 1
            for tld in ["com", "net", "int", "edu", "gov", "org", "info", "mil"] where hasPrefix(tld, at: t) {
                if restMatches(t + tld.count) { return true }
            }
            k = t
        }
    }
    // Alternative 3: https?:// then an IPv4 address or a bracketed IPv6 one.
    if let start = schemeEnd {
        if matchIPv4(c, start, restMatches) { return true }
        if start < n, c[start] == "[", let close = c[start...].firstIndex(of: "]") {
            if matchIPv6(Array(c[(start + 1)..<close])) && restMatches(close + 1) { return true }
        }
    }
    return false
}

/// (\d{1,3})(\.\d{1,3}){3} followed by what `rest` accepts, with backtracking over digit counts.
private func matchIPv4(_ c: [Unicode.Scalar], _ start: Int, _ rest: (Int) -> Bool) -> Bool {
    func go(_ k: Int, _ group: Int) -> Bool {
        var position = k
        if group > 0 {
            guard position < c.count, c[position] == "." else { return false }
            position += 1
        }
        var ends: [Int] = []
        var j = position
        while j < c.count && j - position < 3 && isPyDecimal(c[j]) { j += 1; ends.append(j) }
        for end in ends.reversed() {
            if group == 3 ? rest(end) : go(end, group + 1) { return true }
        }
        return false
    }
    return go(start, 0)
}

/// ([\da-f]{0,4}:){2}([\da-f]{0,4}:?){1,6}, case-insensitive, matched against the whole text.
private func matchIPv6(_ c: [Unicode.Scalar]) -> Bool {
    func isHex(_ k: Int) -> Bool { isPyDecimal(c[k]) || (c[k].isASCII && "abcdefABCDEF".unicodeScalars.contains(c[k])) }
    var k = 0
    // Two groups that must each end with a colon: the hex run before it is forced.
    for _ in 0..<2 {
        let start = k
        while k < c.count && k - start < 4 && isHex(k) { k += 1 }
        guard k < c.count, c[k] == ":" else { return false }
        k += 1
    }
    // Then one to six groups of up to four hex digits and an optional colon; taking the
    // longest group each time needs the fewest groups.
    var groups = 0
    repeat {
        let start = k
        while k < c.count && k - start < 4 && isHex(k) { k += 1 }
        if k < c.count && c[k] == ":" { k += 1 }
        groups += 1
        if k == start && k < c.count { return false }
    } while k < c.count && groups < 6
    return k == c.count
}
