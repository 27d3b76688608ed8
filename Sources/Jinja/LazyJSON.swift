// JSON documents read on demand.
//
// A template reads a handful of fields of each object it is given (`pod.status.podIP`), so
// decoding every object and string of a large context up front costs most of the time and
// several times the text's size in memory. A lazily read document keeps its text; an object
// or array of it is a DictRef or ListRef that holds only where its text is. Looking up a str
// key reads the object's members from the text, decoding only the member found (a nested
// object or array becomes another such container); any other use decodes that one level into
// the container's ordinary storage. The text is checked whole when it is read, so decoding
// later can never meet malformed JSON.

import JSON
#if canImport(Glibc)
import Glibc
#endif

/// A JSON document read on demand: its text, checked whole when the document is made, and
/// kept while any value read from it lives.
public final class JSONDocument {
    let bytes: UnsafeBufferPointer<UInt8>
    private let release: (UnsafeBufferPointer<UInt8>) -> Void
    /// Where the larger objects and arrays end, noted by the check: reading a member after a
    /// large one searches here instead of scanning.
    private(set) var containerEnds = JSONContainerEnds(recording: false)

    /// A copy of `bytes`; malformed JSON fails with the error (line and column included)
    /// `JSONReader.parse` reports.
    public convenience init(_ bytes: [UInt8]) throws(JSONError) {
        self.init(copying: bytes)
        try check()
    }

    /// A copy of the UTF-8 of `text`.
    public convenience init(_ text: String) throws(JSONError) {
        self.init(copying: text.utf8)
        try check()
    }

    private init<Bytes: Collection<UInt8>>(copying source: Bytes) {
        let storage = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: source.count)
        _ = storage.initialize(from: source)
        bytes = UnsafeBufferPointer(storage)
        release = { UnsafeMutableBufferPointer(mutating: $0).deallocate() }
    }

    /// Bytes owned elsewhere (a mapped file, say): they must stay unchanged until `release`
    /// is called, when the document and every value read from it are gone (or the check
    /// failed).
    public init(unsafeBytes: UnsafeBufferPointer<UInt8>, release: @escaping (UnsafeBufferPointer<UInt8>) -> Void) throws(JSONError) {
        bytes = unsafeBytes
        self.release = release
        try check()
    }

    deinit { release(bytes) }

    /// Member positions are kept in 31 bits (see LazyJSONObject.Member); larger documents,
    /// which a template would hardly be given, are decoded whole by `value()`.
    private var isReadLazily: Bool { bytes.count < LazyJSONObject.Member.escapedKey }

    private func check() throws(JSONError) {
        var ends = JSONContainerEnds(recording: isReadLazily)
        try JSONReader.validate(bytes, containerEnds: &ends)
        containerEnds = ends
    }

    /// The document's value, its objects and arrays decoded as they are used. Each call reads
    /// the document afresh: what an earlier value decoded (or was changed to) is not shared,
    /// so a caller can look into one value and keep another that holds nothing but the text.
    public func value() -> Value {
        guard isReadLazily else {
            // The text was checked when the document was made: this cannot fail.
            return (try? JSONReader.parse(bytes, as: ValueJSONBuilder.self)) ?? .none
        }
        let start = JSONReader.skipValidatedWhitespace(bytes, from: 0)
        var hint = 0
        let end = JSONReader.endOfValidatedValue(bytes, from: start, containerEnds: containerEnds, hint: &hint)
        return lazyJSONValue(self, from: start, to: end, spanHint: hint)
    }
}

extension Value {
    /// A JSON document as a value whose objects and arrays are decoded as they are used
    /// (`JSONDocument(bytes).value()`). Malformed text fails here, with the error (line and
    /// column included) `JSONReader.parse` reports.
    public static func parseJSONLazily(_ bytes: [UInt8]) throws(JSONError) -> Value {
        try JSONDocument(bytes).value()
    }

    public static func parseJSONLazily(_ text: String) throws(JSONError) -> Value {
        try JSONDocument(text).value()
    }
}

/// The value whose text is `document.bytes[start..<end]`: objects and arrays stay text.
/// `spanHint` is where the search for the ends of its members may start.
func lazyJSONValue(_ document: JSONDocument, from start: Int, to end: Int, spanHint: Int) -> Value {
    let bytes = document.bytes
    switch bytes[start] {
    case UInt8(ascii: "{"):
        if bytes[JSONReader.skipValidatedWhitespace(bytes, from: start + 1)] == UInt8(ascii: "}") { return .dict(DictRef()) }
        return .dict(DictRef(lazyJSON: LazyJSONObject(document: document, start: start, end: end, spanHint: spanHint)))
    case UInt8(ascii: "["):
        if bytes[JSONReader.skipValidatedWhitespace(bytes, from: start + 1)] == UInt8(ascii: "]") { return .list(ListRef()) }
        return .list(ListRef(lazyJSON: LazyJSONArray(document: document, start: start, spanHint: spanHint)))
    case UInt8(ascii: "\""):
        // The common string, without escapes, is its bytes.
        var plain = true
        for index in (start + 1)..<(end - 1) where bytes[index] == UInt8(ascii: "\\") {
            plain = false
            break
        }
        if plain { return .string(String(decoding: UnsafeBufferPointer(rebasing: bytes[(start + 1)..<(end - 1)]), as: UTF8.self)) }
        return decodeValidatedScalar(bytes, from: start, to: end)
    default:
        return decodeValidatedScalar(bytes, from: start, to: end)
    }
}

/// A string, number or literal, with the reader's own decoding.
private func decodeValidatedScalar(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Value {
    // The text was validated when the document was read: this cannot fail.
    (try? JSONReader.parse(UnsafeBufferPointer(rebasing: bytes[start..<end]), as: ValueJSONBuilder.self)) ?? .none
}

/// A JSON object not decoded yet: its text, the positions of its members once a lookup has
/// needed them, and the values lookups returned (a container is the same object each time,
/// as Python returns the same dict; a string is not decoded again for each line that prints it).
/// Kept inside its DictRef, not as an object of its own: a template reading 10,000 pods makes
/// 20,000 of these.
struct LazyJSONObject {
    struct Member {
        /// Where the key's text starts, inside its quotes; the high bit of `keyEnd` marks a
        /// key whose text is not its UTF-8 as is (an escape, or non-ASCII bytes that may need
        /// repair), which is compared decoded.
        var keyStart: UInt32
        var keyEnd: UInt32
        var valueStart: UInt32
        var valueEnd: UInt32

        static let escapedKey: Int = 1 << 31
        var isPlain: Bool { Int(keyEnd) & Member.escapedKey == 0 }
        var keyRange: Range<Int> { Int(keyStart)..<(Int(keyEnd) & (Member.escapedKey - 1)) }
    }

    let document: JSONDocument
    /// The position of the opening brace.
    let start: Int
    /// The position after the closing brace.
    let end: Int
    let spanHint: Int
    private var memberTable: [Member]? = nil
    /// The first value handed out, and any after it (most objects hand out one, if any), with
    /// the template's name for it when `x.name` asked: asking again by that name is answered
    /// here, without reading the member table.
    private var firstHandedOut: HandedOut? = nil
    private var handedOut: [HandedOut] = []

    private struct HandedOut {
        /// Where the member's key starts, as `Member.keyStart`, with the high bit of
        /// `Member.keyEnd` (a lookup by a str key finds the member again by its key's bytes).
        var keyStart: UInt32
        /// Where the member's value starts: what names a member, however it was found.
        var valueStart: UInt32
        /// `AttributeName.serial`, 0 for none; or for a value read by `x.first.second`
        /// (`lookupPath`), `pathName` of both, and `keyStart` and `valueStart` are those of
        /// `second`'s member inside `first`'s object (no member of this object starts there).
        var name: Int
        var value: Value

        var isPath: Bool { name < 0 }
        /// The serial of a path's second name.
        var secondName: Int { -name & (1 << 31 - 1) }
        /// The name of a path: negative, one for each pair of serials below 2^31 (`lookupPath`
        /// reads no path of names made after those, which serials never reach in practice).
        static func pathName(_ first: Int, _ second: Int) -> Int? {
            guard first < 1 << 31, second < 1 << 31 else { return nil }
            return -(first << 31 | second)
        }
    }
    /// Whether a value read by `x.first.second` is among those handed out (see `lookupPath`).
    private var hasPathValues = false
    private var lookups = 0
    /// Whether no key repeats, once `keysAreUnique` has checked.
    private var uniqueKeys: Bool? = nil

    init(document: JSONDocument, start: Int, end: Int, spanHint: Int) {
        self.document = document
        self.start = start
        self.end = end
        self.spanHint = spanHint
    }

    private var table: [Member] {
        mutating get {
            if let memberTable { return memberTable }
            let built = scanMembers()
            memberTable = built
            return built
        }
    }

    /// On a large document checked whole just before, the text of an object is out of the
    /// caches again when a template looks into it: each member read here is a cache miss or
    /// two, and on the benchmark context (10,000 pods of 3 KB) this is a third of the render.
    private func scanMembers() -> [Member] {
        var members: [Member] = []
        members.reserveCapacity(8)
        forEachMember { members.append($0) }
        return members
    }

    /// Calls `body` with each member in document order.
    ///
    /// The text was checked whole: every object ends with its brace inside it, so positions
    /// move with `&+` and each step looks at one byte before it calls anything (the commonest
    /// separators, `": "` and `", "`, have one space or none).
    @inline(__always)
    private func forEachMember(_ body: (Member) -> Void) {
        let bytes = document.bytes
        let ends = document.containerEnds
        var hint = spanHint
        var position = Self.skipSpace(bytes, start &+ 1)
        guard bytes[position] != UInt8(ascii: "}") else { return }
        while true {
            // Keys are short: one pass finds the closing quote and whether the key is plain,
            // eight bytes at a time while they are plain ASCII.
            let keyStart = position &+ 1
            var keyEnd = keyStart &+ JSONReader.plainBytes(bytes, from: keyStart, stoppingAtControlCharacters: false, stoppingAtNonASCII: true)
            var plain = true
            while true {
                let byte = bytes[keyEnd]
                if byte == UInt8(ascii: "\"") { break }
                if byte == UInt8(ascii: "\\") {
                    plain = false
                    keyEnd &+= 2
                    continue
                }
                if byte >= 0x80 { plain = false }
                keyEnd &+= 1
            }
            position = Self.skipSpace(bytes, keyEnd &+ 1) &+ 1 // past ':'
            let valueStart = Self.skipSpace(bytes, position)
            let first = bytes[valueStart]
            let valueEnd: Int
            if first == UInt8(ascii: "\"") {
                valueEnd = JSONReader.endOfValidatedString(bytes, from: valueStart)
            } else if first == UInt8(ascii: "{") || first == UInt8(ascii: "["),
                      let end = ends.end(ofContainerAt: valueStart, hint: &hint) {
                valueEnd = end
            } else {
                valueEnd = JSONReader.endOfValueScanned(bytes, from: valueStart)
            }
            body(Member(keyStart: UInt32(truncatingIfNeeded: keyStart),
                        keyEnd: UInt32(truncatingIfNeeded: keyEnd | (plain ? 0 : Member.escapedKey)),
                        valueStart: UInt32(truncatingIfNeeded: valueStart), valueEnd: UInt32(truncatingIfNeeded: valueEnd)))
            position = Self.skipSpace(bytes, valueEnd)
            if bytes[position] == UInt8(ascii: "}") { return }
            position = Self.skipSpace(bytes, position &+ 1) // past ','
        }
    }

    /// The first position from `position` on that is not JSON whitespace: the text ends
    /// with a bracket, so the scan stops inside it.
    @inline(__always)
    private static func skipSpace(_ bytes: UnsafeBufferPointer<UInt8>, _ position: Int) -> Int {
        var position = position
        while true {
            let byte = bytes[position]
            // Space, tab, line feed and carriage return are the bytes at or below ' ' that a
            // checked text has outside strings.
            if byte > 0x20 { return position }
            position &+= 1
        }
    }

    /// The last member whose key is `wanted`, found reading from the last member back: the
    /// first found is the one Python keeps, so the members before it are not read (a pod's
    /// `status` is its last member, found without stepping over its `metadata` and `spec`).
    private func lastMember(matching wanted: UnsafeBufferPointer<UInt8>, _ key: String) -> Member? {
        let bytes = document.bytes
        // The last byte of the last value (the text was checked: the scans back stop at the
        // object's own brace at the latest).
        var last = Self.skipSpaceBack(bytes, end &- 2)
        while last > start {
            let valueEnd = last &+ 1
            let valueStart: Int
            switch bytes[last] {
            case UInt8(ascii: "\""):
                valueStart = Self.openingQuote(bytes, before: last)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                valueStart = containerStart(endingAt: valueEnd)
            default:
                // A number or a literal: back to the colon or space before it.
                var position = last
                while bytes[position &- 1] > 0x20 && bytes[position &- 1] != UInt8(ascii: ":") { position &-= 1 }
                valueStart = position
            }
            let colon = Self.skipSpaceBack(bytes, valueStart &- 1)
            let keyEnd = Self.skipSpaceBack(bytes, colon &- 1)
            let keyOpening = Self.openingQuote(bytes, before: keyEnd)
            let plain = Self.isPlain(bytes, from: keyOpening &+ 1, to: keyEnd)
            let member = Member(keyStart: UInt32(truncatingIfNeeded: keyOpening &+ 1),
                                keyEnd: UInt32(truncatingIfNeeded: keyEnd | (plain ? 0 : Member.escapedKey)),
                                valueStart: UInt32(truncatingIfNeeded: valueStart), valueEnd: UInt32(truncatingIfNeeded: valueEnd))
            if matches(member, wanted, key) { return member }
            // The comma before this member, or the object's brace.
            let before = Self.skipSpaceBack(bytes, keyOpening &- 1)
            if before == start { return nil }
            last = Self.skipSpaceBack(bytes, before &- 1)
        }
        return nil
    }

    /// Where the object or array that ends before `valueEnd` (a member's) starts: a large one
    /// as the check noted it, a small one by counting its brackets back.
    private func containerStart(endingAt valueEnd: Int) -> Int {
        if let noted = document.containerEnds.startOfChild(endingAt: valueEnd, inContainerAt: start, hint: spanHint) {
            return noted
        }
        let bytes = document.bytes
        var position = valueEnd &- 1
        var depth = 0
        while true {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position = Self.openingQuote(bytes, before: position) &- 1
                continue
            }
            if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                depth &+= 1
            } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                depth &-= 1
                if depth == 0 { return position }
            }
            position &-= 1
        }
    }

    /// The opening quote of the string whose closing quote is at `closing`: the nearest quote
    /// before it with an even number of backslashes before it (an escaped quote has an odd
    /// number; the opening one follows a colon, comma, bracket or space).
    @inline(__always)
    private static func openingQuote(_ bytes: UnsafeBufferPointer<UInt8>, before closing: Int) -> Int {
        var position = closing
        while true {
            position = quote(bytes, before: position)
            var backslashes = 0
            while bytes[position &- 1 &- backslashes] == UInt8(ascii: "\\") { backslashes &+= 1 }
            if backslashes & 1 == 0 { return position }
        }
    }

    /// The last quote before `position`, eight bytes at a time (there is one: an object's text
    /// has its first key's opening quote).
    @inline(__always)
    private static func quote(_ bytes: UnsafeBufferPointer<UInt8>, before position: Int) -> Int {
        var position = position
        #if _endian(little)
        // The last byte in memory is a word's highest only on little-endian machines.
        if let base = bytes.baseAddress {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let low7 = ones &* 0x7F
            while position >= 8 {
                let word = UnsafeRawPointer(base + (position &- 8)).loadUnaligned(as: UInt64.self)
                // 0x80 in exactly the bytes that are a quote: no carry crosses a byte, so the
                // highest flag (the last quote in memory) is exact.
                let x = word ^ (ones &* 0x22)
                let found = ~(((x & low7) &+ low7) | x | low7)
                if found != 0 { return position &- 8 &+ (63 &- found.leadingZeroBitCount) &>> 3 }
                position &-= 8
            }
        }
        #endif
        repeat { position &-= 1 } while bytes[position] != UInt8(ascii: "\"")
        return position
    }

    /// Whether the key text from `start` to its closing quote at `end` holds no backslash
    /// and no byte above 0x7F: the reader's eight-byte scan, which stops at the closing
    /// quote when the key is plain, then the few bytes it leaves.
    @inline(__always)
    private static func isPlain(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Bool {
        var position = start &+ JSONReader.plainBytes(bytes, from: start, stoppingAtControlCharacters: false, stoppingAtNonASCII: true)
        while position < end {
            if bytes[position] == UInt8(ascii: "\\") || bytes[position] >= 0x80 { return false }
            position &+= 1
        }
        return true
    }

    /// `skipSpace` backwards: the last position from `position` down that is not JSON
    /// whitespace.
    @inline(__always)
    private static func skipSpaceBack(_ bytes: UnsafeBufferPointer<UInt8>, _ position: Int) -> Int {
        var position = position
        while bytes[position] <= 0x20 { position &-= 1 }
        return position
    }

    /// True once a large object has been searched several times: decoded, it gets the
    /// dict's hash index, where each search here goes through every member.
    var prefersDecoding: Bool {
        lookups > 8 && (memberTable?.count ?? 0) > 32
    }

    /// The value of `key`, or nil: the last member of that name, as Python keeps it.
    mutating func lookup(_ key: String) -> Value? {
        key.withUTF8Bytes { lookup(utf8: $0, key) }
    }

    /// `x.name`: the value handed out for this name before, or the member's found in the text.
    /// (Parsing gives each attribute text one AttributeName, and a key names one member.)
    mutating func lookup(_ name: AttributeName) -> Value? {
        let serial = name.serial
        if let first = firstHandedOut {
            if first.name == serial { return first.value }
            for entry in handedOut where entry.name == serial { return entry.value }
        }
        return name.utf8.withUnsafeBufferPointer { lookup(utf8: $0, name.text, naming: serial) }
    }

    /// `lookup(key)` with the key's UTF-8 at hand. A linear search: the objects templates
    /// look into have few members, and comparing a member's length first makes each miss cheap.
    mutating func lookup(utf8 wanted: UnsafeBufferPointer<UInt8>, _ key: String, naming name: Int = 0) -> Value? {
        // A str key (`x['podIP']`, a filter's attribute) asked again: a member handed out
        // before was the last of its key, or its key is unique. (`x.name` asked again was
        // answered by the name, before this.)
        if name == 0, lookups > 0 || memberTable != nil, let given = handedOutValue(matching: wanted, key) {
            lookups += 1
            return given
        }
        guard let found = member(matching: wanted, key) else { return nil }
        var hint = spanHint
        return value(of: found, naming: name, hint: &hint)
    }

    /// The last member whose key is `key`, or nil, counted as a lookup: the second one of an
    /// object makes its table of members, for the lookups after it. (Most objects are asked for
    /// one member, `pod.status`, found without the table, from the last member back.)
    private mutating func member(matching wanted: UnsafeBufferPointer<UInt8>, _ key: String) -> Member? {
        lookups += 1
        if lookups > 1 { _ = table }
        return knownMember(matching: wanted, key)
    }

    /// `member(matching:)` without counting a lookup or making the table: searched in the table
    /// if there is one, else from the last member back.
    private func knownMember(matching wanted: UnsafeBufferPointer<UInt8>, _ key: String) -> Member? {
        guard let members = memberTable else { return lastMember(matching: wanted, key) }
        var index = members.count - 1
        while index >= 0 {
            if matches(members[index], wanted, key) { return members[index] }
            index -= 1
        }
        return nil
    }

    /// `x.first.second`, where `first` names a member of this object that is an object still
    /// text and not handed out, and `second` a member of that one that is a str, number, bool
    /// or null: that value, read from the text without making `first`'s dict, and kept for the
    /// next time (`pod.status.podIP` on every server line). nil for anything else, and the
    /// caller goes step by step: only containers have an identity a template could see, and
    /// no container is made or kept here.
    mutating func lookupPath(_ first: AttributeName, _ second: AttributeName) -> Value? {
        let firstSerial = first.serial
        guard let pathName = HandedOut.pathName(firstSerial, second.serial) else { return nil }
        if firstHandedOut != nil {
            if hasPathValues {
                if firstHandedOut?.name == pathName { return firstHandedOut?.value }
                for index in handedOut.indices where handedOut[index].name == pathName { return handedOut[index].value }
            }
            // `first` handed out under its name: its dict answers.
            if isHandedOut(naming: firstSerial) { return nil }
        }
        // Not counted as a lookup that the table would pay for: a pod asked for `status.podIP`
        // and `status.containerStatuses` finds `status` at its end both times.
        guard let member = first.utf8.withUnsafeBufferPointer({ knownMember(matching: $0, first.text) }) else { return nil }
        let bytes = document.bytes
        let start = Int(member.valueStart)
        guard bytes[start] == UInt8(ascii: "{"), !isHandedOut(member) else { return nil }
        var hint = spanHint
        _ = document.containerEnds.end(ofContainerAt: start, hint: &hint)
        let inner = LazyJSONObject(document: document, start: start, end: Int(member.valueEnd), spanHint: hint)
        let found = second.utf8.withUnsafeBufferPointer { inner.lastMember(matching: $0, second.text) }
        guard let found, bytes[Int(found.valueStart)] != UInt8(ascii: "{") && bytes[Int(found.valueStart)] != UInt8(ascii: "[") else {
            // `second` is missing or a container: step by step after all, with what was found.
            // `first`'s dict is made and kept, then `second`'s value is made in it and kept
            // there, or its absence reported as `x.first.second` reports it.
            // Both count as the lookups they stand for (the second one of an object makes its
            // table of members, for the lookups after it).
            lookups += 1
            hint = spanHint
            let firstValue = value(of: member, naming: firstSerial, hint: &hint)
            guard let found else { return .undefined(Undefined(owner: firstValue, attribute: second.text)) }
            guard case .dict(let ref) = firstValue, let innerSpanHint = ref.lazyJSON?.spanHint else { return nil }
            var innerHint = innerSpanHint
            ref.lazyJSON?.lookups += 1
            return ref.lazyJSON?.value(of: found, naming: second.serial, hint: &innerHint)
        }
        let value = lazyJSONValue(document, from: Int(found.valueStart), to: Int(found.valueEnd), spanHint: hint)
        let entry = HandedOut(keyStart: found.keyStart | (found.keyEnd & UInt32(Member.escapedKey)), valueStart: found.valueStart,
                              name: pathName, value: value)
        if firstHandedOut == nil { firstHandedOut = entry } else { handedOut.append(entry) }
        hasPathValues = true
        return value
    }

    /// Hands the values `lookupPath` read inside `member`'s value, now handed out as `value`,
    /// to that value's object (where `first.second` then finds them by the second name), and
    /// forgets them here.
    private mutating func movePathValues(inside member: Member, to value: Value) {
        let range = member.valueStart..<member.valueEnd
        var receiver: DictRef? = nil
        if case .dict(let ref) = value, ref.lazyJSON != nil { receiver = ref }
        if let first = firstHandedOut, first.isPath, range.contains(first.valueStart) {
            receiver?.lazyJSON?.adopt(first)
            firstHandedOut = handedOut.isEmpty ? nil : handedOut.removeFirst()
        }
        // removeAll costs a uniqueness check and a closure even on an empty array (about 160
        // instructions on each handing-out after a path read, measured).
        if !handedOut.isEmpty {
            handedOut.removeAll { entry in
                guard entry.isPath && range.contains(entry.valueStart) else { return false }
                receiver?.lazyJSON?.adopt(entry)
                return true
            }
        }
        hasPathValues = firstHandedOut?.isPath == true || handedOut.contains { $0.isPath }
    }

    /// A value another object's `lookupPath` read inside this one, now handed out by this one
    /// under the path's second name.
    private mutating func adopt(_ entry: HandedOut) {
        let own = HandedOut(keyStart: entry.keyStart, valueStart: entry.valueStart, name: entry.secondName, value: entry.value)
        if firstHandedOut == nil { firstHandedOut = own } else { handedOut.append(own) }
    }

    private func isHandedOut(naming name: Int) -> Bool {
        if firstHandedOut?.name == name { return true }
        return handedOut.contains { $0.name == name }
    }

    private func isHandedOut(_ member: Member) -> Bool {
        let wanted = member.valueStart
        if firstHandedOut?.valueStart == wanted { return true }
        return handedOut.contains { $0.valueStart == wanted }
    }

    /// Whether the member's key is `key`: plain keys compared by their bytes, length first.
    @inline(__always)
    private func matches(_ member: Member, _ wanted: UnsafeBufferPointer<UInt8>, _ key: String) -> Bool {
        if member.isPlain {
            let range = member.keyRange
            return range.count == wanted.count && Self.sameBytes(document.bytes, range, wanted)
        }
        return decodedKeyMatches(member, key)
    }

    @inline(never)
    private func decodedKeyMatches(_ member: Member, _ key: String) -> Bool {
        pyStringEquals(decodedKey(member), key)
    }

    @inline(__always)
    private static func sameBytes(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ wanted: UnsafeBufferPointer<UInt8>) -> Bool {
        if range.isEmpty { return true }
        guard let base = bytes.baseAddress, let other = wanted.baseAddress else { return false }
        return memcmp(base + range.lowerBound, other, range.count) == 0
    }

    private func decodedKey(_ member: Member) -> String {
        let range = member.keyRange
        if member.isPlain { return String(decoding: UnsafeBufferPointer(rebasing: document.bytes[range]), as: UTF8.self) }
        // With its quotes, so that the reader decodes the escapes.
        let quoted = (range.lowerBound - 1)..<(range.upperBound + 1)
        return (try? JSONReader.parse(UnsafeBufferPointer(rebasing: document.bytes[quoted]), as: JSONValueBuilder.self))?.stringValue ?? ""
    }

    /// The value handed out for the member before, or made now (`hint` as `memberValue`
    /// takes it) and kept.
    private mutating func value(of member: Member, naming name: Int, hint: inout Int) -> Value {
        if let given = handedOutValue(of: member) {
            // Found again under a name of its own: kept under that name too.
            if name != 0 { keepHandedOut(member, given, naming: name) }
            return given
        }
        let created = memberValue(member, hint: &hint)
        keepHandedOut(member, created, naming: name)
        return created
    }

    private func handedOutValue(of member: Member) -> Value? {
        guard let firstHandedOut else { return nil }
        let wanted = member.valueStart
        if firstHandedOut.valueStart == wanted { return firstHandedOut.value }
        for entry in handedOut where entry.valueStart == wanted { return entry.value }
        return nil
    }

    /// The value handed out before for the key `wanted`, if any.
    @inline(never)
    private func handedOutValue(matching wanted: UnsafeBufferPointer<UInt8>, _ key: String) -> Value? {
        guard let firstHandedOut else { return nil }
        if keyMatches(firstHandedOut, wanted, key) { return firstHandedOut.value }
        for entry in handedOut where keyMatches(entry, wanted, key) { return entry.value }
        return nil
    }

    /// Whether the key of a member handed out is `key`; its end is found again before its
    /// value (the closing quote before the colon).
    @inline(__always)
    private func keyMatches(_ entry: HandedOut, _ wanted: UnsafeBufferPointer<UInt8>, _ key: String) -> Bool {
        // A value read through a member's object has no key in this one.
        if entry.isPath { return false }
        let bytes = document.bytes
        let colon = Self.skipSpaceBack(bytes, Int(entry.valueStart) &- 1)
        let keyEnd = Self.skipSpaceBack(bytes, colon &- 1)
        let flags = Int(entry.keyStart) & Member.escapedKey
        let member = Member(keyStart: UInt32(truncatingIfNeeded: Int(entry.keyStart) & (Member.escapedKey - 1)),
                            keyEnd: UInt32(truncatingIfNeeded: keyEnd | flags), valueStart: entry.valueStart, valueEnd: 0)
        return matches(member, wanted, key)
    }

    private mutating func keepHandedOut(_ member: Member, _ value: Value, naming name: Int = 0) {
        // Read from now on through the dict handed out, which the template may change.
        if hasPathValues { movePathValues(inside: member, to: value) }
        let entry = HandedOut(keyStart: member.keyStart | (member.keyEnd & UInt32(Member.escapedKey)),
                              valueStart: member.valueStart, name: name, value: value)
        if firstHandedOut == nil { firstHandedOut = entry } else { handedOut.append(entry) }
    }

    /// The member's value, made afresh. Where an object or array's members' ends may be
    /// searched from is found again from `hint` (this object's own place, or a member's before
    /// this one), so that the member tables stay at 16 bytes a member.
    private func memberValue(_ member: Member, hint: inout Int) -> Value {
        let start = Int(member.valueStart)
        let first = document.bytes[start]
        if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            _ = document.containerEnds.end(ofContainerAt: start, hint: &hint)
        }
        return lazyJSONValue(document, from: start, to: Int(member.valueEnd), spanHint: hint)
    }

    /// The values in document order, without decoding a key, when no key repeats (checked on
    /// the bytes of keys without escapes or non-ASCII bytes); nil otherwise.
    mutating func valuesIfKeysAreUnique() -> [Value]? {
        let members = table
        guard keysAreUnique(members) else { return nil }
        var values: [Value] = []
        values.reserveCapacity(members.count)
        // In document order, each container's end is searched for from the one before.
        var hint = spanHint
        if firstHandedOut == nil {
            // Nothing handed out yet (`service.pods.values()` before any pod was looked up):
            // each value is made here, without looking for one handed out before.
            handedOut.reserveCapacity(members.count - 1)
            for member in members {
                let created = memberValue(member, hint: &hint)
                keepHandedOut(member, created)
                values.append(created)
            }
            return values
        }
        for member in members { values.append(value(of: member, naming: 0, hint: &hint)) }
        return values
    }

    /// The number of members, without decoding a key or value, when no key repeats (as
    /// `valuesIfKeysAreUnique` checks it); nil otherwise.
    mutating func countIfKeysAreUnique() -> Int? {
        let members = table
        return keysAreUnique(members) ? members.count : nil
    }

    /// Whether no two of `members` (the table) have the same key, checked once on the bytes
    /// of keys without escapes or non-ASCII bytes; false for more than 64 members or any
    /// other key.
    private mutating func keysAreUnique(_ members: [Member]) -> Bool {
        if let uniqueKeys { return uniqueKeys }
        let unique = Self.keysAreUnique(members, document.bytes)
        uniqueKeys = unique
        return unique
    }

    private static func keysAreUnique(_ members: [Member], _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard members.count <= 64 else { return false }
        for i in members.indices {
            guard members[i].isPlain else { return false }
            let range = members[i].keyRange
            for j in 0..<i {
                // Keys such as pod names differ near their ends: the last byte rules out most.
                let other = members[j].keyRange
                if other.count == range.count, range.isEmpty || bytes[other.upperBound - 1] == bytes[range.upperBound - 1],
                   Self.sameBytes(bytes, other, UnsafeBufferPointer(rebasing: bytes[range])) { return false }
            }
        }
        return true
    }

    /// Every member in document order, repeats included, for the dict to take as its own;
    /// values already handed out by lookups are kept.
    mutating func members() -> [(String, Value)] {
        let members = table
        let given = Dictionary(((firstHandedOut.map { [$0] } ?? []) + handedOut).map { (Int($0.valueStart), $0.value) }, uniquingKeysWith: { first, _ in first })
        var pairs: [(String, Value)] = []
        pairs.reserveCapacity(members.count)
        // In document order, as in valuesIfKeysAreUnique.
        var hint = spanHint
        for member in members {
            let value = given[Int(member.valueStart)] ?? memberValue(member, hint: &hint)
            pairs.append((decodedKey(member), value))
        }
        return pairs
    }
}

/// A JSON array not decoded yet.
struct LazyJSONArray {
    let document: JSONDocument
    /// The position of the opening bracket.
    let start: Int
    let spanHint: Int

    init(document: JSONDocument, start: Int, spanHint: Int) {
        self.document = document
        self.start = start
        self.spanHint = spanHint
    }

    func elements() -> [Value] {
        let bytes = document.bytes
        let ends = document.containerEnds
        var hint = spanHint
        var elements: [Value] = []
        var position = JSONReader.skipValidatedWhitespace(bytes, from: start + 1)
        guard bytes[position] != UInt8(ascii: "]") else { return elements }
        while true {
            let end = JSONReader.endOfValidatedValue(bytes, from: position, containerEnds: ends, hint: &hint)
            elements.append(lazyJSONValue(document, from: position, to: end, spanHint: hint))
            position = JSONReader.skipValidatedWhitespace(bytes, from: end)
            if bytes[position] == UInt8(ascii: "]") { return elements }
            position = JSONReader.skipValidatedWhitespace(bytes, from: position + 1)
        }
    }
}
