// A list page's items, and a watch event's object, as `kubectl get -o json` shows each, cut from
// the text as it came: the text is checked once, then walked, and each object is copied with
// `kind` and `apiVersion` put first and `metadata.managedFields` left out. No tree of values is
// built for a page (at 10,000 pods that tree, and writing it back out, were most of the
// watcher's time to a first config).
import JSON

struct ListPage {
    var items: [ListedObject]
    /// The list's `metadata` (resourceVersion, continue).
    var metadata: JSONValue?

    enum Problem: Error, CustomStringConvertible {
        case malformed(String)
        var description: String {
            switch self {
            case .malformed(let message): return message
            }
        }
    }

    init(_ body: [UInt8], kind: ObjectKind) throws(Problem) {
        let read = body.withUnsafeBufferPointer { bytes in
            Result { () throws(Problem) -> ([ListedObject], JSONValue?) in try ListPage.read(bytes, kind: kind) }
        }
        (items, metadata) = try read.get()
    }

    private static func read(_ bytes: UnsafeBufferPointer<UInt8>, kind: ObjectKind) throws(Problem) -> ([ListedObject], JSONValue?) {
        let walk: JSONWalk
        do {
            walk = try JSONWalk(checking: bytes)
        } catch {
            throw .malformed("\(error)")
        }
        guard walk.isObject(at: walk.root) else { throw .malformed("the list is not a JSON object") }
        var metadata: JSONValue?
        var items: [ListedObject] = []
        for member in walk.members(ofObjectAt: walk.root) {
            if walk.key(member, is: "metadata") {
                metadata = walk.value(member.value)
            } else if walk.key(member, is: "items") {
                guard bytes[member.value.lowerBound] == UInt8(ascii: "[") else { throw .malformed("\"items\" is not an array") }
                for item in walk.elements(ofArrayAt: member.value.lowerBound) {
                    if let object = walk.kubernetesObject(item).flatMap({ walk.kubectlShape($0, kind: kind) }) { items.append(object) }
                }
            }
        }
        return (items, metadata)
    }
}

/// Reading a checked text: members, elements and keys by their byte ranges.
struct JSONWalk {
    let bytes: UnsafeBufferPointer<UInt8>
    let ends: JSONContainerEnds

    /// Checks the text whole, once; the walk reads `bytes`, which must outlive it.
    init(checking bytes: UnsafeBufferPointer<UInt8>) throws(JSONError) {
        var ends = JSONContainerEnds()
        try JSONReader.validate(bytes, containerEnds: &ends)
        self.bytes = bytes
        self.ends = ends
    }

    /// Where the text's value starts.
    var root: Int { skip(0) }

    func isObject(at position: Int) -> Bool { position < bytes.count && bytes[position] == UInt8(ascii: "{") }

    struct Member {
        /// The key with its quotes.
        var key: Range<Int>
        var value: Range<Int>
        /// From the key's opening quote to the value's end.
        var whole: Range<Int> { key.lowerBound..<value.upperBound }
    }

    func skip(_ position: Int) -> Int { JSONReader.skipValidatedWhitespace(bytes, from: position) }

    func valueRange(at position: Int) -> Range<Int> {
        position..<JSONReader.endOfValidatedValue(bytes, from: position, containerEnds: ends)
    }

    func members(ofObjectAt start: Int) -> [Member] {
        var members: [Member] = []
        var position = skip(start + 1)
        while position < bytes.count, bytes[position] == UInt8(ascii: "\"") {
            let keyEnd = JSONReader.endOfValidatedString(bytes, from: position)
            let value = valueRange(at: skip(skip(keyEnd) + 1))
            members.append(Member(key: position..<keyEnd, value: value))
            position = skip(value.upperBound)
            guard position < bytes.count, bytes[position] == UInt8(ascii: ",") else { break }
            position = skip(position + 1)
        }
        return members
    }

    func elements(ofArrayAt start: Int) -> [Range<Int>] {
        var elements: [Range<Int>] = []
        var position = skip(start + 1)
        while position < bytes.count, bytes[position] != UInt8(ascii: "]") {
            let element = valueRange(at: position)
            elements.append(element)
            position = skip(element.upperBound)
            guard position < bytes.count, bytes[position] == UInt8(ascii: ",") else { break }
            position = skip(position + 1)
        }
        return elements
    }

    /// Whether a key is `name` as written (keys with escapes never match: the API server
    /// writes none in the keys read here).
    func key(_ member: Member, is name: StaticString) -> Bool {
        let inner = (member.key.lowerBound + 1)..<(member.key.upperBound - 1)
        guard inner.count == name.utf8CodeUnitCount else { return false }
        return name.withUTF8Buffer { expected in
            inner.allSatisfy { bytes[$0] == expected[$0 - inner.lowerBound] }
        }
    }

    /// The value of the member `name` among `members` (the first, if repeated).
    func member(_ name: StaticString, of members: [Member]) -> Range<Int>? {
        members.first { key($0, is: name) }?.value
    }

    /// The string value of the member `name` among `members`; nil when absent or not a string.
    func string(_ name: StaticString, of members: [Member]) -> String? {
        member(name, of: members).flatMap { value($0)?.stringValue }
    }

    /// An object's members and its metadata's, each listed once: what `kubectlShape` copies and
    /// a watch event's name and resourceVersion are read from.
    struct KubernetesObject {
        var range: Range<Int>
        var members: [Member]
        var metadata: Member
        var metadataMembers: [Member]
    }

    /// The object at `range`; nil when it is not an object or its metadata is not one.
    func kubernetesObject(_ range: Range<Int>) -> KubernetesObject? {
        guard isObject(at: range.lowerBound) else { return nil }
        let members = members(ofObjectAt: range.lowerBound)
        guard let metadata = members.first(where: { key($0, is: "metadata") }), isObject(at: metadata.value.lowerBound) else { return nil }
        return KubernetesObject(range: range, members: members, metadata: metadata,
                                metadataMembers: self.members(ofObjectAt: metadata.value.lowerBound))
    }

    func value(_ range: Range<Int>) -> JSONValue? {
        try? JSONReader.parse(UnsafeBufferPointer(rebasing: bytes[range]), as: JSONValueBuilder.self)
    }

    func text(_ range: Range<Int>, into output: inout [UInt8]) {
        output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[range]))
    }

    /// One object (a list's item, a watch event's object) as kubectl shows it, and its name; nil
    /// for an object without a name.
    func kubectlShape(_ object: KubernetesObject, kind: ObjectKind) -> ListedObject? {
        let (members, metadata, metadataMembers) = (object.members, object.metadata, object.metadataMembers)
        guard let name = string("name", of: metadataMembers) else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(object.range.count + 40)
        output.append(UInt8(ascii: "{"))
        var first = true
        func separate() {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
        }
        let ordered = members.count >= 2 && key(members[0], is: "kind") && key(members[1], is: "apiVersion")
        if !ordered {
            separate()
            output += Array("\"kind\":\"\(kind.kindName)\",\"apiVersion\":\"v1\"".utf8)
        }
        for member in members where ordered || !(key(member, is: "kind") || key(member, is: "apiVersion")) {
            separate()
            guard member.key == metadata.key, metadataMembers.contains(where: { key($0, is: "managedFields") }) else {
                text(member.whole, into: &output)
                continue
            }
            text(member.key, into: &output)
            output += Array(":{".utf8)
            var firstField = true
            for field in metadataMembers where !key(field, is: "managedFields") {
                if !firstField { output.append(UInt8(ascii: ",")) }
                firstField = false
                text(field.whole, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
        output.append(UInt8(ascii: "}"))
        return ListedObject(name: name, json: String(decoding: output, as: UTF8.self))
    }
}
