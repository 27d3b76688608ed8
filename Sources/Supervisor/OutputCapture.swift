// A child's output passed through to the supervisor's stderr, the last part kept to explain a
// failed start in HAProxy's own words.
import Dispatch
import Shared
import Synchronization
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Copies a child's output to the supervisor's stderr as it comes, keeping the last part so a
/// failed start can be explained with HAProxy's own words.
final class OutputCapture: Sendable {
    static let keptBytes = 16 * 1024
    private let kept = Mutex<[UInt8]>([])
    private let finished = DispatchSemaphore(value: 0)

    func forward(from fd: Int32) {
        do {
            try startThread { [self] in
                var chunk = [UInt8](repeating: 0, count: 8192)
                while true {
                    let count = chunk.withUnsafeMutableBytes { raw in retryingOnInterrupt { read(fd, raw.baseAddress, raw.count) } }
                    if count <= 0 { break }
                    chunk.withUnsafeBytes { raw in try? FileIO.writeAll(2, UnsafeRawBufferPointer(rebasing: raw[0..<count])) }
                    kept.withLock { buffer in
                        buffer.append(contentsOf: chunk[0..<count])
                        if buffer.count > OutputCapture.keptBytes { buffer.removeFirst(buffer.count - OutputCapture.keptBytes) }
                    }
                }
                close(fd)
                finished.signal()
            }
        } catch {
            Log.error("could not start the output thread", ["error": error.description])
            close(fd)
            finished.signal()
        }
    }

    func waitForEnd(timeout: Double) {
        _ = finished.wait(timeout: .now() + timeout)
    }

    /// The kept output on one line: HAProxy's ALERT lines when there are any, else all of it.
    func text() -> String {
        let lines = String(decoding: kept.withLock { $0 }, as: UTF8.self).split(separator: "\n")
        let alerts = lines.filter { $0.contains("[ALERT]") }
        let chosen = alerts.isEmpty ? lines : alerts
        return chosen.map { $0.trimmingCharacters(in: " \t\r") }.joined(separator: " | ")
    }
}

extension Substring {
    func trimmingCharacters(in characters: String) -> String {
        var slice = self[...]
        while let first = slice.first, characters.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, characters.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
