"""The console shell: dashboard figures, placeholders, security headers, audit of edits."""

from pathlib import Path

import pytest

from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.models import AuditEntry, Topic

pytestmark = pytest.mark.django_db


def test_dashboard_shows_todays_figures(client, admin_user, newsletter):
    for n in range(3):
        contact = create_contact(actor=None, email=f"c{n}@example.com")
        subscribe(actor=None, contact=contact, topic=newsletter)
    client.force_login(admin_user)
    response = client.get("/admin/")
    assert response.status_code == 200
    kpis = {str(k["title"]): k["value"] for k in response.context["kpis"]}
    assert kpis["Contacts"] == 3
    assert kpis["Active subscriptions"] == 3
    assert kpis["Consents today"] == 3


def test_unknown_console_page_is_a_404(client, marketer):
    client.force_login(marketer)
    assert client.get("/admin/coming/nowhere/").status_code == 404


def test_every_sidebar_link_opens_for_an_admin(client, admin_user):
    import re

    client.force_login(admin_user)
    page = client.get("/admin/").content.decode()
    links = set(re.findall(r'href="(/admin/[^"]*)"', page))
    assert len(links) > 15
    for link in sorted(links):
        if "logout" in link:
            continue
        assert client.get(link).status_code == 200, link


def test_pages_carry_a_csp_with_a_nonce_and_security_headers(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/admin/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assert "'nonce-" in csp or "script-src 'self'" in csp
    assert "cdn" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["Referrer-Policy"] == "same-origin"


def test_editing_a_topic_in_the_console_is_audited_with_before_and_after(client, admin_user, newsletter):
    client.force_login(admin_user)
    response = client.post(
        f"/admin/messaging/topic/{newsletter.pk}/change/",
        {"name": "Monthly letter", "key": "newsletter", "kind": "marketing", "position": 0, "description": ""},
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(verb="updated", target_type="messaging.topic")
    assert entry.actor == admin_user
    assert entry.changes == {"name": {"before": "Newsletter", "after": "Monthly letter"}}


def test_deleting_a_topic_in_the_console_is_audited(client, admin_user):
    topic = Topic.objects.create(key="old", name="Old")
    client.force_login(admin_user)
    response = client.post(f"/admin/messaging/topic/{topic.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert AuditEntry.objects.filter(verb="deleted", target_repr="Old", actor=admin_user).exists()


def test_audit_trail_cannot_be_edited_from_the_console(client, admin_user, contact):
    entry = AuditEntry.objects.get(target_type="messaging.contact")
    client.force_login(admin_user)
    assert client.post(f"/admin/messaging/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_healthz_answers(client):
    assert client.get("/healthz").content == b"ok"


def test_favicon_ico_is_served_as_a_cached_image(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header: reserved 0, type 1 (icon)
    assert "max-age=86400" in response["Cache-Control"] and "public" in response["Cache-Control"]
    assert client.head("/favicon.ico").status_code == 200
    assert client.post("/favicon.ico").status_code == 405


def test_console_and_public_pages_link_the_favicon(client, admin_user):
    from django.contrib.staticfiles import finders
    from django.templatetags.static import static

    # the console's login page (anonymous) and dashboard (signed in) link both icons
    pages = [client.get("/admin/login/").content.decode()]
    client.force_login(admin_user)
    pages.append(client.get("/admin/").content.decode())
    # and so does a public page (the password reset request)
    pages.append(client.get("/e/reset/").content.decode())
    for html in pages:
        assert f'rel="icon" href="{static("mailroom/favicon.svg")}" type="image/svg+xml"' in html
        assert f'rel="icon" href="{static("mailroom/favicon.ico")}" type="image/x-icon"' in html
    # and the linked files exist among the static files whitenoise serves
    assert finders.find("mailroom/favicon.svg") and finders.find("mailroom/favicon.ico")
    svg = Path(finders.find("mailroom/favicon.svg")).read_text()
    assert svg.startswith("<svg") and 'viewBox="0 0 32 32"' in svg


def test_django_q_uses_the_orm_broker_and_safe_timings(settings):
    q = settings.Q_CLUSTER
    assert q["orm"] == "default"
    assert q["retry"] > q["timeout"]
    assert q["catch_up"] is False


def test_sqlite_runs_in_wal_with_immediate_transactions(settings):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    assert settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 5000
