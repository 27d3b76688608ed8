// Python's `sorted()`: stable, with CPython's comparison order on short lists, used by the
// `sort`, `dictsort`, `groupby`, `unique`, `min`/`max` filters.

/// `a < b` as Python's sort sees it.
@inline(__always) private func lessThan(_ a: Value, _ b: Value) throws(TemplateError) -> Bool {
    switch (a, b) {
    case (.int(let x), .int(let y)): return x < y
    case (.string(let x), .string(let y)): return compareCodePoints(x, y) < 0
    default: return try pyCompare(a, b, "<") == -1
    }
}

/// Python's `sorted(items, key=key, reverse=reverse)`: stable, and for short lists it makes
/// the same comparisons in the same order as CPython (so a TypeError names the same types).
func pySorted(_ items: [Value], reverse: Bool, key: (Value) throws(TemplateError) -> Value) throws(TemplateError) -> [Value] {
    var keys: [Value] = []
    keys.reserveCapacity(items.count)
    for item in items { keys.append(try key(item)) }
    // CPython sorts a reversed list and reverses the result, which keeps equal keys in order.
    var order = reverse ? Array((0..<items.count).reversed()) : Array(0..<items.count)
    let n = order.count
    if n >= 64, let strings = homogeneousKeys(keys, { if case .string(let s) = $0 { s } else { nil } }) {
        order = mergeSorted(order) { compareCodePoints(strings[$0], strings[$1]) < 0 }
    } else if n >= 64, let ints = homogeneousKeys(keys, { if case .int(let i) = $0 { i } else { nil } }) {
        order = mergeSorted(order) { ints[$0] < ints[$1] }
    } else if n >= 2 {
        // CPython's first run (the whole list when short): the same comparisons in the same
        // order, so an unorderable pair fails with the same message.
        try sortFirstRun(&order, keys, minimum: minimumRun(n))
        if n >= 64 {
            var failure: TemplateError? = nil
            order = mergeSorted(order) { i, j in
                if failure != nil { return false }
                do throws(TemplateError) { return try lessThan(keys[i], keys[j]) } catch { failure = error; return false }
            }
            if let failure { throw failure }
        }
    }
    if reverse { order.reverse() }
    return order.map { items[$0] }
}

/// CPython's `merge_compute_minrun`.
private func minimumRun(_ count: Int) -> Int {
    var n = count
    var r = 0
    while n >= 64 {
        r |= n & 1
        n >>= 1
    }
    return n + r
}

/// CPython's `count_run` then `binarysort` up to `minimum` elements (listsort's first step).
private func sortFirstRun(_ order: inout [Int], _ keys: [Value], minimum: Int) throws(TemplateError) {
    let n = order.count
    var run = 2
    if try lessThan(keys[order[1]], keys[order[0]]) {
        while run < n, try lessThan(keys[order[run]], keys[order[run - 1]]) { run += 1 }
        order[0..<run].reverse()
    } else {
        while run < n, !(try lessThan(keys[order[run]], keys[order[run - 1]])) { run += 1 }
    }
    let end = Swift.max(run, Swift.min(minimum, n))
    var start = run
    while start < end {
        let pivot = order[start]
        var low = 0
        var high = start
        while low < high {
            let middle = (low + high) / 2
            if try lessThan(keys[pivot], keys[order[middle]]) { high = middle } else { low = middle + 1 }
        }
        if low < start {
            order.remove(at: start)
            order.insert(pivot, at: low)
        }
        start += 1
    }
}

/// `sort(attribute=...)` keys are one-element lists (Jinja2's multi-attribute getter); for
/// str and int items comparing the lists is comparing the items.
@inline(__always) private func unwrappedKey(_ key: Value) -> Value {
    if case .list(let ref) = key, ref.isList, ref.items.count == 1 { return ref.items[0] }
    return key
}

/// The keys as `T` when every one of them (unwrapped) is one, nil otherwise.
@inline(__always) private func homogeneousKeys<T>(_ keys: [Value], _ cast: (Value) -> T?) -> [T]? {
    var out: [T] = []
    out.reserveCapacity(keys.count)
    for key in keys {
        guard let typed = cast(unwrappedKey(key)) else { return nil }
        out.append(typed)
    }
    return out
}

/// Stable bottom-up merge sort of positions for longer lists.
private func mergeSorted(_ input: [Int], by less: (Int, Int) -> Bool) -> [Int] {
    var source = input
    var target = input
    let n = source.count
    var width = 1
    while width < n {
        var start = 0
        while start < n {
            let middle = Swift.min(start + width, n)
            let end = Swift.min(start + 2 * width, n)
            var i = start, j = middle, k = start
            while i < middle && j < end {
                if less(source[j], source[i]) { target[k] = source[j]; j += 1 } else { target[k] = source[i]; i += 1 }
                k += 1
            }
            while i < middle { target[k] = source[i]; i += 1; k += 1 }
            while j < end { target[k] = source[j]; j += 1; k += 1 }
            start = end
        }
        swap(&source, &target)
        width *= 2
    }
    return source
}
