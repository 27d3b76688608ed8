// The template's syntax tree: one node per construct, fields named as Jinja2's nodes.py
// names them. Names are resolved to slot numbers at parse time.

import Synchronization

indirect enum Expr: Sendable {
    case const(Literal)
    /// A variable by slot; `Program.names[slot]` is its name.
    case name(slot: Int)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    /// `node.attr`.
    case getattr(Expr, AttributeName)
    case getitem(Expr, Expr)
    case slice(start: Expr?, stop: Expr?, step: Expr?)
    case binary(BinaryOperator, Expr, Expr)
    case neg(Expr)
    case pos(Expr)
    case not(Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case compare(Expr, [(CompareOperator, Expr)])
    case concat([Expr])
    case condExpr(test: Expr, expr1: Expr, expr2: Expr?, line: Int)
    case filter(Expr?, FilterNode)
    case test(Expr, TestNode)
    case call(Expr, CallArguments, line: Int)
}

enum BinaryOperator: Sendable {
    case add, sub, mul, div, floordiv, mod, pow

    var symbol: String {
        switch self {
        case .add: return "+"
        case .sub: return "-"
        case .mul: return "*"
        case .div: return "/"
        case .floordiv: return "//"
        case .mod: return "%"
        case .pow: return "** or pow()"
        }
    }
}

enum CompareOperator: Sendable {
    case eq, ne, lt, lteq, gt, gteq, `in`, notin

    var symbol: String {
        switch self {
        case .eq: return "=="
        case .ne: return "!="
        case .lt: return "<"
        case .lteq: return "<="
        case .gt: return ">"
        case .gteq: return ">="
        case .in: return "in"
        case .notin: return "not in"
        }
    }
}

/// The name of `node.attr`, prepared at parse time for what it does at render time: its
/// UTF-8 to compare with the keys of JSON objects, and the str and dict methods of that name
/// (a dict's method wins over its key, as Python's getattr comes before Jinja2's getitem),
/// and the loop attribute of that name.
final class AttributeName: Sendable {
    let text: String
    let utf8: [UInt8]
    let stringMethod: StringMethod?
    let dictMethod: DictMethod?
    let loopAttribute: LoopAttribute?
    /// For `startswith` and `endswith`, which a template calls on every hostname.
    let affix: Affix?
    /// Unique in the process, never reused (an object's address may be, once it is freed):
    /// what a JSON object remembers its handed-out values by.
    let serial: Int

    private static let serials = Atomic<Int>(0)

    init(_ text: String) {
        self.text = text
        self.serial = AttributeName.serials.add(1, ordering: .relaxed).newValue
        self.utf8 = Array(text.utf8)
        self.stringMethod = stringMethods[text]
        self.dictMethod = dictMethods[text]
        self.loopAttribute = LoopAttribute(rawValue: text)
        self.affix = Affix(method: text)
    }
}

// Node payloads with several fields are classes: the evaluator then binds one reference
// instead of retaining every field.

final class CallArguments: Sendable {
    let args: [Expr]
    let kwargs: [(String, Expr)]
    let dynArgs: Expr?
    let dynKwargs: Expr?
    let isEmpty: Bool
    /// The argument of a call with one positional argument and nothing else.
    let single: Expr?

    init(args: [Expr] = [], kwargs: [(String, Expr)] = [], dynArgs: Expr? = nil, dynKwargs: Expr? = nil) {
        self.args = args
        self.kwargs = kwargs
        self.dynArgs = dynArgs
        self.dynKwargs = dynKwargs
        self.isEmpty = args.isEmpty && kwargs.isEmpty && dynArgs == nil && dynKwargs == nil
        self.single = args.count == 1 && kwargs.isEmpty && dynArgs == nil && dynKwargs == nil ? args[0] : nil
    }
}

final class FilterNode: Sendable {
    let name: String
    let arguments: CallArguments
    /// nil when no such filter exists (an error at compile time, or at run time inside `if`).
    let function: Filter?
    /// For `upper` and `lower` without arguments: what they do to ASCII text, which
    /// `{{ x|upper }}` then writes to the output without making a String.
    let asciiCaseChange: ASCIICaseChange?
    let line: Int

    init(name: String, arguments: CallArguments, function: Filter?, line: Int) {
        self.name = name
        self.arguments = arguments
        self.function = function
        switch name {
        case "upper" where arguments.isEmpty: asciiCaseChange = .upper
        case "lower" where arguments.isEmpty: asciiCaseChange = .lower
        default: asciiCaseChange = nil
        }
        self.line = line
    }
}

final class TestNode: Sendable {
    let name: String
    let arguments: CallArguments
    let function: Test?
    let line: Int

    init(name: String, arguments: CallArguments, function: Test?, line: Int) {
        self.name = name
        self.arguments = arguments
        self.function = function
        self.line = line
    }
}

/// Assignment targets: `x`, `a, b`, `ns.attr`.
indirect enum Target: Sendable {
    /// A variable, by its slot (the name is not needed to store into it).
    case name(slot: Int)
    case tuple([Target])
    case namespaceAttribute(String, slot: Int, attribute: String)
}

indirect enum Node: Sendable {
    /// Text between tags: where its UTF-8 lies in the program's `text`. Bytes of its own
    /// would cost a retain and a release each time the text is written.
    case templateData(Range<Int>)
    case output(Expr, line: Int)
    case `if`(IfNode)
    case `for`(ForNode)
    case assign(Target, Expr, line: Int)
    case assignBlock(Target, filter: Expr?, body: [Node], line: Int)
    case macro(MacroDefinition)
    case callBlock(CallBlockNode)
    case filterBlock(filter: Expr, body: [Node], line: Int)
    case with(targets: [(Target, Expr)], body: [Node], line: Int)
    case scopedAutoescape(Expr, body: [Node], line: Int)
    /// `{% block %}` in a template without inheritance renders in place (and through `self`).
    case block(BlockDefinition)
    /// extends/include/import need a loader, which a single template does not have.
    case needsLoader(line: Int)
}

final class IfNode: Sendable {
    /// `if` and every `elif`, in order.
    let branches: [(test: Expr, body: [Node], line: Int)]
    let else_: [Node]

    init(branches: [(test: Expr, body: [Node], line: Int)], else_: [Node]) {
        self.branches = branches
        self.else_ = else_
    }
}

final class ForNode: Sendable {
    let target: Target
    let iter: Expr
    let body: [Node]
    let else_: [Node]
    let test: Expr?
    /// Where errors in the inline `if` filter are reported.
    let testLine: Int
    let recursive: Bool
    /// Slot of the name `loop` (bound in the body).
    let loopSlot: Int
    /// The target's slot when it is one name (the common `for x in ...`), else -1.
    let targetSlot: Int
    let line: Int

    init(target: Target, iter: Expr, body: [Node], else_: [Node], test: Expr?, testLine: Int, recursive: Bool, loopSlot: Int, line: Int) {
        self.testLine = testLine
        self.target = target
        self.iter = iter
        self.body = body
        self.else_ = else_
        self.test = test
        self.recursive = recursive
        self.loopSlot = loopSlot
        if case .name(let slot) = target { targetSlot = slot } else { targetSlot = -1 }
        self.line = line
    }
}

public final class MacroDefinition: Sendable {
    let name: String
    let slot: Int
    let arguments: [(name: String, slot: Int)]
    let defaults: [Expr]
    let body: [Node]
    /// Whether the body refers to `varargs`, `kwargs`, `caller` (Jinja2 then accepts them).
    let catchVarargs: Bool
    let catchKwargs: Bool
    let callerUsed: Bool
    let varargsSlot: Int
    let kwargsSlot: Int
    let callerSlot: Int
    let line: Int

    init(name: String, slot: Int, arguments: [(name: String, slot: Int)], defaults: [Expr], body: [Node],
         catchVarargs: Bool, catchKwargs: Bool, callerUsed: Bool, varargsSlot: Int, kwargsSlot: Int, callerSlot: Int, line: Int) {
        self.name = name
        self.slot = slot
        self.arguments = arguments
        self.defaults = defaults
        self.body = body
        self.catchVarargs = catchVarargs
        self.catchKwargs = catchKwargs
        self.callerUsed = callerUsed
        self.varargsSlot = varargsSlot
        self.kwargsSlot = kwargsSlot
        self.callerSlot = callerSlot
        self.line = line
    }
}

final class CallBlockNode: Sendable {
    let call: Expr
    /// The caller's signature and body, as an anonymous macro.
    let caller: MacroDefinition
    let line: Int

    init(call: Expr, caller: MacroDefinition, line: Int) {
        self.call = call
        self.caller = caller
        self.line = line
    }
}

/// `{% block name [scoped] %}`. Rendered in place or called as `self.name()`, its body sees
/// the template's top-level variables only; a scoped block rendered in place also sees the
/// variables around it.
public final class BlockDefinition: Sendable {
    let name: String
    let body: [Node]
    let scoped: Bool
    let line: Int

    init(name: String, body: [Node], scoped: Bool, line: Int) {
        self.name = name
        self.body = body
        self.scoped = scoped
        self.line = line
    }
}

/// A parsed template: the body, the names its slots stand for, its blocks by name, and the
/// text outside its tags, one piece after another.
struct Program: Sendable {
    let body: [Node]
    let names: [String]
    let blocks: [String: BlockDefinition]
    let text: [UInt8]
}
