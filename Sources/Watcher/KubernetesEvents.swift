// Problems as Warning Events on the objects at fault, so that `kubectl describe configmap -n lb
// config` shows why a config is not live. One Event per distinct problem: a repeat raises its
// count and lastTimestamp. Sent from a thread of its own with a short timeout: rendering never
// waits for the API server, and a failure to send is logged once, not fatal.
import JSON
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

final class EventRecorder: ProblemReporter, Sendable {
    static let timeoutMilliseconds = 2000
    static let component = "kube-haproxy"

    struct Report: Sendable {
        var problem: ClusterProblem
        var uid: String?
        var time: String
    }

    let namespace: String
    private let queue = Queue<Report>()

    init(settings: KubernetesAPISettings, token: BearerToken, namespace: String, forbidden: ForbiddenLog) {
        self.namespace = namespace
        let queue = self.queue
        let started = KubernetesClient.startThread(settings: settings, token: token) { client in
            var sender = EventSender(client: client, namespace: namespace, forbidden: forbidden)
            while true {
                guard let report = queue.pop(timeout: nil) else { continue }
                sender.send(report)
            }
        }
        if let error = started {
            Log.error("cannot start the thread that sends Events; problems are only logged", ["error": error])
        }
    }

    func report(_ problem: ClusterProblem, uid: String?) {
        queue.push(Report(problem: problem, uid: uid, time: EventRecorder.timestamp()))
    }

    /// RFC 3339 in whole seconds, as metav1.Time writes it.
    static func timestamp() -> String {
        let text = timestampUTC()
        guard let dot = text.lastIndex(of: ".") else { return text }
        return String(text[..<dot]) + "Z"
    }
}

/// The Events sent so far, by problem; runs on the recorder's thread only.
struct EventSender {
    let client: KubernetesClient
    let namespace: String
    let forbidden: ForbiddenLog
    /// The Event of each problem, and its count (nil: unknown, see `send`).
    private var sent: [ClusterProblem: (name: String, count: Int?)] = [:]
    private var failureLogged = false

    init(client: KubernetesClient, namespace: String, forbidden: ForbiddenLog) {
        self.client = client
        self.namespace = namespace
        self.forbidden = forbidden
    }

    var eventsPath: String { "/api/v1/namespaces/\(namespace)/events" }

    mutating func send(_ report: EventRecorder.Report) {
        let problem = report.problem
        do throws(KubernetesAPIError) {
            if let known = sent[problem] {
                let count = known.count.map { $0 + 1 }
                try patch(name: known.name, count: count, time: report.time)
                sent[problem]?.count = count
            } else {
                let name = EventSender.eventName(problem)
                let created = try client.send("POST", eventsPath, body: EventSender.event(name: name, namespace: namespace, report: report).serialized,
                                              contentType: "application/json", timeoutMilliseconds: EventRecorder.timeoutMilliseconds)
                if created.status == 409 {
                    // A watcher before this one made it: count on from its count, when RBAC lets
                    // us read it (`get` on events); else only its lastTimestamp moves.
                    let existing = try? client.send("GET", eventsPath + "/" + name, timeoutMilliseconds: EventRecorder.timeoutMilliseconds)
                    let json = existing.flatMap { (200..<300).contains($0.status) ? try? JSONReader.parse($0.body, as: JSONValueBuilder.self) : nil }
                    let count = json?["count"]?.intValue.map { $0 + 1 }
                    try patch(name: name, count: count, time: report.time)
                    sent[problem] = (name, count)
                } else {
                    try check(created, verb: "create")
                    sent[problem] = (name, 1)
                }
            }
            failureLogged = false
        } catch {
            if case .status(let status, let verb, _) = error, status.code == 403 {
                forbidden.note(verb: verb, resource: "events", namespace: namespace, name: nil, message: status.message)
            } else if !failureLogged {
                failureLogged = true
                Log.warning("cannot record a Warning Event; the problem is only logged (not said again until an Event is recorded)",
                            ["object": problem.object.description, "reason": problem.reason, "error": error.description])
            }
        }
    }

    private func patch(name: String, count: Int?, time: String) throws(KubernetesAPIError) {
        let body = JSONValue.object((count.map { [("count", .integer($0))] } ?? []) + [("lastTimestamp", .string(time))]).serialized
        let response = try client.send("PATCH", eventsPath + "/" + name, body: body, contentType: "application/merge-patch+json",
                                       timeoutMilliseconds: EventRecorder.timeoutMilliseconds)
        try check(response, verb: "patch")
    }

    private func check(_ response: CurlResponse, verb: String) throws(KubernetesAPIError) {
        guard (200..<300).contains(response.status) else {
            throw KubernetesAPIError.status(APIStatus(httpStatus: response.status, body: response.body), verb: verb, path: eventsPath)
        }
    }

    /// The same problem always gets the same name, so a restarted watcher counts on.
    static func eventName(_ problem: ClusterProblem) -> String {
        // FNV-1a of "kind/name/reason/message", as Event names have always been made.
        var fingerprint = Fingerprint()
        fingerprint.mixBytes(of: "\(problem.object.kind.rawValue)/\(problem.object.name)/\(problem.reason)/\(problem.message)")
        return "\(problem.object.name).kube-haproxy.\(fingerprint.hex)"
    }

    static func event(name: String, namespace: String, report: EventRecorder.Report) -> JSONValue {
        let problem = report.problem
        var involved: [(String, JSONValue)] = [("kind", .string(problem.object.kind.kindName)), ("namespace", .string(problem.object.namespace)),
                                               ("name", .string(problem.object.name))]
        if let uid = report.uid { involved.append(("uid", .string(uid))) }
        involved.append(("apiVersion", .string("v1")))
        // The API server refuses a message longer than 1 kB.
        var message = problem.message
        while message.utf8.count > 1024 { message.removeLast() }
        return .object([
            ("apiVersion", .string("v1")), ("kind", .string("Event")),
            ("metadata", .object([("name", .string(name)), ("namespace", .string(namespace))])),
            ("involvedObject", .object(involved)),
            ("reason", .string(problem.reason)), ("message", .string(message)),
            ("source", .object([("component", .string(EventRecorder.component))])),
            ("firstTimestamp", .string(report.time)), ("lastTimestamp", .string(report.time)), ("count", .integer(1)),
            ("type", .string("Warning")),
            ("reportingComponent", .string(EventRecorder.component)), ("reportingInstance", .string(hostName())),
        ])
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return EventRecorder.component }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
