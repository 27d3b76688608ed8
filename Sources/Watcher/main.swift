// kube-haproxy-watcher: renders the HAProxy configuration from a Jinja2 template.
//
// Subcommands are dispatched here; each lives in its own file.

#if canImport(Glibc)
import Glibc
#endif

let arguments = Array(CommandLine.arguments.dropFirst())
let status: Int32
switch arguments.first {
case "render":
    status = RenderCommand.run(Array(arguments.dropFirst()))
case "--help", "-h", "help":
    print(usage)
    status = 0
case nil:
    status = WatchCommand.run()
default:
    writeError("kube-haproxy-watcher: unknown subcommand '\(arguments[0])'\n\(usage)")
    status = 2
}
exit(status)
