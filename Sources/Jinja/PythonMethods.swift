// The Python methods templates call on values: `name.startswith('x')`, `d.items()`, ….
//
// The evaluator resolves `x.name` through `methodExists` (a Python attribute wins over a dict
// key, as in Jinja2's getattr-then-getitem), and `x.name(args)` through `callMethod`.
// Strings are handled by code point, as Python does: searches run on UTF-8 bytes (a byte
// match is a code point match) and positions are reported in code points.

#if canImport(Glibc)
import Glibc
#endif

/// Whether `receiver` has a Python method `name` (so `receiver.name` is that method).
public func methodExists(_ receiver: Value, _ name: String) -> Bool {
    switch receiver {
    case .string, .markup: return stringMethodNames.contains(name)
    case .dict:
        switch name {
        case "items", "keys", "values", "get", "pop", "popitem", "setdefault", "update", "copy", "clear",
             "iteritems", "iterkeys", "itervalues", "has_key": return true
        default: return false
        }
    case .list(let ref):
        switch ref.kind {
        case .list:
            switch name {
            case "index", "count", "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", "copy": return true
            default: return false
            }
        case .range: return name == "index" || name == "count"
        case .dictKeys, .dictValues, .dictItems, .iterator: return false
        }
    case .tuple: return name == "index" || name == "count"
    case .int, .bigInt, .bool: return name == "bit_length" || name == "conjugate" || name == "as_integer_ratio"
    case .float: return name == "is_integer" || name == "conjugate" || name == "as_integer_ratio" || name == "hex"
    default: return false
    }
}

private let stringMethodNames: Set<String> = [
    "startswith", "endswith", "split", "rsplit", "join", "strip", "lstrip", "rstrip", "lower", "upper",
    "replace", "format", "format_map", "find", "rfind", "index", "rindex", "count", "title", "capitalize",
    "center", "ljust", "rjust", "zfill", "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper",
    "isdecimal", "isnumeric", "istitle", "isidentifier", "isascii", "isprintable", "splitlines", "partition",
    "rpartition", "swapcase", "casefold", "removeprefix", "removesuffix", "expandtabs",
]

/// Calls `receiver.name(args)`; nil when `receiver` has no such method (the evaluator then
/// reports the undefined attribute).
public func callMethod(_ receiver: Value, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    switch receiver {
    case .string(let s): return try callStringMethod(s, markup: false, name, args)
    case .markup(let s): return try callStringMethod(s, markup: true, name, args)
    case .dict(let ref): return try callDictMethod(ref, name, args)
    case .list(let ref): return try callListMethod(ref, name, args)
    case .tuple(let items):
        switch name {
        case "index": return try sequenceIndex(items, args, owner: "tuple", missing: "tuple.index(x): x not in tuple")
        case "count": return try sequenceCount(items, args, owner: "tuple")
        default: return nil
        }
    case .int, .bigInt, .bool, .float: return try callNumberMethod(receiver, name, args)
    case .cycler(let c):
        switch name {
        case "next": return c.next()
        case "reset": c.reset(); return Value.none
        default: return nil
        }
    default: return nil
    }
}

// MARK: - Argument checking in CPython's words

/// Positional-only method arguments, refused in CPython's words: argument-clinic methods say
/// "replace expected at least 2 arguments, got 1", the older `PyArg_ParseTuple` ones (`legacy`)
/// "find() takes at least 1 argument (0 given)".
private func positionalArguments(_ args: Arguments, _ method: String, min: Int, max: Int, owner: String = "str", legacy: Bool = false) throws(TemplateError) -> [Value] {
    let count = args.positional.count
    if args.keywords.isEmpty && count >= min && count <= max { return args.positional }
    let bare = method.split(separator: ".").last.map(String.init) ?? method
    let qualified = "\(owner).\(bare)"
    if !args.keywords.isEmpty { throw TemplateError(.type, "\(legacy ? bare : qualified)() takes no keyword arguments") }
    func arguments(_ n: Int) -> String { n == 1 ? "1 argument" : "\(n) arguments" }
    if max == 0 { throw TemplateError(.type, "\(qualified)() takes no arguments (\(count) given)") }
    if min == 1 && max == 1 { throw TemplateError(.type, "\(qualified)() takes exactly one argument (\(count) given)") }
    if legacy {
        if count < min { throw TemplateError(.type, "\(bare)() takes at least \(arguments(min)) (\(count) given)") }
        throw TemplateError(.type, "\(bare)() takes at most \(arguments(max)) (\(count) given)")
    }
    if min == max { throw TemplateError(.type, "\(bare) expected \(arguments(min)), got \(count)") }
    if count < min { throw TemplateError(.type, "\(bare) expected at least \(arguments(min)), got \(count)") }
    throw TemplateError(.type, "\(bare) expected at most \(arguments(max)), got \(count)")
}

/// Arguments that may also be given by keyword, as for `split(sep=None, maxsplit=-1)`.
private func boundArguments(_ args: Arguments, _ method: String, _ names: [String]) throws(TemplateError) -> [Value?] {
    let given = args.positional.count + args.keywords.count
    if given > names.count {
        throw TemplateError(.type, "\(method)() takes at most \(names.count) argument\(names.count == 1 ? "" : "s") (\(given) given)")
    }
    var bound: [Value?] = Array(repeating: nil, count: names.count)
    for (i, value) in args.positional.enumerated() { bound[i] = value }
    for (key, value) in args.keywords {
        guard let position = names.firstIndex(of: key) else {
            throw TemplateError(.type, "'\(key)' is an invalid keyword argument for \(method)()")
        }
        if bound[position] != nil {
            throw TemplateError(.type, "argument for \(method)() given by name ('\(key)') and position (\(position + 1))")
        }
        bound[position] = value
    }
    return bound
}

private func stringArgument(_ value: Value, _ method: String, position: Int? = 1) throws(TemplateError) -> String {
    if let s = value.stringValue { return s }
    let argument = position.map { "argument \($0)" } ?? "argument"
    throw TemplateError(.type, "\(method)() \(argument) must be str, not \(value.isNone ? "None" : value.typeName)")
}

/// A length or width: Python refuses ints past a C `Py_ssize_t`.
func sizeArgument(_ value: Value) throws(TemplateError) -> Int {
    if case .bigInt = value { throw TemplateError(.overflow, "Python int too large to convert to C ssize_t") }
    return try intArgument(value)
}

private func intArgument(_ value: Value) throws(TemplateError) -> Int {
    if let i = value.intValue { return i }
    if case .bigInt(let b) = value { return b.negative ? Int.min : Int.max }
    throw TemplateError(.type, "'\(value.typeName)' object cannot be interpreted as an integer")
}

/// Optional slice bound (`None` means absent), as `str.find(sub, start, end)` takes it;
/// `list.index` takes no None.
private func sliceBound(_ value: Value?, noneAllowed: Bool = true) throws(TemplateError) -> Int? {
    guard let value, !(noneAllowed && value.isNone) else { return nil }
    if let i = value.intValue { return i }
    if case .bigInt(let b) = value { return b.negative ? Int.min / 2 : Int.max / 2 }
    throw TemplateError(.type, "slice indices must be integers \(noneAllowed ? "or None " : "")or have an __index__ method")
}

/// Python's slice index normalization for `[start:end]` of a sequence of `count` elements.
func normalizedRange(_ start: Int?, _ end: Int?, count: Int) -> (Int, Int) {
    var lower = start ?? 0
    var upper = end ?? count
    if lower < 0 { lower = Swift.max(0, lower + count) }
    if upper < 0 { upper = Swift.max(0, upper + count) }
    if upper > count { upper = count }
    return (lower, upper)
}

// MARK: - Character classes, as Python's str predicates define them

@inline(__always) func isPySpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
    default: return false
    }
}

@inline(__always) func isPyLineBreak(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x0A...0x0D, 0x1C...0x1E, 0x85, 0x2028, 0x2029: return true
    default: return false
    }
}

func isPyAlpha(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return (c.value | 0x20) >= 0x61 && (c.value | 0x20) <= 0x7A }
    switch c.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
    default: return false
    }
}

func isPyDecimal(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
    return c.properties.numericType == .decimal
}

func isPyDigit(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
    let type = c.properties.numericType
    return type == .decimal || type == .digit
}

func isPyNumeric(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
    return c.properties.numericType != nil
}

@inline(__always) func isPyAlnum(_ c: Unicode.Scalar) -> Bool { isPyAlpha(c) || isPyNumeric(c) }

/// `\w` of Python's `re` on str patterns.
@inline(__always) func isPyWord(_ c: Unicode.Scalar) -> Bool { c == "_" || isPyAlnum(c) }

private func isPyLower(_ c: Unicode.Scalar) -> Bool { c.isASCII ? (c.value >= 0x61 && c.value <= 0x7A) : c.properties.isLowercase }
private func isPyUpper(_ c: Unicode.Scalar) -> Bool { c.isASCII ? (c.value >= 0x41 && c.value <= 0x5A) : c.properties.isUppercase }
private func isPyTitle(_ c: Unicode.Scalar) -> Bool { !c.isASCII && c.properties.generalCategory == .titlecaseLetter }
private func isPyCased(_ c: Unicode.Scalar) -> Bool { c.isASCII ? isPyAlpha(c) : c.properties.isCased }

private func isPyPrintable(_ c: Unicode.Scalar) -> Bool {
    if c == " " { return true }
    switch c.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator: return false
    default: return true
    }
}

// MARK: - String algorithms, by code point

/// The lowercase mapping of `scalars[i]`, with Python's final-sigma rule: a capital sigma
/// after a cased letter and not before one becomes 'ς'.
private func lowerMapping(_ scalars: [Unicode.Scalar], _ i: Int) -> String {
    let c = scalars[i]
    guard c.value == 0x3A3 else { return c.properties.lowercaseMapping }
    var j = i - 1
    while j >= 0 && scalars[j].properties.isCaseIgnorable { j -= 1 }
    guard j >= 0 && isPyCased(scalars[j]) else { return "\u{3C3}" }
    var k = i + 1
    while k < scalars.count && scalars[k].properties.isCaseIgnorable { k += 1 }
    return k < scalars.count && isPyCased(scalars[k]) ? "\u{3C3}" : "\u{3C2}"
}

/// Python's `str.lower()`.
func pyLower(_ s: String) -> String {
    if s.utf8.allSatisfy({ $0 < 0x80 }) { return asciiMapped(s, from: 0x41, to: 0x5A, flip: 0x20, setting: true) }
    let scalars = Array(s.unicodeScalars)
    var out = ""
    for i in scalars.indices { out += lowerMapping(scalars, i) }
    return out
}

/// ASCII case change: bytes in `from...to` get `flip` set (lowering) or cleared (uppering).
private func asciiMapped(_ s: String, from: UInt8, to: UInt8, flip: UInt8, setting: Bool) -> String {
    let utf8 = s.utf8
    guard utf8.contains(where: { $0 >= from && $0 <= to }) else { return s }
    return String(unsafeUninitializedCapacity: utf8.count) { buffer in
        var i = 0
        for byte in utf8 {
            buffer[i] = (byte >= from && byte <= to) ? (setting ? byte | flip : byte & ~flip) : byte
            i += 1
        }
        return i
    }
}

/// Python's `str.upper()`.
func pyUpper(_ s: String) -> String {
    if s.utf8.allSatisfy({ $0 < 0x80 }) { return asciiMapped(s, from: 0x61, to: 0x7A, flip: 0x20, setting: false) }
    var out = ""
    for c in s.unicodeScalars { out += c.properties.uppercaseMapping }
    return out
}

/// Python's `str.title()`: a cased character after a cased one is lowered, others title-cased.
func pyTitle(_ s: String) -> String {
    let scalars = Array(s.unicodeScalars)
    var out = ""
    var previousCased = false
    for (i, c) in scalars.enumerated() {
        out += previousCased ? lowerMapping(scalars, i) : c.properties.titlecaseMapping
        previousCased = isPyCased(c)
    }
    return out
}

/// Python's `str.capitalize()` (3.8+): the first character title-cased, the rest lowered.
func pyCapitalize(_ s: String) -> String {
    let scalars = Array(s.unicodeScalars)
    var out = ""
    for (i, c) in scalars.enumerated() {
        out += i == 0 ? c.properties.titlecaseMapping : lowerMapping(scalars, i)
    }
    return out
}

func pySwapcase(_ s: String) -> String {
    let scalars = Array(s.unicodeScalars)
    var out = ""
    for (i, c) in scalars.enumerated() {
        if isPyUpper(c) { out += lowerMapping(scalars, i) } else if isPyLower(c) { out += c.properties.uppercaseMapping } else { out.unicodeScalars.append(c) }
    }
    return out
}

/// Python's `str.casefold()`: Unicode full case folding.
func pyCasefold(_ s: String) -> String {
    if s.utf8.allSatisfy({ $0 < 0x80 }) { return pyLower(s) }
    var out = ""
    for scalar in s.unicodeScalars {
        if let folded = caseFoldingExceptions[scalar.value] { out += folded } else { out += scalar.properties.lowercaseMapping }
    }
    return out
}

/// Byte offset of the first occurrence of `needle` in `haystack[from..<to]`, or nil.
func findBytes(_ haystack: [UInt8], _ needle: [UInt8], from: Int = 0, to: Int? = nil) -> Int? {
    let end = to ?? haystack.count
    let n = needle.count
    if n == 0 { return from <= end ? from : nil }
    if end - from < n { return nil }
    let first = needle[0]
    var i = from
    let last = end - n
    while i <= last {
        if haystack[i] == first {
            var j = 1
            while j < n && haystack[i + j] == needle[j] { j += 1 }
            if j == n { return i }
        }
        i += 1
    }
    return nil
}

/// Byte offset of the last occurrence of `needle` in `haystack[from..<to]`, or nil.
func rfindBytes(_ haystack: [UInt8], _ needle: [UInt8], from: Int = 0, to: Int? = nil) -> Int? {
    let end = to ?? haystack.count
    let n = needle.count
    if end - from < n { return nil }
    var i = end - n
    while i >= from {
        var j = 0
        while j < n && haystack[i + j] == needle[j] { j += 1 }
        if j == n { return i }
        i -= 1
    }
    return nil
}

@inline(__always) private func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }

/// Code point count of `bytes[0..<offset]`.
private func codePointIndex(_ bytes: [UInt8], _ offset: Int) -> Int {
    var count = 0
    for i in 0..<offset where !isContinuation(bytes[i]) { count += 1 }
    return count
}

/// Byte offsets of every code point boundary, plus the end: `offsets[i]` starts code point i.
private func codePointOffsets(_ bytes: [UInt8]) -> [Int] {
    var offsets: [Int] = []
    offsets.reserveCapacity(bytes.count + 1)
    for i in bytes.indices where !isContinuation(bytes[i]) { offsets.append(i) }
    offsets.append(bytes.count)
    return offsets
}

private func string(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

/// The byte range of `s[start:end]` (code point bounds), nil when start lies past the end.
private func byteWindow(_ bytes: [UInt8], _ start: Int?, _ end: Int?) -> (Int, Int)? {
    if start == nil && end == nil { return (0, bytes.count) }
    let offsets = codePointOffsets(bytes)
    let count = offsets.count - 1
    let (lower, upper) = normalizedRange(start, end, count: count)
    if lower > count { return nil }
    if upper < lower { return (offsets[lower], offsets[lower] - 1) }
    return (offsets[lower], offsets[upper])
}

enum FindDirection { case forward, backward }

/// `str.find`/`rfind` in code points; -1 when absent.
func pyFind(_ s: String, _ sub: String, _ start: Int?, _ end: Int?, _ direction: FindDirection) -> Int {
    let bytes = Array(s.utf8)
    guard let (lower, upper) = byteWindow(bytes, start, end), upper >= lower else { return -1 }
    let needle = Array(sub.utf8)
    let found = direction == .forward ? findBytes(bytes, needle, from: lower, to: upper) : rfindBytes(bytes, needle, from: lower, to: upper)
    guard let found else { return -1 }
    return codePointIndex(bytes, found)
}

/// `str.count(sub, start, end)`.
func pyCount(_ s: String, _ sub: String, _ start: Int?, _ end: Int?) -> Int {
    let bytes = Array(s.utf8)
    guard let (lower, upper) = byteWindow(bytes, start, end), upper >= lower else { return 0 }
    let needle = Array(sub.utf8)
    if needle.isEmpty { return codePointIndex(bytes, upper) - codePointIndex(bytes, lower) + 1 }
    var count = 0
    var position = lower
    while let found = findBytes(bytes, needle, from: position, to: upper) {
        count += 1
        position = found + needle.count
    }
    return count
}

/// `str.replace(old, new, count)`.
func pyReplace(_ s: String, _ old: String, _ new: String, count: Int = -1) -> String {
    if count == 0 { return s }
    if old.isEmpty {
        var out = ""
        var remaining = count
        for c in s.unicodeScalars {
            if remaining != 0 { out += new; remaining -= 1 }
            out.unicodeScalars.append(c)
        }
        if remaining != 0 { out += new }
        return out
    }
    let bytes = Array(s.utf8)
    let needle = Array(old.utf8)
    guard var found = findBytes(bytes, needle) else { return s }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var position = 0
    var remaining = count
    let replacement = Array(new.utf8)
    while true {
        out.append(contentsOf: bytes[position..<found])
        out.append(contentsOf: replacement)
        position = found + needle.count
        remaining -= 1
        if remaining == 0 { break }
        guard let next = findBytes(bytes, needle, from: position) else { break }
        found = next
    }
    out.append(contentsOf: bytes[position...])
    return String(decoding: out, as: UTF8.self)
}

/// `str.split(sep, maxsplit)`; `sep == nil` splits on runs of whitespace.
func pySplit(_ s: String, _ sep: String?, maxsplit: Int = -1) throws(TemplateError) -> [String] {
    guard let sep else {
        var parts: [String] = []
        let scalars = Array(s.unicodeScalars)
        var i = 0
        var splits = 0
        while i < scalars.count {
            while i < scalars.count && isPySpace(scalars[i]) { i += 1 }
            if i == scalars.count { break }
            if maxsplit >= 0 && splits == maxsplit {
                parts.append(scalarString(scalars[i...]))
                return parts
            }
            let start = i
            while i < scalars.count && !isPySpace(scalars[i]) { i += 1 }
            parts.append(scalarString(scalars[start..<i]))
            splits += 1
        }
        return parts
    }
    if sep.isEmpty { throw TemplateError(.value, "empty separator") }
    let bytes = Array(s.utf8)
    let needle = Array(sep.utf8)
    var parts: [String] = []
    var position = 0
    var splits = 0
    while maxsplit < 0 || splits < maxsplit, let found = findBytes(bytes, needle, from: position) {
        parts.append(string(bytes[position..<found]))
        position = found + needle.count
        splits += 1
    }
    parts.append(string(bytes[position...]))
    return parts
}

/// `str.rsplit(sep, maxsplit)`.
func pyRSplit(_ s: String, _ sep: String?, maxsplit: Int = -1) throws(TemplateError) -> [String] {
    if maxsplit < 0 { return try pySplit(s, sep, maxsplit: maxsplit) }
    guard let sep else {
        var parts: [String] = []
        let scalars = Array(s.unicodeScalars)
        var i = scalars.count
        var splits = 0
        while i > 0 {
            while i > 0 && isPySpace(scalars[i - 1]) { i -= 1 }
            if i == 0 { break }
            if splits == maxsplit {
                parts.append(scalarString(scalars[0..<i]))
                break
            }
            let end = i
            while i > 0 && !isPySpace(scalars[i - 1]) { i -= 1 }
            parts.append(scalarString(scalars[i..<end]))
            splits += 1
        }
        return parts.reversed()
    }
    if sep.isEmpty { throw TemplateError(.value, "empty separator") }
    let bytes = Array(s.utf8)
    let needle = Array(sep.utf8)
    var parts: [String] = []
    var end = bytes.count
    var splits = 0
    while splits < maxsplit, let found = rfindBytes(bytes, needle, from: 0, to: end) {
        parts.append(string(bytes[(found + needle.count)..<end]))
        end = found
        splits += 1
    }
    parts.append(string(bytes[0..<end]))
    return parts.reversed()
}

func scalarString<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
    var out = ""
    out.unicodeScalars.append(contentsOf: scalars)
    return out
}

enum StripSide { case both, left, right }

/// `str.strip(chars)`; `chars == nil` strips whitespace.
func pyStrip(_ s: String, _ chars: String?, _ side: StripSide = .both) -> String {
    let scalars = s.unicodeScalars
    let set: Set<Unicode.Scalar>? = chars.map { Set($0.unicodeScalars) }
    func strips(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPySpace(c) }
    var start = scalars.startIndex
    var end = scalars.endIndex
    if side != .right { while start < end && strips(scalars[start]) { start = scalars.index(after: start) } }
    if side != .left {
        while end > start {
            let before = scalars.index(before: end)
            if !strips(scalars[before]) { break }
            end = before
        }
    }
    if start == scalars.startIndex && end == scalars.endIndex { return s }
    return String(scalars[start..<end])
}

/// `str.splitlines(keepends)`.
func pySplitlines(_ s: String, keepends: Bool = false) -> [String] {
    let scalars = Array(s.unicodeScalars)
    var lines: [String] = []
    var start = 0
    var i = 0
    while i < scalars.count {
        let c = scalars[i]
        if isPyLineBreak(c) {
            var next = i + 1
            if c == "\r" && next < scalars.count && scalars[next] == "\n" { next += 1 }
            lines.append(scalarString(scalars[start..<(keepends ? next : i)]))
            start = next
            i = next
        } else {
            i += 1
        }
    }
    if start < scalars.count { lines.append(scalarString(scalars[start...])) }
    return lines
}

/// The longest string padding may build; past it Python would run out of memory, the engine
/// raises the MemoryError itself.
let maximumPaddedLength = 1 << 27

@inline(__always) func requireBuildable(_ length: Int) throws(TemplateError) {
    if length > maximumPaddedLength { throw TemplateError(.memory, "") }
}

/// `str.center(width, fill)` with CPython's choice of where the odd space goes.
func pyCenter(_ s: String, _ width: Int, _ fill: Unicode.Scalar = " ") throws(TemplateError) -> String {
    let length = s.unicodeScalars.count
    guard width > length else { return s }
    try requireBuildable(width)
    let margin = width - length
    let left = margin / 2 + (margin & width & 1)
    return repeated(fill, left) + s + repeated(fill, margin - left)
}

func pyLJust(_ s: String, _ width: Int, _ fill: Unicode.Scalar = " ") throws(TemplateError) -> String {
    let length = s.unicodeScalars.count
    try requireBuildable(width)
    return width > length ? s + repeated(fill, width - length) : s
}

func pyRJust(_ s: String, _ width: Int, _ fill: Unicode.Scalar = " ") throws(TemplateError) -> String {
    let length = s.unicodeScalars.count
    try requireBuildable(width)
    return width > length ? repeated(fill, width - length) + s : s
}

func repeated(_ c: Unicode.Scalar, _ count: Int) -> String {
    guard count > 0 else { return "" }
    return String(repeating: String(c), count: count)
}

func pyZfill(_ s: String, _ width: Int) throws(TemplateError) -> String {
    let length = s.unicodeScalars.count
    guard width > length else { return s }
    try requireBuildable(width)
    let zeros = repeated("0", width - length)
    if let first = s.unicodeScalars.first, first == "+" || first == "-" {
        return String(first) + zeros + String(s.unicodeScalars.dropFirst())
    }
    return zeros + s
}

func pyExpandtabs(_ s: String, _ tabsize: Int) throws(TemplateError) -> String {
    if tabsize > Int(Int32.max) { throw TemplateError(.overflow, "Python int too large to convert to C int") }
    var out = ""
    var column = 0
    var length = 0
    for c in s.unicodeScalars {
        if c == "\t" {
            if tabsize > 0 {
                let spaces = tabsize - column % tabsize
                length += spaces
                try requireBuildable(length)
                out += repeated(" ", spaces)
                column += spaces
            }
        } else {
            out.unicodeScalars.append(c)
            length += 1
            column = (c == "\n" || c == "\r") ? 0 : column + 1
        }
    }
    return out
}

/// Python's `str.join(iterable)`: every item must be a str.
func pyJoin(_ separator: String, _ items: [Value]) throws(TemplateError) -> String {
    var out = ""
    for (i, item) in items.enumerated() {
        guard let text = item.stringValue else {
            throw TemplateError(.type, "sequence item \(i): expected str instance, \(item.typeName) found")
        }
        if i > 0 { out += separator }
        out += text
    }
    return out
}

// MARK: - str methods

/// The methods markupsafe's Markup defines in Python: (parameters, how many are required, how
/// many leading ones are positional-only). Wrong calls fail with Python-function messages.
private let markupSignatures: [String: (names: [String], required: Int, positionalOnly: Int)] = [
    "capitalize": ([], 0, 0), "title": ([], 0, 0), "lower": ([], 0, 0), "upper": ([], 0, 0),
    "swapcase": ([], 0, 0), "casefold": ([], 0, 0),
    "replace": (["old", "new", "count"], 2, 3),
    "ljust": (["width", "fillchar"], 1, 2), "rjust": (["width", "fillchar"], 1, 2), "center": (["width", "fillchar"], 1, 2),
    "lstrip": (["chars"], 0, 1), "rstrip": (["chars"], 0, 1), "strip": (["chars"], 0, 1),
    "expandtabs": (["tabsize"], 0, 0), "zfill": (["width"], 1, 1),
    "removeprefix": (["prefix"], 1, 1), "removesuffix": (["suffix"], 1, 0),
    "partition": (["sep"], 1, 1), "rpartition": (["sep"], 1, 1),
    "join": (["iterable"], 1, 1), "format_map": (["mapping"], 1, 1),
    "split": (["sep", "maxsplit"], 0, 0), "rsplit": (["sep", "maxsplit"], 0, 0), "splitlines": (["keepends"], 0, 0),
]

/// Binds a call of one of Markup's own methods as Python binds a function call, returning
/// the arguments as positional ones.
private func markupArguments(_ name: String, _ args: Arguments) throws(TemplateError) -> Arguments {
    guard let signature = markupSignatures[name] else { return args }
    let function = "Markup.\(name)()"
    var bound: [Value?] = Array(repeating: nil, count: signature.names.count)
    for (i, value) in args.positional.enumerated() where i < bound.count { bound[i] = value }
    for (key, value) in args.keywords {
        guard let position = signature.names.firstIndex(of: key) else {
            throw TemplateError(.type, "\(function) got an unexpected keyword argument '\(key)'")
        }
        if position < signature.positionalOnly {
            throw TemplateError(.type, "\(function) got some positional-only arguments passed as keyword arguments: '\(key)'")
        }
        if position < args.positional.count {
            throw TemplateError(.type, "\(function) got multiple values for argument '\(key)'")
        }
        bound[position] = value
    }
    if args.positional.count > signature.names.count {
        let most = signature.names.count + 1
        let least = signature.required + 1
        let takes = least == most ? "\(most) positional argument\(most == 1 ? "" : "s")" : "from \(least) to \(most) positional arguments"
        throw TemplateError(.type, "\(function) takes \(takes) but \(args.positional.count + 1) were given")
    }
    let missing = (0..<signature.required).filter { bound[$0] == nil }.map { "'\(signature.names[$0])'" }
    if !missing.isEmpty {
        let list = missing.count == 1 ? missing[0] : missing.dropLast().joined(separator: ", ") + " and " + (missing.last ?? "")
        throw TemplateError(.type, "\(function) missing \(missing.count) required positional argument\(missing.count == 1 ? "" : "s"): \(list)")
    }
    // Trailing defaults stay absent; the only possible gap is split's `sep` when just
    // `maxsplit` is named, and None is its default.
    let given = (bound.lastIndex { $0 != nil } ?? -1) + 1
    return Arguments(bound[0..<given].map { $0 ?? .none })
}

private func callStringMethod(_ s: String, markup: Bool, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    let method = name
    let args = markup ? try markupArguments(name, args) : args
    let owner = markup ? "Markup" : "str"
    /// Markup's string methods return Markup.
    func text(_ result: String) -> Value { markup ? .markup(result) : .string(result) }
    func list(_ parts: [String]) -> Value { .makeList(parts.map(text)) }
    switch name {
    case "lower": _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner); return text(pyLower(s))
    case "upper": _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner); return text(pyUpper(s))
    case "title": _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner); return text(pyTitle(s))
    case "capitalize": _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner); return text(pyCapitalize(s))
    case "swapcase": _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner); return text(pySwapcase(s))
    case "casefold": _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner); return text(pyCasefold(s))
    case "strip", "lstrip", "rstrip":
        let a = try positionalArguments(args, name, min: 0, max: 1, owner: owner)
        var chars: String? = nil
        if let first = a.first, !first.isNone {
            guard let c = first.stringValue else { throw TemplateError(.type, "\(name) arg must be None or str") }
            chars = c
        }
        return text(pyStrip(s, chars, name == "strip" ? .both : name == "lstrip" ? .left : .right))
    case "split", "rsplit":
        let a = try boundArguments(args, name, ["sep", "maxsplit"])
        let maxsplit = try a[1].map(intArgument) ?? -1
        var sep: String? = nil
        if let value = a[0], !value.isNone {
            guard let text = value.stringValue else { throw TemplateError(.type, "must be str or None, not \(value.typeName)") }
            sep = text
        }
        return list(name == "split" ? try pySplit(s, sep, maxsplit: maxsplit) : try pyRSplit(s, sep, maxsplit: maxsplit))
    case "splitlines":
        let a = try boundArguments(args, name, ["keepends"])
        let keepends = try a[0].map(intArgument) ?? 0
        return list(pySplitlines(s, keepends: keepends != 0))
    case "join":
        let a = try positionalArguments(args, method, min: 1, max: 1, owner: owner)
        let items: [Value]
        do { items = try a[0].iterate() } catch {
            // Markup.join maps escape over the argument first.
            throw markup ? error : TemplateError(.type, "can only join an iterable")
        }
        if markup {
            return .markup(try pyJoin(s, items.map { item in item.stringValue == nil ? item : .string(escapeForMarkup(item)) }))
        }
        return .string(try pyJoin(s, items))
    case "replace":
        let a = try positionalArguments(args, "replace", min: 2, max: 3, owner: owner)
        let old = try stringArgument(a[0], "replace", position: 1)
        // Markup escapes any replacement into a str first.
        let new = markup ? escapeForMarkup(a[1]) : try stringArgument(a[1], "replace", position: 2)
        let count = a.count > 2 ? try intArgument(a[2]) : -1
        return text(pyReplace(s, old, new, count: count))
    case "find", "rfind", "index", "rindex", "count":
        let a = try positionalArguments(args, name, min: 1, max: 3, owner: owner, legacy: true)
        // CPython reads the slice bounds before it looks at the substring.
        let start = try sliceBound(a.count > 1 ? a[1] : nil)
        let end = try sliceBound(a.count > 2 ? a[2] : nil)
        guard let sub = a[0].stringValue else {
            throw TemplateError(.type, "must be str, not \(a[0].typeName)")
        }
        if name == "count" { return .int(pyCount(s, sub, start, end)) }
        let found = pyFind(s, sub, start, end, name.hasPrefix("r") ? .backward : .forward)
        if found < 0 && name.hasSuffix("index") { throw TemplateError(.value, "substring not found") }
        return .int(found)
    case "startswith", "endswith":
        let a = try positionalArguments(args, name, min: 1, max: 3, owner: owner, legacy: true)
        let start = try sliceBound(a.count > 1 ? a[1] : nil)
        let end = try sliceBound(a.count > 2 ? a[2] : nil)
        var candidates: [String] = []
        switch a[0] {
        case .string(let p), .markup(let p): candidates = [p]
        case .tuple(let items):
            for item in items {
                guard let p = item.stringValue else {
                    throw TemplateError(.type, "tuple for \(name) must only contain str, not \(item.typeName)")
                }
                candidates.append(p)
            }
        default:
            throw TemplateError(.type, "\(name) first arg must be str or a tuple of str, not \(a[0].typeName)")
        }
        if start == nil && end == nil {
            // The common case, without copying the string.
            let utf8 = s.utf8
            for candidate in candidates {
                let needle = candidate.utf8
                if name == "startswith" {
                    if utf8.starts(with: needle) { return .bool(true) }
                } else if utf8.count >= needle.count && utf8.suffix(needle.count).elementsEqual(needle) {
                    return .bool(true)
                }
            }
            return .bool(false)
        }
        let bytes = Array(s.utf8)
        guard let (lower, upper) = byteWindow(bytes, start, end) else { return .bool(false) }
        for candidate in candidates {
            let needle = Array(candidate.utf8)
            if upper - lower < needle.count { continue }
            let from = name == "startswith" ? lower : upper - needle.count
            if bytes[from..<(from + needle.count)].elementsEqual(needle) { return .bool(true) }
        }
        return .bool(false)
    case "center", "ljust", "rjust":
        let a = try positionalArguments(args, name, min: 1, max: 2, owner: owner)
        let width = try sizeArgument(a[0])
        var fill: Unicode.Scalar = " "
        if a.count > 1 {
            // Markup escapes the fill character (so '<' becomes too long a fill).
            guard let f = markup ? escapeForMarkup(a[1]) : a[1].stringValue else {
                throw TemplateError(.type, "The fill character must be a unicode character, not \(a[1].typeName)")
            }
            guard f.unicodeScalars.count == 1, let only = f.unicodeScalars.first else {
                throw TemplateError(.type, "The fill character must be exactly one character long")
            }
            fill = only
        }
        switch name {
        case "center": return text(try pyCenter(s, width, fill))
        case "ljust": return text(try pyLJust(s, width, fill))
        default: return text(try pyRJust(s, width, fill))
        }
    case "zfill":
        let a = try positionalArguments(args, method, min: 1, max: 1, owner: owner)
        return text(try pyZfill(s, try sizeArgument(a[0])))
    case "expandtabs":
        let a = try boundArguments(args, name, ["tabsize"])
        return text(try pyExpandtabs(s, try a[0].map(sizeArgument) ?? 8))
    case "partition", "rpartition":
        let a = try positionalArguments(args, method, min: 1, max: 1, owner: owner)
        guard let sep = a[0].stringValue else { throw TemplateError(.type, "must be str, not \(a[0].typeName)") }
        if sep.isEmpty { throw TemplateError(.value, "empty separator") }
        let bytes = Array(s.utf8)
        let needle = Array(sep.utf8)
        let found = name == "partition" ? findBytes(bytes, needle) : rfindBytes(bytes, needle)
        guard let found else {
            return name == "partition" ? .tuple([text(s), text(""), text("")]) : .tuple([text(""), text(""), text(s)])
        }
        return .tuple([text(string(bytes[0..<found])), text(sep), text(string(bytes[(found + needle.count)...]))])
    case "removeprefix", "removesuffix":
        let a = try positionalArguments(args, method, min: 1, max: 1, owner: owner)
        let affix = try stringArgument(a[0], name, position: nil)
        if name == "removeprefix" {
            if !affix.isEmpty && s.utf8.starts(with: affix.utf8) { return text(string(Array(s.utf8)[affix.utf8.count...])) }
        } else if !affix.isEmpty && s.utf8.reversed().starts(with: affix.utf8.reversed()) {
            let bytes = Array(s.utf8)
            return text(string(bytes[0..<(bytes.count - affix.utf8.count)]))
        }
        return text(s)
    case "isdigit", "isalpha", "isalnum", "isspace", "isdecimal", "isnumeric", "isascii", "isprintable":
        _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner)
        let predicate: (Unicode.Scalar) -> Bool
        switch name {
        case "isdigit": predicate = isPyDigit
        case "isalpha": predicate = isPyAlpha
        case "isalnum": predicate = isPyAlnum
        case "isspace": predicate = isPySpace
        case "isdecimal": predicate = isPyDecimal
        case "isnumeric": predicate = isPyNumeric
        case "isascii": return .bool(s.unicodeScalars.allSatisfy { $0.isASCII })
        default: return .bool(s.unicodeScalars.allSatisfy(isPyPrintable))
        }
        return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(predicate))
    case "islower": _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner); return .bool(pyIsLower(s))
    case "isupper": _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner); return .bool(pyIsUpper(s))
    case "istitle":
        _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner)
        var cased = false
        var previousCased = false
        for c in s.unicodeScalars {
            if isPyUpper(c) || isPyTitle(c) {
                if previousCased { return .bool(false) }
                previousCased = true
                cased = true
            } else if isPyLower(c) {
                if !previousCased { return .bool(false) }
                previousCased = true
                cased = true
            } else {
                previousCased = false
            }
        }
        return .bool(cased)
    case "isidentifier":
        _ = try positionalArguments(args, method, min: 0, max: 0, owner: owner)
        guard let first = s.unicodeScalars.first, first == "_" || first.properties.isXIDStart else { return .bool(false) }
        return .bool(s.unicodeScalars.dropFirst().allSatisfy { $0.properties.isXIDContinue })
    case "format":
        if markup {
            return .markup(try pyStrFormat(s, args, escape: true))
        }
        return .string(try pyStrFormat(s, args))
    case "format_map":
        let a = try positionalArguments(args, method, min: 1, max: 1, owner: owner)
        return text(try pyStrFormat(s, Arguments(), mapping: a[0], escape: markup))
    default:
        return nil
    }
}

/// markupsafe's escape of a value joined into or formatted into Markup.
private func escapeForMarkup(_ value: Value) -> String {
    if case .markup(let s) = value { return s }
    return htmlEscape(value.pyStr)
}

func pyIsLower(_ s: String) -> Bool { pyIsAllCased(s, as: isPyLower, not: isPyUpper) }

func pyIsUpper(_ s: String) -> Bool { pyIsAllCased(s, as: isPyUpper, not: isPyLower) }

/// Python's str.islower()/isupper(): at least one cased character, and none of the other case
/// or titlecase.
private func pyIsAllCased(_ s: String, as wanted: (Unicode.Scalar) -> Bool, not other: (Unicode.Scalar) -> Bool) -> Bool {
    var cased = false
    for c in s.unicodeScalars {
        if other(c) || isPyTitle(c) { return false }
        if !cased && wanted(c) { cased = true }
    }
    return cased
}

// MARK: - str.format

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

// MARK: - list, dict and number methods

private func sequenceIndex(_ items: [Value], _ args: Arguments, owner: String, missing: String) throws(TemplateError) -> Value {
    let a = try positionalArguments(args, "index", min: 1, max: 3, owner: owner)
    let start = try sliceBound(a.count > 1 ? a[1] : nil, noneAllowed: false)
    let end = try sliceBound(a.count > 2 ? a[2] : nil, noneAllowed: false)
    let (lower, upper) = normalizedRange(start, end, count: items.count)
    if lower < upper {
        for i in lower..<upper where pyEquals(items[i], a[0]) { return .int(i) }
    }
    throw TemplateError(.value, missing)
}

private func sequenceCount(_ items: [Value], _ args: Arguments, owner: String) throws(TemplateError) -> Value {
    let a = try positionalArguments(args, "count", min: 1, max: 1, owner: owner)
    return .int(items.reduce(0) { $0 + (pyEquals($1, a[0]) ? 1 : 0) })
}

private func callListMethod(_ ref: ListRef, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    guard methodExists(.list(ref), name) else { return nil }
    if case .range = ref.kind {
        if name == "count" { return try sequenceCount(ref.items, args, owner: "range") }
        let a = try positionalArguments(args, "index", min: 1, max: 1, owner: "range")
        return try sequenceIndex(ref.items, args, owner: "range", missing: "\(repr(a[0])) is not in range")
    }
    switch name {
    case "index":
        let a = try positionalArguments(args, "index", min: 1, max: 3, owner: "list")
        return try sequenceIndex(ref.items, args, owner: "list", missing: "\(repr(a[0])) is not in list")
    case "count": return try sequenceCount(ref.items, args, owner: "list")
    case "append":
        let a = try positionalArguments(args, "append", min: 1, max: 1, owner: "list")
        ref.items.append(a[0])
        return Value.none
    case "extend":
        let a = try positionalArguments(args, "extend", min: 1, max: 1, owner: "list")
        ref.items.append(contentsOf: try a[0].iterate())
        return Value.none
    case "insert":
        let a = try positionalArguments(args, "insert", min: 2, max: 2, owner: "list")
        var position = try intArgument(a[0])
        if position < 0 { position = Swift.max(0, position + ref.items.count) }
        ref.items.insert(a[1], at: Swift.min(position, ref.items.count))
        return Value.none
    case "pop":
        let a = try positionalArguments(args, "pop", min: 0, max: 1, owner: "list")
        var position = a.isEmpty ? -1 : try intArgument(a[0])
        if ref.items.isEmpty { throw TemplateError(.index, "pop from empty list") }
        if position < 0 { position += ref.items.count }
        guard position >= 0 && position < ref.items.count else { throw TemplateError(.index, "pop index out of range") }
        return ref.items.remove(at: position)
    case "remove":
        let a = try positionalArguments(args, "remove", min: 1, max: 1, owner: "list")
        guard let position = ref.items.firstIndex(where: { pyEquals($0, a[0]) }) else {
            throw TemplateError(.value, "list.remove(x): x not in list")
        }
        ref.items.remove(at: position)
        return Value.none
    case "reverse":
        _ = try positionalArguments(args, "reverse", min: 0, max: 0, owner: "list")
        ref.items.reverse()
        return Value.none
    case "sort":
        let given = args.positional.count + args.keywords.count
        if given > 2 {
            let kind = args.positional.isEmpty ? "keyword arguments" : "arguments"
            throw TemplateError(.type, "sort() takes at most 2 \(kind) (\(given) given)")
        }
        if !args.positional.isEmpty { throw TemplateError(.type, "sort() takes no positional arguments") }
        var reverse = false
        for (key, value) in args.keywords {
            switch key {
            case "reverse": reverse = value.isTruthy
            case "key": if !value.isNone { throw TemplateError(.type, "a sort key function is not supported in templates") }
            default: throw TemplateError(.type, "'\(key)' is an invalid keyword argument for sort()")
            }
        }
        ref.items = try pySorted(ref.items, reverse: reverse) { $0 }
        return Value.none
    case "clear":
        _ = try positionalArguments(args, "clear", min: 0, max: 0, owner: "list")
        ref.items.removeAll()
        return Value.none
    case "copy":
        _ = try positionalArguments(args, "copy", min: 0, max: 0, owner: "list")
        return .makeList(ref.items)
    default:
        return nil
    }
}

private func callDictMethod(_ ref: DictRef, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    switch name {
    case "items", "iteritems":
        _ = try positionalArguments(args, "\(name)", min: 0, max: 0, owner: "dict")
        var pairs: [Value] = []
        pairs.reserveCapacity(ref.count)
        for i in 0..<ref.count { pairs.append(.tuple([ref.keys[i], ref.values[i]])) }
        return .list(ListRef(pairs, kind: .dictItems))
    case "keys", "iterkeys":
        _ = try positionalArguments(args, "\(name)", min: 0, max: 0, owner: "dict")
        return .list(ListRef(ref.keys, kind: .dictKeys))
    case "values", "itervalues":
        _ = try positionalArguments(args, "\(name)", min: 0, max: 0, owner: "dict")
        return .list(ListRef(ref.values, kind: .dictValues))
    case "get":
        let a = try positionalArguments(args, "get", min: 1, max: 2, owner: "dict")
        try requireHashable(a[0])
        return ref[a[0]] ?? (a.count > 1 ? a[1] : Value.none)
    case "has_key":
        let a = try positionalArguments(args, "has_key", min: 1, max: 1, owner: "dict")
        try requireHashable(a[0])
        return .bool(ref[a[0]] != nil)
    case "pop":
        let a = try positionalArguments(args, "pop", min: 1, max: 2, owner: "dict")
        try requireHashable(a[0])
        if let position = ref.position(of: a[0]) {
            let value = ref.values[position]
            ref.remove(at: position)
            return value
        }
        if a.count > 1 { return a[1] }
        throw TemplateError(.key, repr(a[0]))
    case "popitem":
        _ = try positionalArguments(args, "popitem", min: 0, max: 0, owner: "dict")
        guard ref.count > 0 else { throw TemplateError(.key, "'popitem(): dictionary is empty'") }
        let pair = Value.tuple([ref.keys[ref.count - 1], ref.values[ref.count - 1]])
        ref.remove(at: ref.count - 1)
        return pair
    case "setdefault":
        let a = try positionalArguments(args, "setdefault", min: 1, max: 2, owner: "dict")
        try requireHashable(a[0])
        if let existing = ref[a[0]] { return existing }
        let value = a.count > 1 ? a[1] : Value.none
        ref[a[0]] = value
        return value
    case "update":
        if args.positional.count > 1 { throw TemplateError(.type, "update expected at most 1 argument, got \(args.positional.count)") }
        if let source = args.positional.first {
            switch source {
            case .dict(let other):
                for i in 0..<other.count { ref[other.keys[i]] = other.values[i] }
            default:
                for (i, item) in try source.iterate().enumerated() {
                    let pair: [Value]
                    do { pair = try item.iterate() } catch {
                        throw TemplateError(.type, "cannot convert dictionary update sequence element #\(i) to a sequence")
                    }
                    guard pair.count == 2 else {
                        throw TemplateError(.value, "dictionary update sequence element #\(i) has length \(pair.count); 2 is required")
                    }
                    try requireHashable(pair[0])
                    ref[pair[0]] = pair[1]
                }
            }
        }
        for (key, value) in args.keywords { ref[string: key] = value }
        return Value.none
    case "copy":
        _ = try positionalArguments(args, "copy", min: 0, max: 0, owner: "dict")
        return .dict(ref.copy())
    case "clear":
        _ = try positionalArguments(args, "clear", min: 0, max: 0, owner: "dict")
        ref.removeAll()
        return Value.none
    default:
        return nil
    }
}

private func callNumberMethod(_ value: Value, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    switch (value, name) {
    case (_, "conjugate"):
        _ = try positionalArguments(args, "conjugate", min: 0, max: 0, owner: value.typeName)
        if case .bool(let b) = value { return .int(b ? 1 : 0) }
        return value
    case (.float(let d), "is_integer"):
        _ = try positionalArguments(args, "is_integer", min: 0, max: 0, owner: "float")
        return .bool(d.isFinite && d.rounded(.towardZero) == d)
    case (.float(let d), "as_integer_ratio"):
        _ = try positionalArguments(args, "as_integer_ratio", min: 0, max: 0, owner: "float")
        if d.isNaN { throw TemplateError(.value, "cannot convert NaN to integer ratio") }
        if d.isInfinite { throw TemplateError(.overflow, "cannot convert Infinity to integer ratio") }
        var numerator = d
        var denominator = 1.0
        while numerator.rounded(.towardZero) != numerator && denominator < 1e300 {
            numerator *= 2
            denominator *= 2
        }
        return .tuple([floatToInteger(numerator), floatToInteger(denominator)])
    case (.float(let d), "hex"):
        _ = try positionalArguments(args, "hex", min: 0, max: 0, owner: "float")
        return .string(cFormat("%a", d))
    case (_, "as_integer_ratio"):
        _ = try positionalArguments(args, "as_integer_ratio", min: 0, max: 0, owner: value.typeName)
        if case .bool(let b) = value { return .tuple([.int(b ? 1 : 0), .int(1)]) }
        return .tuple([value, .int(1)])
    case (_, "bit_length"):
        _ = try positionalArguments(args, "bit_length", min: 0, max: 0, owner: value.typeName)
        switch value {
        case .bigInt(let b):
            guard let top = b.limbs.last else { return .int(0) }
            return .int((b.limbs.count - 1) * 32 + (32 - top.leadingZeroBitCount))
        default:
            let magnitude = (value.intValue ?? 0).magnitude
            return .int(magnitude.bitWidth - magnitude.leadingZeroBitCount)
        }
    default:
        return nil
    }
}
