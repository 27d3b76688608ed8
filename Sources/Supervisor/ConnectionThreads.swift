// Accepting connections for the supervisor's two small servers (control socket, metrics): each
// connection is served on a thread of its own, with a cap on how many run at once.
import CSystem
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

final class ConnectionThreads: Sendable {
    let name: String
    let limit: Int
    private let active = Atomic<Int>(0)

    init(name: String, limit: Int) {
        self.name = name
        self.limit = limit
    }

    /// Runs `acceptLoop` on a thread of its own, which keeps the listener for good.
    static func startAccepting(_ listener: consuming FileDescriptor, _ acceptLoop: @escaping @Sendable (Int32) -> Void) throws(SystemError) {
        let fd = listener.release()
        do {
            try startThread { acceptLoop(fd) }
        } catch {
            close(fd)
            throw error
        }
    }

    /// Accepts forever. `admit` may refuse a connection (it answers and returns false);
    /// `overLimit` answers one beyond the cap. Every descriptor is closed here.
    func acceptForever(_ listener: Int32, admit: (Int32) -> Bool = { _ in true }, overLimit: (Int32) -> Void = { _ in },
                       serve: @escaping @Sendable (Int32) -> Void) -> Never {
        while true {
            let fd = csystem_accept_cloexec(listener)
            if fd < 0 {
                if errno != EINTR && errno != ECONNABORTED {
                    Log.error("\(name): accept failed", ["error": SystemError("accept").description])
                    sleepSeconds(0.1)
                }
                continue
            }
            guard admit(fd) else {
                close(fd)
                continue
            }
            if active.add(1, ordering: .relaxed).newValue > limit {
                active.subtract(1, ordering: .relaxed)
                overLimit(fd)
                close(fd)
                continue
            }
            do {
                try startThread { [self] in
                    serve(fd)
                    close(fd)
                    active.subtract(1, ordering: .relaxed)
                }
            } catch {
                Log.error("\(name): could not start a connection thread", ["error": error.description])
                active.subtract(1, ordering: .relaxed)
                close(fd)
            }
        }
    }
}
