// Jinja2's attribute getters (`make_attrgetter`, `make_multi_attrgetter`): the dotted paths
// that `map`, `sort`, `groupby`, `sum`, `selectattr` … take as `attribute=`.

/// Jinja2's `ignore_case` postprocessor: strings compare lowercased.
@inline(__always) func ignoreCase(_ value: Value) -> Value {
    switch value {
    case .string(let s): return .string(pyLower(s))
    case .markup(let s): return .markup(pyLower(s))
    default: return value
    }
}

/// Jinja2's `make_attrgetter`: a dotted path ("a.b.0", digit parts are indexes) looked up with
/// `environment.getitem`, optionally replacing Undefined with a default.
struct AttributeGetter {
    private var parts: [Value] = []
    private let defaultValue: Value?
    private let lowercase: Bool

    init(_ attribute: Value?, default defaultValue: Value? = nil, lowercase: Bool = false) {
        self.defaultValue = defaultValue.flatMap { $0.isNone ? nil : $0 }
        self.lowercase = lowercase
        guard let attribute, !attribute.isNone else { return }
        if let path = attribute.stringValue {
            let markup: Bool
            if case .markup = attribute { markup = true } else { markup = false }
            // Split at each "." code point, as Python's str.split: on the UTF-8, where a "."
            // is always a byte of its own (splitting Characters would keep ".\u{301}" whole,
            // and costs a grapheme search per character).
            parts = path.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map { bytes in
                let part = Substring(bytes)
                if !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let i = Int(part) { return .int(i) }
                return markup ? .markup(String(part)) : .string(String(part))
            }
        } else {
            parts = [attribute]
        }
    }

    func get(_ item: Value) -> Value {
        var current = item
        for part in parts {
            current = getItem(current, part)
            if let defaultValue, current.isUndefined { current = defaultValue }
        }
        return lowercase ? ignoreCase(current) : current
    }
}

/// Jinja2's `make_multi_attrgetter`: "age,name" gives a list of both as the sort key.
func multiAttributeKey(_ attribute: Value?, lowercase: Bool) -> (Value) -> Value {
    guard let attribute, !attribute.isNone else { return { lowercase ? ignoreCase($0) : $0 } }
    guard case .string(let text) = attribute, text.contains(",") else {
        let getter = AttributeGetter(attribute, lowercase: lowercase)
        return { .makeList([getter.get($0)]) }
    }
    let getters = text.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map {
        AttributeGetter(.string(String(Substring($0))), lowercase: lowercase)
    }
    return { item in .makeList(getters.map { $0.get(item) }) }
}
