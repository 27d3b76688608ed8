// What HAProxy 2.6 can change in a running process (management guide, "add server", "set
// server", "set weight"), as rules over config sections and server lines.

/// The keywords `add server` accepts in HAProxy 2.6 (management guide, "add server"), by how
/// many words follow them. `source`/`usesrc` are accepted too but take a variable number of
/// words; a line with them is reloaded.
enum AddServerKeywords {
    static let flags: Set<String> = [
        "agent-check", "allow-0rtt", "backup", "check", "check-send-proxy", "check-ssl", "check-via-socks4", "disabled",
        "force-sslv3", "force-tlsv10", "force-tlsv11", "force-tlsv12", "force-tlsv13", "no-ssl-reuse", "no-sslv3",
        "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13", "no-tls-tickets", "send-proxy", "send-proxy-v2",
        "send-proxy-v2-ssl", "send-proxy-v2-ssl-cn", "ssl", "tfo", "tls-tickets",
    ]
    static let withValue: Set<String> = [
        "agent-addr", "agent-inter", "agent-port", "agent-send", "alpn", "addr", "ca-file", "check-alpn", "check-proto",
        "check-sni", "ciphers", "ciphersuites", "crl-file", "crt", "downinter", "error-limit", "fall", "fastinter", "id",
        "inter", "maxconn", "maxqueue", "minconn", "npn", "observe", "on-error", "on-marked-down", "on-marked-up",
        "pool-low-conn", "pool-max-conn", "pool-purge-delay", "port", "proto", "proxy-v2-options", "rise", "slowstart",
        "sni", "ssl-max-ver", "ssl-min-ver", "track", "verify", "verifyhost", "weight", "ws",
    ]
    /// Only says how to resolve a host name at start; meaningless for an IP address, so it is
    /// dropped for one (`add server` refuses it).
    static let hostNameOnly: Set<String> = ["init-addr"]

    struct Setting: Equatable {
        var keyword: String
        var value: String?
        var words: [String] { value.map { [keyword, $0] } ?? [keyword] }
    }

    /// The settings of `default-server` lines and a server line merged the way HAProxy applies
    /// them (each later keyword replaces an earlier one; `no-X` and `enabled` undo a flag), as
    /// words for `add server`; or why they cannot be given to it.
    static func merged(_ lines: [ArraySlice<String>]) -> Result<[String], RefusedSetting> {
        var settings: [Setting] = []
        for words in lines {
            var index = words.startIndex
            while index < words.endIndex {
                let keyword = words[index]
                index += 1
                if flags.contains(keyword) {
                    replace(&settings, Setting(keyword: keyword, value: nil))
                } else if withValue.contains(keyword) || hostNameOnly.contains(keyword) {
                    guard index < words.endIndex else { return .failure(RefusedSetting(keyword: keyword, reason: "has no value")) }
                    if !hostNameOnly.contains(keyword) { replace(&settings, Setting(keyword: keyword, value: words[index])) }
                    index += 1
                } else if keyword == "enabled" {
                    settings.removeAll { $0.keyword == "disabled" }
                } else if keyword.hasPrefix("no-"), flags.contains(String(keyword.dropFirst(3))) {
                    settings.removeAll { $0.keyword == String(keyword.dropFirst(3)) }
                } else {
                    return .failure(RefusedSetting(keyword: keyword, reason: "is not among the keywords add server accepts"))
                }
            }
        }
        return .success(settings.flatMap(\.words))
    }

    private static func replace(_ settings: inout [Setting], _ setting: Setting) {
        if let index = settings.firstIndex(where: { $0.keyword == setting.keyword }) {
            settings[index] = setting
        } else {
            settings.append(setting)
        }
    }

    struct RefusedSetting: Error, Equatable {
        var keyword: String
        var reason: String
    }
}

/// A backend's load-balancing algorithm: `add server` needs a dynamic one, and so does `set
/// weight` to any weight but 0 and the initial one.
public struct Balance: Equatable, Sendable {
    /// The `balance` line's words after the keyword; `roundrobin` when none applies.
    public var algorithm: [String]
    /// The `hash-type` line's words after the keyword; `map-based` when none applies.
    public var hashType: [String]

    /// The balance of a backend or listen: its own lines, else those of its defaults section
    /// (and of the defaults that one takes `from`).
    public init(of index: Int, in config: ConfigFile) {
        algorithm = Balance.setting("balance", of: index, in: config) ?? ["roundrobin"]
        hashType = Balance.setting("hash-type", of: index, in: config) ?? ["map-based"]
    }

    /// Dynamic as HAProxy 2.6 defines it: roundrobin, leastconn, first and random, and the
    /// hashing algorithms with `hash-type consistent`; static-rr and map-based hashing are static.
    public var isDynamic: Bool {
        let name = algorithm.first ?? "roundrobin"
        switch name {
        case "roundrobin", "leastconn", "first": return true
        case "static-rr": return false
        default:
            if name == "random" || name.hasPrefix("random(") { return true }
            let hashing = ["source", "uri", "url_param", "hash", "rdp-cookie"]
            if hashing.contains(name) || name.hasPrefix("hdr(") || name.hasPrefix("rdp-cookie(") {
                return hashType.first == "consistent"
            }
            return false
        }
    }

    public var description: String {
        let text = "balance " + algorithm.joined(separator: " ")
        return hashType.first == "consistent" ? text + " with hash-type consistent" : text
    }

    static func setting(_ keyword: String, of index: Int, in config: ConfigFile) -> [String]? {
        for position in [index] + config.defaultsChain(for: index) {
            if let line = config.sections[position].last(keyword) { return Array(line.words.dropFirst()) }
        }
        return nil
    }
}
