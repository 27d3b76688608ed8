// Python's str operations by code point (lower, split, find, replace, strip, center …), shared
// by the str methods and the filters. Searches run on UTF-8 bytes (a byte match is a code
// point match) and positions are reported in code points.

/// The lowercase mapping of `scalars[i]`, with Python's final-sigma rule: a capital sigma
/// after a cased letter and not before one becomes 'ς'.
private func lowerMapping(_ scalars: [Unicode.Scalar], _ i: Int) -> String {
    let c = scalars[i]
    guard c.value == 0x3A3 else { return c.properties.lowercaseMapping }
    var j = i - 1
    while j >= 0 && scalars[j].properties.isCaseIgnorable { j -= 1 }
    guard j >= 0 && isPyCased(scalars[j]) else { return "\u{3C3}" }
    var k = i + 1
    while k < scalars.count && scalars[k].properties.isCaseIgnorable { k += 1 }
    return k < scalars.count && isPyCased(scalars[k]) ? "\u{3C3}" : "\u{3C2}"
}

/// Python's `str.lower()`.
func pyLower(_ s: String) -> String {
    if let mapped = asciiMapped(s, .lower) { return mapped }
    let scalars = Array(s.unicodeScalars)
    var out = ""
    for i in scalars.indices { out += lowerMapping(scalars, i) }
    return out
}

/// Python's `upper` or `lower` of ASCII text: the letters in `letters` get bit 0x20 set
/// (lowering) or cleared (uppering); no other byte changes.
struct ASCIICaseChange: Sendable {
    let letters: ClosedRange<UInt8>
    let lowering: Bool

    static let upper = ASCIICaseChange(letters: 0x61...0x7A, lowering: false)
    static let lower = ASCIICaseChange(letters: 0x41...0x5A, lowering: true)

    @inline(__always) func apply(_ byte: UInt8) -> UInt8 {
        guard letters.contains(byte) else { return byte }
        return lowering ? byte | 0x20 : byte & ~0x20
    }
}

/// `s` with its case changed, in one pass over its contiguous UTF-8 (a template's `upper` runs
/// once per server line), and `s` itself when nothing changes; nil when `s` is not all ASCII.
private func asciiMapped(_ s: String, _ change: ASCIICaseChange) -> String? {
    var text = s
    var ascii = true
    let mapped = text.withUTF8 { utf8 -> String? in
        var changes = false
        for byte in utf8 {
            if byte >= 0x80 {
                ascii = false
                return nil
            }
            if change.letters.contains(byte) { changes = true }
        }
        guard changes else { return nil }
        return String(unsafeUninitializedCapacity: utf8.count) { buffer in
            for i in 0..<utf8.count { buffer[i] = change.apply(utf8[i]) }
            return utf8.count
        }
    }
    if let mapped { return mapped }
    return ascii ? s : nil
}

/// Python's `str.upper()`.
func pyUpper(_ s: String) -> String {
    if let mapped = asciiMapped(s, .upper) { return mapped }
    var out = ""
    for c in s.unicodeScalars { out += c.properties.uppercaseMapping }
    return out
}

/// Python's `str.title()`: a cased character after a cased one is lowered, others title-cased.
func pyTitle(_ s: String) -> String {
    let scalars = Array(s.unicodeScalars)
    var out = ""
    var previousCased = false
    for (i, c) in scalars.enumerated() {
        out += previousCased ? lowerMapping(scalars, i) : c.properties.titlecaseMapping
        previousCased = isPyCased(c)
    }
    return out
}

/// Python's `str.capitalize()` (3.8+): the first character title-cased, the rest lowered.
func pyCapitalize(_ s: String) -> String {
    let scalars = Array(s.unicodeScalars)
    var out = ""
    for (i, c) in scalars.enumerated() {
        out += i == 0 ? c.properties.titlecaseMapping : lowerMapping(scalars, i)
    }
    return out
}

func pySwapcase(_ s: String) -> String {
    let scalars = Array(s.unicodeScalars)
    var out = ""
    for (i, c) in scalars.enumerated() {
        if isPyUpper(c) { out += lowerMapping(scalars, i) } else if isPyLower(c) { out += c.properties.uppercaseMapping } else { out.unicodeScalars.append(c) }
    }
    return out
}

/// Whether UTF-8 text is all ASCII: then its bytes are its code points.
@inline(__always) func isASCII(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
    for byte in utf8 where byte >= 0x80 { return false }
    return true
}

@inline(__always) func isASCII(_ s: String) -> Bool {
    s.withUTF8Bytes { isASCII($0) }
}

extension String {
    /// `body` with the string's UTF-8: a native string's own bytes, read where they are
    /// (`withUTF8` needs a mutable copy, a retain and a release each time), another kind's
    /// in a copy.
    @inline(__always)
    func withUTF8Bytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return copy.withUTF8(body)
    }
}

/// Python's `str.casefold()`: Unicode full case folding.
func pyCasefold(_ s: String) -> String {
    if isASCII(s) { return pyLower(s) }
    var out = ""
    for scalar in s.unicodeScalars {
        if let folded = caseFoldingExceptions[scalar.value] { out += folded } else { out += scalar.properties.lowercaseMapping }
    }
    return out
}

/// Byte offset of the first occurrence of `needle` in `haystack[from..<to]`, or nil.
func findBytes(_ haystack: [UInt8], _ needle: [UInt8], from: Int = 0, to: Int? = nil) -> Int? {
    let end = to ?? haystack.count
    let n = needle.count
    if n == 0 { return from <= end ? from : nil }
    if end - from < n { return nil }
    let first = needle[0]
    var i = from
    let last = end - n
    while i <= last {
        if haystack[i] == first {
            var j = 1
            while j < n && haystack[i + j] == needle[j] { j += 1 }
            if j == n { return i }
        }
        i += 1
    }
    return nil
}

/// Byte offset of the last occurrence of `needle` in `haystack[from..<to]`, or nil.
func rfindBytes(_ haystack: [UInt8], _ needle: [UInt8], from: Int = 0, to: Int? = nil) -> Int? {
    let end = to ?? haystack.count
    let n = needle.count
    if end - from < n { return nil }
    var i = end - n
    while i >= from {
        var j = 0
        while j < n && haystack[i + j] == needle[j] { j += 1 }
        if j == n { return i }
        i -= 1
    }
    return nil
}

@inline(__always) private func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }

/// Code point count of `bytes[0..<offset]`.
private func codePointIndex(_ bytes: [UInt8], _ offset: Int) -> Int {
    var count = 0
    for i in 0..<offset where !isContinuation(bytes[i]) { count += 1 }
    return count
}

/// Byte offsets of every code point boundary, plus the end: `offsets[i]` starts code point i.
private func codePointOffsets(_ bytes: [UInt8]) -> [Int] {
    var offsets: [Int] = []
    offsets.reserveCapacity(bytes.count + 1)
    for i in bytes.indices where !isContinuation(bytes[i]) { offsets.append(i) }
    offsets.append(bytes.count)
    return offsets
}

func string(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

/// The byte range of `s[start:end]` (code point bounds), nil when start lies past the end.
func byteWindow(_ bytes: [UInt8], _ start: Int?, _ end: Int?) -> (Int, Int)? {
    if start == nil && end == nil { return (0, bytes.count) }
    let offsets = codePointOffsets(bytes)
    let count = offsets.count - 1
    let (lower, upper) = normalizedRange(start, end, count: count)
    if lower > count { return nil }
    if upper < lower { return (offsets[lower], offsets[lower] - 1) }
    return (offsets[lower], offsets[upper])
}

enum FindDirection { case forward, backward }

/// `str.find`/`rfind` in code points; -1 when absent.
func pyFind(_ s: String, _ sub: String, _ start: Int?, _ end: Int?, _ direction: FindDirection) -> Int {
    let bytes = Array(s.utf8)
    guard let (lower, upper) = byteWindow(bytes, start, end), upper >= lower else { return -1 }
    let needle = Array(sub.utf8)
    let found = direction == .forward ? findBytes(bytes, needle, from: lower, to: upper) : rfindBytes(bytes, needle, from: lower, to: upper)
    guard let found else { return -1 }
    return codePointIndex(bytes, found)
}

/// `str.count(sub, start, end)`.
func pyCount(_ s: String, _ sub: String, _ start: Int?, _ end: Int?) -> Int {
    let bytes = Array(s.utf8)
    guard let (lower, upper) = byteWindow(bytes, start, end), upper >= lower else { return 0 }
    let needle = Array(sub.utf8)
    if needle.isEmpty { return codePointIndex(bytes, upper) - codePointIndex(bytes, lower) + 1 }
    var count = 0
    var position = lower
    while let found = findBytes(bytes, needle, from: position, to: upper) {
        count += 1
        position = found + needle.count
    }
    return count
}

/// `str.replace(old, new, count)`.
func pyReplace(_ s: String, _ old: String, _ new: String, count: Int = -1) -> String {
    if count == 0 { return s }
    if old.isEmpty {
        var out = ""
        var remaining = count
        for c in s.unicodeScalars {
            if remaining != 0 { out += new; remaining -= 1 }
            out.unicodeScalars.append(c)
        }
        if remaining != 0 { out += new }
        return out
    }
    let bytes = Array(s.utf8)
    let needle = Array(old.utf8)
    guard var found = findBytes(bytes, needle) else { return s }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var position = 0
    var remaining = count
    let replacement = Array(new.utf8)
    while true {
        out.append(contentsOf: bytes[position..<found])
        out.append(contentsOf: replacement)
        position = found + needle.count
        remaining -= 1
        if remaining == 0 { break }
        guard let next = findBytes(bytes, needle, from: position) else { break }
        found = next
    }
    out.append(contentsOf: bytes[position...])
    return String(decoding: out, as: UTF8.self)
}

/// `str.split(sep, maxsplit)`; `sep == nil` splits on runs of whitespace.
func pySplit(_ s: String, _ sep: String?, maxsplit: Int = -1) throws(TemplateError) -> [String] {
    guard let sep else {
        var parts: [String] = []
        let scalars = Array(s.unicodeScalars)
        var i = 0
        var splits = 0
        while i < scalars.count {
            while i < scalars.count && isPySpace(scalars[i]) { i += 1 }
            if i == scalars.count { break }
            if maxsplit >= 0 && splits == maxsplit {
                parts.append(scalarString(scalars[i...]))
                return parts
            }
            let start = i
            while i < scalars.count && !isPySpace(scalars[i]) { i += 1 }
            parts.append(scalarString(scalars[start..<i]))
            splits += 1
        }
        return parts
    }
    if sep.isEmpty { throw TemplateError(.value, "empty separator") }
    let bytes = Array(s.utf8)
    let needle = Array(sep.utf8)
    var parts: [String] = []
    var position = 0
    var splits = 0
    while maxsplit < 0 || splits < maxsplit, let found = findBytes(bytes, needle, from: position) {
        parts.append(string(bytes[position..<found]))
        position = found + needle.count
        splits += 1
    }
    parts.append(string(bytes[position...]))
    return parts
}

/// `str.rsplit(sep, maxsplit)`.
func pyRSplit(_ s: String, _ sep: String?, maxsplit: Int = -1) throws(TemplateError) -> [String] {
    if maxsplit < 0 { return try pySplit(s, sep, maxsplit: maxsplit) }
    guard let sep else {
        var parts: [String] = []
        let scalars = Array(s.unicodeScalars)
        var i = scalars.count
        var splits = 0
        while i > 0 {
            while i > 0 && isPySpace(scalars[i - 1]) { i -= 1 }
            if i == 0 { break }
            if splits == maxsplit {
                parts.append(scalarString(scalars[0..<i]))
                break
            }
            let end = i
            while i > 0 && !isPySpace(scalars[i - 1]) { i -= 1 }
            parts.append(scalarString(scalars[i..<end]))
            splits += 1
        }
        return parts.reversed()
    }
    if sep.isEmpty { throw TemplateError(.value, "empty separator") }
    let bytes = Array(s.utf8)
    let needle = Array(sep.utf8)
    var parts: [String] = []
    var end = bytes.count
    var splits = 0
    while splits < maxsplit, let found = rfindBytes(bytes, needle, from: 0, to: end) {
        parts.append(string(bytes[(found + needle.count)..<end]))
        end = found
        splits += 1
    }
    parts.append(string(bytes[0..<end]))
    return parts.reversed()
}

func scalarString<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
    var out = ""
    out.unicodeScalars.append(contentsOf: scalars)
    return out
}

enum StripSide { case both, left, right }

/// `str.strip(chars)`; `chars == nil` strips whitespace.
func pyStrip(_ s: String, _ chars: String?, _ side: StripSide = .both) -> String {
    let scalars = s.unicodeScalars
    let set: Set<Unicode.Scalar>? = chars.map { Set($0.unicodeScalars) }
    func strips(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPySpace(c) }
    var start = scalars.startIndex
    var end = scalars.endIndex
    if side != .right { while start < end && strips(scalars[start]) { start = scalars.index(after: start) } }
    if side != .left {
        while end > start {
            let before = scalars.index(before: end)
            if !strips(scalars[before]) { break }
            end = before
        }
    }
    if start == scalars.startIndex && end == scalars.endIndex { return s }
    return String(scalars[start..<end])
}

/// `str.splitlines(keepends)`.
func pySplitlines(_ s: String, keepends: Bool = false) -> [String] {
    let scalars = Array(s.unicodeScalars)
    var lines: [String] = []
    var start = 0
    var i = 0
    while i < scalars.count {
        let c = scalars[i]
        if isPyLineBreak(c) {
            var next = i + 1
            if c == "\r" && next < scalars.count && scalars[next] == "\n" { next += 1 }
            lines.append(scalarString(scalars[start..<(keepends ? next : i)]))
            start = next
            i = next
        } else {
            i += 1
        }
    }
    if start < scalars.count { lines.append(scalarString(scalars[start...])) }
    return lines
}

/// The longest string padding may build; past it Python would run out of memory, the engine
/// raises the MemoryError itself.
let maximumPaddedLength = 1 << 27

@inline(__always) func requireBuildable(_ length: Int) throws(TemplateError) {
    if length > maximumPaddedLength { throw TemplateError(.memory, "") }
}

/// `str.center(width, fill)` with CPython's choice of where the odd space goes.
func pyCenter(_ s: String, _ width: Int, _ fill: Unicode.Scalar = " ") throws(TemplateError) -> String {
    let length = s.unicodeScalars.count
    guard width > length else { return s }
    try requireBuildable(width)
    let margin = width - length
    let left = margin / 2 + (margin & width & 1)
    return repeated(fill, left) + s + repeated(fill, margin - left)
}

func pyLJust(_ s: String, _ width: Int, _ fill: Unicode.Scalar = " ") throws(TemplateError) -> String {
    let length = s.unicodeScalars.count
    try requireBuildable(width)
    return width > length ? s + repeated(fill, width - length) : s
}

func pyRJust(_ s: String, _ width: Int, _ fill: Unicode.Scalar = " ") throws(TemplateError) -> String {
    let length = s.unicodeScalars.count
    try requireBuildable(width)
    return width > length ? repeated(fill, width - length) + s : s
}

func repeated(_ c: Unicode.Scalar, _ count: Int) -> String {
    guard count > 0 else { return "" }
    return String(repeating: String(c), count: count)
}

func pyZfill(_ s: String, _ width: Int) throws(TemplateError) -> String {
    let length = s.unicodeScalars.count
    guard width > length else { return s }
    try requireBuildable(width)
    let zeros = repeated("0", width - length)
    if let first = s.unicodeScalars.first, first == "+" || first == "-" {
        return String(first) + zeros + String(s.unicodeScalars.dropFirst())
    }
    return zeros + s
}

func pyExpandtabs(_ s: String, _ tabsize: Int) throws(TemplateError) -> String {
    if tabsize > Int(Int32.max) { throw TemplateError(.overflow, "Python int too large to convert to C int") }
    var out = ""
    var column = 0
    var length = 0
    for c in s.unicodeScalars {
        if c == "\t" {
            if tabsize > 0 {
                let spaces = tabsize - column % tabsize
                length += spaces
                try requireBuildable(length)
                out += repeated(" ", spaces)
                column += spaces
            }
        } else {
            out.unicodeScalars.append(c)
            length += 1
            column = (c == "\n" || c == "\r") ? 0 : column + 1
        }
    }
    return out
}

/// Python's `str.join(iterable)`: every item must be a str.
func pyJoin(_ separator: String, _ items: [Value]) throws(TemplateError) -> String {
    var out = ""
    for (i, item) in items.enumerated() {
        guard let text = item.stringValue else {
            throw TemplateError(.type, "sequence item \(i): expected str instance, \(item.typeName) found")
        }
        if i > 0 { out += separator }
        out += text
    }
    return out
}
