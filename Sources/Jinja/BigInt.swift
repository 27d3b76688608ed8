// Python ints are unbounded: values past `Int` live here, in sign-magnitude form.

public struct BigInt: Equatable, Hashable, Comparable, CustomStringConvertible, Sendable {
    /// Magnitude, little-endian base-2^32 limbs, no trailing zero limbs (zero is empty).
    var limbs: [UInt32]
    var negative: Bool

    init(limbs: [UInt32], negative: Bool) {
        var trimmed = limbs
        while let last = trimmed.last, last == 0 { trimmed.removeLast() }
        self.limbs = trimmed
        self.negative = trimmed.isEmpty ? false : negative
    }

    public init(_ value: Int) {
        let magnitude = value.magnitude
        self.init(limbs: [UInt32(truncatingIfNeeded: magnitude), UInt32(truncatingIfNeeded: magnitude >> 32)], negative: value < 0)
    }

    public init?(_ text: String) {
        var digits = Substring(text)
        var negative = false
        if digits.first == "-" { negative = true; digits = digits.dropFirst() } else if digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty else { return nil }
        var result = BigInt(limbs: [], negative: false)
        for character in digits {
            guard let digit = character.wholeNumberValue, character.isASCII else {
                if character == "_" { continue }
                return nil
            }
            result = result.multipliedBySmall(10).addingSmall(UInt32(digit))
        }
        self.init(limbs: result.limbs, negative: negative)
    }

    public var isZero: Bool { limbs.isEmpty }

    /// The value as an `Int` when it fits.
    public var intValue: Int? {
        if limbs.count > 2 { return nil }
        var magnitude: UInt64 = 0
        for (i, limb) in limbs.enumerated() { magnitude |= UInt64(limb) << (32 * UInt64(i)) }
        if negative {
            if magnitude <= UInt64(Int.max) { return -Int(magnitude) }
            if magnitude == UInt64(Int.max) + 1 { return Int.min }
            return nil
        }
        return magnitude <= UInt64(Int.max) ? Int(magnitude) : nil
    }

    public var doubleValue: Double {
        var result = 0.0
        for limb in limbs.reversed() { result = result * 4294967296.0 + Double(limb) }
        return negative ? -result : result
    }

    /// `.int` when the value fits, else `.bigInt`.
    public var normalized: Value {
        if let i = intValue { return .int(i) }
        return .bigInt(self)
    }

    func multipliedBySmall(_ factor: UInt32) -> BigInt {
        var out: [UInt32] = []
        out.reserveCapacity(limbs.count + 1)
        var carry: UInt64 = 0
        for limb in limbs {
            let product = UInt64(limb) * UInt64(factor) + carry
            out.append(UInt32(truncatingIfNeeded: product))
            carry = product >> 32
        }
        if carry > 0 { out.append(UInt32(carry)) }
        return BigInt(limbs: out, negative: negative)
    }

    func addingSmall(_ value: UInt32) -> BigInt {
        var out = limbs
        var carry = UInt64(value)
        var i = 0
        while carry > 0 {
            if i == out.count { out.append(0) }
            let sum = UInt64(out[i]) + carry
            out[i] = UInt32(truncatingIfNeeded: sum)
            carry = sum >> 32
            i += 1
        }
        return BigInt(limbs: out, negative: negative)
    }

    /// Divides the magnitude by a small divisor, returning quotient and remainder.
    func dividedBySmall(_ divisor: UInt32) -> (BigInt, UInt32) {
        var out = [UInt32](repeating: 0, count: limbs.count)
        var remainder: UInt64 = 0
        for i in stride(from: limbs.count - 1, through: 0, by: -1) {
            let current = (remainder << 32) | UInt64(limbs[i])
            out[i] = UInt32(current / UInt64(divisor))
            remainder = current % UInt64(divisor)
        }
        return (BigInt(limbs: out, negative: negative), UInt32(remainder))
    }

    public var description: String {
        if limbs.isEmpty { return "0" }
        var chunks: [UInt32] = []
        var current = BigInt(limbs: limbs, negative: false)
        while !current.isZero {
            let (quotient, remainder) = current.dividedBySmall(1_000_000_000)
            chunks.append(remainder)
            current = quotient
        }
        var text = negative ? "-" : ""
        text += String(chunks[chunks.count - 1])
        for chunk in chunks.dropLast().reversed() {
            let part = String(chunk)
            text += String(repeating: "0", count: 9 - part.count) + part
        }
        return text
    }

    // MARK: Magnitude arithmetic

    static func compareMagnitude(_ a: [UInt32], _ b: [UInt32]) -> Int {
        if a.count != b.count { return a.count < b.count ? -1 : 1 }
        for i in stride(from: a.count - 1, through: 0, by: -1) where a[i] != b[i] {
            return a[i] < b[i] ? -1 : 1
        }
        return 0
    }

    static func addMagnitude(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(max(a.count, b.count) + 1)
        var carry: UInt64 = 0
        for i in 0..<max(a.count, b.count) {
            let sum = UInt64(i < a.count ? a[i] : 0) + UInt64(i < b.count ? b[i] : 0) + carry
            out.append(UInt32(truncatingIfNeeded: sum))
            carry = sum >> 32
        }
        if carry > 0 { out.append(UInt32(carry)) }
        return out
    }

    /// a - b where |a| >= |b|.
    static func subtractMagnitude(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(a.count)
        var borrow: Int64 = 0
        for i in 0..<a.count {
            var difference = Int64(a[i]) - Int64(i < b.count ? b[i] : 0) - borrow
            if difference < 0 { difference += 1 << 32; borrow = 1 } else { borrow = 0 }
            out.append(UInt32(difference))
        }
        return out
    }

    static func multiplyMagnitude(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] {
        if a.isEmpty || b.isEmpty { return [] }
        var out = [UInt32](repeating: 0, count: a.count + b.count)
        for i in 0..<a.count {
            var carry: UInt64 = 0
            for j in 0..<b.count {
                let current = UInt64(a[i]) * UInt64(b[j]) + UInt64(out[i + j]) + carry
                out[i + j] = UInt32(truncatingIfNeeded: current)
                carry = current >> 32
            }
            var k = i + b.count
            while carry > 0 {
                let current = UInt64(out[k]) + carry
                out[k] = UInt32(truncatingIfNeeded: current)
                carry = current >> 32
                k += 1
            }
        }
        return out
    }

    /// Truncating division of magnitudes by shift-and-subtract (big operands are rare).
    static func divideMagnitude(_ a: [UInt32], _ b: [UInt32]) -> ([UInt32], [UInt32]) {
        if compareMagnitude(a, b) < 0 { return ([], a) }
        if b.count == 1 {
            let (q, r) = BigInt(limbs: a, negative: false).dividedBySmall(b[0])
            return (q.limbs, r == 0 ? [] : [r])
        }
        var quotient = [UInt32](repeating: 0, count: a.count)
        var remainder: [UInt32] = []
        for bit in stride(from: a.count * 32 - 1, through: 0, by: -1) {
            // remainder = remainder << 1 | bit
            var carry: UInt32 = (a[bit / 32] >> UInt32(bit % 32)) & 1
            for i in 0..<remainder.count {
                let next = remainder[i] >> 31
                remainder[i] = (remainder[i] << 1) | carry
                carry = next
            }
            if carry != 0 { remainder.append(carry) }
            if compareMagnitude(remainder, b) >= 0 {
                remainder = BigInt(limbs: subtractMagnitude(remainder, b), negative: false).limbs
                quotient[bit / 32] |= 1 << UInt32(bit % 32)
            }
        }
        return (BigInt(limbs: quotient, negative: false).limbs, remainder)
    }

    // MARK: Signed arithmetic

    public static func + (lhs: BigInt, rhs: BigInt) -> BigInt {
        if lhs.negative == rhs.negative { return BigInt(limbs: addMagnitude(lhs.limbs, rhs.limbs), negative: lhs.negative) }
        if compareMagnitude(lhs.limbs, rhs.limbs) >= 0 {
            return BigInt(limbs: subtractMagnitude(lhs.limbs, rhs.limbs), negative: lhs.negative)
        }
        return BigInt(limbs: subtractMagnitude(rhs.limbs, lhs.limbs), negative: rhs.negative)
    }

    public static prefix func - (value: BigInt) -> BigInt { BigInt(limbs: value.limbs, negative: !value.negative) }

    public static func - (lhs: BigInt, rhs: BigInt) -> BigInt { lhs + (-rhs) }

    public static func * (lhs: BigInt, rhs: BigInt) -> BigInt {
        BigInt(limbs: multiplyMagnitude(lhs.limbs, rhs.limbs), negative: lhs.negative != rhs.negative)
    }

    /// Python's floor division and modulo (`divmod`); nil when dividing by zero.
    public func floorDivMod(_ divisor: BigInt) -> (BigInt, BigInt)? {
        if divisor.isZero { return nil }
        let (q, r) = BigInt.divideMagnitude(limbs, divisor.limbs)
        var quotient = BigInt(limbs: q, negative: negative != divisor.negative)
        var remainder = BigInt(limbs: r, negative: negative)
        if !remainder.isZero, remainder.negative != divisor.negative {
            quotient = quotient - BigInt(1)
            remainder = remainder + divisor
        }
        return (quotient, remainder)
    }

    public func power(_ exponent: Int) -> BigInt {
        var result = BigInt(1)
        var base = self
        var e = exponent
        while e > 0 {
            if e & 1 == 1 { result = result * base }
            e >>= 1
            if e > 0 { base = base * base }
        }
        return result
    }

    public static func < (lhs: BigInt, rhs: BigInt) -> Bool {
        if lhs.negative != rhs.negative { return lhs.negative }
        let c = compareMagnitude(lhs.limbs, rhs.limbs)
        return lhs.negative ? c > 0 : c < 0
    }
}
