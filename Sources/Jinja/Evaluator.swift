#if canImport(Glibc)
import Glibc
#endif

// Runs a parsed template: statements write into one growing output string, expressions
// evaluate to `Value`s with Python's semantics and Jinja2's runtime rules.

/// Variables bound in one scope (a loop iteration, a macro call, a `with` block). Scopes are
/// small: the first three variables live inline, a linear scan beats hashing, and a loop
/// reuses one scope for all its iterations unless a macro or caller captured it. The
/// template's top level lives in the renderer's dense `globals` array instead.
final class Scope {
    private var slot0 = -1, slot1 = -1, slot2 = -1
    private var value0 = Value.none, value1 = Value.none, value2 = Value.none
    /// Variables past the third: the first `moreCount` entries (the arrays keep their
    /// length across iterations, so that a loop setting many variables does not shrink and
    /// grow them every time).
    private var moreSlots: [Int] = []
    private var moreValues: [Value] = []
    private var moreCount = 0
    private(set) var parent: Scope?
    /// `parent`, for walking the chain without reference counting while a child holds it.
    var unretainedParent: Unmanaged<Scope>? {
        @inline(__always) get { parent.map { Unmanaged.passUnretained($0) } }
    }
    /// Set when a macro or caller (or a recursive loop) keeps this scope alive past its block.
    var captured = false

    init(parent: Scope?) { self.parent = parent }

    /// Empty again, under another parent: a loop's scope that nothing kept, for the next loop.
    func reuse(parent: Scope?) {
        reset()
        self.parent = parent
    }

    @inline(__always) func get(_ slot: Int) -> Value? {
        if slot0 == slot { return value0 }
        if slot1 == slot { return value1 }
        if slot2 == slot { return value2 }
        if moreCount == 0 { return nil }
        for i in 0..<moreCount where moreSlots[i] == slot { return moreValues[i] }
        return nil
    }

    @inline(__always) func set(_ slot: Int, _ value: Value) {
        if slot0 == slot || slot0 < 0 { slot0 = slot; value0 = value; return }
        if slot1 == slot || slot1 < 0 { slot1 = slot; value1 = value; return }
        if slot2 == slot || slot2 < 0 { slot2 = slot; value2 = value; return }
        for i in 0..<moreCount where moreSlots[i] == slot {
            moreValues[i] = value
            return
        }
        if moreCount < moreSlots.count {
            moreSlots[moreCount] = slot
            moreValues[moreCount] = value
        } else {
            moreSlots.append(slot)
            moreValues.append(value)
        }
        moreCount += 1
    }

    /// Forgets every variable, for the next iteration of a loop.
    func reset() {
        // Slots fill in order: the first free one ends those in use.
        guard slot0 >= 0 else { return }
        slot0 = -1
        value0 = .none
        guard slot1 >= 0 else { return }
        slot1 = -1
        value1 = .none
        guard slot2 >= 0 else { return }
        slot2 = -1
        value2 = .none
        if moreCount > 0 {
            // The values are let go; the slots are overwritten when used again.
            for i in 0..<moreCount { moreValues[i] = .none }
            moreCount = 0
        }
    }

    /// Marks this scope and its parents as kept alive by a closure.
    func capture() {
        var current: Scope? = self
        while let scope = current, !scope.captured {
            scope.captured = true
            current = scope.parent
        }
    }
}

/// The rendered text as UTF-8 bytes, in a buffer of its own: a render appends a hundred
/// thousand short pieces, and a capacity check and a copy is all each costs.
struct Output: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var count = 0
    private var capacity: Int

    init(capacity: Int = 256) {
        self.capacity = Swift.max(capacity, Output.maximumDecimalLength)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    private mutating func reserve(_ more: Int) {
        guard count + more > capacity else { return }
        let grown = Swift.max(capacity * 2, count + more)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        moved.initialize(from: base, count: count)
        base.deallocate()
        base = moved
        capacity = grown
    }

    @inline(__always) mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        if count + bytes.count > capacity { reserve(bytes.count) }
        (base + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }

    @inline(__always) mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    @inline(__always) mutating func append(_ text: String) {
        text.withUTF8Bytes { append($0) }
    }

    /// `text` with its case changed; false, and nothing written, when it is not all ASCII.
    mutating func append(_ text: String, changing change: ASCIICaseChange) -> Bool {
        text.withUTF8Bytes { append($0, changing: change) }
    }

    private mutating func append(_ utf8: UnsafeBufferPointer<UInt8>, changing change: ASCIICaseChange) -> Bool {
        guard isASCII(utf8) else { return false }
        if count + utf8.count > capacity { reserve(utf8.count) }
        for i in 0..<utf8.count { base[count + i] = change.apply(utf8[i]) }
        count += utf8.count
        return true
    }

    /// An int in decimal, without building a String for it.
    mutating func append(_ value: Int) {
        if count + Output.maximumDecimalLength > capacity { reserve(Output.maximumDecimalLength) }
        count += Output.writeDecimal(value, to: base + count)
    }

    /// `Int.min` has 19 digits and a sign.
    static let maximumDecimalLength = 20

    /// Writes `value` in decimal at `destination` (room for `maximumDecimalLength` bytes);
    /// returns how many bytes it wrote.
    static func writeDecimal(_ value: Int, to destination: UnsafeMutablePointer<UInt8>) -> Int {
        var magnitude = value.magnitude
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let sign = value < 0 ? 1 : 0
        if sign == 1 { destination[0] = UInt8(ascii: "-") }
        var position = sign + digits
        repeat {
            position -= 1
            destination[position] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 48
            magnitude /= 10
        } while magnitude > 0
        return sign + digits
    }

    var string: String { String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self) }
}

/// glibc's `pthread_getattr_np`, which the Glibc module does not import.
@_silgen_name("pthread_getattr_np")
private func threadAttributes(_ thread: pthread_t, _ attributes: UnsafeMutablePointer<pthread_attr_t>) -> Int32

/// The current stack position (the address of a local).
@inline(__always) private func stackPosition() -> UInt {
    var marker: UInt8 = 0
    return withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
}

/// The lowest stack address rendering may reach on this thread: a margin above the end of the
/// stack, so that templates nested or recursing too deeply fail with RecursionError instead
/// of crashing, whatever the thread's stack size.
private func stackLimit() -> UInt {
    var attributes = pthread_attr_t()
    var base: UnsafeMutableRawPointer? = nil
    var size = 0
    guard threadAttributes(pthread_self(), &attributes) == 0 else { return stackPosition() &- (256 << 10) }
    defer { pthread_attr_destroy(&attributes) }
    guard pthread_attr_getstack(&attributes, &base, &size) == 0, let base, size > 0 else {
        return stackPosition() &- (256 << 10)
    }
    let margin = min(1 << 20, size / 4)
    return UInt(bitPattern: base) + UInt(margin)
}

final class Renderer {
    let program: Program
    let stackLimit: UInt
    var globals: [Value?]
    var autoescape = false
    var callDepth = 0
    static let maximumCallDepth = 250

    /// The slot of the name `self` and what it stands for, when the template uses it.
    let selfSlot: Int?
    let templateReference: TemplateReference?
    let superSlot: Int?

    /// `program.text`, kept here for the renderer's life: template text is written from it
    /// without reference counting.
    private let text: UnsafeMutableBufferPointer<UInt8>

    init(program: Program) {
        self.program = program
        text = .allocate(capacity: program.text.count)
        _ = text.initialize(from: program.text)
        self.stackLimit = Jinja.stackLimit()
        self.globals = Array(repeating: nil, count: program.names.count)
        self.selfSlot = program.names.firstIndex(of: "self")
        self.templateReference = selfSlot == nil ? nil : TemplateReference(blocks: program.blocks)
        self.superSlot = program.names.firstIndex(of: "super")
    }

    deinit { text.deallocate() }

    func render(_ context: [(String, Value)]) throws(TemplateError) -> String {
        var slotOf: [String: Int] = [:]
        slotOf.reserveCapacity(program.names.count)
        for (slot, name) in program.names.enumerated() { slotOf[name] = slot }
        for (name, function) in builtinGlobals {
            if let slot = slotOf[name] { globals[slot] = function }
        }
        for (name, value) in context {
            if let slot = slotOf[name] { globals[slot] = value }
        }
        // Jinja2's root render function binds `self` itself, over any variable of that name.
        if let selfSlot, let templateReference { globals[selfSlot] = .templateReference(templateReference) }
        var out = Output(capacity: 1 << 16)
        try execute(program.body, nil, &out)
        return out.string
    }

    // MARK: Statements

    func execute(_ nodes: [Node], _ scope: Scope?, _ out: inout Output) throws(TemplateError) {
        try nodes.withUnsafeBufferPointer { (buffer) throws(TemplateError) in
            var i = 0
            while i < buffer.count {
                // Text, most nodes, is written here: passing a node to a call retains it.
                if case .templateData(let range) = buffer[i] {
                    out.append(UnsafeBufferPointer(rebasing: text[range]))
                } else {
                    try execute(buffer[i], scope, &out)
                }
                i += 1
            }
        }
    }

    @inline(__always) func located(_ error: TemplateError, _ line: Int) -> TemplateError {
        if error.line != 0 { return error }
        var copy = error
        copy.line = line
        return copy
    }

    func execute(_ node: Node, _ scope: Scope?, _ out: inout Output) throws(TemplateError) {
        if stackPosition() < stackLimit { throw TemplateError(.recursion, "maximum recursion depth exceeded") }
        switch node {
        case .templateData(let range):
            out.append(UnsafeBufferPointer(rebasing: text[range]))
        case .output(let expr, let line):
            do {
                try writeOutput(expr, scope, &out)
            } catch {
                throw located(error, line)
            }
        case .if(let ifNode):
            for branch in ifNode.branches {
                let test: Bool
                do { test = try evaluate(branch.test, scope).isTruthy } catch { throw located(error, branch.line) }
                if test {
                    try execute(branch.body, scope, &out)
                    return
                }
            }
            try execute(ifNode.else_, scope, &out)
        case .for(let forNode):
            let iterable: Value
            do { iterable = try evaluate(forNode.iter, scope) } catch { throw located(error, forNode.line) }
            try runLoop(forNode, iterable, scope, depth0: 0, &out)
        case .assign(let target, let expr, let line):
            do {
                let value = try evaluate(expr, scope)
                try assign(target, value, scope)
            } catch {
                throw located(error, line)
            }
        case .assignBlock(let target, let filter, let body, let line):
            var output = Output()
            try execute(body, Scope(parent: scope), &output)
            let text = output.string
            do {
                var value: Value = autoescape ? .markup(text) : .string(text)
                if let filter { value = try applyFilterChain(filter, value, scope) }
                try assign(target, value, scope)
            } catch {
                throw located(error, line)
            }
        case .macro(let macro):
            scope?.capture()
            let closure = MacroClosure(macro: macro, scope: scope, isCaller: false)
            let value = Value.function(Function(name: macro.name, kind: .macro(closure)))
            setVariable(macro.slot, value, scope)
        case .callBlock(let callBlock):
            do {
                scope?.capture()
                let caller = MacroClosure(macro: callBlock.caller, scope: scope, isCaller: true)
                let callerValue = Value.function(Function(name: "caller", kind: .macro(caller)))
                guard case .call(let callee, let arguments, _) = callBlock.call else { return }
                var args = try evaluateArguments(arguments, scope)
                args.keywords.append(("caller", callerValue))
                let result = try callValue(try evaluate(callee, scope), args, calleeExpr: callee)
                try write(result, &out)
            } catch {
                throw located(error, callBlock.line)
            }
        case .filterBlock(let filter, let body, let line):
            var output = Output()
            try execute(body, Scope(parent: scope), &output)
            let text = output.string
            do {
                let value = try applyFilterChain(filter, autoescape ? .markup(text) : .string(text), scope)
                try write(value, &out)
            } catch {
                throw located(error, line)
            }
        case .with(let targets, let body, let line):
            let inner = Scope(parent: scope)
            do {
                var values: [Value] = []
                for (_, expr) in targets { values.append(try evaluate(expr, scope)) }
                for ((target, _), value) in zip(targets, values) { try assign(target, value, inner) }
            } catch {
                throw located(error, line)
            }
            try execute(body, inner, &out)
        case .scopedAutoescape(let expr, let body, let line):
            let saved = autoescape
            do { autoescape = try evaluate(expr, scope).isTruthy } catch { throw located(error, line) }
            defer { autoescape = saved }
            try execute(body, Scope(parent: scope), &out)
        case .block(let block):
            try executeBlock(block, block.scoped ? scope : nil, &out)
        case .needsLoader(let line):
            throw TemplateError(kind: .type, message: "no loader for this environment specified", line: line)
        }
    }

    /// `{{ expr }}`.
    func writeOutput(_ expr: Expr, _ scope: Scope?, _ out: inout Output) throws(TemplateError) {
        // `{{ name }}` of a bound name: written as found, without the expression machinery.
        if case .name(let slot) = expr, let value = lookup(slot, scope) {
            try write(value, &out)
            return
        }
        if case .filter(let base?, let node) = expr, let change = node.asciiCaseChange, !autoescape {
            // `{{ name|upper }}` of an ASCII str: its bytes go to the output changed.
            let value = try evaluate(base, scope)
            if case .string(let text) = value, out.append(text, changing: change) { return }
            try write(try applyFilter(node, value, scope), &out)
            return
        }
        try write(try evaluate(expr, scope), &out)
    }

    func write(_ value: Value, _ out: inout Output) throws(TemplateError) {
        switch value {
        case .string(let s): out.append(autoescape ? htmlEscape(s) : s)
        case .markup(let s): out.append(s)
        case .int(let i): out.append(i)
        case .undefined: return
        case .none: out.append("None")
        case .bool(let b): out.append(b ? "True" : "False")
        default:
            let text = value.pyStr
            out.append(autoescape ? htmlEscape(text) : text)
        }
    }

    /// The scope a block's body runs in: Jinja2 compiles a block to a function of the template's
    /// context (and, for a scoped block rendered in place, the variables around it), with its
    /// own `self` and `super`.
    func blockScope(_ block: BlockDefinition, _ parent: Scope?) -> Scope {
        let scope = Scope(parent: parent)
        if let selfSlot, let reference = templateReference { scope.set(selfSlot, .templateReference(reference)) }
        // `super()` in a block: a single template has no parent block.
        if let superSlot {
            scope.set(superSlot, .undefined(Undefined(superOf: block)))
        }
        return scope
    }

    /// `self.name()`: the block rendered as Jinja2's BlockReference.__call__ renders it.
    func callBlock(_ block: BlockDefinition, _ args: Arguments) throws(TemplateError) -> Value {
        if !args.positional.isEmpty || !args.keywords.isEmpty {
            if let (keyword, _) = args.keywords.first {
                throw TemplateError(.type, "BlockReference.__call__() got an unexpected keyword argument \(reprString(keyword))")
            }
            throw TemplateError(.type, "BlockReference.__call__() takes 1 positional argument but \(args.positional.count + 1) were given")
        }
        callDepth += 1
        defer { callDepth -= 1 }
        if callDepth > Renderer.maximumCallDepth {
            throw TemplateError(.recursion, "maximum recursion depth exceeded")
        }
        var output = Output()
        try executeBlock(block, nil, &output)
        let text = output.string
        return autoescape ? .markup(text) : .string(text)
    }

    /// A block's body is a function of its own in Jinja2, compiled with the environment's
    /// autoescape setting (off), whatever `{% autoescape %}` surrounds the block or the call.
    func executeBlock(_ block: BlockDefinition, _ parent: Scope?, _ out: inout Output) throws(TemplateError) {
        let saved = autoescape
        autoescape = false
        defer { autoescape = saved }
        try execute(block.body, blockScope(block, parent), &out)
    }

    func setVariable(_ slot: Int, _ value: Value, _ scope: Scope?) {
        if let scope { scope.set(slot, value) } else { globals[slot] = value }
    }

    @inline(__always) func lookup(_ slot: Int, _ scope: Scope?) -> Value? {
        // The chain is walked without reference counting: the caller's `scope` keeps each
        // parent alive, and reading a variable changes no scope's parent.
        guard let scope else { return globals[slot] }
        var current = Unmanaged.passUnretained(scope)
        while true {
            if let value = current._withUnsafeGuaranteedRef({ $0.get(slot) }) { return value }
            guard let parent = current._withUnsafeGuaranteedRef({ $0.unretainedParent }) else { return globals[slot] }
            current = parent
        }
    }

    func assign(_ target: Target, _ value: Value, _ scope: Scope?) throws(TemplateError) {
        switch target {
        case .name(let slot):
            setVariable(slot, value, scope)
        case .tuple(let targets):
            let items: [Value]
            do { items = try value.iterate() } catch {
                throw TemplateError(.type, "cannot unpack non-iterable \(value.typeName) object")
            }
            if items.count < targets.count {
                throw TemplateError(.value, "not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            if items.count > targets.count {
                throw TemplateError(.value, "too many values to unpack (expected \(targets.count))")
            }
            for (target, item) in zip(targets, items) { try assign(target, item, scope) }
        case .namespaceAttribute(let name, let slot, let attribute):
            guard let object = lookup(slot, scope) else {
                throw TemplateError(.undefined, "\(reprString(name)) is undefined")
            }
            guard case .namespace(let namespace) = object else {
                throw TemplateError(.runtime, "cannot assign attribute on non-namespace object")
            }
            namespace.attributes[string: attribute] = value
        }
    }

    // MARK: Loops

    /// A loop's item bound to its target: a plain name by its slot, without `assign`'s unpacking.
    @inline(__always) func bind(_ node: ForNode, _ item: Value, _ scope: Scope) throws(TemplateError) {
        if node.targetSlot >= 0 { scope.set(node.targetSlot, item) } else { try assign(node.target, item, scope) }
    }

    func runLoop(_ node: ForNode, _ iterable: Value, _ scope: Scope?, depth0: Int, _ out: inout Output) throws(TemplateError) {
        var items: [Value]
        do throws(TemplateError) {
            items = try iterable.iterate()
            if let test = node.test {
                // The items are copied only from the first one left out: when the test keeps
                // every item (every pod has its IP), the list is used as it came.
                var kept: [Value]? = nil
                var testScope = Scope(parent: scope)
                for index in items.indices {
                    if testScope.captured { testScope = Scope(parent: scope) }
                    try bind(node, items[index], testScope)
                    let keep: Bool
                    do throws(TemplateError) { keep = try evaluate(test, testScope).isTruthy } catch { throw located(error, node.testLine) }
                    if kept != nil {
                        if keep { kept?.append(items[index]) }
                    } else if !keep {
                        var first: [Value] = []
                        first.reserveCapacity(items.count - 1)
                        first.append(contentsOf: items[..<index])
                        kept = first
                    }
                }
                if let kept { items = kept }
            }
        } catch {
            throw located(error, node.line)
        }
        if items.isEmpty {
            try execute(node.else_, Scope(parent: scope), &out)
            return
        }
        var recurse: ((Value) throws(TemplateError) -> String)? = nil
        if node.recursive {
            scope?.capture()
            recurse = { [unowned self] value throws(TemplateError) -> String in
                self.callDepth += 1
                defer { self.callDepth -= 1 }
                if self.callDepth > Renderer.maximumCallDepth {
                    throw TemplateError(.recursion, "maximum recursion depth exceeded")
                }
                var output = Output()
                try self.runLoop(node, value, scope, depth0: depth0 + 1, &output)
                return output.string
            }
        }
        // The spares are taken, not copied: no reference counting for them.
        var loop: LoopContext
        if let spare = spareLoop.take() {
            spare.reuse(items: items, depth0: depth0, recurse: recurse)
            loop = spare
        } else {
            loop = LoopContext(items: items, depth0: depth0, recurse: recurse)
        }
        var loopValue = Value.loop(loop)
        var iterationScope: Scope
        if let spare = spareScope.take() {
            spare.reuse(parent: scope)
            iterationScope = spare
        } else {
            iterationScope = Scope(parent: scope)
        }
        // The node's parts read once, not once per item.
        let body = node.body
        let loopSlot = node.loopSlot
        for index in items.indices {
            loop.index0 = index
            if iterationScope.captured { iterationScope = Scope(parent: scope) } else if index > 0 { iterationScope.reset() }
            iterationScope.set(loopSlot, loopValue)
            do {
                try bind(node, items[index], iterationScope)
            } catch {
                throw located(error, node.line)
            }
            try execute(body, iterationScope, &out)
        }
        // What nothing kept (a macro, `set outer = loop`, a list) serves the next loop: a loop
        // run for every pod then allocates neither.
        loopValue = .none
        if !iterationScope.captured {
            iterationScope.reuse(parent: nil)
            if isKnownUniquelyReferenced(&iterationScope) { spareScope = consume iterationScope }
        }
        if isKnownUniquelyReferenced(&loop) { spareLoop = consume loop }
    }

    // MARK: Expressions

    /// Expression nesting across macro calls and recursive loops; bounded so that no template
    /// can exhaust the stack (Jinja2 raises RecursionError in the same situations).
    var evaluationDepth = 0
    static let maximumEvaluationDepth = 1000

    @inline(__always) func evaluate(_ expr: Expr, _ scope: Scope?) throws(TemplateError) -> Value {
        // A bound name, the commonest expression, nests nothing.
        if case .name(let slot) = expr, let value = lookup(slot, scope) { return value }
        evaluationDepth += 1
        defer { evaluationDepth -= 1 }
        if evaluationDepth > Renderer.maximumEvaluationDepth || stackPosition() < stackLimit {
            throw TemplateError(.recursion, "maximum recursion depth exceeded")
        }
        return try evaluateNode(expr, scope)
    }

    func evaluateNode(_ expr: Expr, _ scope: Scope?) throws(TemplateError) -> Value {
        switch expr {
        case .const(let literal):
            switch literal {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .bigInt(let b): return .bigInt(b)
            case .float(let d): return .float(d)
            case .string(let s): return .string(s)
            }
        case .name(let slot):
            if let value = lookup(slot, scope) { return value }
            return .undefined(Undefined(name: program.names[slot]))
        case .getattr(let objectExpr, let name):
            if case .getattr(let baseExpr, let first) = objectExpr {
                // `x.first.second` of a JSON object: read without making the dict between,
                // where that changes nothing a template can see (DictRef.lookupPath).
                let base = try evaluate(baseExpr, scope)
                if case .dict(let ref) = base, first.dictMethod == nil, name.dictMethod == nil, let value = ref.lookupPath(first, name) {
                    return value
                }
                return try attribute(try attribute(base, first), name)
            }
            return try attribute(try evaluate(objectExpr, scope), name)
        case .getitem(let objectExpr, let argument):
            let object = try evaluate(objectExpr, scope)
            if case .undefined(let u) = object { throw u.error }
            if case .slice(let start, let stop, let step) = argument {
                return try slice(object,
                                 start.map { e throws(TemplateError) in try evaluate(e, scope) } ?? .none,
                                 stop.map { e throws(TemplateError) in try evaluate(e, scope) } ?? .none,
                                 step.map { e throws(TemplateError) in try evaluate(e, scope) } ?? .none)
            }
            let key = try evaluate(argument, scope)
            return getItem(object, key)
        case .slice:
            return .none
        case .list(let items):
            var values: [Value] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try evaluate(item, scope)) }
            return .list(ListRef(values))
        case .tuple(let items):
            var values: [Value] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try evaluate(item, scope)) }
            return .tuple(values)
        case .dict(let pairs):
            let ref = DictRef()
            for (keyExpr, valueExpr) in pairs {
                let key = try evaluate(keyExpr, scope)
                try requireHashable(key)
                ref[key] = try evaluate(valueExpr, scope)
            }
            return .dict(ref)
        case .binary(let op, let leftExpr, let rightExpr):
            let left = try evaluate(leftExpr, scope)
            if op == .mod, case .string(let format) = left, case .tuple(let itemExprs) = rightExpr {
                return try formatTuple(format, itemExprs, scope)
            }
            let right = try evaluate(rightExpr, scope)
            switch op {
            case .add: return try pyAdd(left, right)
            case .sub: return try pySub(left, right)
            case .mul: return try pyMul(left, right)
            case .div: return try pyTrueDiv(left, right)
            case .floordiv: return try pyFloorDiv(left, right)
            case .mod: return try pyMod(left, right)
            case .pow: return try pyPow(left, right)
            }
        case .neg(let operandExpr):
            let operand = try evaluate(operandExpr, scope)
            switch operand {
            case .int(let i): return i == Int.min ? (-BigInt(i)).normalized : .int(-i)
            case .bool(let b): return .int(b ? -1 : 0)
            case .float(let d): return .float(-d)
            case .bigInt(let b): return (-b).normalized
            case .undefined(let u): throw u.error
            default: throw TemplateError(.type, "bad operand type for unary -: '\(operand.typeName)'")
            }
        case .pos(let operandExpr):
            let operand = try evaluate(operandExpr, scope)
            switch operand {
            case .int, .float, .bigInt: return operand
            case .bool(let b): return .int(b ? 1 : 0)
            case .undefined(let u): throw u.error
            default: throw TemplateError(.type, "bad operand type for unary +: '\(operand.typeName)'")
            }
        case .not(let operand):
            return .bool(!(try evaluate(operand, scope).isTruthy))
        case .and(let leftExpr, let rightExpr):
            let left = try evaluate(leftExpr, scope)
            return left.isTruthy ? try evaluate(rightExpr, scope) : left
        case .or(let leftExpr, let rightExpr):
            let left = try evaluate(leftExpr, scope)
            return left.isTruthy ? left : try evaluate(rightExpr, scope)
        case .compare(let firstExpr, let ops):
            var left = try evaluate(firstExpr, scope)
            for (op, operandExpr) in ops {
                let right = try evaluate(operandExpr, scope)
                if !(try compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .concat(let parts):
            var text = ""
            var anyMarkup = false
            var values: [Value] = []
            values.reserveCapacity(parts.count)
            for part in parts {
                let value = try evaluate(part, scope)
                if case .markup = value { anyMarkup = true }
                values.append(value)
            }
            if autoescape && anyMarkup {
                for value in values {
                    if case .markup(let s) = value { text += s } else { text += htmlEscape(value.pyStr) }
                }
                return .markup(text)
            }
            for value in values { text += value.pyStr }
            return .string(text)
        case .condExpr(let test, let expr1, let expr2, let line):
            if try evaluate(test, scope).isTruthy { return try evaluate(expr1, scope) }
            if let expr2 { return try evaluate(expr2, scope) }
            return .undefined(Undefined(hint: "the inline if-expression on line \(line) evaluated to false and no else section was defined."))
        case .filter(let base, let node):
            let value = try base.map { e throws(TemplateError) in try evaluate(e, scope) } ?? .undefined(Undefined(name: ""))
            return try applyFilter(node, value, scope)
        case .test(let operandExpr, let node):
            let value = try evaluate(operandExpr, scope)
            guard let function = node.function else {
                throw TemplateError(kind: .runtime, message: "No test named \(reprString(node.name)) found.", line: node.line)
            }
            let args = try evaluateArguments(node.arguments, scope)
            do {
                return .bool(try function(FilterCall(value: value, args: args, autoescape: autoescape)))
            } catch {
                throw located(error, node.line)
            }
        case .call(let calleeExpr, let arguments, _):
            // `x.method(...)`: call the Python method without materialising a bound method.
            // The str and dict methods were found by name at parse time.
            if case .getattr(let objectExpr, let name) = calleeExpr {
                let object = try evaluate(objectExpr, scope)
                switch object {
                case .undefined(let u): throw u.error
                case .dict(let ref):
                    if let method = name.dictMethod {
                        return try method(DictMethodCall(ref: ref, name: name.text, args: try evaluateArguments(arguments, scope)))
                    }
                    let callee = ref.lookup(name) ?? .undefined(Undefined(owner: object, attribute: name.text))
                    return try callValue(callee, try evaluateArguments(arguments, scope), calleeExpr: calleeExpr)
                case .string(let text), .markup(let text):
                    if let method = name.stringMethod {
                        let isMarkup = if case .markup = object { true } else { false }
                        if let affix = name.affix, let argumentExpr = arguments.single {
                            // `hostname.startswith('^')`: the common form, without the
                            // method's argument handling.
                            let argument = try evaluate(argumentExpr, scope)
                            switch argument {
                            case .string(let candidate), .markup(let candidate): return .bool(affix.matches(text, candidate))
                            default: return try callStringMethod(method, text, markup: isMarkup, name.text, Arguments([argument]))
                            }
                        }
                        return try callStringMethod(method, text, markup: isMarkup, name.text, try evaluateArguments(arguments, scope))
                    }
                case .loop, .cycler, .joiner, .namespace, .function:
                    break
                default:
                    if methodExists(object, name.text) {
                        let args = try evaluateArguments(arguments, scope)
                        if let result = try callMethod(object, name.text, args) { return result }
                    }
                }
                let callee = getAttribute(object, name.text)
                return try callValue(callee, try evaluateArguments(arguments, scope), calleeExpr: calleeExpr)
            }
            let callee = try evaluate(calleeExpr, scope)
            return try callValue(callee, try evaluateArguments(arguments, scope), calleeExpr: calleeExpr)
        }
    }

    /// `object.name`: a dict's member (its methods come first), a loop's attribute, or what
    /// `getAttribute` finds.
    func attribute(_ object: Value, _ name: AttributeName) throws(TemplateError) -> Value {
        switch object {
        case .dict(let ref) where name.dictMethod == nil:
            if let value = ref.lookup(name) { return value }
            return .undefined(Undefined(owner: object, attribute: name.text))
        case .loop(let loop):
            if let attribute = name.loopAttribute { return attribute.value(of: loop) }
            return getAttribute(object, name.text)
        case .undefined(let u):
            throw u.error
        default:
            return getAttribute(object, name.text)
        }
    }

    /// A loop's scope and LoopContext that nothing kept when it ended (see `runLoop`).
    private var spareScope: Scope? = nil
    private var spareLoop: LoopContext? = nil

    /// `format % (items...)`, as `pyMod` does it, without making the tuple when the format is
    /// simple: the items are evaluated into stack memory (a `"%d_%d"` run for every server line
    /// allocates nothing).
    func formatTuple(_ format: String, _ itemExprs: [Expr], _ scope: Scope?) throws(TemplateError) -> Value {
        let count = itemExprs.count
        let result = withUnsafeTemporaryAllocation(of: Value.self, capacity: count) { items -> Result<Value, TemplateError> in
            var evaluated = 0
            defer { items.baseAddress?.deinitialize(count: evaluated) }
            do throws(TemplateError) {
                while evaluated < count {
                    (items.baseAddress! + evaluated).initialize(to: try evaluate(itemExprs[evaluated], scope))
                    evaluated += 1
                }
                if let text = simplePercentFormat(format, arguments: UnsafeBufferPointer(items)) { return .success(.string(text)) }
                // `str % tuple`, as pyMod does it, without trying the simple form again.
                return .success(.string(try generalPercentFormat(format, .tuple(Array(items)))))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    func compare(_ op: CompareOperator, _ left: Value, _ right: Value) throws(TemplateError) -> Bool {
        switch op {
        case .eq: return pyEquals(left, right)
        case .ne: return !pyEquals(left, right)
        case .lt: return try pyCompare(left, right, "<") == -1
        case .lteq: let c = try pyCompare(left, right, "<="); return c == -1 || c == 0
        case .gt: return try pyCompare(left, right, ">") == 1
        case .gteq: let c = try pyCompare(left, right, ">="); return c == 1 || c == 0
        case .in: return try pyContains(right, left)
        case .notin: return !(try pyContains(right, left))
        }
    }

    func evaluateArguments(_ arguments: CallArguments, _ scope: Scope?) throws(TemplateError) -> Arguments {
        var result = Arguments()
        if arguments.isEmpty { return result }
        result.positional.reserveCapacity(arguments.args.count)
        for arg in arguments.args { result.positional.append(try evaluate(arg, scope)) }
        for (name, expr) in arguments.kwargs { result.keywords.append((name, try evaluate(expr, scope))) }
        if let dynArgs = arguments.dynArgs {
            let value = try evaluate(dynArgs, scope)
            result.positional.append(contentsOf: try value.iterate())
        }
        if let dynKwargs = arguments.dynKwargs {
            let value = try evaluate(dynKwargs, scope)
            guard case .dict(let ref) = value else {
                throw TemplateError(.type, "argument after ** must be a mapping, not \(value.typeName)")
            }
            for (key, item) in zip(ref.keys, ref.values) {
                guard case .string(let name) = key else { throw TemplateError(.type, "keywords must be strings") }
                result.keywords.append((name, item))
            }
        }
        return result
    }

    func applyFilter(_ node: FilterNode, _ value: Value, _ scope: Scope?) throws(TemplateError) -> Value {
        guard let function = node.function else {
            throw TemplateError(kind: .runtime, message: "No filter named \(reprString(node.name)) found.", line: node.line)
        }
        let args = try evaluateArguments(node.arguments, scope)
        do {
            return try function(FilterCall(value: value, args: args, autoescape: autoescape))
        } catch {
            throw located(error, node.line)
        }
    }

    /// Applies a filter chain whose innermost input is `input` (filter blocks, `set` blocks).
    func applyFilterChain(_ expr: Expr, _ input: Value, _ scope: Scope?) throws(TemplateError) -> Value {
        guard case .filter(let base, let node) = expr else { return try evaluate(expr, scope) }
        let value = try base.map { e throws(TemplateError) in try applyFilterChain(e, input, scope) } ?? input
        return try applyFilter(node, value, scope)
    }

    // MARK: Calls

    func callValue(_ callee: Value, _ args: Arguments, calleeExpr: Expr) throws(TemplateError) -> Value {
        switch callee {
        case .function(let function):
            switch function.kind {
            case .builtin(let body):
                return try body(args)
            case .boundMethod(let receiver, let name):
                if case .loop(let loop) = receiver { return try callLoopMethod(loop, name, args) }
                if let result = try callMethod(receiver, name, args) { return result }
                throw TemplateError(.type, "'\(function.typeNameForCall)' object is not callable")
            case .macro(let closure):
                return try callMacro(closure, args)
            case .loopRecurse(let loop):
                return try recurseLoop(loop, args)
            case .block(let block):
                return try callBlock(block, args)
            }
        case .loop(let loop):
            return try recurseLoop(loop, args)
        case .undefined(let u):
            throw u.error
        case .joiner(let joiner):
            return .string(joiner.call())
        default:
            throw TemplateError(.type, "'\(callee.typeName)' object is not callable")
        }
    }

    func recurseLoop(_ loop: LoopContext, _ args: Arguments) throws(TemplateError) -> Value {
        guard let recurse = loop.recurse else {
            throw TemplateError(.type, "The loop must have the 'recursive' marker to be called recursively.")
        }
        guard args.positional.count == 1, args.keywords.isEmpty else {
            throw TemplateError(.type, "LoopContext.__call__() takes 2 positional arguments but \(args.positional.count + 1) were given")
        }
        let text = try recurse(args.positional[0])
        return autoescape ? .markup(text) : .string(text)
    }

    func callLoopMethod(_ loop: LoopContext, _ name: String, _ args: Arguments) throws(TemplateError) -> Value {
        switch name {
        case "cycle":
            guard !args.positional.isEmpty else { throw TemplateError(.type, "no items for cycling given") }
            return args.positional[loop.index0 % args.positional.count]
        case "changed":
            let values = args.positional
            if let last = loop.lastChanged, last.count == values.count, zip(last, values).allSatisfy({ pyEquals($0, $1) }) {
                return .bool(false)
            }
            loop.lastChanged = values
            return .bool(true)
        default:
            throw TemplateError(.attribute, "'LoopContext' object has no attribute '\(name)'")
        }
    }

    func callMacro(_ closure: MacroClosure, _ args: Arguments) throws(TemplateError) -> Value {
        let macro = closure.macro
        callDepth += 1
        defer { callDepth -= 1 }
        if callDepth > Renderer.maximumCallDepth {
            throw TemplateError(.recursion, "maximum recursion depth exceeded")
        }
        let scope = Scope(parent: closure.scope)
        var keywords = args.keywords
        func popKeyword(_ name: String) -> Value? {
            if let index = keywords.firstIndex(where: { $0.0 == name }) { return keywords.remove(at: index).1 }
            return nil
        }
        let count = macro.arguments.count
        var missing: [Int] = []
        for (index, argument) in macro.arguments.enumerated() {
            if index < args.positional.count {
                scope.set(argument.slot, args.positional[index])
            } else if let value = popKeyword(argument.name) {
                scope.set(argument.slot, value)
            } else {
                missing.append(index)
            }
        }
        if macro.callerUsed {
            let caller = popKeyword("caller") ?? .undefined(Undefined(hint: "No caller defined"))
            scope.set(macro.callerSlot, caller)
        }
        if macro.catchKwargs {
            let ref = DictRef()
            for (key, value) in keywords { ref[string: key] = value }
            scope.set(macro.kwargsSlot, .dict(ref))
        } else if let first = keywords.first {
            if keywords.contains(where: { $0.0 == "caller" }) {
                throw TemplateError(.type, "macro \(reprString(macro.name)) was invoked with two values for the special caller argument. This is most likely a bug.")
            }
            throw TemplateError(.type, "macro \(reprString(macro.name)) takes no keyword argument \(reprString(first.0))")
        }
        if macro.catchVarargs {
            scope.set(macro.varargsSlot, .tuple(args.positional.count > count ? Array(args.positional[count...]) : []))
        } else if args.positional.count > count {
            throw TemplateError(.type, "macro \(reprString(macro.name)) takes not more than \(count) argument(s)")
        }
        // Defaults are evaluated in the macro's own scope, so they may refer to earlier arguments.
        let firstDefault = count - macro.defaults.count
        for index in missing {
            let argument = macro.arguments[index]
            if index >= firstDefault {
                scope.set(argument.slot, try evaluate(macro.defaults[index - firstDefault], scope))
            } else {
                scope.set(argument.slot, .undefined(Undefined(hint: "parameter \(reprString(argument.name)) was not provided")))
            }
        }
        var output = Output()
        try execute(macro.body, scope, &output)
        let text = output.string
        return autoescape ? .markup(text) : .string(text)
    }

    // MARK: Slicing

    /// `object[start:stop:step]`: Jinja2 compiles slices to a plain Python subscript, so
    /// failures raise instead of giving Undefined.
    func slice(_ object: Value, _ start: Value, _ stop: Value, _ step: Value) throws(TemplateError) -> Value {
        switch object {
        case .list, .tuple, .string, .markup: break
        case .undefined(let u): throw u.error
        case .dict: throw TemplateError(.type, "unhashable type: 'slice'")
        default: throw TemplateError(.type, "'\(object.typeName)' object is not subscriptable")
        }
        func index(_ value: Value) -> Int?? {
            switch value {
            case .none: return .some(nil)
            case .int(let i): return .some(i)
            case .bool(let b): return .some(b ? 1 : 0)
            case .bigInt(let b): return .some(b.negative ? Int.min / 2 : Int.max / 2)
            default: return nil
            }
        }
        guard let startIndex = index(start), let stopIndex = index(stop), let stepIndex = index(step) else {
            throw TemplateError(.type, "slice indices must be integers or None or have an __index__ method")
        }
        let stepValue = stepIndex ?? 1
        if stepValue == 0 { throw TemplateError(.value, "slice step cannot be zero") }
        /// Python's `slice.indices(length)`.
        func bounds(_ length: Int) -> (Int, Int) {
            if stepValue > 0 {
                return (startIndex.map { $0 < 0 ? max(0, $0 + length) : min($0, length) } ?? 0,
                        stopIndex.map { $0 < 0 ? max(0, $0 + length) : min($0, length) } ?? length)
            }
            return (startIndex.map { $0 < 0 ? max(-1, $0 + length) : min($0, length - 1) } ?? (length - 1),
                    stopIndex.map { $0 < 0 ? max(-1, $0 + length) : min($0, length - 1) } ?? -1)
        }
        func indices(_ length: Int) -> [Int] {
            let (lower, upper) = bounds(length)
            var result: [Int] = []
            var i = lower
            if stepValue > 0 {
                while i < upper { result.append(i); i += stepValue }
            } else {
                while i > upper { result.append(i); i += stepValue }
            }
            return result
        }
        switch object {
        case .list(let ref):
            let items = indices(ref.items.count).map { ref.items[$0] }
            if case .range(let start, _, let step) = ref.kind {
                let (lower, upper) = bounds(ref.items.count)
                return .list(ListRef(items, kind: .range(start: start + lower * step, stop: start + upper * step, step: step * stepValue)))
            }
            return .list(ListRef(items))
        case .tuple(let items): return .tuple(indices(items.count).map { items[$0] })
        case .string(let s), .markup(let s):
            // `hostname[1:]` of ASCII text: its bytes are its code points.
            var text = s
            let asciiSlice = stepValue != 1 ? nil : text.withUTF8 { utf8 -> String? in
                guard isASCII(utf8) else { return nil }
                let (lower, upper) = bounds(utf8.count)
                guard lower < upper else { return "" }
                return String(decoding: UnsafeBufferPointer(rebasing: utf8[lower..<upper]), as: UTF8.self)
            }
            let sliced: String
            if let asciiSlice {
                sliced = asciiSlice
            } else {
                let scalars = Array(s.unicodeScalars)
                var view = String.UnicodeScalarView()
                for i in indices(scalars.count) { view.append(scalars[i]) }
                sliced = String(view)
            }
            if case .markup = object { return .markup(sliced) }
            return .string(sliced)
        default:
            return .undefined(Undefined(owner: object, key: .string("slice")))
        }
    }
}

extension Function {
    var typeNameForCall: String { Value.function(self).typeName }
}
