// The objects a render creates: call arguments, functions and macros, namespace(), the loop
// variable, cycler() and joiner().

public struct Arguments {
    public var positional: [Value]
    public var keywords: [(String, Value)]

    public init(_ positional: [Value] = [], keywords: [(String, Value)] = []) {
        self.positional = positional
        self.keywords = keywords
    }

    public func keyword(_ name: String) -> Value? {
        for (key, value) in keywords where key == name { return value }
        return nil
    }

    /// The argument at `position` or named `name`, the way Python binds a parameter.
    public func argument(_ position: Int, _ name: String) -> Value? {
        if position < positional.count { return positional[position] }
        return keyword(name)
    }

    public var isEmpty: Bool { positional.isEmpty && keywords.isEmpty }
}

/// Anything callable from a template. The evaluator runs macros and `caller`; builtins carry
/// their Swift implementation.
public final class Function {
    public enum Kind {
        /// A global like `range` or `lipsum`.
        case builtin(@Sendable (Arguments) throws(TemplateError) -> Value)
        /// `receiver.name` taken without calling it; calling dispatches to `callMethod`.
        case boundMethod(receiver: Value, name: String)
        /// A macro or `caller` block; the evaluator knows what to do with it.
        case macro(MacroClosure)
        /// `loop` in a recursive for loop, and `loop.cycle`/`loop.changed` are methods of it.
        case loopRecurse(LoopContext)
        /// `self.name`, Jinja2's BlockReference: calling it renders the block.
        case block(BlockDefinition)
    }

    public let name: String
    public let kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// `self`, Jinja2's TemplateReference: the template's blocks by name.
public final class TemplateReference {
    let blocks: [String: BlockDefinition]

    init(blocks: [String: BlockDefinition]) { self.blocks = blocks }

    /// `self.name` and `self['name']`: the block, or Undefined as Jinja2 has it.
    func block(_ name: String) -> Value {
        guard let block = blocks[name] else {
            return .undefined(Undefined(owner: .templateReference(self), attribute: name))
        }
        return .function(Function(name: name, kind: .block(block)))
    }
}

/// A macro bound to the scope it was defined in (opaque outside the evaluator).
public final class MacroClosure {
    let macro: MacroDefinition
    /// The scope the macro was defined in; nil at the template's top level.
    let scope: Scope?
    let isCaller: Bool
    init(macro: MacroDefinition, scope: Scope?, isCaller: Bool) {
        self.macro = macro
        self.scope = scope
        self.isCaller = isCaller
    }
}

/// `namespace(...)`: the one object templates may assign attributes to.
public final class Namespace {
    public let attributes: DictRef
    public init(_ attributes: DictRef = DictRef()) { self.attributes = attributes }
}

/// The `loop` variable of a for loop.
public final class LoopContext {
    public private(set) var items: [Value]
    public var index0: Int = 0
    public private(set) var depth0: Int
    /// Re-entry point for `loop(...)` in a recursive loop.
    private(set) var recurse: ((Value) throws(TemplateError) -> String)?
    var lastChanged: [Value]? = nil

    init(items: [Value], depth0: Int, recurse: ((Value) throws(TemplateError) -> String)?) {
        self.items = items
        self.depth0 = depth0
        self.recurse = recurse
    }

    /// As new, for another loop: one that nothing kept after its loop ended.
    func reuse(items: [Value], depth0: Int, recurse: ((Value) throws(TemplateError) -> String)?) {
        self.items = items
        self.index0 = 0
        self.depth0 = depth0
        self.recurse = recurse
        self.lastChanged = nil
    }

    public var length: Int { items.count }
    public var first: Bool { index0 == 0 }
    public var last: Bool { index0 == items.count - 1 }
    public var previtem: Value {
        index0 > 0 ? items[index0 - 1] : .undefined(Undefined(hint: "there is no previous item"))
    }
    public var nextitem: Value {
        index0 + 1 < items.count ? items[index0 + 1] : .undefined(Undefined(hint: "there is no next item"))
    }
}

public final class Cycler {
    public let items: [Value]
    public var position = 0
    public init(_ items: [Value]) { self.items = items }
    public var current: Value { items.isEmpty ? .none : items[position] }
    public func next() -> Value {
        guard !items.isEmpty else { return .none }
        let value = items[position]
        position = (position + 1) % items.count
        return value
    }
    public func reset() { position = 0 }
}

public final class Joiner {
    public let separator: String
    public var used = false
    public init(_ separator: String) { self.separator = separator }
    public func call() -> String {
        if used { return separator }
        used = true
        return ""
    }
}
