// Checking JSON without building values, and walking text already checked: what the template
// engine's lazily read documents stand on.

extension JSONReader {
    /// Checks that `bytes` hold one JSON value, failing with the error `parse` would report,
    /// without building anything. Documents read lazily are checked once this way, so that
    /// the unchecked walks below can never meet malformed text.
    public static func validate(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONError) {
        var ends = JSONContainerEnds(recording: false)
        try validate(bytes, containerEnds: &ends)
    }

    /// `validate`, noting where the larger objects and arrays end on the way.
    public static func validate(_ bytes: UnsafeBufferPointer<UInt8>, containerEnds: inout JSONContainerEnds) throws(JSONError) {
        // Positions are noted in 32 bits.
        if bytes.count > Int(UInt32.max) { containerEnds = JSONContainerEnds(recording: false) }
        // The builder type is never used: checking builds no values.
        var parser = Parser<JSONValueBuilder>(bytes: bytes)
        parser.skipWhitespace()
        try parser.skipValue(depth: 0, &containerEnds)
        parser.skipWhitespace()
        if parser.position != bytes.count { throw parser.error("Extra data after the JSON value") }
        containerEnds.releaseUnusedCapacity()
    }

    /// The position after the whitespace at `position` in text `validate` accepted.
    @inline(__always)
    public static func skipValidatedWhitespace(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int) -> Int {
        var position = position
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return position
            }
        }
        return position
    }

    /// The end of the string whose opening quote is at `position` (the position after its
    /// closing quote), in text `validate` accepted.
    @inlinable @inline(__always)
    public static func endOfValidatedString(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int) -> Int {
        var position = position + 1
        while position < bytes.count {
            position += JSONReader.plainBytes(bytes, from: position, stoppingAtControlCharacters: false)
            guard position < bytes.count else { break }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") { return position + 1 }
            position += byte == UInt8(ascii: "\\") ? 2 : 1
        }
        return bytes.count
    }

    /// How many bytes from `position` on, read eight at a time, are no quote, backslash or
    /// (when asked) control character or non-ASCII byte; the bytes after the last whole eight
    /// are left to the caller. Strings are most of a Kubernetes object's text.
    @inlinable @inline(__always)
    public static func plainBytes(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int, stoppingAtControlCharacters: Bool,
                                  stoppingAtNonASCII: Bool = false) -> Int {
        #if _endian(big)
        // The lowest flagged byte below is the first in memory only on little-endian machines.
        return 0
        #else
        guard let base = bytes.baseAddress else { return 0 }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        var offset = 0
        // Positions inside a buffer: the sums cannot overflow.
        while position &+ offset &+ 8 <= bytes.count {
            let word = UnsafeRawPointer(base + (position &+ offset)).loadUnaligned(as: UInt64.self)
            // A byte's high bit is set in `found` where that byte of `quote` or `backslash` is
            // zero (or, for the control test, the byte is below 0x20). The lowest flag is
            // exact; a borrow can raise false ones above it, which are never read.
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            var found = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
            if stoppingAtControlCharacters { found |= (word &- ones &* 0x20) & ~word }
            if stoppingAtNonASCII { found |= word }
            found &= highBits
            if found != 0 { return offset &+ found.trailingZeroBitCount &>> 3 }
            offset &+= 8
        }
        return offset
        #endif
    }

    /// The end of the value that starts at `position`, in text `validate` accepted: a larger
    /// object or array ends where `containerEnds` says, a smaller one is stepped over by
    /// counting brackets outside strings.
    public static func endOfValidatedValue(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int,
                                           containerEnds: JSONContainerEnds) -> Int {
        var hint = 0
        return endOfValidatedValue(bytes, from: position, containerEnds: containerEnds, hint: &hint)
    }

    /// `endOfValidatedValue`, a container's end searched for from `hint` on, as
    /// `JSONContainerEnds.end(ofContainerAt:hint:)` searches (and leaves `hint`). Inlined, so
    /// that reading an object's members steps to the noted end of each large one without a
    /// call in between.
    @inlinable @inline(__always)
    public static func endOfValidatedValue(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int,
                                           containerEnds: JSONContainerEnds, hint: inout Int) -> Int {
        if position < bytes.count, bytes[position] == UInt8(ascii: "{") || bytes[position] == UInt8(ascii: "["),
           let end = containerEnds.end(ofContainerAt: position, hint: &hint) {
            return end
        }
        return endOfValueScanned(bytes, from: position)
    }

    /// The end of the value at `position` found by reading it: a container's by counting
    /// brackets outside strings.
    public static func endOfValueScanned(_ bytes: UnsafeBufferPointer<UInt8>, from position: Int) -> Int {
        var position = position
        guard position < bytes.count else { return position }
        switch bytes[position] {
        case UInt8(ascii: "\""):
            return endOfValidatedString(bytes, from: position)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "\""):
                    position = endOfValidatedString(bytes, from: position)
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return position + 1 }
                default:
                    break
                }
                position += 1
            }
            return position
        default:
            // A number or a literal: it runs to the next delimiter.
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09: return position
                default: position += 1
                }
            }
            return position
        }
    }
}

extension JSONReader.Parser {
    /// `parseValue` without the values: the same checks in the same order, so the same
    /// errors at the same places.
    mutating func skipValue(depth: Int, _ ends: inout JSONContainerEnds) throws(JSONError) {
        guard position < bytes.count else { throw error("Expecting value") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            let note = ends.open(at: position)
            try skipObject(depth: depth + 1, &ends)
            ends.close(note, at: position)
        case UInt8(ascii: "["):
            let note = ends.open(at: position)
            try skipArray(depth: depth + 1, &ends)
            ends.close(note, at: position)
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
        default: throw error("Expecting value")
        }
    }

    mutating func skipObject(depth: Int, _ ends: inout JSONContainerEnds) throws(JSONError) {
        if depth > JSONReader.maximumDepth { throw error("Nesting deeper than \(JSONReader.maximumDepth) levels") }
        position += 1
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error("Expecting property name enclosed in double quotes")
            }
            try skipString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw error("Expecting ':' delimiter")
            }
            position += 1
            skipWhitespace()
            // A string, the commonest value, is stepped over here, without a call.
            if position < bytes.count, bytes[position] == UInt8(ascii: "\"") {
                try skipString()
            } else {
                try skipValue(depth: depth, &ends)
            }
            skipWhitespace()
            guard position < bytes.count else { throw error("Expecting ',' delimiter") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "}") { position += 1; return }
            throw error("Expecting ',' delimiter")
        }
    }

    mutating func skipArray(depth: Int, _ ends: inout JSONContainerEnds) throws(JSONError) {
        if depth > JSONReader.maximumDepth { throw error("Nesting deeper than \(JSONReader.maximumDepth) levels") }
        position += 1
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            try skipValue(depth: depth, &ends)
            skipWhitespace()
            guard position < bytes.count else { throw error("Expecting ',' delimiter") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "]") { position += 1; return }
            throw error("Expecting ',' delimiter")
        }
    }

    /// `parseString`'s checks (control characters, escapes, `\uXXXX` and surrogate pairs,
    /// termination) without decoding.
    @inline(__always)
    mutating func skipString() throws(JSONError) {
        let start = position
        // Most strings are short and plain: they are stepped over in a local position (the
        // parser's own is stored back only to leave, or for an escape or an error).
        var scan = position &+ 1
        let count = bytes.count
        while scan < count {
            scan &+= JSONReader.plainBytes(bytes, from: scan, stoppingAtControlCharacters: true)
            guard scan < count else { break }
            let byte = bytes[scan]
            if byte == UInt8(ascii: "\"") {
                position = scan &+ 1
                return
            }
            if byte != UInt8(ascii: "\\") && byte >= 0x20 {
                scan &+= 1
                continue
            }
            position = scan
            if byte < 0x20 { throw error("Invalid control character in string") }
            if try skipEscape() { scan = position } else { break }
        }
        position = count
        throw error("Unterminated string starting", at: start)
    }

    /// The escape whose backslash is at `position`, stepped over (false: the text ends first).
    private mutating func skipEscape() throws(JSONError) -> Bool {
        position += 1
        guard position < bytes.count else { return false }
        let escape = bytes[position]
        position += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return true
        case UInt8(ascii: "u"):
            _ = try parseUnicodeEscape()
            return true
        default:
            throw error("Invalid \\escape", at: position - 2)
        }
    }
}

/// Where the objects and arrays of at least `minimumLength` bytes of a validated document end,
/// by where they start: walking over one of them later (to reach the members after it) costs
/// a binary search instead of a scan, however deep the document is read.
public struct JSONContainerEnds: Sendable {
    /// Smaller containers are scanned faster than searched for, and most of a document's
    /// containers are small: a handful of entries per Kubernetes object.
    public static let minimumLength = 256
    private var recording: Bool
    /// (start, end) by start: an entry is made when a container opens (after its parent's)
    /// and dropped when it closes short, by which time its smaller children are dropped too.
    private var spans: [Span] = []

    /// A noted container: where it starts and ends, and the index of the first entry after
    /// the entries of the containers inside it (where the search for its next sibling starts).
    private struct Span {
        var start: UInt32
        var end: UInt32
        var next: UInt32
    }

    public init(recording: Bool = true) { self.recording = recording }

    @inline(__always) mutating func open(at position: Int) -> Int {
        guard recording else { return -1 }
        spans.append(Span(start: UInt32(truncatingIfNeeded: position), end: 0, next: 0))
        return spans.count - 1
    }

    @inline(__always) mutating func close(_ note: Int, at end: Int) {
        guard note >= 0 else { return }
        if end - Int(spans[note].start) < JSONContainerEnds.minimumLength {
            spans.removeLast()
        } else {
            spans[note].end = UInt32(truncatingIfNeeded: end)
            spans[note].next = UInt32(truncatingIfNeeded: spans.count)
        }
    }

    /// Many small documents may be kept (one per Kubernetes object): no spare room each.
    mutating func releaseUnusedCapacity() {
        if spans.capacity > spans.count { spans = spans.withUnsafeBufferPointer { Array($0) } }
    }

    /// The position after the object or array that starts at `start`, if it was noted.
    public func end(ofContainerAt start: Int) -> Int? {
        var hint = 0
        return end(ofContainerAt: start, hint: &hint)
    }

    /// The start of the noted container that ends at `end` (the position after it) directly
    /// inside the noted container that starts at `parentStart`, whose entry `hint` may be; nil
    /// when there is none (a small container is not noted, nor is any inside one). Its
    /// siblings are stepped through, not searched: an object has few large members.
    public func startOfChild(endingAt end: Int, inContainerAt parentStart: Int, hint: Int) -> Int? {
        var parent = hint
        if parent < 0 || parent >= spans.count || spans[parent].start != UInt32(truncatingIfNeeded: parentStart) {
            parent = 0
            guard self.end(ofContainerAt: parentStart, hint: &parent) != nil else { return nil }
        }
        let wanted = UInt32(truncatingIfNeeded: end)
        let after = Int(spans[parent].next)
        var child = parent + 1
        while child < after {
            if spans[child].end == wanted { return Int(spans[child].start) }
            child = Int(spans[child].next)
        }
        return nil
    }

    /// `end(ofContainerAt:)` searching forward from `hint`, an index no further than the
    /// container's, which is left at the container's index (or where it would be). Reading a
    /// container's members in order, each is a few entries after the one before, where a
    /// search of the whole table would go through its many levels for each.
    public func end(ofContainerAt start: Int, hint: inout Int) -> Int? {
        let wanted = UInt32(truncatingIfNeeded: start)
        var low = hint
        if low >= 0 && low < spans.count {
            // Reading members in order, the container wanted is most often the hint's first
            // child (the hint is their object) or its next sibling (the hint is the member
            // before): one step, where a search would go through the entries in between.
            let span = spans[low]
            if span.start == wanted { return Int(span.end) }
            if span.start < wanted {
                low = wanted < span.end ? low + 1 : Int(span.next)
                if low < spans.count && spans[low].start == wanted {
                    hint = low
                    return Int(spans[low].end)
                }
            }
        }
        if low < 0 || low > spans.count || (low > 0 && spans[low - 1].start >= wanted) {
            low = 0
        }
        // Gallop to a bound, then search between.
        var step = 1
        var high = low
        while high < spans.count && spans[high].start < wanted {
            low = high + 1
            high += step
            step *= 2
        }
        high = Swift.min(high, spans.count)
        while low < high {
            let middle = (low + high) / 2
            if spans[middle].start < wanted { low = middle + 1 } else { high = middle }
        }
        hint = low
        guard low < spans.count, spans[low].start == wanted else { return nil }
        return Int(spans[low].end)
    }
}
