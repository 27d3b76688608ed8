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
        let fd = try connect(path, timeout: timeout)
        try UnixSocket.send(fd.raw, command + "\n")
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { raw in retryingOnInterrupt { read(fd.raw, raw.baseAddress, raw.count) } }
            if count < 0 { throw SystemError("read", detail: path) }
            if count == 0 { break }
            answer.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: answer, as: UTF8.self)
    }

    /// A connection whose reads time out: without the limit a silent HAProxy would hold the
    /// apply queue forever.
    private static func connect(_ path: String, timeout: Double) throws(SystemError) -> FileDescriptor {
        let fd = try UnixSocket.connect(path)
        try fd.setTimeout(SO_RCVTIMEO, "SO_RCVTIMEO", seconds: timeout, detail: path)
        return fd
    }

    /// One connection in HAProxy's interactive mode (`prompt`): each command's answer ends with
    /// a "\n> " prompt, so a plan's commands share the connection instead of one each.
    struct Session: ~Copyable {
        let fd: FileDescriptor
        let path: String

        init(_ path: String, timeout: Double = 2) throws(SystemError) {
            let fd = try AdminSocket.connect(path, timeout: timeout)
            _ = try Session.exchange(fd.raw, path, "prompt")
            self.fd = fd
            self.path = path
        }

        deinit {
            try? UnixSocket.send(fd.raw, "quit\n")
        }

        /// Sends one command and returns its answer without the prompt.
        func run(_ command: String) throws(SystemError) -> String {
            try Session.exchange(fd.raw, path, command)
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
        (try? command(path, "show info", timeout: 1)).flatMap(pid(inInfo:))
    }

    /// The `Pid:` line of `show info`.
    static func pid(inInfo info: String) -> pid_t? {
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
