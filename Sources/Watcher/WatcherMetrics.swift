// The watcher's figures, counted here and reported to the supervisor every few seconds as
// increments: the supervisor keeps the totals, so a watcher restart resets nothing.
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

final class WatcherMetrics: Sendable {
    static let reportInterval = 2.0
    private let pending = Mutex(WatcherReport())
    private let controlSocket: String

    init(controlSocket: String) {
        self.controlSocket = controlSocket
        // Until the first read succeeds, the state is not known to be current.
        pending.withLock { $0.staleSince = WatcherMetrics.wallClock() }
    }

    func countEvent() { pending.withLock { $0.etcdEvents += 1 } }
    func countRenderError() { pending.withLock { $0.renderErrors += 1 } }
    func observeRender(seconds: Double) { pending.withLock { $0.renderSeconds.append(seconds) } }

    enum ResyncReason {
        /// etcd's event index was cleared (error 401).
        case indexCleared
        /// The source was unreachable and is back.
        case reconnect
        /// The Kubernetes API answered 410 Gone: the resourceVersion is too old.
        case expired
    }

    func countResync(_ reason: ResyncReason) {
        pending.withLock { report in
            switch reason {
            case .indexCleared: report.indexClearedResyncs += 1
            case .reconnect: report.reconnectResyncs += 1
            case .expired: report.expiredResyncs += 1
            }
        }
    }

    /// The state is current (read done, watches running) or stale since now.
    func setCurrent(_ current: Bool) {
        pending.withLock { report in
            if current {
                report.staleSince = nil
            } else if report.staleSince == nil {
                report.staleSince = WatcherMetrics.wallClock()
            }
        }
    }

    func setSkipped(services: [String], certificates: [String]) {
        pending.withLock { report in
            report.skippedServices = services
            report.skippedCertificates = certificates
        }
    }

    func startReporting() {
        try? startThread { [self] in
            while true {
                sleepSeconds(WatcherMetrics.reportInterval)
                report()
            }
        }
    }

    /// Sends the increments; on failure they are kept for the next report.
    private func report() {
        let report = pending.withLock { pending -> WatcherReport in
            let taken = pending
            pending = WatcherReport()
            pending.staleSince = taken.staleSince
            pending.skippedServices = taken.skippedServices
            pending.skippedCertificates = taken.skippedCertificates
            return taken
        }
        do {
            var client = try ControlClient(path: controlSocket)
            _ = try client.send(.report(report))
        } catch {
            pending.withLock { pending in
                pending.etcdEvents += report.etcdEvents
                pending.indexClearedResyncs += report.indexClearedResyncs
                pending.reconnectResyncs += report.reconnectResyncs
                pending.expiredResyncs += report.expiredResyncs
                pending.renderErrors += report.renderErrors
                pending.renderSeconds = Array((report.renderSeconds + pending.renderSeconds).suffix(1000))
            }
        }
    }

    static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
