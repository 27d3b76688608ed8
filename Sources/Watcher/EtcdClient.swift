// etcd's v2 keys API over libcurl: recursive reads and long-poll watches, over HTTP or HTTPS
// with a CA file and a client certificate. One client per thread: a curl handle is not shared,
// and it keeps its connection alive between requests.
import CCurl
import JSON
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

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

/// Set from another thread to abandon a blocked watch; curl's progress callback reads it.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func cancel() { flag.store(true, ordering: .relaxed) }
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

struct EtcdSettings: Sendable {
    var base: String
    var caFile: String?
    var certificateFile: String?
    var keyFile: String?
}

/// What one transfer collects; curl's callbacks reach it through an opaque pointer.
private final class Transfer {
    var body: [UInt8] = []
    var etcdIndex: Int?
    let cancel: CancelFlag?
    /// curl's own account of a failure (CURLOPT_ERRORBUFFER): "Failed sending data to the peer"
    /// alone does not say that the TLS peer refused the handshake for want of a certificate.
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    init(cancel: CancelFlag?) {
        self.cancel = cancel
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }
    deinit { errorBuffer.deallocate() }
}

final class EtcdClient {
    let settings: EtcdSettings
    private let handle: UnsafeMutableRawPointer

    /// Call once in main before any thread starts.
    static func globalInit() {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }

    init(settings: EtcdSettings) throws(EtcdError) {
        self.settings = settings
        guard let handle = curl_easy_init() else { throw EtcdError.transport("curl_easy_init failed") }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// Reads a key; with `recursive`, the whole tree below it.
    func get(_ key: String, recursive: Bool) throws(EtcdError) -> EtcdResponse {
        try request(key, query: recursive ? "recursive=true&sorted=true" : "", cancel: nil, isWatch: false)
    }

    /// Waits for the first change at or after `waitIndex` below `key`.
    func watch(_ key: String, waitIndex: Int, cancel: CancelFlag) throws(EtcdError) -> EtcdResponse {
        try request(key, query: "wait=true&recursive=true&waitIndex=\(waitIndex)", cancel: cancel, isWatch: true)
    }

    static func percentEncodedPath(_ key: String) -> String {
        var result = ""
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: "/"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }

    private func request(_ key: String, query: String, cancel: CancelFlag?, isWatch: Bool) throws(EtcdError) -> EtcdResponse {
        let url = settings.base + "/v2/keys" + EtcdClient.percentEncodedPath(key) + (query.isEmpty ? "" : "?" + query)
        let transfer = Transfer(cancel: cancel)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        curl_easy_reset(handle)
        ccurl_setopt_string(handle, CURLOPT_URL, url)
        ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, 5000)
        ccurl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        ccurl_setopt_long(handle, CURLOPT_TCP_KEEPIDLE, 10)
        ccurl_setopt_long(handle, CURLOPT_TCP_KEEPINTVL, 5)
        if !isWatch {
            // A read answers at once; a wait answers only when something changes.
            ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, 60_000)
        }
        if let caFile = settings.caFile { ccurl_setopt_string(handle, CURLOPT_CAINFO, caFile) }
        if let certificateFile = settings.certificateFile { ccurl_setopt_string(handle, CURLOPT_SSLCERT, certificateFile) }
        if let keyFile = settings.keyFile { ccurl_setopt_string(handle, CURLOPT_SSLKEY, keyFile) }
        ccurl_setopt_write_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            let length = size * count
            data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                transfer.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: length))
            }
            return length
        }
        ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        ccurl_setopt_write_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            let length = size * count
            let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
            }
            let prefix = "x-etcd-index:"
            if line.lowercased().hasPrefix(prefix) {
                transfer.etcdIndex = Int(line.dropFirst(prefix.count).filter { $0.isNumber })
            }
            return length
        }
        ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
        if cancel != nil {
            ccurl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
            ccurl_setopt_progress_callback(handle) { context, _, _, _, _ in
                guard let context else { return 0 }
                let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                return transfer.cancel?.isCancelled == true ? 1 : 0
            }
            ccurl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context)
        }
        ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, transfer.errorBuffer)
        let code = withExtendedLifetime(transfer) { curl_easy_perform(handle) }
        ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil)
        if code == CURLE_ABORTED_BY_CALLBACK { throw EtcdError.cancelled }
        guard code == CURLE_OK else {
            let detail = String(cString: transfer.errorBuffer)
            var message = "\(url): \(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)"
            let tlsRefusals = [CURLE_SSL_CONNECT_ERROR, CURLE_SEND_ERROR, CURLE_RECV_ERROR]
            if url.hasPrefix("https://") && settings.certificateFile == nil && tlsRefusals.contains(code) {
                message += " (no client certificate was sent: if etcd requires one, set ETCD2_CERT_FILE and ETCD2_KEY_FILE)"
            }
            throw EtcdError.transport(message)
        }
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return try EtcdClient.parse(body: transfer.body, status: status, etcdIndex: transfer.etcdIndex, url: url)
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
