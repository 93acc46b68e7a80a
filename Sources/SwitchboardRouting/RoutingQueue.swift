/// The conversations waiting for an agent, in dispatch order: priority (highest first),
/// then earliest first-response due time, then the longest waiting, then id (so the order
/// is total and stable). A sorted array: the benchmark holds 100,000 waiting conversations,
/// where an insert's memmove costs well under a millisecond and an in-order scan is a
/// plain loop.
struct RoutingQueue: Sendable {
    struct Key: Comparable, Sendable {
        var rank: Int
        var due: Int64
        var since: Int64
        var id: String

        static func < (lhs: Key, rhs: Key) -> Bool {
            if lhs.rank != rhs.rank { return lhs.rank > rhs.rank }
            if lhs.due != rhs.due { return lhs.due < rhs.due }
            if lhs.since != rhs.since { return lhs.since < rhs.since }
            return lhs.id < rhs.id
        }
    }

    private(set) var keys: [Key] = []

    var count: Int { keys.count }

    mutating func insert(_ key: Key) {
        let index = lowerBound(key)
        if index < keys.count, keys[index] == key { return }
        keys.insert(key, at: index)
    }

    mutating func remove(_ key: Key) {
        let index = lowerBound(key)
        if index < keys.count, keys[index] == key { keys.remove(at: index) }
    }

    func contains(_ key: Key) -> Bool {
        let index = lowerBound(key)
        return index < keys.count && keys[index] == key
    }

    /// Index of the first key not less than `key`.
    func lowerBound(_ key: Key) -> Int {
        var low = 0
        var high = keys.count
        while low < high {
            let mid = (low + high) / 2
            if keys[mid] < key { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

/// A time something is due for a conversation.
struct Deadline: Comparable, Sendable {
    var at: Int64
    var id: String

    static func < (lhs: Deadline, rhs: Deadline) -> Bool {
        (lhs.at, lhs.id) < (rhs.at, rhs.id)
    }
}

/// A binary min-heap of deadlines.
struct DeadlineHeap: Sendable {
    private var items: [Deadline] = []

    var min: Deadline? { items.first }
    var count: Int { items.count }

    mutating func insert(_ item: Deadline) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func removeMin() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            if smallest == parent { return }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
