import Foundation
import Testing
@testable import SwitchboardMail

/// Test messages (namespaced: other test files share this target).
enum MIMEFixtures {
    /// The text with LF line breaks turned into CRLF, as bytes.
    static func crlf(_ text: String) -> [UInt8] {
        Array(text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n").utf8)
    }

    static let gmailReply = crlf("""
    Return-Path: <ana.garcia@gmail.com>
    Received: from mail-ej1-f41.google.com (mail-ej1-f41.google.com [209.85.218.41])
    \tby mx.clinic.example (Postfix) with ESMTPS id 4ZAbc1
    \tfor <support@clinic.example>; Mon, 23 Nov 2026 10:02:13 +0100 (CET)
    DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=gmail.com; s=20230601;
    \th=to:subject:message-id:date:from:in-reply-to:references:mime-version;
    \tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==
    MIME-Version: 1.0
    References: <appt-4471@clinic.example>
    In-Reply-To: <appt-4471@clinic.example>
    From: =?UTF-8?Q?Ana_Garc=C3=ADa?= <ana.garcia@gmail.com>
    Date: Mon, 23 Nov 2026 10:02:11 +0100
    Message-ID: <CAJx9Lk+8mVv5Q-xY@mail.gmail.com>
    Subject: Re: Your appointment on Tuesday
    To: Clinic <support@clinic.example>
    Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"

    --000000000000a1b2c3d4e5f60718
    Content-Type: text/plain; charset="UTF-8"
    Content-Transfer-Encoding: quoted-printable

    Hi, can we move it to Thursday? I have a conflict =E2=80=94 sorry.

    Ana

    On Mon, Nov 23, 2026 at 9:14 AM Clinic <support@clinic.example>
    wrote:

    > Dear Ana,
    > Your appointment is confirmed for Tuesday 24 November at 10:30.
    >

    --000000000000a1b2c3d4e5f60718
    Content-Type: text/html; charset="UTF-8"
    Content-Transfer-Encoding: quoted-printable

    <div dir=3D"ltr">Hi, can we move it to Thursday? I have a conflict =E2=80=
    =94 sorry.<div><br></div><div>Ana</div></div><br><div class=3D"gmail_quote"=
    ><div dir=3D"ltr" class=3D"gmail_attr">On Mon, Nov 23, 2026 at 9:14=E2=80=
    =AFAM Clinic &lt;<a href=3D"mailto:support@clinic.example">support@clinic.e=
    xample</a>&gt; wrote:<br></div><blockquote class=3D"gmail_quote" style=3D"m=
    argin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left=
    :1ex">Dear Ana,<br>Your appointment is confirmed for Tuesday 24 November at=
     10:30.<br></blockquote></div>

    --000000000000a1b2c3d4e5f60718--

    """)

    static let outlookSpanishReply = crlf("""
    From: =?iso-8859-1?Q?Jos=E9_P=E9rez?= <jose.perez@outlook.es>
    To: =?utf-8?B?Q2zDrW5pY2EgU29ucmlzYXM=?= <citas@clinic.example>
    Subject: =?utf-8?B?UkU6IENvbmZpcm1hY2nDs24gZGUgY2l0YQ==?=
    Thread-Topic: =?utf-8?B?Q29uZmlybWFjacOzbiBkZSBjaXRh?=
    Thread-Index: AQHbPZ2mJ5ZkqS8rN0uW3c8m4fLxXw==
    Date: Tue, 24 Nov 2026 08:15:02 +0000
    Message-ID:
    \t<AM6PR04MB5432ABCDEF0123456789@AM6PR04MB5432.eurprd04.prod.outlook.com>
    References: <appt-5512@clinic.example>
    In-Reply-To: <appt-5512@clinic.example>
    Accept-Language: es-ES, en-US
    Content-Language: es-ES
    X-MS-Has-Attach:
    X-MS-TNEF-Correlator:
    Content-Type: multipart/alternative;
    \tboundary="_000_AM6PR04MB5432ABCDEF0123456789AM6PR04MB5432eurp_"
    MIME-Version: 1.0

    --_000_AM6PR04MB5432ABCDEF0123456789AM6PR04MB5432eurp_
    Content-Type: text/plain; charset="iso-8859-1"
    Content-Transfer-Encoding: quoted-printable

    Buenos d=EDas,

    Confirmo la cita del jueves. Gracias.

    Jos=E9

    ________________________________
    De: Cl=EDnica Sonrisas <citas@clinic.example>
    Enviado: lunes, 23 de noviembre de 2026 18:40
    Para: Jos=E9 P=E9rez <jose.perez@outlook.es>
    Asunto: Confirmaci=F3n de cita

    Estimado Jos=E9:
    Le recordamos su cita el jueves 26 a las 9:00.

    --_000_AM6PR04MB5432ABCDEF0123456789AM6PR04MB5432eurp_
    Content-Type: text/html; charset="iso-8859-1"
    Content-Transfer-Encoding: quoted-printable

    <html><head>
    <meta http-equiv=3D"Content-Type" content=3D"text/html; charset=3Diso-8859-=
    1">
    <style type=3D"text/css" style=3D"display:none;"> P {margin-top:0;margin-bo=
    ttom:0;} </style>
    </head>
    <body dir=3D"ltr">
    <div style=3D"font-family: Calibri, Arial">Buenos d=EDas,</div>
    <div>Confirmo la cita del jueves. Gracias.</div>
    <div>Jos=E9</div>
    <hr style=3D"display:inline-block;width:98%" tabindex=3D"-1">
    <div id=3D"divRplyFwdMsg" dir=3D"ltr"><font face=3D"Calibri, sans-serif"><b=
    >De:</b> Cl=EDnica Sonrisas &lt;citas@clinic.example&gt;<br>
    <b>Enviado:</b> lunes, 23 de noviembre de 2026 18:40<br>
    <b>Para:</b> Jos=E9 P=E9rez &lt;jose.perez@outlook.es&gt;<br>
    <b>Asunto:</b> Confirmaci=F3n de cita</font></div>
    </body>
    </html>

    --_000_AM6PR04MB5432ABCDEF0123456789AM6PR04MB5432eurp_--

    """)

    static let nested = crlf("""
    From: "María José" <mj@example.org>
    To: citas@Clinic.Example
    Subject: Fotos y resultados
    Date: Wed, 25 Nov 2026 12:00:00 -0500
    Message-ID: <nested-1@example.org>
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary="mixed-b"

    This is a multi-part message in MIME format.

    --mixed-b
    Content-Type: multipart/related; boundary="related-b"; type="multipart/alternative"

    --related-b
    Content-Type: multipart/alternative; boundary="alt-b"

    --alt-b
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: 8bit

    Adjunto la foto de la receta y los resultados.

    --alt-b
    Content-Type: text/html; charset=utf-8

    <p>Adjunto la foto de la <b>receta</b> y los resultados.</p><img src="cid:receta@local" alt="receta">
    --alt-b--

    --related-b
    Content-Type: image/png; name="receta.png"
    Content-Transfer-Encoding: base64
    Content-ID: <receta@local>
    Content-Disposition: inline; filename="receta.png"

    iVBORw0KGgo=
    --related-b--

    --mixed-b
    Content-Type: application/pdf; name="resultados.pdf"
    Content-Disposition: attachment;
     filename*=UTF-8''resultados%20an%C3%A1lisis.pdf
    Content-Transfer-Encoding: base64

    JVBERi0xLjQK
    JcOkw7zDtsOfCg==
    --mixed-b--

    epilogue, ignored
    """)

    static let postfixBounce = crlf("""
    Return-Path: <>
    Received: by mx.clinic.example (Postfix)
    \tid 4Z9abc; Mon, 23 Nov 2026 09:15:03 +0100 (CET)
    Date: Mon, 23 Nov 2026 09:15:03 +0100 (CET)
    From: MAILER-DAEMON@mx.clinic.example (Mail Delivery System)
    Subject: Undelivered Mail Returned to Sender
    To: support@clinic.example
    Auto-Submitted: auto-replied
    MIME-Version: 1.0
    Content-Type: multipart/report; report-type=delivery-status;
    \tboundary="4Z9abc.1795392903/mx.clinic.example"
    Content-Transfer-Encoding: 8bit
    Message-Id: <20261123081503.4Z9abc@mx.clinic.example>

    This is a MIME-encapsulated message.

    --4Z9abc.1795392903/mx.clinic.example
    Content-Description: Notification
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: 8bit

    This is the mail system at host mx.clinic.example.

    I'm sorry to have to inform you that your message could not
    be delivered to one or more recipients. It's attached below.

    For further assistance, please send mail to postmaster.

    If you do so, please include this problem report. You can
    delete your own text from the attached returned message.

                       The mail system

    <no.such.patient@example.net>: host mx.example.net[203.0.113.7] said: 550
        5.1.1 <no.such.patient@example.net>: Recipient address rejected: User
        unknown in virtual mailbox table (in reply to RCPT TO command)

    --4Z9abc.1795392903/mx.clinic.example
    Content-Description: Delivery report
    Content-Type: message/delivery-status

    Reporting-MTA: dns; mx.clinic.example
    X-Postfix-Queue-ID: 4Z9abc
    X-Postfix-Sender: rfc822; support@clinic.example
    Arrival-Date: Mon, 23 Nov 2026 09:15:01 +0100 (CET)

    Final-Recipient: rfc822; no.such.patient@example.net
    Original-Recipient: rfc822;no.such.patient@example.net
    Action: failed
    Status: 5.1.1
    Remote-MTA: dns; mx.example.net
    Diagnostic-Code: smtp; 550 5.1.1 <no.such.patient@example.net>: Recipient
        address rejected: User unknown in virtual mailbox table

    --4Z9abc.1795392903/mx.clinic.example
    Content-Description: Undelivered Message
    Content-Type: message/rfc822
    Content-Transfer-Encoding: 8bit

    Return-Path: <support@clinic.example>
    Received: from app.clinic.example (app.clinic.example [192.0.2.10])
    \tby mx.clinic.example (Postfix) with ESMTP id 4Z9abc
    \tfor <no.such.patient@example.net>; Mon, 23 Nov 2026 09:15:01 +0100 (CET)
    Message-ID: <appt-4471@clinic.example>
    Date: Mon, 23 Nov 2026 09:15:00 +0100
    From: Clinic <support@clinic.example>
    To: no.such.patient@example.net
    Subject: Your appointment on Tuesday
    MIME-Version: 1.0
    Content-Type: text/plain; charset=utf-8

    Dear patient, your appointment is confirmed.

    --4Z9abc.1795392903/mx.clinic.example--

    """)

    static func singlePart(contentType: String, encoding: String? = nil, body: [UInt8]) -> [UInt8] {
        var head = "From: patient@example.org\nTo: citas@clinic.example\nSubject: test\nContent-Type: \(contentType)\n"
        if let encoding { head += "Content-Transfer-Encoding: \(encoding)\n" }
        return crlf(head + "\n") + body
    }
}

@Suite struct MIMEParserRealMessageTests {
    @Test func gmailReplySplitsTheQuotedHistory() {
        let mail = MIMEParser.parse(MIMEFixtures.gmailReply)
        #expect(mail.messageID == "CAJx9Lk+8mVv5Q-xY@mail.gmail.com")
        #expect(mail.inReplyTo == ["appt-4471@clinic.example"])
        #expect(mail.references == ["appt-4471@clinic.example"])
        #expect(mail.subject == "Re: Your appointment on Tuesday")
        #expect(mail.from == [MailAddress(displayName: "Ana García", address: "ana.garcia@gmail.com")])
        #expect(mail.to == [MailAddress(displayName: "Clinic", address: "support@clinic.example")])
        #expect(mail.date == Date(timeIntervalSince1970: 1_795_424_531))
        #expect(mail.text.hasPrefix("Hi, can we move it to Thursday? I have a conflict — sorry.\n\nAna\n\nOn Mon, Nov 23"))
        #expect(mail.reply == "Hi, can we move it to Thursday? I have a conflict — sorry.\n\nAna")
        let quoted = mail.quoted ?? ""
        #expect(quoted.hasPrefix("On Mon, Nov 23, 2026 at 9:14 AM Clinic <support@clinic.example>\nwrote:"))
        #expect(quoted.contains("> Your appointment is confirmed"))
        #expect(mail.attachments.isEmpty)
        #expect(mail.autoReply == nil)
        #expect(mail.deliveryReport == nil)

        let html = mail.html ?? ""
        #expect(html.contains("<a href=\"mailto:support@clinic.example\">support@clinic.example</a>"))
        #expect(html.hasPrefix("<div>Hi, can we move it to Thursday?"))
        #expect(!html.contains("style") && !html.contains("class") && !html.contains("dir="))
        #expect(html.contains("<blockquote>Dear Ana,<br>"))
    }

    @Test func gmailHTMLOnlyFallsBackToTheTextRendering() throws {
        // The same message without its text/plain alternative.
        let raw = String(decoding: MIMEFixtures.gmailReply, as: UTF8.self)
        let start = try #require(raw.range(of: "--000000000000a1b2c3d4e5f60718\r\nContent-Type: text/plain"))
        let end = try #require(raw.range(of: "--000000000000a1b2c3d4e5f60718\r\nContent-Type: text/html"))
        var htmlOnly = raw
        htmlOnly.removeSubrange(start.lowerBound..<end.lowerBound)
        let mail = MIMEParser.parse(Array(htmlOnly.utf8))
        #expect(mail.text.hasPrefix("Hi, can we move it to Thursday? I have a conflict — sorry.\n\nAna\n"))
        #expect(mail.reply == "Hi, can we move it to Thursday? I have a conflict — sorry.\n\nAna")
        #expect(mail.quoted?.hasPrefix("On Mon, Nov 23, 2026 at 9:14\u{202F}AM Clinic <support@clinic.example> wrote:") == true)
        #expect(mail.quoted?.contains("Your appointment is confirmed for Tuesday 24 November at 10:30.") == true)
    }

    @Test func outlookSpanishReply() {
        let mail = MIMEParser.parse(MIMEFixtures.outlookSpanishReply)
        #expect(mail.subject == "RE: Confirmación de cita")
        #expect(mail.from == [MailAddress(displayName: "José Pérez", address: "jose.perez@outlook.es")])
        #expect(mail.to == [MailAddress(displayName: "Clínica Sonrisas", address: "citas@clinic.example")])
        #expect(mail.messageID == "AM6PR04MB5432ABCDEF0123456789@AM6PR04MB5432.eurprd04.prod.outlook.com")
        #expect(mail.date == Date(timeIntervalSince1970: 1_795_508_102))
        #expect(mail.reply == "Buenos días,\n\nConfirmo la cita del jueves. Gracias.\n\nJosé")
        let quoted = mail.quoted ?? ""
        #expect(quoted.hasPrefix("________________________________\nDe: Clínica Sonrisas <citas@clinic.example>\nEnviado:"))
        #expect(quoted.hasSuffix("Le recordamos su cita el jueves 26 a las 9:00."))

        let html = mail.html ?? ""
        #expect(!html.contains("margin-top"), "the <style> content is removed")
        #expect(!html.contains("meta"))
        #expect(html.contains("<div>Buenos días,</div>"))
        #expect(html.contains("<b>De:</b> Clínica Sonrisas &lt;citas@clinic.example&gt;<br>"))
        #expect(html.contains("<hr>"))
    }

    @Test func outlookHTMLOnlySplitsAtTheHeaderBlock() throws {
        let raw = String(decoding: MIMEFixtures.outlookSpanishReply, as: UTF8.self)
        let boundary = "--_000_AM6PR04MB5432ABCDEF0123456789AM6PR04MB5432eurp_\r\n"
        let start = try #require(raw.range(of: boundary + "Content-Type: text/plain"))
        let end = try #require(raw.range(of: boundary + "Content-Type: text/html"))
        var htmlOnly = raw
        htmlOnly.removeSubrange(start.lowerBound..<end.lowerBound)
        let mail = MIMEParser.parse(Array(htmlOnly.utf8))
        #expect(mail.reply == "Buenos días,\nConfirmo la cita del jueves. Gracias.\nJosé")
        #expect(mail.quoted?.hasPrefix("De: Clínica Sonrisas <citas@clinic.example>\nEnviado: lunes") == true)
    }

    @Test func nestedMixedRelatedAlternative() throws {
        let mail = MIMEParser.parse(MIMEFixtures.nested)
        #expect(mail.from == [MailAddress(displayName: "María José", address: "mj@example.org")])
        #expect(mail.to == [MailAddress(address: "citas@clinic.example")])
        #expect(mail.text == "Adjunto la foto de la receta y los resultados.\n")
        #expect(mail.reply == "Adjunto la foto de la receta y los resultados.")
        #expect(mail.quoted == nil)
        #expect(mail.html == "<p>Adjunto la foto de la <b>receta</b> y los resultados.</p>receta")
        #expect(mail.attachments.count == 2)
        #expect(mail.droppedAttachments == 0)
        #expect(mail.truncatedParts == 0)

        let image = try #require(mail.attachments.first)
        #expect(image.filename == "receta.png")
        #expect(image.contentType == "image/png")
        #expect(image.contentID == "receta@local")
        #expect(image.isInline)
        #expect(image.data == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(image.size == 8)
        #expect(!image.oversized)

        let pdf = mail.attachments[1]
        #expect(pdf.filename == "resultados análisis.pdf")
        #expect(pdf.contentType == "application/pdf")
        #expect(!pdf.isInline)
        #expect(pdf.contentID == nil)
        #expect(pdf.data == Array("%PDF-1.4\n%äüöß\n".utf8))
        #expect(pdf.size == 19)
    }

    @Test func postfixBounceIsADeliveryReport() throws {
        let mail = MIMEParser.parse(MIMEFixtures.postfixBounce)
        let report = try #require(mail.deliveryReport)
        #expect(report.originalMessageID == "appt-4471@clinic.example")
        #expect(report.isFailure)
        #expect(report.recipients == [
            DeliveryStatusReport.Recipient(
                finalRecipient: "no.such.patient@example.net",
                action: "failed",
                status: "5.1.1",
                diagnosticCode: "smtp; 550 5.1.1 <no.such.patient@example.net>: Recipient    address rejected: User unknown in virtual mailbox table"
            ),
        ])
        #expect(mail.autoReply == .deliveryReport)
        #expect(mail.text.hasPrefix("This is the mail system at host mx.clinic.example."))
        #expect(mail.from == [MailAddress(displayName: "Mail Delivery System", address: "MAILER-DAEMON@mx.clinic.example")])
        #expect(mail.attachments.map(\.contentType) == ["message/delivery-status", "message/rfc822"])
        #expect(mail.attachments.last?.filename == "Your appointment on Tuesday.eml")
        #expect(mail.date == Date(timeIntervalSince1970: 1_795_421_703))
    }

    @Test func delayedReportIsNotAFailure() throws {
        let raw = MIMEFixtures.crlf("""
        From: postmaster@mx.example.net
        To: support@clinic.example
        Subject: Delivery delayed
        Content-Type: multipart/report; report-type="delivery-status"; boundary=b1

        --b1
        Content-Type: text/plain

        Still trying.
        --b1
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.example.net

        Final-Recipient: RFC822; <slow@example.net>
        Action: Delayed
        Status: 4.4.1 (connection timed out)
        Will-Retry-Until: Wed, 25 Nov 2026 09:00:00 +0000

        Final-Recipient: rfc822; ok@example.net
        Action: delivered
        Status: 2.0.0
        --b1
        Content-Type: text/rfc822-headers

        Message-ID: <follow-up-9@clinic.example>
        Subject: Follow-up
        --b1--
        """)
        let mail = MIMEParser.parse(raw)
        let report = try #require(mail.deliveryReport)
        #expect(!report.isFailure)
        #expect(report.originalMessageID == "follow-up-9@clinic.example")
        #expect(report.recipients.map(\.finalRecipient) == ["slow@example.net", "ok@example.net"])
        #expect(report.recipients.map(\.action) == ["delayed", "delivered"])
        #expect(report.recipients.map(\.status) == ["4.4.1", "2.0.0"])
        #expect(report.recipients.map(\.diagnosticCode) == [nil, nil])
        #expect(mail.autoReply == .deliveryReport)
        #expect(mail.text == "Still trying.")
    }

    @Test func outOfOfficeAutoReply() {
        let raw = MIMEFixtures.crlf("""
        From: Dr. Ruiz <ruiz@example.org>
        To: support@clinic.example
        Subject: Out of office: Re: Lab results
        Auto-Submitted: auto-replied (vacation)
        X-Auto-Response-Suppress: All
        Precedence: bulk
        Content-Type: text/plain; charset=utf-8

        I am out of the office until 30 November.
        """)
        let mail = MIMEParser.parse(raw)
        #expect(mail.autoReply == .autoSubmitted)
        #expect(mail.deliveryReport == nil)
        #expect(mail.from.first?.displayName == "Dr. Ruiz")
        #expect(mail.text == "I am out of the office until 30 November.")
    }

    @Test func encodedSubjects() {
        let base64 = MIMEParser.parse(MIMEFixtures.crlf(
            "Subject: =?UTF-8?B?UmVzdWx0YWRvcyBkZSBhbsOhbGlzaXMgY2zDrW5pY29z?=\n\nx"))
        #expect(base64.subject == "Resultados de análisis clínicos")
        let quoted = MIMEParser.parse(MIMEFixtures.crlf("Subject: =?ISO-8859-1?Q?Cita_m=E9dica?=\n\nx"))
        #expect(quoted.subject == "Cita médica")
        let folded = MIMEParser.parse(MIMEFixtures.crlf(
            "Subject: Re: =?ISO-8859-1?Q?Cita_m=E9dica?=\n =?UTF-8?Q?_ma=C3=B1ana?= a las 9\n\nx"))
        #expect(folded.subject == "Re: Cita médica mañana a las 9")
    }
}

@Suite struct MIMEParserCharsetBodyTests {
    @Test func isoLatin1QuotedPrintable() {
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(
            contentType: "text/plain; charset=ISO-8859-1", encoding: "quoted-printable",
            body: Array("El ca=F1=F3n del edificio est=E1 roto, =\r\nno hay cita.\r\n".utf8)))
        #expect(mail.text == "El cañón del edificio está roto, no hay cita.\n")
    }

    @Test func windows1252EightBit() {
        let body: [UInt8] = Array("Precio: ".utf8) + [0x80] + Array(" 50 ".utf8) + [0x96, 0x20, 0x93]
            + Array("Gracias".utf8) + [0x94, 0x20, 0x92, 0x0D, 0x0A]
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=\"windows-1252\"",
                                                             encoding: "8bit", body: body))
        #expect(mail.text == "Precio: € 50 – “Gracias” ’\n")
    }

    @Test func isoLatin2Lodz() {
        let body: [UInt8] = Array("Pozdrowienia z ".utf8) + [0xA3, 0xF3, 0x64, 0xBC]
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=iso-8859-2", body: body))
        #expect(mail.text == "Pozdrowienia z Łódź")
    }

    @Test func isoLatin9Euro() {
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=ISO-8859-15",
                                                             body: Array("Total: 30 ".utf8) + [0xA4]))
        #expect(mail.text == "Total: 30 €")
    }

    @Test func windows1250Caron() {
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=cp1250",
                                                             body: [0x8A] + Array("koda".utf8)))
        #expect(mail.text == "Škoda")
    }

    @Test func undeclaredCharsetIsReadLeniently() {
        // No charset: valid UTF-8 is UTF-8 …
        let utf8 = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain", body: Array("mañana".utf8)))
        #expect(utf8.text == "mañana")
        // … anything else windows-1252.
        let latin = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=us-ascii",
                                                              body: [0x6D, 0x61, 0xF1, 0x61, 0x6E, 0x61]))
        #expect(latin.text == "mañana")
        // No Content-Type at all.
        let bare = MIMEParser.parse(MIMEFixtures.crlf("Subject: x\n\n") + Array("café".utf8))
        #expect(bare.text == "café")
    }

    @Test func unknownCharsetAndInvalidUTF8BecomeReplacementCharacters() {
        let unknown = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=x-klingon",
                                                                body: [0x61, 0xFF, 0x62]))
        #expect(unknown.text == "a\u{FFFD}b")
        let invalid = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=utf-8",
                                                                body: [0x61, 0xC3, 0x28, 0x62]))
        #expect(invalid.text == "a\u{FFFD}(b")
    }

    @Test func base64BodyWithoutPaddingAndWithNoise() {
        // "Hola, ¿qué tal?" in base64, padding removed, a stray "*" and line breaks inserted.
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(
            contentType: "text/plain; charset=utf-8", encoding: "BASE64",
            body: Array("SG9sYSwgwr9xdcOp\r\nIHRhb*D8\r\n".utf8)))
        #expect(mail.text == "Hola, ¿qué tal?")
    }

    @Test func quotedPrintableKeepsInvalidEscapes() {
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(
            contentType: "text/plain; charset=utf-8", encoding: "quoted-printable",
            body: Array("50=25 de descuento =ZZ y =\nsoft = \r\nbreak=".utf8)))
        #expect(mail.text == "50% de descuento =ZZ y soft break")
    }

    @Test func unknownTransferEncodingIsEightBit() {
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=utf-8",
                                                             encoding: "x-gzip64", body: Array("plain".utf8)))
        #expect(mail.text == "plain")
    }

    @Test func formatFlowedIsJoined() {
        let body = "Hola, esta es una l\u{ED}nea \r\nlarga que sigue.\r\n> cita \r\n> unida\r\n-- \r\nAna\r\n"
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=utf-8; format=flowed",
                                                             body: Array(body.utf8)))
        #expect(mail.text == "Hola, esta es una línea larga que sigue.\n> cita unida\n-- \nAna\n")
    }
}

@Suite struct MIMEParserStructureTests {
    @Test func rfc2231ContinuedFilename() throws {
        let raw = MIMEFixtures.crlf("""
        Content-Type: multipart/mixed; boundary=outer

        --outer
        Content-Type: text/plain

        Ver adjunto.
        --outer
        Content-Type: application/pdf
        Content-Disposition: attachment;
         filename*0*=UTF-8''informe%20m%C3%A9dico%20;
         filename*1*=completo%202026;
         filename*2=".pdf"
        Content-Transfer-Encoding: base64

        JVBERi0=
        --outer
        Content-Type: application/octet-stream; name="=?UTF-8?B?cmVjZXRhIG3DqWRpY2EudHh0?="

        abc
        --outer
        Content-Type: application/octet-stream
        Content-Disposition: attachment; filename="../../etc/\u{202E}fdp.exe"

        abc
        --outer--
        """)
        let mail = MIMEParser.parse(raw)
        #expect(mail.text == "Ver adjunto.")
        #expect(mail.attachments.map(\.filename) == ["informe médico completo 2026.pdf", "receta médica.txt", "fdp.exe"])
        #expect(mail.attachments.first?.data == Array("%PDF-".utf8))
    }

    @Test func messageRFC822IsAnAttachmentAndNotRecursedInto() throws {
        let raw = MIMEFixtures.crlf("""
        Subject: Fwd: resultados
        Content-Type: multipart/mixed; boundary=fw

        --fw
        Content-Type: text/plain

        Te reenvío el correo del laboratorio.
        --fw
        Content-Type: message/rfc822

        Subject: =?utf-8?Q?Resultados_/_an=C3=A1lisis?=
        Content-Type: multipart/mixed; boundary=inner

        --inner
        Content-Type: text/plain

        Inner text must not become the body.
        --inner
        Content-Type: application/pdf; name=inner.pdf

        abc
        --inner--
        --fw--
        """)
        let mail = MIMEParser.parse(raw)
        #expect(mail.text == "Te reenvío el correo del laboratorio.")
        #expect(mail.attachments.count == 1)
        #expect(mail.attachments.first?.contentType == "message/rfc822")
        #expect(mail.attachments.first?.filename == "Resultados - análisis.eml")
    }

    @Test func alternativePrefersPlainEvenWhenHTMLComesFirst() {
        let raw = MIMEFixtures.crlf("""
        Content-Type: multipart/alternative; boundary=a

        --a
        Content-Type: text/html

        <p>HTML version</p>
        --a
        Content-Type: text/plain

        Plain version
        --a--
        """)
        let mail = MIMEParser.parse(raw)
        #expect(mail.text == "Plain version")
        #expect(mail.html == "<p>HTML version</p>")
    }

    @Test func mixedTakesTheFirstInlineTextPartAndListsTextAttachments() {
        let raw = MIMEFixtures.crlf("""
        Content-Type: multipart/mixed; boundary=m

        --m
        Content-Type: text/plain
        Content-Disposition: attachment; filename=notes.txt

        attached notes
        --m
        Content-Type: text/plain

        The body.
        --m
        Content-Type: text/calendar; method=REQUEST

        BEGIN:VCALENDAR
        --m--
        """)
        let mail = MIMEParser.parse(raw)
        #expect(mail.text == "The body.")
        #expect(mail.attachments.map(\.filename) == ["notes.txt", nil])
        #expect(mail.attachments.map(\.contentType) == ["text/plain", "text/calendar"])
        #expect(mail.attachments.first?.data == Array("attached notes".utf8))
    }

    @Test func lfOnlyLineEndingsAndBoundaryWithTrailingWhitespace() {
        let raw = Array("""
        From: a@example.org
        Content-Type: multipart/mixed; boundary="lf"

        preamble
        --lf   \t
        Content-Type: text/plain

        line one
        line two
        --lf--  
        epilogue
        """.utf8)
        let mail = MIMEParser.parse(raw)
        #expect(mail.text == "line one\nline two")
        #expect(mail.from.first?.address == "a@example.org")
    }

    @Test func boundaryPrefixesOfOtherBoundariesDoNotMatch() {
        let raw = MIMEFixtures.crlf("""
        Content-Type: multipart/mixed; boundary="----=_Part_1"

        ------=_Part_1
        Content-Type: multipart/alternative; boundary="----=_Part_1_2"

        ------=_Part_1_2
        Content-Type: text/plain

        nested plain
        ------=_Part_1_2--
        ------=_Part_1
        Content-Type: application/zip; name=a.zip

        PK
        ------=_Part_1--
        """)
        let mail = MIMEParser.parse(raw)
        #expect(mail.text == "nested plain")
        #expect(mail.attachments.map(\.filename) == ["a.zip"])
    }

    @Test func missingClosingBoundaryIsTolerated() {
        let raw = MIMEFixtures.crlf("""
        Content-Type: multipart/mixed; boundary=open

        --open
        Content-Type: text/plain

        first
        --open
        Content-Type: application/pdf; name=cut.pdf
        Content-Transfer-Encoding: base64

        JVBE
        """)
        let mail = MIMEParser.parse(raw)
        #expect(mail.text == "first")
        #expect(mail.attachments.first?.filename == "cut.pdf")
        #expect(mail.attachments.first?.data == Array("%PD".utf8))
    }

    @Test func multipartWithoutBoundaryIsText() {
        let mail = MIMEParser.parse(MIMEFixtures.crlf("Content-Type: multipart/mixed\n\nJust text."))
        #expect(mail.text == "Just text.")
        #expect(mail.attachments.isEmpty)
    }

    @Test func nonTextSinglePartMessageIsAnAttachment() {
        let mail = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "application/pdf; name=scan.pdf",
                                                             encoding: "base64", body: Array("JVBERi0=".utf8)))
        #expect(mail.text == "")
        #expect(mail.attachments.first?.filename == "scan.pdf")
        #expect(mail.attachments.first?.size == 5)
    }

    @Test func whitespaceOnlyPlainFallsBackToHTML() {
        let raw = MIMEFixtures.crlf("""
        Content-Type: multipart/alternative; boundary=a

        --a
        Content-Type: text/plain

        \u{20}
        --a
        Content-Type: text/html

        <p>Real content</p>
        --a--
        """)
        #expect(MIMEParser.parse(raw).text == "Real content")
    }
}

@Suite struct MIMEParserLimitTests {
    static func manyAttachments(_ count: Int) -> [UInt8] {
        var text = "Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nbody\n"
        for index in 0..<count {
            text += "--z\nContent-Type: application/pdf; name=f\(index).pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n"
        }
        text += "--z--\n"
        return MIMEFixtures.crlf(text)
    }

    @Test func attachmentCountIsBounded() {
        var limits = MIMELimits()
        limits.maxAttachments = 2
        let mail = MIMEParser.parse(Self.manyAttachments(5), limits: limits)
        #expect(mail.attachments.map(\.filename) == ["f0.pdf", "f1.pdf"])
        #expect(mail.droppedAttachments == 3)
        #expect(mail.text == "body")
    }

    @Test func oversizedAttachmentKeepsMetadataOnly() {
        var limits = MIMELimits()
        limits.maxAttachmentBytes = 8
        let mail = MIMEParser.parse(Self.manyAttachments(1), limits: limits)
        #expect(mail.attachments.count == 1)
        #expect(mail.attachments.first?.size == 9)
        #expect(mail.attachments.first?.data == nil)
        #expect(mail.attachments.first?.oversized == true)
        #expect(mail.attachments.first?.filename == "f0.pdf")
    }

    @Test func partCountIsBounded() {
        var limits = MIMELimits()
        limits.maxParts = 3
        let mail = MIMEParser.parse(Self.manyAttachments(5), limits: limits)
        #expect(mail.truncatedParts == 3)
        #expect(mail.attachments.count == 2)
        #expect(mail.text == "body")
    }

    @Test func textIsCutOnACharacterBoundary() {
        var limits = MIMELimits()
        limits.maxTextBytes = 10
        let accented = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=utf-8",
                                                                 body: Array("ñññññññ".utf8)), limits: limits)
        #expect(accented.text == "ñññññ")
        // "e" + combining acute is one Character: never split.
        let combining = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=utf-8",
                                                                  body: Array("abcdefghie\u{301}xyz".utf8)), limits: limits)
        #expect(combining.text == "abcdefghi")
        let latin1 = MIMEParser.parse(MIMEFixtures.singlePart(contentType: "text/plain; charset=latin1",
                                                               body: [UInt8](repeating: 0xE9, count: 100)), limits: limits)
        #expect(latin1.text == "ééééé")
    }

    @Test func headerSectionIsBounded() {
        var limits = MIMELimits()
        limits.maxHeaderBytes = 40
        let raw = MIMEFixtures.crlf("Subject: first\nX-Long: \(String(repeating: "x", count: 100))\nFrom: late@example.org\n\nbody")
        let mail = MIMEParser.parse(raw, limits: limits)
        #expect(mail.subject == "first")
        #expect(mail.from.isEmpty)
        #expect(mail.text == "body")
    }

    @Test func depthIsBounded() {
        var limits = MIMELimits()
        limits.maxDepth = 1
        let mail = MIMEParser.parse(MIMEFixtures.nested, limits: limits)
        // multipart/related sits at depth 1: kept whole, as an opaque attachment.
        #expect(mail.attachments.map(\.contentType) == ["multipart/related", "application/pdf"])
        #expect(mail.text == "")
    }
}

@Suite struct MIMEParserRobustnessTests {
    @Test func emptyInput() {
        let mail = MIMEParser.parse([])
        #expect(mail.headers.fields.isEmpty)
        #expect(mail.text == "")
        #expect(mail.reply == "")
        #expect(mail.quoted == nil)
        #expect(mail.attachments.isEmpty)
        #expect(mail.messageID == nil)
        #expect(mail.date == nil)
    }

    @Test func onlyHeaders() {
        let mail = MIMEParser.parse(MIMEFixtures.crlf("Subject: hi\nFrom: a@example.org\nMessage-ID: <>"))
        #expect(mail.subject == "hi")
        #expect(mail.from.first?.address == "a@example.org")
        #expect(mail.messageID == nil)
        #expect(mail.text == "")
    }

    @Test func binaryGarbage() {
        var generator = MIMELCG(seed: 42)
        for length in [1, 2, 3, 17, 1_000, 65_536] {
            let garbage = (0..<length).map { _ in generator.nextByte() }
            let mail = MIMEParser.parse(garbage)
            MIMEInvariants.check(mail, limits: MIMELimits())
        }
    }

    @Test func boundaryThatNeverAppears() {
        let raw = MIMEFixtures.crlf("Content-Type: multipart/mixed; boundary=\"never\"\n\n--almost\nhello\n--nev\n")
        let mail = MIMEParser.parse(raw)
        #expect(mail.text == "--almost\nhello\n--nev\n")
        #expect(mail.attachments.isEmpty)
    }

    @Test func tenThousandNestedMultiparts() {
        var text = ""
        for level in 0..<10_000 {
            text += "Content-Type: multipart/mixed; boundary=\"b\(level)\"\r\n\r\n--b\(level)\r\n"
        }
        text += "Content-Type: text/plain\r\n\r\ndeep\r\n"
        for level in (0..<10_000).reversed() { text += "--b\(level)--\r\n" }
        let mail = MIMEParser.parse(Array(text.utf8))
        #expect(mail.text == "")
        #expect(mail.attachments.count == 1)
        #expect(mail.attachments.first?.contentType == "multipart/mixed")
        #expect(mail.truncatedParts == 0)
    }

    @Test func oneMegabyteHeaderLine() {
        let huge = String(repeating: "a", count: 1_048_576)
        let raw = MIMEFixtures.crlf("Subject: \(huge)\nX-Other: \(huge)\nFrom: a@example.org\n\nbody")
        let mail = MIMEParser.parse(raw)
        let subject = mail.subject ?? ""
        #expect(subject.utf8.count < 256 * 1024 && subject.utf8.count > 200_000)
        #expect(mail.from.isEmpty, "fields past the header limit are ignored")
        #expect(mail.text == "body")

        let unterminated = MIMEParser.parse(Array("Subject: \(huge)".utf8))
        #expect(unterminated.text == "")
    }

    @Test func nulBytes() {
        let raw: [UInt8] = Array("Subject: a".utf8) + [0] + Array("b\r\nContent-Type: text/plain\r\n\r\nhel".utf8) + [0, 0] + Array("lo".utf8)
        let mail = MIMEParser.parse(raw)
        #expect(mail.text == "hello")
        #expect(mail.subject == "a b")
    }

    /// Found by the fuzzed variants below: a ">" without "<" in an address list made the
    /// scanner stand still and grow without bound.
    @Test func strayClosingAngleBracketInAnAddressList() {
        #expect(MailAddress.parseList("suppo>rt@clinic.example").count <= 1)
        let list = MailAddress.parseList("a@x.example>, >, <b@y.example>")
        #expect(list.map(\.address) == ["a@x.example", "b@y.example"])
    }

    @Test func fuzzedVariantsHoldTheInvariants() {
        var generator = MIMELCG(seed: 0x5EED)
        let samples = [MIMEFixtures.nested, MIMEFixtures.postfixBounce, MIMEFixtures.gmailReply]
        var limits = MIMELimits()
        limits.maxAttachments = 3
        limits.maxTextBytes = 200
        limits.maxAttachmentBytes = 64
        for round in 0..<2_000 {
            var bytes = samples[round % samples.count]
            for _ in 0..<(1 + generator.next(upTo: 8)) {
                guard !bytes.isEmpty else { break }
                let position = generator.next(upTo: bytes.count)
                switch generator.next(upTo: 6) {
                case 0: bytes[position] = generator.nextByte()
                case 1: bytes[position] ^= UInt8(1 << generator.next(upTo: 8))
                case 2: bytes.removeSubrange(position...)
                case 3:
                    let length = min(generator.next(upTo: 200), bytes.count - position)
                    bytes.insert(contentsOf: bytes[position..<(position + length)], at: position)
                case 4:
                    let length = min(generator.next(upTo: 50), bytes.count - position)
                    bytes.removeSubrange(position..<(position + length))
                default:
                    let tokens = ["--", "\r\n", "=?", "?=", "=", "\"", "<", ">", "boundary=", "multipart/mixed;", "\r\n\r\n", "&#"]
                    bytes.insert(contentsOf: Array(tokens[generator.next(upTo: tokens.count)].utf8), at: position)
                }
            }
            let mail = MIMEParser.parse(bytes, limits: limits)
            MIMEInvariants.check(mail, limits: limits)
        }
    }
}

/// A seeded linear congruential generator (Knuth's MMIX constants): deterministic fuzzing.
struct MIMELCG {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }

    mutating func next(upTo bound: Int) -> Int {
        Int(next() % UInt64(max(bound, 1)))
    }

    mutating func nextByte() -> UInt8 {
        UInt8(truncatingIfNeeded: next())
    }
}

enum MIMEInvariants {
    static func check(_ mail: ParsedMail, limits: MIMELimits, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(mail.attachments.count <= limits.maxAttachments, sourceLocation: sourceLocation)
        #expect(mail.text.utf8.count <= limits.maxTextBytes + 4, sourceLocation: sourceLocation)
        #expect(mail.reply.utf8.count <= mail.text.utf8.count, sourceLocation: sourceLocation)
        for attachment in mail.attachments {
            if let data = attachment.data {
                #expect(data.count == attachment.size, sourceLocation: sourceLocation)
                #expect(data.count <= limits.maxAttachmentBytes, sourceLocation: sourceLocation)
            } else {
                #expect(attachment.oversized, sourceLocation: sourceLocation)
            }
            if let filename = attachment.filename {
                #expect(!filename.isEmpty && filename.utf8.count <= 255, sourceLocation: sourceLocation)
                #expect(!filename.contains("/") && !filename.contains("\\") && !filename.hasPrefix("."),
                        sourceLocation: sourceLocation)
            }
        }
        if let html = mail.html {
            #expect(!html.lowercased().contains("<script"), sourceLocation: sourceLocation)
        }
    }
}
