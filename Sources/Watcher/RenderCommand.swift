// `kube-haproxy-watcher render --template FILE [--context FILE.json]`: renders one template
// with Jinja2's semantics and writes the result to stdout.

#if canImport(Glibc)
import Glibc
#endif
import Jinja
import JSON
import Shared

let usage = """
    Usage:
      kube-haproxy-watcher
          Run the watcher: keep HAProxy in step with the cluster (the supervisor starts it).
          Environment: KUBE_HAPROXY_SOURCE (etcd2 or kubernetes; unset: etcd2 when ETCD2BASE
          is set, else kubernetes when KUBE_HAPROXY_API_SERVER or KUBERNETES_SERVICE_HOST is);
          etcd2: ETCD2BASE, ETCD2_CA_FILE, ETCD2_CERT_FILE, ETCD2_KEY_FILE, ETCD2_PREFIX [/registry];
          kubernetes: KUBE_HAPROXY_API_SERVER [https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT],
          KUBE_HAPROXY_API_TOKEN_FILE [/var/run/secrets/kubernetes.io/serviceaccount/token],
          KUBE_HAPROXY_API_CA_FILE [ca.crt beside the token file, else the system CAs],
          KUBE_HAPROXY_API_CERT_FILE, KUBE_HAPROXY_API_KEY_FILE; both: LB_NAMESPACE [lb],
          KUBE_HAPROXY_RELOAD_INTERVAL [1s], STATISTICS_PASSWORD, and from the supervisor
          KUBE_HAPROXY_CONTROL_SOCKET and KUBE_HAPROXY_SSL_DIR.
      kube-haproxy-watcher render --template FILE [--context FILE.json] [--timings]
          Render FILE (a Jinja2 template) with the top-level keys of the JSON object in
          FILE.json as variables, and write the result to stdout. On a template error, print
          FILE:LINE: MESSAGE to stderr and exit 1. Exit 2 on bad usage or unreadable files.
          --timings also writes to stderr how long parsing the JSON, compiling and
          rendering took ("timings: json=…ms compile=…ms render=…ms"; scripts/bench reads it).
      kube-haproxy-watcher render [--template FILE] [--dump-context]
          With a source set (the variables above) and no --context: a dry run against the live
          cluster, through etcd2 or the Kubernetes API (kubectl proxy and
          KUBE_HAPROXY_API_SERVER=http://127.0.0.1:8001 work). Reads the state once and prints
          the config the watcher would send (rendered from ConfigMap lb/config, or from FILE);
          --dump-context prints the template context as JSON instead.
      kube-haproxy-watcher --help
          Show this help.
    """

/// A message on stderr, ending in a newline.
func writeError(_ message: String) {
    FileIO.writeError(message.hasSuffix("\n") ? message : message + "\n")
}

/// Writes all of `text` to stdout; false if the write failed.
func writeOutput(_ text: String) -> Bool {
    (try? FileIO.writeAll(1, text)) != nil
}

/// The whole file, or nil after writing why it cannot be read.
func readInput(_ path: String) -> [UInt8]? {
    let reason: Int32
    do throws(SystemError) {
        if let bytes = try FileIO.readFile(path) { return bytes }
        reason = ENOENT
    } catch {
        reason = error.errno
    }
    writeError("kube-haproxy-watcher render: cannot read \(path): \(String(cString: strerror(reason)))")
    return nil
}

/// A regular file mapped read-only; nil for anything mmap refuses (pipes, empty files).
struct MappedFile {
    let base: UnsafeMutableRawPointer
    let count: Int

    init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0 else { return nil }
        let size = Int(info.st_size)
        guard let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0), pointer != MAP_FAILED else {
            return nil
        }
        base = pointer
        count = size
    }

    var bytes: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: count)
    }

    func unmap() { munmap(base, count) }
}

/// Milliseconds on the monotonic clock.
func monotonicMilliseconds() -> Double {
    monotonicSeconds() * 1000
}

enum RenderCommand {
    /// The parsed context outlives `run`: the process exit reclaims it at once, where freeing
    /// a large tree of values one by one would cost a good part of the render time.
    nonisolated(unsafe) static var retainedContext: [(String, Value)] = []

    static func run(_ arguments: [String]) -> Int32 {
        var templatePath: String? = nil
        var timings = false
        var contextPath: String? = nil
        var dumpContext = false
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--help", "-h":
                print(usage)
                return 0
            case "--timings":
                timings = true
                index += 1
            case "--dump-context":
                dumpContext = true
                index += 1
            case "--template", "--context":
                guard index + 1 < arguments.count else {
                    writeError("kube-haproxy-watcher render: \(argument) needs a value\n\(usage)")
                    return 2
                }
                if argument == "--template" { templatePath = arguments[index + 1] } else { contextPath = arguments[index + 1] }
                index += 2
            default:
                if argument.hasPrefix("--template=") {
                    templatePath = String(argument.dropFirst("--template=".count))
                } else if argument.hasPrefix("--context=") {
                    contextPath = String(argument.dropFirst("--context=".count))
                } else {
                    writeError("kube-haproxy-watcher render: unexpected argument '\(argument)'\n\(usage)")
                    return 2
                }
                index += 1
            }
        }
        if contextPath == nil, WatcherSettings.isSourceSet(Environment.current()) {
            return renderLive(templatePath: templatePath, dumpContext: dumpContext)
        }
        if dumpContext {
            writeError("kube-haproxy-watcher render: --dump-context needs a source (ETCD2BASE or KUBE_HAPROXY_API_SERVER: the live cluster) and no --context")
            return 2
        }
        guard let templatePath else {
            writeError("kube-haproxy-watcher render: --template FILE is required (or set ETCD2BASE or KUBE_HAPROXY_API_SERVER to render the live cluster's template)\n\(usage)")
            return 2
        }
        guard let templateBytes = readInput(templatePath) else { return 2 }
        var context: [(String, Value)] = []
        let jsonStart = monotonicMilliseconds()
        if let contextPath {
            let parsed: Result<Value, JSONError>
            if let mapped = MappedFile(path: contextPath) {
                // Read straight from the page cache, no copy of a context of many megabytes; the
                // mapping stays while the values read lazily from it live.
                parsed = Result { () throws(JSONError) in
                    try JSONDocument(unsafeBytes: mapped.bytes) { _ in mapped.unmap() }.value()
                }
            } else {
                guard let contextBytes = readInput(contextPath) else { return 2 }
                parsed = Result { () throws(JSONError) in try Value.parseJSONLazily(contextBytes) }
            }
            let value: Value
            switch parsed {
            case .success(let parsedValue): value = parsedValue
            case .failure(let error):
                writeError("kube-haproxy-watcher render: \(contextPath): invalid JSON: \(error)")
                return 2
            }
            guard case .dict(let object) = value else {
                writeError("kube-haproxy-watcher render: \(contextPath): the context must be a JSON object")
                return 2
            }
            for (key, item) in zip(object.keys, object.values) { context.append((key.pyStr, item)) }
        }
        retainedContext = context
        let compileStart = monotonicMilliseconds()
        let source = String(decoding: templateBytes, as: UTF8.self)
        do {
            let template = try Template(source: source, name: templatePath)
            let renderStart = monotonicMilliseconds()
            let output = try template.render(context)
            if timings {
                let renderEnd = monotonicMilliseconds()
                func ms(_ value: Double) -> String {
                    let thousandths = Int((value * 1000).rounded())
                    let fraction = String(thousandths % 1000)
                    return "\(thousandths / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)ms"
                }
                writeError("timings: json=\(ms(compileStart - jsonStart)) compile=\(ms(renderStart - compileStart)) render=\(ms(renderEnd - renderStart))")
            }
            if !writeOutput(output) {
                writeError("kube-haproxy-watcher render: writing the output failed: \(String(cString: strerror(errno)))")
                return 1
            }
            return 0
        } catch {
            writeError("\(templatePath):\(error.line): \(error.message)")
            return 1
        }
    }
}

extension RenderCommand {
    /// The dry run: the live cluster's context, with its template or another.
    static func renderLive(templatePath: String?, dumpContext: Bool) -> Int32 {
        let live: LiveRender.Live
        do {
            live = try LiveRender.read()
        } catch {
            writeError("kube-haproxy-watcher render: cannot read the cluster state: \(error)")
            return error is SettingError ? 2 : 1
        }
        if dumpContext {
            return writeOutput(LiveRender.dump(live.context)) ? 0 : 1
        }
        let name: String
        let source: String
        if let templatePath {
            guard let bytes = readInput(templatePath) else { return 2 }
            (name, source) = (templatePath, String(decoding: bytes, as: UTF8.self))
        } else if let template = live.template {
            (name, source) = ("template", template)
        } else {
            writeError("kube-haproxy-watcher render: ConfigMap lb/config has no \"template\" key (or does not exist); pass --template FILE")
            return 1
        }
        do {
            let output = try Template(source: source, name: name).render(live.context)
            return writeOutput(output) ? 0 : 1
        } catch {
            writeError("\(name):\(error.line): \(error.message)")
            return 1
        }
    }
}
