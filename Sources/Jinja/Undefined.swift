// Jinja2's default Undefined: what a missing variable, attribute or item evaluates to.

/// Jinja2's `Undefined`: prints empty, iterates empty, is falsy; anything more raises
/// `UndefinedError` with the message Jinja2 builds from what was looked up where.
public struct Undefined {
    /// An explicit message (Jinja2's `hint`), used as is.
    public var hint: String?
    /// `object_type_repr` of the object the lookup was made on; nil for a plain missing name.
    public var owner: String?
    /// The name or key looked up.
    public var name: String
    /// False when the key was not a string (`x[0]`): Jinja2 then says "has no element".
    public var nameIsString: Bool

    public init(name: String) {
        self.hint = nil; self.owner = nil; self.name = name; self.nameIsString = true
    }

    public init(hint: String) {
        self.hint = hint; self.owner = nil; self.name = ""; self.nameIsString = true
    }

    /// `super` in a block (`super()`, `self.name.super`): a single template has no parent block.
    init(superOf block: BlockDefinition) {
        self.init(hint: "there is no parent block called \(reprString(block.name)).")
    }

    /// A failed attribute or item lookup on `object`.
    public init(owner object: Value, key: Value) {
        self.hint = nil
        self.owner = object.objectTypeRepr
        if case .string(let s) = key { name = s; nameIsString = true } else { name = repr(key); nameIsString = false }
    }

    public init(owner object: Value, attribute: String) {
        self.hint = nil
        self.owner = object.objectTypeRepr
        self.name = attribute
        self.nameIsString = true
    }

    public var message: String {
        if let hint { return hint }
        guard let owner else { return "\(reprString(name)) is undefined" }
        if !nameIsString { return "\(owner) has no element \(name)" }
        return "\(reprString(owner)) has no attribute \(reprString(name))"
    }

    public var error: TemplateError { TemplateError(.undefined, message) }
}
