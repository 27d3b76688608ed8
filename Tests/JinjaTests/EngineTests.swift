import Jinja
import XCTest

/// The engine's core (lexer, parser, evaluator, value model) on small templates whose
/// Jinja2 output is known.
final class EngineTests: XCTestCase {
    private func render(_ source: String, _ json: String = "{}") throws -> String {
        try Template(source: source).render(jsonContext: json)
    }

    private func error(_ source: String, _ json: String = "{}") -> TemplateError? {
        do {
            _ = try Template(source: source).render(jsonContext: json)
            return nil
        } catch let error as TemplateError {
            return error
        } catch {
            return nil
        }
    }

    func testSingleTrailingNewlineIsDropped() throws {
        XCTAssertEqual(try render("a\n"), "a")
        XCTAssertEqual(try render("a\n\n"), "a\n")
        XCTAssertEqual(try render("a\r\nb\r\n"), "a\nb")
    }

    func testWhitespaceControlStripsAroundTags() throws {
        XCTAssertEqual(try render("a  \n  {%- if true -%}  \n b {%- endif %}"), "ab")
        XCTAssertEqual(try render("x {{- 1 -}} y"), "x1y")
        XCTAssertEqual(try render("a {#- c -#} b"), "ab")
    }

    func testRawBlockKeepsDelimiters() throws {
        XCTAssertEqual(try render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}")
        XCTAssertEqual(try render("a {%- raw -%} b {%- endraw -%} c"), "abc")
    }

    func testIntegersAreUnbounded() throws {
        XCTAssertEqual(try render("{{ 2 ** 100 }}"), "1267650600228229401496703205376")
        XCTAssertEqual(try render("{{ 9223372036854775807 + 1 }}"), "9223372036854775808")
        XCTAssertEqual(try render("{{ -(2 ** 70) // 3 }}"), "-393530540239137101142")
    }

    func testDivisionAndModuloFollowPython() throws {
        XCTAssertEqual(try render("{{ 7 / 2 }} {{ 6 / 3 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7.5 // 2 }}"), "3.5 2.0 -4 2 3.0")
    }

    func testFloatsPrintLikePythonRepr() throws {
        XCTAssertEqual(try render("{{ 1.0 }} {{ 1e16 }} {{ 0.1 }} {{ 1e-5 }} {{ 123456789012345.6 }}"),
                       "1.0 1e+16 0.1 1e-05 123456789012345.6")
    }

    func testContainersPrintWithPythonRepr() throws {
        XCTAssertEqual(try render("{{ [1, 'a', none, true] }} {{ {'a': 1} }} {{ (1,) }} {{ \"it's\" ~ [\"it's\"]|string }}"),
                       "[1, 'a', None, True] {'a': 1} (1,) it's[\"it's\"]")
    }

    func testDictKeepsJSONOrderAndPythonKeyEquality() throws {
        XCTAssertEqual(try render("{% for k in d %}{{ k }}{% endfor %}", #"{"d": {"z": 1, "a": 2, "m": 3}}"#), "zam")
        XCTAssertEqual(try render("{{ {1: 'a', 1.0: 'b', true: 'c'} }}"), "{1: 'c'}")
    }

    func testStringsIndexAndSliceByCodePoint() throws {
        XCTAssertEqual(try render("{{ s[1] }}{{ s[-1] }}{{ s[::-1] }}", #"{"s": "añ😀"}"#), "ñ😀😀ña")
    }

    func testPercentFormatting() throws {
        XCTAssertEqual(try render("{{ '%d_%d' % (1, 2) }} {{ '%05.1f|%-4s|%x' % (3.14159, 'ab', 255) }} {{ '%(a)s' % {'a': 1} }}"),
                       "1_2 003.1|ab  |ff 1")
    }

    func testUndefinedPrintsEmptyIteratesEmptyAndRaisesOnAttribute() throws {
        XCTAssertEqual(try render("[{{ missing }}]{% for x in missing %}x{% else %}empty{% endfor %}"), "[]empty")
        XCTAssertEqual(error("{{ missing.attr }}")?.message, "'missing' is undefined")
        XCTAssertEqual(error("{{ d.nope.x }}", #"{"d": {}}"#)?.message, "'dict object' has no attribute 'nope'")
        XCTAssertEqual(error("{{ missing + 1 }}")?.kind, .undefined)
    }

    func testLoopObject() throws {
        let source = "{% for x in 'abc' %}{{ loop.index }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
            + "{{ loop.previtem or '-' }}{{ loop.nextitem or '-' }}{{ loop.cycle('o', 'e') }};{% endfor %}"
        XCTAssertEqual(try render(source), "12TrueFalse3-bo;21FalseFalse3ace;30FalseTrue3b-o;")
    }

    func testLoopFilterAndElse() throws {
        XCTAssertEqual(try render("{% for x in [1, 2, 3, 4] if x > 2 %}{{ loop.index }}:{{ x }} {% endfor %}"), "1:3 2:4 ")
        XCTAssertEqual(try render("{% for x in [] %}x{% else %}none{% endfor %}"), "none")
    }

    func testRecursiveLoop() throws {
        let json = #"{"tree": [{"n": "a", "c": [{"n": "b", "c": []}]}]}"#
        XCTAssertEqual(try render("{% for i in tree recursive %}{{ i.n }}{{ loop.depth }}({{ loop(i.c) }}){% endfor %}", json), "a1(b2())")
    }

    func testSetInsideLoopDoesNotLeakButNamespaceDoes() throws {
        XCTAssertEqual(try render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = i %}{% endfor %}{{ x }}"), "1")
        XCTAssertEqual(try render("{% set ns = namespace(n=0) %}{% for i in [1, 2] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "3")
    }

    func testTupleUnpackingInForAndSet() throws {
        XCTAssertEqual(try render("{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}{% set x, y = 'ab' %}{{ y }}"), "37b")
    }

    func testMacroWithDefaultsVarargsKwargsAndCaller() throws {
        let source = "{% macro m(a, b=a * 2) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }} {{ m(1, 2, 3, k=4) }}"
        XCTAssertEqual(try render(source), "12(){} 12(3,){'k': 4}")
        XCTAssertEqual(try render("{% macro w() %}[{{ caller(1) }}]{% endmacro %}{% call(x) w() %}got {{ x }}{% endcall %}"), "[got 1]")
    }

    func testBlockSetAndFilterBlockAndWith() throws {
        XCTAssertEqual(try render("{% set x | upper %}ab{% endset %}{{ x }}{% filter lower %}CD{% endfilter %}{% with y = 3 %}{{ y }}{% endwith %}{{ y }}"),
                       "ABcd3")
    }

    func testAutoescapeBlockEscapesOutput() throws {
        XCTAssertEqual(try render("{% autoescape true %}{{ s }}{% endautoescape %}{{ s }}", #"{"s": "<a&'>"}"#),
                       "&lt;a&amp;&#39;&gt;<a&'>")
    }

    func testOperatorPrecedence() throws {
        XCTAssertEqual(try render("{{ 2 + 3 * 4 ** 2 }} {{ -2 ** 2 }} {{ not 1 == 2 }} {{ 1 if false else 2 }} {{ 'a' ~ 1 * 2 }}"),
                       "50 4 True 2 a2")
        XCTAssertEqual(error("{{ 1 + 2 ~ 'a' }}")?.message, "unsupported operand type(s) for +: 'int' and 'str'")
    }

    func testComparisonChainsAndMembership() throws {
        XCTAssertEqual(try render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' in 'cat' }} {{ 2 not in [1] }} {{ 'k' in {'k': 1} }}"),
                       "True False True True True")
    }

    func testGlobals() throws {
        XCTAssertEqual(try render("{% for i in range(1, 7, 2) %}{{ i }}{% endfor %} {{ dict(a=1) }} {% set c = cycler('x', 'y') %}{{ c.next() }}{{ c.next() }}{{ c.next() }} {% set j = joiner('+') %}{{ j() }}a{{ j() }}b"),
                       "135 {'a': 1} xyx a+b")
    }

    func testSyntaxErrorsCarryJinjaMessagesAndLines() {
        XCTAssertEqual(error("{{ 1 }")?.message, "unexpected '}'")
        XCTAssertEqual(error("a\n{% foo %}")?.message, "Encountered unknown tag 'foo'.")
        XCTAssertEqual(error("a\n{% foo %}")?.line, 2)
        XCTAssertEqual(error("{{ 1 x }}")?.message, "expected token 'end of print statement', got 'x'")
        XCTAssertEqual(error("{{ x|nope }}")?.message, "No filter named 'nope'.")
        XCTAssertEqual(error("{{ x is nope }}")?.message, "No test named 'nope'.")
        XCTAssertEqual(error("{% if x %}")?.message,
                       "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.")
    }

    func testRuntimeErrorsCarryTheirLine() {
        let failure = error("a\nb\n{{ 1 // 0 }}")
        XCTAssertEqual(failure?.kind, .zeroDivision)
        XCTAssertEqual(failure?.message, "integer division or modulo by zero")
        XCTAssertEqual(failure?.line, 3)
    }

    func testDeepNestingIsAnErrorNotACrash() {
        XCTAssertNotNil(error("{{" + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + "}}"))
        XCTAssertNotNil(error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"))
    }
}
