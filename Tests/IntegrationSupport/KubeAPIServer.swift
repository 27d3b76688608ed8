// The test Kubernetes API server (Tests/KubeAPIServer/kube_api_server.py) on free loopback
// ports: its REST API for the watcher, its admin listener for the test, and a store that writes
// the same objects as KubernetesStore does into etcd. Stopped in deinit.
import Foundation
import JSON
import Shared
#if canImport(Glibc)
import Glibc
#endif

public final class KubeAPIServer {
    /// HTTPS: the server's certificate, and whether it requires a client certificate.
    public struct TLS {
        public let certificates: TestServerCertificates
        public let requireClientCertificates: Bool

        public init(directory: String, requireClientCertificates: Bool = false) throws {
            certificates = try TestServerCertificates(directory: directory, server: "kube-apiserver")
            self.requireClientCertificates = requireClientCertificates
        }
    }

    /// One request the main listener served, as `GET /_test/requests` lists it.
    public struct Request: Equatable {
        public let method: String
        public let path: String
        public let query: String
        /// The bearer token sent, nil without an `Authorization: Bearer` header.
        public let token: String?
        public let status: Int
    }

    public enum Watch410Mode: String {
        /// 200, then an ERROR event carrying a 410 Status (the real server).
        case event
        /// HTTP 410 with a Status body.
        case http
    }

    public static var script: String {
        ((TestPaths.supportDirectory as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent("KubeAPIServer/kube_api_server.py")
    }

    public let directory: String
    public let tls: TLS?
    /// The REST API: http(s)://127.0.0.1:PORT (the same port after `down(seconds:)`).
    public let url: String
    public let adminURL: String
    public let port: Int
    /// The token file the server reads on every request; nil when it asks for none.
    public let tokenFile: String?
    /// The token this wrapper's own requests send.
    public var token: String?
    let process: BackgroundProcess
    /// Keep-alive connections: one to the REST API (with the TLS files), one to the admin listener.
    let client: HTTPClient
    let adminClient: HTTPClient

    /// `tokens`: the accepted bearer tokens (the first one is `token`); nil for no authentication.
    public init(directory: String, tls: TLS? = nil, tokens: [String]? = nil, history: Int? = nil,
                bookmarkInterval: Double? = nil, verbose: Bool = false) throws {
        self.directory = directory
        self.tls = tls
        let portFile = directory + "/kube-apiserver.port"
        let adminPortFile = directory + "/kube-apiserver.admin-port"
        // A server started before in the same directory left its ports there.
        for file in [portFile, adminPortFile] { try? FileManager.default.removeItem(atPath: file) }
        var arguments = [KubeAPIServer.script, "--port-file", portFile, "--admin-port-file", adminPortFile]
        if let tokens {
            let file = directory + "/kube-apiserver.tokens"
            try KubeAPIServer.writeTokens(tokens, to: file)
            tokenFile = file
            token = tokens.first
            arguments += ["--token-file", file]
        } else {
            tokenFile = nil
        }
        if let tls {
            arguments += ["--tls-cert", tls.certificates.server.certificateFile, "--tls-key", tls.certificates.server.keyFile]
            if tls.requireClientCertificates { arguments += ["--client-ca", tls.certificates.authority.certificateFile] }
        }
        if let history { arguments += ["--history", String(history)] }
        if let bookmarkInterval { arguments += ["--bookmark-interval", String(bookmarkInterval)] }
        if verbose { arguments.append("--verbose") }
        client = try HTTPClient()
        adminClient = try HTTPClient()
        if let tls {
            client.caFile = tls.certificates.authority.certificateFile
            if tls.requireClientCertificates {
                client.certificateFile = tls.certificates.client.certificateFile
                client.keyFile = tls.certificates.client.keyFile
            }
        }
        let started = try BackgroundProcess("/usr/bin/env", ["python3"] + arguments, logPath: directory + "/kube-apiserver.log")
        process = started
        func readPort(_ path: String) -> Int? {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        guard waitUntil(timeout: 10, { !started.isRunning || (readPort(portFile) != nil && readPort(adminPortFile) != nil) }),
              started.isRunning, let port = readPort(portFile), let adminPort = readPort(adminPortFile) else {
            throw SystemError("kube_api_server.py", errno: ETIMEDOUT, detail: "did not listen: \(started.log)")
        }
        self.port = port
        url = "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)"
        adminURL = "http://127.0.0.1:\(adminPort)"
    }

    deinit { process.stop() }

    public var log: String { process.log }

    public func stop() { process.stop() }

    /// Replaces the accepted tokens (the server reads the file on every request).
    public func setTokens(_ tokens: [String]) throws {
        guard let tokenFile else { throw SystemError("setTokens", errno: EINVAL, detail: "the server was started without tokens") }
        try KubeAPIServer.writeTokens(tokens, to: tokenFile)
    }

    static func writeTokens(_ tokens: [String], to path: String) throws {
        try (tokens.map { $0 + "\n" }.joined()).write(toFile: path, atomically: true, encoding: .utf8)
    }

    // MARK: The admin listener

    public func compact() throws { try admin("/_test/compact") }
    public func watchError410() throws { try admin("/_test/watch-error-410") }
    public func closeWatches() throws { try admin("/_test/close-watches") }
    /// Closes the REST listener and its connections; it listens again on the same port after `seconds`.
    public func down(seconds: Double) throws { try admin("/_test/down?seconds=\(seconds)") }
    /// Denies `verb` (get, list, watch, create, update, patch, delete) on `resource` in `namespace`; "*" for any.
    public func forbid(verb: String, resource: String, namespace: String = "*") throws {
        let rule: JSONValue = .object([("verb", .string(verb)), ("resource", .string(resource)), ("namespace", .string(namespace))])
        try admin("/_test/forbid", body: rule.serialized)
    }
    public func allowAll() throws { try admin("/_test/allow-all") }
    /// The next `count` authenticated requests fail with `code`: 429 (with Retry-After: 1), 500 or 503.
    public func failNext(_ count: Int = 1, code: Int) throws { try admin("/_test/fail-next?count=\(count)&code=\(code)") }
    public func setWatch410Mode(_ mode: Watch410Mode) throws { try admin("/_test/watch-410-mode?mode=\(mode.rawValue)") }
    public func setBookmarkInterval(seconds: Double) throws { try admin("/_test/bookmark-interval?seconds=\(seconds)") }
    public func clearRequests() throws { try admin("/_test/clear-requests") }

    public func requests() throws -> [Request] {
        guard case .array(let entries) = try admin("/_test/requests", method: "GET") else { return [] }
        return entries.map { entry in
            Request(method: entry["method"]?.stringValue ?? "", path: entry["path"]?.stringValue ?? "",
                    query: entry["query"]?.stringValue ?? "", token: entry["token"]?.stringValue,
                    status: entry["status"]?.intValue ?? 0)
        }
    }

    /// The watches open now: each one's resource, namespace (null across namespaces) and selectors.
    public func watches() throws -> [JSONValue] {
        guard case .array(let entries) = try admin("/_test/watches", method: "GET") else { return [] }
        return entries
    }

    /// Every object of `resource` stored now, in key order, as the server holds it.
    public func objects(resource: String, namespace: String? = nil) throws -> [JSONValue] {
        let query = "resource=\(resource)" + (namespace.map { "&namespace=\($0)" } ?? "")
        guard case .array(let items)? = try admin("/_test/objects?" + query, method: "GET")["items"] else { return [] }
        return items
    }

    @discardableResult
    func admin(_ path: String, method: String = "POST", body: String = "") throws -> JSONValue {
        let response = try send(adminURL + path, method: method, body: method == "POST" ? body : nil, secure: false)
        guard response.status == 200 else {
            throw SystemError("kube-apiserver admin", errno: EIO, detail: "\(method) \(path): HTTP \(response.status) \(response.body)")
        }
        return try JSONValue.parse(response.body)
    }

    // MARK: The REST API

    /// One request to the REST API with this wrapper's token and TLS files: the status and body.
    public func request(_ method: String, _ path: String, body: String? = nil,
                        contentType: String = "application/json") throws -> (status: Int, body: String) {
        try send(url + path, method: method, body: body, contentType: contentType, secure: true)
    }

    public static func collectionPath(_ resource: String, namespace: String) -> String {
        "/api/v1/namespaces/\(namespace)/\(resource)"
    }

    /// Creates the object, or replaces it when it exists; returns its resourceVersion.
    @discardableResult
    public func createOrReplace(_ object: JSONValue, resource: String, namespace: String, name: String) throws -> Int {
        let collection = KubeAPIServer.collectionPath(resource, namespace: namespace)
        var response = try request("PUT", collection + "/" + name, body: object.serialized)
        if response.status == 404 {
            response = try request("POST", collection, body: object.serialized)
        }
        return try resourceVersion(of: response, "write \(resource) \(namespace)/\(name)")
    }

    /// Deletes the object (at once, or with `gracePeriodSeconds` a pod becomes terminating);
    /// false when it did not exist.
    @discardableResult
    public func delete(resource: String, namespace: String, name: String, gracePeriodSeconds: Int? = nil) throws -> Bool {
        let path = KubeAPIServer.collectionPath(resource, namespace: namespace) + "/" + name
            + (gracePeriodSeconds.map { "?gracePeriodSeconds=\($0)" } ?? "")
        let response = try request("DELETE", path)
        guard response.status == 200 || response.status == 404 else {
            throw SystemError("kube-apiserver DELETE", errno: EIO, detail: "\(path): HTTP \(response.status) \(response.body)")
        }
        return response.status == 200
    }

    /// A JSON merge patch (RFC 7386); returns the new resourceVersion.
    @discardableResult
    public func patch(resource: String, namespace: String, name: String, _ patch: JSONValue,
                      contentType: String = "application/merge-patch+json") throws -> Int {
        let response = try request("PATCH", KubeAPIServer.collectionPath(resource, namespace: namespace) + "/" + name,
                                   body: patch.serialized, contentType: contentType)
        return try resourceVersion(of: response, "patch \(resource) \(namespace)/\(name)")
    }

    func resourceVersion(of response: (status: Int, body: String), _ what: String) throws -> Int {
        guard (200..<300).contains(response.status),
              let version = (try? JSONValue.parse(response.body))?["metadata"]?["resourceVersion"]?.stringValue.flatMap({ Int($0) }) else {
            throw SystemError("kube-apiserver", errno: EIO, detail: "\(what): HTTP \(response.status) \(response.body)")
        }
        return version
    }

    /// curl's arguments for the REST API: the CA, the client certificate where the server
    /// requires one, and the bearer token.
    public var curlArguments: [String] {
        var arguments: [String] = []
        if let tls {
            arguments += ["--cacert", tls.certificates.authority.certificateFile]
            if tls.requireClientCertificates {
                arguments += ["--cert", tls.certificates.client.certificateFile, "--key", tls.certificates.client.keyFile]
            }
        }
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        return arguments
    }

    func send(_ target: String, method: String, body: String?, contentType: String = "application/json",
              secure: Bool) throws -> (status: Int, body: String) {
        var headers: [String] = []
        if body != nil { headers.append("Content-Type: \(contentType)") }
        if secure, let token { headers.append("Authorization: Bearer \(token)") }
        let response = try (secure ? client : adminClient).request(method, target, body: body, headers: headers)
        return (response.status, response.body)
    }
}

/// Writes the load balancer's objects and pods through the API server's REST API, as
/// KubernetesStore writes them into etcd. A pod built terminating is created, then deleted
/// with its grace period: the way a pod becomes terminating through the API.
public final class KubeAPIStore: ClusterObjectStore {
    public let server: KubeAPIServer
    public let lbNamespace: String

    public init(server: KubeAPIServer, lbNamespace: String = "lb") {
        self.server = server
        self.lbNamespace = lbNamespace
    }

    @discardableResult
    public func write(_ object: JSONValue, resource: String, namespace: String, name: String) throws -> Int {
        let version = try server.createOrReplace(object, resource: resource, namespace: namespace, name: name)
        guard resource == "pods", object["metadata"]?["deletionTimestamp"] != nil else { return version }
        let grace = object["metadata"]?["deletionGracePeriodSeconds"]?.intValue ?? 30
        let path = KubeAPIServer.collectionPath(resource, namespace: namespace) + "/\(name)?gracePeriodSeconds=\(grace)"
        return try server.resourceVersion(of: server.request("DELETE", path), "terminate pod \(namespace)/\(name)")
    }

    public func remove(resource: String, namespace: String, name: String) throws {
        try server.delete(resource: resource, namespace: namespace, name: name)
    }
}
