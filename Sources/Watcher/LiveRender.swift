// `render` against the live cluster (a dry run): with a source configured (ETCD2BASE, or the
// Kubernetes API) and no --context, the context is what the watcher would build from it right
// now, and the template is the one in ConfigMap lb/config unless --template names another.
import Jinja
import JSON
import Shared

enum LiveRender {
    struct Live {
        var context: [(String, Value)]
        var template: String?
        var certificates: [String: String]
    }

    static func read() throws -> Live {
        let settings = try WatcherSettings.fromEnvironment()
        CurlHandle.globalInit()
        let state: ClusterState
        switch settings.source {
        case .etcd2(let etcd):
            state = try ClusterReader(settings: settings, client: try EtcdClient(settings: etcd)).read().state.cluster
        case .kubernetes(let api):
            state = try KubernetesSnapshot.read(settings: settings, api: api)
        }
        for problem in state.certificateProblems { Log.warning("skipping a certificate", ["problem": problem.message]) }
        return Live(context: state.context(ssldir: settings.sslDirectory, statsPassword: settings.statisticsPassword,
                                           environment: settings.environment),
                    template: state.template, certificates: state.certificateFiles)
    }

    /// The context as JSON, in the template's order, two-space indented.
    static func dump(_ context: [(String, Value)]) -> String {
        JSONValue.object(context.map { ($0.0, json($0.1)) }).prettyPrinted + "\n"
    }

    static func json(_ value: Value) -> JSONValue {
        switch value {
        case .none: return .null
        case .bool(let flag): return .bool(flag)
        case .int(let number): return .integer(number)
        case .float(let number): return .double(number)
        case .string(let text), .markup(let text): return .string(text)
        case .list(let list): return .array(list.items.map(json))
        case .tuple(let items): return .array(items.map(json))
        case .dict(let dict): return .object(zip(dict.keys, dict.values).map { ($0.0.pyStr, json($0.1)) })
        default: return .string(value.pyStr)
        }
    }
}
