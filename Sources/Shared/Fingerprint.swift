// FNV-1a over a sequence of texts, each followed by a separator byte (so "ab","c" and "a","bc"
// differ): the supervisor's config hash and the watcher's fingerprints of skipped objects.
public struct Fingerprint: Sendable {
    public private(set) var value: UInt64 = 0xcbf29ce484222325

    public init() {}

    public init(_ parts: [String]) {
        for part in parts { mix(part) }
    }

    /// `text`, then a byte no UTF-8 text holds: parts mixed one after the other stay apart.
    public mutating func mix(_ text: String) {
        mixBytes(of: text)
        value = (value ^ 0xff) &* 0x100000001b3
    }

    /// The bytes of `text` alone (FNV-1a as is, without `mix`'s separator).
    public mutating func mixBytes(of text: String) {
        for byte in text.utf8 { value = (value ^ UInt64(byte)) &* 0x100000001b3 }
    }

    /// Sixteen hex digits.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
