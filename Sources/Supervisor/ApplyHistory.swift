// What went live, kept on disk: the last 20 applied configs (for `kube-haproxy history` and
// `kube-haproxy diff`) and, with a state directory, the last-good bundle. Written off the apply
// path, in order, on a queue of its own: an apply never waits for a disk, and PID 1 keeps only
// the entries' few fields in memory, never the configs.
import CSystem
import Dispatch
import JSON
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

final class ApplyHistory: Sendable {
    static let kept = 20

    let directory: String
    let bundle: LastGoodBundle?
    private let entries = Mutex<[HistoryEntry]>([])
    private let sequence = Mutex(0)
    private let queue = DispatchQueue(label: "kube-haproxy.history")

    var indexFile: String { directory + "/index.json" }

    /// `stateDirectory` (KUBE_HAPROXY_STATE_DIR) keeps the history and the bundle across restarts;
    /// without one the history lives in the run directory and there is no bundle.
    init(runDirectory: String, stateDirectory: String?) {
        directory = (stateDirectory ?? runDirectory) + "/history"
        bundle = stateDirectory.map { LastGoodBundle(directory: $0) }
        let loaded = ApplyHistory.readIndex(indexFile)
        entries.withLock { $0 = loaded }
        sequence.withLock { $0 = loaded.compactMap { ApplyHistory.sequenceNumber(of: $0.file) }.max() ?? 0 }
    }

    /// Newest first; the first is the live config.
    func list() -> [HistoryEntry] { entries.withLock { $0 } }

    /// Records a config that went live, and saves the bundle when the path was not the bundle itself.
    func record(_ desired: DesiredState, path: HistoryEntry.Path, generation: Int) {
        let appliedAt = timestampUTC()
        let number = sequence.withLock { value -> Int in
            value += 1
            return value
        }
        let entry = HistoryEntry(appliedAt: appliedAt, hash: desired.hash, path: path, generation: generation,
                                 file: "\(directory)/config-\(number).cfg")
        queue.async { [self] in
            do throws(SystemError) {
                try FileIO.makeDirectory(directory, mode: 0o700)
                // Configs hold passwords (stats auth, userlists): private like the certificates.
                try FileIO.writeAtomically(entry.file, desired.config, mode: 0o600, durable: bundle != nil)
                let (kept, dropped) = entries.withLock { list -> ([HistoryEntry], [HistoryEntry]) in
                    list.insert(entry, at: 0)
                    let dropped = Array(list.dropFirst(ApplyHistory.kept))
                    list = Array(list.prefix(ApplyHistory.kept))
                    return (list, dropped)
                }
                try FileIO.writeAtomically(indexFile, JSONValue.array(kept.map(\.json)).serialized + "\n", mode: 0o600,
                                           durable: bundle != nil)
                for old in dropped { unlink(old.file) }
            } catch {
                Log.warning("could not record the applied config in the history", ["directory": directory, "error": error.description])
            }
            // The config's copies made for the disk go back to the system: PID 1 stays small.
            defer { _ = csystem_malloc_trim() }
            guard let bundle, path != .bundle else { return }
            do throws(SystemError) {
                try bundle.save(desired, appliedAt: appliedAt)
            } catch {
                Log.error("could not save the last-good bundle", ["file": bundle.file, "error": error.description])
            }
        }
    }

    /// Waits until every record so far is on disk.
    func flush() { queue.sync {} }

    private static func readIndex(_ path: String) -> [HistoryEntry] {
        do {
            guard let bytes = try FileIO.readFile(path) else { return [] }
            if case .array(let items) = try JSONReader.parse(bytes, as: JSONValueBuilder.self) {
                return try items.map { (item: JSONValue) throws(ControlRequest.ParseError) -> HistoryEntry in try HistoryEntry(json: item) }
            }
            Log.warning("ignoring a history index that is not a JSON array", ["file": path])
        } catch {
            Log.warning("ignoring an unreadable history index", ["file": path, "error": "\(error)"])
        }
        return []
    }

    private static func sequenceNumber(of file: String) -> Int? {
        guard let name = file.split(separator: "/").last, name.hasPrefix("config-"), name.hasSuffix(".cfg") else { return nil }
        return Int(name.dropFirst("config-".count).dropLast(".cfg".count))
    }
}
