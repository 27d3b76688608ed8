// Jinja2's builtin tests (`x is defined`), keyed by their template name; see Filters.swift for
// the calling convention.

/// Every builtin test; fill in from Jinja2's tests.py (`TESTS`).
public let tests: [String: Test] = [
    "defined": { call throws(TemplateError) in !call.value.isUndefined },
    "undefined": { call throws(TemplateError) in call.value.isUndefined },
]
