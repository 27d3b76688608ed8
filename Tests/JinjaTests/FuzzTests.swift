import Foundation
import Jinja
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Compiles and renders a large number of generated templates: mixtures of valid fragments,
/// random tokens, random bytes, mutations, deep nesting, unbalanced blocks and unbounded
/// recursion. Template errors are fine; a crash or a hang is a failure.
///
/// Environment:
/// - `JINJA_FUZZ_COUNT`  number of templates (default 100000)
/// - `JINJA_FUZZ_SEED`   seed of the generator (default 3)
/// - `JINJA_FUZZ_ONLY`   render only template number N of the seed (to reproduce a failure)
/// - `JINJA_FUZZ_PRINT`  print every template before rendering it
/// - `JINJA_FUZZ_KINDS`  only these kinds of template, comma-separated, of: structured,
///   tokens, bytes, mutations, nesting, recursion (to look past one kind's failures)
///
/// On a crash (signal) or a hang (no progress for `hangSeconds`) the test writes the
/// template's number and text to stderr before the process dies.
///
/// Bounded work: the generator never writes a template whose correct rendering is
/// expensive, so a slow template is always an engine bug. Loops iterate at most 6 items and
/// nest at most 3 deep (deep-nesting templates loop over one-item lists); `range`, `*`,
/// `**`, and padding filters take only small literal operands, never `big` or an
/// expression; random-token templates contain no `*`, `**`, `range` or padding at all.
/// Unbounded recursion (a macro or a recursive loop calling itself forever) is generated
/// on purpose: the engine must stop it with an error, as Jinja2 stops it with
/// RecursionError.
final class FuzzTests: XCTestCase {
    static let hangSeconds = 20

    static let context = """
        {"items": [1, 2, 3], "name": "web", "s": "héllo, wörld", "n": null, "t": true, "f": 1.5,
         "big": 1180591620717411303424, "empty": [], "d": {"a": 1, "b": [1, 2], "c": {"x": "y"}},
         "hosts": ["^api\\\\..*$", "www.example.com"], "users": [{"name": "ann", "age": 31},
         {"name": "bob", "age": 27}], "pods": {"p1": {"status": {"podIP": "10.0.0.1"}},
         "p2": {"status": {}}}}
        """

    func testGeneratedTemplatesNeverCrashOrHang() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["JINJA_FUZZ_COUNT"].flatMap(Int.init) ?? 100_000
        let seed = environment["JINJA_FUZZ_SEED"].flatMap(UInt64.init) ?? 3
        let only = environment["JINJA_FUZZ_ONLY"].flatMap(Int.init)
        let printEach = environment["JINJA_FUZZ_PRINT"] != nil
        let kinds = environment["JINJA_FUZZ_KINDS"].map { Set($0.split(separator: ",").map(String.init)) }
        let indices = only.map { $0...$0 } ?? 0...(count - 1)

        FuzzWatch.install(hangSeconds: Self.hangSeconds)
        defer { FuzzWatch.finish() }

        let start = Date()
        var tried = 0
        var rendered = 0
        var compileErrors: [String: Int] = [:]
        var renderErrors: [String: Int] = [:]
        var badLines: [String] = []
        for index in indices {
            var generator = TemplateGenerator(seed: seed, index: index)
            let (kind, source) = generator.template()
            if let kinds, !kinds.contains(kind) { continue }
            tried += 1
            FuzzWatch.record(index: index, seed: seed, source: source)
            if printEach { print("--- fuzz template \(index)\n\(source)\n---") }
            let template: Template
            do {
                template = try Template(source: source, name: "fuzz")
            } catch {
                compileErrors[error.kind.rawValue, default: 0] += 1
                if !Self.lineIsPlausible(error.line, in: source), badLines.count < 10 {
                    badLines.append("#\(index): compile error at line \(error.line): \(error.message)")
                }
                continue
            }
            do {
                _ = try template.render(jsonContext: Self.context)
                rendered += 1
            } catch let error as TemplateError {
                renderErrors[error.kind.rawValue, default: 0] += 1
                if !Self.lineIsPlausible(error.line, in: source), badLines.count < 10 {
                    badLines.append("#\(index): render error at line \(error.line): \(error.kind.rawValue): \(error.message)")
                }
            } catch {
                XCTFail("#\(index): render threw a non-template error \(error)")
            }
        }
        let seconds = Date().timeIntervalSince(start)
        print("FuzzTests: \(tried) templates (seed \(seed)) in \(String(format: "%.1f", seconds)) s: "
              + "\(rendered) rendered, compile errors \(compileErrors.sorted { $0.key < $1.key }), "
              + "render errors \(renderErrors.sorted { $0.key < $1.key })")
        for problem in badLines {
            XCTFail("error line outside the template: \(problem)")
        }
        if only == nil && kinds == nil {
            // A generator that only produced syntax errors would prove nothing about rendering.
            XCTAssertGreaterThan(rendered, tried / 5, "too few generated templates rendered")
        }
    }

    /// Errors carry a 1-based line inside the template (the line after the last one for an
    /// error at the very end of a template ending in a newline).
    static func lineIsPlausible(_ line: Int, in source: String) -> Bool {
        var lines = 1
        for byte in source.utf8 where byte == UInt8(ascii: "\n") { lines += 1 }
        for byte in source.utf8 where byte == UInt8(ascii: "\r") { lines += 1 }
        return line >= 1 && line <= lines
    }
}

// MARK: - Crash and hang reporting

/// Keeps the current template where a signal handler can write it, and a watchdog thread
/// that reports a template on which no progress happened for too long.
enum FuzzWatch {
    static let capacity = 1 << 20
    nonisolated(unsafe) static var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    nonisolated(unsafe) static var length = 0
    static let progress = Atomic<Int>(0)
    static let finished = Atomic<Bool>(false)
    static let signals = [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE]
    nonisolated(unsafe) static var previousActions: [sigaction] = []

    static func record(index: Int, seed: UInt64, source: String) {
        var text = "\nFuzzTests: template #\(index) of seed \(seed) (rerun with JINJA_FUZZ_SEED=\(seed) JINJA_FUZZ_ONLY=\(index)):\n"
        text += source
        text += "\n--- end of template\n"
        let bytes = Array(text.utf8.prefix(capacity))
        bytes.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { buffer.update(from: base, count: source.count) }
        }
        length = bytes.count
        progress.add(1, ordering: .relaxed)
    }

    static func dump() {
        _ = write(2, buffer, length)
    }

    static func install(hangSeconds: Int) {
        finished.store(false, ordering: .relaxed)
        let stackSize = 1 << 16
        var stack = stack_t()
        stack.ss_sp = UnsafeMutableRawPointer.allocate(byteCount: stackSize, alignment: 16)
        stack.ss_size = stackSize
        stack.ss_flags = 0
        sigaltstack(&stack, nil)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            let header: StaticString = "\nFuzzTests: the engine crashed (signal)"
            _ = write(2, header.utf8Start, header.utf8CodeUnitCount)
            FuzzWatch.dump()
            raise(signal)
        }
        action.sa_flags = Int32(SA_ONSTACK) | Int32(bitPattern: UInt32(SA_RESETHAND))
        sigemptyset(&action.sa_mask)
        previousActions = signals.map { signal in
            var previous = sigaction()
            sigaction(signal, &action, &previous)
            return previous
        }
        Thread.detachNewThread {
            var last = -1
            var stalled = 0
            while !finished.load(ordering: .relaxed) {
                sleep(1)
                let now = progress.load(ordering: .relaxed)
                if now == last { stalled += 1 } else { stalled = 0; last = now }
                if stalled >= hangSeconds && !finished.load(ordering: .relaxed) {
                    let header = "\nFuzzTests: no progress for \(hangSeconds) s, the engine hangs on"
                    _ = header.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
                    dump()
                    exit(1)
                }
            }
        }
    }

    /// Stops the watchdog and gives the signals back to whoever handled them before, so a
    /// later test's crash is not reported as a fuzz template's.
    static func finish() {
        finished.store(true, ordering: .relaxed)
        for (signal, previous) in zip(signals, previousActions) {
            var action = previous
            sigaction(signal, &action, nil)
        }
    }
}

// MARK: - Template generator

/// SplitMix64: small, fast, and the same sequence on every platform.
struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 0..<bound
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    mutating func oneIn(_ n: Int) -> Bool { below(n) == 0 }
    mutating func pick<T>(_ options: [T]) -> T { options[below(options.count)] }
}

struct TemplateGenerator {
    var rng: SplitMix64
    /// Names bound by enclosing `for`/`set`/macro parameters, usable in expressions.
    var locals: [String] = []
    var loopDepth = 0
    var macroNames: [String] = []

    init(seed: UInt64, index: Int) {
        rng = SplitMix64(state: seed &* 0x2545_F491_4F6C_DD1D ^ UInt64(index))
        _ = rng.next()
    }

    /// The kind of template (see JINJA_FUZZ_KINDS) and its text.
    mutating func template() -> (kind: String, source: String) {
        switch rng.below(100) {
        // Nesting and recursion templates come from a few patterns and are slow to reject,
        // so they are a small share.
        case 0..<50: return ("structured", structured())
        case 50..<68: return ("tokens", randomTokens())
        case 68..<76: return ("bytes", randomBytes())
        case 76..<95: return ("mutations", mutate(structured()))
        case 95..<98: return ("nesting", deepNesting())
        default: return ("recursion", unboundedRecursion())
        }
    }

    // MARK: Structured templates

    mutating func structured() -> String {
        var out = ""
        for _ in 0..<(1 + rng.below(4)) { out += statement(depth: 1 + rng.below(3)) }
        if rng.oneIn(8) { out += "\n" }
        return out
    }

    mutating func body(depth: Int) -> String {
        var out = ""
        for _ in 0..<(1 + rng.below(3)) { out += statement(depth: depth - 1) }
        return out
    }

    mutating func open(_ inner: String) -> String {
        (rng.oneIn(5) ? "{%- " : "{% ") + inner + (rng.oneIn(5) ? " -%}" : " %}")
    }

    mutating func statement(depth: Int) -> String {
        if depth <= 0 { return leaf() }
        switch rng.below(17) {
        case 0, 1, 2: return leaf()
        case 3, 4:
            var out = open("if \(expression(depth: 2))") + body(depth: depth)
            for _ in 0..<rng.below(3) { out += open("elif \(expression(depth: 2))") + body(depth: depth) }
            if rng.oneIn(2) { out += open("else") + body(depth: depth) }
            return out + open("endif")
        case 5, 6:
            guard loopDepth < 3 else { return leaf() }
            let target = rng.pick(["x", "y", "item", "k, v", "a, b", "(p, q)"])
            let iterable = target.contains(",")
                ? rng.pick(["d.items()", "d.iteritems()", "users|dictsort", "[[1, 2], [3, 4]]", "pods.items()", "items|batch(2)", "s"])
                : rng.pick(["items", "range(\(rng.below(7)))", "range(1, \(rng.below(7)), 2)", "d", "s", "users", "empty",
                            "missing", "n", "d.values()", "pods.itervalues()", "hosts", "[1, 'a', none]", "items|reverse",
                            "range(3)|map('string')", "d.b", "big", "items[::-1]"])
            let recursive = rng.oneIn(6)
            var header = "for \(target) in \(iterable)"
            if rng.oneIn(4) { header += " if \(expression(depth: 1))" }
            if recursive { header += " recursive" }
            let names = target.filter { $0.isLetter || $0 == "," }.split(separator: ",").map(String.init)
            let saved = locals
            locals += names + ["loop"]
            loopDepth += 1
            var inner = body(depth: depth)
            if rng.oneIn(3) { inner += "{{ loop.\(rng.pick(loopAttributes)) }}" }
            if recursive && rng.oneIn(2) { inner += "{{ loop(\(rng.pick(["[]", "empty", "[1]|select('odd')", "d.b if loop.depth < 3 else []"]))) }}" }
            loopDepth -= 1
            locals = saved
            var out = open(header) + inner
            if rng.oneIn(4) { out += open("else") + body(depth: depth) }
            return out + open("endfor")
        case 7:
            let name = rng.pick(["v", "w", "total", "x"])
            locals.append(name)
            return open("set \(name) = \(expression(depth: 3))")
        case 8:
            let name = rng.pick(["blk", "w"])
            let out = open("set \(name)\(rng.oneIn(3) ? " | upper" : "")") + body(depth: depth) + open("endset")
            locals.append(name)
            return out
        case 9:
            locals.append("ns")
            return open("set ns = namespace(count=\(rng.below(5)), items=[])")
                + body(depth: depth)
                + open("set ns.count = ns.count + \(rng.below(3))") + "{{ ns.count }}"
        case 10:
            let name = "m\(macroNames.count)"
            let parameters = rng.pick(["", "a", "a, b=2", "a, b='x', c=none"])
            let saved = locals
            locals += parameters.split(separator: ",").map { String($0.split(separator: "=")[0]).trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty } + ["varargs", "kwargs"]
            if rng.oneIn(3) { locals.append("caller") }
            let definition = open("macro \(name)(\(parameters))") + body(depth: depth) + open("endmacro")
            locals = saved
            macroNames.append(name)
            let arguments = rng.pick(["", "1", "1, 2", "'a', b=3", "*items", "x=1", "1, 2, 3, 4"])
            if rng.oneIn(3) {
                return definition + open("call \(name)(\(arguments))") + body(depth: depth) + open("endcall")
            }
            return definition + "{{ \(name)(\(arguments)) }}"
        case 11:
            return open("filter \(rng.pick(["upper", "trim", "replace('a', 'b')", "indent(2)", "center(9)", "title|lower", "e"]))")
                + body(depth: depth) + open("endfilter")
        case 12:
            let saved = locals
            locals += ["wa", "wb"]
            let out = open("with wa = \(expression(depth: 2)), wb = \(expression(depth: 1))") + body(depth: depth) + open("endwith")
            locals = saved
            return out
        case 13:
            return open("autoescape \(rng.pick(["true", "false"]))") + body(depth: depth) + open("endautoescape")
        case 14:
            return "{% raw %}" + rng.pick(["{{ x }}", "{% if %}", "plain", "{#", ""]) + "{% endraw %}"
        case 15:
            // Unbalanced or misplaced block tags, now and then.
            guard rng.oneIn(3) else { return leaf() }
            return rng.pick(["{% endif %}", "{% else %}", "{% endfor %}", "{% if x %}", "{% for a in b %}",
                             "{% elif 1 %}", "{% endmacro %}", "{% call %}", "{% endset %}", "{% block b %}"])
        default:
            return "{# \(rng.pick(["comment", "{{ x }}", "multi\nline", "-"])) #}"
        }
    }

    let loopAttributes = ["index", "index0", "revindex", "revindex0", "first", "last", "length", "depth",
                          "depth0", "previtem", "nextitem", "cycle('a', 'b')", "changed(1)", "nope"]

    mutating func leaf() -> String {
        switch rng.below(6) {
        case 0: return rng.pick(["text", " ", "\n", "a b\n  c", "é✓", "{", "}", "%", "#", "\t", "  \n"])
        case 1: return rng.pick(["{{- ", "{{ "]) + expression(depth: 1 + rng.below(3)) + rng.pick([" -}}", " }}"])
        default: return "{{ " + expression(depth: rng.below(3)) + " }}"
        }
    }

    let names = ["items", "name", "s", "n", "t", "f", "big", "empty", "d", "hosts", "users", "pods", "missing",
                 "loop", "range", "dict", "namespace", "cycler", "joiner", "lipsum", "true", "none", "None"]

    mutating func atom() -> String {
        switch rng.below(10) {
        case 0: return String(rng.below(21) - 5)
        case 1: return rng.pick(["0.5", "1.0", "-0.0", "1e300", "2.5e-3", "0.1", "3.0", "1e16"])
        case 2: return rng.pick(["'a'", "\"héllo\"", "''", "'%s-%d'", "'{} {}'", "'a,b,,c'", "'  pad  '", "'^x'", "'%(a)s'", "'x\\ny'"])
        case 3: return rng.pick(["none", "true", "false", "123456789012345678901234567890"])
        case 4: return rng.pick(["[1, 2, 3]", "[]", "('a', 1)", "{'a': 1, 'b': none}", "{}", "(1,)", "[[1], [2, 3]]"])
        default:
            let pool = names + locals + macroNames
            return rng.pick(pool)
        }
    }

    mutating func smallInt() -> String { String(rng.below(10)) }

    mutating func expression(depth: Int) -> String {
        if depth <= 0 { return atom() }
        let d = depth - 1
        switch rng.below(22) {
        case 0, 1, 2: return atom()
        case 3:
            let op = rng.pick(["+", "-", "/", "//", "%", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and", "or"])
            return "\(expression(depth: d)) \(op) \(expression(depth: d))"
        case 4:
            // Multiplication and power only of small literals or short strings: bounded results.
            return rng.pick(["\(smallInt()) * \(smallInt())", "'ab' * \(smallInt())", "[1, 2] * \(smallInt())",
                             "\(smallInt()) ** \(smallInt())", "2.5 ** \(smallInt())", "\(smallInt()) ** -\(smallInt())",
                             "'x' * big", "big * 2", "(-\(smallInt())) ** 0.5"])
        case 5: return "not \(expression(depth: d))"
        case 6: return "-\(expression(depth: d))"
        case 7: return "(\(expression(depth: d)))"
        case 8: return "\(expression(depth: d)) if \(expression(depth: d)) else \(expression(depth: d))"
        case 9: return "\(expression(depth: d)) if \(expression(depth: d))"
        case 10, 11: return "\(expression(depth: d))|\(filter())"
        case 12: return "\(expression(depth: d)) is \(rng.oneIn(4) ? "not " : "")\(test())"
        case 13: return "\(expression(depth: d)).\(rng.pick(["a", "b", "c", "x", "status", "podIP", "name", "0", "1", "items", "nope"]))"
        case 14: return "\(expression(depth: d))[\(rng.pick(["0", "-1", "'a'", "'b'", "1:", ":2", "::-1", "::2", "1:-1", "none", "big", "'x'", "::0"]))]"
        case 15: return "\(expression(depth: d)).\(method())"
        case 16: return "'\(rng.pick(["%s", "%d", "%r", "%5.2f", "%-5s|", "%x", "%o", "%e", "%%", "%s %s", "%(a)s", "%c", "%05d"]))' % \(rng.pick(["1", "'a'", "(1, 2)", "d", "big", "none", "(s,)", "[1]", "1.5", "()"]))"
        case 17: return "[\(expression(depth: d)), \(expression(depth: d))]"
        case 18: return "{\(expression(depth: d)): \(expression(depth: d))}"
        case 19: return rng.pick(["range(\(rng.below(7)))", "range(\(smallInt()), \(smallInt()))", "range(10, 0, -\(1 + rng.below(3)))",
                                  "range(0, 5, 0)", "range('a')", "dict(a=1, b=2)", "namespace(a=1)", "cycler(1, 2).next()",
                                  "joiner(',')()", "lipsum(1, false, 3, 5)", "range(big)|length", "dict(d, z=3)"])
        case 20:
            if let name = macroNames.last { return "\(name)(\(expression(depth: d)))" }
            return "\(atom())(\(expression(depth: d)))"
        default: return "\(expression(depth: d)) ~ \(expression(depth: d))"
        }
    }

    mutating func filter() -> String {
        rng.pick([
            "upper", "lower", "length", "count", "default('z')", "default(1, true)", "d", "join(',')", "join", "first", "last",
            "list", "string", "int", "float", "abs", "trim", "title", "capitalize", "reverse", "sort", "sort(reverse=true)",
            "unique", "e", "escape", "safe", "dictsort", "items", "wordcount", "round", "round(1, 'floor')", "sum", "min", "max",
            "replace('a', 'bb')", "center(\(rng.below(20)))", "indent(\(rng.below(5)))", "indent(2, true)", "truncate(\(rng.below(12)))",
            "wordwrap(\(1 + rng.below(9)))", "batch(\(1 + rng.below(3)))", "slice(\(1 + rng.below(3)))", "format(1)",
            "map('upper')", "map(attribute='name')", "select('odd')", "reject('none')", "selectattr('age')",
            "rejectattr('name', 'equalto', 'ann')", "groupby('name')", "tojson", "urlencode", "xmlattr", "striptags",
            "filesizeformat", "pprint", "attr('a')", "forceescape", "urlize", "random|string", "re_escape", "int('x')",
            "float(1.5)", "string|length", "unknownfilter", "map('nofilter')", "sum(attribute='age')", "batch(0)",
        ])
    }

    mutating func test() -> String {
        rng.pick([
            "defined", "undefined", "none", "number", "string", "mapping", "iterable", "sequence", "odd", "even",
            "divisibleby(3)", "divisibleby 0", "in([1, 2])", "in 'abc'", "sameas none", "eq(1)", "lt 3", "callable",
            "lower", "upper", "true", "false", "boolean", "integer", "float", "escaped", "filter", "test",
            "ne(2)", "gt(big)", "nosuchtest",
        ])
    }

    mutating func method() -> String {
        rng.pick([
            "upper()", "lower()", "split()", "split(',')", "split(',', 1)", "rsplit(',', 1)", "startswith('h')",
            "endswith(('a', 'o'))", "strip()", "strip('h')", "replace('l', 'L', 1)", "format(1, 2)", "format(a=1)",
            "find('l')", "count('l')", "title()", "capitalize()", "center(\(rng.below(15)), '*')", "ljust(\(rng.below(15)))",
            "rjust(\(rng.below(15)))", "zfill(\(rng.below(12)))", "isdigit()", "isalpha()", "splitlines()", "partition(',')",
            "join(['a', 'b'])", "items()", "keys()", "values()", "get('a')", "get('z', 0)", "itervalues()", "iteritems()",
            "iterkeys()", "has_key('a')", "index(1)", "count(1)", "swapcase()", "nomethod()", "index('zz')", "split('')",
        ])
    }

    // MARK: Random tokens, bytes and mutations

    static let tokens = [
        "{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", "+%}", "{%+", " ", " ", " ", "\n", "-", "+", "/", "//",
        "%", "~", "==", "!=", "<", ">", "<=", ">=", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "'", "\"", "'a'",
        "\"b\"", "0", "1", "2", "7", "-1", "1.5", "1e3", "if", "elif", "else", "endif", "for", "in", "endfor", "set", "endset",
        "macro", "endmacro", "call", "endcall", "filter", "endfilter", "with", "endwith", "raw", "endraw", "is", "not", "and",
        "or", "recursive", "loop", "x", "items", "d", "s", "n", "missing", "true", "none", "upper", "length", "default",
        "join", "defined", "odd", "namespace", "caller", "varargs", "block", "endblock", "autoescape", "text", "é", "✓",
        "\t", "\r\n", "\\", "#", "$", "`", "import", "include", "extends", "as", "from",
    ]

    mutating func randomTokens() -> String {
        var out = ""
        for _ in 0..<(1 + rng.below(40)) { out += rng.pick(Self.tokens) }
        return out
    }

    mutating func randomBytes() -> String {
        let interesting: [UInt8] = Array("{}%#-+'\"\n\r ()[]|.~=!<>abc0123\\".utf8)
        var bytes: [UInt8] = []
        for _ in 0..<rng.below(120) {
            if rng.oneIn(3) {
                bytes.append(UInt8(truncatingIfNeeded: rng.next()))
            } else {
                bytes.append(rng.pick(interesting))
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func mutate(_ source: String) -> String {
        var scalars = Array(source.unicodeScalars)
        for _ in 0..<(1 + rng.below(4)) {
            guard !scalars.isEmpty else { break }
            let at = rng.below(scalars.count)
            switch rng.below(4) {
            case 0: scalars.remove(at: at)
            case 1: scalars.insert(rng.pick(Array("{}%#-'\"()[]|.,:=".unicodeScalars)), at: at)
            case 2: scalars.removeSubrange(at..<min(scalars.count, at + rng.below(20)))
            default: scalars = Array(scalars[..<at])
            }
        }
        var out = ""
        out.unicodeScalars.append(contentsOf: scalars)
        return out
    }

    // MARK: Deep nesting and recursion

    mutating func deepNesting() -> String {
        let depth = 1 + rng.below(rng.pick([100, 1000, 3000]))
        func repeated(_ text: String, _ count: Int) -> String { String(repeating: text, count: count) }
        switch rng.below(16) {
        case 0: return "{{ " + repeated("(", depth) + "1" + repeated(")", depth) + " }}"
        case 1: return "{{ " + repeated("[", depth) + "1" + repeated("]", depth) + " }}"
        case 2: return "{{ " + repeated("not ", depth) + "x }}"
        case 3: return "{{ " + repeated("-", depth) + "1 }}"
        case 4: return repeated("{% if true %}", depth) + "deep" + repeated("{% endif %}", depth)
        case 5: return repeated("{% for i in [1] %}", depth) + "{{ i }}{{ loop.depth }}" + repeated("{% endfor %}", depth)
        case 6: return "{{ s" + repeated("|upper", depth) + " }}"
        case 7: return "{{ d" + repeated(".a", depth) + " }}"
        case 8: return "{{ " + repeated("{'a': ", depth) + "1" + repeated("}", depth) + " }}"
        case 9: return "{{ 1" + repeated(" + 1", depth) + " }}|{{ 's'" + repeated(" ~ 's'", depth) + " }}"
        case 10: return repeated("{% filter upper %}", depth) + "x" + repeated("{% endfilter %}", depth)
        case 11: return "{{ " + repeated("x if x else ", depth) + "y }}"
        case 12: return repeated("{% if x %}", depth) + "unclosed"
        case 13: return "{{ 1 " + repeated("** 1 ", depth) + "}}|{{ " + repeated("dict(a=", depth) + "1" + repeated(")", depth) + " }}"
        case 14:
            var out = ""
            for level in 0..<min(depth, 300) { out += "{% macro m\(level)() %}" }
            for _ in 0..<min(depth, 300) { out += "{% endmacro %}" }
            return out + "{{ m0() }}"
        default: return repeated("{% set x %}", depth) + "x" + repeated("{% endset %}", depth) + "{{ x }}"
        }
    }

    mutating func unboundedRecursion() -> String {
        rng.pick([
            "{% macro m(x) %}{{ m(x) }}{% endmacro %}{{ m(1) }}",
            "{% macro m(x) %}{{ m(x + 1) }}{% endmacro %}{{ m(0) }}",
            "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
            "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
            "{% for x in items recursive %}{{ x }}{{ loop(items) }}{% endfor %}",
            "{% macro m() %}{% call m() %}x{% endcall %}{% endmacro %}{{ m() }}",
            "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{{ m() }}{% endcall %}",
            "{% macro m(n) %}{% if n > 0 %}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(\(rng.pick([10, 100, 500, 10000]))) }}",
            "{% set ns = namespace(f=none) %}{% macro m() %}{{ m() ~ m() }}{% endmacro %}{{ m()|length }}",
        ])
    }
}
