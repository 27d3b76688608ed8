#!/usr/bin/env python3
"""Writes the expected output of every differential case, as Python's jinja2 renders it.

Each case is a directory Tests/JinjaTests/Fixtures/cases/<group>/<case>/ holding
template.j2 and optionally context.json (a JSON object whose keys are the variables).
The template is rendered with a default jinja2.Environment() plus the engine's one extra
filter, re_escape (Python's re.escape):

    env.from_string(source).render(**context)

Success writes expected.out (the rendered text, UTF-8). An exception writes expected.err:
the line "<ExceptionClass>: <str(exception)>" and, when the template line is known, a
second line "line: N" (TemplateSyntaxError.lineno, or for render-time errors the innermost
traceback frame that belongs to the template).

Python 3's dicts have no itervalues/iteritems/iterkeys/has_key, which the Swift engine
supports for old templates. A case using them carries python-template.j2, the same
template in Python 3 spelling, which is what jinja2 renders here; the engine renders
template.j2.

Usage:
    generate-expected.py            rewrite every case's expectation
    generate-expected.py --check    rewrite nothing; exit 1 listing the cases whose
                                    committed expectation differs from jinja2's
    generate-expected.py DIR...     only these case directories
"""

import json
import os
import re
import sys
import traceback

import jinja2

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "cases")


def template_line(exc):
    """The template line a render-time exception was raised on, or None."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.lineno
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>":
            line = frame.lineno
    return line


def expectation(case_dir):
    """(file name, bytes) of the expectation jinja2 produces for one case."""
    template_path = os.path.join(case_dir, "python-template.j2")
    if not os.path.exists(template_path):
        template_path = os.path.join(case_dir, "template.j2")
    with open(template_path, "rb") as f:
        source = f.read().decode("utf-8")
    context = {}
    context_path = os.path.join(case_dir, "context.json")
    if os.path.exists(context_path):
        with open(context_path, "rb") as f:
            context = json.loads(f.read().decode("utf-8"))
        if not isinstance(context, dict):
            raise SystemExit(f"{context_path}: the context must be a JSON object")
    env = jinja2.Environment()
    # The engine adds one filter to Jinja2's builtins; the seed's varnish example calls it.
    env.filters["re_escape"] = re.escape
    try:
        output = env.from_string(source).render(**context)
    except Exception as exc:  # every exception is an expectation, whatever its class
        text = f"{type(exc).__name__}: {exc}\n"
        line = template_line(exc)
        if line is not None:
            text += f"line: {line}\n"
        return "expected.err", text.encode("utf-8")
    return "expected.out", output.encode("utf-8")


def case_dirs(arguments):
    if arguments:
        return [os.path.abspath(a) for a in arguments]
    found = []
    for group in sorted(os.listdir(CASES)):
        group_dir = os.path.join(CASES, group)
        if not os.path.isdir(group_dir):
            continue
        for case in sorted(os.listdir(group_dir)):
            case_dir = os.path.join(group_dir, case)
            if os.path.exists(os.path.join(case_dir, "template.j2")):
                found.append(case_dir)
    return found


def committed(case_dir):
    """(file name, bytes) of the committed expectation, or None."""
    found = []
    for name in ("expected.out", "expected.err"):
        path = os.path.join(case_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                found.append((name, f.read()))
    return found[0] if len(found) == 1 else None


def main():
    arguments = sys.argv[1:]
    check = "--check" in arguments
    arguments = [a for a in arguments if a != "--check"]
    dirs = case_dirs(arguments)
    if not dirs:
        raise SystemExit(f"generate-expected: no cases under {CASES}")
    differing = []
    for case_dir in dirs:
        name, data = expectation(case_dir)
        if check:
            if committed(case_dir) != (name, data):
                differing.append(os.path.relpath(case_dir, CASES))
            continue
        for stale in ("expected.out", "expected.err"):
            path = os.path.join(case_dir, stale)
            if stale != name and os.path.exists(path):
                os.remove(path)
        with open(os.path.join(case_dir, name), "wb") as f:
            f.write(data)
    if check:
        if differing:
            print(f"generate-expected: {len(differing)} of {len(dirs)} committed expectations "
                  "differ from what jinja2 " + jinja2.__version__ + " produces:", file=sys.stderr)
            for case in differing:
                print(f"  {case}", file=sys.stderr)
            sys.exit(1)
        print(f"generate-expected: all {len(dirs)} committed expectations match jinja2 "
              + jinja2.__version__, file=sys.stderr)
    else:
        print(f"generate-expected: wrote {len(dirs)} expectations", file=sys.stderr)


if __name__ == "__main__":
    main()
