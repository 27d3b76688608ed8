// Python's `float()` and `int()` on strings, as the `float` and `int` filters use them.

/// Python's `float(x)` for str/number arguments.
func pyFloat(_ value: Value) throws(TemplateError) -> Double {
    switch value {
    case .float(let d): return d
    case .int(let i): return Double(i)
    case .bool(let b): return b ? 1 : 0
    case .bigInt(let b):
        let d = b.doubleValue
        if d.isInfinite { throw TemplateError(.overflow, "int too large to convert to float") }
        return d
    case .string(let s), .markup(let s):
        if let d = parsePythonFloat(s) { return d }
        throw TemplateError(.value, "could not convert string to float: \(repr(value))")
    case .undefined(let u): throw u.error
    default:
        throw TemplateError(.type, "float() argument must be a string or a real number, not '\(value.typeName)'")
    }
}

/// Python's float literal grammar as `float(str)` accepts it: surrounding whitespace,
/// underscores between digits, inf/infinity/nan in any case.
func parsePythonFloat(_ text: String) -> Double? {
    let trimmed = pyStrip(text, nil)
    let scalars = Array(trimmed.unicodeScalars)
    guard !scalars.isEmpty else { return nil }
    var negative = false
    var body = scalars[...]
    if body.first == "+" || body.first == "-" { negative = body.first == "-"; body = body.dropFirst() }
    let word = pyLower(scalarString(body))
    if word == "inf" || word == "infinity" { return negative ? -.infinity : .infinity }
    if word == "nan" { return .nan }
    // Digits (any Unicode decimal digit counts, as in Python) with single underscores between them.
    var cleaned = negative ? "-" : ""
    var previousDigit = false
    var sawDigit = false
    var i = body.startIndex
    while i < body.endIndex {
        let c = body[i]
        if isPyDecimal(c) {
            let digit = c.properties.numericType == .decimal ? Int(c.properties.numericValue ?? 0) : 0
            cleaned += String(digit)
            previousDigit = true
            sawDigit = true
        } else if c == "_" {
            let next = body.index(after: i)
            guard previousDigit, next < body.endIndex, isPyDecimal(body[next]) else { return nil }
            previousDigit = false
        } else if c == "." || c == "e" || c == "E" || c == "+" || c == "-" {
            cleaned.unicodeScalars.append(c)
            previousDigit = false
        } else {
            return nil
        }
        i = body.index(after: i)
    }
    guard sawDigit else { return nil }
    // Swift's Double(String) accepts hex and "inf"; the grammar above already excluded those.
    return Double(cleaned)
}

/// Python's `int(str, base)`; nil when Python would raise ValueError.
func parsePythonInt(_ text: String, base: Int) -> Value? {
    var s = pyStrip(text, nil)[...]
    var negative = false
    if s.first == "+" || s.first == "-" { negative = s.first == "-"; s = s.dropFirst() }
    var radix = base
    let lower = pyLower(String(s))
    if base == 0 || base == 16 || base == 8 || base == 2 {
        for (prefix, prefixBase) in [("0x", 16), ("0o", 8), ("0b", 2)] where lower.hasPrefix(prefix) {
            if base == 0 || base == prefixBase {
                radix = prefixBase
                s = s.dropFirst(2)
                // A single underscore may follow the prefix.
                if s.first == "_" { s = s.dropFirst() }
            }
            break
        }
        if radix == 0 {
            radix = 10
            // Base 0 forbids leading zeros on a non-zero decimal.
            let digits = s.filter { $0 != "_" }
            if digits.count > 1, digits.first == "0", digits.contains(where: { $0 != "0" }) { return nil }
        }
    }
    guard radix >= 2 && radix <= 36, !s.isEmpty else { return nil }
    var result = BigInt(0)
    var small = 0
    var overflowed = false
    var previousUnderscore = true
    for c in s.unicodeScalars {
        if c == "_" {
            if previousUnderscore { return nil }
            previousUnderscore = true
            continue
        }
        previousUnderscore = false
        var digit: Int
        if isPyDecimal(c) {
            digit = Int(c.properties.numericValue ?? 0)
        } else if c.isASCII && isPyAlpha(c) {
            digit = Int((c.value | 0x20) - 0x61) + 10
        } else {
            return nil
        }
        guard digit < radix else { return nil }
        if !overflowed {
            let (m, o1) = small.multipliedReportingOverflow(by: radix)
            let (a, o2) = m.addingReportingOverflow(digit)
            if o1 || o2 {
                overflowed = true
                result = BigInt(small).multipliedBySmall(UInt32(radix)).addingSmall(UInt32(digit))
            } else {
                small = a
            }
        } else {
            result = result.multipliedBySmall(UInt32(radix)).addingSmall(UInt32(digit))
        }
    }
    if previousUnderscore { return nil }
    if !overflowed { return .int(negative ? -small : small) }
    return (negative ? -result : result).normalized
}
