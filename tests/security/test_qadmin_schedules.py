"""Issue 16, item 2: a console role ran shell commands as root through django-q2's Schedule
admin (func=subprocess.getoutput) and read the output in "Successful tasks".

Only Admin adds or changes schedules, and only picks a function Mailroom registers; a
schedule row with any other function is refused on save, and the cluster refuses to run
one that got in another way. Task arguments and results are shown to Admin only."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_q.models import Failure, OrmQ, Schedule, Success

from accounts.roles import ROLES
from messaging.models import AuditEntry
from messaging.schedules import schedule_functions
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

SCHEDULES = "/admin/django_q/schedule/"
SUCCESSES = "/admin/django_q/success/"
FAILURES = "/admin/django_q/failure/"
QUEUED = "/admin/django_q/ormq/"
NON_ADMIN_ROLES = ["Marketer", "Approver", "Ops", "Support"]
SHELL = {"name": "pwn", "func": "subprocess.getoutput", "args": "'id'", "schedule_type": Schedule.MINUTES, "minutes": "1", "repeats": "-1"}
SECRET_RESULT = "SECRET_KEY=django-insecure-leaked"
SECRET_KWARG = "hunter2-provider-password"


def schedule_form(**overrides) -> dict:
    now = timezone.localtime()
    data = {
        "name": "nightly drain",
        "func": "messaging.tasks.drain_outbox",
        "schedule_type": Schedule.DAILY,
        "minutes": "",
        "repeats": "-1",
        "cron": "",
        "next_run_0": now.strftime("%Y-%m-%d"),
        "next_run_1": now.strftime("%H:%M:%S"),
    }
    return {**data, **overrides}


# --- who may add or change a schedule ----------------------------------------------------
@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_non_admin_roles_cannot_open_or_post_the_schedule_add_and_change_pages(client, role):
    user = make_user(f"sched-{role.lower()}", role)
    schedule = Schedule.objects.get(func="messaging.tasks.heartbeat")
    client.force_login(user)
    assert client.get(f"{SCHEDULES}add/").status_code == 403
    assert client.get(f"{SCHEDULES}{schedule.pk}/change/").status_code == 403
    # the attack itself: a schedule that runs `id` through the shell
    assert client.post(f"{SCHEDULES}add/", {**SHELL, **schedule_form(func="subprocess.getoutput")}).status_code == 403
    assert client.post(f"{SCHEDULES}{schedule.pk}/change/", schedule_form(func="subprocess.getoutput")).status_code == 403
    assert not Schedule.objects.filter(func="subprocess.getoutput").exists()
    schedule.refresh_from_db()
    assert schedule.func == "messaging.tasks.heartbeat"


def test_no_role_but_admin_holds_the_right_to_add_or_change_schedules():
    for role, grants in ROLES.items():
        verbs = set(grants.get("django_q.schedule", ()))
        assert not verbs & {"add", "change", "delete"}, role


# --- what Admin may pick ------------------------------------------------------------------
def test_admin_add_form_offers_only_registered_functions_as_a_choice(client, admin_user):
    client.force_login(admin_user)
    form = client.get(f"{SCHEDULES}add/").context["adminform"].form
    offered = [value for value, _label in form.fields["func"].choices if value]
    assert offered and set(offered) == set(schedule_functions())
    assert "messaging.tasks.drain_outbox" in offered
    # no free-text path, no hook, no arguments to smuggle a call through
    assert form.fields["func"].widget.input_type == "select"
    assert not {"hook", "args", "kwargs", "cluster", "intended_date_kwarg"} & set(form.fields)


def test_admin_posting_a_shell_function_is_refused_with_a_form_error_and_nothing_is_saved(client, admin_user):
    client.force_login(admin_user)
    before = Schedule.objects.count()
    response = client.post(f"{SCHEDULES}add/", schedule_form(func="subprocess.getoutput", args="'id'"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "func" in errors and "subprocess.getoutput" in str(errors["func"])
    assert Schedule.objects.count() == before
    assert not Schedule.objects.filter(func="subprocess.getoutput").exists()
    assert not AuditEntry.objects.filter(target_type="django_q.schedule").exists()


def test_admin_cannot_turn_an_existing_schedule_into_a_shell_command(client, admin_user):
    schedule = Schedule.objects.get(func="messaging.tasks.heartbeat")
    client.force_login(admin_user)
    response = client.post(f"{SCHEDULES}{schedule.pk}/change/", schedule_form(func="os.system", name=schedule.name))
    assert response.status_code == 200 and "func" in response.context["adminform"].form.errors
    schedule.refresh_from_db()
    assert schedule.func == "messaging.tasks.heartbeat"


def test_admin_adds_a_registered_schedule_and_it_is_audited(client, admin_user):
    client.force_login(admin_user)
    response = client.post(f"{SCHEDULES}add/", schedule_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    schedule = Schedule.objects.get(name="nightly drain")
    assert schedule.func == "messaging.tasks.drain_outbox" and not schedule.hook and not schedule.args
    entry = AuditEntry.objects.get(verb="created", target_type="django_q.schedule", target_id=str(schedule.pk))
    assert entry.actor == admin_user
    assert entry.changes["func"] == {"before": None, "after": "messaging.tasks.drain_outbox"}


def test_admin_changing_a_schedule_is_audited_with_before_and_after(client, admin_user):
    schedule = Schedule.objects.get(func="messaging.tasks.heartbeat")
    client.force_login(admin_user)
    data = schedule_form(name=schedule.name, func=schedule.func, schedule_type=Schedule.MINUTES, minutes="5")
    response = client.post(f"{SCHEDULES}{schedule.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditEntry.objects.get(verb="updated", target_type="django_q.schedule", target_id=str(schedule.pk))
    assert entry.actor == admin_user
    assert entry.changes["minutes"] == {"before": 1, "after": 5}


# --- the model-level rule: every other way a schedule is saved ---------------------------
def test_a_schedule_row_created_in_code_with_a_shell_function_is_refused():
    with pytest.raises(ValidationError) as error:
        Schedule.objects.create(name="pwn", func="subprocess.getoutput", args="'id'")
    assert "subprocess.getoutput" in str(error.value)
    assert not Schedule.objects.filter(func="subprocess.getoutput").exists()


def test_a_registered_schedule_cannot_be_pointed_at_a_shell_function_in_code():
    schedule = Schedule.objects.get(func="messaging.tasks.heartbeat")
    schedule.func = "os.system"
    with pytest.raises(ValidationError):
        schedule.save()
    assert Schedule.objects.get(pk=schedule.pk).func == "messaging.tasks.heartbeat"


def test_a_schedule_with_a_result_hook_is_refused():
    with pytest.raises(ValidationError):
        Schedule.objects.create(name="hooked", func="messaging.tasks.heartbeat", hook="os.system")
    assert not Schedule.objects.filter(name="hooked").exists()


# --- the cluster: a row that got in anyway (bulk insert, old database) is not run ---------
def test_the_cluster_refuses_to_run_a_shell_schedule_that_bypassed_the_model_guard(monkeypatch):
    import pydoc

    from django_q import scheduler as django_q_scheduler

    # the scheduler closes "old" connections first, which would close the test's own
    monkeypatch.setattr(django_q_scheduler, "close_old_django_connections", lambda: None)

    past = timezone.now() - timedelta(minutes=1)
    Schedule.objects.update(next_run=timezone.now() + timedelta(days=1))
    Schedule.objects.bulk_create([Schedule(name="pwn", func="subprocess.getoutput", args="'id'", next_run=past, repeats=-1)])
    Schedule.objects.filter(func="messaging.tasks.heartbeat").update(next_run=past)
    django_q_scheduler.scheduler()
    tasks = [row.task for row in OrmQ.objects.all()]
    funcs = sorted(task["func"] for task in tasks)
    # the legitimate schedule due in the same tick still ran (the bad one did not block it)
    assert "messaging.tasks.heartbeat" in funcs
    assert "subprocess.getoutput" not in funcs
    refused = next(task for task in tasks if task["group"] == "pwn")
    with pytest.raises(PermissionError) as error:
        pydoc.locate(refused["func"])(*refused["args"], **refused["kwargs"])
    assert "subprocess.getoutput" in str(error.value)


def test_resubmitting_a_failed_shell_task_does_not_run_the_shell(client, admin_user):
    now = timezone.now()
    Failure.objects.create(
        id="f" * 32, name="old-pwn", func="subprocess.getoutput", args=("id",), kwargs={}, started=now, stopped=now, success=False
    )
    client.force_login(admin_user)
    client.post(FAILURES, {"action": "resubmit_task", "_selected_action": ["f" * 32]})
    assert OrmQ.objects.exists()
    assert all(row.task["func"] != "subprocess.getoutput" for row in OrmQ.objects.all())


def test_ops_cannot_resubmit_tasks(client, ops):
    now = timezone.now()
    Failure.objects.create(
        id="e" * 32, name="drain", func="messaging.tasks.drain_outbox", args=(), kwargs={}, started=now, stopped=now, success=False
    )
    client.force_login(ops)
    client.post(FAILURES, {"action": "resubmit_task", "_selected_action": ["e" * 32]})
    assert not OrmQ.objects.exists()


# --- task arguments and results ----------------------------------------------------------
@pytest.fixture
def leaky_tasks(db):
    now = timezone.now()
    success = Success.objects.create(
        id="a" * 32,
        name="alpha-bravo",
        func="messaging.tasks.heartbeat",
        args=(SECRET_KWARG,),
        kwargs={"password": SECRET_KWARG},
        result=SECRET_RESULT,
        started=now,
        stopped=now,
        success=True,
    )
    failure = Failure.objects.create(
        id="b" * 32,
        name="charlie-delta",
        func="messaging.tasks.drain_outbox",
        args=(SECRET_KWARG,),
        kwargs={"password": SECRET_KWARG},
        result=SECRET_RESULT,
        started=now,
        stopped=now,
        success=False,
    )
    from django_q.tasks import async_task

    async_task("messaging.tasks.drain_outbox", channel=SECRET_KWARG, q_options={"task_name": "echo-foxtrot"})
    queued = OrmQ.objects.get()
    return {"success": success, "failure": failure, "queued": queued}


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_non_admins_cannot_read_task_arguments_or_results(client, leaky_tasks, role):
    user = make_user(f"tasks-{role.lower()}", role)
    client.force_login(user)
    pages = [
        SUCCESSES,
        f"{SUCCESSES}{leaky_tasks['success'].pk}/change/",
        FAILURES,
        f"{FAILURES}{leaky_tasks['failure'].pk}/change/",
        QUEUED,
        f"{QUEUED}{leaky_tasks['queued'].pk}/change/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code in (200, 403), url
        body = response.content.decode()
        assert SECRET_RESULT not in body and SECRET_KWARG not in body, url


def test_ops_still_sees_which_jobs_ran_and_failed(client, leaky_tasks, ops):
    client.force_login(ops)
    assert "alpha-bravo" in client.get(SUCCESSES).content.decode()
    assert "charlie-delta" in client.get(FAILURES).content.decode()
    detail = client.get(f"{FAILURES}{leaky_tasks['failure'].pk}/change/")
    assert detail.status_code == 200 and "messaging.tasks.drain_outbox" in detail.content.decode()
    assert "echo-foxtrot" in client.get(QUEUED).content.decode()


def test_admin_reads_task_results_and_arguments(client, leaky_tasks, admin_user):
    client.force_login(admin_user)
    assert SECRET_RESULT in client.get(f"{SUCCESSES}{leaky_tasks['success'].pk}/change/").content.decode()
    assert SECRET_RESULT in client.get(f"{FAILURES}{leaky_tasks['failure'].pk}/change/").content.decode()
    assert SECRET_KWARG in client.get(f"{QUEUED}{leaky_tasks['queued'].pk}/change/").content.decode()
