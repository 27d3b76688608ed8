// The metrics and health endpoint (KUBE_HAPROXY_METRICS_ADDR): a deliberately tiny HTTP/1.1
// server. One GET per connection: /metrics, /healthz, /readyz.
import CSystem
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

final class MetricsServer: Sendable {
    struct Response: Sendable {
        var status: Int
        var contentType: String
        var body: String
    }

    static let maximumConnections = 16
    let address: String
    let respond: @Sendable (_ path: String) -> Response
    let threads = ConnectionThreads(name: "metrics", limit: MetricsServer.maximumConnections)

    init(address: String, respond: @escaping @Sendable (_ path: String) -> Response) {
        self.address = address
        self.respond = respond
    }

    /// Splits "host:port" (host may be empty for all addresses, or an IPv6 literal in brackets).
    static func parse(_ address: String) -> (host: String?, port: String)? {
        guard let colon = address.lastIndex(of: ":") else { return nil }
        var host = String(address[..<colon])
        let port = String(address[address.index(after: colon)...])
        guard let number = Int(port), (1...65535).contains(number) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? nil : host, port)
    }

    func start() throws(SystemError) {
        guard let (host, port) = MetricsServer.parse(address) else {
            throw SystemError("KUBE_HAPROXY_METRICS_ADDR", errno: EINVAL, detail: "\"\(address)\" (expected HOST:PORT, e.g. 0.0.0.0:9090)")
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let lookup = getaddrinfo(host, port, &hints, &list)
        guard lookup == 0, let info = list else {
            throw SystemError("getaddrinfo", errno: EINVAL, detail: "\(address): \(String(cString: gai_strerror(lookup)))")
        }
        defer { freeaddrinfo(list) }
        let listener = try FileDescriptor(socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0),
                                          from: "socket")
        try listener.setOption(SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
        try listener.bindAndListen(info.pointee.ai_addr, length: info.pointee.ai_addrlen, name: address)
        try ConnectionThreads.startAccepting(listener) { [self] fd in acceptLoop(fd) }
    }

    private func acceptLoop(_ listener: Int32) -> Never {
        threads.acceptForever(listener) { [self] fd in serve(fd) }
    }

    private func serve(_ fd: Int32) {
        // A connection without its timeouts could hold a connection thread forever: not served.
        do {
            try FileDescriptor.setTimeout(of: fd, SO_RCVTIMEO, "SO_RCVTIMEO", seconds: 5)
            try FileDescriptor.setTimeout(of: fd, SO_SNDTIMEO, "SO_SNDTIMEO", seconds: 5)
        } catch {
            Log.warning("metrics: could not set a connection's timeouts", ["error": error.description])
            return
        }
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        // Up to the end of the headers, at most 8 KiB.
        while request.count < 8192 {
            let count = chunk.withUnsafeMutableBytes { raw in retryingOnInterrupt { read(fd, raw.baseAddress, raw.count) } }
            if count <= 0 { return }
            request.append(contentsOf: chunk[0..<count])
            if endOfHeaders(request) { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let response: Response
        if parts.count < 2 || (parts[0] != "GET" && parts[0] != "HEAD") {
            response = Response(status: 405, contentType: "text/plain; charset=utf-8", body: "only GET\n")
        } else {
            let path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
            response = respond(path)
        }
        let reason = [200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][response.status] ?? "Error"
        let head = "HTTP/1.1 \(response.status) \(reason)\r\nContent-Type: \(response.contentType)\r\n"
            + "Content-Length: \(response.body.utf8.count)\r\nConnection: close\r\n\r\n"
        try? UnixSocket.send(fd, parts.first == "HEAD" ? head : head + response.body)
    }

    private func endOfHeaders(_ bytes: [UInt8]) -> Bool {
        var index = bytes.startIndex
        while let newline = bytes[index...].firstIndex(of: 10) {
            let next = bytes.index(after: newline)
            if next < bytes.endIndex, bytes[next] == 10 { return true }
            if next + 1 < bytes.endIndex, bytes[next] == 13, bytes[next + 1] == 10 { return true }
            index = next
        }
        return false
    }
}
