// Just enough YAML to read the ConfigMaps in examples/: `metadata` name and namespace, and
// `data` whose values are literal block scalars (`|`, `|-`), quoted or plain scalars.
import Foundation

struct ConfigMapYAML {
    var name: String
    var namespace: String
    var data: [(String, String)]

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    init(path: String) throws {
        try self.init(text: String(contentsOfFile: path, encoding: .utf8), source: path)
    }

    init(text: String, source: String = "yaml") throws {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var section = ""
        var name: String?
        var namespace: String?
        var data: [(String, String)] = []
        var index = 0
        func indentation(_ line: String) -> Int { line.prefix { $0 == " " }.count }
        while index < lines.count {
            let line = lines[index]
            index += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let colon = trimmed.firstIndex(of: ":") else {
                throw ParseError(description: "\(source):\(index): expected KEY: VALUE")
            }
            let key = String(trimmed[..<colon])
            let rest = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            let level = indentation(line)
            if level == 0 {
                section = key
                continue
            }
            var value: String
            if rest == "|" || rest == "|-" {
                // A literal block: the lines indented deeper than the key, less the first one's indent.
                var block: [String] = []
                var blockIndent: Int?
                while index < lines.count {
                    let next = lines[index]
                    if next.trimmingCharacters(in: .whitespaces).isEmpty {
                        block.append("")
                        index += 1
                        continue
                    }
                    let nextIndent = indentation(next)
                    if nextIndent <= level { break }
                    let indent = blockIndent ?? nextIndent
                    blockIndent = indent
                    guard nextIndent >= indent else {
                        throw ParseError(description: "\(source):\(index + 1): block less indented than its first line")
                    }
                    block.append(String(next.dropFirst(indent)))
                    index += 1
                }
                while block.last == "" { block.removeLast() }
                value = block.joined(separator: "\n") + (rest == "|" && !block.isEmpty ? "\n" : "")
            } else if rest.count >= 2, rest.hasPrefix("'"), rest.hasSuffix("'") {
                value = String(rest.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
            } else if rest.count >= 2, rest.hasPrefix("\""), rest.hasSuffix("\"") {
                value = String(rest.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
                    .replacingOccurrences(of: "\\\\", with: "\\")
            } else {
                value = rest
            }
            switch section {
            case "metadata" where key == "name": name = value
            case "metadata" where key == "namespace": namespace = value
            case "data": data.append((key, value))
            default: break
            }
        }
        guard let name, let namespace else { throw ParseError(description: "\(source): no metadata name and namespace") }
        self.name = name
        self.namespace = namespace
        self.data = data
    }

    subscript(key: String) -> String? { data.last { $0.0 == key }?.1 }
}
