#!/usr/bin/env python3
"""Renders random templates with Python's jinja2 and with the engine, and prints every
difference in output, error message or error line. A search tool for new differential
cases, not a test: what it finds becomes a case under Fixtures/cases once understood.

Usage:
    compare-random.py WATCHER MODE [COUNT] [SEED]

WATCHER is a built kube-haproxy-watcher (e.g. .build/debug/kube-haproxy-watcher), COUNT
defaults to 1000, SEED to 1. With COMPARE_RANDOM_KEEP=DIR in the environment, each differing
template and its context are also written to DIR as N.j2 and N.json. MODE is one of:
    expressions   one {{ expression }} of literals, variables, operators, filters, tests,
                  methods, %-formatting, subscripts and conditionals
    statements    nested for/if/set/macro/call/filter/with/raw/autoescape blocks with
                  whitespace control, loop attributes and namespaces
    seeds         the seed's example templates (Fixtures/cases/haproxy/seed-*-typical) with
                  random, often odd, Kubernetes-shaped contexts

Known jinja2 artefacts it reports and that the engine does not copy: constant folding of
literal-only expressions ({{ 1 or 2|nosuchfilter }} renders 1), the line of an error in a
{% with %} assignment (jinja2 reports the previous statement's line), printing of the
iterators |unique and |reverse return, complex results of a negative number ** a fraction.
"""

import copy
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import traceback

import jinja2

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "cases")


class Expressions:
    context = {"i": 7, "n": -3, "z": 0, "f": 2.5, "g": -0.5, "big": 2**70, "s": "Hello, World", "e": "",
               "u": "héllo wörld", "l": [3, 1, 2], "t": ["b", "a", "c"], "d": {"b": 1, "a": 2}, "none": None,
               "users": [{"name": "ann", "age": 31}, {"name": "Bob", "age": 27}],
               "nested": {"x": {"y": [1, {"z": "deep"}]}}, "flag": True}
    atoms = ["i", "n", "z", "f", "g", "big", "s", "e", "u", "l", "t", "d", "none", "flag", "users", "nested", "0",
             "1", "2", "-1", "3.0", "0.1", "1e3", "'a'", "'abc'", "''", "'  x '", "[1, 2]", "('a', 1)",
             "{'k': 'v'}", "true", "false", "10", "2**65", "1.5e16"]
    operators = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and",
                 "or", "**"]
    filters = ["upper", "lower", "length", "first", "last", "list", "string", "int", "float", "abs", "trim",
               "title", "capitalize", "sort", "join(',')", "join", "sum", "min", "max", "round", "round(1)",
               "default('D')", "tojson", "center(12)", "indent(2)", "wordcount", "e", "replace('l', 'L')",
               "truncate(8)", "batch(2)|list", "slice(2)|list", "dictsort", "items|list", "map('string')|list",
               "select('odd')|list", "reject('even')|list", "count", "format(1)", "pprint", "urlencode",
               "xmlattr", "striptags", "filesizeformat", "wordwrap(5)", "float|round(2)", "int(7)",
               "d('x', true)", "sort(reverse=true)|list", "attr('x')", "map('upper')|list"]
    methods = ["upper()", "lower()", "split()", "split(',')", "strip()", "title()", "startswith('H')",
               "endswith('d')", "find('o')", "replace('o', '0')", "count('l')", "zfill(8)", "center(9, '*')",
               "ljust(6, '.')", "rjust(6)", "isdigit()", "isalpha()", "capitalize()", "swapcase()",
               "partition(',')", "rsplit(',', 1)", "lstrip('H')", "splitlines()", "format(1, 2)",
               "items()|list", "keys()|list", "values()|list", "get('a')", "get('q', 9)", "index(1)",
               "count(1)", "join(['x', 'y'])"]
    tests = ["defined", "undefined", "none", "number", "string", "mapping", "iterable", "sequence", "odd", "even",
             "divisibleby(3)", "integer", "float", "boolean", "true", "false", "lower", "upper", "in([1, 'a'])",
             "eq(7)", "lt(3)", "callable", "sameas(none)"]
    formats = ["'%s'", "'%d'", "'%r'", "'%5.2f'", "'%-6s|'", "'%x'", "'%o'", "'%e'", "'%05d'", "'%+d'",
               "'%s and %s'", "'%.3s'", "'%c'", "'%g'", "'%i%%'"]
    format_arguments = ["i", "f", "s", "n", "big", "(1, 2)", "(s, i)", "none", "flag", "[1]", "g", "(3.14159,)",
                        "65", "u", "d"]
    subscripts = ["0", "-1", "1:", "::-1", ":2", "::2", "a", "'a'", "1:-1"]

    def __init__(self, rng):
        self.rng = rng

    def expression(self, depth):
        rng = self.rng
        r = rng.random()
        if depth <= 0 or r < 0.25:
            return rng.choice(self.atoms)
        if r < 0.45:
            operator = rng.choice(self.operators)
            left, right = self.expression(depth - 1), self.expression(depth - 1)
            if operator in ("*", "**"):  # keep results small
                left = rng.choice(["2", "3", "'ab'", "[1]", "-2", "1.5", "i", "n"])
                right = rng.choice(["2", "3", "0", "-1", "i", "0.5"])
            return f"{left} {operator} {right}"
        if r < 0.60:
            return f"{self.expression(depth - 1)}|{rng.choice(self.filters)}"
        if r < 0.70:
            return f"{self.expression(depth - 1)}.{rng.choice(self.methods)}"
        if r < 0.77:
            return f"{self.expression(depth - 1)} is {rng.choice(['', 'not '])}{rng.choice(self.tests)}"
        if r < 0.84:
            return f"{rng.choice(self.formats)} % {rng.choice(self.format_arguments)}"
        if r < 0.90:
            return f"{rng.choice(['s', 'l', 'u', 'd', 'nested', 'users', 'i'])}[{rng.choice(self.subscripts)}]"
        if r < 0.95:
            return f"{self.expression(depth - 1)} if {self.expression(depth - 1)} else {self.expression(depth - 1)}"
        return f"not {self.expression(depth - 1)}"

    def next(self):
        return "{{ " + self.expression(self.rng.randint(1, 3)) + " }}", self.context


class Statements:
    context = {"items": [1, 2, 3], "words": ["b", "a", "c"], "d": {"x": 1, "y": 2}, "s": "héllo", "n": None,
               "flag": True, "users": [{"name": "ann", "age": 31}, {"name": "bob", "age": 27}], "empty": [],
               "pods": {"p1": {"status": {"podIP": "10.0.0.1"}}, "p2": {"status": {}},
                        "p3": {"status": {"podIP": "10.0.0.3"}}},
               "tree": [{"v": "a", "c": [{"v": "b", "c": []}, {"v": "c"}]}, {"v": "<d>"}]}
    names = ["items", "words", "d", "s", "n", "flag", "users", "empty", "missing"]

    def __init__(self, rng):
        self.rng = rng

    def dash(self):
        return self.rng.choice(["", "", "", "-"])

    def tag(self, body):
        return "{%" + self.dash() + " " + body + " " + self.dash() + "%}"

    def text(self):
        return self.rng.choice(["", "x", " ", "\n", "  \n", "a b", "\n  ", ",", "|", "\n\n"])

    def value(self, scope):
        extra = ["loop.index" if "loop" in scope else "2"]
        return self.rng.choice(self.names + [v for v in scope if v != "loop"] + ["1", "'a'", "none", "[1, 2]"] + extra)

    def expression(self, scope):
        rng = self.rng
        r = rng.random()
        value = self.value(scope)
        if r < 0.3:
            return value
        if r < 0.5:
            return value + "|" + rng.choice(["length", "string", "upper", "first", "default(0)", "list",
                                             "join(',')", "sort|list", "e", "trim", "int"])
        if r < 0.6:
            return f"{value} ~ {self.value(scope)}"
        if r < 0.7:
            return f"{value} is {rng.choice(['defined', 'string', 'iterable', 'odd', 'none', 'mapping'])}"
        if r < 0.8 and "loop" in scope:
            return "loop." + rng.choice(["index", "index0", "revindex", "revindex0", "first", "last", "length",
                                         "depth", "previtem", "nextitem", "cycle('o', 'e')", f"changed({value})"])
        if r < 0.9:
            return f"{value} if {self.value(scope)} else {self.value(scope)}"
        return f"{value}[0]"

    def block(self, depth, scope):
        rng, tag = self.rng, self.tag
        out = ""
        for _ in range(rng.randint(1, 3)):
            r = rng.random()
            if depth <= 0 or r < 0.3:
                out += self.text() + "{{" + self.dash() + " " + self.expression(scope) + " " + self.dash() + "}}" + self.text()
            elif r < 0.45:
                target = rng.choice(["x", "y", "k, v", "pod"])
                iterable = {"x": rng.choice(["items", "words", "s", "empty", "missing", "range(3)", "d", "users"]),
                            "y": rng.choice(["items", "words|sort", "d.values()"]),
                            "k, v": rng.choice(["d.items()", "users|dictsort", "pods.items()"]),
                            "pod": "pods.values()"}[target]
                names = target.split(", ")
                condition = rng.choice(["", "", " if " + self.expression(scope + names)])
                if target == "pod":
                    condition = rng.choice(["", " if pod.status.podIP"])
                out += tag(f"for {target} in {iterable}{condition}") + self.block(depth - 1, scope + names + ["loop"])
                if rng.random() < 0.3:
                    out += tag("else") + self.block(depth - 1, scope)
                out += tag("endfor")
            elif r < 0.55:
                out += tag(f"if {self.expression(scope)}") + self.block(depth - 1, scope)
                if rng.random() < 0.3:
                    out += tag(f"elif {self.expression(scope)}") + self.block(depth - 1, scope)
                if rng.random() < 0.5:
                    out += tag("else") + self.block(depth - 1, scope)
                out += tag("endif")
            elif r < 0.65:
                name = rng.choice(["a", "b", "total"])
                out += tag(f"set {name} = {self.expression(scope)}")
                scope = scope + [name]
            elif r < 0.7:
                out += tag("set ns = namespace(c=0)") + self.block(depth - 1, scope) + tag("set ns.c = ns.c + 1") + "{{ ns.c }}"
            elif r < 0.78:
                name = f"m{rng.randint(0, 9)}"
                out += tag(f"macro {name}(p, q=2)") + self.block(depth - 1, scope + ["p", "q", "varargs"]) + tag("endmacro")
                out += rng.choice([f"{{{{ {name}(1) }}}}", f"{{{{ {name}('x', q=3) }}}}", f"{{{{ {name}(1, 2, 3) }}}}"])
            elif r < 0.84:
                out += tag("macro w()") + "[{{ caller() }}]" + tag("endmacro") + tag("call w()") + self.block(depth - 1, scope) + tag("endcall")
            elif r < 0.9:
                out += tag("filter " + rng.choice(["upper", "trim", "indent(2)", "replace('x', 'y')"])) + self.block(depth - 1, scope) + tag("endfilter")
            elif r < 0.95:
                out += tag(f"with w = {self.expression(scope)}") + self.block(depth - 1, scope + ["w"]) + tag("endwith")
            elif r < 0.96:
                out += tag("set blk") + self.block(depth - 1, scope) + tag("endset") + "{{ blk }}"
            elif r < 0.97:
                out += (tag("for node in tree recursive") + "<{{ node.v }}" + tag("if node.c") + "{{ loop(node.c) }}"
                        + tag("endif") + "{{ loop.depth }}>" + tag("endfor"))
            elif r < 0.98:
                out += tag("raw") + rng.choice(["{{ x }}", "{% if %}", " a\n"]) + tag("endraw") + "{#" + self.dash() + " c " + self.dash() + "#}"
            elif r < 0.99:
                out += tag(f"autoescape {rng.choice(['true', 'false'])}") + self.block(depth - 1, scope) + "{{ '<&>' }}" + tag("endautoescape")
            else:
                out += (tag("macro e(a, b=none)") + "{{ caller(a) if caller is defined else a }}" + tag("endmacro")
                        + tag(f"call(v) e({self.value(scope)})") + "[{{ v }}]" + tag("endcall"))
        return out

    def next(self):
        return self.block(3, []) + self.rng.choice(["", "\n", "\n\n"]), self.context


class Seeds:
    def __init__(self, rng):
        self.rng = rng
        self.templates = []
        for case in sorted(os.listdir(os.path.join(CASES, "haproxy"))):
            if case.startswith("seed-") and case.endswith("-typical"):
                with open(os.path.join(CASES, "haproxy", case, "template.j2"), encoding="utf-8") as f:
                    self.templates.append(f.read())

    def odd(self):
        return self.rng.choice([None, True, False, 0, 1, -1, 2**70, 1.5, 1e16, "", "x", "héllo", "^a.*$", [],
                                [1, "a"], {}, {"k": "v"}, "a b", "10.0.0.1", "%d", "{{ x }}"])

    def hostname(self):
        return self.rng.choice(["www.example.com", "^api\\.(v1|v2)\\.example\\.com$", "ex-ample.org", "日本.jp",
                                "a+b.example.com", "*.wild", "", "^", "x" * 40, self.odd()])

    def pod(self, index):
        rng = self.rng
        pod = {"metadata": {"name": f"pod-{index}", "namespace": "ns", "labels": {"app": "x"}}, "status": {}}
        if rng.random() < 0.7:
            pod["status"]["podIP"] = rng.choice([f"10.0.{index}.{rng.randint(1, 250)}", "fd00::1", "", None, self.odd()])
        if rng.random() < 0.5:
            pod["status"]["containerStatuses"] = [{"ready": rng.choice([True, False])}]
        if rng.random() < 0.1:
            pod["status"] = self.odd()
        return pod

    def service(self, index):
        rng = self.rng
        service = {"namespace": "ns", "selector": {"app": f"s{index}"}}
        if rng.random() < 0.9:
            service["hostnames"] = [self.hostname() for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.9:
            service["ports"] = rng.choice([[80], [8080, 8443], [], ["80"], [self.odd()]])
        if rng.random() < 0.3:
            service["path"] = rng.choice(["/", "^/api/", "", self.odd()])
        if rng.random() < 0.4:
            service["ssl"] = rng.choice([True, False, 1, 0, "yes", "", None])
        if rng.random() < 0.4:
            service["varnish"] = rng.choice([{"recv": "return (hash);", "backend_fetch": "x;", "backend_response": "y;",
                                              "deliver": "z;"}, {}, {"recv": ""}, True, None, self.odd()])
        service["name"] = rng.choice([f"svc-{index}", f"Svc_{index}", f"ß{index}", f"svc-{index}-ü"])
        service["pods"] = {f"pod-{j}": self.pod(j) for j in range(rng.randint(0, 4))}
        return service

    def next(self):
        rng = self.rng
        context = {"services": sorted((self.service(i) for i in range(rng.randint(0, 5))), key=lambda s: s["name"]),
                   "certificates": [rng.choice(["a.com", "b.org", "ü.de"]) for _ in range(rng.randint(0, 3))],
                   "ssldir": "/ssl", "stats": {"username": "stats", "password": rng.choice(["p", "", "p w", "日本"])},
                   "env": {"VARNISH_SECRET": "s", "VARNISH_ADDR": "1.2.3.4", "HAPROXY_ADDR": "5.6.7.8"}}
        if rng.random() < 0.05:
            del context["stats"]
        return rng.choice(self.templates), context


def python_spelling(source):
    return (source.replace(".itervalues()", ".values()").replace(".iteritems()", ".items()")
            .replace(".iterkeys()", ".keys()"))


def jinja2_result(source, context):
    """(output, None, None) or (None, "Class: message", line)."""
    env = jinja2.Environment()
    env.filters["re_escape"] = re.escape
    try:
        return env.from_string(python_spelling(source)).render(**copy.deepcopy(context)), None, None
    except Exception as exc:
        line = exc.lineno if isinstance(exc, jinja2.TemplateSyntaxError) else None
        if line is None:
            for frame in traceback.extract_tb(exc.__traceback__):
                if frame.filename == "<template>":
                    line = frame.lineno
        return None, f"{type(exc).__name__}: {exc}", line


def main():
    if len(sys.argv) < 3 or sys.argv[2] not in ("expressions", "statements", "seeds"):
        sys.exit(__doc__)
    watcher, mode = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    generator = {"expressions": Expressions, "statements": Statements, "seeds": Seeds}[mode](random.Random(seed))
    differences = 0
    keep = os.environ.get("COMPARE_RANDOM_KEEP")
    if keep:
        os.makedirs(keep, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        template_path = os.path.join(directory, "t.j2")
        context_path = os.path.join(directory, "c.json")
        for _ in range(count):
            source, context = generator.next()
            expected, expected_error, expected_line = jinja2_result(source, context)
            with open(template_path, "w", encoding="utf-8") as f:
                f.write(source)
            with open(context_path, "w", encoding="utf-8") as f:
                json.dump(context, f)
            run = subprocess.run([watcher, "render", "--template", template_path, "--context", context_path],
                                 capture_output=True)
            output = run.stdout.decode("utf-8", "replace")
            error = run.stderr.decode("utf-8", "replace").strip()
            location, _, message = error.partition(": ")
            line = location.rsplit(":", 1)[-1]
            problem = None
            if run.returncode > 1:
                problem = f"engine exit status {run.returncode}: {error[:300]}"
            elif expected_error is None:
                if run.returncode != 0 or output != expected:
                    problem = f"jinja2 {expected[:300]!r}\n    engine {output[:300]!r} {error[:200]}"
            elif run.returncode != 1 or message != expected_error.partition(": ")[2]:
                problem = f"jinja2 {expected_error[:200]}\n    engine exit {run.returncode} {error[:200]}"
            elif expected_line is not None and line != str(expected_line):
                problem = f"line: jinja2 {expected_line}, engine {line} ({expected_error[:150]})"
            if problem:
                differences += 1
                if keep:
                    with open(os.path.join(keep, f"{differences}.j2"), "w", encoding="utf-8") as f:
                        f.write(source)
                    with open(os.path.join(keep, f"{differences}.json"), "w", encoding="utf-8") as f:
                        json.dump(context, f, ensure_ascii=False)
                shown = source if len(source) < 600 else source[:600] + "…"
                print(f"--- {shown!r}\n    {problem}")
    print(f"compare-random: {differences} differences in {count} {mode} (seed {seed})", file=sys.stderr)
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
