// The Kubernetes REST API over libcurl, as client-go's reflector speaks it: paginated lists,
// watch streams of one JSON event per line (with bookmarks), Status objects for errors, a bearer
// token re-read from its file (service account tokens rotate), and Events.
import JSON
import Dispatch
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

struct KubernetesAPISettings: Sendable {
    /// The API server's URL, no trailing slash.
    var server: String
    /// Read for the bearer token at least every minute and after a 401; an absent file means no token.
    var tokenFile: String
    var tls: TLSFiles
}

/// The bearer token, read from its file at most a minute ago, and again after a 401.
final class BearerToken: Sendable {
    static let maximumAge = 60.0
    let path: String
    private let cached = Mutex<(token: String?, readAt: Double)?>(nil)

    init(path: String) { self.path = path }

    var current: String? {
        if let cached = cached.withLock({ $0 }), monotonicSeconds() - cached.readAt < BearerToken.maximumAge { return cached.token }
        return reload()
    }

    @discardableResult
    func reload() -> String? {
        let bytes = (try? FileIO.readFile(path)) ?? nil
        let token = bytes.map { String(decoding: $0, as: UTF8.self).trimmingWhitespace }.flatMap { $0.isEmpty ? nil : $0 }
        cached.withLock { $0 = (token, monotonicSeconds()) }
        return token
    }
}

/// Splits a byte stream into lines: a curl write callback hands over arbitrary chunks, and a watch
/// event may span several of them (or a chunk hold several events).
struct LineSplitter {
    /// A longer line is an error rather than unbounded memory.
    let maximumLineLength: Int
    private var partial: [UInt8] = []

    init(maximumLineLength: Int = 64 << 20) { self.maximumLineLength = maximumLineLength }

    struct LineTooLong: Error {}

    /// The complete lines the chunk ends (without their newline; empty lines are skipped).
    mutating func feed(_ chunk: UnsafeBufferPointer<UInt8>) throws(LineTooLong) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = 0
        for index in chunk.indices where chunk[index] == UInt8(ascii: "\n") {
            if partial.isEmpty {
                if index > start { lines.append(Array(chunk[start..<index])) }
            } else {
                partial.append(contentsOf: chunk[start..<index])
                lines.append(partial)
                partial = []
            }
            start = index + 1
        }
        partial.append(contentsOf: chunk[start..<chunk.count])
        if partial.count > maximumLineLength { throw LineTooLong() }
        return lines.filter { !$0.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") } }
    }

    mutating func feed(_ bytes: [UInt8]) throws(LineTooLong) -> [[UInt8]] {
        try bytes.withUnsafeBufferPointer { buffer throws(LineTooLong) in try feed(buffer) }
    }

    /// What is left after the stream ended: a last line without its newline, if any.
    mutating func finish() -> [UInt8]? {
        defer { partial = [] }
        return partial.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) ? nil : partial
    }
}

/// A `Status` object (kind Status): how the API server explains a failure, as an HTTP error's
/// body or as the object of a watch ERROR event.
struct APIStatus: Equatable, Sendable {
    var code: Int
    var reason: String
    var message: String
}

extension APIStatus {
    /// Reads a Status; nil when the JSON is not one.
    init?(_ json: JSONValue) {
        guard json["kind"]?.stringValue == "Status" || json["code"]?.intValue != nil else { return nil }
        code = json["code"]?.intValue ?? 0
        reason = json["reason"]?.stringValue ?? ""
        message = json["message"]?.stringValue ?? ""
    }

    /// The Status in an HTTP error's body, or one made of the status code when the body is not one.
    init(httpStatus: Int, body: [UInt8]) {
        if let json = try? JSONReader.parse(body, as: JSONValueBuilder.self), let status = APIStatus(json) {
            self = status
            if code == 0 { code = httpStatus }
        } else {
            self.init(code: httpStatus, reason: "", message: String(decoding: body.prefix(300), as: UTF8.self).trimmingWhitespace)
        }
    }

    /// 410 Gone: the resourceVersion (or a list's continue token) is older than the server keeps.
    var isExpired: Bool { code == 410 || reason == "Expired" || reason == "Gone" }
}

/// One line of a watch stream.
enum WatchEvent: Equatable {
    /// ADDED, MODIFIED (`json`: the object as kubectl shows it) or DELETED (`json` nil).
    case object(name: String, json: String?, resourceVersion: String)
    /// Nothing changed, but the watch is current up to this resourceVersion.
    case bookmark(resourceVersion: String)
    case error(APIStatus)

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads an event of a watch on objects of `kind`: its object is cut from the line's text
    /// as a list page's items are (ListPage.swift).
    static func parse(_ line: [UInt8], kind: ObjectKind) throws(Malformed) -> WatchEvent {
        let read = line.withUnsafeBufferPointer { bytes in
            Result { () throws(Malformed) -> WatchEvent in try parse(bytes, kind: kind) }
        }
        return try read.get()
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>, kind: ObjectKind) throws(Malformed) -> WatchEvent {
        let walk: JSONWalk
        do {
            walk = try JSONWalk(checking: bytes)
        } catch {
            throw Malformed(description: "a watch event that is not JSON: \(error)")
        }
        // The event's members, then its object's and their metadata's, are each listed once.
        let members = walk.isObject(at: walk.root) ? walk.members(ofObjectAt: walk.root) : []
        guard let type = walk.string("type", of: members), let object = walk.member("object", of: members) else {
            throw Malformed(description: "a watch event without type and object")
        }
        let parts = walk.kubernetesObject(object)
        let resourceVersion = parts.flatMap { walk.string("resourceVersion", of: $0.metadataMembers) } ?? ""
        switch type {
        case "ADDED", "MODIFIED", "DELETED":
            let nameless = Malformed(description: "a \(type) event whose object has no metadata.name")
            guard let parts else { throw nameless }
            if type == "DELETED" {
                guard let name = walk.string("name", of: parts.metadataMembers), !name.isEmpty else { throw nameless }
                return .object(name: name, json: nil, resourceVersion: resourceVersion)
            }
            // The shape reads the name; it is not read twice.
            guard let shown = walk.kubectlShape(parts, kind: kind), !shown.name.isEmpty else { throw nameless }
            return .object(name: shown.name, json: shown.json, resourceVersion: resourceVersion)
        case "BOOKMARK":
            return .bookmark(resourceVersion: resourceVersion)
        case "ERROR":
            let status = walk.value(object)
            return .error(status.flatMap { APIStatus($0) } ?? APIStatus(code: 0, reason: "", message: status?.serialized ?? ""))
        default:
            throw Malformed(description: "a watch event of unknown type \(type)")
        }
    }
}

/// What one list+watch follows: a kind in a namespace, all of it or one object by name (a field
/// selector, so that RBAC can grant exactly that object).
struct ResourceWatch: Hashable, Sendable, CustomStringConvertible {
    var kind: ObjectKind
    var namespace: String
    var name: String?

    var path: String { "/api/v1/namespaces/\(namespace)/\(kind.rawValue)" }
    var fieldSelector: String? { name.map { "metadata.name%3D\($0)" } }
    var description: String { name.map { "\(kind.kindName) \(namespace)/\($0)" } ?? "\(kind.rawValue) of namespace \(namespace)" }
}

extension ObjectKind {
    /// The object's `kind`, as `kubectl get -o json` shows it.
    var kindName: String {
        switch self {
        case .pods: return "Pod"
        case .configmaps: return "ConfigMap"
        case .secrets: return "Secret"
        }
    }
}

enum KubernetesAPIError: Error, CustomStringConvertible, Sendable {
    /// The server answered with an error status (its Status object's reason and message).
    case status(APIStatus, verb: String, path: String)
    case transport(String)
    case malformed(String)
    case cancelled

    var description: String {
        switch self {
        case .status(let status, let verb, let path):
            return "\(verb) \(path): HTTP \(status.code)\(status.reason.isEmpty ? "" : " \(status.reason)"): \(status.message)"
        case .transport(let message): return message
        case .malformed(let message): return "unexpected answer from the API server: \(message)"
        case .cancelled: return "cancelled"
        }
    }

    var isExpired: Bool {
        if case .status(let status, _, _) = self { return status.isExpired }
        return false
    }
}

/// A 403 names what RBAC must grant; each distinct verb/resource/namespace is logged once.
final class ForbiddenLog: Sendable {
    private let logged = Mutex<Set<String>>([])

    func note(verb: String, resource: String, namespace: String, name: String?, message: String) {
        let key = "\(verb) \(resource) \(namespace)"
        guard logged.withLock({ $0.insert(key).inserted }) else { return }
        var fields: KeyValuePairs<String, String> = ["verb": verb, "resource": resource, "namespace": namespace, "message": message]
        if let name {
            fields = ["verb": verb, "resource": resource, "namespace": namespace, "name": name, "message": message]
        }
        Log.error("the API server forbids this; grant it to the watcher's service account (RBAC), retrying with backoff", fields)
    }
}

/// One client per thread: a curl handle is not shared, and it keeps its connection alive.
final class KubernetesClient {
    static let pageSize = 500
    let settings: KubernetesAPISettings
    let token: BearerToken
    private let curl: CurlHandle

    init(settings: KubernetesAPISettings, token: BearerToken) throws(KubernetesAPIError) {
        self.settings = settings
        self.token = token
        do {
            curl = try CurlHandle()
        } catch {
            throw KubernetesAPIError.transport(error.description)
        }
    }

    /// Runs `body` on a thread of its own with a client of its own (blocking transfers never run
    /// on Swift's concurrency pool); what went wrong, if it could not start.
    static func startThread(settings: KubernetesAPISettings, token: BearerToken,
                            _ body: @escaping @Sendable (KubernetesClient) -> Void) -> String? {
        do {
            try Shared.startThread {
                do {
                    body(try KubernetesClient(settings: settings, token: token))
                } catch {
                    Log.error("cannot create an API client", ["error": "\(error)"])
                }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// One request; a 401 re-reads the token and tries once more (a rotated token).
    func send(_ method: String, _ path: String, body: String? = nil, contentType: String? = nil, timeoutMilliseconds: Int?,
              cancel: CancelFlag? = nil, stream: ((Int, UnsafeBufferPointer<UInt8>) -> Bool)? = nil) throws(KubernetesAPIError) -> CurlResponse {
        var response = try perform(method, path, body: body, contentType: contentType, timeoutMilliseconds: timeoutMilliseconds,
                                   cancel: cancel, stream: stream, token: token.current)
        if response.status == 401 {
            response = try perform(method, path, body: body, contentType: contentType, timeoutMilliseconds: timeoutMilliseconds,
                                   cancel: cancel, stream: stream, token: token.reload())
        }
        return response
    }

    private func perform(_ method: String, _ path: String, body: String?, contentType: String?, timeoutMilliseconds: Int?,
                         cancel: CancelFlag?, stream: ((Int, UnsafeBufferPointer<UInt8>) -> Bool)?,
                         token: String?) throws(KubernetesAPIError) -> CurlResponse {
        var headers = ["Accept: application/json"]
        if let token { headers.append("Authorization: Bearer \(token)") }
        if let contentType { headers.append("Content-Type: \(contentType)") }
        let request = CurlRequest(url: settings.server + path, method: method, headers: headers, body: body,
                                  timeoutMilliseconds: timeoutMilliseconds, cancel: cancel,
                                  clientCertificateHint: "if the API server requires one, set KUBE_HAPROXY_API_CERT_FILE and KUBE_HAPROXY_API_KEY_FILE")
        do {
            return try curl.perform(request, tls: settings.tls, stream: stream)
        } catch {
            switch error {
            case .cancelled: throw KubernetesAPIError.cancelled
            case .transport(let message): throw KubernetesAPIError.transport(message)
            }
        }
    }

    /// Lists every object a watch follows, page by page; their JSON as `kubectl get -o json`
    /// shows each, and the list's resourceVersion. An expired continue token starts the list
    /// again from its first page.
    func list(_ watch: ResourceWatch, cancel: CancelFlag?) throws(KubernetesAPIError) -> (objects: [ListedObject], resourceVersion: String) {
        var objects: [ListedObject] = []
        var continueToken: String? = nil
        var restarts = 0
        while true {
            var query = "?limit=\(KubernetesClient.pageSize)"
            if let selector = watch.fieldSelector { query += "&fieldSelector=\(selector)" }
            if let continueToken { query += "&continue=\(percentEncoded(continueToken))" }
            let response = try send("GET", watch.path + query, timeoutMilliseconds: 60_000, cancel: cancel)
            guard response.status == 200 else {
                let status = APIStatus(httpStatus: response.status, body: response.body)
                if status.isExpired, continueToken != nil, restarts < 3 {
                    Log.warning("a list's continue token expired; listing again from the start", ["objects": watch.description])
                    objects = []
                    continueToken = nil
                    restarts += 1
                    continue
                }
                throw KubernetesAPIError.status(status, verb: "list", path: watch.path)
            }
            // One page is decoded at a time across the threads: a page's tree of values is many
            // times its text, and the namespaces' first lists all arrive at once.
            KubernetesClient.decoding.wait()
            let page = Result { () throws(KubernetesAPIError) in try KubernetesClient.items(of: response.body, watch) }
            KubernetesClient.decoding.signal()
            let (items, metadata) = try page.get()
            objects += items
            let next = metadata?["continue"]?.stringValue ?? ""
            if next.isEmpty {
                return (objects, metadata?["resourceVersion"]?.stringValue ?? "")
            }
            continueToken = next
        }
    }

    private static let decoding = DispatchSemaphore(value: 1)

    /// A list page's objects, and its metadata (resourceVersion, continue).
    private static func items(of body: [UInt8], _ watch: ResourceWatch) throws(KubernetesAPIError) -> ([ListedObject], JSONValue?) {
        do {
            let page = try ListPage(body, kind: watch.kind)
            return (page.items, page.metadata)
        } catch {
            throw KubernetesAPIError.malformed("list \(watch.path): \(error)")
        }
    }

    /// Follows a watch from `resourceVersion` until the server ends it (after `timeoutSeconds`),
    /// handing each event over as it arrives. A 410 (as the answer or as an ERROR event) throws
    /// an error whose `isExpired` is true.
    func watch(_ watch: ResourceWatch, from resourceVersion: String, timeoutSeconds: Int, cancel: CancelFlag,
               onEvent: @escaping (WatchEvent) -> Void) throws(KubernetesAPIError) {
        var query = "?watch=1&resourceVersion=\(percentEncoded(resourceVersion))&allowWatchBookmarks=true"
            + "&timeoutSeconds=\(timeoutSeconds)"
        if let selector = watch.fieldSelector { query += "&fieldSelector=\(selector)" }
        var splitter = LineSplitter()
        var errorBody: [UInt8] = []
        var failure: KubernetesAPIError? = nil
        func handle(_ line: [UInt8]) -> Bool {
            let event: WatchEvent
            do {
                event = try WatchEvent.parse(line, kind: watch.kind)
            } catch {
                failure = .malformed("watch \(watch.path): \(error)")
                return false
            }
            if case .error(let status) = event {
                failure = .status(status, verb: "watch", path: watch.path)
                return false
            }
            onEvent(event)
            return true
        }
        // The server ends the stream after timeoutSeconds; the margin covers a silent connection.
        let response = try send("GET", watch.path + query, timeoutMilliseconds: (timeoutSeconds + 30) * 1000, cancel: cancel) { status, chunk in
            guard status == 200 else {
                if errorBody.count < 65536 { errorBody.append(contentsOf: chunk) }
                return true
            }
            do {
                for line in try splitter.feed(chunk) where !handle(line) { return false }
            } catch {
                failure = .malformed("watch \(watch.path): an event longer than \(splitter.maximumLineLength) bytes")
                return false
            }
            return true
        }
        if let failure { throw failure }
        guard response.status == 200 else {
            throw KubernetesAPIError.status(APIStatus(httpStatus: response.status, body: errorBody), verb: "watch", path: watch.path)
        }
        if let last = splitter.finish(), !handle(last), let failure { throw failure }
    }
}
