"""Run by the host-project test in its own process: sends one email the Django way
(`python -m tests.support.host_project.send`, DJANGO_SETTINGS_MODULE pointing here)."""

import django

django.setup()

# After setup: Django's mail module reads the settings above.
from email.message import MIMEPart  # noqa: E402

from django.core.mail import EmailMultiAlternatives  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64


def main() -> None:
    email = EmailMultiAlternatives(
        subject="Your order {{ not a template }}",
        body="Thanks for your order.",
        to=["Ada Lovelace <ada@example.com>"],
        cc=["bob@example.com"],
        bcc=["audit@example.com"],
        reply_to=["help@example.com"],
        headers={"X-Order": "A-17", "X-Mailroom-Dedup-Key": "order:A-17", "X-Mailroom-Topic": "receipts"},
    )
    email.attach_alternative('<p>Thanks!</p><img src="cid:logo@shop.example">', "text/html")
    email.attach("order.pdf", PDF, "application/pdf")
    logo = MIMEPart()
    logo.set_content(PNG, maintype="image", subtype="png", disposition="inline", filename="logo.png", cid="<logo@shop.example>")
    email.attach(logo)
    assert email.send() == 1


if __name__ == "__main__":
    main()
