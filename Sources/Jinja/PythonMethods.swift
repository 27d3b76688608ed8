// The Python methods templates call on values: `name.startswith('x')`, `d.items()`, ….
//
// The evaluator resolves `x.name` through `methodExists` (a Python attribute wins over a dict
// key, as in Jinja2's getattr-then-getitem), and `x.name(args)` through `callMethod`. The
// methods themselves are in StringMethods, ContainerMethods and NumberMethods; the argument
// checks they share, in CPython's words, are here.

/// Whether `receiver` has a Python method `name` (so `receiver.name` is that method).
public func methodExists(_ receiver: Value, _ name: String) -> Bool {
    switch receiver {
    case .string, .markup: return stringMethods[name] != nil
    case .dict: return dictMethods[name] != nil
    case .list(let ref):
        switch ref.kind {
        case .list: return listMethods[name] != nil
        case .range: return name == "index" || name == "count"
        case .dictKeys, .dictValues, .dictItems, .iterator: return false
        }
    case .tuple: return name == "index" || name == "count"
    case .int, .bigInt, .bool: return name == "bit_length" || name == "conjugate" || name == "as_integer_ratio"
    case .float: return name == "is_integer" || name == "conjugate" || name == "as_integer_ratio" || name == "hex"
    default: return false
    }
}

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
        case "index": return try sequenceIndex(items, args, owner: "tuple") { _ in "tuple.index(x): x not in tuple" }
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
func positionalArguments(_ args: Arguments, _ method: String, min: Int, max: Int, owner: String = "str", legacy: Bool = false) throws(TemplateError) -> [Value] {
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
func boundArguments(_ args: Arguments, _ method: String, _ names: [String]) throws(TemplateError) -> [Value?] {
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

func stringArgument(_ value: Value, _ method: String, position: Int? = 1) throws(TemplateError) -> String {
    if let s = value.stringValue { return s }
    let argument = position.map { "argument \($0)" } ?? "argument"
    throw TemplateError(.type, "\(method)() \(argument) must be str, not \(value.isNone ? "None" : value.typeName)")
}

/// A length or width: Python refuses ints past a C `Py_ssize_t`.
func sizeArgument(_ value: Value) throws(TemplateError) -> Int {
    if case .bigInt = value { throw TemplateError(.overflow, "Python int too large to convert to C ssize_t") }
    return try intArgument(value)
}

func intArgument(_ value: Value) throws(TemplateError) -> Int {
    if let i = value.intValue { return i }
    if case .bigInt(let b) = value { return b.negative ? Int.min : Int.max }
    throw TemplateError(.type, "'\(value.typeName)' object cannot be interpreted as an integer")
}

/// Optional slice bound (`None` means absent), as `str.find(sub, start, end)` takes it;
/// `list.index` takes no None.
func sliceBound(_ value: Value?, noneAllowed: Bool = true) throws(TemplateError) -> Int? {
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

