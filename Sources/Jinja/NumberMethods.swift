// The int, bool and float methods templates call: `x.bit_length()`, `f.is_integer()` …

func callNumberMethod(_ value: Value, _ name: String, _ args: Arguments) throws(TemplateError) -> Value? {
    switch (value, name) {
    case (_, "conjugate"):
        _ = try positionalArguments(args, "conjugate", min: 0, max: 0, owner: value.typeName)
        if case .bool(let b) = value { return .int(b ? 1 : 0) }
        return value
    case (.float(let d), "is_integer"):
        _ = try positionalArguments(args, "is_integer", min: 0, max: 0, owner: "float")
        return .bool(d.isFinite && d.rounded(.towardZero) == d)
    case (.float(let d), "as_integer_ratio"):
        _ = try positionalArguments(args, "as_integer_ratio", min: 0, max: 0, owner: "float")
        if d.isNaN { throw TemplateError(.value, "cannot convert NaN to integer ratio") }
        if d.isInfinite { throw TemplateError(.overflow, "cannot convert Infinity to integer ratio") }
        var numerator = d
        var denominator = 1.0
        while numerator.rounded(.towardZero) != numerator && denominator < 1e300 {
            numerator *= 2
            denominator *= 2
        }
        return .tuple([floatToInteger(numerator), floatToInteger(denominator)])
    case (.float(let d), "hex"):
        _ = try positionalArguments(args, "hex", min: 0, max: 0, owner: "float")
        return .string(cFormat("%a", d))
    case (_, "as_integer_ratio"):
        _ = try positionalArguments(args, "as_integer_ratio", min: 0, max: 0, owner: value.typeName)
        if case .bool(let b) = value { return .tuple([.int(b ? 1 : 0), .int(1)]) }
        return .tuple([value, .int(1)])
    case (_, "bit_length"):
        _ = try positionalArguments(args, "bit_length", min: 0, max: 0, owner: value.typeName)
        switch value {
        case .bigInt(let b):
            guard let top = b.limbs.last else { return .int(0) }
            return .int((b.limbs.count - 1) * 32 + (32 - top.leadingZeroBitCount))
        default:
            let magnitude = (value.intValue ?? 0).magnitude
            return .int(magnitude.bitWidth - magnitude.leadingZeroBitCount)
        }
    default:
        return nil
    }
}
