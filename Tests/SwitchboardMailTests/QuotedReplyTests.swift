import Testing
@testable import SwitchboardMail

@Suite struct QuotedReplyTests {
    @Test func topPostedReplyAboveTheAttribution() {
        let (reply, quoted) = QuotedReply.split("""
            Thursday works.

            On Mon, Nov 23, 2026 at 9:14 AM Clinic <support@clinic.example> wrote:
            > Can you come on Thursday?
            """)
        #expect(reply == "Thursday works.")
        #expect(quoted == "On Mon, Nov 23, 2026 at 9:14 AM Clinic <support@clinic.example> wrote:\n> Can you come on Thursday?")
    }

    @Test func bottomPostedReplyBelowTheQuote() {
        let (reply, quoted) = QuotedReply.split("""
            On 24/11/2026 10:02, Clinic wrote:
            > Can you come on Thursday?
            >

            Thursday works, thank you.
            --\u{20}
            Ana
            """)
        #expect(reply == "Thursday works, thank you.\n-- \nAna")
        #expect(quoted == "On 24/11/2026 10:02, Clinic wrote:\n> Can you come on Thursday?\n>")
    }

    @Test func quoteOnlyKeepsEverythingAsQuoted() {
        let (reply, quoted) = QuotedReply.split("On 24/11/2026 10:02, Clinic wrote:\n> Can you come?\n")
        #expect(reply == "")
        #expect(quoted == "On 24/11/2026 10:02, Clinic wrote:\n> Can you come?")
    }

    @Test func outlookOriginalMessageAndSpanishAttribution() {
        #expect(QuotedReply.split("Yes.\n\n-----Original Message-----\nFrom: Clinic\nSent: Monday\n").reply == "Yes.")
        let spanish = QuotedReply.split("Sí, el jueves.\n\nEl lun, 23 nov 2026 a las 9:14, Clínica (<citas@clinic.example>) escribió:\n> ¿Puede venir?")
        #expect(spanish.reply == "Sí, el jueves.")
        #expect(spanish.quoted?.hasPrefix("El lun, 23 nov 2026") == true)
    }

    @Test func forwardedContentStaysInTheReply() {
        let text = "See below.\n\n---------- Forwarded message ---------\nFrom: Lab <lab@example.org>\nDate: Mon\nTo: me\n\nResults attached."
        #expect(QuotedReply.split(text).reply == text)
        #expect(QuotedReply.split(text).quoted == nil)
    }
}
