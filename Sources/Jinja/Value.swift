// The Python-like value model templates compute with.
//
// Lists and dicts are reference types, as in Python: `x.append(1)` or `d.update(...)` inside a
// template mutates the one object every name bound to it sees. Everything else is a value.

import JSON
#if canImport(Glibc)
import Glibc
#endif

public enum Value {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer outside `Int`'s range; arithmetic returns to `.int` whenever the result fits.
    case bigInt(BigInt)
    case float(Double)
    case string(String)
    /// A string marked safe for HTML (`markupsafe.Markup`): autoescaping leaves it alone.
    case markup(String)
    case list(ListRef)
    case tuple([Value])
    case dict(DictRef)
    /// Boxed: keeps `Value` at two words (undefined values are rare on the hot path).
    indirect case undefined(Undefined)
    /// Macros, `caller`, global functions (`range`, `dict`, …), bound Python methods, `loop`.
    case function(Function)
    case namespace(Namespace)
    case loop(LoopContext)
    case cycler(Cycler)
    case joiner(Joiner)
    /// `self`.
    case templateReference(TemplateReference)
}

// MARK: - Python behaviour

extension Value {

    public static func str(_ s: String) -> Value { .string(s) }
    public static func makeList(_ items: [Value]) -> Value { .list(ListRef(items)) }
    public static func makeDict(_ pairs: [(Value, Value)]) -> Value { .dict(DictRef(pairs)) }

    /// Python's `type(x).__name__`.
    public var typeName: String {
        switch self {
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .markup: return "Markup"
        case .list(let ref):
            switch ref.kind {
            case .list: return "list"
            case .range: return "range"
            case .dictKeys: return "dict_keys"
            case .dictValues: return "dict_values"
            case .dictItems: return "dict_items"
            case .iterator(let name): return name
            }
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .undefined: return "Undefined"
        case .function(let f):
            switch f.kind {
            case .builtin: return "function"
            case .boundMethod: return "builtin_function_or_method"
            case .macro: return "Macro"
            case .loopRecurse: return "method"
            case .block: return "BlockReference"
            }
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .cycler: return "Cycler"
        case .joiner: return "Joiner"
        case .templateReference: return "TemplateReference"
        }
    }

    /// Jinja2's `object_type_repr`, used in "'dict object' has no attribute 'x'".
    public var objectTypeRepr: String {
        switch self {
        case .none: return "None"
        case .markup: return "markupsafe.Markup object"
        case .undefined: return "jinja2.runtime.Undefined object"
        case .namespace: return "jinja2.utils.Namespace object"
        case .loop: return "jinja2.runtime.LoopContext object"
        case .cycler: return "jinja2.utils.Cycler object"
        case .joiner: return "jinja2.utils.Joiner object"
        case .templateReference: return "jinja2.runtime.TemplateReference object"
        case .function(let f):
            if case .macro = f.kind { return "jinja2.runtime.Macro object" }
            if case .block = f.kind { return "jinja2.runtime.BlockReference object" }
            return "\(typeName) object"
        default: return "\(typeName) object"
        }
    }

    /// Python truthiness.
    public var isTruthy: Bool {
        switch self {
        case .none, .undefined: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .bigInt: return true
        case .float(let d): return d != 0
        case .string(let s), .markup(let s): return !s.isEmpty
        case .list(let ref):
            if case .iterator = ref.kind { return true }
            return !ref.isEmpty
        case .tuple(let items): return !items.isEmpty
        case .dict(let ref): return !ref.isEmpty
        default: return true
        }
    }

    public var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    public var isNone: Bool { if case .none = self { return true } else { return false } }
    public var isString: Bool {
        switch self { case .string, .markup: return true; default: return false }
    }

    /// The text of a str or Markup value.
    public var stringValue: String? {
        switch self { case .string(let s), .markup(let s): return s; default: return nil }
    }

    /// Python's `str(x)`. Undefined prints as the empty string; errors cannot happen.
    public var pyStr: String {
        switch self {
        case .string(let s), .markup(let s): return s
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .float(let d): return formatFloatRepr(d)
        default: return repr(self)
        }
    }

    /// Integer value for int/bool (Python's bool is an int subclass).
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// Numeric value as a Double for int/bool/float/bigint.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .bool(let b): return b ? 1 : 0
        case .float(let d): return d
        case .bigInt(let b): return b.doubleValue
        default: return nil
        }
    }

    public var isNumber: Bool {
        switch self { case .int, .bool, .float, .bigInt: return true; default: return false }
    }

    /// The elements `for x in value` visits (dict: keys, str: characters), or a TypeError.
    public func iterate() throws(TemplateError) -> [Value] {
        switch self {
        case .list(let ref):
            if case .iterator = ref.kind {
                let items = ref.items
                ref.items = []
                return items
            }
            return ref.items
        case .tuple(let items): return items
        case .dict(let ref): return ref.keys
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        // Markup does not override str.__iter__: its characters come out as plain str.
        case .markup(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw TemplateError(.type, "'\(typeName)' object is not iterable")
        }
    }

    /// `len(x)`.
    public func length() throws(TemplateError) -> Int {
        switch self {
        case .list(let ref):
            if case .iterator = ref.kind { throw TemplateError(.type, "object of type '\(typeName)' has no len()") }
            return ref.items.count
        case .tuple(let items): return items.count
        case .dict(let ref): return ref.count
        case .string(let s), .markup(let s): return s.unicodeScalars.count
        case .undefined: return 0
        case .loop(let l): return l.length
        default: throw TemplateError(.type, "object of type '\(typeName)' has no len()")
        }
    }
}

/// Exact comparison of an int with a float, as Python does: -1, 0, 1, or 2 for NaN.
func compareIntDouble(_ i: Int, _ d: Double) -> Int {
    if d.isNaN { return 2 }
    if d >= 9223372036854775808.0 { return -1 }
    if d < -9223372036854775808.0 { return 1 }
    let floor = d.rounded(.down)
    let f = Int(floor)
    if i < f { return -1 }
    if i > f { return 1 }
    return floor == d ? 0 : -1
}

/// Python's str equality: code points, not Swift's canonical equivalence ("é" written as one
/// code point differs from "e" plus a combining accent).
@inline(__always) public func pyStringEquals(_ a: String, _ b: String) -> Bool {
    let count = a.utf8.count
    guard count == b.utf8.count else { return false }
    if count == 0 { return true }
    let same = a.utf8.withContiguousStorageIfAvailable { x in
        b.utf8.withContiguousStorageIfAvailable { y in
            guard let p = x.baseAddress, let q = y.baseAddress else { return true }
            return memcmp(p, q, count) == 0
        }
    }
    if let same, let same { return same }
    return a.utf8.elementsEqual(b.utf8)
}

/// Python `==`.
public func pyEquals(_ lhs: Value, _ rhs: Value) -> Bool {
    switch (lhs, rhs) {
    case (.none, .none): return true
    case (.string(let a), .string(let b)), (.string(let a), .markup(let b)),
         (.markup(let a), .string(let b)), (.markup(let a), .markup(let b)):
        return pyStringEquals(a, b)
    case (.int(let a), .int(let b)): return a == b
    case (.bool(let a), .bool(let b)): return a == b
    case (.float(let a), .float(let b)): return a == b
    case (.bigInt(let a), .bigInt(let b)): return a == b
    case (.bigInt, .int), (.int, .bigInt), (.bigInt, .bool), (.bool, .bigInt): return false
    case (.bigInt(let a), .float(let b)), (.float(let b), .bigInt(let a)): return a.doubleValue == b && b.rounded() == b
    case (.int, _), (.bool, _), (.float, _):
        if let x = lhs.intValue, let y = rhs.intValue { return x == y }
        if let x = lhs.intValue, case .float(let d) = rhs { return compareIntDouble(x, d) == 0 }
        if let y = rhs.intValue, case .float(let d) = lhs { return compareIntDouble(y, d) == 0 }
        guard let a = lhs.doubleValue, let b = rhs.doubleValue else { return false }
        return a == b
    case (.list(let a), .list(let b)):
        if case .iterator = a.kind { return a === b }
        if a.isList != b.isList {
            if case .range = a.kind, case .range = b.kind { return a.items.count == b.items.count && zip(a.items, b.items).allSatisfy { pyEquals($0, $1) } }
            return false
        }
        return a === b || (a.items.count == b.items.count && zip(a.items, b.items).allSatisfy { pyEquals($0, $1) })
    case (.tuple(let a), .tuple(let b)):
        return a.count == b.count && zip(a, b).allSatisfy { pyEquals($0, $1) }
    case (.dict(let a), .dict(let b)):
        if a === b { return true }
        guard a.count == b.count else { return false }
        for (key, value) in zip(a.keys, a.values) {
            guard let other = b[key], pyEquals(value, other) else { return false }
        }
        return true
    case (.undefined, .undefined): return true
    case (.function(let a), .function(let b)): return a === b
    case (.namespace(let a), .namespace(let b)): return a === b
    case (.loop(let a), .loop(let b)): return a === b
    case (.cycler(let a), .cycler(let b)): return a === b
    case (.joiner(let a), .joiner(let b)): return a === b
    case (.templateReference(let a), .templateReference(let b)): return a === b
    default: return false
    }
}

// MARK: - Jinja2's attribute and item lookup

/// `environment.getattr(obj, name)`: a Python attribute first (methods, namespace attributes,
/// loop fields), then `obj[name]`; Undefined when neither exists.
public func getAttribute(_ object: Value, _ name: String) -> Value {
    switch object {
    case .dict(let ref):
        if methodExists(object, name) { return .function(Function(name: name, kind: .boundMethod(receiver: object, name: name))) }
        if let value = ref[string: name] { return value }
    case .namespace(let ns):
        if let value = ns.attributes[string: name] { return value }
    case .loop(let loop):
        if let value = loopAttribute(loop, name) { return value }
    case .cycler(let c):
        switch name {
        case "current": return c.current
        case "items": return .tuple(c.items)
        case "next", "reset": return .function(Function(name: name, kind: .boundMethod(receiver: object, name: name)))
        default: break
        }
    case .undefined(let u):
        return .undefined(u)
    case .templateReference(let reference):
        return reference.block(name)
    case .function(let f):
        if case .block(let block) = f.kind {
            switch name {
            case "name": return .string(block.name)
            case "super": return .undefined(Undefined(superOf: block))
            default: break
            }
        }
        if case .macro(let closure) = f.kind {
            let macro = closure.macro
            switch name {
            case "name": return .string(macro.name)
            case "arguments": return .tuple(macro.arguments.map { .string($0.name) })
            case "catch_varargs": return .bool(macro.catchVarargs)
            case "catch_kwargs": return .bool(macro.catchKwargs)
            case "caller": return .bool(macro.callerUsed)
            default: break
            }
        }
    default:
        if methodExists(object, name) { return .function(Function(name: name, kind: .boundMethod(receiver: object, name: name))) }
        if case .tuple(let items) = object, items.count == 2 {
            // groupby yields namedtuples (grouper, list); any pair answers to those names here.
            if name == "grouper" { return items[0] }
            if name == "list" { return items[1] }
        }
        if case .int = object {
            if name == "real" || name == "numerator" { return object }
            if name == "imag" { return .int(0) }
            if name == "denominator" { return .int(1) }
        }
        if case .float = object {
            if name == "real" { return object }
            if name == "imag" { return .float(0) }
        }
        // Strings, lists and tuples have no attributes besides methods; item lookup by a
        // string key fails for them, so Undefined follows.
    }
    return .undefined(Undefined(owner: object, attribute: name))
}

/// `environment.getitem(obj, key)`: `obj[key]` first, then for a string key the attribute.
public func getItem(_ object: Value, _ key: Value) -> Value {
    switch object {
    case .dict(let ref):
        if let value = ref[key] { return value }
    case .list(let ref):
        if case .iterator = ref.kind { break }
        if let i = key.intValue, let value = pyIndex(ref.items, i) { return value }
    case .tuple(let items):
        if let i = key.intValue, let value = pyIndex(items, i) { return value }
    case .string(let s), .markup(let s):
        if let i = key.intValue {
            let scalars = Array(s.unicodeScalars)
            let position = i < 0 ? i + scalars.count : i
            if position >= 0, position < scalars.count {
                let text = String(scalars[position])
                if case .markup = object { return .markup(text) }
                return .string(text)
            }
        }
    case .undefined(let u):
        return .undefined(u)
    case .templateReference(let reference):
        if case .string(let name) = key { return reference.block(name) }
    default: break
    }
    if case .string(let name) = key {
        let attribute = getAttribute(object, name)
        if case .undefined = attribute { return .undefined(Undefined(owner: object, key: key)) }
        return attribute
    }
    return .undefined(Undefined(owner: object, key: key))
}

@inline(__always) func pyIndex(_ items: [Value], _ i: Int) -> Value? {
    let position = i < 0 ? i + items.count : i
    return position >= 0 && position < items.count ? items[position] : nil
}

func loopAttribute(_ loop: LoopContext, _ name: String) -> Value? {
    LoopAttribute(rawValue: name)?.value(of: loop)
}

/// The attributes of Jinja2's LoopContext; `loop.index` finds its own at parse time.
enum LoopAttribute: String, Sendable {
    case index, index0, revindex, revindex0, first, last, length, depth, depth0, previtem, nextitem
    case cycle, changed

    func value(of loop: LoopContext) -> Value {
        switch self {
        case .index: return .int(loop.index0 + 1)
        case .index0: return .int(loop.index0)
        case .revindex: return .int(loop.length - loop.index0)
        case .revindex0: return .int(loop.length - loop.index0 - 1)
        case .first: return .bool(loop.first)
        case .last: return .bool(loop.last)
        case .length: return .int(loop.length)
        case .depth: return .int(loop.depth0 + 1)
        case .depth0: return .int(loop.depth0)
        case .previtem: return loop.previtem
        case .nextitem: return loop.nextitem
        case .cycle, .changed:
            return .function(Function(name: rawValue, kind: .boundMethod(receiver: .loop(loop), name: rawValue)))
        }
    }
}

// MARK: - JSON

/// Builds template values straight from the shared JSON reader.
public enum ValueJSONBuilder: JSONBuilder {
    public static func makeNull() -> Value { .none }
    public static func makeBool(_ value: Bool) -> Value { .bool(value) }
    public static func makeInteger(_ value: Int) -> Value { .int(value) }
    public static func makeBigInteger(digits: String) -> Value {
        if let big = BigInt(digits) { return .bigInt(big) }
        return .float(Double(digits) ?? .nan)
    }
    public static func makeDouble(_ value: Double) -> Value { .float(value) }
    public static func makeString(_ value: String) -> Value { .string(value) }
    public static func makeArray(_ elements: [Value]) -> Value { .list(ListRef(elements)) }
    public static func makeObject(_ members: [(String, Value)]) -> Value { .dict(DictRef(stringPairs: members)) }
}
