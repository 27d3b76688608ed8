// Jinja2's builtin filters, keyed by their template name.
//
// Calling convention (filters and tests alike):
//   - A filter is `(FilterCall) throws(TemplateError) -> Value`, a test the same returning Bool.
//   - `call.value` is the value left of `|` (or of `is`); `call.args` holds the positional and
//     keyword arguments written in the template (`x|join(", ", attribute="a")`); bind them the
//     way Python binds a signature with `call.args.argument(position, "name")`, and raise
//     TypeError for extra or unknown ones with `call.checkArguments(...)`.
//   - `call.autoescape` says whether autoescaping is on where the filter is used (filters that
//     build markup, like `join` or `escape`, return `.markup` accordingly).
//   - Other filters and tests by name: `call.filter("lower", value)`, `call.test("odd", value)`
//     (`map`, `select`, `reject`, `selectattr` …).
//   - Attribute/item lookup with Jinja2's fallback: `getAttribute(value, "name")` and
//     `getItem(value, key)` (Value.swift); dotted paths like "a.b.0": `call.attributePath`.
//   - Errors: throw `TemplateError(.type, "message")` (or `.filterArgument`, `.value`, …) with
//     Jinja2's exact text; the evaluator adds the template line.
//   - Unknown names are rejected at compile time ("No filter named 'x'."), so every name the
//     parser should accept must be a key in `filters`/`tests`.
//   - Python's str()/repr(): `value.pyStr`, `repr(value)`; `%`-formatting: `percentFormat`;
//     HTML escaping: `htmlEscape(_:)` (Format.swift).

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

    /// Jinja2's `make_attrgetter`: "a.b.0" looks up `a`, then `b`, then item 0.
    public func attributePath(_ value: Value, _ path: Value) -> Value {
        guard case .string(let text) = path else { return getItem(value, path) }
        var current = value
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            if let index = Int(part) { current = getItem(current, .int(index)) } else { current = getItem(current, .string(String(part))) }
        }
        return current
    }

    /// TypeError for arguments beyond `names` (Python: "got an unexpected keyword argument").
    public func checkArguments(_ filterName: String, _ names: [String]) throws(TemplateError) {
        if args.positional.count > names.count {
            throw TemplateError(.type, "\(filterName)() takes \(names.count + 1) positional arguments but \(args.positional.count + 1) were given")
        }
        for (key, _) in args.keywords where !names.contains(key) {
            throw TemplateError(.type, "\(filterName)() got an unexpected keyword argument '\(key)'")
        }
    }
}

/// Every builtin filter; fill in from Jinja2's filters.py (`FILTERS`).
public let filters: [String: Filter] = [
    "upper": { call throws(TemplateError) in
        try markupPreserving(call.value) { $0.uppercased() }
    },
    "lower": { call throws(TemplateError) in
        try markupPreserving(call.value) { $0.lowercased() }
    },
]

/// Applies `transform` to the string form of `value`, keeping Markup as Markup.
func markupPreserving(_ value: Value, _ transform: (String) -> String) throws(TemplateError) -> Value {
    if case .markup(let s) = value { return .markup(transform(s)) }
    return .string(transform(value.pyStr))
}
