// Python's dict, a reference type as in Python, and the hashing of its keys.

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

    /// A JSON object with members, read as it is used.
    init(lazyJSON: LazyJSONObject) {
        strings = []
        self.lazyJSON = lazyJSON
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
        guard var lazyJSON else { return }
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
        // `len(service.pods)` of a JSON object: its members counted without decoding them.
        if lazyJSON != nil, let count = lazyJSON!.countIfKeysAreUnique() { return count }
        settle()
        return general?.count ?? strings.count
    }

    /// Whether the dict has no members; a dict still JSON text has some (an empty object is
    /// never read lazily), so `{% if pod.status %}` decodes nothing.
    public var isEmpty: Bool { lazyJSON == nil && count == 0 }

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
        // A cached list stays right through settle(): a JSON object's values are cached
        // before it is decoded only when no key repeats.
        if let cachedValues { return cachedValues }
        // `pods.values()` of a JSON object: its values without decoding its keys.
        if lazyJSON != nil, let values = lazyJSON!.valuesIfKeysAreUnique() {
            cachedValues = values
            return values
        }
        settle()
        let built: [Value] = general.map { $0.map { $0.1 } } ?? strings.map { $0.1 }
        cachedValues = built
        return built
    }

    /// The members as `(key, value)` tuples in order, as `items()` lists them, made in one
    /// pass without the cached key and value lists.
    public var itemTuples: [Value] {
        settle()
        if let general { return general.map { .tuple([$0.0, $0.1]) } }
        return strings.map { .tuple([.string($0.0), $0.1]) }
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
            if let text = key.stringValue { return lookup(text) }
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
        if lazyJSON?.prefersDecoding == false { return lazyJSON!.lookup(key) }
        settle()
        if extras == nil, strings.count <= DictRef.indexThreshold {
            return strings.withUnsafeBufferPointer { buffer -> Value? in
                for i in 0..<buffer.count where pyStringEquals(buffer[i].0, key) { return buffer[i].1 }
                return nil
            }
        }
        return position(ofString: key).map { value(at: $0) }
    }

    /// `x.name`: a JSON object's keys are compared with the name's UTF-8 as it was prepared
    /// at parse time.
    @inline(__always) func lookup(_ name: AttributeName) -> Value? {
        if lazyJSON?.prefersDecoding == false {
            return lazyJSON!.lookup(name)
        }
        return lookup(name.text)
    }

    /// `x.first.second` read through this JSON object's text (LazyJSONObject.lookupPath); nil:
    /// go step by step.
    @inline(__always) func lookupPath(_ first: AttributeName, _ second: AttributeName) -> Value? {
        if lazyJSON?.prefersDecoding == false { return lazyJSON!.lookupPath(first, second) }
        return nil
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
    case .templateReference(let t): hasher.combine(ObjectIdentifier(t))
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
