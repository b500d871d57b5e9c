"""A campaign's flash messages are in the language of the person who pressed the button, not
in the one the server started in."""

import pytest

from marketing.models import Campaign

pytestmark = pytest.mark.django_db


def press(client, campaign, name, language):
    response = client.post(f"/admin/marketing/campaign/{campaign.pk}/do/{name}/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 302
    return [str(message) for message in response.wsgi_request._messages]


def test_a_french_marketer_reads_that_the_campaign_is_paused_in_french(client, marketer, sending):
    client.force_login(marketer)
    # when a marketer whose browser asks for French pauses a sending campaign
    flashed = press(client, sending, "pause", "fr")
    # then the campaign is paused and the message says so in French
    sending.refresh_from_db()
    assert sending.state == Campaign.State.PAUSED
    assert flashed == ["Campagne mise en pause."]
    # and an English colleague cancelling it reads English
    assert press(client, sending, "cancel", "en")[-1] == "Campaign cancelled."
