"""The text part made from an email's HTML: headings, lists, tables and links survive as
text a person can read, line for line, from the converter to the MIME part on the wire."""

import email
import email.policy

import pytest

from messaging.content import rendering
from messaging.content.plain_text import html_to_text
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import SandboxMessage

HTML = """<!doctype html><html><head><title>News</title><style>h1 { color: red }</style></head><body>
<div style="display:none;max-height:0">A preheader only inboxes show</div>
<h1>Spring &amp; summer</h1>
<p>Hello&nbsp;Ada, here&#39;s what&rsquo;s new:</p>
<ul><li>First <b>item</b></li><li>Second item<ul><li>nested</li></ul></li></ul>
<ol><li>one</li><li>two</li></ol>
<table role="presentation"><tr><td style="padding-left:40px">
<h2>Your order</h2>
<table><tr><th>Item</th><th>Qty</th><th>Price</th></tr><tr><td>Blue mug</td><td>2</td><td>12.00 €</td></tr></table>
</td></tr></table>
<p>See <a href="https://shop.example.com/orders/1">your order</a> or <a href="mailto:help@example.com">write to us</a>.</p>
</body></html>"""


def test_html_to_text_keeps_headings_lists_tables_and_links():
    assert html_to_text(HTML).splitlines() == [
        "Spring & summer",
        "",
        "Hello Ada, here's what’s new:",
        "",
        "* First item",
        "* Second item",
        "  + nested",
        "",
        "1. one",
        "2. two",
        "",
        "Your order",
        "",
        "Item      Qty  Price",
        "Blue mug  2    12.00 €",
        "",
        "See your order (https://shop.example.com/orders/1) or write to us (mailto:help@example.com).",
    ]


@pytest.mark.parametrize("html", ["", "   ", "<!-- nothing -->", "<html><body></body></html>"])
def test_html_without_text_has_an_empty_text_part(html):
    assert html_to_text(html) == ""


MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-text><h2>Your order {{ order.number }}</h2><p>Hello {{ contact.first_name|default:"friend" }},</p>
<ul>{% for item in order.items %}<li>{{ item.name }}</li>{% endfor %}</ul></mj-text>
<mj-table><tr><th>Item</th><th>Qty</th></tr>{% for item in order.items %}<tr><td>{{ item.name }}</td><td>{{ item.qty }}</td></tr>{% endfor %}</mj-table>
{% if order.gift %}<mj-text>A gift message is included.</mj-text>{% endif %}
<mj-text>Questions? <a href="{{ order.url }}">See your order</a>.</mj-text>
</mj-column></mj-section></mj-body></mjml>"""
ORDER = {"number": "A-42", "url": "https://shop.test/a42", "gift": False, "items": [{"name": "Mug", "qty": 2}, {"name": "Tea", "qty": 10}]}


@pytest.fixture
def version(marketer):
    template = create_template(actor=marketer, key="order-summary", name="Order summary", locale="en")
    version = save_template_version(actor=marketer, template=template, subject="Order {{ order.number }}", body=MJML, body_format="mjml")
    activate_template_version(actor=marketer, version=version)
    return version


@pytest.mark.django_db
def test_the_rendered_text_part_has_the_heading_a_line_per_item_the_table_and_the_link(version, contact):
    rendered = rendering.render_version(version, {"contact": {"first_name": "Ada"}, "order": ORDER})
    assert rendered.text.splitlines() == [
        "Your order A-42",
        "",
        "Hello Ada,",
        "",
        "* Mug",
        "* Tea",
        "",
        "Item         Qty",  # columns are as wide as the template's tags, not the merged values
        "Mug  2",
        "Tea  10",
        "",
        "Questions? See your order (https://shop.test/a42).",
    ]
    with_gift = rendering.render_version(version, {"contact": {"first_name": "Ada"}, "order": ORDER | {"gift": True}}).text
    assert "Tea  10\n\nA gift message is included.\n\nQuestions?" in with_gift


@pytest.mark.django_db
def test_the_text_part_on_the_wire_is_the_rendered_text(version, contact, settings):
    settings.MAILROOM_KICK_CLUSTER = False
    enqueue_message(channel="email", contact=contact, template=version.template, context={"order": ORDER})
    send_due_messages()
    parsed = email.message_from_string(SandboxMessage.objects.get().source, policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Your order A-42\n\nHello Ada,\n\n* Mug\n* Tea\n\nItem         Qty\nMug  2\nTea  10\n\nQuestions? See your order (" in text
    assert "&" not in text and "<" not in text
