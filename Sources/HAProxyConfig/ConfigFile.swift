// haproxy.cfg as HAProxy reads it: lines split into words, grouped into sections. Enough to tell
// which sections two configs differ in; the config's meaning stays HAProxy's business.

/// One line of a config, as words.
public struct ConfigLine: Equatable, Sendable {
    /// 1-based line number in the file.
    public var number: Int
    public var words: [String]
    /// Quotes, backslashes and `$` make HAProxy rewrite a line's words (unquoting, escapes,
    /// environment variables); such a line is compared as written and never taken apart.
    public var isVerbatim: Bool
    /// The line without surrounding blanks.
    public var text: String

    /// What two lines are compared by: the words (blanks and comments do not matter to HAProxy),
    /// or the whole text of a verbatim line.
    public var comparable: String { isVerbatim ? text : words.joined(separator: " ") }

    public var keyword: String { words.first ?? "" }

    /// Splits a line the way HAProxy does for lines without quotes, escapes or variables: on
    /// blanks, up to the first `#` (which starts a comment anywhere in a word). Nil for a blank
    /// or comment-only line.
    init?(number: Int, text raw: Substring) {
        let trimmed = ConfigLine.trimmed(raw)
        // A `#` ends the line unless a quote or escape before it could make it part of a word.
        let beforeComment = trimmed.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let verbatim = beforeComment.contains { $0 == "\"" || $0 == "'" || $0 == "\\" || $0 == "$" }
        let words = beforeComment.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if words.isEmpty { return nil }
        self.number = number
        self.words = words
        self.isVerbatim = verbatim
        self.text = String(verbatim ? trimmed : beforeComment)
    }

    static func trimmed(_ text: Substring) -> Substring {
        var slice = text
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" || last == "\r" { slice = slice.dropLast() }
        return slice
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

    public var sections: [ConfigSection]
    /// The first `.if`/`.else`/`.endif`/`.diag`-style directive, when there is one: lines may
    /// then count or not depending on conditions only HAProxy evaluates.
    public var firstDirective: ConfigLine?

    public init(_ text: String) {
        var sections = [ConfigSection(header: nil, body: [])]
        var firstDirective: ConfigLine?
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            guard let line = ConfigLine(number: number, text: raw) else { continue }
            if line.keyword.hasPrefix(".") && firstDirective == nil { firstDirective = line }
            if !line.isVerbatim, ConfigFile.sectionKeywords.contains(line.keyword) {
                sections.append(ConfigSection(header: line, body: []))
            } else {
                sections[sections.count - 1].body.append(line)
            }
        }
        if sections[0].body.isEmpty { sections.removeFirst() }
        self.sections = sections
        self.firstDirective = firstDirective
    }

    /// The `defaults` section a proxy section takes its settings from: the one its header names
    /// with `from NAME`, else the last one before it. Nil when there is none.
    public func defaults(for index: Int) -> ConfigSection? {
        let header = sections[index].header?.words ?? []
        if let from = header.firstIndex(of: "from"), from + 1 < header.count {
            let wanted = header[from + 1]
            return sections[..<index].last { $0.keyword == "defaults" && $0.name == wanted }
        }
        return sections[..<index].last { $0.keyword == "defaults" }
    }
}
