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
    return .makeList(try pySorted(ref.itemTuples, reverse: a[2]?.isTruthy ?? false) { pair in
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
        return generator(ref.itemTuples)
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

