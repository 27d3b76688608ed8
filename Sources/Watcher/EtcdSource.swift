// etcd2 as a source of the cluster model: keys under the prefix, recursive reads, and the etcd
// index of the read that filled each object set.
import Shared

/// The cluster model as etcd2 fills it. Events at or below the index of the read that filled an
/// object set are already in that set, and are skipped.
struct EtcdClusterState {
    let prefix: String
    var cluster: ClusterState
    private var snapshotIndex: [String: Int] = [:]

    init(prefix: String, lbNamespace: String) {
        self.prefix = prefix
        cluster = ClusterState(lbNamespace: lbNamespace)
    }

    func key(_ kind: ObjectKind, _ namespace: String) -> String { "\(prefix)/\(kind.rawValue)/\(namespace)" }

    /// Replaces an object set (the lb ConfigMaps, the lb Secrets, or one namespace's pods) with a
    /// recursive read's result.
    mutating func load(_ kind: ObjectKind, namespace: String, nodes: [EtcdNode], etcdIndex: Int) {
        snapshotIndex["\(kind.rawValue)/\(namespace)"] = etcdIndex
        let objects = nodes.compactMap { node -> ListedObject? in
            guard let key = ObjectKey(etcdKey: node.key, prefix: prefix), key.kind == kind, key.namespace == namespace,
                  !key.name.isEmpty, let value = node.value else { return nil }
            return ListedObject(name: key.name, json: value)
        }
        _ = cluster.replace(kind, namespace: namespace, with: objects)
    }

    /// Applies one watch event; true when the template's input changed (a render is due).
    mutating func apply(_ response: EtcdResponse) -> Bool {
        guard let node = response.node, let key = ObjectKey(etcdKey: node.key, prefix: prefix) else { return false }
        if let index = snapshotIndex["\(key.kind.rawValue)/\(key.namespace)"], node.modifiedIndex <= index { return false }
        let removed = ["delete", "expire", "compareAndDelete"].contains(response.action)
        if key.name.isEmpty {
            // A whole namespace's directory: only its removal matters.
            guard removed, key.kind != .pods || cluster.hasPods(of: key.namespace) else { return false }
            return cluster.replace(key.kind, namespace: key.namespace, with: [])
        }
        return cluster.set(key, json: removed ? nil : node.value)
    }
}

/// Reads the whole state the template depends on with recursive GETs.
struct ClusterReader {
    let settings: WatcherSettings
    let client: EtcdClient

    /// The state and the etcd index of the first read: watching from the next index misses nothing.
    func read() throws(EtcdError) -> (state: EtcdClusterState, index: Int) {
        var state = EtcdClusterState(prefix: settings.prefix, lbNamespace: settings.lbNamespace)
        let index = try load(.configmaps, settings.lbNamespace, into: &state)
        _ = try load(.secrets, settings.lbNamespace, into: &state)
        try readNewNamespaces(into: &state)
        return (state, index)
    }

    /// Reads the pods of namespaces that services name and that were not read yet.
    func readNewNamespaces(into state: inout EtcdClusterState) throws(EtcdError) {
        for namespace in state.cluster.namespacesToRead {
            _ = try load(.pods, namespace, into: &state)
        }
    }

    private func load(_ kind: ObjectKind, _ namespace: String, into state: inout EtcdClusterState) throws(EtcdError) -> Int {
        do {
            let response = try client.get(state.key(kind, namespace), recursive: true)
            state.load(kind, namespace: namespace, nodes: response.node?.leaves ?? [], etcdIndex: response.etcdIndex)
            return response.etcdIndex
        } catch {
            guard case .notFound(let index) = error else { throw error }
            state.load(kind, namespace: namespace, nodes: [], etcdIndex: index)
            return index
        }
    }
}
