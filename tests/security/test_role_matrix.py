"""Every console list page and every API list endpoint × every role: allowed or 403.

The expectations are derived from the same sources the code uses (the role table's
Django permissions, each viewset's policies), so a page added later is covered without
editing this file, and a page that forgets its check fails here."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from config.api import route_modules
from tests.conftest import make_user

ROLES = ["Marketer", "Approver", "Ops", "Support", "Admin"]


def changelists() -> list[tuple[str, str, str]]:
    return sorted(
        (model._meta.app_label, model._meta.model_name, reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
        for model in admin.site._registry
    )


@pytest.fixture
def role_users(db):
    return {role: make_user(f"matrix-{role.lower()}", role) for role in ROLES}


@pytest.mark.parametrize("role", ROLES)
def test_console_list_pages_follow_the_role_permissions(client, role_users, role):
    user = role_users[role]
    client.force_login(user)
    wrong = []
    for app_label, model_name, url in changelists():
        allowed = user.has_perm(f"{app_label}.view_{model_name}") or user.has_perm(f"{app_label}.change_{model_name}")
        status = client.get(url).status_code
        if (status == 200) != allowed or status not in (200, 403):
            wrong.append((url, status, "allowed" if allowed else "refused"))
    assert not wrong, wrong


def test_anonymous_visitors_are_sent_to_the_login(client, db):
    for _app, _model, url in changelists():
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def api_list_endpoints() -> list[tuple[str, object]]:
    endpoints = []
    for module in route_modules():
        for route in getattr(module, "routes", []):
            policy = getattr(route.viewset, "capabilities", {}).get("list")
            if policy is not None:
                endpoints.append((f"/api/v1/{route.prefix}/", policy))
    return endpoints


@pytest.mark.parametrize("role", ROLES)
def test_api_list_endpoints_follow_the_policies(role_users, role):
    from rest_framework.test import APIClient

    user = role_users[role]
    client = APIClient()
    client.force_authenticate(user)
    wrong = []
    for url, policy in api_list_endpoints():
        status = client.get(url).status_code
        if (status == 200) != policy(user) or status not in (200, 403):
            wrong.append((url, status))
    assert not wrong, wrong


def test_api_refuses_anonymous_everywhere(db):
    from rest_framework.test import APIClient

    client = APIClient()
    for url, policy in api_list_endpoints():
        assert not policy(AnonymousUser())
        assert client.get(url).status_code == 401, url


def test_the_matrix_covers_the_areas(db):
    """Guard against the discovery silently finding nothing."""
    urls = [url for _a, _m, url in changelists()]
    assert any("/marketing/segment/" in url for url in urls)
    assert any("/messaging/contact/" in url for url in urls)
    assert any(url.endswith("/segments/") for url, _p in api_list_endpoints())
