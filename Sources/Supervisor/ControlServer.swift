// The control socket: mode 0600, peers of another uid (except root) refused, newline-delimited
// JSON with one reply per request. A bad request gets an error reply; the supervisor carries on.
import CSystem
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

final class ControlServer: Sendable {
    static let maximumConnections = 32

    let path: String
    let maximumRequestBytes: Int
    let handle: @Sendable (ControlRequest) -> ControlReply
    let threads = ConnectionThreads(name: "control socket", limit: ControlServer.maximumConnections)

    init(path: String, maximumRequestBytes: Int, handle: @escaping @Sendable (ControlRequest) -> ControlReply) {
        self.path = path
        self.maximumRequestBytes = maximumRequestBytes
        self.handle = handle
    }

    /// Binds the socket and serves it on a thread of its own.
    func start() throws(SystemError) {
        var address = try UnixSocket.address(path)
        let listener = try FileDescriptor(socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0), from: "socket")
        // Set the mode before bind so the socket file is never reachable with a wider one.
        if fchmod(listener.raw, 0o600) != 0 { throw SystemError("fchmod", detail: path) }
        unlink(path)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                Result { () throws(SystemError) in
                    try listener.bindAndListen(generic, length: socklen_t(MemoryLayout<sockaddr_un>.size), name: path)
                }
            }
        }
        try bound.get()
        try ConnectionThreads.startAccepting(listener) { [self] fd in acceptLoop(fd) }
    }

    private func acceptLoop(_ listener: Int32) -> Never {
        threads.acceptForever(listener, admit: { fd in
            var pid: pid_t = 0
            var uid: uid_t = 0
            var gid: gid_t = 0
            if csystem_peer_credentials(fd, &pid, &uid, &gid) != 0 {
                Log.error("control socket peer credentials unavailable", ["error": SystemError("getsockopt SO_PEERCRED").description])
                return false
            }
            if uid != geteuid() && uid != 0 {
                Log.warning("control socket connection refused: peer runs as another user", ["peer_uid": String(uid), "peer_pid": String(pid)])
                try? UnixSocket.send(fd, ControlReply.failed(ControlFailure(.invalidRequest, "permission denied: peer uid \(uid) is neither root nor the supervisor's uid")).json.serialized + "\n")
                return false
            }
            return true
        }, overLimit: { fd in
            try? UnixSocket.send(fd, ControlReply.failed(ControlFailure(.unavailable, "too many control connections (at most \(ControlServer.maximumConnections))")).json.serialized + "\n")
        }, serve: { [self] fd in serve(fd) })
    }

    private func serve(_ fd: Int32) {
        serveRequests(fd)
        // A connection's buffers (an apply's config among them) live in its thread's malloc
        // arena, which keeps freed pages; PID 1 hands them back so that no request leaves it
        // larger. Metrics and health probes allocate little and are not trimmed after.
        _ = csystem_malloc_trim()
    }

    private func serveRequests(_ fd: Int32) {
        var reader = LineReader(fd: fd, maximumLength: maximumRequestBytes)
        while true {
            let reply: ControlReply
            do {
                switch try reader.next() {
                case .end:
                    return
                case .oversized:
                    Log.warning("control request refused: longer than the size cap", ["cap_bytes": String(maximumRequestBytes)])
                    // The refused bytes were freed; give the pages back to the system too.
                    _ = csystem_malloc_trim()
                    reply = .failed(ControlFailure(.invalidRequest, "request longer than \(maximumRequestBytes) bytes (KUBE_HAPROXY_MAX_REQUEST_BYTES)"))
                case .line(let bytes):
                    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
                    do {
                        reply = handle(try ControlRequest.parse(bytes))
                    } catch {
                        Log.warning("control request refused", ["error": error.description])
                        reply = .failed(ControlFailure(.invalidRequest, error.description))
                    }
                }
            } catch {
                return
            }
            do {
                try UnixSocket.send(fd, reply.json.serialized + "\n")
            } catch {
                return
            }
        }
    }

}
