// How HAProxy 2.6 answers the runtime commands of a plan: each command either says it worked in
// its own words or answers with nothing; anything else is an error message.

public enum AdminAnswer {
    /// What the answer to a plan's command (not `del server`) says, without the blanks around
    /// it, when it does not say the command worked; nil when it does.
    public static func failure(command: String, answer: String) -> String? {
        let text = answer.trimmingBlanks
        let worked: Bool
        if command.hasPrefix("add server ") {
            worked = text == "New server registered."
        } else if command.hasPrefix("set server "), command.contains(" addr ") {
            // "IP changed from 'a' to 'b', port changed from …" or "no need to change the addr, …".
            worked = text.hasPrefix("IP changed from") || text.hasPrefix("no need to change the addr")
        } else {
            worked = text.isEmpty
        }
        return worked ? nil : text
    }

    public enum Deletion: Equatable, Sendable {
        case deleted
        /// Connections (active or idle) are still attached: try again later.
        case busy
        case failed(String)
    }

    /// The outcome of `del server`.
    public static func deletion(_ answer: String) -> Deletion {
        let text = answer.trimmingBlanks
        if text == "Server deleted." { return .deleted }
        if text.contains("still has connections") { return .busy }
        return .failed(text)
    }
}

extension String {
    var trimmingBlanks: String {
        var slice = self[...]
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}
