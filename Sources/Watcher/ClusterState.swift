// What the watcher knows of the cluster: the load balancer's ConfigMaps and Secret, and the pods
// of every namespace a service names. Built from a recursive read, then kept current by watch
// events; every problem is logged once, naming the object and key, and the rest keeps working.
import Jinja
import Shared

struct ClusterState {
    let prefix: String
    let lbNamespace: String

    private(set) var services: [Service] = []
    private(set) var template: String?
    private(set) var certificatePEMs: [String: String] = [:]
    private(set) var keyPEMs: [String: String] = [:]
    /// namespace → pod name → pod, for the namespaces services name.
    private(set) var pods: [String: [String: Pod]] = [:]
    /// Events at or below the index of the read that filled an object set are already in it.
    private var snapshotIndex: [String: Int] = [:]
    /// The raw ConfigMap `services`, so a problem in it is reported once per change.
    private var servicesData: [(String, String)] = []

    init(prefix: String, lbNamespace: String) {
        self.prefix = prefix
        self.lbNamespace = lbNamespace
    }

    /// The namespaces whose pods matter: those the services name.
    var watchedNamespaces: Set<String> { Set(services.map(\.namespace)) }

    func key(_ kind: ObjectKind, _ namespace: String) -> String { "\(prefix)/\(kind.rawValue)/\(namespace)" }

    // MARK: Reads

    /// Replaces an object set (the lb ConfigMaps, the lb Secrets, or one namespace's pods) with a
    /// recursive read's result.
    mutating func load(_ kind: ObjectKind, namespace: String, nodes: [EtcdNode], etcdIndex: Int) {
        snapshotIndex["\(kind.rawValue)/\(namespace)"] = etcdIndex
        switch kind {
        case .pods:
            pods[namespace] = [:]
            for node in nodes {
                guard let key = ObjectKey(etcdKey: node.key, prefix: prefix), key.kind == .pods, !key.name.isEmpty else { continue }
                _ = setPod(key, json: node.value, modifiedIndex: node.modifiedIndex)
            }
        case .configmaps, .secrets:
            for name in loadedNames(kind) { _ = setLBObject(ObjectKey(kind: kind, namespace: lbNamespace, name: name), json: nil) }
            for node in nodes {
                guard let key = ObjectKey(etcdKey: node.key, prefix: prefix), key.kind == kind, !key.name.isEmpty else { continue }
                _ = setLBObject(key, json: node.value)
            }
        }
    }

    private func loadedNames(_ kind: ObjectKind) -> [String] {
        kind == .configmaps ? ["services", "certificates", "config"] : ["keys"]
    }

    // MARK: Events

    /// Applies one watch event; true when the template's input changed (a render is due).
    mutating func apply(_ response: EtcdResponse) -> Bool {
        guard let node = response.node, let key = ObjectKey(etcdKey: node.key, prefix: prefix) else { return false }
        let snapshot = "\(key.kind.rawValue)/\(key.namespace)"
        if let index = snapshotIndex[snapshot], node.modifiedIndex <= index { return false }
        let removed = ["delete", "expire", "compareAndDelete"].contains(response.action)
        switch key.kind {
        case .pods:
            guard pods[key.namespace] != nil else { return false }
            if key.name.isEmpty {
                // A whole namespace directory: only its removal matters.
                guard removed, let gone = pods[key.namespace] else { return false }
                pods[key.namespace] = [:]
                return gone.values.contains { isSelectedBackend($0) }
            }
            return setPod(key, json: removed ? nil : node.value, modifiedIndex: node.modifiedIndex)
        case .configmaps, .secrets:
            guard key.namespace == lbNamespace else { return false }
            if key.name.isEmpty {
                guard removed else { return false }
                var changed = false
                for name in loadedNames(key.kind) {
                    changed = setLBObject(ObjectKey(kind: key.kind, namespace: lbNamespace, name: name), json: nil) || changed
                }
                return changed
            }
            return setLBObject(key, json: removed ? nil : node.value)
        }
    }

    /// Sets or removes a pod; true when a selected backend appeared, changed or went.
    private mutating func setPod(_ key: ObjectKey, json: String?, modifiedIndex: Int) -> Bool {
        let before = pods[key.namespace]?[key.name]
        var after: Pod?
        if let json {
            do {
                after = try Pod(key: key, json: json, modifiedIndex: modifiedIndex)
            } catch {
                Log.error("skipping an object that is not valid", ["object": error.object, "error": error.message])
            }
        }
        pods[key.namespace, default: [:]][key.name] = after
        return (before.map(isSelectedBackend) ?? false) || (after.map(isSelectedBackend) ?? false)
    }

    private func isSelectedBackend(_ pod: Pod) -> Bool {
        pod.isBackend && services.contains { $0.selects(pod) }
    }

    /// Sets or removes one of the lb namespace's ConfigMaps or Secrets; true when the template's
    /// input changed.
    private mutating func setLBObject(_ key: ObjectKey, json: String?) -> Bool {
        var data: [(String, String)] = []
        if let json {
            do {
                data = try objectData(key: key, json: json)
            } catch {
                Log.error("skipping an object that is not valid", ["object": error.object, "error": error.message])
                return false
            }
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
            }
            return previous != template
        case (.secrets, "keys"):
            var keys: [String: String] = [:]
            for (name, encoded) in data {
                guard let bytes = decodeBase64(encoded), let pem = String(validating: bytes, as: UTF8.self) else {
                    Log.error("skipping a key that is not base64 of PEM text", ["object": key.description, "key": name])
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
            snapshotIndex["pods/\(namespace)"] = nil
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

    var certificateProblems: [String] {
        let certificates = Set(certificatePEMs.keys)
        let keys = Set(keyPEMs.keys)
        return certificates.subtracting(keys).sorted().map { "certificate \"\($0)\" has no key in Secret \(lbNamespace)/keys" }
            + keys.subtracting(certificates).sorted().map { "key \"\($0)\" has no certificate in ConfigMap \(lbNamespace)/certificates" }
    }

    /// name → the key followed by the certificate: what HAProxy's `crt` reads.
    var certificateFiles: [String: String] {
        var files: [String: String] = [:]
        for name in certificateNames {
            guard let key = keyPEMs[name], let certificate = certificatePEMs[name] else { continue }
            files[name] = (key.hasSuffix("\n") || key.isEmpty ? key : key + "\n") + certificate
        }
        return files
    }

    /// The template's variables, exactly the seed's: services, certificates, ssldir, stats, env.
    func context(ssldir: String, statsPassword: String, environment: [(String, String)]) -> [(String, Value)] {
        var serviceValues: [Value] = []
        serviceValues.reserveCapacity(services.count)
        let candidates = BackendsByLabel(pods: pods, services: services)
        for service in services {
            let object = service.object.copy()
            object[string: "name"] = .string(service.name)
            let selected = candidates.backends(in: service.namespace, labelled: service.selector.first)
                .filter { service.selects($0) }
                .sorted { $0.name < $1.name }
            object[string: "pods"] = .dict(DictRef(stringPairs: selected.compactMap { pod in pod.object.map { (pod.name, $0) } }))
            serviceValues.append(.dict(object))
        }
        return [
            ("services", .list(ListRef(serviceValues))),
            ("certificates", .list(ListRef(certificateNames.map { .string($0) }))),
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

    private var backends: [String: [Pod]] = [:]
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
            let inNamespace = (pods[namespace] ?? [:]).values.filter(\.isBackend)
            var byLabel: [Label: [Int]] = [:]
            for (position, pod) in inNamespace.enumerated() {
                for (key, value) in pod.labels where named.contains(key) {
                    // A label repeated in a pod's JSON lists the pod once.
                    let label = Label(key: key, value: value)
                    if byLabel[label]?.last != position { byLabel[label, default: []].append(position) }
                }
            }
            backends[namespace] = inNamespace
            labelled[namespace] = byLabel
        }
    }

    /// The backends of `namespace` with the label `label`, or all of them when there is none.
    func backends(in namespace: String, labelled label: (String, String)?) -> [Pod] {
        let all = backends[namespace] ?? []
        guard let label else { return all }
        return (labelled[namespace]?[Label(key: label.0, value: label.1)] ?? []).map { all[$0] }
    }
}
