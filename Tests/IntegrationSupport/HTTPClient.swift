// One libcurl handle for a test's own HTTP requests: it keeps its connection alive between
// requests (over TLS too), so a test can write thousands of objects in seconds.
import CCurl
import Foundation
import Shared

public final class HTTPClient {
    public struct Response {
        public let status: Int
        public let body: String
    }

    /// TLS files: the CA to trust, and the client certificate and key to present.
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?
    private let handle: UnsafeMutableRawPointer

    public init() throws {
        guard let handle = curl_easy_init() else { throw SystemError("curl_easy_init", errno: ENOMEM) }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    public func request(_ method: String, _ url: String, body: String? = nil, headers: [String] = [],
                        timeout: Double = 10) throws -> Response {
        curl_easy_reset(handle)
        ccurl_setopt_string(handle, CURLOPT_URL, url)
        ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(timeout * 1000))
        ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        if let body {
            ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.utf8.count)
            ccurl_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, body)
        } else if method == "GET" {
            ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1)
        }
        if let caFile { ccurl_setopt_string(handle, CURLOPT_CAINFO, caFile) }
        if let certificateFile { ccurl_setopt_string(handle, CURLOPT_SSLCERT, certificateFile) }
        if let keyFile { ccurl_setopt_string(handle, CURLOPT_SSLKEY, keyFile) }
        // No "Expect: 100-continue" pause before large bodies.
        var list: UnsafeMutablePointer<curl_slist>?
        for header in headers + ["Expect:"] { list = curl_slist_append(list, header) }
        defer { curl_slist_free_all(list) }
        ccurl_setopt_pointer(handle, CURLOPT_HTTPHEADER, list)
        // curl's default writer (fwrite) into a memory stream: the body without a Swift callback.
        var bytes: UnsafeMutablePointer<CChar>?
        var count = 0
        guard let stream = open_memstream(&bytes, &count) else { throw SystemError("open_memstream") }
        ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, stream)
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))
        let code = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            defer { ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil) }
            return curl_easy_perform(handle)
        }
        fclose(stream)
        defer { free(bytes) }
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw SystemError("curl_easy_perform", errno: EIO,
                              detail: "\(method) \(url): \(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)")
        }
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        let text = bytes.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: count), as: UTF8.self) } ?? ""
        return Response(status: status, body: text)
    }
}
