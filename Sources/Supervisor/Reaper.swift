// The one reaper. Only the signal loop calls waitpid(-1): a second waitpid anywhere would steal
// exit statuses. Every child the supervisor starts is registered here with its role; when the
// signal loop reaps it, the status goes to whoever waits for that pid, and the role tells the
// loop what the exit means (an HAProxy generation crashed, the watcher ended, an orphan).
import Dispatch
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

enum ChildRole: Equatable, Sendable {
    case haproxy(generation: Int)
    case watcher
}

final class Reaper: Sendable {
    struct Entry {
        var role: ChildRole
        var status: ExitStatus?
        var waiters: [DispatchSemaphore] = []
    }

    private let children = Mutex<[pid_t: Entry]>([:])

    /// Spawns and registers the child atomically: its exit cannot be reaped before it is known.
    func spawn(_ request: SpawnRequest, role: ChildRole) throws(SystemError) -> pid_t {
        let result: Result<pid_t, SystemError> = children.withLock { table in
            do throws(SystemError) {
                let pid = try ChildProcess.spawn(request)
                table[pid] = Entry(role: role)
                return .success(pid)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Reaps every child that has exited; returns each with its role (nil for orphans that
    /// were re-parented to us).
    func reapExited() -> [(pid: pid_t, role: ChildRole?, status: ExitStatus)] {
        var reaped: [(pid_t, ChildRole?, ExitStatus)] = []
        while true {
            var waitStatus: Int32 = 0
            let pid = waitpid(-1, &waitStatus, WNOHANG)
            if pid > 0 {
                let status = ExitStatus(waitStatus: waitStatus)
                let role = children.withLock { table -> ChildRole? in
                    guard var entry = table[pid] else { return nil }
                    entry.status = status
                    entry.waiters.forEach { $0.signal() }
                    // Keep the status for a waiter that has not arrived yet; `forget` drops it.
                    table[pid] = entry
                    return entry.role
                }
                reaped.append((pid, role, status))
                continue
            }
            if pid == -1 && errno == EINTR { continue }
            return reaped
        }
    }

    /// Waits until the child has exited, or the timeout passes (nil).
    func waitForExit(_ pid: pid_t, timeout: Double) -> ExitStatus? {
        let semaphore = DispatchSemaphore(value: 0)
        let known: ExitStatus?? = children.withLock { table in
            guard var entry = table[pid] else { return .some(nil) }
            if let status = entry.status { return .some(status) }
            entry.waiters.append(semaphore)
            table[pid] = entry
            return .none
        }
        if case .some(let status) = known { return status }
        _ = semaphore.wait(timeout: .now() + timeout)
        return children.withLock { $0[pid]?.status }
    }

    /// The exit status if the child has already exited.
    func exitStatus(_ pid: pid_t) -> ExitStatus? {
        children.withLock { $0[pid]?.status }
    }

    /// Drops an exited child's record once nobody will ask about it again.
    func forget(_ pid: pid_t) {
        children.withLock { table in
            if table[pid]?.status != nil { table[pid] = nil }
        }
    }

    func pids(where predicate: (ChildRole) -> Bool) -> [pid_t] {
        children.withLock { table in
            table.compactMap { pid, entry in entry.status == nil && predicate(entry.role) ? pid : nil }.sorted()
        }
    }
}
