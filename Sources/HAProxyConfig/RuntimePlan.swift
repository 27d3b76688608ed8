// Whether a new config can replace the live one without a reload, and the admin-socket
// commands that make the running HAProxy serve what the new config declares.

/// A server removed from the config that the running HAProxy still holds, in maintenance,
/// because connections were attached to it when it was to be deleted.
public struct PendingDeletion: Equatable, Sendable {
    public var backend: String
    /// The declaration the server was running with.
    public var server: ServerDeclaration

    public init(backend: String, server: ServerDeclaration) {
        self.backend = backend
        self.server = server
    }
}

/// What `show servers state` must say about a server once the commands have run.
public struct ExpectedServer: Equatable, Sendable {
    public var name: String
    /// Compared only when the config gives an IP address and port.
    public var address: ServerAddress?
    public var weight: Int
    public var inMaintenance: Bool
    public var healthChecks: Bool
    /// Removed: in maintenance until its connections end, or gone.
    public var beingRemoved: Bool

    public init(_ server: ServerDeclaration, beingRemoved: Bool = false) {
        name = server.name
        address = server.address
        weight = server.weight
        inMaintenance = beingRemoved || server.isDisabled
        healthChecks = server.hasHealthChecks
        self.beingRemoved = beingRemoved
    }
}

/// The changes to one backend (or listen).
public struct BackendUpdate: Equatable, Sendable {
    public var backend: String
    /// Commands that must each succeed, in this order: additions, then changes.
    public var commands: [String]
    /// Servers to take out after the commands: into maintenance, then deleted once no
    /// connection is attached to them.
    public var removals: [ServerDeclaration]
    /// Servers that were waiting to be deleted and are back in the config.
    public var revived: [String]
    /// The backend's servers as `show servers state` must list them afterwards.
    public var expected: [ExpectedServer]
}

public struct RuntimePlan: Equatable, Sendable {
    /// Empty when the configs differ only in blanks and comments.
    public var updates: [BackendUpdate]

    public init(updates: [BackendUpdate]) { self.updates = updates }
}

public enum RuntimeDecision: Equatable, Sendable {
    case runtime(RuntimePlan)
    /// The new config needs a new HAProxy process; the reason names the section and line.
    case reload(because: String)
}

public enum RuntimePlanner {
    /// Compares the live config with the new one section by section. Only differences in the
    /// `server` lines of backends and listens that HAProxy 2.6 can apply at run time give a plan.
    public static func plan(from live: ConfigFile, to new: ConfigFile, pending: [PendingDeletion] = []) -> RuntimeDecision {
        if let directive = new.firstDirective ?? live.firstDirective {
            return .reload(because: "line \(directive.number) is a conditional directive (\(directive.keyword)): which lines count is HAProxy's decision")
        }
        guard live.sections.count == new.sections.count else {
            return .reload(because: "sections were added or removed (\(live.sections.count) before, \(new.sections.count) now)")
        }
        var updates: [BackendUpdate] = []
        for index in new.sections.indices {
            let old = live.sections[index]
            let next = new.sections[index]
            guard old.header?.comparable == next.header?.comparable else {
                return .reload(because: "\(next.label) replaces \(old.label)")
            }
            // Most sections are untouched: same lines, nothing to look into.
            if old.body.count == next.body.count && zip(old.body, next.body).allSatisfy({ $0.comparable == $1.comparable }) { continue }
            if let line = firstDifference(old, next) {
                return .reload(because: "\(next.label): \(line); only server lines can change at run time")
            }
            // Only server lines differ now: the section is a backend or listen.
            switch backendUpdate(live: live, new: new, index: index, pending: pending.filter { $0.backend == next.name }) {
            case .failure(let refusal): return .reload(because: "\(next.label): \(refusal.reason)")
            case .success(let update?): updates.append(update)
            case .success(nil): break
            }
        }
        return .runtime(RuntimePlan(updates: updates))
    }

    /// The first line other than a server line that differs, named by its number and keyword.
    static func firstDifference(_ old: ConfigSection, _ new: ConfigSection) -> String? {
        func settings(_ section: ConfigSection) -> [ConfigLine] {
            section.body.filter { !(section.holdsServers && $0.keyword == "server") }
        }
        let before = settings(old)
        let after = settings(new)
        for (oldLine, newLine) in zip(before, after) where oldLine.comparable != newLine.comparable {
            return "line \(newLine.number) (\(newLine.keyword)) changed"
        }
        if before.count == after.count { return nil }
        let extra = before.count > after.count ? before[after.count] : after[before.count]
        return before.count > after.count ? "the \(extra.keyword) line that was line \(extra.number) is gone"
            : "line \(extra.number) (\(extra.keyword)) is new"
    }

    struct Refusal: Error {
        var reason: String
    }

    static func backendUpdate(live: ConfigFile, new: ConfigFile, index: Int,
                              pending: [PendingDeletion]) -> Result<BackendUpdate?, Refusal> {
        let backend = new.sections[index].name
        let before = live.servers(in: index)
        let after = new.servers(in: index)
        var seen: [String: Int] = [:]
        for server in after {
            if let first = seen[server.name] {
                return .failure(Refusal(reason: "server \(server.name) is declared twice (lines \(first) and \(server.line.number))"))
            }
            seen[server.name] = server.line.number
        }
        let oldByName = Dictionary(before.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let pendingByName = Dictionary(pending.map { ($0.server.name, $0.server) }, uniquingKeysWith: { first, _ in first })
        let balance = Balance(of: index, in: new)
        var commands: [String] = []
        var changes: [String] = []
        var revived: [String] = []
        for server in after {
            let target = "\(backend)/\(server.name)"
            if let old = oldByName[server.name] ?? pendingByName[server.name] {
                let isRevival = oldByName[server.name] == nil
                if !isRevival && old.line.comparable == server.line.comparable
                    && old.defaultServerLines.elementsEqual(server.defaultServerLines, by: { $0.comparable == $1.comparable }) { continue }
                guard old.identity == server.identity else {
                    return .failure(Refusal(reason: isRevival
                        ? "server \(server.name) (line \(server.line.number)) is back with other settings while the old one waits for its connections to end"
                        : "server \(server.name) (line \(server.line.number)) changed in more than its address, port and weight"))
                }
                var serverCommands: [String] = []
                if old.addressWord != server.addressWord {
                    guard let address = server.address, let oldAddress = old.address else {
                        return .failure(Refusal(reason: "server \(server.name) (line \(server.line.number)): only an IP address with a port can be set at run time"))
                    }
                    if address != oldAddress { serverCommands.append("set server \(target) addr \(address.host) port \(address.port)") }
                }
                if old.weight != server.weight {
                    if let refusal = weightRefusal(server, balance) { return .failure(refusal) }
                    serverCommands.append("set server \(target) weight \(server.weight)")
                }
                if isRevival {
                    if !server.isDisabled { serverCommands.append("set server \(target) state ready") }
                    revived.append(server.name)
                }
                changes += serverCommands
            } else {
                switch addCommands(server, backend: backend, balance: balance) {
                case .success(let added): commands += added
                case .failure(let refusal): return .failure(refusal)
                }
            }
        }
        commands += changes
        let newNames = Set(after.map(\.name))
        let removals = before.filter { !newNames.contains($0.name) }
        guard !commands.isEmpty || !removals.isEmpty else { return .success(nil) }
        let stillPending = pending.filter { !newNames.contains($0.server.name) }.map(\.server)
        let expected = after.map { ExpectedServer($0) } + (removals + stillPending).map { ExpectedServer($0, beingRemoved: true) }
        return .success(BackendUpdate(backend: backend, commands: commands, removals: removals, revived: revived, expected: expected))
    }

    /// `add server` with the settings of the line and of the `default-server` lines above it
    /// (a dynamic server inherits none), then health and agent checks enabled (added servers
    /// start with them off) and the server made ready (added servers start in maintenance).
    static func addCommands(_ server: ServerDeclaration, backend: String, balance: Balance) -> Result<[String], Refusal> {
        let place = "server \(server.name) (line \(server.line.number))"
        guard balance.isDynamic else {
            return .failure(Refusal(reason: "\(place) is new, and add server needs a dynamic algorithm, not \(balance.description)"))
        }
        guard balance.algorithm.first != "first" else {
            // `first` fills servers in id order; a server added at run time takes the lowest free
            // id, not the place its line gives it, so the order would differ after a reload.
            return .failure(Refusal(reason: "\(place) is new, and with balance first the order of server ids decides the traffic"))
        }
        guard !server.line.isVerbatim else {
            return .failure(Refusal(reason: "\(place) is new and has quotes, escapes or variables"))
        }
        guard let address = server.address else {
            return .failure(Refusal(reason: "\(place) is new and its address is not an IP address with a port"))
        }
        if let verbatim = server.defaultServerLines.first(where: \.isVerbatim) {
            return .failure(Refusal(reason: "\(place) is new, and the default-server line \(verbatim.number) has quotes, escapes or variables"))
        }
        let settings: [String]
        switch AddServerKeywords.merged(server.defaultServerLines.map { $0.words.dropFirst() } + [ArraySlice(server.settingWords)]) {
        case .success(let merged): settings = merged
        case .failure(let refused):
            return .failure(Refusal(reason: "\(place) is new, and '\(refused.keyword)' \(refused.reason)"))
        }
        if let refusal = weightRefusal(server, balance) { return .failure(refusal) }
        let target = "\(backend)/\(server.name)"
        var commands = ["add server \(target) \(([address.word] + settings).joined(separator: " "))"]
        if settings.contains("check") { commands.append("enable health \(target)") }
        if settings.contains("agent-check") { commands.append("enable agent \(target)") }
        if !server.isDisabled { commands.append("set server \(target) state ready") }
        return .success(commands)
    }

    /// `set weight` takes 0 to 256, and in a static farm only 0 or the initial weight.
    static func weightRefusal(_ server: ServerDeclaration, _ balance: Balance) -> Refusal? {
        guard (0...256).contains(server.weight) else {
            return Refusal(reason: "server \(server.name) (line \(server.line.number)): weight \(server.weight) is outside 0 to 256")
        }
        guard balance.isDynamic else {
            return Refusal(reason: "server \(server.name) (line \(server.line.number)): its weight can change at run time only with a dynamic algorithm, not \(balance.description)")
        }
        return nil
    }
}
