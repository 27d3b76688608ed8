// The global functions of Jinja2's default namespace: range, dict, lipsum, cycler, joiner,
// namespace.

/// Fresh per render: the objects they create are mutable.
var builtinGlobals: [(String, Value)] {
    [
        ("range", .function(Function(name: "range", kind: .builtin(globalRange)))),
        ("dict", .function(Function(name: "dict", kind: .builtin(globalDict)))),
        ("lipsum", .function(Function(name: "lipsum", kind: .builtin(globalLipsum)))),
        ("cycler", .function(Function(name: "cycler", kind: .builtin({ args throws(TemplateError) in
            if args.positional.isEmpty { throw TemplateError(.runtimeError, "at least one item has to be provided") }
            return .cycler(Cycler(args.positional))
        })))),
        ("joiner", .function(Function(name: "joiner", kind: .builtin({ args throws(TemplateError) in
            let separator = args.argument(0, "sep")?.pyStr ?? ", "
            return .joiner(Joiner(separator))
        })))),
        ("namespace", .function(Function(name: "namespace", kind: .builtin(globalNamespace)))),
    ]
}

/// The most items `range` materialises; larger ranges would exhaust memory.
let maximumRange = 10_000_000

@Sendable func globalRange(_ args: Arguments) throws(TemplateError) -> Value {
    if !args.keywords.isEmpty { throw TemplateError(.type, "range() takes no keyword arguments") }
    var integers: [Int] = []
    for value in args.positional {
        switch value {
        case .int(let i): integers.append(i)
        case .bool(let b): integers.append(b ? 1 : 0)
        case .undefined(let u): throw u.error
        default: throw TemplateError(.type, "'\(value.typeName)' object cannot be interpreted as an integer")
        }
    }
    var start = 0, stop = 0, step = 1
    switch integers.count {
    case 0: throw TemplateError(.type, "range expected at least 1 argument, got 0")
    case 1: stop = integers[0]
    case 2: start = integers[0]; stop = integers[1]
    case 3: start = integers[0]; stop = integers[1]; step = integers[2]
    default: throw TemplateError(.type, "range expected at most 3 arguments, got \(integers.count)")
    }
    if step == 0 { throw TemplateError(.value, "range() arg 3 must not be zero") }
    let count: Int
    if step > 0 { count = start < stop ? (stop - start - 1) / step + 1 : 0 } else { count = start > stop ? (start - stop - 1) / (-step) + 1 : 0 }
    if count > maximumRange { throw TemplateError(.overflow, "range() result has too many items") }
    var items: [Value] = []
    items.reserveCapacity(count)
    var current = start
    for _ in 0..<count {
        items.append(.int(current))
        current += step
    }
    return .list(ListRef(items, kind: .range(start: start, stop: stop, step: step)))
}

@Sendable func globalDict(_ args: Arguments) throws(TemplateError) -> Value {
    if args.positional.count > 1 { throw TemplateError(.type, "dict expected at most 1 argument, got \(args.positional.count)") }
    let ref = DictRef()
    if let source = args.positional.first {
        switch source {
        case .dict(let other):
            for (key, value) in zip(other.keys, other.values) { ref[key] = value }
        default:
            for (index, element) in try source.iterate().enumerated() {
                let pair = try element.iterate()
                guard pair.count == 2 else {
                    throw TemplateError(.value, "dictionary update sequence element #\(index) has length \(pair.count); 2 is required")
                }
                try requireHashable(pair[0])
                ref[pair[0]] = pair[1]
            }
        }
    }
    for (key, value) in args.keywords { ref[string: key] = value }
    return .dict(ref)
}

@Sendable func globalNamespace(_ args: Arguments) throws(TemplateError) -> Value {
    let dict = try globalDict(args)
    guard case .dict(let ref) = dict else { return .namespace(Namespace()) }
    return .namespace(Namespace(ref))
}

private let lipsumWords = """
    a ac accumsan ad adipiscing aenean aliquam aliquet amet ante aptent arcu at auctor augue bibendum \
    blandit class commodo condimentum congue consectetuer consequat conubia convallis cras cubilia \
    cum curabitur curae cursus dapibus diam dictum dictumst dignissim dis dolor donec dui duis egestas \
    eget eleifend elementum elit enim erat eros est et etiam eu euismod facilisi facilisis fames \
    faucibus felis fermentum feugiat fringilla fusce gravida habitant habitasse hac hendrerit hymenaeos \
    iaculis id imperdiet in inceptos integer interdum ipsum justo lacinia lacus laoreet lectus leo \
    libero ligula litora lobortis lorem luctus maecenas magna magnis malesuada massa mattis mauris \
    metus mi molestie mollis montes morbi mus nam nascetur natoque nec neque netus nibh nisi nisl non \
    nonummy nostra nulla nullam nunc odio orci ornare parturient pede pellentesque penatibus per \
    pharetra phasellus placerat platea porta porttitor posuere potenti praesent pretium primis proin \
    pulvinar purus quam quis quisque rhoncus ridiculus risus rutrum sagittis sapien scelerisque sed \
    sem semper senectus sit sociis sociosqu sodales sollicitudin suscipit suspendisse taciti tellus \
    tempor tempus tincidunt torquent tortor tristique turpis ullamcorper ultrices ultricies urna ut \
    varius vehicula vel velit venenatis vestibulum vitae vivamus viverra volutpat vulputate
    """.split(separator: " ").map(String.init)

/// `lipsum(n=5, html=True, min=20, max=100)`: random lorem ipsum paragraphs, built the way
/// Jinja2's `generate_lorem_ipsum` builds them.
@Sendable func globalLipsum(_ args: Arguments) throws(TemplateError) -> Value {
    let count = args.argument(0, "n")?.intValue ?? 5
    let html = args.argument(1, "html")?.isTruthy ?? true
    let minimum = args.argument(2, "min")?.intValue ?? 20
    let maximum = args.argument(3, "max")?.intValue ?? 100
    if maximum <= minimum { throw TemplateError(.value, "empty range in randrange(\(minimum), \(maximum))") }
    var generator = SystemRandomNumberGenerator()
    func capitalized(_ word: String) -> String { word.prefix(1).uppercased() + word.dropFirst() }
    var paragraphs: [String] = []
    for _ in 0..<max(0, min(count, 10_000)) {
        var nextCapitalized = true
        var lastComma = 0
        var lastFullstop = 0
        var last: String? = nil
        var words: [String] = []
        let length = Int.random(in: minimum..<min(maximum, minimum + 1_000_000), using: &generator)
        for index in 0..<length {
            var word = lipsumWords.randomElement(using: &generator) ?? "lorem"
            while word == last { word = lipsumWords.randomElement(using: &generator) ?? "lorem" }
            last = word
            if nextCapitalized {
                word = capitalized(word)
                nextCapitalized = false
            }
            if index - Int.random(in: 3..<8, using: &generator) > lastComma {
                lastComma = index
                lastFullstop += 2
                word += ","
            }
            if index - Int.random(in: 10..<20, using: &generator) > lastFullstop {
                lastComma = index
                lastFullstop = index
                word += "."
                nextCapitalized = true
            }
            words.append(word)
        }
        var paragraph = words.joined(separator: " ")
        if paragraph.hasSuffix(",") {
            paragraph.removeLast()
            paragraph += "."
        } else if !paragraph.hasSuffix(".") {
            paragraph += "."
        }
        paragraphs.append(paragraph)
    }
    if !html { return .string(paragraphs.joined(separator: "\n\n")) }
    return .markup(paragraphs.map { "<p>\(htmlEscape($0))</p>" }.joined(separator: "\n"))
}
