// Skip only what is broken: when the template fails or HAProxy refuses the config, find the
// services and certificates at fault and send everything else. A certificate is named by
// HAProxy's own [ALERT]; a service is found by rendering without it, by binary search over the
// services, within a bounded number of renders. What was skipped stays skipped, without a new
// search, until its own input changes.
import Shared

/// What a render leaves out.
struct Exclusions: Equatable, Sendable {
    var services: Set<String> = []
    var certificates: Set<String> = []
}

enum FaultIsolation {
    /// Renders one change may spend on finding services at fault; past it, the last good
    /// config stays live as when nothing could be isolated.
    static let renderBudget = 32
    /// Sends of a config without what was found, per change.
    static let maximumRejections = 3

    /// The certificates an HAProxy refusal names: `'<ssldir>/<name>.pem'` in its [ALERT] lines.
    static func certificates(namedIn message: String, ssldir: String) -> Set<String> {
        var names: Set<String> = []
        for line in message.split(separator: "\n") where line.contains("[ALERT]") {
            var rest = line[...]
            let prefix = "'" + ssldir + "/"
            while let start = rest.firstRange(of: prefix) {
                rest = rest[start.upperBound...]
                guard let end = rest.firstIndex(of: "'") else { break }
                let file = rest[..<end]
                if !file.contains("/"), let name = certificateName(ofFile: file) { names.insert(name) }
                rest = rest[end...]
            }
        }
        return names
    }

    /// `<name>.pem`, or a file HAProxy looks for beside it (`<name>.pem.key`, `.ocsp`, `.issuer`, `.sctl`).
    static func certificateName(ofFile file: Substring) -> String? {
        if file.hasSuffix(".pem") { return String(file.dropLast(4)) }
        for extra in [".pem.key", ".pem.ocsp", ".pem.issuer", ".pem.sctl"] where file.hasSuffix(extra) {
            return String(file.dropLast(extra.count))
        }
        return nil
    }

    /// The lines of `config` an HAProxy refusal points at: `[<file>:<line>]` in its [ALERT]
    /// lines, for the file the config was written to (`haproxy.cfg…`), as text.
    static func refusedLines(in message: String, config: String) -> [String] {
        let lines = config.split(separator: "\n", omittingEmptySubsequences: false)
        var refused: [String] = []
        for alert in message.split(separator: "\n") where alert.contains("[ALERT]") {
            var rest = alert[...]
            while let open = rest.firstIndex(of: "[") {
                rest = rest[rest.index(after: open)...]
                guard let close = rest.firstIndex(of: "]") else { break }
                let reference = rest[..<close]
                rest = rest[close...]
                guard let colon = reference.lastIndex(of: ":"),
                      let number = Int(reference[reference.index(after: colon)...]), number >= 1, number <= lines.count,
                      reference[..<colon].split(separator: "/").last?.hasPrefix("haproxy.cfg") == true else { continue }
                let text = String(lines[number - 1])
                if !text.allSatisfy({ $0 == " " || $0 == "\t" }) && !refused.contains(text) { refused.append(text) }
            }
        }
        return refused
    }

    /// The services whose presence makes `fails` true. `fails(excluded)` renders without the
    /// excluded services and says whether the problem is still there (nil: the render budget is
    /// spent). The problem must be there with every candidate and gone without any. One binary
    /// search per culprit: the smallest prefix of the candidates whose presence fails ends
    /// with a culprit.
    static func faultyServices(_ candidates: [String], fails: (Set<String>) -> Bool?) -> Set<String>? {
        var faulty: Set<String> = []
        var remaining = candidates
        while true {
            guard let stillFails = fails(faulty) else { return nil }
            if !stillFails { return faulty }
            // With remaining[0..<high] present it fails; with remaining[0..<low] present it does not.
            var low = 0
            var high = remaining.count
            while high - low > 1 {
                let middle = (low + high) / 2
                guard let result = fails(faulty.union(remaining[middle...])) else { return nil }
                if result { high = middle } else { low = middle }
            }
            guard high >= 1 else { return nil }
            faulty.insert(remaining[high - 1])
            remaining.remove(at: high - 1)
        }
    }
}

/// What was skipped, with a fingerprint of the input that made it fail: while the fingerprint
/// stays the same, it is left out without a new search; once it changes, it is tried again.
struct SkippedObjects {
    struct Entry: Equatable {
        var fingerprint: UInt64
        var reason: String
    }

    private(set) var services: [String: Entry] = [:]
    private(set) var certificates: [String: Entry] = [:]

    /// The exclusions still valid for the current fingerprints.
    func exclusions(serviceFingerprint: (String) -> UInt64?, certificateFingerprint: (String) -> UInt64?) -> Exclusions {
        Exclusions(services: Set(services.filter { serviceFingerprint($0.key) == $0.value.fingerprint }.keys),
                   certificates: Set(certificates.filter { certificateFingerprint($0.key) == $0.value.fingerprint }.keys))
    }

    /// Replaces what is skipped; returns what came back in (no longer skipped).
    mutating func replace(services newServices: [String: Entry], certificates newCertificates: [String: Entry])
        -> (services: [String], certificates: [String]) {
        let back = (Set(services.keys).subtracting(newServices.keys).sorted(),
                    Set(certificates.keys).subtracting(newCertificates.keys).sorted())
        services = newServices
        certificates = newCertificates
        return back
    }

    static func fingerprint(_ parts: [String]) -> UInt64 { Fingerprint(parts).value }
}
