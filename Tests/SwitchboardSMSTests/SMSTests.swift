import Testing
@testable import SwitchboardSMS

@Suite struct TwilioSignatureTests {
    // Twilio's documented example; the expected values were computed by the official
    // `twilio` Python library's RequestValidator (9.3.7).
    let parameters: [(name: String, value: String)] = [
        ("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
        ("From", "+12349013030"), ("To", "+18005551212"),
    ]
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2"

    @Test func matchesTwilioLibrary() {
        #expect(TwilioSignature.compute(url: url, parameters: parameters, authToken: "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        #expect(TwilioSignature.compute(url: "https://mycompany.com:443/myapp.php?foo=1&bar=2", parameters: parameters,
                                        authToken: "12345") == "EpDEmp1PyjDYp77YxYU3GILBWzE=")
        // Parameter order in the body does not matter.
        #expect(TwilioSignature.compute(url: url, parameters: parameters.reversed(), authToken: "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    }

    @Test func acceptsTheURLWithAndWithoutTheDefaultPort() {
        #expect(TwilioSignature.isValid(signature: "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", url: url, parameters: parameters, authToken: "12345"))
        #expect(TwilioSignature.isValid(signature: "EpDEmp1PyjDYp77YxYU3GILBWzE=", url: url, parameters: parameters, authToken: "12345"))
        #expect(TwilioSignature.isValid(signature: "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", url: "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                                        parameters: parameters, authToken: "12345"))
    }

    @Test func rejectsTampering() {
        let good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        #expect(!TwilioSignature.isValid(signature: good, url: url, parameters: parameters + [("Body", "x")], authToken: "12345"))
        #expect(!TwilioSignature.isValid(signature: good, url: "https://mycompany.com/other.php", parameters: parameters, authToken: "12345"))
        #expect(!TwilioSignature.isValid(signature: good, url: url, parameters: parameters, authToken: "54321"))
        #expect(!TwilioSignature.isValid(signature: nil, url: url, parameters: parameters, authToken: "12345"))
        #expect(!TwilioSignature.isValid(signature: "not base64", url: url, parameters: parameters, authToken: "12345"))
        #expect(!TwilioSignature.isValid(signature: "", url: url, parameters: parameters, authToken: "12345"))
    }
}

@Suite struct FormBodyTests {
    @Test func parsesFormBodies() throws {
        let pairs = try FormBody.parse(Array("Body=Hola+se%C3%B1or%21&From=%2B15550001111&Empty=&Flag&Body=2".utf8))
        #expect(pairs.map(\.name) == ["Body", "From", "Empty", "Flag", "Body"])
        #expect(pairs.first("Body") == "Hola señor!")
        #expect(pairs.first("From") == "+15550001111")
        #expect(pairs.first("Empty") == "" && pairs.first("Flag") == "")
    }

    @Test func rejectsBadEscapes() {
        #expect(throws: FormBody.Error.invalidPercentEncoding) { try FormBody.parse(Array("a=%G1".utf8)) }
        #expect(throws: FormBody.Error.invalidPercentEncoding) { try FormBody.parse(Array("a=%4".utf8)) }
        #expect(throws: FormBody.Error.invalidUTF8) { try FormBody.parse(Array("a=%FF%FE".utf8)) }
    }

    @Test func encodesRoundTrip() throws {
        let pairs = [("To", "+1 555"), ("Body", "¿Qué tal? 100% & more=yes")]
        let decoded = try FormBody.parse(Array(FormBody.encode(pairs).utf8))
        #expect(decoded.map(\.name) == ["To", "Body"] && decoded.map(\.value) == ["+1 555", "¿Qué tal? 100% & more=yes"])
    }
}

@Suite struct SegmentTests {
    @Test(arguments: [
        (String(repeating: "a", count: 160), SMSSegments.Encoding.gsm7, 160, 1),
        (String(repeating: "a", count: 161), .gsm7, 161, 2),
        (String(repeating: "a", count: 306), .gsm7, 306, 2),
        (String(repeating: "a", count: 307), .gsm7, 307, 3),
        (String(repeating: "€", count: 80), .gsm7, 160, 1),
        // 76 two-septet characters fill 152 of a segment's 153 and the 77th cannot be split,
        // so 306 septets take three segments, not two.
        (String(repeating: "€", count: 153), .gsm7, 306, 3),
        ("Hola señor, ¿qué tal?", .gsm7, 21, 1),
        (String(repeating: "ş", count: 70), .ucs2, 70, 1),
        (String(repeating: "ş", count: 71), .ucs2, 71, 2),
        (String(repeating: "😀", count: 35), .ucs2, 70, 1),
        (String(repeating: "😀", count: 34) + "a", .ucs2, 69, 1),
        ("", .gsm7, 0, 1),
    ])
    func counts(text: String, encoding: SMSSegments.Encoding, units: Int, count: Int) {
        let segments = SMSSegments(text)
        #expect(segments.encoding == encoding)
        #expect(segments.units == units)
        #expect(segments.count == count)
    }

    @Test func surrogatePairsAreNotSplit() {
        // 33 emoji = 66 units; a 34th would straddle 67: it moves to the next segment.
        let text = String(repeating: "😀", count: 36)
        #expect(SMSSegments(text).count == 2)
    }
}

@Suite struct OptOutKeywordTests {
    @Test(arguments: ["STOP", "stop", " Stop. ", "STOPALL", "unsubscribe", "Cancel", "END", "quit", "ALTO", "parar", "¡Alto!"])
    func stops(text: String) { #expect(OptOutKeyword.classify(text)?.keyword == .stop) }

    @Test(arguments: ["START", "unstop", "Yes", "yes!"])
    func starts(text: String) { #expect(OptOutKeyword.classify(text)?.keyword == .start) }

    @Test(arguments: ["HELP", "help?", "Ayuda", "INFO"])
    func helps(text: String) { #expect(OptOutKeyword.classify(text)?.keyword == .help) }

    @Test(arguments: ["Stop calling me", "please stop", "STOP IT", "yes please", "stopping", "", "help me refill"])
    func ordinaryMessages(text: String) { #expect(OptOutKeyword.classify(text) == nil) }
}

@Suite struct KannelTextTests {
    @Test func decodesUCS2() throws {
        let bytes: [UInt8] = [0x00, 0x68, 0x00, 0xE9, 0x00, 0x6C, 0xD8, 0x3D, 0xDE, 0x00]
        #expect(try KannelText.decode(bytes, coding: "2", charset: nil) == "hél😀")
        #expect(try KannelText.decode(bytes, coding: "2", charset: "UTF-16BE") == "hél😀")
        #expect(throws: KannelText.Error.oddUCS2Length) { try KannelText.decode([0x00], coding: "2", charset: nil) }
    }

    @Test func decodesUTF8AndLatin1() throws {
        #expect(try KannelText.decode(Array("héllo ü".utf8), coding: "0", charset: "UTF-8") == "héllo ü")
        #expect(try KannelText.decode(Array("héllo ü".utf8), coding: "2", charset: "UTF-8") == "héllo ü")
        #expect(try KannelText.decode([0x68, 0xE9], coding: "0", charset: nil) == "hé")
        #expect(try KannelText.decode([0x68, 0xE9], coding: "0", charset: "ISO-8859-1") == "hé")
        #expect(throws: KannelText.Error.binaryData) { try KannelText.decode([1, 2], coding: "1", charset: nil) }
    }
}
