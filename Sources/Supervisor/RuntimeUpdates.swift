// Server changes without a reload: when the new config differs from the live one only in server
// lines HAProxy can change at run time, the supervisor sends the admin-socket commands, reads
// `show servers state` back, and trusts the result only when it matches the new config; any
// error or difference and the apply takes the reload path instead.
import Dispatch
import HAProxyConfig
import Shared
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

extension HAProxyGenerations {
    enum RuntimeOutcome {
        case applied(ControlReply)
        /// Not a change the runtime API can make (or runtime updates are off): reload.
        case needsReload
        /// Commands ran and failed or left another state than the config's: reload, and if the
        /// new config cannot start, reload the live one so nothing stays half-applied.
        case failed
    }

    struct RuntimeFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Applies the desired state through the admin socket when it can. Runs on `queue` only.
    func updateAtRunTime(from live: DesiredState, to desired: DesiredState) -> RuntimeOutcome {
        guard settings.runtimeUpdates else { return .needsReload }
        guard live.certificates == desired.certificates else {
            Log.info("reloading: the change needs a new haproxy process", ["reason": "certificates changed"])
            return .needsReload
        }
        let began = monotonicSeconds()
        let (cached, pending, current) = state.withLock { ($0.liveSections, $0.pendingDeletions, $0.current) }
        guard let current else { return .needsReload }
        let old = cached ?? ConfigFile(live.config)
        let new = ConfigFile(desired.config)
        let plan: RuntimePlan
        switch RuntimePlanner.plan(from: old, to: new, pending: pending) {
        case .reload(let reason):
            Log.info("reloading: the change needs a new haproxy process", ["reason": reason])
            return .needsReload
        case .runtime(let runtimePlan):
            plan = runtimePlan
        }
        // One connection asks which process serves and then carries the plan's commands.
        guard let session = try? AdminSocket.Session(paths.adminSocket),
              (try? session.run("show info")).flatMap(AdminSocket.pid(inInfo:)) == current.pid else {
            Log.warning("reloading: the serving haproxy does not answer on the admin socket", ["pid": String(current.pid)])
            return .needsReload
        }
        let planned = monotonicSeconds()
        let stillPending: [PendingDeletion]
        do {
            stillPending = try execute(plan, pending: pending, session: session)
            // A reload or crash restart must give the same servers: the file follows at once.
            try FileIO.writeAtomically(paths.liveConfig, desired.config, mode: 0o644, durable: false)
        } catch {
            metrics.recordRuntimeUpdate(.fallback)
            Log.warning("runtime update failed; reloading with the new config", ["error": "\(error)"])
            return .failed
        }
        state.withLock { state in
            state.live = desired
            state.liveSections = new
            state.pendingDeletions = stillPending
            state.lastError = nil
        }
        metrics.recordRuntimeUpdate(.success)
        history.record(desired, path: .runtime, generation: current.number)
        let commands = plan.updates.reduce(0) { $0 + $1.commands.count + 2 * $1.removals.count }
        Log.info("servers changed at run time", ["generation": String(current.number), "backends": String(plan.updates.count),
                                                 "commands": String(commands), "seconds": formatSeconds(monotonicSeconds() - began),
                                                 "planning_seconds": formatSeconds(planned - began)])
        if !stillPending.isEmpty { scheduleDeletionRetry() }
        return .applied(.applied(AppliedState(changed: true, reloaded: false, runtime: true, generation: current.number)))
    }

    /// Sends the plan's commands, takes removed servers out, and checks `show servers state` of
    /// every backend touched against the new config. Returns the servers still waiting for their
    /// connections to end before they can be deleted.
    private func execute(_ plan: RuntimePlan, pending: [PendingDeletion],
                         session: borrowing AdminSocket.Session) throws -> [PendingDeletion] {
        var stillPending = pending
        func admin(_ command: String) throws(SystemError) -> String {
            Log.debug("admin socket", ["command": command])
            return try session.run(command)
        }
        /// Runs a command whose answer must say it worked.
        func expectSuccess(_ command: String) throws {
            if let answer = AdminAnswer.failure(command: command, answer: try admin(command)) {
                throw RuntimeFailure(message: "\"\(command)\" answered \"\(answer)\"")
            }
        }
        for update in plan.updates {
            stillPending.removeAll { $0.backend == update.backend && update.revived.contains($0.server.name) }
            for command in update.commands { try expectSuccess(command) }
            for server in update.removals {
                // In maintenance it gets no new traffic; its requests in flight finish.
                let target = "\(update.backend)/\(server.name)"
                try expectSuccess("set server \(target) state maint")
                switch AdminAnswer.deletion(try admin("del server \(target)")) {
                case .deleted: break
                case .busy: stillPending.append(PendingDeletion(backend: update.backend, server: server))
                case .failed(let text): throw RuntimeFailure(message: "\"del server \(target)\" answered \"\(text)\"")
                }
            }
        }
        for update in plan.updates {
            let states = try ServersState.parse(try admin("show servers state \(update.backend)"))
            let problems = ServersState.mismatches(backend: update.backend, expected: update.expected, actual: states)
            if !problems.isEmpty {
                throw RuntimeFailure(message: "show servers state differs from the new config: " + problems.joined(separator: "; "))
            }
        }
        return stillPending
    }

    /// Removed servers that still had connections are deleted once they have none: tried again
    /// every second while any is left (a new generation has none of them).
    func scheduleDeletionRetry() {
        let first = state.withLock { state -> Bool in
            defer { state.deletionRetryScheduled = true }
            return !state.deletionRetryScheduled
        }
        guard first else { return }
        queue.asyncAfter(deadline: .now() + 1) { [self] in
            let (pending, shuttingDown) = state.withLock { state in
                state.deletionRetryScheduled = false
                return (state.pendingDeletions, state.shuttingDown)
            }
            guard !pending.isEmpty, !shuttingDown else { return }
            let remaining = deleteRemovedServers(pending)
            state.withLock { $0.pendingDeletions = remaining }
            if !remaining.isEmpty { scheduleDeletionRetry() }
        }
    }

    /// Tries `del server` on each, over one admin connection; returns those still waiting (all
    /// of them when the connection fails, those not tried yet when it fails midway).
    private func deleteRemovedServers(_ pending: [PendingDeletion]) -> [PendingDeletion] {
        guard let session = try? AdminSocket.Session(paths.adminSocket) else { return pending }
        var remaining: [PendingDeletion] = []
        for (index, deletion) in pending.enumerated() {
            let target = "\(deletion.backend)/\(deletion.server.name)"
            // After a failed exchange the connection's next answer may be this one's: stop.
            guard let answer = try? session.run("del server \(target)") else { return remaining + pending[index...] }
            switch AdminAnswer.deletion(answer) {
            case .deleted:
                Log.debug("removed server deleted", ["server": target])
            case .failed(let text):
                Log.warning("could not delete a removed server; it stays in maintenance until the next reload",
                            ["server": target, "answer": text])
            case .busy:
                remaining.append(deletion)
            }
        }
        return remaining
    }
}
