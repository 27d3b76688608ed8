// `show servers state`: what the running HAProxy holds, compared with what a config declares.

/// One row of `show servers state` (format version 1).
public struct ServerState: Equatable, Sendable {
    public var backend: String
    public var name: String
    /// `-` when the server has no address yet.
    public var address: String
    public var port: Int
    /// SRV_ADMF_* flags: 0x01 forced maintenance (CLI), 0x04 maintenance from the config
    /// (`disabled`), 0x08 forced drain.
    public var adminState: Int
    /// The weight in use (`srv_uweight`); `srv_iweight` keeps the one the process started with.
    public var weight: Int
    /// CHK_ST_* flags of the health check: 0x04 enabled.
    public var checkState: Int

    public var inMaintenance: Bool { adminState & 0x05 != 0 }
    public var isDraining: Bool { adminState & 0x08 != 0 }
    public var healthChecksEnabled: Bool { checkState & 0x04 != 0 }
}

public struct ServersStateError: Error, CustomStringConvertible, Equatable, Sendable {
    public var description: String
}

public enum ServersState {
    static let columns = ["be_name", "srv_name", "srv_addr", "srv_admin_state", "srv_uweight", "srv_port", "srv_check_state"]

    /// Reads the dump: a version line `1`, a `# column…` header, one row per server.
    public static func parse(_ text: String) throws(ServersStateError) -> [ServerState] {
        let lines = text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        guard let version = lines.first, version == ["1"] else {
            throw ServersStateError(description: "show servers state: expected format version 1, got \"\(text.prefix(80))\"")
        }
        guard lines.count > 1, lines[1].first == "#" else {
            throw ServersStateError(description: "show servers state: no column header")
        }
        let header = lines[1].dropFirst().map(String.init)
        var position: [String: Int] = [:]
        for column in columns {
            guard let index = header.firstIndex(of: column) else {
                throw ServersStateError(description: "show servers state: no column \(column)")
            }
            position[column] = index
        }
        func field(_ row: [Substring], _ column: String) -> String { String(row[position[column] ?? 0]) }
        var states: [ServerState] = []
        for row in lines.dropFirst(2) where row.first != "#" {
            guard row.count >= header.count, let admin = Int(field(row, "srv_admin_state")),
                  let weight = Int(field(row, "srv_uweight")), let port = Int(field(row, "srv_port")),
                  let checkState = Int(field(row, "srv_check_state")) else {
                throw ServersStateError(description: "show servers state: unreadable row \"\(row.joined(separator: " "))\"")
            }
            states.append(ServerState(backend: field(row, "be_name"), name: field(row, "srv_name"), address: field(row, "srv_addr"),
                                      port: port, adminState: admin, weight: weight, checkState: checkState))
        }
        return states
    }

    /// The differences between what a backend holds and what the config declares, one sentence
    /// each; empty when they agree in names, addresses, ports, weights, maintenance and health checks.
    public static func mismatches(backend: String, expected: [ExpectedServer], actual: [ServerState]) -> [String] {
        var problems: [String] = []
        let held = Dictionary(actual.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for server in expected {
            let name = "\(backend)/\(server.name)"
            guard let state = held[server.name] else {
                if !server.beingRemoved { problems.append("\(name) is missing") }
                continue
            }
            if server.beingRemoved {
                if !state.inMaintenance { problems.append("\(name) is removed but not in maintenance") }
                continue
            }
            if let address = server.address {
                if ServerAddress(host: state.address, port: state.port) != address {
                    problems.append("\(name) has address \(state.address):\(state.port), not \(address.word)")
                }
            }
            if state.weight != server.weight { problems.append("\(name) has weight \(state.weight), not \(server.weight)") }
            if state.inMaintenance != server.inMaintenance {
                problems.append("\(name) is \(state.inMaintenance ? "" : "not ")in maintenance")
            }
            if state.isDraining { problems.append("\(name) is draining") }
            // Maintenance pauses checks; a server that serves must check as the config says.
            if !state.inMaintenance && state.healthChecksEnabled != server.healthChecks {
                problems.append("\(name) has health checks \(state.healthChecksEnabled ? "on" : "off"), not \(server.healthChecks ? "on" : "off")")
            }
        }
        let declared = Set(expected.map(\.name))
        for state in actual where !declared.contains(state.name) {
            problems.append("\(backend)/\(state.name) is not in the config")
        }
        return problems
    }
}
