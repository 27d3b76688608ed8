// What the watcher knows of the cluster: the load balancer's ConfigMaps and Secret, and the pods
// of every namespace a service names. Sources (etcd2, the Kubernetes API) fill it with whole object
// sets and single changes, by object key and JSON text; it knows nothing of transports. Every
// problem is logged once, naming the object and key, and the rest keeps working.
import Jinja
import Shared

struct ClusterState {
    let lbNamespace: String

    private(set) var services: [Service] = []
    private(set) var template: String?
    private(set) var certificatePEMs: [String: String] = [:]
    private(set) var keyPEMs: [String: String] = [:]
    /// namespace → pod name → pod, for the namespaces services name.
    private(set) var pods: [String: [String: Pod]] = [:]
    /// The raw ConfigMap `services`, so a problem in it is reported once per change.
    private var servicesData: [(String, String)] = []
    /// metadata.uid of the load balancer's objects: an Event names the object it concerns.
    private(set) var uids: [ObjectKey: String] = [:]
    /// Problems found in the objects since the last `takeProblems()`, each already logged.
    private var newProblems: [ClusterProblem] = []

    /// The load balancer's objects the template depends on, each read by name.
    static let lbObjectNames: [(kind: ObjectKind, name: String)] = [
        (.configmaps, "services"), (.configmaps, "certificates"), (.configmaps, "config"), (.secrets, "keys"),
    ]

    init(lbNamespace: String) {
        self.lbNamespace = lbNamespace
    }

    /// The namespaces whose pods matter: those the services name.
    var watchedNamespaces: Set<String> { Set(services.map(\.namespace)) }

    // MARK: Changes, from any source

    /// Replaces an object set with what a full read found: one namespace's pods, or the load
    /// balancer's objects of one kind (`name` nil: all of them; else only that one). True when
    /// the template's input may have changed.
    mutating func replace(_ kind: ObjectKind, namespace: String, name: String? = nil,
                          with objects: [ListedObject]) -> Bool {
        switch kind {
        case .pods:
            let before = pods[namespace] ?? [:]
            pods[namespace] = [:]
            var changed = before.values.contains { isSelectedBackend($0, in: namespace) }
            for object in objects where !object.name.isEmpty {
                // Once something changed, no pod needs looking for among the services (10,000 pods,
                // 1,000 services: that search was a fifth of the time taking in the lists).
                changed = setPod(ObjectKey(kind: .pods, namespace: namespace, name: object.name), json: object.json,
                                 reportingChange: !changed) || changed
            }
            return changed
        case .configmaps, .secrets:
            guard namespace == lbNamespace else { return false }
            var changed = false
            let names = name.map { [$0] } ?? ClusterState.lbObjectNames.filter { $0.kind == kind }.map(\.name)
            for objectName in names {
                let json = objects.last { $0.name == objectName }?.json
                changed = setLBObject(ObjectKey(kind: kind, namespace: lbNamespace, name: objectName), json: json) || changed
            }
            return changed
        }
    }

    /// Sets (`json`) or removes (nil) one object; true when the template's input changed. A pod
    /// of a namespace whose pods were not read is ignored.
    mutating func set(_ key: ObjectKey, json: String?) -> Bool {
        switch key.kind {
        case .pods:
            guard pods[key.namespace] != nil, !key.name.isEmpty else { return false }
            return setPod(key, json: json)
        case .configmaps, .secrets:
            guard key.namespace == lbNamespace else { return false }
            return setLBObject(key, json: json)
        }
    }

    /// Whether the namespace's pods were read.
    func hasPods(of namespace: String) -> Bool { pods[namespace] != nil }

    /// The problems found since the last call (for reporting them on the objects at fault).
    mutating func takeProblems() -> [ClusterProblem] {
        defer { newProblems = [] }
        return newProblems
    }

    /// Sets or removes a pod; true when a selected backend appeared, changed or went (always
    /// false when not `reportingChange`).
    private mutating func setPod(_ key: ObjectKey, json: String?, reportingChange: Bool = true) -> Bool {
        let before = pods[key.namespace]?[key.name]
        var after: Pod?
        if let json {
            do {
                after = try Pod(key: key, json: json)
            } catch {
                Log.error("skipping an object that is not valid", ["object": error.object, "error": error.message])
            }
        }
        pods[key.namespace, default: [:]][key.name] = after
        guard reportingChange else { return false }
        return (before.map { isSelectedBackend($0, in: key.namespace) } ?? false)
            || (after.map { isSelectedBackend($0, in: key.namespace) } ?? false)
    }

    private func isSelectedBackend(_ pod: Pod, in namespace: String) -> Bool {
        pod.isBackend && services.contains { $0.selects(pod, in: namespace) }
    }

    /// Sets or removes one of the lb namespace's ConfigMaps or Secrets; true when the template's
    /// input changed.
    private mutating func setLBObject(_ key: ObjectKey, json: String?) -> Bool {
        var data: [(String, String)] = []
        if let json {
            do {
                (data, uids[key]) = try objectData(key: key, json: json)
            } catch {
                Log.error("skipping an object that is not valid", ["object": error.object, "error": error.message])
                newProblems.append(ClusterProblem(object: key, reason: "InvalidObject",
                                                  message: "skipping an object that is not valid: \(error.message)"))
                return false
            }
        } else {
            uids[key] = nil
        }
        switch (key.kind, key.name) {
        case (.configmaps, "services"):
            servicesData = data
            rebuildServices()
            return true
        case (.configmaps, "certificates"):
            certificatePEMs = Dictionary(data, uniquingKeysWith: { _, last in last })
            return true
        case (.configmaps, "config"):
            let previous = template
            template = data.last(where: { $0.0 == "template" })?.1
            if json != nil && template == nil {
                Log.error("no template: nothing is sent until there is one", ["object": key.description, "key": "template"])
                newProblems.append(ClusterProblem(object: key, reason: "NoTemplate", message: "no template: nothing is sent until there is one (key template)"))
            }
            return previous != template
        case (.secrets, "keys"):
            var keys: [String: String] = [:]
            for (name, encoded) in data {
                guard let bytes = decodeBase64(encoded), let pem = String(validating: bytes, as: UTF8.self) else {
                    Log.error("skipping a key that is not base64 of PEM text", ["object": key.description, "key": name])
                    newProblems.append(ClusterProblem(object: key, reason: "InvalidKey",
                                                      message: "skipping a key that is not base64 of PEM text: key \(name)"))
                    continue
                }
                keys[name] = pem
            }
            keyPEMs = keys
            return true
        default:
            return false
        }
    }

    private mutating func rebuildServices() {
        var parsed: [Service] = []
        for (name, json) in servicesData {
            do {
                parsed.append(try Service(name: name, json: json))
            } catch {
                Log.error("skipping a service", ["object": error.object, "error": error.message])
                newProblems.append(ClusterProblem(object: ObjectKey(kind: .configmaps, namespace: lbNamespace, name: "services"),
                                                  reason: "InvalidService", message: "skipping a service: \(error)"))
            }
        }
        // Python's dict keeps the last of repeated keys; services come sorted by name.
        var byName: [String: Service] = [:]
        for service in parsed { byName[service.name] = service }
        services = byName.values.sorted { $0.name < $1.name }
        // Pods of namespaces no service names any more are forgotten.
        let needed = watchedNamespaces
        for namespace in pods.keys where !needed.contains(namespace) {
            pods[namespace] = nil
        }
    }

    /// Namespaces that services name but whose pods have not been read yet.
    var namespacesToRead: [String] {
        watchedNamespaces.filter { pods[$0] == nil }.sorted()
    }

    // MARK: The desired state

    /// Names with both a certificate and a key, sorted; a half pair is reported and skipped.
    var certificateNames: [String] {
        Set(certificatePEMs.keys).intersection(keyPEMs.keys).sorted()
    }

    var certificateProblems: [ClusterProblem] {
        let certificates = Set(certificatePEMs.keys)
        let keys = Set(keyPEMs.keys)
        let certificatesObject = ObjectKey(kind: .configmaps, namespace: lbNamespace, name: "certificates")
        let keysObject = ObjectKey(kind: .secrets, namespace: lbNamespace, name: "keys")
        return certificates.subtracting(keys).sorted().map {
            ClusterProblem(object: certificatesObject, reason: "CertificateWithoutKey",
                           message: "certificate \"\($0)\" has no key in Secret \(lbNamespace)/keys")
        } + keys.subtracting(certificates).sorted().map {
            ClusterProblem(object: keysObject, reason: "KeyWithoutCertificate",
                           message: "key \"\($0)\" has no certificate in ConfigMap \(lbNamespace)/certificates")
        }
    }

    /// The text of a service's entry in ConfigMap `services`, as it was read.
    func serviceEntry(_ name: String) -> String? {
        servicesData.last(where: { $0.0 == name })?.1
    }

    /// The names of the backends a service selects, sorted.
    func backendNames(of service: Service) -> [String] {
        (pods[service.namespace] ?? [:]).compactMap { $0.value.isBackend && service.selects($0.value, in: service.namespace) ? $0.key : nil }.sorted()
    }

    /// A certificate's PEM and its key's, as read (for telling whether it changed).
    func certificateSource(_ name: String) -> String {
        (keyPEMs[name] ?? "") + "\u{0}" + (certificatePEMs[name] ?? "")
    }

    /// name → the key followed by the certificate: what HAProxy's `crt` reads.
    var certificateFiles: [String: String] { certificateFiles(excluding: []) }

    func certificateFiles(excluding excluded: Set<String>) -> [String: String] {
        var files: [String: String] = [:]
        for name in certificateNames where !excluded.contains(name) {
            guard let key = keyPEMs[name], let certificate = certificatePEMs[name] else { continue }
            files[name] = (key.hasSuffix("\n") || key.isEmpty ? key : key + "\n") + certificate
        }
        return files
    }

    /// The template's variables, exactly the seed's: services, certificates, ssldir, stats, env;
    /// without the services and certificates `excluded` names (found to break the config).
    func context(ssldir: String, statsPassword: String, environment: [(String, String)],
                 excluding excluded: Exclusions = Exclusions()) -> [(String, Value)] {
        var serviceValues: [Value] = []
        serviceValues.reserveCapacity(services.count)
        let candidates = BackendsByLabel(pods: pods, services: services)
        for service in services where !excluded.services.contains(service.name) {
            let object = service.object.copy()
            object[string: "name"] = .string(service.name)
            let selected = candidates.backends(in: service.namespace, labelled: service.selector.first)
                .filter { service.selects($0.pod, in: service.namespace) }
                .sorted { $0.name < $1.name }
            object[string: "pods"] = .dict(DictRef(stringPairs: selected.compactMap { named in named.pod.object.map { (named.name, $0) } }))
            serviceValues.append(.dict(object))
        }
        return [
            ("services", .list(ListRef(serviceValues))),
            ("certificates", .list(ListRef(certificateNames.filter { !excluded.certificates.contains($0) }.map { .string($0) }))),
            ("ssldir", .string(ssldir)),
            ("stats", .dict(DictRef(stringPairs: [("username", .string("stats")), ("password", .string(statsPassword))]))),
            ("env", .dict(DictRef(stringPairs: environment.map { ($0.0, .string($0.1)) }))),
        ]
    }
}

/// The backend pods of the namespaces services name, found by the label each service's
/// selector names first: a service looks at the pods with that label, not at every pod of its
/// namespace (1,000 services over 10,000 pods: that scan was half of each render).
private struct BackendsByLabel {
    private struct Label: Hashable {
        let key: String
        let value: String
    }

    private var backends: [String: [(name: String, pod: Pod)]] = [:]
    /// Positions in `backends`, for the label keys selectors start with.
    private var labelled: [String: [Label: [Int]]] = [:]

    init(pods: [String: [String: Pod]], services: [Service]) {
        var keys: [String: [String]] = [:]
        for service in services {
            var named = keys[service.namespace] ?? []
            if let key = service.selector.first?.0, !named.contains(key) { named.append(key) }
            keys[service.namespace] = named
        }
        for (namespace, named) in keys {
            let inNamespace = (pods[namespace] ?? [:]).compactMap { $0.value.isBackend ? (name: $0.key, pod: $0.value) : nil }
            var byLabel: [Label: [Int]] = [:]
            for (position, (_, pod)) in inNamespace.enumerated() {
                for key in named {
                    pod.labels.forEachValue(of: key) { (value: String) in
                        // A label repeated in a pod's JSON lists the pod once.
                        let label = Label(key: key, value: value)
                        if byLabel[label]?.last != position { byLabel[label, default: []].append(position) }
                    }
                }
            }
            backends[namespace] = inNamespace
            labelled[namespace] = byLabel
        }
    }

    /// The backends of `namespace` with the label `label`, or all of them when there is none.
    func backends(in namespace: String, labelled label: (String, String)?) -> [(name: String, pod: Pod)] {
        let all = backends[namespace] ?? []
        guard let label else { return all }
        return (labelled[namespace]?[Label(key: label.0, value: label.1)] ?? []).map { all[$0] }
    }
}
