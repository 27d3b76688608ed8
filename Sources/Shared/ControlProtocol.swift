// The control socket's protocol: newline-delimited JSON, one request and one reply per line.
//
//   {"op":"apply","config":"<haproxy.cfg>","certificates":{"<name>":"<PEM>"}}
//   {"op":"status"}
//   {"op":"reload"}
//   {"op":"report","etcd_events":N,...}   the watcher's figures since its last report
//   {"op":"history"}                      the configs applied last, newest first
import JSON
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

public enum ControlRequest: Equatable, Sendable {
    /// The desired state: the whole config and every certificate (name → key and certificate PEM).
    case apply(config: String, certificates: [String: String])
    case status
    case reload
    case report(WatcherReport)
    case history

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func parse(_ line: [UInt8]) throws(ParseError) -> ControlRequest {
        let value: JSONValue
        do {
            value = try JSONReader.parse(line, as: JSONValueBuilder.self)
        } catch {
            throw ParseError(description: "request is not valid JSON: \(error)")
        }
        guard case .object = value else { throw ParseError(description: "request must be a JSON object") }
        guard let op = value["op"]?.stringValue else { throw ParseError(description: "request has no string \"op\"") }
        switch op {
        case "status": return .status
        case "reload": return .reload
        case "history": return .history
        case "report": return .report(try WatcherReport(json: value))
        case "apply":
            guard let config = value["config"]?.stringValue else {
                throw ParseError(description: "apply needs \"config\", a string")
            }
            var certificates: [String: String] = [:]
            switch value["certificates"] {
            case nil, .null?: break
            case .object(let members)?:
                for (name, pem) in members {
                    guard let text = pem.stringValue else {
                        throw ParseError(description: "certificate \"\(name)\" must be a string of PEM text")
                    }
                    guard isValidCertificateName(name) else {
                        throw ParseError(description: "certificate name \"\(name)\" is not a valid file name (letters, digits, '.', '_', '-'; not starting with '.')")
                    }
                    certificates[name] = text
                }
            default:
                throw ParseError(description: "\"certificates\" must be an object of name to PEM text")
            }
            return .apply(config: config, certificates: certificates)
        default:
            throw ParseError(description: "unknown op \"\(op)\" (expected apply, status, reload, report or history)")
        }
    }

    /// Certificate names become file names in the ssl directory: no path separators, no hidden files.
    public static func isValidCertificateName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 200, !name.hasPrefix(".") else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
    }

    public var json: JSONValue {
        switch self {
        case .status: return .object([("op", .string("status"))])
        case .reload: return .object([("op", .string("reload"))])
        case .history: return .object([("op", .string("history"))])
        case .report(let report): return report.json
        case .apply(let config, let certificates):
            let members = certificates.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }
            return .object([("op", .string("apply")), ("config", .string(config)), ("certificates", .object(members))])
        }
    }
}

/// What the watcher counted since its last report; the supervisor adds it to the totals it
/// keeps, so a watcher restart resets nothing.
public struct WatcherReport: Equatable, Sendable {
    public var etcdEvents = 0
    public var indexClearedResyncs = 0
    public var reconnectResyncs = 0
    /// Re-reads after the Kubernetes API answered 410 Gone (the resourceVersion expired).
    public var expiredResyncs = 0
    public var renderErrors = 0
    public var renderSeconds: [Double] = []
    /// Unix time since which the state is not known to be current (etcd unreachable); nil
    /// while it is current.
    public var staleSince: Double?
    /// The services and certificates the watcher leaves out because they break the config:
    /// the current lists, sent with every report.
    public var skippedServices: [String] = []
    public var skippedCertificates: [String] = []

    public init() {}

    init(json: JSONValue) throws(ControlRequest.ParseError) {
        func count(_ key: String) throws(ControlRequest.ParseError) -> Int {
            switch json[key] {
            case nil, .null?: return 0
            case .integer(let value)? where value >= 0: return value
            default: throw ControlRequest.ParseError(description: "report: \"\(key)\" must be a non-negative integer")
            }
        }
        etcdEvents = try count("etcd_events")
        indexClearedResyncs = try count("resyncs_index_cleared")
        reconnectResyncs = try count("resyncs_reconnect")
        expiredResyncs = try count("resyncs_expired")
        renderErrors = try count("render_errors")
        if case .array(let values)? = json["render_seconds"] {
            renderSeconds = values.compactMap { value in
                switch value {
                case .double(let seconds): return seconds
                case .integer(let seconds): return Double(seconds)
                default: return nil
                }
            }
        }
        let fields = MessageFields(json, "report")
        func names(_ key: String) throws(ControlRequest.ParseError) -> [String] { try fields.optionalStrings(key) ?? [] }
        skippedServices = try names("skipped_services")
        skippedCertificates = try names("skipped_certificates")
        switch json["stale_since"] {
        case .double(let time)?: staleSince = time
        case .integer(let time)?: staleSince = Double(time)
        default: staleSince = nil
        }
    }

    public var json: JSONValue {
        .object([("op", .string("report")), ("etcd_events", .integer(etcdEvents)),
                 ("resyncs_index_cleared", .integer(indexClearedResyncs)), ("resyncs_reconnect", .integer(reconnectResyncs)),
                 ("resyncs_expired", .integer(expiredResyncs)),
                 ("render_errors", .integer(renderErrors)), ("render_seconds", .array(renderSeconds.map { .double($0) })),
                 ("stale_since", staleSince.map { .double($0) } ?? .null),
                 ("skipped_services", .array(skippedServices.map { .string($0) })),
                 ("skipped_certificates", .array(skippedCertificates.map { .string($0) }))])
    }
}

/// Typed reads of a control message's members (a reply's, a report's), each failure naming the
/// message, the member and what it must be. Absent and null members are nil.
struct MessageFields {
    let json: JSONValue
    /// "reply" or "report": how errors name the message.
    let message: String

    init(_ json: JSONValue, _ message: String) {
        self.json = json
        self.message = message
    }

    func wrong(_ key: String, _ expected: String) -> ControlRequest.ParseError {
        ControlRequest.ParseError(description: "\(message): \"\(key)\" must be \(expected)")
    }

    func optional<T>(_ key: String, _ expected: String, _ read: (JSONValue) -> T?) throws(ControlRequest.ParseError) -> T? {
        switch json[key] {
        case nil, .null?: return nil
        case let value?:
            guard let result = read(value) else { throw wrong(key, expected) }
            return result
        }
    }

    func required<T>(_ key: String, _ expected: String, _ read: (JSONValue) -> T?) throws(ControlRequest.ParseError) -> T {
        guard let value = try optional(key, expected, read) else { throw wrong(key, expected) }
        return value
    }

    /// Every element of an array read by `read`, or nil when one is not of its type.
    static func all<T>(_ value: JSONValue, _ read: (JSONValue) -> T?) -> [T]? {
        guard case .array(let items) = value else { return nil }
        let read = items.compactMap(read)
        return read.count == items.count ? read : nil
    }

    func bool(_ key: String) throws(ControlRequest.ParseError) -> Bool { try required(key, "a boolean", \.boolValue) }
    func optionalBool(_ key: String) throws(ControlRequest.ParseError) -> Bool? { try optional(key, "a boolean", \.boolValue) }
    func integer(_ key: String) throws(ControlRequest.ParseError) -> Int { try required(key, "an integer", \.intValue) }
    func optionalInteger(_ key: String) throws(ControlRequest.ParseError) -> Int? { try optional(key, "an integer", \.intValue) }
    func string(_ key: String) throws(ControlRequest.ParseError) -> String { try required(key, "a string", \.stringValue) }
    func optionalString(_ key: String) throws(ControlRequest.ParseError) -> String? { try optional(key, "a string", \.stringValue) }

    func optionalNumber(_ key: String) throws(ControlRequest.ParseError) -> Double? {
        try optional(key, "a number") { value in
            switch value {
            case .integer(let number): return Double(number)
            case .double(let number): return number
            default: return nil
            }
        }
    }

    func optionalStrings(_ key: String) throws(ControlRequest.ParseError) -> [String]? {
        try optional(key, "an array of strings") { MessageFields.all($0, \.stringValue) }
    }
}

/// Reads newline-terminated lines from a descriptor, refusing lines longer than a cap.
public struct LineReader {
    public enum Line {
        case line([UInt8])
        /// A line longer than the cap; its bytes were discarded up to its newline.
        case oversized
        case end
    }

    let fd: Int32
    let maximumLength: Int
    var buffer: [UInt8] = []
    var start = 0
    var discarding = false
    /// What one read fills, reused for every read of this connection.
    var chunk: [UInt8] = []
    /// A buffer grown past this by one large line is let go once that line is taken, rather
    /// than kept for the life of the connection.
    static let retainedCapacity = 1 << 20

    public init(fd: Int32, maximumLength: Int) {
        self.fd = fd
        self.maximumLength = maximumLength
    }

    public mutating func next() throws(SystemError) -> Line {
        var scanFrom = start
        while true {
            if let newline = buffer[scanFrom...].firstIndex(of: 0x0A) {
                let tooLong = newline - start > maximumLength
                let line = tooLong ? [] : Array(buffer[start..<newline])
                start = newline + 1
                return tooLong ? .oversized : .line(line)
            }
            scanFrom = buffer.count
            if buffer.count - start > maximumLength {
                // Too long: drop what we have, memory included (a refused request must not keep
                // its size in a long-lived process), and skip to the next newline.
                buffer = []
                start = 0
                scanFrom = 0
                discarding = true
            } else if start > 0 && start == buffer.count {
                if buffer.capacity > LineReader.retainedCapacity {
                    buffer = []
                } else {
                    buffer.removeAll(keepingCapacity: true)
                }
                start = 0
                scanFrom = 0
            }
            if chunk.isEmpty { chunk = [UInt8](repeating: 0, count: 65536) }
            let count = chunk.withUnsafeMutableBytes { raw in
                retryingOnInterrupt { read(fd, raw.baseAddress, raw.count) }
            }
            if count < 0 { throw SystemError("read") }
            if count == 0 {
                if discarding { discarding = false; return .oversized }
                return .end
            }
            if discarding {
                // The rest of a refused line is skipped without being kept; what follows its
                // newline is the next line's start.
                guard let newline = chunk[0..<count].firstIndex(of: 0x0A) else { continue }
                buffer.append(contentsOf: chunk[(newline + 1)..<count])
                discarding = false
                return .oversized
            }
            if start > 0 && start > buffer.count / 2 {
                buffer.removeFirst(start)
                scanFrom -= start
                start = 0
            }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }
}

public enum UnixSocket {
    /// Fills a sockaddr_un for a path, or throws when the path is too long for one.
    public static func address(_ path: String) throws(SystemError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw SystemError("socket path", errno: ENAMETOOLONG, detail: "\(path) (at most \(capacity - 1) bytes)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// A connected stream socket, closed when the value ends.
    public static func connect(_ path: String) throws(SystemError) -> FileDescriptor {
        var address = try self.address(path)
        let socket = try FileDescriptor(Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), from: "socket")
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                retryingOnInterrupt { Glibc.connect(socket.raw, generic, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        if result != 0 { throw SystemError("connect", detail: path) }
        return socket
    }

    /// Sends all bytes without raising SIGPIPE when the peer has gone.
    public static func send(_ fd: Int32, _ text: String) throws(SystemError) {
        var copy = text
        let result: Result<Void, SystemError> = copy.withUTF8 { buffer in
            guard let base = buffer.baseAddress else { return .success(()) }
            var offset = 0
            while offset < buffer.count {
                let sent = retryingOnInterrupt {
                    Glibc.send(fd, UnsafeRawPointer(base) + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                }
                if sent < 0 { return .failure(SystemError("send")) }
                offset += sent
            }
            return .success(())
        }
        try result.get()
    }
}

/// A client of the control socket: the CLI's `status` and `reload`, and the watcher.
public struct ControlClient: ~Copyable {
    let socket: FileDescriptor
    var reader: LineReader

    public static let maximumReplyLength = 16 << 20

    public init(path: String) throws(SystemError) {
        socket = try UnixSocket.connect(path)
        reader = LineReader(fd: socket.raw, maximumLength: ControlClient.maximumReplyLength)
    }

    /// Sends one request and waits for its reply.
    public mutating func send(_ request: ControlRequest) throws(SystemError) -> ControlReply {
        let line = try exchange(request.json.serialized)
        do {
            return try ControlReply.parse(line)
        } catch {
            throw SystemError("reply", errno: EPROTO, detail: "is not understood (\(error))")
        }
    }

    /// Sends one line as it is and returns the reply line: the wire itself, for tests and tools.
    public mutating func exchange(_ line: String) throws(SystemError) -> [UInt8] {
        try UnixSocket.send(socket.raw, line + "\n")
        switch try reader.next() {
        case .line(let bytes):
            return bytes
        case .oversized:
            throw SystemError("reply", errno: EMSGSIZE)
        case .end:
            throw SystemError("reply", errno: ECONNRESET, detail: "(the supervisor closed the connection)")
        }
    }
}
