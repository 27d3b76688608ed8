// The `pprint` filter: Python's pprint.pformat(width=80, sort_dicts=True).

func prettyFormat(_ value: Value) -> String {
    var out = ""
    prettyWrite(value, indent: 0, allowance: 0, level: 0, to: &out)
    return out
}

/// `repr` with dict keys sorted, as pprint's `safe_repr` writes it.
private func sortedRepr(_ value: Value) -> String {
    switch value {
    case .list(let ref) where ref.isList: return "[" + ref.items.map(sortedRepr).joined(separator: ", ") + "]"
    case .tuple(let items):
        return "(" + items.map(sortedRepr).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
    case .dict(let ref):
        return "{" + sortedDictPositions(ref).map { sortedRepr(ref.keys[$0]) + ": " + sortedRepr(ref.values[$0]) }.joined(separator: ", ") + "}"
    default: return repr(value)
    }
}

/// Dict positions in pprint's order: sorted keys, falling back to type names for mixed types.
private func sortedDictPositions(_ ref: DictRef) -> [Int] {
    let positions = Array(0..<ref.count)
    return positions.sorted { a, b in
        let x = ref.keys[a], y = ref.keys[b]
        if let order = try? pyCompare(x, y, "<") { return order == -1 }
        return x.typeName < y.typeName
    }
}

private func prettyWrite(_ value: Value, indent: Int, allowance: Int, level: Int, to out: inout String) {
    let rep = sortedRepr(value)
    let maxWidth = 80 - indent - allowance
    if rep.unicodeScalars.count <= maxWidth {
        out += rep
        return
    }
    switch value {
    case .dict(let ref):
        out += "{"
        let positions = sortedDictPositions(ref)
        let inner = indent + 1
        for (n, position) in positions.enumerated() {
            let last = n == positions.count - 1
            let keyRep = sortedRepr(ref.keys[position])
            out += keyRep + ": "
            prettyWrite(ref.values[position], indent: inner + keyRep.unicodeScalars.count + 2, allowance: last ? allowance + 1 : 1, level: level + 1, to: &out)
            if !last { out += ",\n" + String(repeating: " ", count: inner) }
        }
        out += "}"
    case .list(let ref) where ref.isList:
        out += "["
        prettyItems(ref.items, indent: indent, allowance: allowance + 1, level: level, to: &out)
        out += "]"
    case .tuple(let items):
        out += "("
        let end = items.count == 1 ? ",)" : ")"
        prettyItems(items, indent: indent, allowance: allowance + end.count, level: level, to: &out)
        out += end
    case .string(let s) where !s.isEmpty:
        prettyString(s, indent: indent, allowance: allowance, level: level + 1, to: &out)
    default:
        out += rep
    }
}

private func prettyItems(_ items: [Value], indent: Int, allowance: Int, level: Int, to out: inout String) {
    let inner = indent + 1
    for (n, item) in items.enumerated() {
        let last = n == items.count - 1
        if n > 0 { out += ",\n" + String(repeating: " ", count: inner) }
        prettyWrite(item, indent: inner, allowance: last ? allowance : 1, level: level + 1, to: &out)
    }
}

private func prettyString(_ s: String, indent: Int, allowance: Int, level: Int, to out: inout String) {
    var indent = indent
    var allowance = allowance
    if level == 1 { indent += 1; allowance += 1 }
    let lines = pySplitlines(s, keepends: true)
    var chunks: [String] = []
    var maxWidth1 = 80 - indent
    let maxWidth = 80 - indent
    var lastRep = ""
    for (i, line) in lines.enumerated() {
        let rep = reprString(line)
        lastRep = rep
        if i == lines.count - 1 { maxWidth1 -= allowance }
        if rep.unicodeScalars.count <= maxWidth1 {
            chunks.append(rep)
            continue
        }
        // Alternating runs of non-space then space, as re.findall(r'\S*\s*') splits them.
        var parts: [String] = []
        var current = ""
        var inSpace = false
        for c in line.unicodeScalars {
            let space = isPySpace(c)
            if !space && inSpace { parts.append(current); current = ""; inSpace = false }
            if space { inSpace = true }
            current.unicodeScalars.append(c)
        }
        if !current.isEmpty { parts.append(current) }
        var maxWidth2 = maxWidth
        var accumulated = ""
        for (j, part) in parts.enumerated() {
            let candidate = accumulated + part
            if j == parts.count - 1 && i == lines.count - 1 { maxWidth2 -= allowance }
            if reprString(candidate).unicodeScalars.count > maxWidth2 {
                if !accumulated.isEmpty { chunks.append(reprString(accumulated)) }
                accumulated = part
            } else {
                accumulated = candidate
            }
        }
        if !accumulated.isEmpty { chunks.append(reprString(accumulated)) }
    }
    if chunks.count == 1 {
        out += lastRep
        return
    }
    if level == 1 { out += "(" }
    for (i, chunk) in chunks.enumerated() {
        if i > 0 { out += "\n" + String(repeating: " ", count: indent) }
        out += chunk
    }
    if level == 1 { out += ")" }
}
