// HTML text: markupsafe's `striptags` and Python's `html.unescape`.

func stripTags(_ text: String) -> String {
    var bytes = Array(text.utf8)
    // Comments first, so a tag inside a comment does not end it early.
    while let start = findBytes(bytes, Array("<!--".utf8)) {
        guard let end = findBytes(bytes, Array("-->".utf8), from: start) else { break }
        bytes.removeSubrange(start..<(end + 3))
    }
    while let start = findBytes(bytes, [UInt8(ascii: "<")]) {
        guard let end = findBytes(bytes, [UInt8(ascii: ">")], from: start) else { break }
        bytes.removeSubrange(start...end)
    }
    let collapsed = (try? pySplit(String(decoding: bytes, as: UTF8.self), nil))?.joined(separator: " ") ?? ""
    return htmlUnescape(collapsed)
}

private let namedEntities: [String: String] = [
    "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}", "copy": "\u{A9}",
    "reg": "\u{AE}", "trade": "\u{2122}", "hellip": "\u{2026}", "mdash": "\u{2014}", "ndash": "\u{2013}",
    "lsquo": "\u{2018}", "rsquo": "\u{2019}", "ldquo": "\u{201C}", "rdquo": "\u{201D}", "laquo": "\u{AB}",
    "raquo": "\u{BB}", "euro": "\u{20AC}", "pound": "\u{A3}", "yen": "\u{A5}", "cent": "\u{A2}",
    "sect": "\u{A7}", "para": "\u{B6}", "deg": "\u{B0}", "plusmn": "\u{B1}", "times": "\u{D7}",
    "divide": "\u{F7}", "middot": "\u{B7}", "bull": "\u{2022}", "shy": "\u{AD}", "iexcl": "\u{A1}",
    "iquest": "\u{BF}", "micro": "\u{B5}", "frac12": "\u{BD}", "frac14": "\u{BC}", "frac34": "\u{BE}",
]
/// Entities html.unescape also accepts without the closing semicolon.
private let legacyEntities: Set<String> = [
    "amp", "lt", "gt", "quot", "nbsp", "copy", "reg", "laquo", "raquo", "pound", "yen", "cent", "sect",
    "para", "deg", "plusmn", "times", "divide", "middot", "shy", "iexcl", "iquest", "micro", "frac12",
    "frac14", "frac34",
]

/// Python's `html.unescape` for numeric references and the common named ones.
func htmlUnescape(_ text: String) -> String {
    guard text.utf8.contains(UInt8(ascii: "&")) else { return text }
    let scalars = Array(text.unicodeScalars)
    var out = ""
    var i = 0
    while i < scalars.count {
        let c = scalars[i]
        guard c == "&", i + 1 < scalars.count else { out.unicodeScalars.append(c); i += 1; continue }
        if scalars[i + 1] == "#" {
            var j = i + 2
            var hex = false
            if j < scalars.count && (scalars[j] == "x" || scalars[j] == "X") { hex = true; j += 1 }
            let digitsStart = j
            while j < scalars.count, hex ? scalars[j].properties.isASCIIHexDigit : (scalars[j].value >= 0x30 && scalars[j].value <= 0x39) { j += 1 }
            if j == digitsStart { out.unicodeScalars.append(c); i += 1; continue }
            let number = UInt32(scalarString(scalars[digitsStart..<j]), radix: hex ? 16 : 10) ?? 0x110000
            if j < scalars.count && scalars[j] == ";" { j += 1 }
            if number == 0 || (number >= 0xD800 && number <= 0xDFFF) || number > 0x10FFFF {
                out += "\u{FFFD}"
            } else if number >= 0x80 && number <= 0x9F, let mapped = windows1252[number] {
                out.unicodeScalars.append(mapped)
            } else if let scalar = Unicode.Scalar(number) {
                out.unicodeScalars.append(scalar)
            }
            i = j
            continue
        }
        var j = i + 1
        while j < scalars.count && j - i <= 32 && (scalars[j].properties.isAlphabetic || isPyDecimal(scalars[j])) && scalars[j].isASCII { j += 1 }
        let name = scalarString(scalars[(i + 1)..<j])
        if j < scalars.count && scalars[j] == ";", let replacement = namedEntities[name] {
            out += replacement
            i = j + 1
            continue
        }
        // Longest legacy prefix without a semicolon.
        var matched = false
        var length = name.unicodeScalars.count
        while length > 1 {
            let prefix = scalarString(name.unicodeScalars.prefix(length))
            if legacyEntities.contains(prefix), let replacement = namedEntities[prefix] {
                out += replacement
                i += 1 + length
                matched = true
                break
            }
            length -= 1
        }
        if !matched { out.unicodeScalars.append(c); i += 1 }
    }
    return out
}

private let windows1252: [UInt32: Unicode.Scalar] = [
    0x80: "\u{20AC}", 0x82: "\u{201A}", 0x83: "\u{0192}", 0x84: "\u{201E}", 0x85: "\u{2026}", 0x86: "\u{2020}",
    0x87: "\u{2021}", 0x88: "\u{02C6}", 0x89: "\u{2030}", 0x8A: "\u{0160}", 0x8B: "\u{2039}", 0x8C: "\u{0152}",
    0x8E: "\u{017D}", 0x91: "\u{2018}", 0x92: "\u{2019}", 0x93: "\u{201C}", 0x94: "\u{201D}", 0x95: "\u{2022}",
    0x96: "\u{2013}", 0x97: "\u{2014}", 0x98: "\u{02DC}", 0x99: "\u{2122}", 0x9A: "\u{0161}", 0x9B: "\u{203A}",
    0x9C: "\u{0153}", 0x9E: "\u{017E}", 0x9F: "\u{0178}",
]
