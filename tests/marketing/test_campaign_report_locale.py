"""The campaign report in French and with engagement in one hour: rates with a decimal
comma, revenue with its currency, charts in the language's separators, the engagement axis
in whole hours, and empty charts as an empty state."""

import json
from decimal import Decimal

import pytest
from django.utils import timezone

from marketing.campaigns.fanout import fan_out
from marketing.events import record_order
from marketing.models import CampaignConversion, CampaignRecipient, CampaignVariant
from messaging.models import DeliveryEvent, OutboxMessage

pytestmark = pytest.mark.django_db
NBSP = "\xa0"


@pytest.fixture
def engaged(sending):
    """6 recipients in variant A, all sent; 2 opened and 1 clicked, all within one hour; one
    order of 12.50 attributed."""
    fan_out(campaign=sending)
    variant, _created = CampaignVariant.objects.get_or_create(campaign=sending, label="A")
    CampaignRecipient.objects.filter(campaign=sending).update(variant=variant)
    messages = list(OutboxMessage.objects.filter(campaign_recipient__campaign=sending).order_by("pk"))
    OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(status=OutboxMessage.Status.SENT)
    hour = timezone.now().replace(minute=10, second=0, microsecond=0)
    for minute, message in ((0, messages[0]), (20, messages[1])):
        DeliveryEvent.objects.create(message=message, kind=DeliveryEvent.Kind.OPENED, occurred_at=hour.replace(minute=10 + minute))
    DeliveryEvent.objects.create(message=messages[0], kind=DeliveryEvent.Kind.CLICKED, occurred_at=hour.replace(minute=40))
    contact = messages[0].contact
    order, _previous = record_order(contact=contact, external_id="R-1", amount=Decimal("12.50"), status="paid", placed_at=hour)
    CampaignConversion.objects.get_or_create(
        order=order, defaults={"campaign": sending, "contact": contact, "variant": variant, "revenue": order.amount, "clicked_at": hour}
    )
    return sending


def report(client, campaign, **headers):
    response = client.get(f"/admin/marketing/campaign/{campaign.pk}/report/", **headers)
    assert response.status_code == 200
    return response, response.content.decode()


def test_the_french_report_uses_decimal_commas_and_shows_revenue_with_its_currency(client, marketer, engaged):
    client.force_login(marketer)
    _response, english = report(client, engaged)
    assert "33.3 %" in english and "€12.50" in english  # 2 opens of 6 sent
    response, french = report(client, engaged, HTTP_ACCEPT_LANGUAGE="fr")
    assert "33,3 %" in french and "16,7 %" in french and "33.3 %" not in french
    assert f"12,50{NBSP}€" in french and "€12.50" not in french
    figures = json.loads(french.split('id="report-charts" type="application/json">')[1].split("</script>")[0])
    assert {name: figure["layout"]["separators"] for name, figure in figures.items()} == {
        "funnel": f",{NBSP}",
        "variants": f",{NBSP}",
        "timeline": f",{NBSP}",
    }
    assert [card["empty"] for card in response.context["chart_cards"]] == [False, False, False]


def test_engagement_in_one_hour_gets_an_axis_of_whole_hours(client, marketer, engaged):
    client.force_login(marketer)
    response, _page = report(client, engaged)
    timeline = response.context["charts"]["timeline"]
    axis = timeline["layout"]["xaxis"]
    assert axis["dtick"] == 3_600_000 and axis["type"] == "date"
    start, end = (timezone.datetime.fromisoformat(value) for value in axis["range"])
    assert (end - start).total_seconds() == 2 * 3600 and start.minute == start.second == 0
    assert [trace["name"] for trace in timeline["data"]] == ["Opens", "Clicks"]
    assert timeline["data"][0]["y"] == [2] and timeline["data"][1]["y"] == [1]
