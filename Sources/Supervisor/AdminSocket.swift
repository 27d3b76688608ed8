// HAProxy's admin socket, which the supervisor's own config file adds: listening sockets pass
// through it to the next generation (`expose-fd listeners`), and `show info` tells which process
// answers on it, so the supervisor knows when a new generation is serving.
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

enum AdminSocket {
    /// The supervisor's addition to every HAProxy config. Only the admin socket: any other global
    /// keyword could clash with one the user's template sets.
    static func supervisorConfig(adminSocket: String) -> String {
        """
        # Written by kube-haproxy at start: the admin socket that hands the listening sockets
        # to the next HAProxy generation (-x) so reloads refuse no connection.
        global
            stats socket \(adminSocket) mode 600 level admin expose-fd listeners

        """
    }

    /// Sends one command and returns the whole answer.
    static func command(_ path: String, _ command: String, timeout: Double = 2) throws(SystemError) -> String {
        let fd = try UnixSocket.connect(path)
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        // Without it a silent HAProxy would hold the apply queue forever.
        if setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size)) != 0 {
            throw SystemError("setsockopt SO_RCVTIMEO", detail: path)
        }
        try UnixSocket.send(fd, command + "\n")
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { raw in retryingOnInterrupt { read(fd, raw.baseAddress, raw.count) } }
            if count < 0 { throw SystemError("read", detail: path) }
            if count == 0 { break }
            answer.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: answer, as: UTF8.self)
    }

    /// One connection in HAProxy's interactive mode (`prompt`): each command's answer ends with
    /// a "\n> " prompt, so a plan's commands share the connection instead of one each.
    struct Session: ~Copyable {
        let fd: Int32
        let path: String

        init(_ path: String, timeout: Double = 2) throws(SystemError) {
            let fd = try UnixSocket.connect(path)
            do throws(SystemError) {
                var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
                if setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size)) != 0 {
                    throw SystemError("setsockopt SO_RCVTIMEO", detail: path)
                }
                _ = try Session.exchange(fd, path, "prompt")
            } catch {
                close(fd)
                throw error
            }
            self.fd = fd
            self.path = path
        }

        deinit {
            try? UnixSocket.send(fd, "quit\n")
            close(fd)
        }

        /// Sends one command and returns its answer without the prompt.
        func run(_ command: String) throws(SystemError) -> String {
            try Session.exchange(fd, path, command)
        }

        private static func exchange(_ fd: Int32, _ path: String, _ command: String) throws(SystemError) -> String {
            try UnixSocket.send(fd, command + "\n")
            var answer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 16384)
            let prompt: [UInt8] = [0x0A, 0x3E, 0x20]
            while !answer.ends(with: prompt) {
                let count = chunk.withUnsafeMutableBytes { raw in retryingOnInterrupt { read(fd, raw.baseAddress, raw.count) } }
                if count < 0 { throw SystemError("read", detail: "\(path) (answer to \"\(command)\")") }
                if count == 0 { throw SystemError("read", errno: ECONNRESET, detail: "\(path) (closed before answering \"\(command)\")") }
                answer.append(contentsOf: chunk[0..<count])
            }
            return String(decoding: answer.dropLast(prompt.count), as: UTF8.self)
        }
    }

    /// The pid of the HAProxy process answering on the socket, if any answers.
    static func servingPid(_ path: String) -> pid_t? {
        guard let info = try? command(path, "show info", timeout: 1) else { return nil }
        for line in info.split(separator: "\n") where line.hasPrefix("Pid: ") {
            return pid_t(line.dropFirst(5).trimmingPrefix(" "))
        }
        return nil
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
