// The supervisor's replies on the control socket, one JSON line per request. The supervisor
// encodes them and the watcher and the CLI decode them with the same type, so neither side
// reads a reply by string keys:
//
//   {"ok":true,"changed":true,"reloaded":true,"runtime":false,"generation":3}   apply, reload
//   {"ok":true,"pid":1,"haproxy_pid":…,…}                                         status
//   {"ok":true}                                                                   report
//   {"ok":true,"history":[{"applied_at":…,"hash":…,"path":"reload",…},…]}        history
//   {"ok":false,"error":"…","reason":"rejected"}                                  any request that failed
import JSON

public enum ControlReply: Equatable, Sendable {
    case applied(AppliedState)
    case status(SupervisorStatus)
    /// The configs applied last, newest (the live one) first.
    case history([HistoryEntry])
    /// A report was counted.
    case acknowledged
    case failed(ControlFailure)

    public var isSuccess: Bool {
        if case .failed = self { return false }
        return true
    }

    public var json: JSONValue {
        switch self {
        case .applied(let applied): return applied.json
        case .status(let status): return status.json
        case .history(let entries): return .object([("ok", .bool(true)), ("history", .array(entries.map(\.json)))])
        case .acknowledged: return .object([("ok", .bool(true))])
        case .failed(let failure): return failure.json
        }
    }

    /// Decodes a reply line. A reply is told apart by its shape: `ok` false is a failure, a
    /// `pid` is a status, `changed` an apply or reload, `history` a history, and `ok` alone an
    /// acknowledgement.
    public static func parse(_ line: [UInt8]) throws(ControlRequest.ParseError) -> ControlReply {
        let value: JSONValue
        do {
            value = try JSONReader.parse(line, as: JSONValueBuilder.self)
        } catch {
            throw ControlRequest.ParseError(description: "reply is not valid JSON: \(error)")
        }
        guard let ok = value["ok"]?.boolValue else {
            throw ControlRequest.ParseError(description: "reply has no boolean \"ok\"")
        }
        if !ok { return .failed(try ControlFailure(json: value)) }
        if value["pid"] != nil { return .status(try SupervisorStatus(json: value)) }
        if value["changed"] != nil { return .applied(try AppliedState(json: value)) }
        if case .array(let items)? = value["history"] {
            return .history(try items.map { (item: JSONValue) throws(ControlRequest.ParseError) -> HistoryEntry in try HistoryEntry(json: item) })
        }
        return .acknowledged
    }
}

/// What an apply or a reload did.
public struct AppliedState: Equatable, Sendable {
    /// The desired state differed from the live one.
    public var changed: Bool
    /// A new HAProxy generation was started.
    public var reloaded: Bool
    /// The change went live through HAProxy's runtime API, without a new generation.
    public var runtime: Bool
    /// The serving generation.
    public var generation: Int

    public init(changed: Bool, reloaded: Bool, runtime: Bool = false, generation: Int) {
        self.changed = changed
        self.reloaded = reloaded
        self.runtime = runtime
        self.generation = generation
    }

    init(json: JSONValue) throws(ControlRequest.ParseError) {
        let fields = MessageFields(json, "reply")
        changed = try fields.bool("changed")
        reloaded = try fields.bool("reloaded")
        runtime = try fields.optionalBool("runtime") ?? false
        generation = try fields.integer("generation")
    }

    public var json: JSONValue {
        .object([("ok", .bool(true)), ("changed", .bool(changed)), ("reloaded", .bool(reloaded)),
                 ("runtime", .bool(runtime)), ("generation", .integer(generation))])
    }
}

/// One applied config, as the supervisor keeps it: the text itself is in `file`.
public struct HistoryEntry: Equatable, Sendable {
    /// How a config went live.
    public enum Path: String, Sendable {
        /// A new HAProxy generation.
        case reload
        /// HAProxy's runtime API, without a new generation.
        case runtime
        /// The last-good bundle, served at start before the watcher spoke.
        case bundle
    }

    /// RFC 3339 time it went live.
    public var appliedAt: String
    /// The desired state's hash, as `status` shows it.
    public var hash: String
    public var path: Path
    public var generation: Int
    /// Where the config's text is kept (mode 0600).
    public var file: String

    public init(appliedAt: String, hash: String, path: Path, generation: Int, file: String) {
        self.appliedAt = appliedAt
        self.hash = hash
        self.path = path
        self.generation = generation
        self.file = file
    }

    public init(json: JSONValue) throws(ControlRequest.ParseError) {
        let fields = MessageFields(json, "reply")
        appliedAt = try fields.string("applied_at")
        hash = try fields.string("hash")
        guard let path = Path(rawValue: try fields.string("path")) else {
            throw ControlRequest.ParseError(description: "reply: \"path\" must be reload, runtime or bundle")
        }
        self.path = path
        generation = try fields.integer("generation")
        file = try fields.string("file")
    }

    public var json: JSONValue {
        .object([("applied_at", .string(appliedAt)), ("hash", .string(hash)), ("path", .string(path.rawValue)),
                 ("generation", .integer(generation)), ("file", .string(file))])
    }
}

/// Why a request failed, with the kind of failure so that callers and metrics need not read
/// the message.
public struct ControlFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        /// HAProxy refused the configuration; the last good one stays live.
        case rejected
        /// The request itself was malformed, too large or not allowed.
        case invalidRequest = "invalid_request"
        /// The supervisor cannot do it now (shutting down, nothing applied yet, too many clients).
        case unavailable
        /// A system call or a child process failed.
        case `internal`
    }

    public var reason: Reason
    public var message: String
    public var description: String { message }

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    init(json: JSONValue) throws(ControlRequest.ParseError) {
        let fields = MessageFields(json, "reply")
        message = try fields.string("error")
        // A reason this side does not know yet still reads as a failure.
        reason = Reason(rawValue: json["reason"]?.stringValue ?? "") ?? .internal
    }

    public var json: JSONValue {
        .object([("ok", .bool(false)), ("error", .string(message)), ("reason", .string(reason.rawValue))])
    }
}

/// The supervisor's state, as `kube-haproxy status` prints it.
public struct SupervisorStatus: Equatable, Sendable {
    public var pid: Int
    public var haproxyPid: Int?
    public var generation: Int
    public var drainingPids: [Int]
    public var reloads: Int
    /// Applies that went live through HAProxy's runtime API, without a new generation.
    public var runtimeUpdates: Int
    /// Runtime updates that failed (a command error or a mismatch in `show servers state`) and
    /// were replaced by a reload.
    public var runtimeFallbacks: Int
    /// RFC 3339 time of the last reload.
    public var lastReload: String?
    public var lastReloadSeconds: Double?
    public var lastError: String?
    public var configHash: String?
    public var watcherPid: Int?
    public var watcherRestarts: Int
    /// While the live config is the last-good bundle served at start: when it was saved.
    public var servingBundleSince: String?
    /// What the watcher leaves out of the config because it breaks it.
    public var skippedServices: [String] = []
    public var skippedCertificates: [String] = []

    public init(pid: Int, haproxyPid: Int?, generation: Int, drainingPids: [Int], reloads: Int, lastReload: String?,
                lastReloadSeconds: Double?, lastError: String?, configHash: String?, watcherPid: Int?, watcherRestarts: Int,
                servingBundleSince: String? = nil, runtimeUpdates: Int = 0, runtimeFallbacks: Int = 0) {
        self.pid = pid
        self.haproxyPid = haproxyPid
        self.generation = generation
        self.drainingPids = drainingPids
        self.reloads = reloads
        self.runtimeUpdates = runtimeUpdates
        self.runtimeFallbacks = runtimeFallbacks
        self.lastReload = lastReload
        self.lastReloadSeconds = lastReloadSeconds
        self.lastError = lastError
        self.configHash = configHash
        self.watcherPid = watcherPid
        self.watcherRestarts = watcherRestarts
        self.servingBundleSince = servingBundleSince
    }

    init(json: JSONValue) throws(ControlRequest.ParseError) {
        let fields = MessageFields(json, "reply")
        pid = try fields.integer("pid")
        haproxyPid = try fields.optionalInteger("haproxy_pid")
        generation = try fields.integer("generation")
        drainingPids = try fields.required("draining_pids", "an array of integers") { MessageFields.all($0, \.intValue) }
        reloads = try fields.integer("reloads")
        runtimeUpdates = try fields.optionalInteger("runtime_updates") ?? 0
        runtimeFallbacks = try fields.optionalInteger("runtime_fallbacks") ?? 0
        lastReload = try fields.optionalString("last_reload")
        lastReloadSeconds = try fields.optionalNumber("last_reload_seconds")
        lastError = try fields.optionalString("last_error")
        configHash = try fields.optionalString("config_hash")
        watcherPid = try fields.optionalInteger("watcher_pid")
        watcherRestarts = try fields.optionalInteger("watcher_restarts") ?? 0
        servingBundleSince = try fields.optionalString("serving_bundle_since")
        skippedServices = try fields.optionalStrings("skipped_services") ?? []
        skippedCertificates = try fields.optionalStrings("skipped_certificates") ?? []
    }

    public var json: JSONValue {
        func optional<T>(_ value: T?, _ make: (T) -> JSONValue) -> JSONValue { value.map(make) ?? .null }
        return .object([
            ("ok", .bool(true)),
            ("pid", .integer(pid)),
            ("haproxy_pid", optional(haproxyPid, JSONValue.integer)),
            ("generation", .integer(generation)),
            ("draining_pids", .array(drainingPids.map { .integer($0) })),
            ("reloads", .integer(reloads)),
            ("runtime_updates", .integer(runtimeUpdates)),
            ("runtime_fallbacks", .integer(runtimeFallbacks)),
            ("last_reload", optional(lastReload, JSONValue.string)),
            ("last_reload_seconds", optional(lastReloadSeconds) { .double(($0 * 1e6).rounded() / 1e6) }),
            ("last_error", optional(lastError, JSONValue.string)),
            ("config_hash", optional(configHash, JSONValue.string)),
            ("watcher_pid", optional(watcherPid, JSONValue.integer)),
            ("watcher_restarts", .integer(watcherRestarts)),
            ("serving_bundle_since", optional(servingBundleSince, JSONValue.string)),
            ("skipped_services", .array(skippedServices.map { .string($0) })),
            ("skipped_certificates", .array(skippedCertificates.map { .string($0) })),
        ])
    }
}
