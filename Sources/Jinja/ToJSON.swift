// The `tojson` filter: json.dumps(sort_keys=True), then HTML-safe escapes.

func writeJSON(_ value: Value, indent: String?, level: Int, to out: inout String) throws(TemplateError) {
    switch value {
    case .none: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .int(let i): out += String(i)
    case .bigInt(let b): out += b.description
    case .float(let d): out += jsonFloat(d)
    case .string(let s), .markup(let s): writeJSONString(s, to: &out)
    case .list(let ref) where !ref.isList:
        throw TemplateError(.type, "Object of type \(value.typeName) is not JSON serializable")
    case .list, .tuple:
        let items = try value.iterate()
        if items.isEmpty { out += "[]"; return }
        out += "["
        for (i, item) in items.enumerated() {
            if i > 0 { out += indent == nil ? ", " : "," }
            if let indent { out += "\n" + String(repeating: indent, count: level + 1) }
            try writeJSON(item, indent: indent, level: level + 1, to: &out)
        }
        if let indent { out += "\n" + String(repeating: indent, count: level) }
        out += "]"
    case .dict(let ref):
        if ref.count == 0 { out += "{}"; return }
        let keys = ref.keys, values = ref.values
        let order = try pySorted(keys.indices.map { Value.int($0) }, reverse: false) { position in
            keys[position.intValue ?? 0]
        }
        out += "{"
        for (n, position) in order.enumerated() {
            let i = position.intValue ?? 0
            if n > 0 { out += indent == nil ? ", " : "," }
            if let indent { out += "\n" + String(repeating: indent, count: level + 1) }
            let key = keys[i]
            switch key {
            case .string(let s), .markup(let s): writeJSONString(s, to: &out)
            case .none: out += "\"null\""
            case .bool(let b): out += b ? "\"true\"" : "\"false\""
            case .int, .bigInt: out += "\"" + key.pyStr + "\""
            case .float(let d): out += "\"" + jsonFloat(d) + "\""
            default: throw TemplateError(.type, "keys must be str, int, float, bool or None, not \(key.typeName)")
            }
            out += ": "
            try writeJSON(values[i], indent: indent, level: level + 1, to: &out)
        }
        if let indent { out += "\n" + String(repeating: indent, count: level) }
        out += "}"
    default:
        throw TemplateError(.type, "Object of type \(value.typeName) is not JSON serializable")
    }
}

private func jsonFloat(_ d: Double) -> String {
    if d.isNaN { return "NaN" }
    if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
    return formatFloatRepr(d)
}

/// A JSON string as `json.dumps` writes it (ASCII only), with `<`, `>`, `&`, `'` escaped.
private func writeJSONString(_ s: String, to out: inout String) {
    out += "\""
    func unicodeEscape(_ unit: UInt16) {
        let hex = String(unit, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        case "<": out += "\\u003c"
        case ">": out += "\\u003e"
        case "&": out += "\\u0026"
        case "'": out += "\\u0027"
        default:
            if c.value < 0x20 || c.value >= 0x7F {
                for unit in String(c).utf16 { unicodeEscape(unit) }
            } else {
                out.unicodeScalars.append(c)
            }
        }
    }
    out += "\""
}
