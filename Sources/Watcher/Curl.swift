// One libcurl easy handle per thread, for every HTTP client of the watcher (etcd, the Kubernetes
// API): TLS files, timeouts, keep-alive, cancellation, a body collected or streamed, and curl's
// own account of a failure.
import CCurl
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Set from another thread to abandon a blocked transfer; curl's progress callback reads it.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func cancel() { flag.store(true, ordering: .relaxed) }
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// The files of an HTTPS connection: a CA to verify the server, a client certificate and key.
struct TLSFiles: Sendable {
    var caFile: String?
    var certificateFile: String?
    var keyFile: String?
}

enum CurlError: Error, CustomStringConvertible, Sendable {
    case transport(String)
    case cancelled

    var description: String {
        switch self {
        case .transport(let message): return message
        case .cancelled: return "cancelled"
        }
    }
}

struct CurlRequest {
    var url: String
    var method = "GET"
    var headers: [String] = []
    var body: String?
    /// The whole transfer's limit; nil for a wait that answers only when something changes.
    var timeoutMilliseconds: Int?
    var cancel: CancelFlag?
    /// Said after curl's message when an HTTPS peer refused the handshake and no client
    /// certificate was sent (the setting that would send one).
    var clientCertificateHint: String?
}

struct CurlResponse {
    var status: Int
    /// The body, unless a stream handler consumed it.
    var body: [UInt8]
    /// Header lines as sent, lower-cased names: "x-etcd-index: 12".
    var headerLines: [String]

    func header(_ name: String) -> String? {
        let prefix = name.lowercased() + ":"
        guard let line = headerLines.first(where: { $0.lowercased().hasPrefix(prefix) }) else { return nil }
        return String(line.dropFirst(prefix.count)).trimmingWhitespace
    }
}

extension String {
    var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}

/// What one transfer collects; curl's callbacks reach it through an opaque pointer.
private final class Transfer {
    var body: [UInt8] = []
    var headerLines: [String] = []
    let cancel: CancelFlag?
    let handle: UnsafeMutableRawPointer
    /// Given each chunk with the response's status; false aborts the transfer.
    let stream: ((Int, UnsafeBufferPointer<UInt8>) -> Bool)?
    /// curl's own account of a failure (CURLOPT_ERRORBUFFER): "Failed sending data to the peer"
    /// alone does not say that the TLS peer refused the handshake for want of a certificate.
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    init(handle: UnsafeMutableRawPointer, cancel: CancelFlag?, stream: ((Int, UnsafeBufferPointer<UInt8>) -> Bool)?) {
        self.handle = handle
        self.cancel = cancel
        self.stream = stream
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }
    deinit { errorBuffer.deallocate() }
}

/// One curl handle: not shared between threads; it keeps its connection alive between requests.
final class CurlHandle {
    private let handle: UnsafeMutableRawPointer

    /// Call once in main before any thread starts.
    static func globalInit() {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }

    init() throws(CurlError) {
        guard let handle = curl_easy_init() else { throw CurlError.transport("curl_easy_init failed") }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// Performs the request. With `stream`, each chunk of the body goes to it as it arrives
    /// (with the status), and the response's body stays empty.
    func perform(_ request: CurlRequest, tls: TLSFiles,
                 stream: ((Int, UnsafeBufferPointer<UInt8>) -> Bool)? = nil) throws(CurlError) -> CurlResponse {
        let transfer = Transfer(handle: handle, cancel: request.cancel, stream: stream)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        curl_easy_reset(handle)
        // An option curl refuses (an unsupported TLS file type, a build without a feature) would
        // otherwise send a different request than meant: the first refusal fails the request.
        var refused: (CURLcode, String)?
        func set(_ result: CURLcode, _ option: String) {
            if result != CURLE_OK && refused == nil { refused = (result, option) }
        }
        set(ccurl_setopt_string(handle, CURLOPT_URL, request.url), "CURLOPT_URL")
        // Named in the API server's audit log and request metrics, as client-go names its clients.
        set(ccurl_setopt_string(handle, CURLOPT_USERAGENT, "kube-haproxy-watcher"), "CURLOPT_USERAGENT")
        set(ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "CURLOPT_NOSIGNAL")
        set(ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, 5000), "CURLOPT_CONNECTTIMEOUT_MS")
        set(ccurl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1), "CURLOPT_TCP_KEEPALIVE")
        set(ccurl_setopt_long(handle, CURLOPT_TCP_KEEPIDLE, 10), "CURLOPT_TCP_KEEPIDLE")
        set(ccurl_setopt_long(handle, CURLOPT_TCP_KEEPINTVL, 5), "CURLOPT_TCP_KEEPINTVL")
        if let timeout = request.timeoutMilliseconds { set(ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeout), "CURLOPT_TIMEOUT_MS") }
        if request.method != "GET" { set(ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method), "CURLOPT_CUSTOMREQUEST") }
        if let body = request.body {
            set(ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.utf8.count), "CURLOPT_POSTFIELDSIZE")
            set(ccurl_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, body), "CURLOPT_COPYPOSTFIELDS")
        }
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        for header in request.headers { headerList = curl_slist_append(headerList, header) }
        defer { curl_slist_free_all(headerList) }
        if let headerList { set(ccurl_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList)), "CURLOPT_HTTPHEADER") }
        if let caFile = tls.caFile { set(ccurl_setopt_string(handle, CURLOPT_CAINFO, caFile), "CURLOPT_CAINFO") }
        if let certificateFile = tls.certificateFile { set(ccurl_setopt_string(handle, CURLOPT_SSLCERT, certificateFile), "CURLOPT_SSLCERT") }
        if let keyFile = tls.keyFile { set(ccurl_setopt_string(handle, CURLOPT_SSLKEY, keyFile), "CURLOPT_SSLKEY") }
        set(ccurl_setopt_write_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            let length = size * count
            return data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes -> Int in
                let chunk = UnsafeBufferPointer(start: bytes, count: length)
                if let stream = transfer.stream {
                    var status = 0
                    ccurl_getinfo_long(transfer.handle, CURLINFO_RESPONSE_CODE, &status)
                    return stream(status, chunk) ? length : 0
                }
                transfer.body.append(contentsOf: chunk)
                return length
            }
        }, "CURLOPT_WRITEFUNCTION")
        set(ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context), "CURLOPT_WRITEDATA")
        set(ccurl_setopt_write_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            guard let data, let context else { return 0 }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            let length = size * count
            let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
            }
            // A new status line (after a redirect or a 100 Continue) starts a new header block.
            if line.hasPrefix("HTTP/") { transfer.headerLines = [] }
            transfer.headerLines.append(line.trimmingWhitespace)
            return length
        }, "CURLOPT_HEADERFUNCTION")
        set(ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context), "CURLOPT_HEADERDATA")
        if request.cancel != nil {
            set(ccurl_setopt_long(handle, CURLOPT_NOPROGRESS, 0), "CURLOPT_NOPROGRESS")
            set(ccurl_setopt_progress_callback(handle) { context, _, _, _, _ in
                guard let context else { return 0 }
                let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
                return transfer.cancel?.isCancelled == true ? 1 : 0
            }, "CURLOPT_XFERINFOFUNCTION")
            set(ccurl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context), "CURLOPT_XFERINFODATA")
        }
        if let (code, option) = refused {
            throw CurlError.transport("\(request.url): curl refused \(option): \(String(cString: curl_easy_strerror(code)))")
        }
        ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, transfer.errorBuffer)
        let code = withExtendedLifetime(transfer) { curl_easy_perform(handle) }
        ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil)
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if code == CURLE_ABORTED_BY_CALLBACK || (code == CURLE_WRITE_ERROR && request.cancel?.isCancelled == true) {
            throw CurlError.cancelled
        }
        // A stream handler that refused a chunk ended the transfer on purpose.
        guard code == CURLE_OK || (code == CURLE_WRITE_ERROR && stream != nil) else {
            let detail = String(cString: transfer.errorBuffer)
            var message = "\(request.url): \(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)"
            let tlsRefusals = [CURLE_SSL_CONNECT_ERROR, CURLE_SEND_ERROR, CURLE_RECV_ERROR]
            if request.url.hasPrefix("https://") && tls.certificateFile == nil && tlsRefusals.contains(code),
               let hint = request.clientCertificateHint {
                message += " (no client certificate was sent: \(hint))"
            }
            throw CurlError.transport(message)
        }
        return CurlResponse(status: status, body: transfer.body, headerLines: transfer.headerLines)
    }
}

/// Percent-encoding for a URL's path or query: unreserved characters stay (and `/` in a path).
func percentEncoded(_ text: String, keepingSlashes: Bool = false) -> String {
    var result = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            result.unicodeScalars.append(Unicode.Scalar(byte))
        case UInt8(ascii: "/") where keepingSlashes:
            result.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16, uppercase: true)
            result += "%" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return result
}
