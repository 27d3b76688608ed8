/// Compile-time checks Jinja2's code generator makes: unknown filters and tests are errors,
/// except inside `if` statements and conditional expressions (there they fail when run).
struct Checker {
    /// The template's blocks by name, gathered as Jinja2's compiler does before anything else,
    /// and as it refuses a repeated name: "block 'x' defined twice".
    func collectBlocks(_ nodes: [Node], into blocks: inout [String: BlockDefinition]) throws(TemplateError) {
        for node in nodes {
            switch node {
            case .block(let block):
                if blocks[block.name] != nil {
                    throw TemplateError(kind: .assertion, message: "block \(reprString(block.name)) defined twice", line: block.line)
                }
                blocks[block.name] = block
                try collectBlocks(block.body, into: &blocks)
            case .if(let ifNode):
                for branch in ifNode.branches { try collectBlocks(branch.body, into: &blocks) }
                try collectBlocks(ifNode.else_, into: &blocks)
            case .for(let forNode):
                try collectBlocks(forNode.body, into: &blocks)
                try collectBlocks(forNode.else_, into: &blocks)
            case .assignBlock(_, _, let body, _), .filterBlock(_, let body, _), .with(_, let body, _),
                 .scopedAutoescape(_, let body, _):
                try collectBlocks(body, into: &blocks)
            case .macro(let macro): try collectBlocks(macro.body, into: &blocks)
            case .callBlock(let call): try collectBlocks(call.caller.body, into: &blocks)
            default: continue
            }
        }
    }

    mutating func check(_ nodes: [Node], soft: Bool) throws(TemplateError) {
        for node in nodes { try check(node, soft: soft) }
    }

    mutating func check(_ node: Node, soft: Bool) throws(TemplateError) {
        switch node {
        case .templateData, .needsLoader: return
        case .output(let expr, _): try check(expr, soft: soft)
        case .if(let ifNode):
            for branch in ifNode.branches {
                try check(branch.test, soft: true)
                try check(branch.body, soft: true)
            }
            try check(ifNode.else_, soft: true)
        case .for(let forNode):
            try check(forNode.iter, soft: soft)
            if let test = forNode.test { try check(test, soft: false) }
            try check(forNode.body, soft: false)
            try check(forNode.else_, soft: false)
        case .assign(_, let expr, _): try check(expr, soft: soft)
        case .assignBlock(_, let filter, let body, _):
            try check(body, soft: false)
            if let filter { try check(filter, soft: soft) }
        case .macro(let macro):
            for value in macro.defaults { try check(value, soft: soft) }
            try check(macro.body, soft: false)
        case .callBlock(let call):
            try check(call.call, soft: soft)
            for value in call.caller.defaults { try check(value, soft: soft) }
            try check(call.caller.body, soft: false)
        case .filterBlock(let filter, let body, _):
            try check(filter, soft: soft)
            try check(body, soft: false)
        case .with(let targets, let body, _):
            for (_, value) in targets { try check(value, soft: soft) }
            try check(body, soft: false)
        case .scopedAutoescape(let expr, let body, _):
            try check(expr, soft: soft)
            try check(body, soft: soft)
        case .block(let block): try check(block.body, soft: false)
        }
    }

    mutating func check(_ arguments: CallArguments, soft: Bool) throws(TemplateError) {
        for arg in arguments.args { try check(arg, soft: soft) }
        for (_, value) in arguments.kwargs { try check(value, soft: soft) }
        if let dyn = arguments.dynArgs { try check(dyn, soft: soft) }
        if let dyn = arguments.dynKwargs { try check(dyn, soft: soft) }
    }

    mutating func check(_ expr: Expr, soft: Bool) throws(TemplateError) {
        switch expr {
        case .const, .name: return
        case .list(let items), .tuple(let items), .concat(let items): for item in items { try check(item, soft: soft) }
        case .dict(let pairs):
            for (key, value) in pairs { try check(key, soft: soft); try check(value, soft: soft) }
        case .getattr(let node, _): try check(node, soft: soft)
        case .getitem(let node, let argument): try check(node, soft: soft); try check(argument, soft: soft)
        case .slice(let start, let stop, let step):
            if let start { try check(start, soft: soft) }
            if let stop { try check(stop, soft: soft) }
            if let step { try check(step, soft: soft) }
        case .binary(_, let left, let right), .and(let left, let right), .or(let left, let right):
            try check(left, soft: soft); try check(right, soft: soft)
        case .neg(let node), .pos(let node), .not(let node): try check(node, soft: soft)
        case .compare(let first, let ops):
            try check(first, soft: soft)
            for (_, operand) in ops { try check(operand, soft: soft) }
        case .condExpr(let test, let expr1, let expr2, _):
            try check(test, soft: true)
            try check(expr1, soft: true)
            if let expr2 { try check(expr2, soft: true) }
        case .filter(let node, let filter):
            if filter.function == nil, !soft {
                throw TemplateError(kind: .assertion, message: "No filter named \(reprString(filter.name)).", line: filter.line)
            }
            if let node { try check(node, soft: soft) }
            try check(filter.arguments, soft: soft)
        case .test(let node, let test):
            if test.function == nil, !soft {
                throw TemplateError(kind: .assertion, message: "No test named \(reprString(test.name)).", line: test.line)
            }
            try check(node, soft: soft)
            try check(test.arguments, soft: soft)
        case .call(let node, let arguments, _):
            try check(node, soft: soft)
            try check(arguments, soft: soft)
        }
    }
}
