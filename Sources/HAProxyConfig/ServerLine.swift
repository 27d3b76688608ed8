// `server` lines of backends and listens: the server's name, address and settings, and the
// `default-server` lines in effect where it is declared.
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// An IP address with a port, as a server line or `show servers state` writes it. Only such
/// addresses can be set at run time: a host name would need the resolution HAProxy does at start.
public struct ServerAddress: Equatable, Sendable {
    /// The address as written, without brackets.
    public var host: String
    public var port: Int
    public var isIPv6: Bool
    /// The address in network byte order: `::1` and `0::1` are the same address.
    public var bytes: [UInt8]

    /// `a.b.c.d:port`, `[v6]:port` or `v6:port` (the last colon separates the port, as HAProxy
    /// reads it). Nil for anything else: host names, no port, port ranges or offsets, prefixes
    /// such as `ipv4@`.
    public init?(_ word: String) {
        let host: Substring
        let portText: Substring
        if word.hasPrefix("[") {
            guard let close = word.firstIndex(of: "]"), word[word.index(after: close)...].hasPrefix(":") else { return nil }
            host = word[word.index(after: word.startIndex)..<close]
            portText = word[word.index(close, offsetBy: 2)...]
        } else {
            guard let colon = word.lastIndex(of: ":") else { return nil }
            host = word[..<colon]
            portText = word[word.index(after: colon)...]
        }
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), portText.count <= 5,
              let port = Int(portText), (1...65535).contains(port) else { return nil }
        self.init(host: String(host), port: port)
    }

    public init?(host: String, port: Int) {
        if let bytes = ServerAddress.bytes(host, family: AF_INET, count: 4) {
            self.isIPv6 = false
            self.bytes = bytes
        } else if let bytes = ServerAddress.bytes(host, family: AF_INET6, count: 16) {
            self.isIPv6 = true
            self.bytes = bytes
        } else {
            return nil
        }
        self.host = host
        self.port = port
    }

    /// How `add server` takes it.
    public var word: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func == (lhs: ServerAddress, rhs: ServerAddress) -> Bool {
        lhs.bytes == rhs.bytes && lhs.port == rhs.port
    }

    static func bytes(_ text: String, family: Int32, count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16)
        let converted = buffer.withUnsafeMutableBytes { raw in inet_pton(family, text, raw.baseAddress) }
        return converted == 1 ? Array(buffer.prefix(count)) : nil
    }
}

/// A `server` line where it stands: in which section, below which `default-server` lines.
public struct ServerDeclaration: Equatable, Sendable {
    public var line: ConfigLine
    /// The `default-server` lines that apply: the defaults section's, then those of the server's
    /// own section above it (HAProxy applies each to the servers declared after it).
    public var defaultServerLines: [ConfigLine]
    let words: [String]

    public init(line: ConfigLine, defaultServerLines: [ConfigLine]) {
        self.line = line
        self.defaultServerLines = defaultServerLines
        words = line.words
    }

    public var name: String { words.count > 1 ? words[1] : "" }
    public var addressWord: String { words.count > 2 ? words[2] : "" }
    /// The words after the address.
    public var settingWords: [String] { Array(words.dropFirst(3)) }
    public var address: ServerAddress? { line.isVerbatim ? nil : ServerAddress(addressWord) }

    /// What the line says besides its address and weight, with the `default-server` lines it
    /// inherits: two declarations with the same identity differ in nothing `set server` cannot change.
    public var identity: [String] {
        let inherited = defaultServerLines.map { "default-server " + ServerDeclaration.withoutWeight($0.words.dropFirst()).joined(separator: " ") }
        let own = line.isVerbatim ? [line.comparable] : ServerDeclaration.withoutWeight(words.dropFirst(3))
        return inherited + ["server " + name] + own
    }

    /// The weight HAProxy gives the server: its own `weight`, else the last `default-server`
    /// one, else 1.
    public var weight: Int {
        for words in [words.dropFirst(3)] + defaultServerLines.reversed().map({ $0.words.dropFirst() }) {
            if let weight = ServerDeclaration.lastWeight(words) { return weight }
        }
        return 1
    }

    /// Whether the server starts in maintenance (`disabled`, not undone by a later `enabled`).
    public var isDisabled: Bool {
        var disabled = false
        for words in defaultServerLines.map({ $0.words.dropFirst() }) + [words.dropFirst(3)] {
            for word in words where word == "disabled" || word == "enabled" { disabled = word == "disabled" }
        }
        return disabled
    }

    /// Whether health checks run: the last `check` or `no-check` of the `default-server` lines
    /// and the line.
    public var hasHealthChecks: Bool {
        var checks = false
        for words in defaultServerLines.map({ $0.words.dropFirst() }) + [words.dropFirst(3)] {
            for word in words where word == "check" || word == "no-check" { checks = word == "check" }
        }
        return checks
    }

    static func lastWeight(_ words: ArraySlice<String>) -> Int? {
        var found: Int?
        var index = words.startIndex
        while index < words.endIndex {
            if words[index] == "weight", index + 1 < words.endIndex, let weight = Int(words[index + 1]) { found = weight }
            index += 1
        }
        return found
    }

    static func withoutWeight(_ words: ArraySlice<String>) -> [String] {
        var result: [String] = []
        var index = words.startIndex
        while index < words.endIndex {
            if words[index] == "weight", index + 1 < words.endIndex, Int(words[index + 1]) != nil {
                index += 2
                continue
            }
            result.append(words[index])
            index += 1
        }
        return result
    }
}

extension ConfigFile {
    /// The servers of a backend or listen section in declaration order.
    public func servers(in index: Int) -> [ServerDeclaration] {
        // The farthest defaults first: each nearer one applies over it.
        var inherited = defaultsChain(for: index).reversed().flatMap { sections[$0].body.filter { $0.keyword == "default-server" } }
        var result: [ServerDeclaration] = []
        for line in sections[index].body {
            switch line.keyword {
            case "default-server": inherited.append(line)
            case "server": result.append(ServerDeclaration(line: line, defaultServerLines: inherited))
            default: break
            }
        }
        return result
    }
}
