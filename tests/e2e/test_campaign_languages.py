"""One campaign, two languages, end to end in a real browser (issue 17, proof).

A marketer builds the campaign in the console wizard from a template with an English and a
French variant, an approver approves it, the marketer sends it now; it goes out through a
real SMTP provider into the loopback sink (aiosmtpd). The bytes each contact received are
parsed with the email package: Julie (fr) got the French variant, Anne (en) the English one,
each with the open pixel, tracked links and List-Unsubscribe.

Seconds after sending, a mail gateway's link scanner fetches every link of both mails (as
security gateways do): that proves delivery but is nobody reading. Past the prefetch window
each contact reads her mail in a browser with a browser's user agent: Julie's mail client
shows the images (the pixel loads), she clicks the offer (the redirect lands on a page of
the live server) and unsubscribes on the French public page; Anne only reads. The analytics
rollup runs as the scheduled task does, and the marketer's campaign report shows exactly
2 opens, 1 click, 1 unsubscribe, split by language. Screenshot:
docs/screenshots/campaign-report-languages.png.
"""

import email
import re
import time
import urllib.request
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import Browser, Page, expect

from marketing.analytics.tasks import roll_up_analytics
from marketing.campaigns.tasks import run_campaigns
from marketing.models import Campaign
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.sending import send_due_messages
from messaging.models import DeliveryEvent, OutboxMessage, Provider, Subscription
from tests.e2e.test_campaigns import log_in
from tests.marketing.conftest import SENDER, make_people, make_segment
from tests.support.smtp_sink import SMTPSink

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(django_settings.BASE_DIR) / "docs" / "screenshots" / "campaign-report-languages.png"
PREFETCH_SECONDS = 3.0  # room for a loaded machine to scan inside it; people come after it
# What a person's browser says (Playwright's headless Chromium announces "HeadlessChrome",
# which the product rightly takes for a machine).
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
GATEWAY = "Python-urllib/3.12"  # a mail gateway's link scanner
K = DeliveryEvent.Kind


def body(greeting: str, offer: str, leave: str, landing: str) -> str:
    return (
        f"<html><body><p>{greeting} {{{{ contact.first_name }}}} !</p>"
        f'<p><a href="{landing}" data-offer>{offer}</a></p>'
        f'<p><a href="{{{{ unsubscribe_url }}}}" data-leave>{leave}</a></p></body></html>'
    )


def variant(actor, topic, *, locale: str, subject: str, html: str):
    template = create_template(actor=actor, key="spring-lang", name=f"Spring {locale}", locale=locale, category="newsletter", topic=topic)
    version = save_template_version(actor=actor, template=template, subject=subject, body_format="html", body=html)
    activate_template_version(actor=actor, version=version)
    return version


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=default_policy)


def html_of(mail: EmailMessage) -> str:
    return mail.get_body(preferencelist=("html",)).get_content()


def text_of(mail: EmailMessage) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def pixel_of(html: str, base: str) -> str:
    found = re.findall(r'<img src="(' + re.escape(base) + r'/o/[^"]+\.gif)"', html)
    assert len(found) == 1, found
    return found[0]


def gateway_get(url: str) -> int:
    """One GET the way a link scanner does it (follows redirects), from outside any browser."""
    request = urllib.request.Request(url, headers={"User-Agent": GATEWAY})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        return response.status


def mailbox(browser: Browser, locale: str) -> Page:
    """A person's browser: her language, a browser's user agent."""
    context = browser.new_context(locale=locale, user_agent=CHROME, viewport={"width": 900, "height": 700})
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def read_mail(page: Page, html: str, pixel: str) -> None:
    """Show the mail as a mail client does, images on: the pixel is fetched by the browser."""
    with page.expect_response(lambda response: response.url == pixel) as loaded:
        page.set_content(html)
    assert loaded.value.status == 200 and loaded.value.headers["content-type"] == "image/gif"


@pytest.fixture(autouse=True)
def _language_settings(settings, live_server):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER
    settings.MAILROOM_BASE_URL = live_server.url  # the links in the mail reach the live server
    settings.MAILROOM_PREFETCH_SECONDS = PREFETCH_SECONDS


@pytest.fixture
def smtp_sink():
    with SMTPSink() as sink:
        yield sink


def test_a_french_and_an_english_contact_get_their_language_and_the_report_shows_what_each_did(
    browser, page, live_server, marketer, approver, newsletter, smtp_sink
):
    base = live_server.url
    landing = f"{base}/healthz?from=spring-sale"
    # given a template in English and in French, two subscribed contacts and an SMTP relay
    en = variant(
        marketer, newsletter, locale="en", subject="Spring sale for {{ contact.first_name }}",
        html=body("Hello", "See the spring sale", "Unsubscribe", landing),
    )  # fmt: skip
    variant(
        marketer, newsletter, locale="fr", subject="Soldes de printemps pour {{ contact.first_name }}",
        html=body("Bonjour", "Voir les soldes", "Se désabonner", landing),
    )  # fmt: skip
    (anne,) = make_people(newsletter, 1, prefix="anne", locale="en")
    (julie,) = make_people(newsletter, 1, prefix="julie", locale="fr")
    segment = make_segment("Bilingual", [anne, julie])
    Provider.objects.create(
        name="Relay", channel="email", kind=Provider.Kind.SMTP, priority=1, config={"host": "127.0.0.1", "port": smtp_sink.port}
    )

    # when the marketer creates the campaign in the wizard, with the English version pinned
    log_in(page, live_server, marketer)
    page.goto(f"{base}/admin/marketing/campaign/")
    page.get_by_role("link", name="New campaign").click()
    page.fill("#id_name", "Spring in two languages")
    page.select_option("#id_topic", str(newsletter.pk))
    page.get_by_test_id("wizard-next").click()
    page.check(f'input[name=segments][value="{segment.pk}"]')
    page.get_by_test_id("wizard-next").click()
    page.select_option("#id_template_version", str(en.pk))
    page.get_by_test_id("wizard-save").click()
    # then the dry run splits the audience by language, with a sample in each
    expect(page.get_by_test_id("campaign-state")).to_have_attribute("data-state", "draft")
    expect(page.locator('[data-testid="dry-run-languages"] [data-language="en"]')).to_have_text("en: 1")
    expect(page.locator('[data-testid="dry-run-languages"] [data-language="fr"]')).to_have_text("fr: 1")
    expect(page.get_by_test_id("dry-run-warnings")).to_have_count(0)
    campaign = Campaign.objects.get(name="Spring in two languages")

    # when she submits it, the approver approves it in the queue and she sends it now
    page.locator('button[data-action="submit"]').click()
    expect(page.get_by_test_id("campaign-state")).to_have_attribute("data-state", "pending_approval")
    expect(page.locator('[data-testid="campaign-languages"] [data-language="fr"]')).to_contain_text("Spring fr")
    log_in(page, live_server, approver)
    page.goto(f"{base}/admin/marketing/campaign/approvals/")
    page.get_by_test_id("approval-item").locator('button[data-action="approve"]').click()
    expect(page.get_by_test_id("approval-empty")).to_be_visible()
    log_in(page, live_server, marketer)
    page.goto(f"{base}/admin/marketing/campaign/{campaign.pk}/overview/")
    page.locator('button[data-action="schedule"]').click()
    expect(page.get_by_test_id("campaign-state")).to_have_attribute("data-state", "scheduled")

    # and the minute tick starts it and a worker drains the outbox into the SMTP relay
    assert run_campaigns()["started"] == 1
    send_due_messages()  # the campaign and the staff notifications (submitted, approved)
    sent_by = time.time()  # every token in the mails was signed before this
    statuses = OutboxMessage.objects.filter(campaign_recipient__campaign=campaign).values_list("status", flat=True)
    assert sorted(statuses) == ["sent", "sent"]

    # then each contact received her own language, tracked, with List-Unsubscribe
    received = [parse(raw) for raw in smtp_sink.messages]
    mails = {mail["To"].addresses[0].addr_spec: mail for mail in received if not mail["To"].addresses[0].addr_spec.endswith("@staff.test")}
    assert set(mails) == {anne.email, julie.email}
    fr, en_mail = mails[julie.email], mails[anne.email]
    assert fr["Subject"] == f"Soldes de printemps pour {julie.first_name}"
    assert en_mail["Subject"] == f"Spring sale for {anne.first_name}"
    fr_html, en_html = html_of(fr), html_of(en_mail)
    assert f"Bonjour {julie.first_name}" in fr_html and "Voir les soldes" in fr_html
    assert "Hello" not in fr_html and "spring sale" not in fr_html.lower()
    assert f"Hello {anne.first_name}" in en_html and "See the spring sale" in en_html and "Bonjour" not in en_html
    assert f"Bonjour {julie.first_name}" in text_of(fr) and f"Hello {anne.first_name}" in text_of(en_mail)  # the text parts too
    mail_links = {}
    for who, mail, html in (("julie", fr, fr_html), ("anne", en_mail, en_html)):
        assert "__MAILROOM" not in html and "{{" not in html
        links = hrefs(html)
        offer = [link for link in links if re.fullmatch(re.escape(base) + r"/t/\d+/[^/]+/", link)]
        leave = [link for link in links if link.startswith(f"{base}/u/")]
        assert len(offer) == 1 and len(leave) == 1, links
        assert landing not in html  # the target only ever appears behind the tracked link
        header = mail["List-Unsubscribe"]
        assert header.startswith(f"<{base}/u/") and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        mail_links[who] = {"pixel": pixel_of(html, base), "offer": offer[0], "leave": leave[0], "html": html}
    julie_links, anne_links = mail_links["julie"], mail_links["anne"]
    assert julie_links["offer"] != anne_links["offer"]  # each message has its own token

    # when, seconds after delivery, a mail gateway fetches every link of both mails
    for links in (julie_links, anne_links):
        assert gateway_get(links["pixel"]) == 200
        assert gateway_get(links["offer"]) == 200  # followed the redirect to the landing page
        assert gateway_get(links["leave"]) == 200  # a GET only asks: nobody is unsubscribed
    assert time.time() - sent_by < PREFETCH_SECONDS, "the machine was too slow to hit inside the prefetch window"
    assert Subscription.objects.filter(contact__in=[anne, julie], topic=newsletter, status="subscribed").count() == 2
    automated = DeliveryEvent.objects.filter(message__campaign_recipient__campaign=campaign, kind__in=[K.OPENED, K.CLICKED])
    assert automated.count() == 4 and all(event.is_automated for event in automated)

    # when, past the prefetch window, Julie reads her mail in her browser, clicks the offer and unsubscribes
    time.sleep(max(0.0, sent_by + PREFETCH_SECONDS + 0.3 - time.time()))
    julie_page = mailbox(browser, "fr-FR")
    read_mail(julie_page, julie_links["html"], julie_links["pixel"])
    julie_page.get_by_role("link", name="Voir les soldes").click()
    julie_page.wait_for_url(landing)
    expect(julie_page.locator("body")).to_have_text("ok")
    read_mail(julie_page, julie_links["html"], julie_links["pixel"])  # she reads it again: still one opener
    julie_page.get_by_role("link", name="Se désabonner").click()
    julie_page.wait_for_url(julie_links["leave"])
    expect(julie_page.locator("html")).to_have_attribute("lang", "fr")
    expect(julie_page.get_by_role("heading", level=1)).to_have_text("Se désabonner")
    julie_page.get_by_role("button", name="Se désabonner").click()
    expect(julie_page.get_by_role("status")).to_have_text("Votre désabonnement est confirmé")
    julie_page.context.close()
    # and Anne only reads hers
    anne_page = mailbox(browser, "en-GB")
    read_mail(anne_page, anne_links["html"], anne_links["pixel"])
    anne_page.context.close()

    # then Julie is unsubscribed from the topic, Anne is not
    assert Subscription.objects.get(contact=julie, topic=newsletter).status != "subscribed"
    assert Subscription.objects.get(contact=anne, topic=newsletter).status == "subscribed"
    messages = {m.contact_id: m for m in OutboxMessage.objects.filter(campaign_recipient__campaign=campaign)}
    human = DeliveryEvent.objects.filter(is_automated=False)
    assert human.filter(message=messages[julie.pk], kind=K.OPENED).count() == 2
    assert human.filter(message=messages[julie.pk], kind=K.CLICKED).count() == 1
    assert human.filter(message=messages[anne.pk], kind=K.OPENED).count() == 1
    assert not human.filter(message=messages[anne.pk], kind=K.CLICKED).exists()

    # when the tick settles the campaign and the analytics rollup runs, as scheduled
    run_campaigns()
    roll_up_analytics()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENT

    # then the marketer's campaign report shows what the two people did, and nothing the gateway did
    page.goto(f"{base}/admin/marketing/campaign/{campaign.pk}/overview/")
    page.get_by_test_id("report-link").click()
    cards = page.get_by_test_id("report-card")

    def card(label: str) -> str:
        return cards.filter(has=page.locator("dt", has_text=re.compile(f"^{label}$"))).locator("dd").inner_text()

    assert {label: card(label) for label in ("Recipients", "Sent", "Opens", "Clicks", "Unsubscribes", "Bounces")} == {
        "Recipients": "2",
        "Sent": "2",
        "Opens": "2",
        "Clicks": "1",
        "Unsubscribes": "1",
        "Bounces": "0",
    }
    link_rows = page.get_by_test_id("link-table").locator("tbody tr")
    expect(link_rows).to_have_count(1)
    expect(link_rows.locator("td")).to_have_text([landing, "1", "1"])
    language_rows = page.get_by_test_id("language-row")
    expect(language_rows).to_have_count(2)
    expect(page.locator('[data-testid="language-row"][data-language="en"] td')).to_have_text(["en", "1", "1", "0", "0"])
    expect(page.locator('[data-testid="language-row"][data-language="fr"] td')).to_have_text(["fr", "1", "1", "1", "1"])
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # and the analytics page of the campaign, from the rollup, agrees
    page.goto(f"{base}/admin/analytics/campaigns/{campaign.pk}/")
    expect(page.get_by_test_id("kpi-sent")).to_have_text("2")
    kpis = page.get_by_test_id("analytics-kpis")
    expect(kpis).to_contain_text("1 unsubscribed")
    expect(kpis).to_contain_text("100.0 %")  # both opened
    expect(kpis).to_contain_text("click rate 50.0 %")
