/// What an error from Twilio's Messages API means for the outbox. Twilio's own error text
/// can quote the phone number, so only the code and our description of it are kept.
public enum TwilioAPIError {
    /// Codes that will fail the same way however often they are retried.
    public static let descriptions: [Int: String] = [
        20003: "authentication failed (check twilio.account_sid and twilio.auth_token)",
        20404: "resource not found (check twilio.account_sid)",
        21211: "invalid 'To' phone number",
        21212: "invalid 'From' phone number",
        21408: "permission to send to this region is not enabled",
        21610: "the recipient has unsubscribed (replied STOP)",
        21612: "the 'To' number cannot be reached from this 'From' number",
        21614: "the 'To' number is not a mobile number",
        21617: "the message body exceeds the maximum length",
        21606: "the 'From' number cannot send SMS",
        21660: "the 'From' number does not belong to this account",
        30003: "unreachable destination handset",
        30004: "message blocked",
        30005: "unknown destination handset",
        30006: "landline or unreachable carrier",
        30007: "message filtered by the carrier",
        30008: "unknown error from the carrier",
    ]

    public static func describe(code: Int?) -> String {
        guard let code else { return "Twilio refused the message" }
        if let known = descriptions[code] { return "Twilio error \(code): \(known)" }
        return "Twilio error \(code)"
    }
}
