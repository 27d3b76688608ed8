// The public entry point: compile once, render many times.


public struct Template: Sendable {
    public let name: String
    let program: Program

    public init(source: String, name: String = "<template>") throws(TemplateError) {
        self.name = name
        do {
            self.program = try Parser.parse(source: source)
        } catch {
            var located = error
            located.name = name
            throw located
        }
    }

    public func render(_ context: [(String, Value)]) throws(TemplateError) -> String {
        do {
            let renderer = Renderer(program: program)
            return try renderer.render(context)
        } catch {
            var located = error
            located.name = name
            throw located
        }
    }

    /// Renders with the top-level keys of a JSON object as variables.
    public func render(jsonContext: String) throws -> String {
        let value = try Value.parseJSONLazily(jsonContext)
        guard case .dict(let ref) = value else {
            throw TemplateError(kind: .type, message: "the context must be a JSON object", line: 0, name: name)
        }
        var context: [(String, Value)] = []
        context.reserveCapacity(ref.count)
        for (key, value) in zip(ref.keys, ref.values) { context.append((key.pyStr, value)) }
        return try render(context)
    }
}
