// Python's `round()` for the `round` filter: half to even, correctly rounded decimals.

#if canImport(Glibc)
import Glibc
#endif

/// Python's `round(x)` for a float: half to even, result an int.
func roundHalfEven(_ d: Double) throws(TemplateError) -> Value {
    if d.isNaN { throw TemplateError(.value, "cannot convert float NaN to integer") }
    if d.isInfinite { throw TemplateError(.overflow, "cannot convert float infinity to integer") }
    return floatToInteger(d.rounded(.toNearestOrEven))
}

/// Python's `round(x, n)` for a float: correctly rounded to `n` decimals.
func roundFloat(_ d: Double, _ digits: Int) -> Double {
    if !d.isFinite || d == 0 { return d }
    if digits > 323 { return d }
    if digits < -308 { return 0.0 * d }
    if digits >= 0 {
        let text = cFormat("%.\(digits)f", d)
        return Double(text) ?? d
    }
    let scale = pow(10.0, Double(-digits))
    let rounded = (d / scale).rounded(.toNearestOrEven) * scale
    return rounded == 0 ? copysign(0, d) : rounded
}

/// Python's `round(int, n)` for n < 0: half to even on the dropped digits.
func roundInteger(_ value: Value, _ digits: Int) -> Value {
    guard digits < 0, let i = value.intValue else { return value.intValue.map(Value.int) ?? value }
    if digits < -18 { return .int(0) }
    var scale = 1
    for _ in 0..<(-digits) { scale *= 10 }
    var quotient = i / scale
    var remainder = i % scale
    if remainder < 0 { remainder += scale; quotient -= 1 }
    if remainder * 2 > scale || (remainder * 2 == scale && quotient % 2 != 0) { quotient += 1 }
    return .int(quotient * scale)
}

/// Python's `10 ** n` as a float: the int converted (correctly rounded) for n >= 0, C's
/// `pow` for negative n.
func pow10(_ n: Int) -> Double {
    if n >= 0 { return Double("1e\(n)") ?? .infinity }
    return pow(10.0, Double(n))
}
