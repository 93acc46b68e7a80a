/// Sends one message through the configured submission server (RFC 6409) or relay.
public enum SMTPSubmission {
    /// Delivers `message` (complete RFC 5322 bytes, CRLF line endings) from `mailFrom` to
    /// `recipients`. libcurl dot-stuffs the data. Returns once the server answered 250 to the
    /// end of data; throws otherwise (see `MailTransportError.isPermanent`).
    public static func send(_ options: MailServerOptions, mailFrom: String, recipients: [String],
                            message: [UInt8]) async throws(MailTransportError) {
        _ = try await onCurlQueue { () throws(MailTransportError) -> [UInt8] in
            let handle = CurlHandle(options)
            return try handle.perform(url: options.base, upload: message, recipients: recipients, mailFrom: mailFrom)
        }
    }
}
