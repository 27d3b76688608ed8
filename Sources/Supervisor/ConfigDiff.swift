// `kube-haproxy diff`: a unified diff between two applied configs, secrets masked. Runs in the
// client, never in PID 1.

/// Replaces the secrets of an HAProxy config with `<secret N>`: the same value is the same N in
/// both configs of a diff, so a changed password shows as a changed line without being shown.
/// Masked: `stats auth USER:PASSWORD`, a userlist's `password` and `insecure-password`, and
/// every line of a PEM block (keys, certificates) written into the config.
struct SecretMask {
    private var numbers: [String: Int] = [:]

    mutating func mask(_ config: String) -> [String] {
        var lines: [String] = []
        var inPEM = false
        for line in config.split(separator: "\n", omittingEmptySubsequences: false) {
            let text = String(line)
            let trimmed = text.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix("-----BEGIN ") {
                inPEM = true
                lines.append(text)
                continue
            }
            if trimmed.hasPrefix("-----END ") {
                inPEM = false
                lines.append(text)
                continue
            }
            if inPEM {
                lines.append(String(text.prefix { $0 == " " || $0 == "\t" }) + marker(text))
                continue
            }
            lines.append(maskWords(text))
        }
        return lines
    }

    private mutating func marker(_ secret: String) -> String {
        let number = numbers[secret] ?? numbers.count + 1
        numbers[secret] = number
        return "<secret \(number)>"
    }

    /// Masks the word after `password`/`insecure-password`, and the part after the colon of
    /// the word after `stats auth`, keeping the rest of the line as it is.
    private mutating func maskWords(_ line: String) -> String {
        var words: [Range<String.Index>] = []
        var index = line.startIndex
        while index < line.endIndex {
            if line[index] == " " || line[index] == "\t" {
                index = line.index(after: index)
                continue
            }
            let start = index
            while index < line.endIndex, line[index] != " ", line[index] != "\t" { index = line.index(after: index) }
            words.append(start..<index)
        }
        // Comments too: a commented-out `stats auth` still holds a password.
        var secrets: [Range<String.Index>] = []
        for position in words.indices.dropLast() {
            let word = line[words[position]]
            if word == "password" || word == "insecure-password" {
                secrets.append(words[position + 1])
            } else if word == "stats", line[words[position + 1]] == "auth", position + 2 < words.count,
                      let colon = line[words[position + 2]].firstIndex(of: ":"), line.index(after: colon) < words[position + 2].upperBound {
                secrets.append(line.index(after: colon)..<words[position + 2].upperBound)
            }
        }
        guard !secrets.isEmpty else { return line }
        var result = ""
        var rest = line.startIndex
        for secret in secrets where secret.lowerBound >= rest {
            result += line[rest..<secret.lowerBound]
            result += marker(String(line[secret]))
            rest = secret.upperBound
        }
        return result + line[rest...]
    }
}

/// A unified diff (`diff -u` style, three lines of context) of two lists of lines.
enum UnifiedDiff {
    enum Edit: Equatable {
        case same(String)
        case removed(String)
        case added(String)
    }

    /// The edits that turn `old` into `new`: a common prefix and suffix, and between them a
    /// shortest edit script (Myers), or, past `limit` differences, all removed then all added.
    static func edits(_ old: [String], _ new: [String], limit: Int = 2000) -> [Edit] {
        var prefix = 0
        while prefix < old.count, prefix < new.count, old[prefix] == new[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < old.count - prefix, suffix < new.count - prefix, old[old.count - 1 - suffix] == new[new.count - 1 - suffix] {
            suffix += 1
        }
        let a = Array(old[prefix..<(old.count - suffix)])
        let b = Array(new[prefix..<(new.count - suffix)])
        var result = old[..<prefix].map(Edit.same)
        result += middle(a, b, limit: limit)
        result += old[(old.count - suffix)...].map(Edit.same)
        return result
    }

    private static func middle(_ a: [String], _ b: [String], limit: Int) -> [Edit] {
        let n = a.count, m = b.count
        if n == 0 { return b.map(Edit.added) }
        if m == 0 { return a.map(Edit.removed) }
        let maximum = min(n + m, limit)
        let offset = maximum + 1
        var v = [Int](repeating: 0, count: 2 * maximum + 3)
        // Each step keeps only the diagonals it can reach (-d-1...d+1): D steps cost about D²
        // numbers, not D times the whole array.
        var trace: [[Int]] = []
        var reached = false
        search: for d in 0...maximum {
            trace.append(Array(v[(offset - d - 1)...(offset + d + 1)]))
            for k in stride(from: -d, through: d, by: 2) {
                var x = (k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1])) ? v[offset + k + 1] : v[offset + k - 1] + 1
                var y = x - k
                while x < n, y < m, a[x] == b[y] {
                    x += 1
                    y += 1
                }
                v[offset + k] = x
                if x >= n && y >= m {
                    reached = true
                    break search
                }
            }
        }
        guard reached else { return a.map(Edit.removed) + b.map(Edit.added) }
        // Walk the trace back from the end to the start.
        var edits: [Edit] = []
        var x = n, y = m
        for d in stride(from: trace.count - 1, through: 0, by: -1) {
            let step = trace[d]
            func v(_ k: Int) -> Int { step[k + d + 1] }
            let k = x - y
            let previousK = (k == -d || (k != d && v(k - 1) < v(k + 1))) ? k + 1 : k - 1
            let previousX = d == 0 ? 0 : v(previousK)
            let previousY = previousX - previousK
            while x > previousX && y > previousY {
                x -= 1
                y -= 1
                edits.append(.same(a[x]))
            }
            if d > 0 {
                if x == previousX {
                    y -= 1
                    edits.append(.added(b[y]))
                } else {
                    x -= 1
                    edits.append(.removed(a[x]))
                }
            }
        }
        return edits.reversed()
    }

    /// The diff's text, empty when the two are the same.
    static func render(_ old: [String], _ new: [String], oldName: String, newName: String, context: Int = 3) -> String {
        let all = edits(old, new)
        let changed = all.indices.filter { if case .same = all[$0] { return false } else { return true } }
        guard !changed.isEmpty else { return "" }
        // Hunks: runs of changes closer than twice the context join.
        var hunks: [ClosedRange<Int>] = []
        for index in changed {
            let low = max(0, index - context), high = min(all.count - 1, index + context)
            if let last = hunks.last, low <= last.upperBound + 1 {
                hunks[hunks.count - 1] = last.lowerBound...max(last.upperBound, high)
            } else {
                hunks.append(low...high)
            }
        }
        // Line numbers (1-based) of each edit in the old and the new list.
        var oldLine = [Int](repeating: 0, count: all.count), newLine = [Int](repeating: 0, count: all.count)
        var o = 1, nn = 1
        for (index, edit) in all.enumerated() {
            oldLine[index] = o
            newLine[index] = nn
            switch edit {
            case .same: o += 1; nn += 1
            case .removed: o += 1
            case .added: nn += 1
            }
        }
        var output = "--- \(oldName)\n+++ \(newName)\n"
        for hunk in hunks {
            var oldCount = 0, newCount = 0
            var body = ""
            for index in hunk {
                switch all[index] {
                case .same(let line): body += " \(line)\n"; oldCount += 1; newCount += 1
                case .removed(let line): body += "-\(line)\n"; oldCount += 1
                case .added(let line): body += "+\(line)\n"; newCount += 1
                }
            }
            let oldStart = oldCount == 0 ? oldLine[hunk.lowerBound] - 1 : oldLine[hunk.lowerBound]
            let newStart = newCount == 0 ? newLine[hunk.lowerBound] - 1 : newLine[hunk.lowerBound]
            output += "@@ -\(oldStart),\(oldCount) +\(newStart),\(newCount) @@\n" + body
        }
        return output
    }
}
