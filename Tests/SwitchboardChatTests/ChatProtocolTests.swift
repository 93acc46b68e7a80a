import Foundation
import Testing
@testable import SwitchboardChat

@Suite struct ChatCodecTests {
    @Test func decodesEveryClientFrame() throws {
        #expect(try ChatCodec.decode(#"{"type":"hello","v":1}"#) == .hello(.init()))
        #expect(try ChatCodec.decode(#"{"type":"hello","v":1,"visitor_token":"v1.x.y","last_seq":42,"language":"es"}"#)
            == .hello(.init(visitorToken: "v1.x.y", lastSeq: 42, language: "es")))
        let hash = String(repeating: "ab", count: 32)
        #expect(try ChatCodec.decode(#"{"type":"hello","v":1,"identity":{"id":"p-1","hash":"\#(hash.uppercased())","name":"Ana"}}"#)
            == .hello(.init(identity: .init(id: "p-1", hash: hash, name: "Ana"))))
        #expect(try ChatCodec.decode(#"{"type":"message","client_id":"c-1_a","text":"  hola  "}"#) == .message(clientID: "c-1_a", text: "hola"))
        #expect(try ChatCodec.decode(#"{"type":"typing","active":false}"#) == .typing(active: false))
        #expect(try ChatCodec.decode(#"{"type":"received","seq":7}"#) == .received(seq: 7))
        #expect(try ChatCodec.decode(#"{"type":"read","seq":7}"#) == .read(seq: 7))
        #expect(try ChatCodec.decode(#"{"type":"continue","channel":"sms","address":"+1 555 0100"}"#) == .continue(channel: .sms, address: "+1 555 0100"))
        #expect(try ChatCodec.decode(#"{"type":"ping"}"#) == .ping)
    }

    private func refusal(_ text: String, limits: ChatLimits = ChatLimits()) -> ChatFrameError? {
        do {
            _ = try ChatCodec.decode(text, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func refusesBadFramesNamingTheFieldNeverTheValue() {
        #expect(refusal("not json")?.code == "bad_frame")
        #expect(refusal("[1,2]")?.code == "bad_frame")
        #expect(refusal(#"{"text":"x"}"#)?.code == "missing_field")
        #expect(refusal(#"{"type":"shout"}"#)?.code == "unknown_type")
        #expect(refusal(#"{"type":"hello"}"#)?.code == "missing_field")
        #expect(refusal(#"{"type":"hello","v":2}"#)?.code == "unsupported_version")
        #expect(refusal(#"{"type":"hello","v":"1"}"#) == ChatFrameError("bad_frame", "field v has the wrong type"))
        #expect(refusal(#"{"type":"hello","v":1,"identity":{"id":"p","hash":"zz"}}"#)?.code == "invalid_field")
        #expect(refusal(#"{"type":"hello","v":1,"last_seq":-1}"#)?.code == "invalid_field")
        #expect(refusal(#"{"type":"hello","v":1,"language":"fr"}"#)?.code == "invalid_field")
        #expect(refusal(#"{"type":"message","text":"hi"}"#) == ChatFrameError("missing_field", "field client_id is required"))
        #expect(refusal(#"{"type":"message","client_id":"a b","text":"hi"}"#)?.code == "invalid_field")
        #expect(refusal(#"{"type":"message","client_id":"\#(String(repeating: "a", count: 65))","text":"hi"}"#)?.code == "invalid_field")
        #expect(refusal(#"{"type":"message","client_id":"a","text":"   "}"#)?.code == "invalid_field")
        #expect(refusal(#"{"type":"message","client_id":"a","text":"a\u0000b"}"#)?.code == "invalid_field")
        #expect(refusal(#"{"type":"message","client_id":"a","text":"12345"}"#, limits: ChatLimits(maxTextCharacters: 4))?.code == "too_long")
        #expect(refusal(#"{"type":"message","client_id":"a","text":5}"#) == ChatFrameError("bad_frame", "field text has the wrong type"))
        #expect(refusal(#"{"type":"typing","active":1}"#)?.code == "bad_frame")
        #expect(refusal(#"{"type":"read","seq":-3}"#)?.code == "invalid_field")
        #expect(refusal(#"{"type":"continue","channel":"fax","address":"x"}"#)?.code == "invalid_field")
        #expect(refusal(#"{"type":"continue","channel":"email","address":"a\nb@c.d"}"#)?.code == "invalid_field")
        // The secret text never comes back in an error.
        let secret = "my-chest-hurts-555-0100"
        for text in [#"{"type":"message","client_id":"a","text":\#(secret)}"#, #"{"type":"\#(secret)"}"#,
                     #"{"type":"message","client_id":"\#(secret) x","text":"y"}"#] {
            #expect(refusal(text).map { !$0.message.contains(secret) && !$0.code.contains(secret) } == true)
        }
    }

    @Test func lengthCountsCharactersNotBytes() throws {
        let accented = String(repeating: "é", count: 4)  // 8 bytes, 4 characters
        #expect(try ChatCodec.decode(#"{"type":"message","client_id":"a","text":"\#(accented)"}"#, limits: ChatLimits(maxTextCharacters: 4))
            == .message(clientID: "a", text: accented))
    }

    @Test func serverFramesAreCompactJSONWithTypeFirstAndHTMLSafe() throws {
        let frame = ChatServerFrame.message(.init(seq: 9, sender: .agent, text: "<script>alert(1)</script> & \"ok\"\n",
                                                   at: "2026-12-07T10:00:00.000Z", agentName: "Ana"))
        let json = frame.json
        #expect(json.hasPrefix(#"{"type":"message","#))
        #expect(!json.contains("<") && !json.contains(">"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["text"] as? String == "<script>alert(1)</script> & \"ok\"\n")
        #expect(object["seq"] as? Int == 9)
        #expect(object["agent_name"] as? String == "Ana")
        #expect(ChatServerFrame.ack(clientID: "c1", seq: 3, duplicate: false).json == #"{"type":"ack","client_id":"c1","duplicate":false,"seq":3}"#)
        #expect(ChatServerFrame.queue(position: 2, estimatedWaitSeconds: nil).json
            == #"{"type":"queue","estimated_wait_seconds":null,"position":2}"#)
        #expect(ChatServerFrame.error(ChatFrameError("rate_limited", "slow down"), clientID: "c", retryAfterMilliseconds: 1500).json
            == #"{"type":"error","client_id":"c","code":"rate_limited","message":"slow down","retry_after_ms":1500}"#)
        let welcome = ChatServerFrame.welcome(.init(visitorToken: "t", identified: false, seq: 0,
                                                    availability: .init(open: false, agentsAvailable: false, nextOpening: "2026-12-08T08:00:00.000Z",
                                                                        continueWith: [.email, .sms])))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(welcome.json.utf8)) as? [String: Any])
        let availability = try #require(parsed["availability"] as? [String: Any])
        #expect(availability["continue_with"] as? [String] == ["email", "sms"])
        #expect(parsed["v"] as? Int == 1)
    }
}

@Suite struct ChatCredentialTests {
    let tokens = VisitorTokens(key: Array("0123456789abcdef0123456789abcdef".utf8))

    @Test func visitorTokensRoundTripAndRefuseForgeries() throws {
        let token = tokens.issue(visitorID: "vis_ABC")
        #expect(tokens.verify(token) == "vis_ABC")
        #expect(tokens.verify(token.replacingOccurrences(of: "vis_ABC", with: "vis_ABD")) == nil)
        #expect(tokens.verify(String(token.dropLast())) == nil)
        #expect(tokens.verify("v2" + token.dropFirst(2)) == nil)
        #expect(tokens.verify("garbage") == nil)
        #expect(tokens.verify("v1..") == nil)
        let other = VisitorTokens(key: Array("another key of thirty-two bytes!".utf8))
        #expect(other.verify(token) == nil)
    }

    @Test func identityHashMatchesAnIndependentHMAC() {
        // Computed with: python3 -c "import hmac,hashlib;print(hmac.new(b'site-secret-of-32-characters-ok!',b'patient-42',hashlib.sha256).hexdigest())"
        let secret = Array("site-secret-of-32-characters-ok!".utf8)
        let expected = ChatIdentityHash.compute(id: "patient-42", secret: secret)
        #expect(expected == "44b21b97b6d357983fd009a7ab13b0139a922741c7bb20373046fe7d002d59f5")
        #expect(ChatIdentityHash.isValid(id: "patient-42", hash: expected, secret: secret))
        #expect(ChatIdentityHash.isValid(id: "patient-42", hash: expected.uppercased(), secret: secret))
        #expect(!ChatIdentityHash.isValid(id: "patient-43", hash: expected, secret: secret))
        #expect(!ChatIdentityHash.isValid(id: "patient-42", hash: String(expected.dropLast()), secret: secret))
    }

    @Test func rateLimiterAllowsBurstsThenRefillsAtTheRate() {
        var limiter = ChatRateLimiter(perMinute: 60, burst: 3, now: 1000)
        #expect(limiter.take(now: 1000) == nil)
        #expect(limiter.take(now: 1000) == nil)
        #expect(limiter.take(now: 1000) == nil)
        #expect(limiter.take(now: 1000) == 1000)  // one per second: a full second to wait
        #expect(limiter.take(now: 1000.5) == 500)
        #expect(limiter.take(now: 1001) == nil)
        #expect(limiter.take(now: 1001) != nil)
        #expect(limiter.take(now: 2000) == nil)  // refilled to the burst, not beyond
        #expect(limiter.take(now: 2000) == nil)
        #expect(limiter.take(now: 2000) == nil)
        #expect(limiter.take(now: 2000) != nil)
    }
}
