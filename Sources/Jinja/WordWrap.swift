// The `wordwrap` filter: Python's textwrap.TextWrapper (expand_tabs and replace_whitespace off).

struct TextWrapper {
    let width: Int
    let breakLongWords: Bool
    let breakOnHyphens: Bool

    /// textwrap's whitespace: ASCII only.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        c == " " || c == "\t" || c == "\n" || c == "\u{0B}" || c == "\u{0C}" || c == "\r"
    }

    static func isLetter(_ c: Unicode.Scalar) -> Bool { isPyWord(c) && !isPyDecimal(c) && !(isPyDigit(c)) }
    static func isWordPunct(_ c: Unicode.Scalar) -> Bool {
        isPyWord(c) || c == "!" || c == "\"" || c == "'" || c == "&" || c == "." || c == "," || c == "?"
    }

    /// textwrap's `wordsep_re` (or `wordsep_simple_re`) split into chunks.
    func chunks(_ text: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var out: [[Unicode.Scalar]] = []
        var i = 0
        let n = text.count
        func at(_ k: Int) -> Unicode.Scalar? { k >= 0 && k < n ? text[k] : nil }
        func letter(_ k: Int) -> Bool { at(k).map(TextWrapper.isLetter) ?? false }
        while i < n {
            if TextWrapper.isSpace(text[i]) {
                var j = i
                while j < n && TextWrapper.isSpace(text[j]) { j += 1 }
                out.append(Array(text[i..<j]))
                i = j
                continue
            }
            if !breakOnHyphens {
                var j = i
                while j < n && !TextWrapper.isSpace(text[j]) { j += 1 }
                out.append(Array(text[i..<j]))
                i = j
                continue
            }
            // An em-dash between words: (?<=wp) -{2,} (?=\w)
            if text[i] == "-", let before = at(i - 1), TextWrapper.isWordPunct(before) {
                var j = i
                while j < n && text[j] == "-" { j += 1 }
                if j - i >= 2, let after = at(j), isPyWord(after) {
                    out.append(Array(text[i..<j]))
                    i = j
                    continue
                }
            }
            // A word, possibly hyphenated: the shortest run of non-space that ends at a break.
            var end = i + 1
            var found = false
            while end <= n {
                // Hyphenated word: the chunk ends with '-' after two letters (or letter-letter-),
                // and a letter, optional '-', letter follows.
                if end < n, text[end] == "-" {
                    let hyphenEnd = end + 1
                    let behind = (letter(end - 2) && letter(end - 1)) || (letter(end - 3) && at(end - 2) == "-" && letter(end - 1))
                    let ahead = letter(hyphenEnd) && (letter(hyphenEnd + 1) || (at(hyphenEnd + 1) == "-" && letter(hyphenEnd + 2)))
                    if behind && ahead {
                        end = hyphenEnd
                        found = true
                        break
                    }
                }
                if end == n || TextWrapper.isSpace(text[end]) { found = true; break }
                // Before an em-dash: (?<=wp) (?=-{2,}\w)
                if TextWrapper.isWordPunct(text[end - 1]), text[end] == "-", at(end + 1) == "-" {
                    var k = end
                    while k < n && text[k] == "-" { k += 1 }
                    if let after = at(k), isPyWord(after) { found = true; break }
                }
                end += 1
            }
            if !found { end = n }
            out.append(Array(text[i..<end]))
            i = end
        }
        return out
    }

    mutating func wrap(_ line: String) -> [String] {
        var reversedChunks = Array(chunks(Array(line.unicodeScalars)).reversed())
        var lines: [String] = []
        func isBlank(_ chunk: [Unicode.Scalar]) -> Bool { chunk.allSatisfy(isPySpace) }
        while !reversedChunks.isEmpty {
            var current: [[Unicode.Scalar]] = []
            var currentLength = 0
            if let last = reversedChunks.last, isBlank(last), !lines.isEmpty { reversedChunks.removeLast() }
            while let last = reversedChunks.last {
                if currentLength + last.count <= width {
                    current.append(last)
                    currentLength += last.count
                    reversedChunks.removeLast()
                } else {
                    break
                }
            }
            if let last = reversedChunks.last, last.count > width {
                // _handle_long_word
                let spaceLeft = width < 1 ? 1 : width - currentLength
                if breakLongWords {
                    var end = spaceLeft
                    if breakOnHyphens && last.count > spaceLeft {
                        if let hyphen = last[0..<Swift.min(spaceLeft, last.count)].lastIndex(of: "-"), hyphen > 0,
                           last[0..<hyphen].contains(where: { $0 != "-" }) {
                            end = hyphen + 1
                        }
                    }
                    current.append(Array(last[0..<end]))
                    reversedChunks[reversedChunks.count - 1] = Array(last[end...])
                } else if current.isEmpty {
                    current.append(last)
                    reversedChunks.removeLast()
                }
                currentLength = current.reduce(0) { $0 + $1.count }
            }
            if let last = current.last, isBlank(last) {
                currentLength -= last.count
                current.removeLast()
            }
            if !current.isEmpty { lines.append(scalarString(current.joined())) }
        }
        return lines
    }
}
