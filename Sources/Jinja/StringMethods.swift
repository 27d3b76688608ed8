// The str (and markupsafe Markup) methods templates call: `name.startswith('x')`, `s.split()` …

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

/// A call of a str (or Markup) method: what the method bodies read.
struct StringMethodCall {
    let s: String
    let markup: Bool
    let name: String
    let args: Arguments
    var owner: String { markup ? "Markup" : "str" }
    /// Markup's string methods return Markup.
    func text(_ result: String) -> Value { markup ? .markup(result) : .string(result) }
    func list(_ parts: [String]) -> Value { .makeList(parts.map(text)) }
}

typealias StringMethod = @Sendable (StringMethodCall) throws(TemplateError) -> Value

/// str's methods by their Python name, as filters are; names that share a body (strip,
/// lstrip, rstrip) give it their variant here.
let stringMethods: [String: StringMethod] = [
    "lower": caseMethod(pyLower),
    "upper": caseMethod(pyUpper),
    "title": caseMethod(pyTitle),
    "capitalize": caseMethod(pyCapitalize),
    "swapcase": caseMethod(pySwapcase),
    "casefold": caseMethod(pyCasefold),
    "strip": { call throws(TemplateError) in try call.strip(.both) },
    "lstrip": { call throws(TemplateError) in try call.strip(.left) },
    "rstrip": { call throws(TemplateError) in try call.strip(.right) },
    "split": { call throws(TemplateError) in try call.split(pySplit) },
    "rsplit": { call throws(TemplateError) in try call.split(pyRSplit) },
    "splitlines": { call throws(TemplateError) in try call.splitlines() },
    "join": { call throws(TemplateError) in try call.join() },
    "replace": { call throws(TemplateError) in try call.replace() },
    "find": { call throws(TemplateError) in try call.find(.forward, raising: false) },
    "rfind": { call throws(TemplateError) in try call.find(.backward, raising: false) },
    "index": { call throws(TemplateError) in try call.find(.forward, raising: true) },
    "rindex": { call throws(TemplateError) in try call.find(.backward, raising: true) },
    "count": { call throws(TemplateError) in try call.count() },
    "startswith": { call throws(TemplateError) in try call.hasAffix(.prefix) },
    "endswith": { call throws(TemplateError) in try call.hasAffix(.suffix) },
    "center": { call throws(TemplateError) in try call.pad(pyCenter) },
    "ljust": { call throws(TemplateError) in try call.pad(pyLJust) },
    "rjust": { call throws(TemplateError) in try call.pad(pyRJust) },
    "zfill": { call throws(TemplateError) in try call.zfill() },
    "expandtabs": { call throws(TemplateError) in try call.expandtabs() },
    "partition": { call throws(TemplateError) in try call.partition(.forward) },
    "rpartition": { call throws(TemplateError) in try call.partition(.backward) },
    "removeprefix": { call throws(TemplateError) in try call.removeAffix(.prefix) },
    "removesuffix": { call throws(TemplateError) in try call.removeAffix(.suffix) },
    "isdigit": characterClassMethod(isPyDigit),
    "isalpha": characterClassMethod(isPyAlpha),
    "isalnum": characterClassMethod(isPyAlnum),
    "isspace": characterClassMethod(isPySpace),
    "isdecimal": characterClassMethod(isPyDecimal),
    "isnumeric": characterClassMethod(isPyNumeric),
    "isascii": predicateMethod(isASCII),
    "isprintable": predicateMethod { s in s.unicodeScalars.allSatisfy(isPyPrintable) },
    "islower": predicateMethod(pyIsLower),
    "isupper": predicateMethod(pyIsUpper),
    "istitle": predicateMethod(pyIsTitle),
    "isidentifier": predicateMethod(pyIsIdentifier),
    "format": { call throws(TemplateError) in try call.format() },
    "format_map": { call throws(TemplateError) in try call.formatMap() },
]

/// lower, upper, title, capitalize, swapcase and casefold: no arguments, the text changed.
private func caseMethod(_ change: @escaping @Sendable (String) -> String) -> StringMethod {
    { call throws(TemplateError) in
        try call.takeNoArguments()
        return call.text(change(call.s))
    }
}

/// The is… methods: no arguments, a bool about the text.
private func predicateMethod(_ test: @escaping @Sendable (String) -> Bool) -> StringMethod {
    { call throws(TemplateError) in
        try call.takeNoArguments()
        return .bool(test(call.s))
    }
}

/// isdigit, isalpha, isalnum, isspace, isdecimal and isnumeric: some text, all of the class.
private func characterClassMethod(_ isMember: @escaping @Sendable (Unicode.Scalar) -> Bool) -> StringMethod {
    predicateMethod { s in !s.isEmpty && s.unicodeScalars.allSatisfy(isMember) }
}

func callStringMethod(_ s: String, markup: Bool, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    guard let method = stringMethods[name] else { return nil }
    return try callStringMethod(method, s, markup: markup, name, args)
}

/// `s.name(args)` with the method already found.
func callStringMethod(_ method: StringMethod, _ s: String, markup: Bool, _ name: String, _ args: Arguments) throws(TemplateError) -> Value {
    let args = markup ? try markupArguments(name, args) : args
    return try method(StringMethodCall(s: s, markup: markup, name: name, args: args))
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

/// Python's str.istitle(): some cased character, uppercase (or titlecase) ones only after
/// uncased ones, lowercase ones only after cased ones.
func pyIsTitle(_ s: String) -> Bool {
    var cased = false
    var previousCased = false
    for c in s.unicodeScalars {
        if isPyUpper(c) || isPyTitle(c) {
            if previousCased { return false }
            previousCased = true
            cased = true
        } else if isPyLower(c) {
            if !previousCased { return false }
            previousCased = true
            cased = true
        } else {
            previousCased = false
        }
    }
    return cased
}

/// Python's str.isidentifier(): a letter or underscore, then letters, digits and underscores
/// (Unicode's XID classes).
func pyIsIdentifier(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first, first == "_" || first.properties.isXIDStart else { return false }
    return s.unicodeScalars.dropFirst().allSatisfy { $0.properties.isXIDContinue }
}

/// Which end of a str startswith/endswith and removeprefix/removesuffix look at.
enum Affix {
    case prefix, suffix

    /// The end `startswith` and `endswith` look at, by the method's name.
    init?(method name: String) {
        switch name {
        case "startswith": self = .prefix
        case "endswith": self = .suffix
        default: return nil
        }
    }

    /// Whether `text` starts (or ends) with `affix`. Comparing UTF-8 bytes is comparing code
    /// points: a whole string's bytes match at a code point boundary or not at all.
    func matches(_ text: String, _ affix: String) -> Bool {
        let utf8 = text.utf8
        let needle = affix.utf8
        if self == .prefix { return utf8.starts(with: needle) }
        return utf8.count >= needle.count && utf8.suffix(needle.count).elementsEqual(needle)
    }
}

extension StringMethodCall {
    func takeNoArguments() throws(TemplateError) {
        _ = try positionalArguments(args, name, min: 0, max: 0, owner: owner)
    }

    /// strip, lstrip and rstrip
    func strip(_ side: StripSide) throws(TemplateError) -> Value {
        let a = try positionalArguments(args, name, min: 0, max: 1, owner: owner)
        var chars: String? = nil
        if let first = a.first, !first.isNone {
            guard let c = first.stringValue else { throw TemplateError(.type, "\(name) arg must be None or str") }
            chars = c
        }
        return text(pyStrip(s, chars, side))
    }

    /// split and rsplit
    func split(_ splitter: (String, String?, Int) throws(TemplateError) -> [String]) throws(TemplateError) -> Value {
        let a = try boundArguments(args, name, ["sep", "maxsplit"])
        let maxsplit = try a[1].map(intArgument) ?? -1
        var sep: String? = nil
        if let value = a[0], !value.isNone {
            guard let text = value.stringValue else { throw TemplateError(.type, "must be str or None, not \(value.typeName)") }
            sep = text
        }
        return list(try splitter(s, sep, maxsplit))
    }

    func splitlines() throws(TemplateError) -> Value {
        let a = try boundArguments(args, name, ["keepends"])
        let keepends = try a[0].map(intArgument) ?? 0
        return list(pySplitlines(s, keepends: keepends != 0))
    }

    func join() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, name, min: 1, max: 1, owner: owner)
        let items: [Value]
        do { items = try a[0].iterate() } catch {
            // Markup.join maps escape over the argument first.
            throw markup ? error : TemplateError(.type, "can only join an iterable")
        }
        if markup {
            return .markup(try pyJoin(s, items.map { item in item.stringValue == nil ? item : .string(escapeForMarkup(item)) }))
        }
        return .string(try pyJoin(s, items))
    }

    func replace() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "replace", min: 2, max: 3, owner: owner)
        let old = try stringArgument(a[0], "replace", position: 1)
        // Markup escapes any replacement into a str first.
        let new = markup ? escapeForMarkup(a[1]) : try stringArgument(a[1], "replace", position: 2)
        let count = a.count > 2 ? try intArgument(a[2]) : -1
        return text(pyReplace(s, old, new, count: count))
    }

    /// find and rfind; index and rindex, `raising` ValueError when the substring is absent
    func find(_ direction: FindDirection, raising: Bool) throws(TemplateError) -> Value {
        let (sub, start, end) = try substringArguments()
        let found = pyFind(s, sub, start, end, direction)
        if found < 0 && raising { throw TemplateError(.value, "substring not found") }
        return .int(found)
    }

    func count() throws(TemplateError) -> Value {
        let (sub, start, end) = try substringArguments()
        return .int(pyCount(s, sub, start, end))
    }

    /// `(sub[, start[, end]])` of find, index and count.
    private func substringArguments() throws(TemplateError) -> (sub: String, start: Int?, end: Int?) {
        let a = try positionalArguments(args, name, min: 1, max: 3, owner: owner, legacy: true)
        // CPython reads the slice bounds before it looks at the substring.
        let start = try sliceBound(a.count > 1 ? a[1] : nil)
        let end = try sliceBound(a.count > 2 ? a[2] : nil)
        guard let sub = a[0].stringValue else {
            throw TemplateError(.type, "must be str, not \(a[0].typeName)")
        }
        return (sub, start, end)
    }

    /// startswith and endswith
    func hasAffix(_ affix: Affix) throws(TemplateError) -> Value {
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
            return .bool(candidates.contains { affix.matches(s, $0) })
        }
        let bytes = Array(s.utf8)
        guard let (lower, upper) = byteWindow(bytes, start, end) else { return .bool(false) }
        for candidate in candidates {
            let needle = Array(candidate.utf8)
            if upper - lower < needle.count { continue }
            let from = affix == .prefix ? lower : upper - needle.count
            if bytes[from..<(from + needle.count)].elementsEqual(needle) { return .bool(true) }
        }
        return .bool(false)
    }

    /// center, ljust and rjust
    func pad(_ padder: (String, Int, Unicode.Scalar) throws(TemplateError) -> String) throws(TemplateError) -> Value {
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
        return text(try padder(s, width, fill))
    }

    func zfill() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, name, min: 1, max: 1, owner: owner)
        return text(try pyZfill(s, try sizeArgument(a[0])))
    }

    func expandtabs() throws(TemplateError) -> Value {
        let a = try boundArguments(args, name, ["tabsize"])
        return text(try pyExpandtabs(s, try a[0].map(sizeArgument) ?? 8))
    }

    /// partition and rpartition
    func partition(_ direction: FindDirection) throws(TemplateError) -> Value {
        let a = try positionalArguments(args, name, min: 1, max: 1, owner: owner)
        guard let sep = a[0].stringValue else { throw TemplateError(.type, "must be str, not \(a[0].typeName)") }
        if sep.isEmpty { throw TemplateError(.value, "empty separator") }
        let bytes = Array(s.utf8)
        let needle = Array(sep.utf8)
        let found = direction == .forward ? findBytes(bytes, needle) : rfindBytes(bytes, needle)
        guard let found else {
            return direction == .forward ? .tuple([text(s), text(""), text("")]) : .tuple([text(""), text(""), text(s)])
        }
        return .tuple([text(string(bytes[0..<found])), text(sep), text(string(bytes[(found + needle.count)...]))])
    }

    /// removeprefix and removesuffix
    func removeAffix(_ side: Affix) throws(TemplateError) -> Value {
        let a = try positionalArguments(args, name, min: 1, max: 1, owner: owner)
        let affix = try stringArgument(a[0], name, position: nil)
        if side == .prefix {
            if !affix.isEmpty && s.utf8.starts(with: affix.utf8) { return text(string(Array(s.utf8)[affix.utf8.count...])) }
        } else if !affix.isEmpty && s.utf8.reversed().starts(with: affix.utf8.reversed()) {
            let bytes = Array(s.utf8)
            return text(string(bytes[0..<(bytes.count - affix.utf8.count)]))
        }
        return text(s)
    }

    func format() throws(TemplateError) -> Value {
        if markup {
            return .markup(try pyStrFormat(s, args, escape: true))
        }
        return .string(try pyStrFormat(s, args))
    }

    func formatMap() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, name, min: 1, max: 1, owner: owner)
        return text(try pyStrFormat(s, Arguments(), mapping: a[0], escape: markup))
    }
}
