// haproxy.cfg as HAProxy reads it: lines split into words, grouped into sections. Enough to tell
// which sections two configs differ in; the config's meaning stays HAProxy's business.

/// One line of a config, as words.
public struct ConfigLine: Equatable, Sendable {
    /// 1-based line number in the file.
    public var number: Int
    /// Quotes, backslashes and `$` make HAProxy rewrite a line's words (unquoting, escapes,
    /// environment variables); such a line is compared as written and never taken apart.
    public var isVerbatim: Bool
    /// What two lines are compared by: the words joined by one space (blanks and comments do
    /// not matter to HAProxy), or the whole text of a verbatim line.
    public var comparable: String
    /// The first word.
    public var keyword: String

    /// The words, split when asked: most lines of a large config are only compared.
    public var words: [String] {
        comparable.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }

    /// Splits a line the way HAProxy does for lines without quotes, escapes or variables: on
    /// blanks, up to the first `#` (which starts a comment anywhere in a word). Nil for a blank
    /// or comment-only line. Works on bytes: configs run to tens of thousands of lines.
    init?(number: Int, bytes line: UnsafeBufferPointer<UInt8>) {
        func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D }
        var start = 0
        var end = line.count
        while start < end && isBlank(line[start]) { start += 1 }
        while end > start && isBlank(line[end - 1]) { end -= 1 }
        // A `#` ends the line unless a quote or escape before it could make it part of a word.
        var commentStart = end
        var verbatim = false
        for index in start..<end {
            let byte = line[index]
            if byte == 0x23 { commentStart = index; break }
            if byte == 0x22 || byte == 0x27 || byte == 0x5C || byte == 0x24 { verbatim = true }
        }
        var keywordEnd = start
        while keywordEnd < commentStart && !isBlank(line[keywordEnd]) { keywordEnd += 1 }
        if keywordEnd == start { return nil }
        self.number = number
        self.isVerbatim = verbatim
        self.keyword = String(decoding: UnsafeBufferPointer(rebasing: line[start..<keywordEnd]), as: UTF8.self)
        if verbatim {
            comparable = String(decoding: UnsafeBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
            return
        }
        var commentFree = commentStart
        while commentFree > start && isBlank(line[commentFree - 1]) { commentFree -= 1 }
        comparable = String(unsafeUninitializedCapacity: commentFree - start) { buffer in
            var count = 0
            var previousBlank = false
            for index in start..<commentFree {
                let byte = line[index]
                if isBlank(byte) {
                    previousBlank = true
                    continue
                }
                if previousBlank {
                    buffer[count] = 0x20
                    count += 1
                    previousBlank = false
                }
                buffer[count] = byte
                count += 1
            }
            return count
        }
    }
}

/// A section: its header line (`backend web`) and the lines up to the next header.
public struct ConfigSection: Sendable {
    /// nil for the lines before the first header.
    public var header: ConfigLine?
    public var body: [ConfigLine]

    /// `global`, `defaults`, `backend`, …; empty before the first header.
    public var keyword: String { header?.keyword ?? "" }
    /// The section's name (the header's second word), empty when it has none.
    public var name: String { header.flatMap { $0.words.count > 1 ? $0.words[1] : nil } ?? "" }

    /// How the section is named in messages: `backend web (line 12)`.
    public var label: String {
        guard let header else { return "the lines before the first section" }
        return "\(header.words.prefix(2).joined(separator: " ")) (line \(header.number))"
    }

    /// Sections whose `server` lines are servers of a load-balancing farm.
    public var holdsServers: Bool { keyword == "backend" || keyword == "listen" }

    /// The last line starting with the keyword, if any.
    public func last(_ keyword: String) -> ConfigLine? {
        body.last { $0.keyword == keyword }
    }
}

public struct ConfigFile: Sendable {
    /// The keywords that open a section in HAProxy 2.6.
    public static let sectionKeywords: Set<String> = [
        "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist", "mailers",
        "program", "http-errors", "ring", "cache", "log-forward", "fcgi-app",
    ]

    public let sections: [ConfigSection]
    /// The first `.if`/`.else`/`.endif`/`.diag`-style directive, when there is one: lines may
    /// then count or not depending on conditions only HAProxy evaluates.
    public let firstDirective: ConfigLine?

    public init(_ text: String) {
        var sections = [ConfigSection(header: nil, body: [])]
        var firstDirective: ConfigLine?
        var copy = text
        copy.withUTF8 { bytes in
            var number = 0
            var lineStart = 0
            while lineStart <= bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
                number += 1
                if let line = ConfigLine(number: number, bytes: UnsafeBufferPointer(rebasing: bytes[lineStart..<lineEnd])) {
                    if line.keyword.hasPrefix(".") && firstDirective == nil { firstDirective = line }
                    if !line.isVerbatim, ConfigFile.sectionKeywords.contains(line.keyword) {
                        sections.append(ConfigSection(header: line, body: []))
                    } else {
                        sections[sections.count - 1].body.append(line)
                    }
                }
                lineStart = lineEnd + 1
            }
        }
        if sections[0].body.isEmpty { sections.removeFirst() }
        self.sections = sections
        self.firstDirective = firstDirective
        defaultsIndexes = ConfigFile.defaultsIndexes(sections)
    }

    /// For each section, the index of the `defaults` section it takes its settings from.
    let defaultsIndexes: [Int?]

    /// The sections a proxy section takes its settings from, nearest first: its `defaults` (the
    /// one its header names with `from NAME`, else the last one before it), then the one that
    /// `defaults` names with `from`, and so on (a `defaults` without `from` starts afresh).
    public func defaultsChain(for index: Int) -> [Int] {
        var chain: [Int] = []
        var current = defaultsIndexes[index]
        while let position = current, !chain.contains(position) {
            chain.append(position)
            guard sections[position].header?.words.contains("from") == true else { break }
            current = defaultsIndexes[position]
        }
        return chain
    }

    /// Each section's `defaults`: the one its header names with `from NAME`, else the last one above it.
    static func defaultsIndexes(_ sections: [ConfigSection]) -> [Int?] {
        var result: [Int?] = []
        var last: Int?
        var named: [String: Int] = [:]
        for (index, section) in sections.enumerated() {
            let header = section.header?.words ?? []
            if let from = header.firstIndex(of: "from"), from + 1 < header.count {
                result.append(named[header[from + 1]])
            } else {
                result.append(last)
            }
            if section.keyword == "defaults" {
                last = index
                if header.count > 1 && header[1] != "from" { named[header[1]] = index }
            }
        }
        return result
    }
}
