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


@pytest.fixture
def job_pages(db) -> dict[str, str]:
    """One of each django-q2 object: schedule, finished task, failed task, queued task."""
    from django.utils import timezone
    from django_q.models import Failure, OrmQ, Schedule, Success
    from django_q.tasks import async_task

    now = timezone.now()
    task = {"func": "messaging.tasks.heartbeat", "args": (), "kwargs": {}, "started": now, "stopped": now}
    success = Success.objects.create(id="1" * 32, name="matrix-ok", success=True, result="ok", **task)
    failure = Failure.objects.create(id="2" * 32, name="matrix-failed", success=False, result="boom", **task)
    async_task("messaging.tasks.heartbeat")
    return {
        "schedule": str(Schedule.objects.get(func="messaging.tasks.heartbeat").pk),
        "success": success.pk,
        "failure": failure.pk,
        "ormq": str(OrmQ.objects.get().pk),
    }


@pytest.mark.parametrize("role", ROLES)
def test_django_q_pages_follow_the_role_table(client, role_users, job_pages, role):
    """Schedules: list for viewers, add and change (the edit form) for Admin only.
    Finished, failed and queued tasks: list and read-only page for viewers, never added
    or edited by anyone (what a task runs is chosen by a schedule or by Mailroom's code)."""
    user = role_users[role]
    client.force_login(user)
    wrong = []
    for model, pk in job_pages.items():
        base = f"/admin/django_q/{model}/"
        viewer = user.has_perm(f"django_q.view_{model}") or user.has_perm(f"django_q.change_{model}")
        editor = model == "schedule" and user.has_perm("django_q.change_schedule")
        expected = {
            base: viewer,
            f"{base}add/": model == "schedule" and user.has_perm("django_q.add_schedule"),
            f"{base}{pk}/change/": editor if model == "schedule" else viewer,
        }
        for url, allowed in expected.items():
            status = client.get(url).status_code
            if (status == 200) != allowed or status not in (200, 403):
                wrong.append((url, status, "allowed" if allowed else "refused"))
        if not editor and client.post(f"{base}{pk}/change/", {"func": "subprocess.getoutput"}).status_code != 403:
            wrong.append((f"POST {base}{pk}/change/", "not refused"))
    assert not wrong, wrong
    if role != "Admin":
        assert not user.has_perm("django_q.add_schedule") and not user.has_perm("django_q.change_schedule")


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
    assert {f"/admin/django_q/{model}/" for model in ("schedule", "success", "failure", "ormq")} <= set(urls)
    assert any(url.endswith("/segments/") for url, _p in api_list_endpoints())
