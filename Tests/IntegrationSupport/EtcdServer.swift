// A real etcd with the v2 API on free loopback ports, its data in a temporary directory; over
// plain HTTP, or over HTTPS with client-certificate auth beside a plain listener the test itself
// writes through. Stopped in deinit; stop() and start() again keep the same data and ports.
import Foundation
import JSON
import Shared
#if canImport(Glibc)
import Glibc
#endif

/// A certificate authority made with openssl for one test, and the certificates it issues.
public struct TestCertificateAuthority {
    public let directory: String
    public let certificateFile: String
    let keyFile: String

    public struct Issued {
        public let keyFile: String
        public let certificateFile: String
        public var keyPEM: String { (try? String(contentsOfFile: keyFile, encoding: .utf8)) ?? "" }
        public var certificatePEM: String { (try? String(contentsOfFile: certificateFile, encoding: .utf8)) ?? "" }
    }

    public init(directory: String) throws {
        self.directory = directory
        keyFile = directory + "/ca.key"
        certificateFile = directory + "/ca.crt"
        try TestCertificateAuthority.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                              "-keyout", keyFile, "-out", certificateFile, "-days", "2", "-subj", "/CN=kube-haproxy test CA"])
    }

    /// A key and a certificate signed by this authority, for a server (`subjectAltNames` such
    /// as "DNS:localhost", "IP:127.0.0.1") or a client.
    public func issue(_ name: String, commonName: String, subjectAltNames: [String] = [], client: Bool = false) throws -> Issued {
        let key = "\(directory)/\(name).key"
        let request = "\(directory)/\(name).csr"
        let certificate = "\(directory)/\(name).crt"
        let extensions = "\(directory)/\(name).ext"
        var lines = ["extendedKeyUsage=\(client ? "clientAuth" : "serverAuth")"]
        if !subjectAltNames.isEmpty { lines.append("subjectAltName=" + subjectAltNames.joined(separator: ",")) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: extensions, atomically: true, encoding: .utf8)
        try TestCertificateAuthority.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                              "-keyout", key, "-out", request, "-subj", "/CN=\(commonName)"])
        try TestCertificateAuthority.openssl(["x509", "-req", "-in", request, "-CA", certificateFile, "-CAkey", keyFile,
                                              "-CAcreateserial", "-out", certificate, "-days", "2", "-extfile", extensions])
        return Issued(keyFile: key, certificateFile: certificate)
    }

    static func openssl(_ arguments: [String]) throws {
        let result = try runCommand("/usr/bin/openssl", arguments, timeout: 30)
        guard result.status == 0 else {
            throw SystemError("openssl", errno: EINVAL, detail: "\(arguments.prefix(2).joined(separator: " ")): \(result.stderr)")
        }
    }
}

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate: the files a
/// loopback server serves HTTPS with (requiring client certificates signed by the CA, where it does).
public struct TestServerCertificates {
    public let authority: TestCertificateAuthority
    public let server: TestCertificateAuthority.Issued
    public let client: TestCertificateAuthority.Issued

    /// `server`: the name of the server's files in `directory`.
    public init(directory: String, server name: String) throws {
        authority = try TestCertificateAuthority(directory: directory)
        server = try authority.issue(name, commonName: "localhost", subjectAltNames: ["DNS:localhost", "IP:127.0.0.1"])
        client = try authority.issue("\(name)-client", commonName: "kube-haproxy-watcher", client: true)
    }
}

public final class EtcdServer {
    /// Files etcd serves HTTPS with, requiring client certificates signed by the CA.
    public struct TLS {
        public let certificates: TestServerCertificates
        public var authority: TestCertificateAuthority { certificates.authority }
        public var server: TestCertificateAuthority.Issued { certificates.server }
        public var client: TestCertificateAuthority.Issued { certificates.client }

        public init(directory: String) throws {
            certificates = try TestServerCertificates(directory: directory, server: "etcd")
        }
    }

    public let directory: String
    public let dataDirectory: String
    public let tls: TLS?
    /// The URL the watcher is given: https with `tls`, else the plain listener.
    public let clientURL: String
    /// A plain-http listener the test writes through (the same as `clientURL` without TLS).
    public let plainURL: String
    let clientPort: Int
    let plainPort: Int?
    let peerPort: Int
    private var process: BackgroundProcess?
    private var starts = 0

    public init(directory: String, tls: TLS? = nil) throws {
        self.directory = directory
        // Every v2 write waits for an fsync: on tmpfs that costs nothing, so bursts of thousands
        // of writes take a second or two.
        var template = Array("/dev/shm/kube-haproxy-etcd.XXXXXX".utf8CString)
        dataDirectory = mkdtemp(&template).map { String(cString: $0) } ?? directory + "/etcd-data"
        self.tls = tls
        clientPort = try freePort()
        peerPort = try freePort()
        if tls != nil {
            let plain = try freePort()
            plainPort = plain
            clientURL = "https://127.0.0.1:\(clientPort)"
            plainURL = "http://127.0.0.1:\(plain)"
        } else {
            plainPort = nil
            clientURL = "http://127.0.0.1:\(clientPort)"
            plainURL = clientURL
        }
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    public var isRunning: Bool { process?.isRunning == true }
    public var log: String { process?.log ?? "" }

    /// Starts etcd (again, on the same data directory and ports) and waits until it answers.
    public func start() throws {
        guard !isRunning else { return }
        starts += 1
        var listen = [clientURL]
        if let plainPort { listen.append("http://127.0.0.1:\(plainPort)") }
        var arguments = ["test", dataDirectory, listen.joined(separator: ","), clientURL, "http://127.0.0.1:\(peerPort)", "--log-level", "warn"]
        if let tls {
            arguments += ["--cert-file", tls.server.certificateFile, "--key-file", tls.server.keyFile,
                          "--trusted-ca-file", tls.authority.certificateFile, "--client-cert-auth"]
        }
        let started = try BackgroundProcess(TestPaths.packageRoot + "/scripts/etcd-v2", arguments, logPath: "\(directory)/etcd-\(starts).log")
        process = started
        let ready = waitUntil(timeout: 20, interval: 0.05) {
            guard started.isRunning else { return true }
            return (try? EtcdKeys(url: plainURL).get("/")).map { $0.status == 200 } ?? false
        }
        guard ready, started.isRunning else {
            throw SystemError("etcd", errno: ETIMEDOUT, detail: "not ready at \(plainURL): \(started.log)")
        }
    }

    /// Stops etcd gracefully (its data stays for `start()`).
    public func stop() {
        guard let process, process.isRunning else { return }
        process.signal(SIGTERM)
        if process.waitForExit(timeout: 10) == nil { process.stop() }
    }
}

/// etcd's v2 keys API over one keep-alive HTTP/1.1 connection: fast enough for thousands of
/// writes a second, which the watcher's catch-up tests need.
public final class EtcdKeys {
    public struct Response {
        public var status: Int
        public var etcdIndex: Int?
        public var body: String
        public var json: JSONValue? { try? JSONValue.parse(body) }
    }

    let host: String
    let port: Int
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    /// `url`: http://127.0.0.1:PORT (plain HTTP only).
    public init(url: String) throws {
        guard url.hasPrefix("http://"), let colon = url.lastIndex(of: ":"), let port = Int(url[url.index(after: colon)...]) else {
            throw SystemError("etcd url", errno: EINVAL, detail: url)
        }
        host = String(url.dropFirst("http://".count)[..<colon])
        self.port = port
    }

    deinit { disconnect() }

    @discardableResult
    public func put(_ key: String, _ value: String) throws -> Response {
        let response = try request("PUT", key, body: "value=" + EtcdKeys.formEncoded(value))
        guard response.status == 200 || response.status == 201 else {
            throw SystemError("etcd PUT", errno: EIO, detail: "\(key): HTTP \(response.status) \(response.body)")
        }
        return response
    }

    /// Deletes a key (recursively, for a directory); a missing key is not an error.
    @discardableResult
    public func delete(_ key: String, recursive: Bool = false) throws -> Response {
        let response = try request("DELETE", key + (recursive ? "?recursive=true" : ""), body: nil)
        guard response.status == 200 || response.status == 404 else {
            throw SystemError("etcd DELETE", errno: EIO, detail: "\(key): HTTP \(response.status) \(response.body)")
        }
        return response
    }

    public func get(_ key: String) throws -> Response {
        try request("GET", key, body: nil)
    }

    /// etcd's v2 store statistics (gets, sets, watchers), e.g. to see that a client watches
    /// rather than polls.
    public func storeStatistics() throws -> JSONValue {
        let response = try request("GET", "", body: nil, path: "/v2/stats/store")
        guard response.status == 200, let json = response.json else {
            throw SystemError("etcd stats", errno: EIO, detail: "HTTP \(response.status) \(response.body)")
        }
        return json
    }

    static func formEncoded(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count * 2)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result.unicodeScalars.append(Unicode.Scalar(UInt8(ascii: "%")))
                result.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                result.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xF)]))
            }
        }
        return result
    }

    /// One request; a connection the server closed meanwhile is reopened once.
    private func request(_ method: String, _ key: String, body: String?, path: String? = nil) throws -> Response {
        var head = "\(method) \(path ?? "/v2/keys" + key) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        if let body {
            head += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n"
        }
        let message = head + "\r\n" + (body ?? "")
        do {
            if fd < 0 { try connect() }
            try send(message)
            return try readResponse()
        } catch {
            disconnect()
            try connect()
            try send(message)
            return try readResponse()
        }
    }

    private func connect() throws {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else { throw SystemError("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let failure = SystemError("connect", detail: "\(host):\(port)")
            close(socketFD)
            throw failure
        }
        var one: Int32 = 1
        setsockopt(socketFD, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        fd = socketFD
        buffer = []
    }

    private func disconnect() {
        if fd >= 0 { close(fd) }
        fd = -1
        buffer = []
    }

    private func send(_ text: String) throws {
        try UnixSocket.send(fd, text)
    }

    /// Reads more bytes into the buffer; throws at end of stream.
    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { raw in retryingOnInterrupt { read(fd, raw.baseAddress, raw.count) } }
        if count < 0 { throw SystemError("read", detail: "etcd \(host):\(port)") }
        if count == 0 { throw SystemError("read", errno: ECONNRESET, detail: "etcd closed the connection") }
        buffer.append(contentsOf: chunk[0..<count])
    }

    private func takeLine() throws -> String {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                buffer.removeFirst(newline + 1)
                return line
            }
            try fill()
        }
    }

    private func take(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        let bytes = Array(buffer[..<count])
        buffer.removeFirst(count)
        return bytes
    }

    private func readResponse() throws -> Response {
        let statusLine = try takeLine()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw SystemError("etcd response", errno: EPROTO, detail: statusLine)
        }
        var contentLength: Int?
        var chunked = false
        var closes = false
        var etcdIndex: Int?
        while true {
            let line = try takeLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "content-length": contentLength = Int(value)
            case "transfer-encoding": chunked = value.lowercased().contains("chunked")
            case "connection": closes = value.lowercased() == "close"
            case "x-etcd-index": etcdIndex = Int(value)
            default: break
            }
        }
        var body: [UInt8] = []
        if chunked {
            while true {
                let sizeLine = try takeLine()
                guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else {
                    throw SystemError("etcd response", errno: EPROTO, detail: "chunk size \(sizeLine)")
                }
                if size == 0 {
                    while try !takeLine().isEmpty {}
                    break
                }
                body += try take(size)
                _ = try takeLine()
            }
        } else if let contentLength {
            body = try take(contentLength)
        }
        if closes { disconnect() }
        return Response(status: status, etcdIndex: etcdIndex, body: String(decoding: body, as: UTF8.self))
    }
}
