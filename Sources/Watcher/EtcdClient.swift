// etcd's v2 keys API over libcurl: recursive reads and long-poll watches, over HTTP or HTTPS
// with a CA file and a client certificate. One client per thread: a curl handle is not shared,
// and it keeps its connection alive between requests.
import JSON
import Shared

struct EtcdNode: Sendable {
    var key: String
    var value: String?
    var isDirectory: Bool
    var nodes: [EtcdNode]
    var modifiedIndex: Int

    init?(_ json: JSONValue) {
        guard let key = json["key"]?.stringValue ?? (json["dir"]?.boolValue == true ? "/" : nil) else { return nil }
        self.key = key
        value = json["value"]?.stringValue
        isDirectory = json["dir"]?.boolValue ?? false
        modifiedIndex = json["modifiedIndex"]?.intValue ?? 0
        if case .array(let children)? = json["nodes"] {
            nodes = children.compactMap(EtcdNode.init)
        } else {
            nodes = []
        }
    }

    /// Every leaf (key with a value) below this node, depth first.
    var leaves: [EtcdNode] {
        if !isDirectory { return [self] }
        return nodes.flatMap(\.leaves)
    }
}

struct EtcdResponse: Sendable {
    /// X-Etcd-Index: the cluster's index when the request was served (for a wait: when it began).
    var etcdIndex: Int
    var action: String
    var node: EtcdNode?
    var previousNode: EtcdNode?
}

enum EtcdError: Error, CustomStringConvertible, Sendable {
    /// The key does not exist (errorCode 100); etcd's index when it answered.
    case notFound(etcdIndex: Int)
    /// The watch fell more than etcd's event history behind (errorCode 401).
    case indexCleared
    case http(status: Int, message: String)
    case transport(String)
    case malformed(String)
    case cancelled

    var description: String {
        switch self {
        case .notFound: return "key not found"
        case .indexCleared: return "the event index was cleared (the watch fell too far behind)"
        case .http(let status, let message): return "HTTP \(status): \(message)"
        case .transport(let message): return message
        case .malformed(let message): return "unexpected answer from etcd: \(message)"
        case .cancelled: return "cancelled"
        }
    }
}

struct EtcdSettings: Sendable {
    var base: String
    var tls: TLSFiles
}

final class EtcdClient {
    let settings: EtcdSettings
    private let curl: CurlHandle

    init(settings: EtcdSettings) throws(EtcdError) {
        self.settings = settings
        do {
            curl = try CurlHandle()
        } catch {
            throw EtcdError.transport(error.description)
        }
    }

    /// Reads a key; with `recursive`, the whole tree below it.
    func get(_ key: String, recursive: Bool) throws(EtcdError) -> EtcdResponse {
        try request(key, query: recursive ? "recursive=true&sorted=true" : "", cancel: nil, isWatch: false)
    }

    /// Waits for the first change at or after `waitIndex` below `key`.
    func watch(_ key: String, waitIndex: Int, cancel: CancelFlag) throws(EtcdError) -> EtcdResponse {
        try request(key, query: "wait=true&recursive=true&waitIndex=\(waitIndex)", cancel: cancel, isWatch: true)
    }

    private func request(_ key: String, query: String, cancel: CancelFlag?, isWatch: Bool) throws(EtcdError) -> EtcdResponse {
        let url = settings.base + "/v2/keys" + percentEncoded(key, keepingSlashes: true) + (query.isEmpty ? "" : "?" + query)
        // A read answers at once; a wait answers only when something changes.
        let request = CurlRequest(url: url, timeoutMilliseconds: isWatch ? nil : 60_000, cancel: cancel,
                                  clientCertificateHint: "if etcd requires one, set ETCD2_CERT_FILE and ETCD2_KEY_FILE")
        let response: CurlResponse
        do {
            response = try curl.perform(request, tls: settings.tls)
        } catch {
            switch error {
            case .cancelled: throw EtcdError.cancelled
            case .transport(let message): throw EtcdError.transport(message)
            }
        }
        let etcdIndex = response.header("x-etcd-index").flatMap { Int($0.filter { $0.isNumber }) }
        return try EtcdClient.parse(body: response.body, status: response.status, etcdIndex: etcdIndex, url: url)
    }

    static func parse(body: [UInt8], status: Int, etcdIndex: Int?, url: String) throws(EtcdError) -> EtcdResponse {
        let json: JSONValue
        do {
            json = try JSONReader.parse(body, as: JSONValueBuilder.self)
        } catch {
            if status != 200 && status != 201 {
                throw EtcdError.http(status: status, message: String(decoding: body.prefix(300), as: UTF8.self))
            }
            throw EtcdError.malformed("\(url): \(error)")
        }
        if let errorCode = json["errorCode"]?.intValue {
            switch errorCode {
            case 100: throw EtcdError.notFound(etcdIndex: etcdIndex ?? json["index"]?.intValue ?? 0)
            case 401: throw EtcdError.indexCleared
            default: throw EtcdError.http(status: status, message: "etcd error \(errorCode): \(json["message"]?.stringValue ?? "") \(json["cause"]?.stringValue ?? "")")
            }
        }
        guard status == 200 || status == 201 else {
            throw EtcdError.http(status: status, message: String(decoding: body.prefix(300), as: UTF8.self))
        }
        return EtcdResponse(etcdIndex: etcdIndex ?? 0, action: json["action"]?.stringValue ?? "",
                            node: json["node"].flatMap(EtcdNode.init), previousNode: json["prevNode"].flatMap(EtcdNode.init))
    }
}
