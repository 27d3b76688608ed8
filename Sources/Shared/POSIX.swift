// Thin typed wrappers over the POSIX calls both processes make, so the rest of the code never
// juggles raw return codes and errno.
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// A failed system call: which call, on what, and the errno text.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var errno: Int32
    public var detail: String

    public init(_ call: String, errno: Int32 = Glibc.errno, detail: String = "") {
        self.call = call
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        return detail.isEmpty ? "\(call): \(reason)" : "\(call) \(detail): \(reason)"
    }
}

/// Retries a call interrupted by a signal (EINTR).
@inline(__always)
public func retryingOnInterrupt<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}

public enum FileIO {
    /// Writes every byte, looping over short writes.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let written = retryingOnInterrupt { Glibc.write(fd, base + offset, bytes.count - offset) }
            if written < 0 { throw SystemError("write") }
            offset += written
        }
    }

    public static func writeAll(_ fd: Int32, _ text: String) throws(SystemError) {
        var copy = text
        let result: Result<Void, SystemError> = copy.withUTF8 { buffer in
            Result { () throws(SystemError) in try writeAll(fd, UnsafeRawBufferPointer(buffer)) }
        }
        try result.get()
    }

    /// The whole content of a file, or nil when it does not exist.
    public static func readFile(_ path: String) throws(SystemError) -> [UInt8]? {
        let fd = retryingOnInterrupt { open(path, O_RDONLY | O_CLOEXEC) }
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw SystemError("open", detail: path)
        }
        defer { close(fd) }
        // Sized from fstat and read in place; one byte more, so that a full buffer means the
        // file grew since and the rest follows in chunks.
        var info = stat()
        var size = 1 << 16
        if fstat(fd, &info) == 0, info.st_size > 0 { size = Int(info.st_size) + 1 }
        var failure: SystemError?
        var result = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            guard let base = buffer.baseAddress else { return }
            while initialized < buffer.count {
                let count = retryingOnInterrupt { read(fd, base + initialized, buffer.count - initialized) }
                if count < 0 { failure = SystemError("read", detail: path); return }
                if count == 0 { return }
                initialized += count
            }
        }
        if let failure { throw failure }
        if result.count < size { return result }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer in
                retryingOnInterrupt { read(fd, buffer.baseAddress, buffer.count) }
            }
            if count < 0 { throw SystemError("read", detail: path) }
            if count == 0 { return result }
            result.append(contentsOf: chunk[0..<count])
        }
    }

    /// Writes a file atomically: a temporary file in the same directory, the mode set
    /// regardless of umask, rename over the target. A reader sees the old content or the new,
    /// never a part. `durable` adds the fsyncs (file and directory) that make the new content
    /// survive a power loss; files rebuilt at every start don't need them.
    public static func writeAtomically(_ path: String, _ contents: String, mode: mode_t, durable: Bool = true) throws(SystemError) {
        let directory = parentDirectory(of: path)
        let temporary = "\(path).tmp.\(getpid())"
        let fd = retryingOnInterrupt { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        if fd < 0 { throw SystemError("open", detail: temporary) }
        do throws(SystemError) {
            if fchmod(fd, mode) != 0 { throw SystemError("fchmod", detail: temporary) }
            try writeAll(fd, contents)
            if durable && fsync(fd) != 0 { throw SystemError("fsync", detail: temporary) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        if rename(temporary, path) != 0 {
            let failure = SystemError("rename", detail: "\(temporary) to \(path)")
            unlink(temporary)
            throw failure
        }
        guard durable else { return }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Creates a directory and its parents; an existing directory is fine.
    public static func makeDirectory(_ path: String, mode: mode_t) throws(SystemError) {
        if path.isEmpty || path == "/" { return }
        var status = stat()
        if stat(path, &status) == 0 {
            if (status.st_mode & S_IFMT) == S_IFDIR { return }
            throw SystemError("mkdir", errno: ENOTDIR, detail: path)
        }
        try makeDirectory(parentDirectory(of: path), mode: 0o755)
        if mkdir(path, mode) != 0 && errno != EEXIST { throw SystemError("mkdir", detail: path) }
    }

    /// The names in a directory, without "." and "..".
    public static func listDirectory(_ path: String) throws(SystemError) -> [String] {
        guard let directory = opendir(path) else { throw SystemError("opendir", detail: path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Monotonic time in seconds, for durations and deadlines.
public func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Wall-clock time as an RFC 3339 UTC timestamp with milliseconds.
public func timestampUTC(_ time: timespec? = nil) -> String {
    var now = time ?? timespec()
    if time == nil { clock_gettime(CLOCK_REALTIME, &now) }
    var parts = tm()
    var seconds = now.tv_sec
    gmtime_r(&seconds, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
        + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
}

/// Sleeps for a number of seconds (fractions allowed).
public func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// Starts a detached POSIX thread running `body`. Used instead of Foundation's Thread so the
/// supervisor links no Foundation.
public func startThread(_ body: @escaping @Sendable () -> Void) throws(SystemError) {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body))
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { argument in
        guard let argument else { return nil }
        let box = Unmanaged<Box>.fromOpaque(argument).takeRetainedValue()
        box.body()
        return nil
    }, box.toOpaque())
    if result != 0 {
        box.release()
        throw SystemError("pthread_create", errno: result)
    }
    pthread_detach(thread)
}

extension FileIO {
    /// Writes a message to stderr as it is (for command-line errors, not log lines).
    public static func writeError(_ text: String) {
        try? writeAll(2, text)
    }
}
