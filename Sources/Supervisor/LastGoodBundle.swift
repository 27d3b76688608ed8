// The last-good bundle: the config and certificates last applied successfully, kept in
// KUBE_HAPROXY_STATE_DIR so that a restarted supervisor serves them at once, before the watcher
// has read anything (and even when the cluster's state is broken or unreachable).
import JSON
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

struct LastGoodBundle: Sendable {
    let directory: String
    var file: String { directory + "/last-good.json" }

    static let format = 1

    struct Saved: Equatable, Sendable {
        var desired: DesiredState
        /// RFC 3339 time it was applied.
        var savedAt: String
    }

    /// Writes the bundle: mode 0600 (it holds private keys), atomic and fsynced.
    func save(_ desired: DesiredState, appliedAt: String) throws(SystemError) {
        try FileIO.makeDirectory(directory, mode: 0o700)
        let certificates = desired.certificates.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }
        let document = JSONValue.object([
            ("format", .integer(LastGoodBundle.format)), ("saved_at", .string(appliedAt)), ("hash", .string(desired.hash)),
            ("config", .string(desired.config)), ("certificates", .object(certificates)),
        ])
        try FileIO.writeAtomically(file, document.serialized + "\n", mode: 0o600, durable: true)
    }

    enum LoadError: Error, CustomStringConvertible {
        case unreadable(SystemError)
        case corrupt(String)
        var description: String {
            switch self {
            case .unreadable(let error): return error.description
            case .corrupt(let reason): return reason
            }
        }
    }

    /// The saved bundle, nil when there is none; a bundle that is not exactly what `save` wrote
    /// (not JSON, a field missing, a hash that does not match its content) is an error.
    func load() throws(LoadError) -> Saved? {
        let bytes: [UInt8]
        do {
            guard let read = try FileIO.readFile(file) else { return nil }
            bytes = read
        } catch {
            throw .unreadable(error)
        }
        let value: JSONValue
        do {
            value = try JSONReader.parse(bytes, as: JSONValueBuilder.self)
        } catch {
            throw .corrupt("not valid JSON: \(error)")
        }
        guard value["format"]?.intValue == LastGoodBundle.format else { throw .corrupt("unknown format (expected \(LastGoodBundle.format))") }
        guard let config = value["config"]?.stringValue, let savedAt = value["saved_at"]?.stringValue,
              let hash = value["hash"]?.stringValue, case .object(let members)? = value["certificates"] else {
            throw .corrupt("a field is missing (format, saved_at, hash, config, certificates)")
        }
        var certificates: [String: String] = [:]
        for (name, pem) in members {
            guard let text = pem.stringValue, ControlRequest.isValidCertificateName(name) else {
                throw .corrupt("certificate \"\(name)\" is not a named PEM text")
            }
            certificates[name] = text
        }
        let desired = DesiredState(config: config, certificates: certificates)
        guard desired.hash == hash else { throw .corrupt("its content does not match its hash \(hash)") }
        return Saved(desired: desired, savedAt: savedAt)
    }
}
