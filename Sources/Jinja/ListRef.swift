// Python's list (and the list-like views: range, dict views, one-pass iterators), a reference
// type as in Python: every name bound to one list sees its changes.

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

    /// A JSON array with elements, decoded on first use.
    init(lazyJSON: LazyJSONArray) {
        storage = []
        kind = .list
        self.lazyJSON = lazyJSON
    }

    /// Whether the list has no items; a list still JSON text has some (an empty array is
    /// never read lazily), so `{% if pod.spec.containers %}` decodes nothing.
    public var isEmpty: Bool { lazyJSON == nil && storage.isEmpty }

    public var isList: Bool { if case .list = kind { return true } else { return false } }
}
