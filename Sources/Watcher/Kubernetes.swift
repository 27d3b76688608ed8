// Kubernetes objects as Kubernetes' etcd2 storage wrote them: JSON values at
// <prefix>/pods/<namespace>/<name>, <prefix>/configmaps/<namespace>/<name>,
// <prefix>/secrets/<namespace>/<name>.
import Jinja
import JSON
import Shared

enum ObjectKind: String, Sendable, CaseIterable {
    case pods, configmaps, secrets
}

/// Where an object lives in etcd.
struct ObjectKey: Hashable, Sendable, CustomStringConvertible {
    var kind: ObjectKind
    var namespace: String
    /// Empty for a whole namespace's directory.
    var name: String

    /// Parses `<prefix>/<kind>/<namespace>[/<name>]`.
    init?(etcdKey: String, prefix: String) {
        guard etcdKey.hasPrefix(prefix + "/") else { return nil }
        let parts = etcdKey.dropFirst(prefix.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, let kind = ObjectKind(rawValue: String(parts[0])), !parts[1].isEmpty else { return nil }
        self.kind = kind
        namespace = String(parts[1])
        name = parts.count == 3 ? String(parts[2]) : ""
    }

    init(kind: ObjectKind, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    var description: String {
        let singular = kind == .pods ? "pod" : kind == .configmaps ? "ConfigMap" : "Secret"
        return name.isEmpty ? "\(singular)s of namespace \(namespace)" : "\(singular) \(namespace)/\(name)"
    }
}

/// One object of a full read of an object set: its name and its JSON text.
struct ListedObject: Sendable {
    var name: String
    var json: String
}

/// A problem with one object, reported once with the object and key it concerns.
struct ObjectProblem: Error, Equatable, CustomStringConvertible, Sendable {
    var object: String
    var message: String
    var description: String { "\(object): \(message)" }
}

/// What the watcher keeps of a pod: enough to select it, and the whole object for the
/// template when it is a backend. Its name and namespace are the keys it is kept under (not
/// repeated in each of thousands of entries).
struct Pod {
    /// Label → value pairs, in the order the JSON has them.
    var labels: PodLabels
    /// Has status.podIP, a non-empty status.containerStatuses, every container ready, and no
    /// metadata.deletionTimestamp.
    var isBackend: Bool
    /// The pod's JSON text, kept only for backends. Each render reads it afresh
    /// (`document.value()`), so what one render decodes of it is freed with that render and
    /// a pod costs little more than its text between renders.
    var document: JSONDocument?

    /// The pod object as the template sees it.
    var object: Value? { document?.value() }

    init(key: ObjectKey, json: String) throws(ObjectProblem) {
        let document: JSONDocument
        do {
            document = try JSONDocument(json)
        } catch {
            throw ObjectProblem(object: key.description, message: "not valid JSON: \(error)")
        }
        guard case .dict(let root) = document.value() else { throw ObjectProblem(object: key.description, message: "not a JSON object") }
        var terminating = false
        var pairs: [(String, String)] = []
        if case .dict(let metadata)? = root[string: "metadata"] {
            if case .dict(let labelDict)? = metadata[string: "labels"] {
                for (labelKey, labelValue) in zip(labelDict.keys, labelDict.values) {
                    if case .string(let text) = labelKey, case .string(let value) = labelValue { pairs.append((text, value)) }
                }
            }
            if let deletion = metadata[string: "deletionTimestamp"], !deletion.isNone { terminating = true }
        }
        labels = PodLabels(pairs)
        isBackend = !terminating && Pod.isReady(root[string: "status"])
        self.document = isBackend ? document : nil
    }

    static func isReady(_ status: Value?) -> Bool {
        guard case .dict(let status)? = status else { return false }
        guard case .string(let podIP)? = status[string: "podIP"], !podIP.isEmpty else { return false }
        guard case .list(let containers)? = status[string: "containerStatuses"], !containers.items.isEmpty else { return false }
        return containers.items.allSatisfy { container in
            guard case .dict(let container) = container, case .bool(true)? = container[string: "ready"] else { return false }
            return true
        }
    }
}

/// A pod's labels in one buffer of bytes, each key and value as its length (LEB128) and its
/// UTF-8: thousands of pods keep a handful each, and one allocation a pod is less than half of
/// an array of string pairs and the strings too long to be kept inline.
struct PodLabels {
    private let bytes: [UInt8]
    private let isASCII: Bool

    init(_ pairs: [(String, String)]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pairs.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
        for (key, value) in pairs {
            PodLabels.append(key, to: &bytes)
            PodLabels.append(value, to: &bytes)
        }
        self.bytes = bytes
        isASCII = bytes.allSatisfy { $0 < 0x80 }
    }

    private static func append(_ text: String, to bytes: inout [UInt8]) {
        var length = text.utf8.count
        while length >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: length) | 0x80)
            length >>= 7
        }
        bytes.append(UInt8(length))
        bytes.append(contentsOf: text.utf8)
    }

    /// Whether the pod has the label.
    func contains(_ label: (String, String)) -> Bool {
        var found = false
        forEachValue(of: label.0) { value in found = found || holds(value, label.1) }
        return found
    }

    /// Calls `body` with the value of each label named `key`, in order (a key may be repeated
    /// in the JSON).
    func forEachValue(of key: String, _ body: (Range<Int>) -> Void) {
        var position = 0
        while position < bytes.count {
            let name = text(at: position)
            let value = text(at: name.upperBound)
            if holds(name, key) { body(value) }
            position = value.upperBound
        }
    }

    func forEachValue(of key: String, _ body: (String) -> Void) {
        forEachValue(of: key) { (value: Range<Int>) in body(string(value)) }
    }

    /// The range of the text that starts at `position` (its length first).
    private func text(at position: Int) -> Range<Int> {
        var position = position
        var length = 0
        var shift = 0
        while true {
            let byte = bytes[position]
            position += 1
            length |= Int(byte & 0x7F) << shift
            shift += 7
            if byte < 0x80 { break }
        }
        return position..<(position + length)
    }

    private func string(_ range: Range<Int>) -> String {
        bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) }
    }

    /// Whether `range` holds `text`, as Swift compares strings (canonical equivalence, which
    /// can make different bytes equal only beyond ASCII).
    private func holds(_ range: Range<Int>, _ text: String) -> Bool {
        if range.count == text.utf8.count && bytes[range].elementsEqual(text.utf8) { return true }
        if isASCII && text.utf8.allSatisfy({ $0 < 0x80 }) { return false }
        return string(range) == text
    }
}

/// A service from the `services` ConfigMap: its JSON object, which the template gets whole.
struct Service {
    var name: String
    var namespace: String
    var selector: [(String, String)]
    var object: DictRef

    init(name: String, json: String) throws(ObjectProblem) {
        let where_ = "ConfigMap services, key \"\(name)\""
        let value: Value
        do {
            value = try JSONReader.parse(json, as: ValueJSONBuilder.self)
        } catch {
            throw ObjectProblem(object: where_, message: "not valid JSON: \(error)")
        }
        guard case .dict(let object) = value else { throw ObjectProblem(object: where_, message: "must be a JSON object") }
        guard case .string(let namespace)? = object[string: "namespace"], !namespace.isEmpty else {
            throw ObjectProblem(object: where_, message: "needs \"namespace\", a non-empty string")
        }
        guard case .dict(let selectorDict)? = object[string: "selector"] else {
            throw ObjectProblem(object: where_, message: "needs \"selector\", an object of label to value")
        }
        var selector: [(String, String)] = []
        for (key, item) in zip(selectorDict.keys, selectorDict.values) {
            guard case .string(let label) = key, case .string(let wanted) = item else {
                throw ObjectProblem(object: where_, message: "selector values must be strings (label \(key.pyStr))")
            }
            selector.append((label, wanted))
        }
        self.name = name
        self.namespace = namespace
        self.selector = selector
        self.object = object
    }

    /// Whether the service selects `pod` of `namespace`.
    func selects(_ pod: Pod, in namespace: String) -> Bool {
        namespace == self.namespace && selector.allSatisfy { pod.labels.contains($0) }
    }
}

/// A problem with one of the load balancer's objects: logged, and reported as an Event on it
/// when the source is the Kubernetes API.
struct ClusterProblem: Hashable, Sendable {
    var object: ObjectKey
    /// An Event reason: UpperCamelCase, one per kind of problem.
    var reason: String
    var message: String
}

/// The string map of a ConfigMap's or Secret's `data`, and its metadata.uid.
func objectData(key: ObjectKey, json: String) throws(ObjectProblem) -> (data: [(String, String)], uid: String?) {
    let value: JSONValue
    do {
        value = try JSONValue.parse(json)
    } catch {
        throw ObjectProblem(object: key.description, message: "not valid JSON: \(error)")
    }
    let uid = value["metadata"]?["uid"]?.stringValue
    switch value["data"] {
    case nil, .null?:
        return ([], uid)
    case .object(let members)?:
        var data: [(String, String)] = []
        for (name, item) in members {
            guard let text = item.stringValue else {
                throw ObjectProblem(object: key.description, message: "data key \"\(name)\" is not a string")
            }
            data.append((name, text))
        }
        return (data, uid)
    default:
        throw ObjectProblem(object: key.description, message: "\"data\" is not an object")
    }
}

/// Standard base64 (padding optional, whitespace ignored), as Secrets carry their values.
func decodeBase64(_ text: String) -> [UInt8]? {
    var output: [UInt8] = []
    output.reserveCapacity(text.utf8.count * 3 / 4)
    var buffer: UInt32 = 0
    var bits = 0
    var padding = 0
    for byte in text.utf8 {
        let digit: UInt32
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): digit = UInt32(byte - 65)
        case UInt8(ascii: "a")...UInt8(ascii: "z"): digit = UInt32(byte - 71)
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte) + 4
        case UInt8(ascii: "+"): digit = 62
        case UInt8(ascii: "/"): digit = 63
        case UInt8(ascii: "="): padding += 1; continue
        case 0x20, 0x0A, 0x0D, 0x09: continue
        default: return nil
        }
        if padding > 0 { return nil }
        buffer = buffer << 6 | digit
        bits += 6
        if bits >= 8 {
            bits -= 8
            output.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
        }
    }
    // Leftover bits must be padding zeros: 2 or 4 bits, never 6.
    if bits == 6 || padding > 2 { return nil }
    return output
}
