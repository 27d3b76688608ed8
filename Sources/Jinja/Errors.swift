// Template errors, named after the Python exception Jinja2 raises for the same mistake.

public struct TemplateError: Error, CustomStringConvertible, Sendable {
    /// Raw value: the Python exception class Jinja2 raises for the same error.
    public enum Kind: String, Sendable {
        case syntax = "TemplateSyntaxError"
        case assertion = "TemplateAssertionError"
        case undefined = "UndefinedError"
        case type = "TypeError"
        case value = "ValueError"
        case zeroDivision = "ZeroDivisionError"
        case key = "KeyError"
        case index = "IndexError"
        case attribute = "AttributeError"
        case runtime = "TemplateRuntimeError"
        case overflow = "OverflowError"
        case filterArgument = "FilterArgumentError"
        case security = "SecurityError"
        case recursion = "RecursionError"
        /// Python's `assert` failing inside a filter (`truncate` shorter than its `end`).
        case assertionFailure = "AssertionError"
        /// A padding or repetition too large to build (Python's MemoryError has no message).
        case memory = "MemoryError"
        case runtimeError = "RuntimeError"
    }

    public var kind: Kind
    /// Jinja2's message text, e.g. "'foo' is undefined".
    public var message: String
    /// 1-based template line; 0 until the evaluator knows where the error happened.
    public var line: Int
    /// The template name given at compile time.
    public var name: String

    public init(kind: Kind, message: String, line: Int = 0, name: String = "") {
        self.kind = kind
        self.message = message
        self.line = line
        self.name = name
    }

    /// Filters, tests and methods throw with line 0; the evaluator adds the line.
    public init(_ kind: Kind, _ message: String) {
        self.init(kind: kind, message: message)
    }

    public var description: String { "\(name):\(line): \(message)" }
}
