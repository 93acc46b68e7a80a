// SwitchboardSMS — the SMS gateways' wire formats and rules, free of I/O: Twilio's request
// signature and form bodies, Kannel's text codings, GSM-7/UCS-2 segment counting and the
// opt-out keywords.
//
// Trusts: nothing. Every function takes bytes or strings from the network and returns a
// value or a typed error that names the offending field, never its content (an SMS body or
// a phone number is PHI).
// On failure: throws; nothing here logs or retries.

@_exported import enum SwitchboardCore.SMSGateway
