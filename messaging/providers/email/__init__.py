"""Email on the wire, one module per seam.

`headers`: header lines encoded once (RFC 2047 encoded words, addresses, the one-click
unsubscribe pair), the deterministic Message-ID. `bodies`: the text and HTML as they go out
(per-message links, secrets, the marketing footer in the contact's language). `mime`: the
MIME bytes written directly from pre-encoded parts, DKIM, and `compose`, the one
composition every email provider sends. `smtp`: the SMTP session, pipelined (RFC 2920)
when the server offers it. `esp`: the email-service (django-anymail) session.

The MIME is written directly from pre-encoded parts (quoted-printable through binascii,
headers encoded once) instead of through `email.message`, which is several times slower
per message; the structure is the plain multipart/alternative every client reads.

Per message the send path does as little as it can: the sender's address is parsed and
encoded once per process, a plain recipient address is used as it is, a non-ASCII
subject becomes RFC 2047 encoded words directly, the two signed tokens of an email (the
unsubscribe link and the click marker) are made with an HMAC key derived once, and SMTP
is pipelined (RFC 2920) when the server offers it: one round trip per message instead
of smtplib's four (see SMTPSession).
"""
