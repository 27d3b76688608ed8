// kube-haproxy: PID 1 of the load balancer's container. Owns HAProxy (validated seamless
// reloads), the watcher, signals and zombie reaping; the same binary is the control client.
import CSystem
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

// Before anything else, and before any thread exists: every thread inherits the mask.
SignalLoop.blockHandledSignals()

let usage = """
    Usage:
      kube-haproxy [run]              run the supervisor (PID 1 of the container)
      kube-haproxy status             print the supervisor's status as JSON
      kube-haproxy reload             start a new HAProxy generation with the current config
      kube-haproxy apply CONFIG [NAME=PEMFILE ...]
                                      apply a config file and certificates (key + certificate PEM)
      kube-haproxy history            the last 20 applied configs, newest (the live one, 0) first
      kube-haproxy diff [N]           unified diff from history entry N [1] to the live config,
                                      passwords and PEM blocks masked
      kube-haproxy help               this text

    The client commands exit 0 when the supervisor answers ok, 1 when it reports an error,
    2 on bad usage, 3 when the control socket cannot be reached.

    Environment (defaults in brackets):
      KUBE_HAPROXY_RUN_DIR            run directory: control.sock, admin.sock, haproxy.cfg, ssl/ [/run/kube-haproxy]
      KUBE_HAPROXY_HAPROXY            haproxy executable [haproxy on PATH]
      KUBE_HAPROXY_WATCHER            watcher executable, or "none" [kube-haproxy-watcher beside this binary]
      KUBE_HAPROXY_GRACE              time in-flight requests get to finish on SIGTERM [30s]
      KUBE_HAPROXY_DRAIN_TIMEOUT      time an old generation may drain before it is stopped [10m]
      KUBE_HAPROXY_START_TIMEOUT      time a new generation may take to start serving [60s]
      KUBE_HAPROXY_MAX_REQUEST_BYTES  largest control request accepted [67108864]
      KUBE_HAPROXY_METRICS_ADDR       HOST:PORT serving /metrics, /healthz, /readyz [off]
      KUBE_HAPROXY_RUNTIME_UPDATES    on: server changes without a reload when HAProxy can; off: reload always [on]
      KUBE_HAPROXY_STATE_DIR          keeps the last-good bundle (served at start) and the history [off]
      KUBE_HAPROXY_DEBUG              1 to log debug lines
    Durations: seconds, or a number with ms, s, m or h.

    Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads.

    """

func runClient(_ request: ControlRequest) -> Int32 {
    let paths = RunPaths(environment: Environment.current())
    do {
        var client = try ControlClient(path: paths.controlSocket)
        let reply = try client.send(request)
        print(reply.json.serialized)
        return reply.isSuccess ? 0 : 1
    } catch {
        FileIO.writeError("kube-haproxy: cannot reach the supervisor at \(paths.controlSocket): \(error)\n")
        return 3
    }
}

func runApplyClient(_ arguments: ArraySlice<String>) -> Int32 {
    guard let configPath = arguments.first else {
        FileIO.writeError("kube-haproxy apply: missing CONFIG\n\(usage)")
        return 2
    }
    do {
        guard let config = try FileIO.readFile(configPath) else {
            FileIO.writeError("kube-haproxy apply: \(configPath): no such file\n")
            return 2
        }
        var certificates: [String: String] = [:]
        for argument in arguments.dropFirst() {
            guard let equals = argument.firstIndex(of: "="),
                  ControlRequest.isValidCertificateName(String(argument[..<equals])) else {
                FileIO.writeError("kube-haproxy apply: \(argument): expected NAME=PEMFILE with a name of letters, digits, '.', '_', '-'\n")
                return 2
            }
            let file = String(argument[argument.index(after: equals)...])
            guard let pem = try FileIO.readFile(file) else {
                FileIO.writeError("kube-haproxy apply: \(file): no such file\n")
                return 2
            }
            certificates[String(argument[..<equals])] = String(decoding: pem, as: UTF8.self)
        }
        return runClient(ControlRequest.apply(config: String(decoding: config, as: UTF8.self), certificates: certificates))
    } catch {
        FileIO.writeError("kube-haproxy apply: \(error)\n")
        return 2
    }
}

/// The supervisor's history, or nil after printing why not (the exit code is then 3).
func fetchHistory() -> [HistoryEntry]? {
    let paths = RunPaths(environment: Environment.current())
    do {
        var client = try ControlClient(path: paths.controlSocket)
        switch try client.send(.history) {
        case .history(let entries): return entries
        case .failed(let failure): FileIO.writeError("kube-haproxy: \(failure.message)\n")
        default: FileIO.writeError("kube-haproxy: the supervisor did not answer with its history\n")
        }
    } catch {
        FileIO.writeError("kube-haproxy: cannot reach the supervisor at \(paths.controlSocket): \(error)\n")
    }
    return nil
}

func runHistory() -> Int32 {
    guard let entries = fetchHistory() else { return 3 }
    print("N   APPLIED                   PATH     GENERATION  HASH")
    for (number, entry) in entries.enumerated() {
        func padded(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }
        print(padded(String(number), 4) + padded(entry.appliedAt, 26) + padded(entry.path.rawValue, 9)
              + padded(String(entry.generation), 12) + entry.hash + (number == 0 ? "  (live)" : ""))
    }
    return 0
}

func runDiff(_ arguments: ArraySlice<String>) -> Int32 {
    guard arguments.count <= 1, let number = Int(arguments.first ?? "1"), number >= 0 else {
        FileIO.writeError("kube-haproxy diff: expected an entry number of `kube-haproxy history`\n\(usage)")
        return 2
    }
    guard let entries = fetchHistory() else { return 3 }
    guard let live = entries.first, number < entries.count else {
        FileIO.writeError("kube-haproxy diff: no entry \(number): the history holds \(entries.count)\n")
        return 2
    }
    let older = entries[number]
    do {
        guard let oldBytes = try FileIO.readFile(older.file), let liveBytes = try FileIO.readFile(live.file) else {
            FileIO.writeError("kube-haproxy diff: a history file is gone (\(older.file), \(live.file))\n")
            return 1
        }
        var mask = SecretMask()
        let oldLines = mask.mask(String(decoding: oldBytes, as: UTF8.self))
        let liveLines = mask.mask(String(decoding: liveBytes, as: UTF8.self))
        print(UnifiedDiff.render(oldLines, liveLines, oldName: "\(number) \(older.appliedAt) \(older.hash)",
                                 newName: "0 \(live.appliedAt) \(live.hash) (live)"), terminator: "")
        return 0
    } catch {
        FileIO.writeError("kube-haproxy diff: \(error)\n")
        return 1
    }
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case nil, "run"?:
    exit(Supervisor.run())
case "status"?:
    exit(runClient(.status))
case "reload"?:
    exit(runClient(.reload))
case "apply"?:
    exit(runApplyClient(arguments.dropFirst()))
case "history"?:
    exit(runHistory())
case "diff"?:
    exit(runDiff(arguments.dropFirst()))
case "help"?, "--help"?, "-h"?:
    print(usage, terminator: "")
    exit(0)
case let other?:
    FileIO.writeError("kube-haproxy: unknown command \"\(other)\"\n\(usage)")
    exit(2)
}
