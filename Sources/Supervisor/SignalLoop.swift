// PID 1's main loop: every handled signal is blocked in every thread and taken here with
// sigtimedwait. SIGCHLD reaps (all children, orphans included), SIGTERM/SIGINT stop gracefully,
// SIGHUP reloads.
import CSystem
import Dispatch
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

enum SignalLoop {
    static let handled: [Int32] = [SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT]

    /// Blocks the handled signals in the calling thread; run first in main, before any thread
    /// exists, so every thread inherits the mask and only the loop receives them.
    /// PID 1 cannot go on without it: an unblocked SIGTERM or SIGCHLD would take the default
    /// action in whichever thread it lands, and never reach the loop.
    static func blockHandledSignals() {
        var set = signalSet()
        let result = pthread_sigmask(SIG_BLOCK, &set, nil)
        if result != 0 {
            FileIO.writeError("kube-haproxy: \(SystemError("pthread_sigmask", errno: result)); cannot handle signals\n")
            exit(1)
        }
        // SIG_ERR is the handler value -1.
        if let previous = signal(SIGPIPE, SIG_IGN), unsafeBitCast(previous, to: Int.self) == -1 {
            FileIO.writeError("kube-haproxy: \(SystemError("signal SIGPIPE")); a closed peer would kill the supervisor\n")
            exit(1)
        }
    }

    static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for number in handled { sigaddset(&set, number) }
        return set
    }

    /// Runs until shutdown completes; returns the exit code.
    static func run(generations: HAProxyGenerations, watcher: WatcherProcess?, reaper: Reaper, grace: Double) -> Int32 {
        var set = signalSet()
        var shutdown: Shutdown?
        while true {
            var number: Int32 = 0
            var sender: pid_t = 0
            let timeout = shutdown == nil ? 1000 : 50
            let result = csystem_sigtimedwait(&set, timeout, &number, &sender)
            if result > 0 {
                switch number {
                case SIGCHLD:
                    reapChildren(reaper: reaper, generations: generations, watcher: watcher)
                case SIGTERM, SIGINT, SIGQUIT:
                    if shutdown == nil {
                        Log.info("stopping: draining connections", ["signal": String(cString: strsignal(number)), "grace_seconds": formatSeconds(grace)])
                        shutdown = Shutdown(deadline: monotonicSeconds() + grace)
                        _ = watcher?.stop()
                        _ = generations.beginShutdown()
                    } else if number == SIGINT || number == SIGQUIT {
                        Log.warning("second stop signal: stopping haproxy now")
                        shutdown?.deadline = 0
                    }
                case SIGHUP:
                    Log.info("SIGHUP: reloading")
                    // Off the loop: a reload waits for the new generation, and the loop must keep reaping.
                    DispatchQueue.global().async {
                        if case .failed(let failure) = generations.reload() {
                            Log.error("reload failed", ["error": failure.message])
                        }
                    }
                default:
                    break
                }
            } else {
                // A timeout (EAGAIN) or an interruption (EINTR); also catch SIGCHLDs that
                // coalesced while we were busy. Anything else is a broken wait: say so, and
                // keep reaping on the timeout's rhythm rather than spin.
                let failure = errno
                if failure != EAGAIN && failure != EINTR {
                    Log.error("waiting for signals failed", ["error": SystemError("sigtimedwait", errno: failure).description])
                    sleepSeconds(Double(timeout) / 1000)
                }
                reapChildren(reaper: reaper, generations: generations, watcher: watcher)
            }
            if var stopping = shutdown {
                if stopping.step(generations: generations, reaper: reaper) {
                    Log.info("stopped")
                    return 0
                }
                shutdown = stopping
            }
        }
    }

    static func reapChildren(reaper: Reaper, generations: HAProxyGenerations, watcher: WatcherProcess?) {
        for (pid, role, status) in reaper.reapExited() {
            switch role {
            case .haproxy(let generation)?:
                generations.handleExit(pid: pid, generation: generation, status: status)
            case .watcher?:
                watcher?.handleExit(pid: pid, status: status)
            case nil:
                Log.debug("reaped an orphaned process", ["pid": String(pid), "status": status.description])
            }
        }
    }

    /// Graceful stop: every HAProxy soft-stops (SIGUSR1) and finishes its connections until the
    /// grace deadline, then whatever still runs is killed.
    struct Shutdown {
        var deadline: Double
        var softStopped: Set<pid_t> = []
        var killed = false

        /// One step; true when nothing is left running.
        mutating func step(generations: HAProxyGenerations, reaper: Reaper) -> Bool {
            let running = reaper.pids { _ in true }
            if running.isEmpty { return true }
            let haproxy = generations.runningPids()
            for pid in haproxy where !softStopped.contains(pid) {
                kill(pid, SIGUSR1)
                softStopped.insert(pid)
            }
            if !killed && monotonicSeconds() >= deadline {
                Log.warning("grace period over: stopping what still runs", ["pids": running.map(String.init).joined(separator: ",")])
                for pid in running { kill(pid, SIGKILL) }
                killed = true
            }
            return false
        }
    }
}
