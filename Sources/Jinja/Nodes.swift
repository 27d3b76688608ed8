// The template's syntax tree (placeholder until the parser lands).

struct Program: Sendable {}

public final class MacroDefinition: Sendable {
    let name: String
    init(name: String) { self.name = name }
}

final class Scope {
    var slots: [Value?]
    let parent: Scope?
    init(size: Int, parent: Scope?) {
        slots = Array(repeating: nil, count: size)
        self.parent = parent
    }
}

enum Parser {
    static func parse(source: String) throws(TemplateError) -> Program { Program() }
}

struct Renderer {
    let program: Program
    mutating func render(_ context: [(String, Value)]) throws(TemplateError) -> String { "" }
}
