// Kubernetes objects exactly as Kubernetes' etcd2 storage writes them (v1 JSON, no
// resourceVersion, which etcd's index stands for), and a store that puts them at
// <prefix>/pods/<namespace>/<name>, <prefix>/configmaps/<namespace>/<name> and
// <prefix>/secrets/<namespace>/<name>.
import Foundation
import JSON
import Shared

public enum KubernetesObjects {
    static let created = "2026-11-26T20:00:00Z"
    static let started = "2026-11-26T20:00:05Z"

    /// A pod in one of the states the watcher tells apart. `containersReady` has one entry per
    /// container; an empty list means no container status has been reported yet.
    public static func pod(name: String, namespace: String, labels: [(String, String)], podIP: String?,
                           containersReady: [Bool] = [true], terminating: Bool = false) -> JSONValue {
        let uid = uuid(for: "pod/\(namespace)/\(name)")
        var metadata: [(String, JSONValue)] = [
            ("name", .string(name)),
            ("generateName", .string(name.split(separator: "-").dropLast().joined(separator: "-") + "-")),
            ("namespace", .string(namespace)),
            ("selfLink", .string("/api/v1/namespaces/\(namespace)/pods/\(name)")),
            ("uid", .string(uid)),
            ("creationTimestamp", .string(created)),
        ]
        if terminating {
            metadata += [("deletionTimestamp", .string("2026-11-26T21:00:00Z")), ("deletionGracePeriodSeconds", .integer(30))]
        }
        metadata += [
            ("labels", .object(labels.map { ($0.0, .string($0.1)) })),
            ("annotations", .object([("kubernetes.io/created-by", .string("{\"kind\":\"SerializedReference\"}"))])),
        ]
        let containers: [JSONValue] = containersReady.indices.map { index in
            .object([
                ("name", .string("app-\(index)")),
                ("image", .string("registry.example/app:1.\(index)")),
                ("ports", .array([.object([("containerPort", .integer(8080)), ("protocol", .string("TCP"))])])),
                ("resources", .object([])),
                ("terminationMessagePath", .string("/dev/termination-log")),
                ("imagePullPolicy", .string("IfNotPresent")),
            ])
        }
        let spec: JSONValue = .object([
            ("volumes", .array([.object([("name", .string("default-token-abcde")),
                                         ("secret", .object([("secretName", .string("default-token-abcde"))]))])])),
            ("containers", .array(containers.isEmpty ? [.object([("name", .string("app-0")), ("image", .string("registry.example/app:1.0"))])] : containers)),
            ("restartPolicy", .string("Always")),
            ("terminationGracePeriodSeconds", .integer(30)),
            ("dnsPolicy", .string("ClusterFirst")),
            ("serviceAccountName", .string("default")),
            ("nodeName", .string("node-1")),
            ("securityContext", .object([])),
        ])
        let allReady = !containersReady.isEmpty && containersReady.allSatisfy { $0 }
        func condition(_ type: String, _ holds: Bool) -> JSONValue {
            .object([("type", .string(type)), ("status", .string(holds ? "True" : "False")), ("lastProbeTime", .null),
                     ("lastTransitionTime", .string(started))])
        }
        var status: [(String, JSONValue)] = [
            ("phase", .string(podIP == nil ? "Pending" : "Running")),
            ("conditions", .array([condition("Initialized", true), condition("Ready", allReady), condition("PodScheduled", true)])),
            ("hostIP", .string("10.0.0.1")),
        ]
        if let podIP { status.append(("podIP", .string(podIP))) }
        status.append(("startTime", .string(started)))
        if !containersReady.isEmpty {
            status.append(("containerStatuses", .array(containersReady.enumerated().map { index, ready in
                .object([
                    ("name", .string("app-\(index)")),
                    ("state", podIP == nil ? .object([("waiting", .object([("reason", .string("ContainerCreating"))]))])
                                           : .object([("running", .object([("startedAt", .string(started))]))])),
                    ("lastState", .object([])),
                    ("ready", .bool(ready)),
                    ("restartCount", .integer(0)),
                    ("image", .string("registry.example/app:1.\(index)")),
                    ("imageID", .string("docker://sha256:\(String(repeating: "ab", count: 32))")),
                    ("containerID", .string("docker://\(uuid(for: "container/\(uid)/\(index)").replacingOccurrences(of: "-", with: ""))")),
                ])
            })))
        }
        return .object([("kind", .string("Pod")), ("apiVersion", .string("v1")), ("metadata", .object(metadata)),
                        ("spec", spec), ("status", .object(status))])
    }

    public static func configMap(name: String, namespace: String, data: [(String, String)]) -> JSONValue {
        .object([("kind", .string("ConfigMap")), ("apiVersion", .string("v1")),
                 ("metadata", objectMetadata(kind: "configmaps", name: name, namespace: namespace)),
                 ("data", .object(data.map { ($0.0, .string($0.1)) }))])
    }

    /// A Secret; `data` values are encoded in base64 as Kubernetes stores them.
    public static func secret(name: String, namespace: String, data: [(String, String)]) -> JSONValue {
        .object([("kind", .string("Secret")), ("apiVersion", .string("v1")),
                 ("metadata", objectMetadata(kind: "secrets", name: name, namespace: namespace)),
                 ("data", .object(data.map { ($0.0, .string(Data($0.1.utf8).base64EncodedString())) })),
                 ("type", .string("Opaque"))])
    }

    /// A Secret whose `data` values are written as given (for values that are not base64).
    public static func secret(name: String, namespace: String, encodedData: [(String, String)]) -> JSONValue {
        .object([("kind", .string("Secret")), ("apiVersion", .string("v1")),
                 ("metadata", objectMetadata(kind: "secrets", name: name, namespace: namespace)),
                 ("data", .object(encodedData.map { ($0.0, .string($0.1)) })), ("type", .string("Opaque"))])
    }

    static func objectMetadata(kind: String, name: String, namespace: String) -> JSONValue {
        .object([("name", .string(name)), ("namespace", .string(namespace)),
                 ("selfLink", .string("/api/v1/namespaces/\(namespace)/\(kind)/\(name)")),
                 ("uid", .string(uuid(for: "\(kind)/\(namespace)/\(name)"))), ("creationTimestamp", .string(created))])
    }

    /// A stable UUID-shaped id for a name, as Kubernetes gives every object one.
    static func uuid(for text: String) -> String {
        var value: UInt64 = 0xcbf29ce484222325
        for byte in text.utf8 { value = (value ^ UInt64(byte)) &* 0x100000001b3 }
        let hex = String(value, radix: 16)
        let digits = Array(String(repeating: "0", count: 16 - hex.count) + hex + String(hex.reversed()) + "0000000000000000")
        return "\(String(digits[0..<8]))-\(String(digits[8..<12]))-4\(String(digits[13..<16]))-8\(String(digits[17..<20]))-\(String(digits[20..<32]))"
    }
}

/// Where a test puts the cluster's objects: etcd as Kubernetes' storage keeps them
/// (`KubernetesStore`) or the API server's REST API (`KubeAPIStore`). Both write the objects
/// `KubernetesObjects` builds, so the same objects reach the watcher through either source.
public protocol ClusterObjectStore: AnyObject {
    /// The namespace of the load balancer's ConfigMaps and Secret.
    var lbNamespace: String { get }

    /// Creates or replaces the object (`resource`: pods, configmaps, secrets); returns the
    /// store's version after the write (etcd's index, or the object's resourceVersion).
    @discardableResult
    func write(_ object: JSONValue, resource: String, namespace: String, name: String) throws -> Int

    /// Deletes the object; one that does not exist is not an error.
    func remove(resource: String, namespace: String, name: String) throws
}

extension ClusterObjectStore {
    /// Puts a pod; returns the store's version after the write.
    @discardableResult
    public func putPod(_ name: String, namespace: String, labels: [(String, String)], podIP: String?,
                       containersReady: [Bool] = [true], terminating: Bool = false) throws -> Int {
        let pod = KubernetesObjects.pod(name: name, namespace: namespace, labels: labels, podIP: podIP,
                                        containersReady: containersReady, terminating: terminating)
        return try write(pod, resource: "pods", namespace: namespace, name: name)
    }

    public func deletePod(_ name: String, namespace: String) throws {
        try remove(resource: "pods", namespace: namespace, name: name)
    }

    public func putConfigMap(_ name: String, data: [(String, String)], namespace: String? = nil) throws {
        let namespace = namespace ?? lbNamespace
        try write(KubernetesObjects.configMap(name: name, namespace: namespace, data: data),
                  resource: "configmaps", namespace: namespace, name: name)
    }

    public func deleteConfigMap(_ name: String, namespace: String? = nil) throws {
        try remove(resource: "configmaps", namespace: namespace ?? lbNamespace, name: name)
    }

    public func putSecret(_ name: String, data: [(String, String)], namespace: String? = nil) throws {
        let namespace = namespace ?? lbNamespace
        try write(KubernetesObjects.secret(name: name, namespace: namespace, data: data),
                  resource: "secrets", namespace: namespace, name: name)
    }

    /// ConfigMap `services`: name → the service's JSON object.
    public func putServices(_ services: [(String, JSONValue)]) throws {
        try putConfigMap("services", data: services.map { ($0.0, $0.1.serialized) })
    }

    /// ConfigMap `config` with the template.
    public func putTemplate(_ template: String) throws {
        try putConfigMap("config", data: [("template", template)])
    }
}

/// Writes the load balancer's objects and pods into etcd where Kubernetes keeps them.
public final class KubernetesStore: ClusterObjectStore {
    public let keys: EtcdKeys
    public let prefix: String
    public let lbNamespace: String

    public init(etcd: EtcdServer, prefix: String = "/registry", lbNamespace: String = "lb") throws {
        keys = try EtcdKeys(url: etcd.plainURL)
        self.prefix = prefix
        self.lbNamespace = lbNamespace
    }

    public func podKey(_ namespace: String, _ name: String) -> String { key("pods", namespace, name) }
    public func configMapKey(_ name: String, namespace: String? = nil) -> String { key("configmaps", namespace ?? lbNamespace, name) }
    public func secretKey(_ name: String, namespace: String? = nil) -> String { key("secrets", namespace ?? lbNamespace, name) }

    func key(_ resource: String, _ namespace: String, _ name: String) -> String { "\(prefix)/\(resource)/\(namespace)/\(name)" }

    @discardableResult
    public func write(_ object: JSONValue, resource: String, namespace: String, name: String) throws -> Int {
        try keys.put(key(resource, namespace, name), object.serialized).etcdIndex ?? 0
    }

    public func remove(resource: String, namespace: String, name: String) throws {
        try keys.delete(key(resource, namespace, name))
    }

    /// A value written as is: for objects that are not valid JSON.
    public func putRaw(_ key: String, _ value: String) throws {
        try keys.put(key, value)
    }
}

/// A service's JSON object as the `services` ConfigMap holds it.
public func serviceObject(namespace: String, selector: [(String, String)], hostnames: [String], ports: [Int],
                          extra: [(String, JSONValue)] = []) -> JSONValue {
    .object([("namespace", .string(namespace)), ("selector", .object(selector.map { ($0.0, .string($0.1)) })),
             ("hostnames", .array(hostnames.map { .string($0) })), ("ports", .array(ports.map { .integer($0) }))] + extra)
}
