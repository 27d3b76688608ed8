// Spawning children with posix_spawn: default signal dispositions, an empty signal mask, stdin
// from /dev/null, no stray descriptors, and a process group of their own (a terminal's ^C reaches
// the supervisor only, which then stops HAProxy gracefully).
import CSystem
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

struct SpawnRequest {
    var executable: String
    var arguments: [String]
    var environment: [(String, String)]
    /// Descriptor the child's stdout and stderr go to (-1: the supervisor's stderr).
    var outputFD: Int32 = -1
}

/// How a child ended.
enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    init(waitStatus: Int32) {
        if csystem_wifexited(waitStatus) != 0 {
            self = .exited(csystem_wexitstatus(waitStatus))
        } else {
            self = .signaled(csystem_wtermsig(waitStatus))
        }
    }

    var description: String {
        switch self {
        case .exited(let code): return "exit code \(code)"
        case .signaled(let signal): return "signal \(signal) (\(String(cString: strsignal(signal))))"
        }
    }
}

enum ChildProcess {
    /// Starts the child and returns its pid. The caller must hold the reaper's lock so the
    /// pid is registered before its exit can be reaped.
    static func spawn(_ request: SpawnRequest) throws(SystemError) -> pid_t {
        // Each posix_spawn* call returns its error number; a child started without its mask
        // reset or its descriptors closed would be wrong in ways no later check sees.
        func check(_ result: Int32, _ call: String) throws(SystemError) {
            if result != 0 { throw SystemError(call, errno: result, detail: request.executable) }
        }
        var attributes = posix_spawnattr_t()
        try check(posix_spawnattr_init(&attributes), "posix_spawnattr_init")
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        try check(posix_spawnattr_setsigmask(&attributes, &emptyMask), "posix_spawnattr_setsigmask")
        try check(posix_spawnattr_setsigdefault(&attributes, &allSignals), "posix_spawnattr_setsigdefault")
        try check(posix_spawnattr_setpgroup(&attributes, 0), "posix_spawnattr_setpgroup")
        try check(posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)),
                  "posix_spawnattr_setflags")

        var actions = posix_spawn_file_actions_t()
        try check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init")
        defer { posix_spawn_file_actions_destroy(&actions) }
        try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "posix_spawn_file_actions_addopen")
        let output = request.outputFD >= 0 ? request.outputFD : 2
        try check(posix_spawn_file_actions_adddup2(&actions, output, 1), "posix_spawn_file_actions_adddup2")
        try check(posix_spawn_file_actions_adddup2(&actions, output, 2), "posix_spawn_file_actions_adddup2")
        try check(csystem_spawn_addclosefrom(&actions, 3), "posix_spawn_file_actions_addclosefrom_np")

        let argv = ([request.executable] + request.arguments).map { strdup($0) }
        let envp = request.environment.map { strdup("\($0.0)=\($0.1)") }
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var argvArray = argv + [nil]
        var envpArray = envp + [nil]
        let result = argvArray.withUnsafeMutableBufferPointer { argvBuffer in
            envpArray.withUnsafeMutableBufferPointer { envpBuffer in
                guard let argvBase = argvBuffer.baseAddress, let envpBase = envpBuffer.baseAddress else { return EINVAL }
                return posix_spawn(&pid, request.executable, &actions, &attributes, argvBase, envpBase)
            }
        }
        // posix_spawn returns the error number; errno is not set.
        if result != 0 { throw SystemError("posix_spawn", errno: result, detail: request.executable) }
        return pid
    }

    /// A pipe whose read end stays in the supervisor (close-on-exec) and whose write end the
    /// child gets as stdout and stderr.
    static func outputPipe() throws(SystemError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        if csystem_pipe_cloexec(&fds) != 0 { throw SystemError("pipe2") }
        return (fds[0], fds[1])
    }

    /// Looks a program up on PATH (or returns it when it names a path).
    static func resolve(_ program: String, path: String?) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        for directory in (path ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
