import Foundation

/// Weekly opening hours in one time zone: `mon: "08:00-17:00"`, several ranges separated by
/// commas, a day left out is closed.
public struct BusinessHours: Sendable {
    let timeZone: TimeZone
    /// Weekday (1 = Sunday … 7 = Saturday, as Calendar counts) → minute ranges from midnight.
    let week: [Int: [Range<Int>]]

    static let days = ["sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7]

    init(timeZone: TimeZone, week: [Int: [Range<Int>]]) {
        self.timeZone = timeZone
        self.week = week
    }

    static func parseRanges(_ text: String) -> [Range<Int>]? {
        var ranges: [Range<Int>] = []
        for part in text.split(separator: ",") {
            let bounds = part.trimmingCharacters(in: .whitespaces).split(separator: "-")
            guard bounds.count == 2, let start = minutes(bounds[0]), let end = minutes(bounds[1]), start < end else { return nil }
            ranges.append(start..<end)
        }
        return ranges.isEmpty ? nil : ranges
    }

    private static func minutes(_ text: Substring) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]),
              (0...24).contains(hour), (0..<60).contains(minute), hour * 60 + minute <= 24 * 60 else { return nil }
        return hour * 60 + minute
    }

    private var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }

    public func isOpen(at date: Date) -> Bool {
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        return week[parts.weekday ?? 0]?.contains { $0.contains(minute) } ?? false
    }

    /// The start of the next opening after `date` (within two weeks), or nil if never open.
    public func nextOpening(after date: Date) -> Date? {
        let calendar = calendar
        let startOfDay = calendar.startOfDay(for: date)
        for dayOffset in 0..<15 {
            guard let day = calendar.date(byAdding: .day, value: dayOffset, to: startOfDay) else { continue }
            let weekday = calendar.component(.weekday, from: day)
            for range in (week[weekday] ?? []).sorted(by: { $0.lowerBound < $1.lowerBound }) {
                guard let opening = calendar.date(byAdding: .minute, value: range.lowerBound, to: day) else { continue }
                if opening > date { return opening }
            }
        }
        return nil
    }

    /// "Monday 08:00" in the practice's time zone.
    public func describe(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "EEEE HH:mm"
        return formatter.string(from: date)
    }
}
