// A descriptor owned by one value and closed when that value ends, so that no early exit (a
// throw between `socket` and `listen`, say) leaks it; `release()` hands it on to code that
// keeps it for good (an accept loop, a connection's life).
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

public struct FileDescriptor: ~Copyable {
    public let raw: Int32

    /// Takes ownership of what a call returned, or throws that call's error when it failed.
    public init(_ raw: Int32, from call: String, detail: String = "") throws(SystemError) {
        if raw < 0 { throw SystemError(call, detail: detail) }
        self.raw = raw
    }

    deinit { close(raw) }

    /// The descriptor, no longer closed by this value.
    public consuming func release() -> Int32 {
        let raw = self.raw
        discard self
        return raw
    }

    /// Sets an integer socket option, failing with the option's name.
    public func setOption(_ level: Int32, _ name: Int32, _ value: Int32, _ label: String) throws(SystemError) {
        var value = value
        if setsockopt(raw, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 { throw SystemError("setsockopt \(label)") }
    }

    /// Sets a socket's timeout for reads (`SO_RCVTIMEO`) or writes (`SO_SNDTIMEO`): a call
    /// blocked longer fails with EAGAIN.
    public func setTimeout(_ option: Int32, _ label: String, seconds: Double, detail: String = "") throws(SystemError) {
        try FileDescriptor.setTimeout(of: raw, option, label, seconds: seconds, detail: detail)
    }

    /// The same for a descriptor owned elsewhere (a connection its accept loop closes).
    public static func setTimeout(of raw: Int32, _ option: Int32, _ label: String, seconds: Double, detail: String = "") throws(SystemError) {
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        if setsockopt(raw, SOL_SOCKET, option, &limit, socklen_t(MemoryLayout<timeval>.size)) != 0 {
            throw SystemError("setsockopt \(label)", detail: detail)
        }
    }

    /// Binds to an address and listens: the one way the supervisor's servers start.
    public func bindAndListen(_ address: UnsafePointer<sockaddr>, length: socklen_t, name: String, backlog: Int32 = 16) throws(SystemError) {
        if bind(raw, address, length) != 0 { throw SystemError("bind", detail: name) }
        if listen(raw, backlog) != 0 { throw SystemError("listen", detail: name) }
    }
}
