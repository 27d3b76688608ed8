// The list, tuple, range and dict methods templates call: `d.items()`, `l.append(x)` …

/// `index(x[, start[, end]])` of a list or tuple (a range's takes `x` alone: `maxArguments` 1);
/// `missing` says that `x` is not there.
func sequenceIndex(_ items: [Value], _ args: Arguments, owner: String, maxArguments: Int = 3,
                   missing: (Value) -> String) throws(TemplateError) -> Value {
    let a = try positionalArguments(args, "index", min: 1, max: maxArguments, owner: owner)
    let start = try sliceBound(a.count > 1 ? a[1] : nil, noneAllowed: false)
    let end = try sliceBound(a.count > 2 ? a[2] : nil, noneAllowed: false)
    let (lower, upper) = normalizedRange(start, end, count: items.count)
    if lower < upper {
        for i in lower..<upper where pyEquals(items[i], a[0]) { return .int(i) }
    }
    throw TemplateError(.value, missing(a[0]))
}

func sequenceCount(_ items: [Value], _ args: Arguments, owner: String) throws(TemplateError) -> Value {
    let a = try positionalArguments(args, "count", min: 1, max: 1, owner: owner)
    return .int(items.reduce(0) { $0 + (pyEquals($1, a[0]) ? 1 : 0) })
}

/// A call of a list method.
struct ListMethodCall {
    let ref: ListRef
    let args: Arguments
}

typealias ListMethod = @Sendable (ListMethodCall) throws(TemplateError) -> Value

/// list's methods by their Python name (a range has only `index` and `count`).
let listMethods: [String: ListMethod] = [
    "index": { call throws(TemplateError) in try call.index() },
    "count": { call throws(TemplateError) in try call.count() },
    "append": { call throws(TemplateError) in try call.append() },
    "extend": { call throws(TemplateError) in try call.extend() },
    "insert": { call throws(TemplateError) in try call.insert() },
    "pop": { call throws(TemplateError) in try call.pop() },
    "remove": { call throws(TemplateError) in try call.remove() },
    "reverse": { call throws(TemplateError) in try call.reverse() },
    "sort": { call throws(TemplateError) in try call.sort() },
    "clear": { call throws(TemplateError) in try call.clear() },
    "copy": { call throws(TemplateError) in try call.copy() },
]

func callListMethod(_ ref: ListRef, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    if case .list = ref.kind { return try listMethods[name]?(ListMethodCall(ref: ref, args: args)) }
    guard methodExists(.list(ref), name) else { return nil }
    // A range: index and count.
    if name == "count" { return try sequenceCount(ref.items, args, owner: "range") }
    return try sequenceIndex(ref.items, args, owner: "range", maxArguments: 1) { "\(repr($0)) is not in range" }
}

/// A call of a dict method.
struct DictMethodCall {
    let ref: DictRef
    let name: String
    let args: Arguments
}

typealias DictMethod = @Sendable (DictMethodCall) throws(TemplateError) -> Value

/// dict's methods by their Python name, the Python 2 spellings (`iteritems`, `has_key`) included.
let dictMethods: [String: DictMethod] = [
    "items": { call throws(TemplateError) in try call.items() },
    "iteritems": { call throws(TemplateError) in try call.items() },
    "keys": { call throws(TemplateError) in try call.keys() },
    "iterkeys": { call throws(TemplateError) in try call.keys() },
    "values": { call throws(TemplateError) in try call.values() },
    "itervalues": { call throws(TemplateError) in try call.values() },
    "get": { call throws(TemplateError) in try call.get() },
    "has_key": { call throws(TemplateError) in try call.hasKey() },
    "pop": { call throws(TemplateError) in try call.pop() },
    "popitem": { call throws(TemplateError) in try call.popitem() },
    "setdefault": { call throws(TemplateError) in try call.setdefault() },
    "update": { call throws(TemplateError) in try call.update() },
    "copy": { call throws(TemplateError) in try call.copy() },
    "clear": { call throws(TemplateError) in try call.clear() },
]

func callDictMethod(_ ref: DictRef, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    try dictMethods[name]?(DictMethodCall(ref: ref, name: name, args: args))
}

extension ListMethodCall {
    func index() throws(TemplateError) -> Value {
        try sequenceIndex(ref.items, args, owner: "list") { "\(repr($0)) is not in list" }
    }

    func count() throws(TemplateError) -> Value {
        return try sequenceCount(ref.items, args, owner: "list")
    }

    func append() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "append", min: 1, max: 1, owner: "list")
        ref.items.append(a[0])
        return Value.none
    }

    func extend() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "extend", min: 1, max: 1, owner: "list")
        ref.items.append(contentsOf: try a[0].iterate())
        return Value.none
    }

    func insert() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "insert", min: 2, max: 2, owner: "list")
        var position = try intArgument(a[0])
        if position < 0 { position = Swift.max(0, position + ref.items.count) }
        ref.items.insert(a[1], at: Swift.min(position, ref.items.count))
        return Value.none
    }

    func pop() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "pop", min: 0, max: 1, owner: "list")
        var position = a.isEmpty ? -1 : try intArgument(a[0])
        if ref.items.isEmpty { throw TemplateError(.index, "pop from empty list") }
        if position < 0 { position += ref.items.count }
        guard position >= 0 && position < ref.items.count else { throw TemplateError(.index, "pop index out of range") }
        return ref.items.remove(at: position)
    }

    func remove() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "remove", min: 1, max: 1, owner: "list")
        guard let position = ref.items.firstIndex(where: { pyEquals($0, a[0]) }) else {
            throw TemplateError(.value, "list.remove(x): x not in list")
        }
        ref.items.remove(at: position)
        return Value.none
    }

    func reverse() throws(TemplateError) -> Value {
        _ = try positionalArguments(args, "reverse", min: 0, max: 0, owner: "list")
        ref.items.reverse()
        return Value.none
    }

    func sort() throws(TemplateError) -> Value {
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
    }

    func clear() throws(TemplateError) -> Value {
        _ = try positionalArguments(args, "clear", min: 0, max: 0, owner: "list")
        ref.items.removeAll()
        return Value.none
    }

    func copy() throws(TemplateError) -> Value {
        _ = try positionalArguments(args, "copy", min: 0, max: 0, owner: "list")
        return .makeList(ref.items)
    }
}

extension DictMethodCall {
    /// items and iteritems
    func items() throws(TemplateError) -> Value {
        _ = try positionalArguments(args, "\(name)", min: 0, max: 0, owner: "dict")
        return .list(ListRef(ref.itemTuples, kind: .dictItems))
    }

    /// keys and iterkeys
    func keys() throws(TemplateError) -> Value {
        _ = try positionalArguments(args, "\(name)", min: 0, max: 0, owner: "dict")
        return .list(ListRef(ref.keys, kind: .dictKeys))
    }

    /// values and itervalues
    func values() throws(TemplateError) -> Value {
        _ = try positionalArguments(args, "\(name)", min: 0, max: 0, owner: "dict")
        return .list(ListRef(ref.values, kind: .dictValues))
    }

    func get() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "get", min: 1, max: 2, owner: "dict")
        try requireHashable(a[0])
        return ref[a[0]] ?? (a.count > 1 ? a[1] : Value.none)
    }

    func hasKey() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "has_key", min: 1, max: 1, owner: "dict")
        try requireHashable(a[0])
        return .bool(ref[a[0]] != nil)
    }

    func pop() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "pop", min: 1, max: 2, owner: "dict")
        try requireHashable(a[0])
        if let position = ref.position(of: a[0]) {
            let value = ref.values[position]
            ref.remove(at: position)
            return value
        }
        if a.count > 1 { return a[1] }
        throw TemplateError(.key, repr(a[0]))
    }

    func popitem() throws(TemplateError) -> Value {
        _ = try positionalArguments(args, "popitem", min: 0, max: 0, owner: "dict")
        guard ref.count > 0 else { throw TemplateError(.key, "'popitem(): dictionary is empty'") }
        let pair = Value.tuple([ref.keys[ref.count - 1], ref.values[ref.count - 1]])
        ref.remove(at: ref.count - 1)
        return pair
    }

    func setdefault() throws(TemplateError) -> Value {
        let a = try positionalArguments(args, "setdefault", min: 1, max: 2, owner: "dict")
        try requireHashable(a[0])
        if let existing = ref[a[0]] { return existing }
        let value = a.count > 1 ? a[1] : Value.none
        ref[a[0]] = value
        return value
    }

    func update() throws(TemplateError) -> Value {
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
    }

    func copy() throws(TemplateError) -> Value {
        _ = try positionalArguments(args, "copy", min: 0, max: 0, owner: "dict")
        return .dict(ref.copy())
    }

    func clear() throws(TemplateError) -> Value {
        _ = try positionalArguments(args, "clear", min: 0, max: 0, owner: "dict")
        ref.removeAll()
        return Value.none
    }
}
