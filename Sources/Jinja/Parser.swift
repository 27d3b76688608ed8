// Builds the syntax tree from tokens, following Jinja2's parser.py rule by rule so that
// precedence and error messages match.

struct Parser {
    var tokens: [Token]
    var index = 0
    var tagStack: [String] = []
    var endTokenStack: [[String]] = []
    var slots: [String: Int] = [:]
    /// One AttributeName per attribute text: a JSON object remembers what it handed out by
    /// the name's serial, so `service.name` in several places finds the same entry.
    var attributeNames: [String: AttributeName] = [:]
    var names: [String] = []
    /// The text outside tags, each piece appended as a `templateData` node is made.
    var text: [UInt8] = []
    /// Names loaded inside the macro bodies being parsed (innermost last).
    var macroLoads: [Set<String>] = []
    var depth = 0
    /// The line Jinja2 gives the expression node parsed last (for an operator, where its
    /// parse loop stood; for `.x`, `[i]`, `(…)`, `|f` and `is t`, that token's line). Runtime
    /// errors are reported on the line of the outermost node, as Jinja2 reports them.
    var nodeLine = 1
    /// Nesting deeper than this (parentheses, chained operators, filters, blocks) is refused:
    /// Jinja2 itself stops near there with a RecursionError, and evaluation stays far from
    /// the end of the stack.
    static let maximumDepth = 100

    /// Counts one more level of nesting; the caller gives it back with `depth -= n`.
    mutating func deeper() throws(TemplateError) {
        depth += 1
        if depth > Parser.maximumDepth { throw fail("maximum nesting depth exceeded") }
    }

    static let statementKeywords: Set<String> = [
        "for", "if", "block", "extends", "print", "macro", "include", "from", "import", "set", "with", "autoescape",
    ]

    static func parse(source: String) throws(TemplateError) -> Program {
        var parser = Parser(tokens: try Lexer.tokenize(source))
        let body = try parser.subparse(nil)
        var checker = Checker()
        var blocks: [String: BlockDefinition] = [:]
        try checker.collectBlocks(body, into: &blocks)
        try checker.check(body, soft: false)
        return Program(body: body, names: parser.names, blocks: blocks, text: parser.text)
    }

    init(tokens: [Token]) {
        self.tokens = tokens
        let last = tokens.last?.line ?? 1
        self.tokens.append(Token(.eof, line: last))
    }

    // MARK: Token stream

    var current: Token { tokens[index] }
    func look() -> Token { tokens[min(index + 1, tokens.count - 1)] }

    @discardableResult mutating func next() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    func test(_ kind: TokenKind) -> Bool { current.kind == kind }
    func testName(_ name: String) -> Bool { current.kind == .name && current.text == name }

    mutating func skipIf(_ kind: TokenKind) -> Bool {
        if current.kind == kind { next(); return true }
        return false
    }

    mutating func skipIfName(_ name: String) -> Bool {
        if testName(name) { next(); return true }
        return false
    }

    func fail(_ message: String, _ line: Int? = nil) -> TemplateError {
        TemplateError(kind: .syntax, message: message, line: line ?? current.line)
    }

    @discardableResult mutating func expect(_ kind: TokenKind) throws(TemplateError) -> Token {
        guard current.kind == kind else { throw unexpected(kind.description) }
        return next()
    }

    @discardableResult mutating func expectName(_ name: String) throws(TemplateError) -> Token {
        guard testName(name) else { throw unexpected(name) }
        return next()
    }

    func unexpected(_ expected: String) -> TemplateError {
        if current.kind == .eof {
            return fail("unexpected end of template, expected \(reprString(expected)).")
        }
        return fail("expected token \(reprString(expected)), got \(reprString(current.described))")
    }

    mutating func slot(for name: String) -> Int {
        if let existing = slots[name] { return existing }
        let slot = names.count
        names.append(name)
        slots[name] = slot
        return slot
    }

    mutating func attributeName(_ text: String) -> AttributeName {
        if let existing = attributeNames[text] { return existing }
        let name = AttributeName(text)
        attributeNames[text] = name
        return name
    }

    // MARK: Errors for unknown and unclosed tags

    func failUnknownTag(_ name: String?, _ stack: [[String]], line: Int) -> TemplateError {
        var expected = Set<String>()
        for tokens in stack { for token in tokens { expected.insert(token) } }
        let currentlyLooking = stack.last.map { $0.map { reprString($0) }.joined(separator: " or ") }
        var message: [String] = []
        if let name { message.append("Encountered unknown tag \(reprString(name)).") } else { message.append("Unexpected end of template.") }
        if let currentlyLooking, !currentlyLooking.isEmpty {
            if let name, expected.contains(name) {
                message.append("You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for \(currentlyLooking).")
            } else {
                message.append("Jinja was looking for the following tags: \(currentlyLooking).")
            }
        }
        if let innermost = tagStack.last {
            message.append("The innermost block that needs to be closed is \(reprString(innermost)).")
        }
        return fail(message.joined(separator: " "), line)
    }

    func failEOF(_ endTokens: [String]?) -> TemplateError {
        var stack = endTokenStack
        if let endTokens { stack.append(endTokens) }
        return failUnknownTag(nil, stack, line: current.line)
    }

    // MARK: Statements

    mutating func subparse(_ endTokens: [String]?) throws(TemplateError) -> [Node] {
        var body: [Node] = []
        if let endTokens { endTokenStack.append(endTokens) }
        defer { if endTokens != nil { endTokenStack.removeLast() } }
        while current.kind != .eof {
            let token = current
            switch token.kind {
            case .data:
                let start = text.count
                text.append(contentsOf: token.text.utf8)
                body.append(.templateData(start..<text.count))
                next()
            case .variableBegin:
                next()
                let expr = try parseTuple(withCondexpr: true)
                body.append(.output(expr, line: nodeLine))
                try expect(.variableEnd)
            case .blockBegin:
                next()
                if let endTokens, current.kind == .name, endTokens.contains(current.text) {
                    return body
                }
                body.append(contentsOf: try parseStatement())
                try expect(.blockEnd)
            default:
                throw fail("internal parsing error")
            }
        }
        return body
    }

    mutating func parseStatement() throws(TemplateError) -> [Node] {
        let token = current
        guard token.kind == .name else { throw fail("tag name expected", token.line) }
        depth += 1
        defer { depth -= 1 }
        if depth > Parser.maximumDepth { throw fail("maximum nesting depth exceeded", token.line) }
        let name = token.text
        guard Parser.statementKeywords.contains(name) || name == "call" || name == "filter" else {
            throw failUnknownTag(name, endTokenStack, line: token.line)
        }
        tagStack.append(name)
        defer { tagStack.removeLast() }
        switch name {
        case "for": return [try parseFor()]
        case "if": return [try parseIf()]
        case "set": return [try parseSet()]
        case "macro": return [try parseMacro()]
        case "call": return [try parseCallBlock()]
        case "filter": return [try parseFilterBlock()]
        case "with": return [try parseWith()]
        case "autoescape": return [try parseAutoescape()]
        case "block": return [try parseBlock()]
        case "print": return try parsePrint()
        case "extends":
            let line = next().line
            _ = try parseExpression()
            return [.needsLoader(line: line)]
        case "include":
            let line = next().line
            _ = try parseExpression()
            if testName("ignore"), look().kind == .name, look().text == "missing" { next(); next() }
            try parseImportContext()
            return [.needsLoader(line: line)]
        case "import":
            let line = next().line
            _ = try parseExpression()
            try expectName("as")
            _ = try expect(.name)
            try parseImportContext()
            return [.needsLoader(line: line)]
        case "from":
            return [try parseFrom()]
        default:
            throw failUnknownTag(name, endTokenStack, line: token.line)
        }
    }

    mutating func parseImportContext() throws(TemplateError) {
        if (testName("with") || testName("without")), look().kind == .name, look().text == "context" {
            next(); next()
        }
    }

    mutating func parseFrom() throws(TemplateError) -> Node {
        let line = next().line
        _ = try parseExpression()
        try expectName("import")
        var count = 0
        func parseContext(_ parser: inout Parser) -> Bool {
            if parser.current.kind == .name, parser.current.text == "with" || parser.current.text == "without",
               parser.look().kind == .name, parser.look().text == "context" {
                parser.next(); parser.next()
                return true
            }
            return false
        }
        while true {
            if count > 0 { try expect(.comma) }
            if current.kind == .name {
                if parseContext(&self) { break }
                let target = try expect(.name)
                if target.text.hasPrefix("_") {
                    throw TemplateError(kind: .assertion, message: "names starting with an underline can not be imported", line: target.line)
                }
                if skipIfName("as") { _ = try expect(.name) }
                count += 1
                if parseContext(&self) || current.kind != .comma { break }
            } else {
                try expect(.name)
            }
        }
        return .needsLoader(line: line)
    }

    /// Parses `:`? `%}` then the body up to one of `endTokens` (left as the current token).
    mutating func parseStatements(_ endTokens: [String], dropNeedle: Bool = false) throws(TemplateError) -> [Node] {
        _ = skipIf(.colon)
        try expect(.blockEnd)
        let result = try subparse(endTokens)
        if current.kind == .eof { throw failEOF(endTokens) }
        if dropNeedle { next() }
        return result
    }

    mutating func parseFor() throws(TemplateError) -> Node {
        let line = try expectName("for").line
        let target = try parseAssignTarget(extraEndRules: ["in"])
        try expectName("in")
        let iter = try parseTuple(withCondexpr: false, extraEndRules: ["recursive"])
        var test: Expr? = nil
        var testLine = line
        if skipIfName("if") {
            test = try parseExpression()
            testLine = nodeLine
        }
        let recursive = skipIfName("recursive")
        let body = try parseStatements(["endfor", "else"])
        var else_: [Node] = []
        if next().text != "endfor" {
            else_ = try parseStatements(["endfor"], dropNeedle: true)
        }
        return .for(ForNode(target: target, iter: iter, body: body, else_: else_, test: test, testLine: testLine,
                            recursive: recursive, loopSlot: slot(for: "loop"), line: line))
    }

    mutating func parseIf() throws(TemplateError) -> Node {
        var line = try expectName("if").line
        var branches: [(test: Expr, body: [Node], line: Int)] = []
        var else_: [Node] = []
        while true {
            let test = try parseTuple(withCondexpr: false)
            let body = try parseStatements(["elif", "else", "endif"])
            branches.append((test, body, line))
            let token = next()
            if token.text == "elif" {
                line = current.line
                continue
            } else if token.text == "else" {
                else_ = try parseStatements(["endif"], dropNeedle: true)
            }
            break
        }
        return .if(IfNode(branches: branches, else_: else_))
    }

    mutating func parseSet() throws(TemplateError) -> Node {
        let line = next().line
        let target = try parseAssignTarget(withNamespace: true)
        if skipIf(.assign) {
            let expr = try parseTuple()
            return .assign(target, expr, line: line)
        }
        let filter = try parseFilter(nil)
        let body = try parseStatements(["endset"], dropNeedle: true)
        return .assignBlock(target, filter: filter, body: body, line: line)
    }

    mutating func parseWith() throws(TemplateError) -> Node {
        let line = next().line
        var targets: [(Target, Expr)] = []
        while current.kind != .blockEnd {
            if !targets.isEmpty { try expect(.comma) }
            let target = try parseAssignTarget()
            try expect(.assign)
            let value = try parseExpression()
            targets.append((target, value))
        }
        let body = try parseStatements(["endwith"], dropNeedle: true)
        return .with(targets: targets, body: body, line: line)
    }

    mutating func parseAutoescape() throws(TemplateError) -> Node {
        let line = next().line
        let expr = try parseExpression()
        let body = try parseStatements(["endautoescape"], dropNeedle: true)
        return .scopedAutoescape(expr, body: body, line: line)
    }

    mutating func parseBlock() throws(TemplateError) -> Node {
        let line = next().line
        let name = try expect(.name).text
        let scoped = skipIfName("scoped")
        let required = skipIfName("required")
        if current.kind == .sub {
            throw fail("Block names in Jinja have to be valid Python identifiers and may not contain hyphens, use an underscore instead.")
        }
        let body = try parseStatements(["endblock"], dropNeedle: true)
        if required {
            for node in body {
                if case .templateData(let range) = node, !range.isEmpty,
                   String(decoding: text[range], as: UTF8.self).unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) { continue }
                throw fail("Required blocks can only contain comments or whitespace")
            }
        }
        _ = skipIfName(name)
        // A repeated name is refused by the Checker, which gathers the blocks by name.
        return .block(BlockDefinition(name: name, body: body, scoped: scoped, line: line))
    }

    mutating func parsePrint() throws(TemplateError) -> [Node] {
        next()
        var nodes: [Node] = []
        while current.kind != .blockEnd {
            if !nodes.isEmpty { try expect(.comma) }
            let expr = try parseExpression()
            nodes.append(.output(expr, line: nodeLine))
        }
        return nodes
    }

    mutating func parseSignature() throws(TemplateError) -> ([(name: String, slot: Int)], [Expr]) {
        var arguments: [(name: String, slot: Int)] = []
        var defaults: [Expr] = []
        try expect(.lparen)
        while current.kind != .rparen {
            if !arguments.isEmpty { try expect(.comma) }
            let token = try expect(.name)
            if skipIf(.assign) {
                defaults.append(try parseExpression())
            } else if !defaults.isEmpty {
                throw fail("non-default argument follows default argument")
            }
            arguments.append((token.text, slot(for: token.text)))
        }
        try expect(.rparen)
        return (arguments, defaults)
    }

    mutating func makeMacro(name: String, line: Int, arguments: [(name: String, slot: Int)], defaults: [Expr], body: [Node], loads: Set<String>) -> MacroDefinition {
        let argumentNames = Set(arguments.map(\.name))
        return MacroDefinition(
            name: name, slot: slot(for: name), arguments: arguments, defaults: defaults, body: body,
            catchVarargs: loads.contains("varargs") && !argumentNames.contains("varargs"),
            catchKwargs: loads.contains("kwargs") && !argumentNames.contains("kwargs"),
            callerUsed: loads.contains("caller") && !argumentNames.contains("caller"),
            varargsSlot: slot(for: "varargs"), kwargsSlot: slot(for: "kwargs"), callerSlot: slot(for: "caller"), line: line)
    }

    mutating func parseMacro() throws(TemplateError) -> Node {
        let line = next().line
        let name = try expect(.name).text
        let (arguments, defaults) = try parseSignature()
        macroLoads.append([])
        let body = try parseStatements(["endmacro"], dropNeedle: true)
        let loads = macroLoads.removeLast()
        if !macroLoads.isEmpty { macroLoads[macroLoads.count - 1].formUnion(loads) }
        return .macro(makeMacro(name: name, line: line, arguments: arguments, defaults: defaults, body: body, loads: loads))
    }

    mutating func parseCallBlock() throws(TemplateError) -> Node {
        let line = next().line
        var arguments: [(name: String, slot: Int)] = []
        var defaults: [Expr] = []
        if current.kind == .lparen { (arguments, defaults) = try parseSignature() }
        let call = try parseExpression()
        guard case .call = call else { throw fail("expected call", line) }
        macroLoads.append([])
        let body = try parseStatements(["endcall"], dropNeedle: true)
        let loads = macroLoads.removeLast()
        if !macroLoads.isEmpty { macroLoads[macroLoads.count - 1].formUnion(loads) }
        let caller = makeMacro(name: "caller", line: line, arguments: arguments, defaults: defaults, body: body, loads: loads)
        return .callBlock(CallBlockNode(call: call, caller: caller, line: line))
    }

    mutating func parseFilterBlock() throws(TemplateError) -> Node {
        let line = next().line
        guard let filter = try parseFilter(nil, startInline: true) else { throw fail("expected filter") }
        let body = try parseStatements(["endfilter"], dropNeedle: true)
        return .filterBlock(filter: filter, body: body, line: line)
    }

    // MARK: Assignment targets

    mutating func parseAssignTarget(withTuple: Bool = true, extraEndRules: [String]? = nil, withNamespace: Bool = false) throws(TemplateError) -> Target {
        let line = current.line
        let expr: Expr
        if withTuple {
            expr = try parseTuple(simplified: true, extraEndRules: extraEndRules, withNamespace: withNamespace)
        } else {
            expr = try parsePrimary(withNamespace: withNamespace)
        }
        guard let target = makeTarget(expr) else {
            throw fail("can't assign to \(reprString(nodeTypeName(expr)))", line)
        }
        return target
    }

    func makeTarget(_ expr: Expr) -> Target? {
        switch expr {
        case .name(let slot):
            return .name(slot: slot)
        case .tuple(let items):
            var targets: [Target] = []
            for item in items {
                guard let target = makeTarget(item) else { return nil }
                targets.append(target)
            }
            return .tuple(targets)
        case .getattr(.name(let slot), let attribute) where namespaceRefs.contains(names[slot]):
            return .namespaceAttribute(names[slot], slot: slot, attribute: attribute.text)
        default: return nil
        }
    }

    var namespaceRefs: Set<String> = []

    func nodeTypeName(_ expr: Expr) -> String {
        switch expr {
        case .const: return "const"
        case .list: return "list"
        case .dict: return "dict"
        case .tuple: return "tuple"
        case .getattr: return "getattr"
        case .getitem: return "getitem"
        case .call: return "call"
        default: return "expr"
        }
    }

    // MARK: Expressions

    mutating func parseExpression(withCondexpr: Bool = true) throws(TemplateError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        if depth > Parser.maximumDepth { throw fail("maximum nesting depth exceeded") }
        return withCondexpr ? try parseCondexpr() : try parseOr()
    }

    mutating func parseCondexpr() throws(TemplateError) -> Expr {
        var line = current.line
        var expr1 = try parseOr()
        let saved = depth
        defer { depth = saved }
        while skipIfName("if") {
            try deeper()
            let expr2 = try parseOr()
            var expr3: Expr? = nil
            if skipIfName("else") { expr3 = try parseCondexpr() }
            expr1 = .condExpr(test: expr2, expr1: expr1, expr2: expr3, line: line)
            nodeLine = line
            line = current.line
        }
        return expr1
    }

    mutating func parseOr() throws(TemplateError) -> Expr {
        var line = current.line
        var left = try parseAnd()
        let saved = depth
        defer { depth = saved }
        while skipIfName("or") {
            try deeper()
            left = .or(left, try parseAnd())
            nodeLine = line
            line = current.line
        }
        return left
    }

    mutating func parseAnd() throws(TemplateError) -> Expr {
        var line = current.line
        var left = try parseNot()
        let saved = depth
        defer { depth = saved }
        while skipIfName("and") {
            try deeper()
            left = .and(left, try parseNot())
            nodeLine = line
            line = current.line
        }
        return left
    }

    mutating func parseNot() throws(TemplateError) -> Expr {
        if testName("not") {
            let line = next().line
            depth += 1
            defer { depth -= 1 }
            if depth > Parser.maximumDepth { throw fail("maximum nesting depth exceeded") }
            let operand = try parseNot()
            nodeLine = line
            return .not(operand)
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws(TemplateError) -> Expr {
        let expr = try parseMath1()
        var ops: [(CompareOperator, Expr)] = []
        let saved = depth
        defer { depth = saved }
        while true {
            try deeper()
            let op: CompareOperator?
            switch current.kind {
            case .eq: op = .eq
            case .ne: op = .ne
            case .lt: op = .lt
            case .lteq: op = .lteq
            case .gt: op = .gt
            case .gteq: op = .gteq
            default: op = nil
            }
            if let op {
                next()
                ops.append((op, try parseMath1()))
            } else if skipIfName("in") {
                ops.append((.in, try parseMath1()))
            } else if testName("not"), look().kind == .name, look().text == "in" {
                next(); next()
                ops.append((.notin, try parseMath1()))
            } else {
                break
            }
        }
        if ops.isEmpty { return expr }
        nodeLine = current.line
        return .compare(expr, ops)
    }

    mutating func parseMath1() throws(TemplateError) -> Expr {
        var line = current.line
        var left = try parseConcat()
        let saved = depth
        defer { depth = saved }
        while current.kind == .add || current.kind == .sub {
            try deeper()
            let op: BinaryOperator = current.kind == .add ? .add : .sub
            next()
            left = .binary(op, left, try parseConcat())
            nodeLine = line
            line = current.line
        }
        return left
    }

    mutating func parseConcat() throws(TemplateError) -> Expr {
        let line = current.line
        var args = [try parseMath2()]
        while current.kind == .tilde {
            next()
            args.append(try parseMath2())
        }
        if args.count == 1 { return args[0] }
        nodeLine = line
        return .concat(args)
    }

    mutating func parseMath2() throws(TemplateError) -> Expr {
        var line = current.line
        var left = try parsePow()
        let saved = depth
        defer { depth = saved }
        while true {
            let op: BinaryOperator
            switch current.kind {
            case .mul: op = .mul
            case .div: op = .div
            case .floordiv: op = .floordiv
            case .mod: op = .mod
            default: return left
            }
            try deeper()
            next()
            left = .binary(op, left, try parsePow())
            nodeLine = line
            line = current.line
        }
    }

    mutating func parsePow() throws(TemplateError) -> Expr {
        var line = current.line
        var left = try parseUnary()
        let saved = depth
        defer { depth = saved }
        while current.kind == .pow {
            try deeper()
            next()
            left = .binary(.pow, left, try parseUnary())
            nodeLine = line
            line = current.line
        }
        return left
    }

    mutating func parseUnary(withFilter: Bool = true) throws(TemplateError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        if depth > Parser.maximumDepth { throw fail("maximum nesting depth exceeded") }
        var node: Expr
        if current.kind == .sub {
            let line = next().line
            node = .neg(try parseUnary(withFilter: false))
            nodeLine = line
        } else if current.kind == .add {
            let line = next().line
            node = .pos(try parseUnary(withFilter: false))
            nodeLine = line
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    mutating func parsePrimary(withNamespace: Bool = false) throws(TemplateError) -> Expr {
        let token = current
        nodeLine = token.line
        switch token.kind {
        case .name:
            next()
            switch token.text {
            case "true", "True": return .const(.bool(true))
            case "false", "False": return .const(.bool(false))
            case "none", "None": return .const(.none)
            default:
                if withNamespace, current.kind == .dot {
                    next()
                    let attribute = try expect(.name)
                    namespaceRefs.insert(token.text)
                    noteLoad(token.text)
                    return .getattr(.name(slot: slot(for: token.text)), attributeName(attribute.text))
                }
                noteLoad(token.text)
                return .name(slot: slot(for: token.text))
            }
        case .string:
            next()
            var text = token.text
            while current.kind == .string {
                text += current.text
                next()
            }
            return .const(.string(text))
        case .integer, .float:
            next()
            return .const(token.literal)
        case .lparen:
            next()
            let node = try parseTuple(explicitParentheses: true)
            try expect(.rparen)
            return node
        case .lbracket:
            let node = try parseList()
            nodeLine = token.line
            return node
        case .lbrace:
            let node = try parseDict()
            nodeLine = token.line
            return node
        default:
            throw fail("unexpected \(reprString(token.described))", token.line)
        }
    }

    mutating func noteLoad(_ name: String) {
        if !macroLoads.isEmpty { macroLoads[macroLoads.count - 1].insert(name) }
    }

    mutating func parseTuple(simplified: Bool = false, withCondexpr: Bool = true, extraEndRules: [String]? = nil,
                             explicitParentheses: Bool = false, withNamespace: Bool = false) throws(TemplateError) -> Expr {
        var args: [Expr] = []
        var isTuple = false
        var line = current.line
        while true {
            if !args.isEmpty { try expect(.comma) }
            if isTupleEnd(extraEndRules) { break }
            if simplified {
                args.append(try parsePrimary(withNamespace: withNamespace))
            } else {
                args.append(try parseExpression(withCondexpr: withCondexpr))
            }
            if current.kind == .comma { isTuple = true } else { break }
            line = current.line
        }
        if isTuple || args.isEmpty { nodeLine = line }
        if !isTuple {
            if let first = args.first { return first }
            if !explicitParentheses {
                throw fail("Expected an expression, got \(reprString(current.described))")
            }
        }
        return .tuple(args)
    }

    func isTupleEnd(_ extraEndRules: [String]?) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .rparen: return true
        default:
            // Jinja2 passes the rules to `test_any` as one tuple, which never matches a token,
            // so the extra end rules have no effect there; keep its behaviour.
            _ = extraEndRules
            return false
        }
    }

    mutating func parseList() throws(TemplateError) -> Expr {
        try expect(.lbracket)
        var items: [Expr] = []
        while current.kind != .rbracket {
            if !items.isEmpty { try expect(.comma) }
            if current.kind == .rbracket { break }
            items.append(try parseExpression())
        }
        try expect(.rbracket)
        return .list(items)
    }

    mutating func parseDict() throws(TemplateError) -> Expr {
        try expect(.lbrace)
        var items: [(Expr, Expr)] = []
        while current.kind != .rbrace {
            if !items.isEmpty { try expect(.comma) }
            if current.kind == .rbrace { break }
            let key = try parseExpression()
            try expect(.colon)
            let value = try parseExpression()
            items.append((key, value))
        }
        try expect(.rbrace)
        return .dict(items)
    }

    mutating func parsePostfix(_ start: Expr) throws(TemplateError) -> Expr {
        var node = start
        let saved = depth
        defer { depth = saved }
        while true {
            try deeper()
            switch current.kind {
            case .dot, .lbracket: node = try parseSubscript(node)
            case .lparen: node = try parseCall(node)
            default: return node
            }
        }
    }

    mutating func parseFilterExpr(_ start: Expr) throws(TemplateError) -> Expr {
        var node = start
        let saved = depth
        defer { depth = saved }
        while true {
            try deeper()
            if current.kind == .pipe {
                node = try parseFilter(node) ?? node
            } else if testName("is") {
                node = try parseTest(node)
            } else if current.kind == .lparen {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    mutating func parseSubscript(_ node: Expr) throws(TemplateError) -> Expr {
        let token = next()
        defer { nodeLine = token.line }
        if token.kind == .dot {
            let attribute = current
            next()
            if attribute.kind == .name {
                return .getattr(node, attributeName(attribute.text))
            }
            guard attribute.kind == .integer else { throw fail("expected name or number", attribute.line) }
            return .getitem(node, .const(attribute.literal))
        }
        // lbracket
        var args: [Expr] = []
        while current.kind != .rbracket {
            if !args.isEmpty { try expect(.comma) }
            args.append(try parseSubscribed())
        }
        try expect(.rbracket)
        return .getitem(node, args.count == 1 ? args[0] : .tuple(args))
    }

    mutating func parseSubscribed() throws(TemplateError) -> Expr {
        var start: Expr? = nil
        if current.kind == .colon {
            next()
        } else {
            let node = try parseExpression()
            if current.kind != .colon { return node }
            next()
            start = node
        }
        var stop: Expr? = nil
        if current.kind != .colon, current.kind != .rbracket, current.kind != .comma {
            stop = try parseExpression()
        }
        var step: Expr? = nil
        if current.kind == .colon {
            next()
            if current.kind != .rbracket, current.kind != .comma { step = try parseExpression() }
        }
        return .slice(start: start, stop: stop, step: step)
    }

    mutating func parseCallArgs() throws(TemplateError) -> CallArguments {
        let token = try expect(.lparen)
        var args: [Expr] = []
        var kwargs: [(String, Expr)] = []
        var dynArgs: Expr? = nil
        var dynKwargs: Expr? = nil
        var requireComma = false
        func ensure(_ condition: Bool, _ parser: Parser) throws(TemplateError) {
            if !condition { throw parser.fail("invalid syntax for function call expression", token.line) }
        }
        while current.kind != .rparen {
            if requireComma {
                try expect(.comma)
                if current.kind == .rparen { break }
            }
            if current.kind == .mul {
                try ensure(dynArgs == nil && dynKwargs == nil, self)
                next()
                dynArgs = try parseExpression()
            } else if current.kind == .pow {
                try ensure(dynKwargs == nil, self)
                next()
                dynKwargs = try parseExpression()
            } else if current.kind == .name, look().kind == .assign {
                try ensure(dynKwargs == nil, self)
                let key = current.text
                next(); next()
                kwargs.append((key, try parseExpression()))
            } else {
                try ensure(dynArgs == nil && dynKwargs == nil && kwargs.isEmpty, self)
                args.append(try parseExpression())
            }
            requireComma = true
        }
        try expect(.rparen)
        return CallArguments(args: args, kwargs: kwargs, dynArgs: dynArgs, dynKwargs: dynKwargs)
    }

    mutating func parseCall(_ node: Expr) throws(TemplateError) -> Expr {
        let line = current.line
        let arguments = try parseCallArgs()
        nodeLine = line
        return .call(node, arguments, line: line)
    }

    mutating func parseFilter(_ start: Expr?, startInline: Bool = false) throws(TemplateError) -> Expr? {
        var node = start
        var inline = startInline
        let saved = depth
        defer { depth = saved }
        while current.kind == .pipe || inline {
            try deeper()
            if !inline { next() }
            let token = try expect(.name)
            var name = token.text
            while current.kind == .dot {
                next()
                name += "." + (try expect(.name)).text
            }
            let arguments = current.kind == .lparen ? try parseCallArgs() : CallArguments()
            node = .filter(node, FilterNode(name: name, arguments: arguments, function: filters[name], line: token.line))
            nodeLine = token.line
            inline = false
        }
        return node
    }

    mutating func parseTest(_ node: Expr) throws(TemplateError) -> Expr {
        let token = next()
        let negated = skipIfName("not")
        var name = try expect(.name).text
        while current.kind == .dot {
            next()
            name += "." + (try expect(.name)).text
        }
        var arguments = CallArguments()
        switch current.kind {
        case .lparen:
            arguments = try parseCallArgs()
        case .name, .string, .integer, .float, .lbracket, .lbrace:
            if testName("else") || testName("or") || testName("and") { break }
            if testName("is") { throw fail("You cannot chain multiple tests with is") }
            var argument = try parsePrimary()
            argument = try parsePostfix(argument)
            arguments = CallArguments(args: [argument])
        default: break
        }
        let test = Expr.test(node, TestNode(name: name, arguments: arguments, function: tests[name], line: token.line))
        nodeLine = token.line
        return negated ? .not(test) : test
    }
}
