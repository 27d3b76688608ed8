// URLs: Jinja2's `url_quote` (the `urlencode` filter) and `urlize`.

/// Jinja2's `url_quote`: UTF-8 percent-encoding; `/` stays unless quoting for a query string,
/// where spaces become `+`.
func urlQuote(_ text: String, forQuery: Bool) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count)
    let hexDigits = Array("0123456789ABCDEF".utf8)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
            out.append(byte)
        case UInt8(ascii: "/") where !forQuery:
            out.append(byte)
        case UInt8(ascii: " ") where forQuery:
            out.append(UInt8(ascii: "+"))
        default:
            out.append(UInt8(ascii: "%"))
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 15)])
        }
    }
    return String(decoding: out, as: UTF8.self)
}

func isURIScheme(_ text: String) -> Bool {
    // ^([\w.+-]{2,}:(/){0,2})$
    let scalars = Array(text.unicodeScalars)
    guard let colon = scalars.firstIndex(of: ":"), colon >= 2 else { return false }
    guard scalars[0..<colon].allSatisfy({ isPyWord($0) || $0 == "." || $0 == "+" || $0 == "-" }) else { return false }
    let rest = scalars[(colon + 1)...]
    return rest.count <= 2 && rest.allSatisfy { $0 == "/" }
}

/// jinja2.utils.urlize over already escaped text.
func urlize(_ escaped: String, trimLimit: Int?, rel: String, target: String?, extraSchemes: [String]) -> String {
    let relAttribute = rel.isEmpty ? "" : " rel=\"\(htmlEscape(rel))\""
    let targetAttribute = (target?.isEmpty ?? true) ? "" : " target=\"\(htmlEscape(target ?? ""))\""
    func trim(_ url: String) -> String {
        guard let limit = trimLimit, url.unicodeScalars.count > limit else { return url }
        return scalarString(url.unicodeScalars.prefix(Swift.max(0, limit))) + "..."
    }
    var out = ""
    // re.split(r"(\s+)"): words, each followed by the whitespace run after it.
    var word: [Unicode.Scalar] = []
    var inSpace = false
    for c in escaped.unicodeScalars {
        let space = isPySpace(c)
        if space && !inSpace {
            out += urlizeWord(scalarString(word), relAttribute: relAttribute, targetAttribute: targetAttribute, trim: trim, extraSchemes: extraSchemes)
            word.removeAll()
        }
        if space { out.unicodeScalars.append(c) } else { word.append(c) }
        inSpace = space
    }
    out += urlizeWord(scalarString(word), relAttribute: relAttribute, targetAttribute: targetAttribute, trim: trim, extraSchemes: extraSchemes)
    return out
}

private func urlizeWord(_ word: String, relAttribute: String, targetAttribute: String, trim: (String) -> String, extraSchemes: [String]) -> String {
    var head = ""
    var middle = word
    var tail = ""
    // Leading ( < or &lt;
    while true {
        if middle.hasPrefix("(") || middle.hasPrefix("<") { head += String(middle.prefix(1)); middle = String(middle.dropFirst()) } else if middle.hasPrefix("&lt;") {
            head += "&lt;"; middle = String(middle.dropFirst(4))
        } else { break }
    }
    // Trailing ) > . , newline or &gt;
    while true {
        if let last = middle.unicodeScalars.last, last == ")" || last == ">" || last == "." || last == "," || last == "\n" {
            tail = String(last) + tail
            middle = String(middle.unicodeScalars.dropLast())
        } else if middle.hasSuffix("&gt;") {
            tail = "&gt;" + tail
            middle = String(middle.dropLast(4))
        } else { break }
    }
    // Prefer balanced parentheses inside the URL over trailing punctuation.
    for (open, close) in [("(", ")"), ("<", ">"), ("&lt;", "&gt;")] {
        let openCount = pyCount(middle, open, nil, nil)
        if openCount <= pyCount(middle, close, nil, nil) { continue }
        for _ in 0..<Swift.min(openCount, pyCount(tail, close, nil, nil)) {
            let index = pyFind(tail, close, nil, nil, .forward)
            let endIndex = index + close.unicodeScalars.count
            middle += scalarString(tail.unicodeScalars.prefix(endIndex))
            tail = scalarString(tail.unicodeScalars.dropFirst(endIndex))
        }
    }
    if matchesHTTP(middle) {
        let lower = middle
        if lower.hasPrefix("https://") || lower.hasPrefix("http://") {
            middle = "<a href=\"\(middle)\"\(relAttribute)\(targetAttribute)>\(trim(middle))</a>"
        } else {
            middle = "<a href=\"https://\(middle)\"\(relAttribute)\(targetAttribute)>\(trim(middle))</a>"
        }
    } else if middle.hasPrefix("mailto:"), matchesEmail(String(middle.dropFirst(7))) {
        middle = "<a href=\"\(middle)\">\(middle.dropFirst(7))</a>"
    } else if middle.contains("@"), !middle.hasPrefix("www."), !middle.hasPrefix("@"), !middle.contains(":"), matchesEmail(middle) {
        middle = "<a href=\"mailto:\(middle)\">\(middle)</a>"
    } else {
        for scheme in extraSchemes where middle != scheme && middle.hasPrefix(scheme) {
            middle = "<a href=\"\(middle)\"\(relAttribute)\(targetAttribute)>\(middle)</a>"
        }
    }
    return head + middle + tail
}

/// `^\S+@\w[\w.-]*\.\w+$`
private func matchesEmail(_ s: String) -> Bool {
    let scalars = Array(s.unicodeScalars)
    guard !scalars.contains(where: isPySpace), let at = scalars.lastIndex(of: "@"), at >= 1 else { return false }
    let domain = Array(scalars[(at + 1)...])
    guard let first = domain.first, isPyWord(first) else { return false }
    guard domain.allSatisfy({ isPyWord($0) || $0 == "." || $0 == "-" }) else { return false }
    guard let dot = domain.lastIndex(of: "."), dot >= 1, dot < domain.count - 1 else { return false }
    return domain[(dot + 1)...].allSatisfy(isPyWord)
}

/// jinja2.utils `_http_re`, matched against a whole word.
private func matchesHTTP(_ s: String) -> Bool {
    let c = Array(s.unicodeScalars)
    let n = c.count
    func lowerASCII(_ k: Int) -> Unicode.Scalar? {
        guard k < n else { return nil }
        let v = c[k].value
        return (v >= 0x41 && v <= 0x5A) ? Unicode.Scalar(v | 0x20) : c[k]
    }
    func hasPrefix(_ p: String, at k: Int) -> Bool {
        var i = k
        for ch in p.unicodeScalars {
            guard lowerASCII(i) == ch else { return false }
            i += 1
        }
        return true
    }
    func isASCIILetter(_ k: Int) -> Bool { k < n && c[k].isASCII && isPyAlpha(c[k]) }
    func isDigit(_ k: Int) -> Bool { k < n && isPyDecimal(c[k]) }
    func isLabelChar(_ k: Int) -> Bool { k < n && (isPyWord(c[k]) || c[k] == "%" || c[k] == "-") }
    /// (?::\d{1,5})? (?:[/?#]\S*)? $
    func restMatches(_ k: Int) -> Bool {
        if k == n { return true }
        if c[k] == "/" || c[k] == "?" || c[k] == "#" { return true }
        if c[k] == ":" {
            var j = k + 1
            while j < n && j - k - 1 < 5 && isDigit(j) { j += 1 }
            let digits = j - k - 1
            guard digits >= 1 else { return false }
            // Backtracking over fewer port digits cannot help: the next char must end or start a path.
            return j == n || c[j] == "/" || c[j] == "?" || c[j] == "#"
        }
        return false
    }
    var schemeEnd: Int? = nil
    if hasPrefix("https://", at: 0) { schemeEnd = 8 } else if hasPrefix("http://", at: 0) { schemeEnd = 7 }
    // Alternative 1: (https?://|www\.) (([\w%-]+\.)+)? ([a-z]{2,63} | xn--[\w%]{2,59})
    if let start = schemeEnd ?? (hasPrefix("www.", at: 0) ? 4 : nil) {
        // Every position where a TLD may start: the start, or just after a dot that closes a label run.
        var tldStarts = [start]
        var k = start
        while k < n && isLabelChar(k) {
            var j = k
            while j < n && isLabelChar(j) { j += 1 }
            if j < n && c[j] == "." { tldStarts.append(j + 1); k = j + 1 } else { break }
        }
        for t in tldStarts {
            var j = t
            while j < n && j - t < 63 && isASCIILetter(j) { j += 1 }
            if j - t >= 2 {
                var e = j
                while e >= t + 2 { if restMatches(e) { return true }; e -= 1 }
            }
            if hasPrefix("xn--", at: t) {
                var e = t + 4
                while e < n && e - t - 4 < 59 && (isPyWord(c[e]) || c[e] == "%") { e += 1 }
                while e >= t + 6 { if restMatches(e) { return true }; e -= 1 }
            }
        }
    }
    // Alternative 2: ([\w%-]{2,63}\.)+ (com|net|int|edu|gov|org|info|mil)
    do {
        var k = 0
        while k < n {
            var j = k
            while j < n && isLabelChar(j) { j += 1 }
            let length = j - k
            guard length >= 2 && length <= 63, j < n, c[j] == "." else { break }
            let t = j + 1
            for tld in ["com", "net", "int", "edu", "gov", "org", "info", "mil"] where hasPrefix(tld, at: t) {
                if restMatches(t + tld.count) { return true }
            }
            k = t
        }
    }
    // Alternative 3: https?:// then an IPv4 address or a bracketed IPv6 one.
    if let start = schemeEnd {
        if matchIPv4(c, start, restMatches) { return true }
        if start < n, c[start] == "[", let close = c[start...].firstIndex(of: "]") {
            if matchIPv6(Array(c[(start + 1)..<close])) && restMatches(close + 1) { return true }
        }
    }
    return false
}

/// (\d{1,3})(\.\d{1,3}){3} followed by what `rest` accepts, with backtracking over digit counts.
private func matchIPv4(_ c: [Unicode.Scalar], _ start: Int, _ rest: (Int) -> Bool) -> Bool {
    func go(_ k: Int, _ group: Int) -> Bool {
        var position = k
        if group > 0 {
            guard position < c.count, c[position] == "." else { return false }
            position += 1
        }
        var ends: [Int] = []
        var j = position
        while j < c.count && j - position < 3 && isPyDecimal(c[j]) { j += 1; ends.append(j) }
        for end in ends.reversed() {
            if group == 3 ? rest(end) : go(end, group + 1) { return true }
        }
        return false
    }
    return go(start, 0)
}

/// ([\da-f]{0,4}:){2}([\da-f]{0,4}:?){1,6}, case-insensitive, matched against the whole text.
private func matchIPv6(_ c: [Unicode.Scalar]) -> Bool {
    func isHex(_ k: Int) -> Bool { isPyDecimal(c[k]) || (c[k].isASCII && "abcdefABCDEF".unicodeScalars.contains(c[k])) }
    var k = 0
    // Two groups that must each end with a colon: the hex run before it is forced.
    for _ in 0..<2 {
        let start = k
        while k < c.count && k - start < 4 && isHex(k) { k += 1 }
        guard k < c.count, c[k] == ":" else { return false }
        k += 1
    }
    // Then one to six groups of up to four hex digits and an optional colon; taking the
    // longest group each time needs the fewest groups.
    var groups = 0
    repeat {
        let start = k
        while k < c.count && k - start < 4 && isHex(k) { k += 1 }
        if k < c.count && c[k] == ":" { k += 1 }
        groups += 1
        if k == start && k < c.count { return false }
    } while k < c.count && groups < 6
    return k == c.count
}
