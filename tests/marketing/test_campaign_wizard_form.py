"""The campaign wizard's form through HTTP as a marketer (issue 18, item 3): Unfold widgets
on every input, the template picker grouped by category with template names, and the send
time typed in the marketer's time zone, stored in UTC, shown back the same across a DST
change; a time the clocks skip or a time in the past is refused and nothing is saved."""

from datetime import UTC, datetime

import lxml.html
import pytest

from marketing.models import Campaign
from messaging.content.versions import activate_template_version, create_template, save_template_version
from tests.marketing.conftest import BODY, wizard_form

pytestmark = pytest.mark.django_db
NEW = "/admin/marketing/campaign/new/"


@pytest.fixture
def paris(settings):
    settings.TIME_ZONE = "Europe/Paris"


def wizard(client) -> lxml.html.HtmlElement:
    response = client.get(NEW)
    assert response.status_code == 200
    return lxml.html.fromstring(response.content.decode()).cssselect('form[data-testid="campaign-wizard"]')[0]


def saved_form(response) -> tuple[str, list[str]]:
    """The wizard's error box text and the send time field's own errors."""
    page = lxml.html.fromstring(response.content.decode())
    box = page.cssselect('[data-testid="wizard-errors"]')
    return (box[0].text_content() if box else ""), [e.text_content() for e in page.cssselect('[data-field="send_at"] .text-red-600')]


def test_every_wizard_input_carries_unfold_classes(client, marketer, newsletter, version):
    client.force_login(marketer)
    form = wizard(client)
    fields = [
        e
        for e in form.cssselect("input, select, textarea")
        if e.get("type") not in ("hidden", "submit", "button") and e.get("name") != "csrfmiddlewaretoken"
    ]
    assert len(fields) > 20
    unstyled = [e.get("name") for e in fields if "border" not in (e.get("class") or "").split()]
    assert unstyled == []
    # text, number, select and date/time inputs get Unfold's input look (border, rounded, padding)
    for name in ("name", "throttle_per_hour", "topic", "template_version", "send_at", "local_time", "context"):
        [element] = form.cssselect(f'[name="{name}"]')
        assert {"border-base-200", "rounded-default"} <= set(element.get("class").split()), name
    [send_at] = form.cssselect('[name="send_at"]')
    assert send_at.get("type") == "datetime-local"


def test_the_template_picker_groups_versions_by_category_under_their_names(client, marketer, newsletter, receipts, version):
    # given a newsletter template (the fixture's "Spring") and a transactional one whose
    # key differs from its name and whose subject is template source
    receipt = create_template(actor=marketer, key="rcpt-2030", name="Order receipt", category="transactional", topic=receipts)
    first = save_template_version(actor=marketer, template=receipt, subject="Receipt {{ order.number }}", body_format="html", body=BODY)
    second = save_template_version(
        actor=marketer, template=receipt, subject="Your receipt {{ order.number }}", body_format="html", body=BODY
    )
    activate_template_version(actor=marketer, version=first)
    client.force_login(marketer)
    [picker] = wizard(client).cssselect('select[name="template_version"]')
    groups = {group.get("label"): [o.text_content().strip() for o in group.cssselect("option")] for group in picker.cssselect("optgroup")}
    # then marketing categories come first, each version named, the active one marked
    assert list(groups) == ["Newsletter", "Transactional"]
    assert groups["Newsletter"] == ["Spring · EN · v1 (active)"]
    assert groups["Transactional"] == ["Order receipt · EN · v2", "Order receipt · EN · v1 (active)"]
    labels = " ".join(o.text_content() for o in picker.cssselect("option"))
    assert "{{" not in labels and "rcpt-2030" not in labels
    assert picker.cssselect(f'optgroup[label="Transactional"] option[value="{second.pk}"]')
    # and the variant pickers are grouped the same way
    [variant] = wizard(client).cssselect('select[name="variant_B_version"]')
    assert [g.get("label") for g in variant.cssselect("optgroup")] == ["Newsletter", "Transactional"]


def test_the_send_time_is_typed_in_the_marketers_zone_and_round_trips_across_a_dst_change(
    client, marketer, newsletter, segment, version, paris
):
    client.force_login(marketer)
    # the field says which time zone it means
    [label] = wizard(client).cssselect('label[for="id_send_at"]')
    assert label.text_content().strip() == "Date and time (Europe/Paris)"
    # when she schedules one campaign the day before the clocks go forward, one the day after
    for name, typed in (("Before", "2030-03-30T10:00"), ("After", "2030-03-31T10:00")):
        response = client.post(NEW, wizard_form(newsletter, segment, version, name=name, send_mode="at", send_at=typed))
        assert response.status_code == 302, saved_form(response)
    # then each is stored in UTC with that day's offset (+1 h in winter, +2 h in summer)
    before, after = Campaign.objects.get(name="Before"), Campaign.objects.get(name="After")
    assert before.send_at == datetime(2030, 3, 30, 9, 0, tzinfo=UTC)
    assert after.send_at == datetime(2030, 3, 31, 8, 0, tzinfo=UTC)
    # and the edit page shows her the same wall-clock times back
    for campaign, typed in ((before, "2030-03-30T10:00"), (after, "2030-03-31T10:00")):
        page = lxml.html.fromstring(client.get(f"/admin/marketing/campaign/{campaign.pk}/edit/").content.decode())
        assert page.cssselect('[name="send_at"]')[0].get("value") == typed
    # and saving the edit form unchanged keeps the instant
    edit = wizard_form(newsletter, segment, version, name="After", send_mode="at", send_at="2030-03-31T10:00")
    assert client.post(f"/admin/marketing/campaign/{after.pk}/edit/", edit).status_code == 302
    after.refresh_from_db()
    assert after.send_at == datetime(2030, 3, 31, 8, 0, tzinfo=UTC)


def test_a_time_the_clocks_skip_is_refused_and_nothing_is_saved(client, marketer, newsletter, segment, version, paris):
    client.force_login(marketer)
    response = client.post(NEW, wizard_form(newsletter, segment, version, send_mode="at", send_at="2030-03-31T02:30"))
    assert response.status_code == 200
    box, field_errors = saved_form(response)
    expected = "2030-03-31 02:30 does not exist in Europe/Paris: the clocks skip it (daylight saving time). Pick another time."
    assert field_errors == [expected] and expected in box
    assert not Campaign.objects.exists()
    # what she typed stays in the field to correct
    assert lxml.html.fromstring(response.content.decode()).cssselect('[name="send_at"]')[0].get("value") == "2030-03-31T02:30"


def test_a_time_that_happens_twice_means_its_first_occurrence(client, marketer, newsletter, segment, version, paris):
    client.force_login(marketer)
    response = client.post(NEW, wizard_form(newsletter, segment, version, send_mode="at", send_at="2030-10-27T02:30"))
    assert response.status_code == 302
    assert Campaign.objects.get().send_at == datetime(2030, 10, 27, 0, 30, tzinfo=UTC)  # 02:30 summer time (+2 h)


def test_a_time_in_the_past_is_refused_and_nothing_changes(client, marketer, newsletter, segment, version, paris):
    client.force_login(marketer)
    response = client.post(NEW, wizard_form(newsletter, segment, version, send_mode="at", send_at="2020-01-01T10:00"))
    assert response.status_code == 200
    _box, field_errors = saved_form(response)
    assert len(field_errors) == 1 and field_errors[0].startswith("This date and time is in the past (it is now ")
    assert field_errors[0].endswith(" in Europe/Paris).")
    assert not Campaign.objects.exists()
    # nor can an existing draft be moved into the past
    assert client.post(NEW, wizard_form(newsletter, segment, version, send_mode="at", send_at="2030-05-01T10:00")).status_code == 302
    campaign = Campaign.objects.get()
    edit = wizard_form(newsletter, segment, version, name="Moved", send_mode="at", send_at="2020-05-01T10:00")
    assert client.post(f"/admin/marketing/campaign/{campaign.pk}/edit/", edit).status_code == 200
    campaign.refresh_from_db()
    assert campaign.name == "From the wizard" and campaign.send_at == datetime(2030, 5, 1, 8, 0, tzinfo=UTC)


def test_the_per_contact_local_time_keeps_the_day_she_picked(client, marketer, newsletter, segment, version, paris):
    client.force_login(marketer)
    # 00:30 on 2 April in Paris is still 1 April in UTC: the day she means is the 2nd
    form = wizard_form(newsletter, segment, version, send_mode="local", send_at="2030-04-02T00:30", local_time="09:00")
    assert client.post(NEW, form).status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.send_at == datetime(2030, 4, 2, 12, 0, tzinfo=UTC)
    page = lxml.html.fromstring(client.get(f"/admin/marketing/campaign/{campaign.pk}/edit/").content.decode())
    assert page.cssselect('[name="send_at"]')[0].get("value") == "2030-04-02T09:00"
    # and a day before today is refused
    response = client.post(NEW, {**form, "name": "Yesterday", "send_at": "2020-04-02T09:00"})
    assert response.status_code == 200 and saved_form(response)[1] == ["This day is in the past."]
    assert not Campaign.objects.filter(name="Yesterday").exists()
