// Splits template source into tokens the way Jinja2's lexer does with default delimiters:
// text, `{{ … }}`, `{% … %}`, `{# … #}`, whitespace control with `-`, `{% raw %}`.

enum TokenKind: Equatable {
    case data, variableBegin, variableEnd, blockBegin, blockEnd
    case name, string, integer, float
    case add, sub, div, floordiv, mul, mod, pow, tilde
    case lbracket, rbracket, lparen, rparen, lbrace, rbrace
    case eq, ne, gt, gteq, lt, lteq, assign, dot, colon, pipe, comma, semicolon
    case eof

    /// Jinja2's `describe_token` text for the kind.
    var description: String {
        switch self {
        case .data: return "template data / text"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name: return "name"
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .add: return "+"
        case .sub: return "-"
        case .div: return "/"
        case .floordiv: return "//"
        case .mul: return "*"
        case .mod: return "%"
        case .pow: return "**"
        case .tilde: return "~"
        case .lbracket: return "["
        case .rbracket: return "]"
        case .lparen: return "("
        case .rparen: return ")"
        case .lbrace: return "{"
        case .rbrace: return "}"
        case .eq: return "=="
        case .ne: return "!="
        case .gt: return ">"
        case .gteq: return ">="
        case .lt: return "<"
        case .lteq: return "<="
        case .assign: return "="
        case .dot: return "."
        case .colon: return ":"
        case .pipe: return "|"
        case .comma: return ","
        case .semicolon: return ";"
        case .eof: return "end of template"
        }
    }
}

enum Literal: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case bigInt(BigInt)
    case float(Double)
    case string(String)
}

struct Token {
    var kind: TokenKind
    /// Name or string text; data text.
    var text: String
    var literal: Literal
    var line: Int

    init(_ kind: TokenKind, _ text: String = "", line: Int, literal: Literal = .none) {
        self.kind = kind
        self.text = text
        self.line = line
        self.literal = literal
    }

    /// Jinja2's `describe_token`: a name is its own text.
    var described: String { kind == .name ? text : kind.description }
}

struct Lexer {
    let bytes: [UInt8]
    var position = 0
    var line = 1
    var tokens: [Token] = []

    private static let lbrace = UInt8(ascii: "{"), rbrace = UInt8(ascii: "}")
    private static let percent = UInt8(ascii: "%"), hash = UInt8(ascii: "#")
    private static let minus = UInt8(ascii: "-"), plus = UInt8(ascii: "+")
    private static let newline = UInt8(ascii: "\n")

    /// Newlines normalised to `\n`; one trailing newline dropped (keep_trailing_newline=False).
    static func normalize(_ source: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(source.utf8.count)
        var iterator = source.utf8.makeIterator()
        var pendingCR = false
        while let byte = iterator.next() {
            if pendingCR {
                pendingCR = false
                if byte == newline { continue }
            }
            if byte == UInt8(ascii: "\r") {
                out.append(newline)
                pendingCR = true
            } else {
                out.append(byte)
            }
        }
        if out.last == newline { out.removeLast() }
        return out
    }

    init(source: String) {
        bytes = Lexer.normalize(source)
    }

    static func tokenize(_ source: String) throws(TemplateError) -> [Token] {
        var lexer = Lexer(source: source)
        try lexer.run()
        return lexer.tokens
    }

    func text(_ start: Int, _ end: Int) -> String {
        String(decoding: bytes[start..<end], as: UTF8.self)
    }

    mutating func advance(to end: Int) {
        var i = position
        while i < end {
            if bytes[i] == Lexer.newline { line += 1 }
            i += 1
        }
        position = end
    }

    func syntaxError(_ message: String, line: Int) -> TemplateError {
        TemplateError(kind: .syntax, message: message, line: line)
    }

    /// Python's `\s` (Unicode whitespace) at `index`; returns the byte length or 0.
    func whitespaceLength(at index: Int) -> Int {
        guard index < bytes.count else { return 0 }
        let byte = bytes[index]
        if byte == 0x20 || (byte >= 0x09 && byte <= 0x0d) || (byte >= 0x1c && byte <= 0x1f) { return 1 }
        if byte < 0x80 { return 0 }
        let (scalar, length) = decodeScalar(at: index)
        if let scalar, scalar.properties.isWhitespace || scalar.value == 0x85 { return length }
        return 0
    }

    func decodeScalar(at index: Int) -> (Unicode.Scalar?, Int) {
        let byte = bytes[index]
        var length = 1
        if byte >= 0xf0 { length = 4 } else if byte >= 0xe0 { length = 3 } else if byte >= 0xc0 { length = 2 }
        guard index + length <= bytes.count else { return (nil, 1) }
        var decoder = UTF8()
        var iterator = bytes[index..<(index + length)].makeIterator()
        if case .scalarValue(let scalar) = decoder.decode(&iterator) { return (scalar, length) }
        return (nil, 1)
    }

    func skipWhitespace(from index: Int) -> Int {
        var i = index
        while true {
            let n = whitespaceLength(at: i)
            if n == 0 { return i }
            i += n
        }
    }

    /// Python's `str.rstrip()` on bytes[start..<end]: the new end.
    func rstrip(_ start: Int, _ end: Int) -> Int {
        var e = end
        while e > start {
            // Step back over one scalar.
            var s = e - 1
            while s > start, bytes[s] & 0xc0 == 0x80 { s -= 1 }
            if whitespaceLength(at: s) == e - s { e = s } else { break }
        }
        return e
    }

    func matches(_ literal: String, at index: Int) -> Bool {
        var i = index
        for byte in literal.utf8 {
            guard i < bytes.count, bytes[i] == byte else { return false }
            i += 1
        }
        return true
    }

    /// `{%(-|+|)\s*raw\s*(-%}\s*|%})` at index: the end of the match and whether `-` came first.
    func matchRawBegin(at index: Int) -> (end: Int, stripBefore: Bool)? {
        var i = index + 2
        var strip = false
        if i < bytes.count, bytes[i] == Lexer.minus { strip = true; i += 1 } else if i < bytes.count, bytes[i] == Lexer.plus { i += 1 }
        i = skipWhitespace(from: i)
        guard matches("raw", at: i) else { return nil }
        i = skipWhitespace(from: i + 3)
        if matches("-%}", at: i) { return (skipWhitespace(from: i + 3), strip) }
        if matches("%}", at: i) { return (i + 2, strip) }
        return nil
    }

    mutating func run() throws(TemplateError) {
        while position < bytes.count {
            // Find the next tag start.
            var i = position
            var found: (start: Int, kind: UInt8, raw: (end: Int, stripBefore: Bool)?)? = nil
            while i + 1 < bytes.count {
                if bytes[i] == Lexer.lbrace {
                    let next = bytes[i + 1]
                    if next == Lexer.percent {
                        found = (i, next, matchRawBegin(at: i))
                        break
                    }
                    if next == Lexer.lbrace || next == Lexer.hash {
                        found = (i, next, nil)
                        break
                    }
                }
                i += 1
            }
            guard let tag = found else {
                tokens.append(Token(.data, text(position, bytes.count), line: line))
                advance(to: bytes.count)
                return
            }
            let sign: UInt8? = tag.start + 2 < bytes.count ? bytes[tag.start + 2] : nil
            let strip = tag.raw?.stripBefore ?? (sign == Lexer.minus)
            let dataEnd = strip ? rstrip(position, tag.start) : tag.start
            if dataEnd > position { tokens.append(Token(.data, text(position, dataEnd), line: line)) }
            advance(to: tag.start)
            var afterTag = tag.start + 2
            if tag.raw == nil, sign == Lexer.minus || sign == Lexer.plus { afterTag += 1 }
            if let raw = tag.raw {
                try lexRaw(from: raw.end)
            } else if tag.kind == Lexer.hash {
                try lexComment(from: afterTag)
            } else {
                let isBlock = tag.kind == Lexer.percent
                tokens.append(Token(isBlock ? .blockBegin : .variableBegin, line: line))
                advance(to: afterTag)
                try lexTag(block: isBlock)
            }
        }
    }

    mutating func lexComment(from start: Int) throws(TemplateError) {
        var i = start
        while i + 1 < bytes.count {
            if bytes[i] == Lexer.hash, bytes[i + 1] == Lexer.rbrace {
                var end = i + 2
                if i > start, bytes[i - 1] == Lexer.minus { end = skipWhitespace(from: end) }
                advance(to: end)
                return
            }
            i += 1
        }
        throw syntaxError("Missing end of comment tag", line: line)
    }

    mutating func lexRaw(from start: Int) throws(TemplateError) {
        // Find `{%(-|+|)\s*endraw\s*(+%}|-%}\s*|%})`.
        var i = start
        let startLine = line
        while i + 1 < bytes.count {
            if bytes[i] == Lexer.lbrace, bytes[i + 1] == Lexer.percent {
                var j = i + 2
                var strip = false
                if j < bytes.count, bytes[j] == Lexer.minus { strip = true; j += 1 } else if j < bytes.count, bytes[j] == Lexer.plus { j += 1 }
                j = skipWhitespace(from: j)
                if matches("endraw", at: j) {
                    j = skipWhitespace(from: j + 6)
                    var end: Int? = nil
                    if matches("+%}", at: j) { end = j + 3 } else if matches("-%}", at: j) { end = skipWhitespace(from: j + 3) } else if matches("%}", at: j) { end = j + 2 }
                    if let end {
                        advance(to: start)
                        let dataEnd = strip ? rstrip(start, i) : i
                        if dataEnd > start { tokens.append(Token(.data, text(start, dataEnd), line: line)) }
                        advance(to: end)
                        return
                    }
                }
            }
            i += 1
        }
        throw syntaxError("Missing end of raw directive", line: startLine)
    }

    mutating func lexTag(block: Bool) throws(TemplateError) {
        var balancing: [UInt8] = []
        while true {
            // Whitespace.
            let afterSpace = skipWhitespace(from: position)
            if afterSpace != position { advance(to: afterSpace) }
            guard position < bytes.count else { return }
            // End of tag, only when brackets are balanced.
            if balancing.isEmpty {
                if block {
                    if matches("-%}", at: position) {
                        tokens.append(Token(.blockEnd, line: line))
                        advance(to: skipWhitespace(from: position + 3))
                        return
                    }
                    if matches("+%}", at: position) {
                        tokens.append(Token(.blockEnd, line: line))
                        advance(to: position + 3)
                        return
                    }
                    if matches("%}", at: position) {
                        tokens.append(Token(.blockEnd, line: line))
                        advance(to: position + 2)
                        return
                    }
                } else {
                    if matches("-}}", at: position) {
                        tokens.append(Token(.variableEnd, line: line))
                        advance(to: skipWhitespace(from: position + 3))
                        return
                    }
                    if matches("}}", at: position) {
                        tokens.append(Token(.variableEnd, line: line))
                        advance(to: position + 2)
                        return
                    }
                }
            }
            let byte = bytes[position]
            if let (end, literal) = matchFloat(at: position) {
                tokens.append(Token(.float, text(position, end), line: line, literal: literal))
                advance(to: end)
                continue
            }
            if let (end, literal) = matchInteger(at: position) {
                tokens.append(Token(.integer, text(position, end), line: line, literal: literal))
                advance(to: end)
                continue
            }
            let nameEnd = matchName(at: position)
            if nameEnd > position {
                let name = text(position, nameEnd)
                if let first = name.unicodeScalars.first, first.properties.numericType != nil || !(first == "_" || first.properties.isXIDStart) {
                    throw syntaxError("Invalid character in identifier", line: line)
                }
                tokens.append(Token(.name, name, line: line))
                advance(to: nameEnd)
                continue
            }
            if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                if let end = matchString(at: position) {
                    let tokenLine = line
                    let value = try unescape(position + 1, end - 1, line: tokenLine)
                    tokens.append(Token(.string, value, line: tokenLine, literal: .string(value)))
                    advance(to: end)
                    continue
                }
            }
            if let (kind, length) = matchOperator(at: position) {
                switch kind {
                case .lbrace: balancing.append(Lexer.rbrace)
                case .lparen: balancing.append(UInt8(ascii: ")"))
                case .lbracket: balancing.append(UInt8(ascii: "]"))
                case .rbrace, .rparen, .rbracket:
                    guard let expected = balancing.popLast() else {
                        throw syntaxError("unexpected '\(Character(Unicode.Scalar(byte)))'", line: line)
                    }
                    if expected != byte {
                        throw syntaxError("unexpected '\(Character(Unicode.Scalar(byte)))', expected '\(Character(Unicode.Scalar(expected)))'", line: line)
                    }
                default: break
                }
                tokens.append(Token(kind, line: line))
                advance(to: position + length)
                continue
            }
            let (scalar, _) = decodeScalar(at: position)
            let character = scalar.map { reprString(String($0)) } ?? "'\\ufffd'"
            let offset = String(decoding: bytes[0..<position], as: UTF8.self).unicodeScalars.count
            throw syntaxError("unexpected char \(character) at \(offset)", line: line)
        }
    }

    func isDigit(_ index: Int) -> Bool { index < bytes.count && bytes[index] >= 48 && bytes[index] <= 57 }

    /// `(\d+_)*\d+` from index; returns the end or nil.
    func matchDigits(at index: Int) -> Int? {
        guard isDigit(index) else { return nil }
        var i = index
        while true {
            while isDigit(i) { i += 1 }
            if i < bytes.count, bytes[i] == UInt8(ascii: "_"), isDigit(i + 1) { i += 1; continue }
            return i
        }
    }

    func matchFloat(at index: Int) -> (Int, Literal)? {
        if index > 0, bytes[index - 1] == UInt8(ascii: ".") { return nil }
        guard let intEnd = matchDigits(at: index) else { return nil }
        var i = intEnd
        var fractional = false
        if i < bytes.count, bytes[i] == UInt8(ascii: "."), let fracEnd = matchDigits(at: i + 1) {
            i = fracEnd
            fractional = true
        }
        var exponent = false
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            var j = i + 1
            if j < bytes.count, bytes[j] == UInt8(ascii: "+") || bytes[j] == UInt8(ascii: "-") { j += 1 }
            if let expEnd = matchDigits(at: j) { i = expEnd; exponent = true }
        }
        guard fractional || exponent else { return nil }
        let literal = text(index, i).replacingUnderscores()
        return (i, .float(Double(literal) ?? .infinity))
    }

    func matchInteger(at index: Int) -> (Int, Literal)? {
        guard isDigit(index) else { return nil }
        if bytes[index] == UInt8(ascii: "0"), index + 1 < bytes.count {
            let prefix = bytes[index + 1] | 0x20
            let radix: Int? = prefix == UInt8(ascii: "b") ? 2 : prefix == UInt8(ascii: "o") ? 8 : prefix == UInt8(ascii: "x") ? 16 : nil
            if let radix {
                var i = index + 2
                var value = BigInt(0)
                var any = false
                while i < bytes.count {
                    var j = i
                    if bytes[j] == UInt8(ascii: "_") { j += 1 }
                    guard j < bytes.count, let digit = digitValue(bytes[j]), digit < radix else { break }
                    value = value.multipliedBySmall(UInt32(radix)).addingSmall(UInt32(digit))
                    any = true
                    i = j + 1
                }
                if any { return (i, literalInt(value)) }
            }
        }
        if bytes[index] == UInt8(ascii: "0") {
            var i = index + 1
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: "0") { i += 1 } else if bytes[i] == UInt8(ascii: "_"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "0") { i += 2 } else { break }
            }
            return (i, .int(0))
        }
        guard let end = matchDigits(at: index) else { return nil }
        let digits = text(index, end).replacingUnderscores()
        if let small = Int(digits) { return (end, .int(small)) }
        return (end, literalInt(BigInt(digits) ?? BigInt(0)))
    }

    func literalInt(_ value: BigInt) -> Literal {
        if let small = value.intValue { return .int(small) }
        return .bigInt(value)
    }

    func digitValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: return Int(byte) - 48
        case 97...102: return Int(byte) - 87
        case 65...70: return Int(byte) - 55
        default: return nil
        }
    }

    /// `[\w]+` in Unicode terms.
    func matchName(at index: Int) -> Int {
        var i = index
        while i < bytes.count {
            let byte = bytes[i]
            if byte < 0x80 {
                if (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 95 { i += 1; continue }
                return i
            }
            let (scalar, length) = decodeScalar(at: i)
            guard let scalar, scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar.properties.isXIDContinue else { return i }
            i += length
        }
        return i
    }

    func matchString(at index: Int) -> Int? {
        let quote = bytes[index]
        var i = index + 1
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\\") { i += 2; continue }
            if byte == quote { return i + 1 }
            i += 1
        }
        return nil
    }

    func matchOperator(at index: Int) -> (TokenKind, Int)? {
        let byte = bytes[index]
        let next: UInt8 = index + 1 < bytes.count ? bytes[index + 1] : 0
        switch byte {
        case UInt8(ascii: "*"): return next == UInt8(ascii: "*") ? (.pow, 2) : (.mul, 1)
        case UInt8(ascii: "/"): return next == UInt8(ascii: "/") ? (.floordiv, 2) : (.div, 1)
        case UInt8(ascii: "="): return next == UInt8(ascii: "=") ? (.eq, 2) : (.assign, 1)
        case UInt8(ascii: "!"): return next == UInt8(ascii: "=") ? (.ne, 2) : nil
        case UInt8(ascii: ">"): return next == UInt8(ascii: "=") ? (.gteq, 2) : (.gt, 1)
        case UInt8(ascii: "<"): return next == UInt8(ascii: "=") ? (.lteq, 2) : (.lt, 1)
        case UInt8(ascii: "+"): return (.add, 1)
        case UInt8(ascii: "-"): return (.sub, 1)
        case UInt8(ascii: "%"): return (.mod, 1)
        case UInt8(ascii: "~"): return (.tilde, 1)
        case UInt8(ascii: "["): return (.lbracket, 1)
        case UInt8(ascii: "]"): return (.rbracket, 1)
        case UInt8(ascii: "("): return (.lparen, 1)
        case UInt8(ascii: ")"): return (.rparen, 1)
        case UInt8(ascii: "{"): return (.lbrace, 1)
        case UInt8(ascii: "}"): return (.rbrace, 1)
        case UInt8(ascii: "."): return (.dot, 1)
        case UInt8(ascii: ":"): return (.colon, 1)
        case UInt8(ascii: "|"): return (.pipe, 1)
        case UInt8(ascii: ","): return (.comma, 1)
        case UInt8(ascii: ";"): return (.semicolon, 1)
        default: return nil
        }
    }

    /// Python's "unicode-escape" decoding of a string literal's body.
    func unescape(_ start: Int, _ end: Int, line: Int) throws(TemplateError) -> String {
        var hasBackslash = false
        for i in start..<end where bytes[i] == UInt8(ascii: "\\") { hasBackslash = true; break }
        if !hasBackslash { return text(start, end) }
        let scalars = Array(text(start, end).unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        func hexValue(_ count: Int, _ what: String) throws(TemplateError) -> UInt32 {
            var value: UInt32 = 0
            for k in 0..<count {
                guard i + 1 + k < scalars.count, let digit = scalars[i + 1 + k].properties.numericType != nil || "abcdefABCDEF".unicodeScalars.contains(scalars[i + 1 + k]) ? digitValue(UInt8(truncatingIfNeeded: scalars[i + 1 + k].value)) : nil, scalars[i + 1 + k].isASCII else {
                    throw TemplateError(kind: .syntax, message: "truncated \(what) escape", line: line)
                }
                value = value * 16 + UInt32(digit)
            }
            i += count
            return value
        }
        while i < scalars.count {
            let c = scalars[i]
            guard c == "\\", i + 1 < scalars.count else { out.append(c); i += 1; continue }
            i += 1
            let e = scalars[i]
            switch e {
            case "\n": break
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0c}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0b}")
            case "0"..."7":
                var value = e.value - 48
                var k = 1
                while k < 3, i + 1 < scalars.count, scalars[i + 1].value >= 48, scalars[i + 1].value <= 55 {
                    value = value * 8 + scalars[i + 1].value - 48
                    i += 1
                    k += 1
                }
                if let scalar = Unicode.Scalar(value) { out.append(scalar) }
            case "x":
                let value = try hexValue(2, "\\xXX")
                if let scalar = Unicode.Scalar(value) { out.append(scalar) }
            case "u":
                let value = try hexValue(4, "\\uXXXX")
                guard let scalar = Unicode.Scalar(value) else { throw TemplateError(kind: .syntax, message: "illegal Unicode character", line: line) }
                out.append(scalar)
            case "U":
                let value = try hexValue(8, "\\UXXXXXXXX")
                guard let scalar = Unicode.Scalar(value) else { throw TemplateError(kind: .syntax, message: "illegal Unicode character", line: line) }
                out.append(scalar)
            case "N":
                throw TemplateError(kind: .syntax, message: "malformed \\N character escape", line: line)
            default:
                out.append("\\")
                out.append(e)
            }
            i += 1
        }
        return String(out)
    }
}

extension String {
    func replacingUnderscores() -> String {
        guard utf8.contains(UInt8(ascii: "_")) else { return self }
        return String(unicodeScalars.filter { $0 != "_" })
    }
}
