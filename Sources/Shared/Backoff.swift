// Retry delays: from an initial delay, doubling to a cap, with optional jitter so that a fleet
// does not retry in step. The watcher's sources (1 s to 32 s, 20 % jitter), the supervisor's
// watcher restarts (1 s to 30 s, none) and HAProxy crash restarts (0.1 s to 30 s, none) use it.
public struct Backoff: Sendable {
    public let initial: Double
    public let maximum: Double
    /// Up to this fraction is added to each delay at random.
    public let jitter: Double
    private var current: Double

    public init(initial: Double, maximum: Double, jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        current = initial
    }

    public mutating func next() -> Double {
        let delay = jitter > 0 ? current * (1 + Double.random(in: 0..<jitter)) : current
        current = min(maximum, current * 2)
        return delay
    }

    public mutating func reset() { current = initial }
}
