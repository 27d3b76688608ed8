// Scraping the supervisor's /metrics over real HTTP, checking the text is Prometheus'
// exposition format on the way.
import Foundation

public struct ExpositionError: Error, CustomStringConvertible {
    public var description: String
}

/// The samples of a scrape, keyed by name and labels as written (`name{label="v"}`). Throws when
/// the endpoint does not answer 200, or a line is not exposition format: every sample's family
/// announced by a TYPE line first, names and labels well formed, values numbers.
public func scrapeMetrics(_ url: String) throws -> [String: Double] {
    let response = httpGet(url)
    guard response.code == "200" else { throw ExpositionError(description: "GET \(url): \(response.code)") }
    var samples: [String: Double] = [:]
    var typed: Set<String> = []
    let sample = try NSRegularExpression(pattern: #"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})? (-?[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf)$"#)
    for line in response.body.split(separator: "\n").map(String.init) {
        if line.hasPrefix("# HELP ") { continue }
        if line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[3])) else {
                throw ExpositionError(description: "bad TYPE line: \(line)")
            }
            typed.insert(String(parts[2]))
            continue
        }
        guard let match = sample.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)),
              let family = Range(match.range(at: 1), in: line), let value = Range(match.range(at: 5), in: line) else {
            throw ExpositionError(description: "not an exposition line: \(line)")
        }
        let metric = String(line[family])
        let base = ["_bucket", "_sum", "_count"].reduce(metric) { name, suffix in
            name.hasSuffix(suffix) && typed.contains(String(name.dropLast(suffix.count))) ? String(name.dropLast(suffix.count)) : name
        }
        guard typed.contains(base) else { throw ExpositionError(description: "sample before its TYPE line: \(line)") }
        samples[String(line[..<value.lowerBound].dropLast())] = Double(line[value]) ?? .nan
    }
    return samples
}
