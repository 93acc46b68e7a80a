import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SwitchboardConfig
import SwitchboardCore
import SwitchboardSMS
import SwitchboardStore

/// Sends one SMS through the conversation's gateway (the one the patient last wrote
/// through), or through the other one when only that is configured.
///
/// Compliance first: an agent's reply to a number that has opted out is failed here even if
/// it was queued before the STOP arrived; the compliance replies themselves (HELP text, STOP
/// confirmation) always go. With `sms.notify_only` the patient receives the configured
/// notice instead of the reply text (PHI minimisation); the reply stays in the conversation.
struct SMSEgress {
    let configuration: SwitchboardConfiguration
    let httpClient: HTTPClient

    func send(_ item: OutboxItem, now: Int64) async -> EgressOutcome {
        if item.recipientOptedOut && item.purpose == .reply {
            return .permanentFailure("the patient opted out of SMS (replied STOP); reply START re-enables it")
        }
        guard let to = item.remoteAddress else {
            return .permanentFailure("the conversation has no patient phone number")
        }
        let text = configuration.sms.notifyOnly && item.purpose == .reply ? configuration.sms.noticeText : item.text
        let twilio = configuration.twilio
        let kannel = configuration.kannel
        let gateway: SMSGateway
        switch item.gateway {
        case .twilio where twilio.outboundEnabled, .kannel where !kannel.outboundEnabled && twilio.outboundEnabled:
            gateway = .twilio
        case .kannel where kannel.outboundEnabled, .twilio where !twilio.outboundEnabled && kannel.outboundEnabled:
            gateway = .kannel
        case nil where twilio.outboundEnabled:
            gateway = .twilio
        case nil where kannel.outboundEnabled:
            gateway = .kannel
        default:
            return .retry(reason: "no SMS gateway configured for sending", retryAfterSeconds: nil)
        }
        switch gateway {
        case .twilio: return await sendTwilio(item, to: to, text: text, now: now)
        case .kannel: return await sendKannel(item, to: to, text: text, now: now)
        }
    }

    /// Twilio's Messages API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form
    /// encoded, HTTP Basic with the account SID and auth token.
    private func sendTwilio(_ item: OutboxItem, to: String, text: String, now: Int64) async -> EgressOutcome {
        let twilio = configuration.twilio
        guard let accountSID = twilio.accountSID, let authToken = twilio.authToken else {
            return .retry(reason: "twilio not configured", retryAfterSeconds: nil)
        }
        var form: [(String, String)] = [("To", to), ("Body", text)]
        if let service = twilio.messagingServiceSID {
            form.append(("MessagingServiceSid", service))
        } else if let from = item.localAddress ?? twilio.fromNumber {
            form.append(("From", from))
        }
        if let publicURL = twilio.publicURL {
            form.append(("StatusCallback", Self.join(publicURL, "/webhooks/sms/twilio/status")))
        }
        var request = HTTPClientRequest(url: Self.join(twilio.apiBaseURL, "/2010-04-01/Accounts/\(accountSID)/Messages.json"))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "switchboard")
        request.headers.add(name: "Authorization", value: "Basic " + Data("\(accountSID):\(authToken.value)".utf8).base64EncodedString())
        request.body = .bytes(ByteBuffer(string: FormBody.encode(form)))
        do {
            let response = try await httpClient.execute(request, timeout: .milliseconds(twilio.timeoutMilliseconds))
            let body = (try? await response.body.collect(upTo: 256 * 1024)).map { Data(buffer: $0) } ?? Data()
            let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
            let code = Int(response.status.code)
            if (400..<500).contains(code) && code != 408 && code != 429 {
                // Twilio's error body: {"code": 21211, "message": "...", "more_info": "...", "status": 400}.
                // Its message can quote the number, so only the code is kept.
                return .permanentFailure(TwilioAPIError.describe(code: json?["code"] as? Int))
            }
            return .fromHTTP(status: code, retryAfter: response.headers.first(name: "Retry-After"), now: now, peer: "Twilio") {
                guard let sid = json?["sid"] as? String, !sid.isEmpty else {
                    return .delivered(status: .sent, externalID: nil)
                }
                return .delivered(status: .sent, externalID: SMSGateway.twilio.externalID(sid))
            }
        } catch {
            return .fromTransport(error)
        }
    }

    /// Kannel's smsbox `cgi-bin/sendsms`: GSM text as is, anything else as UCS-2 (coding 2)
    /// from UTF-8; a dlr-url so that delivery reports come back naming our message id.
    private func sendKannel(_ item: OutboxItem, to: String, text: String, now: Int64) async -> EgressOutcome {
        let kannel = configuration.kannel
        guard let sendsms = kannel.sendsmsURL, let username = kannel.username, let password = kannel.password else {
            return .retry(reason: "kannel not configured", retryAfterSeconds: nil)
        }
        var query: [(String, String)] = [
            ("username", username), ("password", password.value), ("to", to), ("text", text), ("charset", "UTF-8"),
            ("coding", SMSSegments(text).encoding == .gsm7 ? "0" : "2"),
        ]
        if let from = item.localAddress ?? kannel.fromNumber { query.append(("from", from)) }
        if let smsc = kannel.smsc { query.append(("smsc", smsc)) }
        if kannel.dlrMask != 0, let publicURL = kannel.publicURL, let secret = kannel.sharedSecret {
            let dlr = Self.join(publicURL, "/webhooks/sms/kannel/dlr") + "?" +
                FormBody.encode([("secret", secret.value), ("message", item.messageID)]) + "&status=%d"
            query += [("dlr-mask", String(kannel.dlrMask)), ("dlr-url", dlr)]
        }
        let separator = sendsms.contains("?") ? "&" : "?"
        var request = HTTPClientRequest(url: sendsms + separator + FormBody.encode(query))
        request.method = .GET
        request.headers.add(name: "User-Agent", value: "switchboard")
        do {
            let response = try await httpClient.execute(request, timeout: .milliseconds(kannel.timeoutMilliseconds))
            let body = (try? await response.body.collect(upTo: 16 * 1024)).map { String(buffer: $0) } ?? ""
            let code = Int(response.status.code)
            if code == 403 {
                return .permanentFailure("Kannel refused the credentials (check kannel.username and kannel.password)")
            }
            return .fromHTTP(status: code, retryAfter: response.headers.first(name: "Retry-After"), now: now, peer: "Kannel") {
                // "0: Accepted for delivery" or "3: Queued for later delivery": both taken.
                body.hasPrefix("0:") || body.hasPrefix("3:") || body.isEmpty
                    ? .delivered(status: .sent, externalID: nil)
                    : .permanentFailure("Kannel did not accept the message")
            }
        } catch {
            return .fromTransport(error)
        }
    }

    static func join(_ base: String, _ path: String) -> String {
        (base.hasSuffix("/") ? String(base.dropLast()) : base) + path
    }
}
