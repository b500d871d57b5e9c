"""Campaign mail as received carries the open pixel and tracked links (issue 17): the
fan-out's deferred render and `enqueue_message` store the same body, so opens and clicks of
campaign mail are recorded from the received bytes, and an A/B test by open rate is decided
by the real opens."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from marketing.campaigns.fanout import fan_out
from marketing.campaigns.tasks import run_campaigns
from marketing.models import Campaign, CampaignRecipient
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.outbox import enqueue_message, render_deferred
from messaging.delivery.sending import send_due_messages
from messaging.models import DeliveryEvent, OutboxMessage, SandboxMessage, TrackedLink
from tests.marketing.conftest import make_people, make_segment, new_campaign
from tests.marketing.test_campaigns_sending import approve_and_start

pytestmark = pytest.mark.django_db
BASE = "http://testserver"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
TARGETS = {"https://shop.example.com/sale", "https://shop.example.com/new?utm_source=mail&x=1"}
BODY = (
    "<html><body><p>Hello {{ contact.first_name }}</p>"
    '<p><a href="https://shop.example.com/sale">Spring sale</a></p>'
    '<p><a href="https://shop.example.com/new?utm_source=mail&x=1">New</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> <a href="{{ view_in_browser_url }}">View in browser</a></p></body></html>'
)
PUBLIC_PAGES = re.compile(re.escape(BASE) + r"/[upv]/[^/]+/")  # unsubscribe, preferences, view in browser: not clicks


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/"), url
    return url.removeprefix(BASE)


def pixel_url(html: str) -> str:
    found = re.findall(r'<img src="([^"]*/o/[^"]+\.gif)"', html)
    assert len(found) == 1, "the open pixel is missing from the received mail"
    return path_of(found[0])


def hrefs(html: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', html)]


def later(hours: float = 1):
    """Past MAILROOM_PREFETCH_SECONDS: a person reading the mail, not a prefetch."""
    return time_machine.travel(timezone.now() + timedelta(hours=hours), tick=False)


@pytest.fixture
def tracked_version(marketer, newsletter):
    template = create_template(actor=marketer, key="pixel", name="Pixel", category="newsletter", channel="email", topic=newsletter)
    version = save_template_version(
        actor=marketer,
        template=template,
        subject="News for {{ contact.first_name }}",
        preheader="Spring is here, {{ contact.first_name }}",
        body_format="html",
        body=BODY,
    )
    activate_template_version(actor=marketer, version=version)
    return version


def test_campaign_mail_as_received_has_an_open_pixel_and_tracked_links_that_record_opens_and_clicks(
    client, marketer, approver, newsletter, tracked_version
):
    people = make_people(newsletter, 3, prefix="px")
    campaign = approve_and_start(new_campaign(marketer, newsletter, make_segment("Three", people), tracked_version), marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()
    received = SandboxMessage.objects.filter(message__campaign_recipient__campaign=campaign).order_by("id")
    assert received.count() == 3
    for mail in received:
        html = mail.body_html
        assert "__MAILROOM" not in html and "{{" not in html
        links = [h for h in hrefs(html) if not PUBLIC_PAGES.match(h)]
        assert len(links) == 2 and all(re.fullmatch(re.escape(BASE) + r"/t/\d+/[^/]+/", link) for link in links), links
        pixel = pixel_url(html)
        with later():
            reached = set()
            for link in links:
                response = client.get(path_of(link), HTTP_USER_AGENT=BROWSER)
                assert response.status_code == 302
                reached.add(response["Location"])
            assert client.get(pixel, HTTP_USER_AGENT=BROWSER).status_code == 200
        assert reached == TARGETS
        clicks = DeliveryEvent.objects.filter(message_id=mail.message_id, kind=DeliveryEvent.Kind.CLICKED, is_automated=False)
        assert {TrackedLink.objects.get(pk=e.payload["link"]).url for e in clicks} == TARGETS
        assert DeliveryEvent.objects.filter(message_id=mail.message_id, kind=DeliveryEvent.Kind.OPENED, is_automated=False).count() == 1
        # the stored message names its own links: its clicks may reach exactly those
        stored = OutboxMessage.objects.get(pk=mail.message_id)
        assert {TrackedLink.objects.get(pk=pk).url for pk in stored.metadata["links"]} == TARGETS


def test_an_ab_test_by_open_rate_is_decided_by_the_opens_of_the_received_mail(client, marketer, approver, newsletter, tracked_version):
    people = make_people(newsletter, 20, prefix="ab")
    campaign = new_campaign(
        marketer,
        newsletter,
        make_segment("Twenty", people),
        tracked_version,
        ab_test_share=50,
        ab_wait_hours=2,
        ab_metric=Campaign.Metric.OPEN,
        variants=[{"subject": "A {{ contact.first_name }}"}, {"subject": "B {{ contact.first_name }}"}],
    )
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()

    def received(label):
        ids = CampaignRecipient.objects.filter(campaign=campaign, variant__label=label, is_test=True).values_list("message_id", flat=True)
        return list(SandboxMessage.objects.filter(message_id__in=ids).order_by("id"))

    a, b = received("A"), received("B")
    assert len(a) == 5 and len(b) == 5
    # one reader of A opens, three readers of B open (one of them twice)
    with later():
        for mail in [a[0], *b[:3], b[0]]:
            assert client.get(pixel_url(mail.body_html), HTTP_USER_AGENT=BROWSER).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        run_campaigns()
    campaign.refresh_from_db()
    assert campaign.winner.label == "B"


def test_enqueue_and_the_fan_outs_deferred_render_store_the_same_body(marketer, approver, newsletter, tracked_version):
    person = make_people(newsletter, 1, prefix="same")[0]
    campaign = approve_and_start(new_campaign(marketer, newsletter, make_segment("One", [person]), tracked_version), marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()
    deferred = OutboxMessage.objects.get(campaign_recipient__campaign=campaign)
    direct = enqueue_message(channel="email", contact=person, template_version=tracked_version, topic=newsletter)
    assert deferred.status == OutboxMessage.Status.SENT and "render" not in deferred.metadata
    assert deferred.subject == direct.subject == "News for Same0"
    assert deferred.body_html == direct.body_html and deferred.body_text == direct.body_text
    assert "Spring is here, Same0" in deferred.body_html and "__MAILROOM_OPEN__" in deferred.body_html
    assert deferred.metadata["links"] == direct.metadata["links"] and len(direct.metadata["links"]) == 2


def test_untracked_mail_gets_neither_pixel_nor_click_links_on_either_path(marketer, approver, newsletter, tracked_version):
    person = make_people(newsletter, 1, prefix="quiet")[0]
    direct = enqueue_message(channel="email", contact=person, template_version=tracked_version, topic=newsletter, track_links=False)
    queued = OutboxMessage.objects.create(
        channel="email",
        contact=person,
        to_address=person.email,
        topic=newsletter,
        is_marketing=True,
        next_attempt_at=timezone.now(),
        metadata={"render": {"version": tracked_version.pk, "subject": "", "track_links": False}},
    )
    ready, broken = render_deferred([queued])
    assert ready == [queued] and not broken
    deferred = OutboxMessage.objects.get(pk=queued.pk)
    assert deferred.body_html == direct.body_html
    for body, metadata in ((direct.body_html, direct.metadata), (deferred.body_html, deferred.metadata)):
        assert "__MAILROOM_OPEN__" not in body and "/t/" not in body and "links" not in metadata
        assert 'href="https://shop.example.com/sale"' in body and "Spring is here, Quiet0" in body
    assert not TrackedLink.objects.exists()
