// Real parts for integration tests: the built binaries, temporary directories, free loopback
// ports, HTTP backends, the supervisor, and running commands. Everything stops by itself.
import Foundation
import JSON
import Shared
#if canImport(Glibc)
import Glibc
#endif

public enum TestPaths {
    /// The directory holding the built products (beside the running test bundle).
    public static var products: String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = (executable as NSString).deletingLastPathComponent
        // On Linux the test binary sits at <products>/<package>PackageTests.xctest.
        if directory.hasSuffix(".xctest") { directory = (directory as NSString).deletingLastPathComponent }
        return directory
    }

    public static var supervisor: String { products + "/kube-haproxy" }
    public static var watcher: String { products + "/kube-haproxy-watcher" }

    /// The directory of this file: fixtures shared by the integration tests.
    public static var supportDirectory: String { (#filePath as NSString).deletingLastPathComponent }
    public static var packageRoot: String {
        ((supportDirectory as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    }
}

public func makeTemporaryDirectory(_ prefix: String = "kube-haproxy-test") throws -> String {
    var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    guard let result = mkdtemp(&template) else { throw SystemError("mkdtemp") }
    return String(cString: result)
}

/// A TCP port nobody listens on right now, on the given loopback address.
public func freePort(address: String = "127.0.0.1") throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SystemError("socket") }
    defer { close(fd) }
    var socketAddress = sockaddr_in()
    socketAddress.sin_family = sa_family_t(AF_INET)
    socketAddress.sin_port = 0
    inet_pton(AF_INET, address, &socketAddress.sin_addr)
    let bound = withUnsafePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw SystemError("bind", detail: address) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: socketAddress.sin_port))
}

/// A TCP port free on every one of the given loopback addresses at once.
public func freePort(addresses: [String]) throws -> Int {
    for _ in 0..<100 {
        let port = try freePort(address: addresses.first ?? "127.0.0.1")
        if addresses.dropFirst().allSatisfy({ !isListening($0, port) && canBind($0, port) }) { return port }
    }
    throw SystemError("bind", errno: EADDRINUSE, detail: "no port free on all of \(addresses)")
}

func canBind(_ address: String, _ port: Int) -> Bool {
    withTCPSocket(address, port) { fd, socketAddress, length in bind(fd, socketAddress, length) == 0 }
}

/// True once something accepts TCP connections at address:port.
public func isListening(_ address: String, _ port: Int) -> Bool {
    withTCPSocket(address, port) { fd, socketAddress, length in connect(fd, socketAddress, length) == 0 }
}

/// Runs `body` with a fresh IPv4 TCP socket and the address of address:port; false when no
/// socket could be made.
private func withTCPSocket(_ address: String, _ port: Int,
                           _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var socketAddress = sockaddr_in()
    socketAddress.sin_family = sa_family_t(AF_INET)
    socketAddress.sin_port = UInt16(port).bigEndian
    inet_pton(AF_INET, address, &socketAddress.sin_addr)
    return withUnsafePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// Polls until the condition holds or the timeout passes; returns whether it held.
@discardableResult
public func waitUntil(timeout: Double, interval: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: interval)
    }
    return try condition()
}

/// The result of a finished command.
public struct CommandResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// stdout byte for byte, for output compared exactly.
    public var stdoutData: Data
}

/// Runs a command to completion (killed after the timeout) and returns its output;
/// `currentDirectory` is where it runs (else where the tests run).
@discardableResult
public func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                       input: String? = nil, currentDirectory: String? = nil, timeout: Double = 60) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
    process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
    if let environment { process.environment = environment }
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let outputFile = try makeTemporaryDirectory("kube-haproxy-command")
    defer { try? FileManager.default.removeItem(atPath: outputFile) }
    _ = FileManager.default.createFile(atPath: outputFile + "/out", contents: nil)
    _ = FileManager.default.createFile(atPath: outputFile + "/err", contents: nil)
    let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: outputFile + "/out"))
    let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: outputFile + "/err"))
    process.standardOutput = stdout
    process.standardError = stderr
    let stdin = Pipe()
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try stdin.fileHandleForWriting.close()
    let finished = waitUntil(timeout: timeout, interval: 0.01) { !process.isRunning }
    if !finished {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
    try stdout.close()
    try stderr.close()
    // Bytes that are not UTF-8 stay visible (as U+FFFD) rather than making the text empty.
    let out = (try? Data(contentsOf: URL(fileURLWithPath: outputFile + "/out"))) ?? Data()
    let err = (try? Data(contentsOf: URL(fileURLWithPath: outputFile + "/err"))) ?? Data()
    return CommandResult(status: finished ? process.terminationStatus : -1, stdout: String(decoding: out, as: UTF8.self),
                         stderr: String(decoding: err, as: UTF8.self) + (finished ? "" : "\n(killed after \(timeout) s)"), stdoutData: out)
}

/// An HTTP GET with curl: the status code and body ("000" when no response came).
public func httpGet(_ url: String, headers: [String] = [], extra: [String] = [], timeout: Double = 10) -> (code: String, body: String) {
    var arguments = ["-s", "-S", "--max-time", String(timeout), "-o", "-", "-w", "\n%{http_code}"]
    for header in headers { arguments += ["-H", header] }
    arguments += extra + [url]
    guard let result = try? runCommand("/usr/bin/curl", arguments, timeout: timeout + 5) else { return ("000", "") }
    guard let newline = result.stdout.lastIndex(of: "\n") else { return ("000", result.stderr) }
    return (String(result.stdout[result.stdout.index(after: newline)...]), String(result.stdout[..<newline]))
}

/// A long-running child process owned by a test, killed when the test ends.
public final class BackgroundProcess: @unchecked Sendable {
    public let process = Process()
    public let logPath: String

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, logPath: String) throws {
        self.logPath = logPath
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try log.close()
    }

    public var pid: pid_t { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    public func signal(_ number: Int32) { kill(pid, number) }

    /// Waits for exit; nil when it is still running after the timeout.
    public func waitForExit(timeout: Double) -> Int32? {
        waitUntil(timeout: timeout) { !process.isRunning } ? process.terminationStatus : nil
    }

    public func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// What wrk printed when it ended: the requests it completed, and its lines that report failed
/// ones ("Socket errors: …", "Non-2xx or 3xx responses: …").
public struct WrkReport {
    public let text: String
    public let requests: Int
    public let failures: [String]

    public init(_ text: String) {
        self.text = text
        let lines = text.split(separator: "\n")
        requests = lines.first { $0.contains("requests in") }.flatMap { Int($0.split(separator: " ").first ?? "") } ?? 0
        failures = lines.filter { $0.contains("Socket errors") || $0.contains("Non-2xx") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

/// A real HTTP backend on a loopback address that answers with its name.
public final class HTTPBackend {
    public let address: String
    public let port: Int
    public let name: String
    let process: BackgroundProcess

    /// `port`: a given port (several pods of a service listen on the same one), else a free one.
    public init(address: String, name: String, directory: String, port fixedPort: Int? = nil) throws {
        self.address = address
        self.name = name
        port = try fixedPort ?? freePort(address: address)
        process = try BackgroundProcess("/usr/bin/env", ["python3", TestPaths.supportDirectory + "/backend.py", address, String(port), name],
                                        logPath: "\(directory)/backend-\(name).log")
        guard waitUntil(timeout: 10, { isListening(address, port) }) else {
            throw SystemError("backend", errno: ETIMEDOUT, detail: "\(name) at \(address):\(port): \(process.log)")
        }
    }

    public func stop() { process.stop() }
    deinit { process.stop() }
}

/// The supervisor binary running with its own run directory.
public final class SupervisorProcess {
    public let runDirectory: String
    public let process: BackgroundProcess
    public let environment: [String: String]

    public init(directory: String, environment extra: [String: String] = [:], watcher: String = "none") throws {
        runDirectory = directory + "/run"
        var environment = ProcessInfo.processInfo.environment
        environment["KUBE_HAPROXY_RUN_DIR"] = runDirectory
        environment["KUBE_HAPROXY_WATCHER"] = watcher
        for (key, value) in extra { environment[key] = value }
        self.environment = environment
        process = try BackgroundProcess(TestPaths.supervisor, [], environment: environment, logPath: directory + "/supervisor.log")
        let socket = runDirectory + "/control.sock"
        guard waitUntil(timeout: 10, { FileManager.default.fileExists(atPath: socket) }) else {
            throw SystemError("supervisor", errno: ETIMEDOUT, detail: "no control socket: \(process.log)")
        }
    }

    public var controlSocket: String { runDirectory + "/control.sock" }
    public var sslDirectory: String { runDirectory + "/ssl" }
    public var log: String { process.log }

    /// Sends one request line and returns the reply as it came over the wire, parsed.
    public func request(_ value: JSONValue) throws -> JSONValue {
        var client = try ControlClient(path: controlSocket)
        return try JSONValue.parse(String(decoding: client.exchange(value.serialized), as: UTF8.self))
    }

    public func apply(_ config: String, certificates: [String: String] = [:]) throws -> JSONValue {
        try request(ControlRequest.apply(config: config, certificates: certificates).json)
    }

    public func status() throws -> JSONValue { try request(ControlRequest.status.json) }

    /// The supervisor's direct children, read from /proc, with their state letter.
    public func children() -> [(pid: pid_t, state: String, command: String)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var result: [(pid_t, String, String)] = []
        for entry in entries {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 2, pid_t(fields[1]) == process.pid else { continue }
            let open = stat.firstIndex(of: "(") ?? close
            result.append((pid, String(fields[0]), String(stat[stat.index(after: open)..<close])))
        }
        return result
    }

    /// Stops the supervisor the way an operator would (SIGTERM: HAProxy and the watcher stop
    /// with it); if it has not exited after a few seconds, kills it and every process below it,
    /// so no HAProxy or watcher outlives the test.
    public func stop() {
        guard process.isRunning else { return }
        process.signal(SIGTERM)
        if process.waitForExit(timeout: 8) != nil { return }
        let descendants = descendantPids(of: process.pid)
        process.stop()
        for pid in descendants { kill(pid, SIGKILL) }
    }

    deinit { stop() }
}

/// A process's resident set (VmRSS) in kB, from /proc; nil when it is gone.
public func residentKilobytes(_ pid: pid_t) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
    return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
}

/// Every process below `root` in the process tree, read from /proc.
public func descendantPids(of root: pid_t) -> [pid_t] {
    var parents: [pid_t: pid_t] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        if fields.count > 1, let parent = pid_t(fields[1]) { parents[pid] = parent }
    }
    var result: [pid_t] = []
    var frontier = [root]
    while let next = frontier.popLast() {
        let children = parents.filter { $0.value == next }.map(\.key)
        result += children
        frontier += children
    }
    return result
}

/// An HAProxy config for tests: one HTTP frontend to one backend of servers.
public func httpConfig(port: Int, servers: [(address: String, port: Int)], extraGlobal: String = "", extraFrontend: String = "") -> String {
    var config = """
        global
            maxconn 2000
        \(extraGlobal)
        defaults
            mode http
            timeout connect 5s
            timeout client 30s
            timeout server 30s
            option idle-close-on-response
        frontend web
            bind 127.0.0.1:\(port)
        \(extraFrontend)
            default_backend pods
        backend pods

        """
    for (index, server) in servers.enumerated() {
        config += "    server pod\(index) \(server.address):\(server.port)\n"
    }
    return config
}

/// A request through HAProxy on 127.0.0.1:port that the backend answers after `seconds`; its
/// log holds the body and the status code.
public func slowRequest(port: Int, seconds: Int, logPath: String) throws -> BackgroundProcess {
    try BackgroundProcess("/usr/bin/curl", ["-s", "-S", "--max-time", "20", "-w", " %{http_code}", "http://127.0.0.1:\(port)/slow?seconds=\(seconds)"],
                          logPath: logPath)
}

/// A self-signed certificate made in `directory`: the PEM HAProxy wants (key then certificate)
/// and the certificate's own file for curl's --cacert.
public func makeSelfSignedCertificate(commonName: String, directory: String) throws -> (pem: String, certificateFile: String) {
    let key = directory + "/key.pem"
    let certificate = directory + "/cert.pem"
    let result = try runCommand("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
                                            "-days", "2", "-subj", "/CN=\(commonName)", "-addext", "subjectAltName=DNS:\(commonName)"])
    guard result.status == 0 else { throw SystemError("openssl", errno: EINVAL, detail: result.stderr) }
    return (try String(contentsOfFile: key, encoding: .utf8) + String(contentsOfFile: certificate, encoding: .utf8), certificate)
}

/// Sends one command to an HAProxy admin socket and returns the whole answer.
public func haproxyAdmin(_ socket: String, _ command: String) throws -> String {
    let fd = try UnixSocket.connect(socket).release()
    defer { close(fd) }
    try UnixSocket.send(fd, command + "\n")
    var answer = Data()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fd, &chunk, chunk.count)
        if count < 0 { throw SystemError("read", detail: socket) }
        if count == 0 { break }
        answer.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: answer, as: UTF8.self)
}
