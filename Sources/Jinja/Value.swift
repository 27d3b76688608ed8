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
}

// MARK: - Containers

public final class ListRef {
    /// What Python type the sequence is: a list, or one of the read-only sequences that
    /// behave as lists in templates but print differently (`range(0, 3)`, `dict_keys([...])`).
    public enum Kind {
        case list
        case range(start: Int, stop: Int, step: Int)
        case dictKeys, dictValues, dictItems
        /// A one-pass iterator (Jinja2's filters return generators): always true, no len(),
        /// emptied by the first iteration. The payload is Python's type name ("generator").
        case iterator(String)
    }

    private var storage: [Value]
    public var kind: Kind
    /// Set while the list is still JSON text (LazyJSON.swift): decoded on first use.
    var lazyJSON: LazyJSONArray?

    public var items: [Value] {
        get {
            if lazyJSON != nil { materializeJSON() }
            return storage
        }
        _modify {
            if lazyJSON != nil { materializeJSON() }
            yield &storage
        }
    }

    private func materializeJSON() {
        guard let lazyJSON else { return }
        self.lazyJSON = nil
        storage = lazyJSON.elements()
    }

    public init(_ items: [Value] = [], kind: Kind = .list) {
        self.storage = items
        self.kind = kind
    }

    public var isList: Bool { if case .list = kind { return true } else { return false } }
}

/// A Python dict: insertion-ordered, keys compared with Python equality (`1 == 1.0 == True`).
///
/// While every key is a str (every JSON object, most template dicts) the members live in one
/// array of (String, Value) pairs, which for a JSON object is the parser's own array, taken
/// without copying; a key of another type moves them to the general form. `keys` and
/// `values` are materialised on first use and cached until the next change.
public final class DictRef {
    private var strings: [(String, Value)]
    /// What few dicts need, kept out of line so that the many small dicts of a large JSON
    /// context stay small.
    private final class Extras {
        var general: [(Value, Value)]? = nil
        var index: [DictKey: Int]? = nil
        var cachedKeys: [Value]? = nil
        var cachedValues: [Value]? = nil
    }
    private var extras: Extras? = nil
    private static let indexThreshold = 16

    private func ensureExtras() -> Extras {
        if let extras { return extras }
        let created = Extras()
        extras = created
        return created
    }

    /// All members once a key that is not a str was inserted (then `strings` is empty).
    private var general: [(Value, Value)]? {
        get { extras?.general }
        _modify {
            let storage = ensureExtras()
            yield &storage.general
        }
    }

    /// Hash index, built on the first lookup once the dict has more than a few entries (most
    /// dicts of a JSON context are never searched, and small ones are scanned faster).
    private var index: [DictKey: Int]? {
        get { extras?.index }
        _modify {
            let storage = ensureExtras()
            yield &storage.index
        }
    }

    private var cachedKeys: [Value]? {
        get { extras?.cachedKeys }
        _modify {
            let storage = ensureExtras()
            yield &storage.cachedKeys
        }
    }

    private var cachedValues: [Value]? {
        get { extras?.cachedValues }
        _modify {
            let storage = ensureExtras()
            yield &storage.cachedValues
        }
    }

    public init() {
        strings = []
    }

    public init(_ pairs: [(Value, Value)]) {
        strings = []
        strings.reserveCapacity(pairs.count)
        for (key, value) in pairs { self[key] = value }
    }

    /// String-keyed members, as JSON objects deliver them; a repeated key keeps its first
    /// position and its last value.
    public init(stringPairs pairs: [(String, Value)]) {
        // The reader's own array, as is: a tight copy would save its spare room (about 13 MB
        // on the benchmark context) but costs more time than the memory it saves.
        strings = pairs
        mayRepeat = pairs.count > 1
    }

    /// Set while the members may contain a repeated key (a JSON object was taken as is);
    /// checked on first use, so the many dicts of a context nobody looks at cost nothing.
    private var mayRepeat = false

    /// Set while the dict is still JSON text (LazyJSON.swift): a str-key lookup reads the
    /// text, anything else decodes the members first.
    var lazyJSON: LazyJSONObject?

    @inline(__always) private func settle() {
        if lazyJSON != nil { decodeJSON() }
        if mayRepeat { removeRepeats() }
    }

    private func decodeJSON() {
        guard let lazyJSON else { return }
        self.lazyJSON = nil
        strings = lazyJSON.members()
        mayRepeat = strings.count > 1
    }

    /// Python keeps one entry per key, at the first key's position with the last value.
    private func removeRepeats() {
        mayRepeat = false
        let pairs = strings
        var repeated = false
        if pairs.count <= DictRef.indexThreshold {
            // Lengths rule out nearly every pair before any bytes are compared.
            repeated = withUnsafeTemporaryAllocation(of: Int.self, capacity: pairs.count) { lengths in
                for i in 0..<pairs.count {
                    let length = pairs[i].0.utf8.count
                    for j in 0..<i where lengths[j] == length && pyStringEquals(pairs[j].0, pairs[i].0) {
                        return true
                    }
                    lengths[i] = length
                }
                return false
            }
        } else {
            var seen = Set<String>(minimumCapacity: pairs.count)
            for (key, _) in pairs where !seen.insert(key).inserted {
                repeated = true
                break
            }
        }
        if repeated {
            strings = []
            for (key, value) in pairs { self[string: key] = value }
        }
    }

    public var count: Int {
        settle()
        return general?.count ?? strings.count
    }

    /// The key at `position` (insertion order).
    public func key(at position: Int) -> Value {
        settle()
        if let general { return general[position].0 }
        return .string(strings[position].0)
    }

    /// The value at `position` (insertion order).
    public func value(at position: Int) -> Value {
        settle()
        if let general { return general[position].1 }
        return strings[position].1
    }

    public var keys: [Value] {
        settle()
        if let cachedKeys { return cachedKeys }
        let built: [Value] = general.map { $0.map { $0.0 } } ?? strings.map { .string($0.0) }
        cachedKeys = built
        return built
    }

    public var values: [Value] {
        settle()
        if let cachedValues { return cachedValues }
        let built: [Value] = general.map { $0.map { $0.1 } } ?? strings.map { $0.1 }
        cachedValues = built
        return built
    }

    public var pairs: [(Value, Value)] {
        settle()
        return general ?? strings.map { (.string($0.0), $0.1) }
    }

    public func copy() -> DictRef {
        settle()
        let other = DictRef()
        other.strings = strings
        if let general { other.general = general }
        return other
    }

    private func changed() {
        if let extras {
            extras.cachedKeys = nil
            extras.cachedValues = nil
        }
    }

    @inline(__always) private func buildIndexIfNeeded() {
        let total = count
        if index == nil, total > DictRef.indexThreshold {
            var built: [DictKey: Int] = [:]
            built.reserveCapacity(total)
            for position in 0..<total {
                let key = DictKey(self.key(at: position))
                if built[key] == nil { built[key] = position }
            }
            index = built
        }
    }

    public func position(of key: Value) -> Int? {
        settle()
        switch key {
        case .string(let text), .markup(let text): return position(ofString: text)
        default: break
        }
        guard let general else {
            // Only str keys here; 1 == 1.0 == True never equals a str.
            return nil
        }
        buildIndexIfNeeded()
        if let index { return index[DictKey(key)] }
        for position in general.indices where pyEquals(general[position].0, key) { return position }
        return nil
    }

    public func position(ofString text: String) -> Int? {
        settle()
        buildIndexIfNeeded()
        if let index { return index[DictKey(.string(text))] }
        if let general {
            for position in general.indices {
                switch general[position].0 {
                case .string(let other), .markup(let other): if pyStringEquals(other, text) { return position }
                default: continue
                }
            }
            return nil
        }
        for position in strings.indices where pyStringEquals(strings[position].0, text) { return position }
        return nil
    }

    public subscript(key: Value) -> Value? {
        get {
            if let lazyJSON, !lazyJSON.prefersDecoding, let text = key.stringValue { return lazyJSON.lookup(text) }
            return position(of: key).map { value(at: $0) }
        }
        set {
            settle()
            changed()
            if let position = position(of: key) {
                if let newValue {
                    if general != nil { general?[position].1 = newValue } else { strings[position].1 = newValue }
                } else {
                    remove(at: position)
                }
                return
            }
            guard let newValue else { return }
            if general == nil, case .string(let text) = key {
                strings.append((text, newValue))
            } else {
                if general == nil {
                    general = strings.map { (.string($0.0), $0.1) }
                    strings = []
                }
                general?.append((key, newValue))
            }
            if index != nil { index?[DictKey(key)] = count - 1 }
        }
    }

    /// The value for a str key: the evaluator's `x.name` fast path.
    @inline(__always) public func lookup(_ key: String) -> Value? {
        if let lazyJSON, !lazyJSON.prefersDecoding { return lazyJSON.lookup(key) }
        settle()
        if extras == nil, strings.count <= DictRef.indexThreshold {
            return strings.withUnsafeBufferPointer { buffer -> Value? in
                for i in 0..<buffer.count where pyStringEquals(buffer[i].0, key) { return buffer[i].1 }
                return nil
            }
        }
        return position(ofString: key).map { value(at: $0) }
    }

    public subscript(string key: String) -> Value? {
        get { lookup(key) }
        set { self[.string(key)] = newValue }
    }

    public func remove(at position: Int) {
        settle()
        changed()
        if general != nil { general?.remove(at: position) } else { strings.remove(at: position) }
        index = nil
    }

    public func removeAll() {
        lazyJSON = nil
        mayRepeat = false
        changed()
        strings.removeAll()
        general = nil
        index = nil
    }
}

/// Hashable view of a value with Python's hash/equality rules for dict keys and sets.
public struct DictKey: Hashable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
    public static func == (lhs: DictKey, rhs: DictKey) -> Bool { pyEquals(lhs.value, rhs.value) }
    public func hash(into hasher: inout Hasher) { pyHash(value, into: &hasher) }
}

func pyHash(_ value: Value, into hasher: inout Hasher) {
    switch value {
    case .none: hasher.combine(0 as UInt8)
    case .bool(let b): hasher.combine(b ? 1 : 0)
    case .int(let i): hasher.combine(i)
    case .bigInt(let b): hasher.combine(b.description)
    case .float(let d):
        if d.rounded() == d, let i = Int(exactly: d) { hasher.combine(i) } else { hasher.combine(d) }
    case .string(let s), .markup(let s): hasher.combine(s)
    case .tuple(let items):
        hasher.combine(items.count)
        for item in items { pyHash(item, into: &hasher) }
    case .list(let ref):
        if case .range = ref.kind { hasher.combine(ref.items.count) } else { hasher.combine(ObjectIdentifier(ref)) }
    case .dict(let ref): hasher.combine(ObjectIdentifier(ref))
    case .undefined: hasher.combine(1 as UInt8)
    case .function(let f): hasher.combine(ObjectIdentifier(f))
    case .namespace(let n): hasher.combine(ObjectIdentifier(n))
    case .loop(let l): hasher.combine(ObjectIdentifier(l))
    case .cycler(let c): hasher.combine(ObjectIdentifier(c))
    case .joiner(let j): hasher.combine(ObjectIdentifier(j))
    }
}

/// `TypeError: unhashable type: 'list'` for values Python refuses as dict keys.
func requireHashable(_ value: Value) throws(TemplateError) {
    switch value {
    case .list(let ref):
        switch ref.kind {
        case .range, .iterator: return
        default: throw TemplateError(.type, "unhashable type: '\(value.typeName)'")
        }
    case .dict: throw TemplateError(.type, "unhashable type: '\(value.typeName)'")
    case .tuple(let items): for item in items { try requireHashable(item) }
    default: return
    }
}

// MARK: - Undefined

/// Jinja2's `Undefined`: prints empty, iterates empty, is falsy; anything more raises
/// `UndefinedError` with the message Jinja2 builds from what was looked up where.
public struct Undefined {
    /// An explicit message (Jinja2's `hint`), used as is.
    public var hint: String?
    /// `object_type_repr` of the object the lookup was made on; nil for a plain missing name.
    public var owner: String?
    /// The name or key looked up.
    public var name: String
    /// False when the key was not a string (`x[0]`): Jinja2 then says "has no element".
    public var nameIsString: Bool

    public init(name: String) {
        self.hint = nil; self.owner = nil; self.name = name; self.nameIsString = true
    }

    public init(hint: String) {
        self.hint = hint; self.owner = nil; self.name = ""; self.nameIsString = true
    }

    /// A failed attribute or item lookup on `object`.
    public init(owner object: Value, key: Value) {
        self.hint = nil
        self.owner = object.objectTypeRepr
        if case .string(let s) = key { name = s; nameIsString = true } else { name = repr(key); nameIsString = false }
    }

    public init(owner object: Value, attribute: String) {
        self.hint = nil
        self.owner = object.objectTypeRepr
        self.name = attribute
        self.nameIsString = true
    }

    public var message: String {
        if let hint { return hint }
        guard let owner else { return "\(reprString(name)) is undefined" }
        if !nameIsString { return "\(owner) has no element \(name)" }
        return "\(reprString(owner)) has no attribute \(reprString(name))"
    }

    public var error: TemplateError { TemplateError(.undefined, message) }
}

// MARK: - Callables and runtime objects

public struct Arguments {
    public var positional: [Value]
    public var keywords: [(String, Value)]

    public init(_ positional: [Value] = [], keywords: [(String, Value)] = []) {
        self.positional = positional
        self.keywords = keywords
    }

    public func keyword(_ name: String) -> Value? {
        for (key, value) in keywords where key == name { return value }
        return nil
    }

    /// The argument at `position` or named `name`, the way Python binds a parameter.
    public func argument(_ position: Int, _ name: String) -> Value? {
        if position < positional.count { return positional[position] }
        return keyword(name)
    }

    public var isEmpty: Bool { positional.isEmpty && keywords.isEmpty }
}

/// Anything callable from a template. The evaluator runs macros and `caller`; builtins carry
/// their Swift implementation.
public final class Function {
    public enum Kind {
        /// A global like `range` or `lipsum`.
        case builtin(@Sendable (Arguments) throws(TemplateError) -> Value)
        /// `receiver.name` taken without calling it; calling dispatches to `callMethod`.
        case boundMethod(receiver: Value, name: String)
        /// A macro or `caller` block; the evaluator knows what to do with it.
        case macro(MacroClosure)
        /// `loop` in a recursive for loop, and `loop.cycle`/`loop.changed` are methods of it.
        case loopRecurse(LoopContext)
    }

    public let name: String
    public let kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// A macro bound to the scope it was defined in (opaque outside the evaluator).
public final class MacroClosure {
    let macro: MacroDefinition
    /// The scope the macro was defined in; nil at the template's top level.
    let scope: Scope?
    let isCaller: Bool
    init(macro: MacroDefinition, scope: Scope?, isCaller: Bool) {
        self.macro = macro
        self.scope = scope
        self.isCaller = isCaller
    }
}

/// `namespace(...)`: the one object templates may assign attributes to.
public final class Namespace {
    public let attributes: DictRef
    public init(_ attributes: DictRef = DictRef()) { self.attributes = attributes }
}

/// The `loop` variable of a for loop.
public final class LoopContext {
    public let items: [Value]
    public var index0: Int = 0
    public let depth0: Int
    /// Re-entry point for `loop(...)` in a recursive loop.
    let recurse: ((Value) throws(TemplateError) -> String)?
    var lastChanged: [Value]? = nil

    init(items: [Value], depth0: Int, recurse: ((Value) throws(TemplateError) -> String)?) {
        self.items = items
        self.depth0 = depth0
        self.recurse = recurse
    }

    public var length: Int { items.count }
    public var first: Bool { index0 == 0 }
    public var last: Bool { index0 == items.count - 1 }
    public var previtem: Value {
        index0 > 0 ? items[index0 - 1] : .undefined(Undefined(hint: "there is no previous item"))
    }
    public var nextitem: Value {
        index0 + 1 < items.count ? items[index0 + 1] : .undefined(Undefined(hint: "there is no next item"))
    }
}

public final class Cycler {
    public let items: [Value]
    public var position = 0
    public init(_ items: [Value]) { self.items = items }
    public var current: Value { items.isEmpty ? .none : items[position] }
    public func next() -> Value {
        guard !items.isEmpty else { return .none }
        let value = items[position]
        position = (position + 1) % items.count
        return value
    }
    public func reset() { position = 0 }
}

public final class Joiner {
    public let separator: String
    public var used = false
    public init(_ separator: String) { self.separator = separator }
    public func call() -> String {
        if used { return separator }
        used = true
        return ""
    }
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
            }
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .cycler: return "Cycler"
        case .joiner: return "Joiner"
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
        case .function(let f):
            if case .macro = f.kind { return "jinja2.runtime.Macro object" }
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
            return !ref.items.isEmpty
        case .tuple(let items): return !items.isEmpty
        case .dict(let ref): return ref.count > 0
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
    case .function(let f):
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
    switch name {
    case "index": return .int(loop.index0 + 1)
    case "index0": return .int(loop.index0)
    case "revindex": return .int(loop.length - loop.index0)
    case "revindex0": return .int(loop.length - loop.index0 - 1)
    case "first": return .bool(loop.first)
    case "last": return .bool(loop.last)
    case "length": return .int(loop.length)
    case "depth": return .int(loop.depth0 + 1)
    case "depth0": return .int(loop.depth0)
    case "previtem": return loop.previtem
    case "nextitem": return loop.nextitem
    case "cycle", "changed": return .function(Function(name: name, kind: .boundMethod(receiver: .loop(loop), name: name)))
    default: return nil
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
