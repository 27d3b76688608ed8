// What an apply asks for: the whole config and every certificate, as the watcher (or the CLI)
// sends them, and the hash `status` shows.
import Shared

struct DesiredState: Equatable, Sendable {
    /// FNV-1a over the config and the certificates in name order: shown by `status`, written to
    /// the history and the bundle. Made once, with the state; declared first, so `==` tells
    /// most different states apart without comparing whole configs.
    let hash: String
    let config: String
    let certificates: [String: String]

    /// HAProxy rejects a config whose last line has no newline; a template that ends in text
    /// renders exactly that (Jinja2 drops one trailing newline), so the supervisor adds it.
    init(config: String, certificates: [String: String]) {
        self.config = config.hasSuffix("\n") || config.isEmpty ? config : config + "\n"
        self.certificates = certificates
        var fingerprint = Fingerprint([self.config])
        for name in certificates.keys.sorted() {
            fingerprint.mix(name)
            fingerprint.mix(certificates[name] ?? "")
        }
        hash = fingerprint.hex
    }
}
