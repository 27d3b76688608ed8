// Jinja2's builtin tests (`x is defined`), keyed by their template name; see Filters.swift for
// the calling convention.

/// Every builtin test of Jinja2 3.1 (`TESTS` in tests.py).
public let tests: [String: Test] = [
    "odd": testOdd,
    "even": testEven,
    "divisibleby": testDivisibleby,
    "defined": testDefined,
    "undefined": testUndefined,
    "filter": testFilter,
    "test": testTest,
    "none": testNone,
    "boolean": testBoolean,
    "false": testFalse,
    "true": testTrue,
    "integer": testInteger,
    "float": testFloat,
    "lower": testLower,
    "upper": testUpper,
    "string": testString,
    "mapping": testMapping,
    "number": testNumber,
    "sequence": testSequence,
    "iterable": testIterable,
    "callable": testCallable,
    "sameas": testSameas,
    "escaped": testEscaped,
    "in": testIn,
    "==": testEq, "eq": testEq, "equalto": testEq,
    "!=": testNe, "ne": testNe,
    ">": testGt, "gt": testGt, "greaterthan": testGt,
    ">=": testGe, "ge": testGe,
    "<": testLt, "lt": testLt, "lessthan": testLt,
    "<=": testLe, "le": testLe,
]

/// The test's single argument beyond the value, as Python binds `test_x(value, name)`.
private func onlyArgument(_ call: FilterCall, _ function: String, _ name: String) throws(TemplateError) -> Value {
    let a = try call.bind(function, [name], required: 1)
    return a[0] ?? .none
}

/// `operator.eq` and friends take exactly two arguments.
private func operatorArgument(_ call: FilterCall, _ function: String) throws(TemplateError) -> Value {
    if !call.args.keywords.isEmpty { throw TemplateError(.type, "\(function)() takes no keyword arguments") }
    guard call.args.positional.count == 1 else {
        throw TemplateError(.type, "\(function) expected 2 arguments, got \(call.args.positional.count + 1)")
    }
    return call.args.positional[0]
}

private func noArguments(_ call: FilterCall, _ function: String) throws(TemplateError) {
    _ = try call.bind(function, [])
}

@Sendable func testOdd(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_odd")
    return pyEquals(try pyMod(call.value, .int(2)), .int(1))
}

@Sendable func testEven(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_even")
    return pyEquals(try pyMod(call.value, .int(2)), .int(0))
}

@Sendable func testDivisibleby(_ call: FilterCall) throws(TemplateError) -> Bool {
    let divisor = try onlyArgument(call, "test_divisibleby", "num")
    return pyEquals(try pyMod(call.value, divisor), .int(0))
}

@Sendable func testDefined(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_defined")
    return !call.value.isUndefined
}

@Sendable func testUndefined(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_undefined")
    return call.value.isUndefined
}

@Sendable func testFilter(_ call: FilterCall) throws(TemplateError) -> Bool {
    _ = try call.bind("test_filter", [], implicit: 2)
    try requireHashable(call.value)
    guard let name = call.value.stringValue else { return false }
    return filters[name] != nil
}

@Sendable func testTest(_ call: FilterCall) throws(TemplateError) -> Bool {
    _ = try call.bind("test_test", [], implicit: 2)
    try requireHashable(call.value)
    guard let name = call.value.stringValue else { return false }
    return tests[name] != nil
}

@Sendable func testNone(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_none")
    return call.value.isNone
}

@Sendable func testBoolean(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_boolean")
    if case .bool = call.value { return true }
    return false
}

@Sendable func testFalse(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_false")
    if case .bool(false) = call.value { return true }
    return false
}

@Sendable func testTrue(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_true")
    if case .bool(true) = call.value { return true }
    return false
}

@Sendable func testInteger(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_integer")
    switch call.value {
    case .int, .bigInt: return true
    default: return false
    }
}

@Sendable func testFloat(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_float")
    if case .float = call.value { return true }
    return false
}

@Sendable func testLower(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_lower")
    return pyIsLower(call.value.pyStr)
}

@Sendable func testUpper(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_upper")
    return pyIsUpper(call.value.pyStr)
}

@Sendable func testString(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_string")
    return call.value.isString
}

@Sendable func testMapping(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_mapping")
    if case .dict = call.value { return true }
    return false
}

@Sendable func testNumber(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_number")
    return call.value.isNumber
}

/// Python: `len(value)` and `value.__getitem__` both exist (Undefined has both).
@Sendable func testSequence(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_sequence")
    switch call.value {
    case .string, .markup, .tuple, .dict, .undefined: return true
    // Ranges index; dict views have a length but no __getitem__.
    case .list(let ref):
        switch ref.kind {
        case .list, .range: return true
        case .dictKeys, .dictValues, .dictItems, .iterator: return false
        }
    default: return false
    }
}

/// Python: `iter(value)` works.
@Sendable func testIterable(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_iterable")
    switch call.value {
    case .string, .markup, .list, .tuple, .dict, .undefined, .loop: return true
    default: return false
    }
}

@Sendable func testCallable(_ call: FilterCall) throws(TemplateError) -> Bool {
    if !call.args.isEmpty { throw TemplateError(.type, "callable() takes exactly one argument (\(call.args.positional.count + 1) given)") }
    switch call.value {
    case .function, .undefined, .loop, .joiner: return true
    default: return false
    }
}

/// Python's `is`: the singletons, small cached ints, and the same list/dict object.
@Sendable func testSameas(_ call: FilterCall) throws(TemplateError) -> Bool {
    let other = try onlyArgument(call, "test_sameas", "other")
    switch (call.value, other) {
    case (.none, .none): return true
    case (.bool(let a), .bool(let b)): return a == b
    case (.int(let a), .int(let b)): return a == b && a >= -5 && a <= 256
    case (.list(let a), .list(let b)): return a === b
    case (.dict(let a), .dict(let b)): return a === b
    case (.function(let a), .function(let b)): return a === b
    case (.namespace(let a), .namespace(let b)): return a === b
    case (.cycler(let a), .cycler(let b)): return a === b
    case (.joiner(let a), .joiner(let b)): return a === b
    case (.templateReference(let a), .templateReference(let b)): return a === b
    case (.loop(let a), .loop(let b)): return a === b
    // Equal string constants are usually the same (interned) object in CPython.
    case (.string(let a), .string(let b)): return a == b
    default: return false
    }
}

@Sendable func testEscaped(_ call: FilterCall) throws(TemplateError) -> Bool {
    try noArguments(call, "test_escaped")
    if case .markup = call.value { return true }
    return false
}

@Sendable func testIn(_ call: FilterCall) throws(TemplateError) -> Bool {
    let container = try onlyArgument(call, "test_in", "seq")
    return try pyContains(container, call.value)
}

@Sendable func testEq(_ call: FilterCall) throws(TemplateError) -> Bool {
    pyEquals(call.value, try operatorArgument(call, "eq"))
}

@Sendable func testNe(_ call: FilterCall) throws(TemplateError) -> Bool {
    !pyEquals(call.value, try operatorArgument(call, "ne"))
}

@Sendable func testLt(_ call: FilterCall) throws(TemplateError) -> Bool {
    try pyCompare(call.value, try operatorArgument(call, "lt"), "<") == -1
}

@Sendable func testLe(_ call: FilterCall) throws(TemplateError) -> Bool {
    let order = try pyCompare(call.value, try operatorArgument(call, "le"), "<=")
    return order == -1 || order == 0
}

@Sendable func testGt(_ call: FilterCall) throws(TemplateError) -> Bool {
    try pyCompare(call.value, try operatorArgument(call, "gt"), ">") == 1
}

@Sendable func testGe(_ call: FilterCall) throws(TemplateError) -> Bool {
    let order = try pyCompare(call.value, try operatorArgument(call, "ge"), ">=")
    return order == 1 || order == 0
}
