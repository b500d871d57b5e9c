"""The console header's breadcrumbs follow the sidebar's groups, not Django's app names."""

import re

import pytest

from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def crumbs(client, url: str) -> list[str]:
    page = client.get(url).content.decode()
    block = re.search(r'data-testid="breadcrumbs">(.*?)</span>\s*</h1>', page, re.S)
    assert block, url
    parts = re.findall(r"<(?:a|span)[^>]*tracking-tight[^>]*>\s*(.*?)\s*</(?:a|span)\s*>", block.group(1), re.S)
    return [re.sub(r"\s+", " ", part) for part in parts]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/admin/messaging/contact/", ["Audience", "Contacts"]),
        ("/admin/messaging/consentrecord/", ["Audience", "Consent log"]),  # the sidebar's name, not "consent records"
        ("/admin/auth/group/", ["Settings", "Roles"]),
        ("/admin/django_q/schedule/", ["Settings", "Scheduled jobs"]),
        ("/admin/marketing/campaign/calendar/", ["Campaigns", "Calendar"]),  # the group once, not "Campaigns › Campaigns"
        ("/admin/growth/report/", ["Growth", "Growth report"]),
    ],
)
def test_breadcrumbs_name_the_sidebar_group(client, url, expected):
    client.force_login(make_user("admin", "Admin", superuser=True))
    assert crumbs(client, url) == expected


def test_a_change_form_keeps_the_list_and_the_object_after_the_group(client, newsletter):
    client.force_login(make_user("admin", "Admin", superuser=True))
    assert crumbs(client, f"/admin/messaging/topic/{newsletter.pk}/change/") == ["Audience", "Topics", "Newsletter"]
