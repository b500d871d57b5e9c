"""CSRF on every state-changing console form: every URL the console serves (model add,
change, delete, history, row and detail actions, custom pages, import/export, logout,
password change, the login itself), found by walking the URL resolver so a page added
later is covered, refuses a POST without a token with Django's 403 — for a signed-in
superuser, so permissions cannot be what refused it. The same walk with a token gets
past CSRF, which proves the 403 came from the check.

Outside the console: the public preference and reset forms, language switching, and the
API under session authentication need the token too. The deliberate exceptions are the
RFC 8058 one-click unsubscribe POST and the signed provider webhooks (covered in
test_public_links.py and tests/messaging/test_inbound.py)."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern, RoutePattern

pytestmark = pytest.mark.django_db

VALUES = {"app_label": "messaging", "url": "x"}


def _walk(patterns, namespace: str = "") -> list[tuple[str, dict]]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace)
        elif isinstance(pattern, URLPattern) and pattern.name:
            if isinstance(pattern.pattern, RoutePattern):
                names = pattern.pattern.converters.keys()
            elif isinstance(pattern.pattern, RegexPattern):
                names = pattern.pattern.regex.groupindex.keys()
            else:
                continue
            found.append((f"{namespace}{pattern.name}", {name: VALUES.get(name, "1") for name in names}))
    return found


def console_urls() -> list[str]:
    urls = set()
    for name, kwargs in _walk(get_resolver().url_patterns):
        if name.startswith("admin:"):
            urls.add(reverse(name, kwargs=kwargs))
    return sorted(urls)


def csrf_refused(response) -> bool:
    return response.status_code == 403 and b"CSRF verification failed" in response.content


def test_every_console_post_without_a_token_is_refused(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    urls = console_urls()
    # add, change, delete, history for each model, plus custom pages and actions
    assert len(urls) > 150, f"the walk found only {len(urls)} console URLs"
    assert any(re.search(r"/admin/messaging/template/1/editor/", url) for url in urls), "custom pages are in the walk"
    let_through = [url for url in urls if not csrf_refused(client.post(url, {"name": "x", "action": "delete_selected"}))]
    assert not let_through, f"a console POST without a CSRF token was not refused: {let_through}"


def test_the_same_posts_with_a_token_get_past_the_check(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    client.get("/admin/")
    token = client.cookies["csrftoken"].value
    # a sample of each kind (list, add, change, custom page): none answers with the CSRF
    # page once the token is right (they may refuse for their own reasons: no object…)
    urls = [url for url in console_urls() if "/logout/" not in url][::12]
    refused = [url for url in urls if csrf_refused(client.post(url, {}, HTTP_X_CSRFTOKEN=token))]
    assert not refused


def test_the_console_login_needs_a_token():
    assert csrf_refused(Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"}))


def test_public_forms_and_the_session_api_need_a_token(admin_user):
    anonymous = Client(enforce_csrf_checks=True)
    assert csrf_refused(anonymous.post("/e/reset/", {"email": "ada@example.com"}))
    assert csrf_refused(anonymous.post("/i18n/setlang/", {"language": "fr"}))
    # the preference center (a bad token would be 400: CSRF is checked before the view)
    assert csrf_refused(anonymous.post("/p/anything/", {"topic": "newsletter"}))
    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(admin_user)
    response = signed_in.post("/api/v1/contacts/", {"email": "eve@example.com"}, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.text
