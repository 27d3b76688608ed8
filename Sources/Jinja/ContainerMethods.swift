// The list, tuple, range and dict methods templates call: `d.items()`, `l.append(x)` …

func sequenceIndex(_ items: [Value], _ args: Arguments, owner: String, missing: String) throws(TemplateError) -> Value {
    let a = try positionalArguments(args, "index", min: 1, max: 3, owner: owner)
    let start = try sliceBound(a.count > 1 ? a[1] : nil, noneAllowed: false)
    let end = try sliceBound(a.count > 2 ? a[2] : nil, noneAllowed: false)
    let (lower, upper) = normalizedRange(start, end, count: items.count)
    if lower < upper {
        for i in lower..<upper where pyEquals(items[i], a[0]) { return .int(i) }
    }
    throw TemplateError(.value, missing)
}

func sequenceCount(_ items: [Value], _ args: Arguments, owner: String) throws(TemplateError) -> Value {
    let a = try positionalArguments(args, "count", min: 1, max: 1, owner: owner)
    return .int(items.reduce(0) { $0 + (pyEquals($1, a[0]) ? 1 : 0) })
}

func callListMethod(_ ref: ListRef, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
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

func callDictMethod(_ ref: DictRef, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
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
