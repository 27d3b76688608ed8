// The Python methods templates call on values: `name.startswith('x')`, `d.items()`, ….
//
// The evaluator resolves `x.name` through `methodExists` (a Python attribute wins over a dict
// key, as in Jinja2's getattr-then-getitem), and `x.name(args)` through `callMethod`.

/// Whether `receiver` has a Python method `name` (so `receiver.name` is that method).
public func methodExists(_ receiver: Value, _ name: String) -> Bool {
    switch receiver {
    case .string, .markup:
        switch name {
        case "startswith", "endswith", "upper", "lower": return true
        default: return false
        }
    case .dict:
        switch name {
        case "items", "keys", "values", "get", "iteritems", "iterkeys", "itervalues", "has_key": return true
        default: return false
        }
    default: return false
    }
}

/// Calls `receiver.name(args)`; nil when `receiver` has no such method (the evaluator then
/// reports the undefined attribute).
public func callMethod(_ receiver: Value, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    switch receiver {
    case .string(let s), .markup(let s):
        switch name {
        case "startswith":
            guard let prefix = args.positional.first?.stringValue else { return .bool(false) }
            return .bool(s.hasPrefix(prefix))
        case "upper": return .string(s.uppercased())
        default: return nil
        }
    case .dict(let ref):
        switch name {
        case "items", "iteritems": return .makeList(zip(ref.keys, ref.values).map { .tuple([$0, $1]) })
        case "values", "itervalues": return .makeList(ref.values)
        case "keys", "iterkeys": return .makeList(ref.keys)
        default: return nil
        }
    case .cycler(let c):
        switch name {
        case "next": return c.next()
        case "reset": c.reset(); return Value.none
        default: return nil
        }
    default: return nil
    }
}
