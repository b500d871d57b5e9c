"""The console's contact import: one path through import jobs (messaging.import_jobs) for a
small file (imported in the request) and a large one (on a worker), the topics and legal
basis chosen in the form, both modes, duplicates inside a file, bad files, the error
report, a worker killed mid-file, and who may do what."""

import csv
import io
import os
import sys

import pytest
from django.db import connection
from django.utils import timezone

from messaging import importing
from messaging.consent import subscribe, unsubscribe
from messaging.import_jobs import recover_import_jobs, run_import_job, start_import_job
from messaging.models import AuditEntry, ConsentRecord, Contact, ImportJob, LegalBasis, Subscription, Topic
from tests.conftest import make_user
from tests.support.cluster import ProcessGroup, database_env, wait_until

pytestmark = pytest.mark.django_db
IMPORT_URL = "/admin/messaging/contact/import/"

# Line numbers are the file's: the header is line 1.
MIXED_FILE = (
    b"email,phone,first_name,plan\n"
    b"ada@example.com,,Ada,gold\n"  # 2: good
    b"not-an-email,,Nope,\n"  # 3: bad email
    b"Grace@Example.com,,Grace,\n"  # 4: same email as line 6 once normalised
    b"alan@example.com,06 12 34 56 78,Alan,\n"  # 5: same phone as line 7 once normalised
    b" grace@example.com ,,Grace again,\n"  # 6
    b"joan@example.com,+33612345678,Joan,\n"  # 7
    b"=cmd|' /C calc'!A0,,Eve,\n"  # 8: bad email that is a spreadsheet formula
    b"linus@example.com,,Linus,silver\n"  # 9: good
)
MIXED_BAD_LINES = [3, 4, 5, 6, 7, 8]


@pytest.fixture(autouse=True)
def _no_cluster(settings):
    settings.MAILROOM_KICK_CLUSTER = False  # the tests run the worker's function themselves


@pytest.fixture
def promotions(db) -> Topic:
    return Topic.objects.create(key="promotions", name="Promotions", kind=Topic.Kind.MARKETING)


def upload(client, data: bytes, *, mode="all", topics=(), basis="consent", confirmed=True, encoding="utf-8-sig", name="contacts.csv"):
    import_file = io.BytesIO(data)
    import_file.name = name
    form = {"import_file": import_file, "mode": mode, "encoding": encoding, "legal_basis": basis, "topics": [t.pk for t in topics]}
    if confirmed:
        form["consent_confirmed"] = "on"
    return client.post(IMPORT_URL, form)


def report_rows(client, job: ImportJob) -> list[dict[str, str]]:
    response = client.get(f"/admin/messaging/importjob/{job.pk}/errors.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def big_csv(rows: int, *, start: int = 0) -> bytes:
    lines = ["email,first_name,plan"] + [f"person{n}@example.com,Person {n},gold" for n in range(start, start + rows)]
    return ("\n".join(lines) + "\n").encode()


# --- small files: imported in the request, both modes ----------------------------------------
def test_all_or_nothing_with_bad_rows_and_duplicates_imports_nothing_and_reports_each_line(client, marketer, newsletter):
    client.force_login(marketer)
    # when a small file with bad rows and duplicates is imported all or nothing
    response = upload(client, MIXED_FILE, topics=[newsletter])
    # then the request imported it at once and lands on the job's result page
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/messaging/importjob/{job.pk}/change/"
    assert (job.status, job.rows_total, job.bad_rows, job.created) == (ImportJob.Status.REJECTED, 8, 6, 0)
    # and nothing at all was written
    assert not Contact.objects.exists() and not Subscription.objects.exists() and not ConsentRecord.objects.exists()
    # each bad line is on the page, the duplicates naming each other
    page = client.get(response["Location"]).content.decode()
    assert "Nothing imported: 6 bad rows" in page
    assert "line 4: same email as line 6" in page and "line 6: same email as line 4" in page
    assert "line 5: same phone as line 7" in page and "line 7: same phone as line 5" in page
    # and in the error report, one row per problem with its column and cell
    rows = report_rows(client, job)
    assert [int(row["line"]) for row in rows] == MIXED_BAD_LINES
    assert rows[0] == {
        "line": "3",
        "column": "email",
        "value": "not-an-email",
        "error": "email: “not-an-email” is not a valid email address.",
    }
    assert rows[2]["value"] == "+33612345678" and rows[2]["column"] == "phone"


def test_good_rows_mode_imports_the_good_rows_and_neither_duplicate(client, marketer, newsletter):
    client.force_login(marketer)
    response = upload(client, MIXED_FILE, mode="good", topics=[newsletter])
    job = ImportJob.objects.get()
    assert (job.status, job.created, job.bad_rows) == (ImportJob.Status.DONE, 2, 6)
    # then exactly the good rows land: no duplicate was merged, first or last wins
    assert set(Contact.objects.values_list("email", flat=True)) == {"ada@example.com", "linus@example.com"}
    assert Contact.objects.get(email="ada@example.com").attributes == {"plan": "gold"}
    page = client.get(response["Location"]).content.decode()
    assert "2 contacts created, 0 updated, 2 subscriptions. 6 bad rows were left out." in page
    assert [int(row["line"]) for row in report_rows(client, job)] == MIXED_BAD_LINES
    assert AuditEntry.objects.get(verb="imported").actor == marketer


def test_chosen_topics_subscribe_every_contact_with_the_chosen_legal_basis(client, marketer, newsletter, promotions):
    client.force_login(marketer)
    data = b"email,topics\nada@example.com,promotions\nbob@example.com,\n"
    # when the file is imported choosing the newsletter, on legitimate interest (no consent box)
    upload(client, data, topics=[newsletter], basis="legitimate_interest", confirmed=False)
    # then everyone has the newsletter, Ada also her row's topic
    subscribed = set(Subscription.objects.filter(status="subscribed").values_list("contact__email", "topic__key"))
    assert subscribed == {("ada@example.com", "newsletter"), ("ada@example.com", "promotions"), ("bob@example.com", "newsletter")}
    # and every consent record says it came from an import, by whom, on which legal basis
    records = ConsentRecord.objects.all()
    assert len(records) == 3
    assert {(r.source, r.action, r.legal_basis, r.actor) for r in records} == {("import", "granted", "legitimate_interest", marketer)}
    job = ImportJob.objects.get()
    assert (job.legal_basis, list(job.topics.all())) == (LegalBasis.LEGITIMATE_INTEREST, [newsletter])


def test_consent_basis_needs_the_confirmation_and_nothing_is_stored_without_it(client, marketer, newsletter):
    client.force_login(marketer)
    response = upload(client, b"email\nada@example.com\n", topics=[newsletter], basis="consent", confirmed=False)
    assert response.status_code == 200
    assert "Confirm that these contacts agreed" in str(response.context["form"].errors["consent_confirmed"])
    assert not ImportJob.objects.exists() and not Contact.objects.exists()
    # with the box ticked, the records say "consent"
    upload(client, b"email\nada@example.com\n", topics=[newsletter], basis="consent", confirmed=True)
    assert ConsentRecord.objects.get().legal_basis == "consent"


def test_a_withdrawal_stands_against_the_chosen_topics(client, marketer, newsletter, contact):
    subscribe(actor=None, contact=contact, topic=newsletter)
    unsubscribe(actor=None, contact=contact, topic=newsletter)
    client.force_login(marketer)
    upload(client, f"email\n{contact.email}\n".encode(), topics=[newsletter])
    assert Subscription.objects.get(contact=contact).status == "unsubscribed"
    assert ConsentRecord.objects.filter(source="import").count() == 0


# --- bad files --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The submitted file is empty."),
        (b"  \n\n", "The file is empty."),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 200, "This is a XLSX/ZIP file, not a CSV."),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "This is a PNG file, not a CSV."),
    ],
    ids=["empty", "blank lines", "xlsx", "png"],
)
def test_a_file_that_is_not_a_csv_is_refused_on_the_form(client, marketer, data, message):
    client.force_login(marketer)
    response = upload(client, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ImportJob.objects.exists() and not Contact.objects.exists()


@pytest.mark.parametrize(
    ("data", "encoding", "message"),
    [
        ("email,first_name\nada@example.com,Hélène\n".encode("latin-1"), "utf-8-sig", "not valid UTF-8 near line 2"),
        (b"first_name,last_name\nAda,Lovelace\n", "utf-8-sig", "at least one of these columns: email, phone, external_id"),
        (b"\x00\x01\x02\x03binary\xff\xfe\x00\n\x00\x9c", "utf-8-sig", "not valid UTF-8"),
    ],
    ids=["wrong encoding", "no email column", "binary"],
)
def test_an_unreadable_file_fails_with_its_reason_and_imports_nothing(client, marketer, data, encoding, message):
    client.force_login(marketer)
    upload(client, data, encoding=encoding)
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED and message in job.message
    assert job.data == b""
    assert not Contact.objects.exists()


def test_the_right_encoding_reads_the_same_file(client, marketer):
    client.force_login(marketer)
    upload(client, "email,first_name\nada@example.com,Hélène\n".encode("latin-1"), encoding="latin-1")
    assert Contact.objects.get().first_name == "Hélène"


def test_the_error_report_neutralises_formulae_from_the_file(client, marketer):
    client.force_login(marketer)
    data = b"email,timezone\n=HYPERLINK(\"http://evil\"),\n@SUM(1+1),\nok@example.com,+cmd|' /C calc'!A0\n"
    upload(client, data, mode="good")
    job = ImportJob.objects.get()
    rows = report_rows(client, job)
    assert [row["value"] for row in rows] == ['\'=HYPERLINK("http://evil")', "'@SUM(1+1)", "'+cmd|' /C calc'!A0"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())


# --- large files: a worker, a progress page ---------------------------------------------------
def test_a_file_over_the_row_threshold_becomes_a_background_job_with_progress(client, marketer, settings, newsletter):
    settings.MAILROOM_IMPORT_INLINE_MAX_ROWS = 100
    client.force_login(marketer)
    response = upload(client, big_csv(150), topics=[newsletter])
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.QUEUED and not Contact.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert f"/admin/messaging/importjob/{job.pk}/progress.json" in page and "import_progress.js" in page
    progress = client.get(f"/admin/messaging/importjob/{job.pk}/progress.json").json()
    assert (progress["status"], progress["rows_done"], progress["rows_total"], progress["percent"], progress["finished"]) == (
        "queued",
        0,
        150,
        0,
        False,
    )
    run_import_job(job_id=job.pk)  # what the cluster does
    progress = client.get(f"/admin/messaging/importjob/{job.pk}/progress.json").json()
    assert (progress["status"], progress["rows_done"], progress["created"], progress["percent"], progress["finished"]) == (
        "done",
        150,
        150,
        100,
        True,
    )
    assert Subscription.objects.filter(topic=newsletter).count() == 150


def test_a_claimed_job_with_a_live_lease_is_not_run_twice(marketer):
    job = start_import_job(actor=marketer, file_name="a.csv", data=big_csv(10), inline=False, consent_confirmed=True)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING, attempts=1, lease_until="2999-01-01T00:00:00Z")
    run_import_job(job_id=job.pk)  # a redelivered task while the first worker still works
    job.refresh_from_db()
    assert (job.status, job.attempts) == (ImportJob.Status.RUNNING, 1)
    assert not Contact.objects.exists()
    assert recover_import_jobs() == 0


def test_a_job_whose_workers_keep_dying_is_marked_failed_with_the_reason(marketer, settings):
    job = start_import_job(actor=marketer, file_name="a.csv", data=big_csv(10), inline=False, consent_confirmed=True)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING, attempts=settings.MAILROOM_IMPORT_MAX_ATTEMPTS, lease_until="2000-01-01T00:00:00Z"
    )
    assert recover_import_jobs() == 0
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and job.data == b""
    assert (
        job.message
        == "The worker importing this file stopped 3 times before finishing. The import failed unexpectedly; nothing was imported."
    )
    assert AuditEntry.objects.filter(verb="import failed").exists()


def test_a_worker_that_lost_its_lease_writes_nothing_more(marketer, settings, monkeypatch):
    settings.MAILROOM_IMPORT_BATCH_SIZE = 10
    job = start_import_job(actor=marketer, file_name="a.csv", data=big_csv(30), mode="good", inline=False, consent_confirmed=True)
    chunks = importing._chunks

    def taken_over_after_first_chunk(items, size):
        for index, chunk in enumerate(chunks(items, size)):
            if index == 1 and isinstance(chunk[0], importing._Row):  # the first chunk has committed
                ImportJob.objects.filter(pk=job.pk).update(attempts=2)  # another worker claims the job
            yield chunk

    monkeypatch.setattr(importing, "_chunks", taken_over_after_first_chunk)
    run_import_job(job_id=job.pk)
    # then its first chunk stands, the second was rolled back, and the job is the other worker's
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lines_done, job.rows_written) == (ImportJob.Status.RUNNING, 2, 11, 10)
    assert Contact.objects.count() == 10


# --- a worker killed mid-file (a real process, SIGKILL) ---------------------------------------
def start_worker(job: ImportJob, tmp_path, *, batch: int) -> ProcessGroup:
    env = {
        **os.environ,
        **database_env(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MAILROOM_IMPORT_BATCH_SIZE": str(batch),
        "MAILROOM_IMPORT_LEASE_SECONDS": "1",
        "MAILROOM_KICK_CLUSTER": "0",
    }
    code = f"from messaging.import_jobs import run_import_job; run_import_job(job_id={job.pk})"
    return ProcessGroup([sys.executable, "manage.py", "shell", "-c", code], env=env, log_path=tmp_path / "worker.log").start()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["good", "all"])
def test_a_killed_import_worker_is_recovered_without_duplicates(tmp_path, settings, mode):
    marketer = make_user("marketer-kill", "Marketer")
    newsletter = Topic.objects.create(key="news-kill", name="News")
    rows = 8_000
    job = start_import_job(
        actor=marketer, file_name="big.csv", data=big_csv(rows), mode=mode, topics=[newsletter], inline=False, consent_confirmed=True
    )
    # given a worker importing the file, killed once it has written some of it
    worker = start_worker(job, tmp_path, batch=100)
    try:
        if mode == "good":  # each chunk commits: kill between chunks
            wait_until(lambda: ImportJob.objects.get(pk=job.pk).rows_written > 0, timeout=60, what="a first chunk", interval=0.02)
        else:  # one transaction: kill while it reads or writes
            wait_until(lambda: ImportJob.objects.get(pk=job.pk).rows_done > 0, timeout=60, what="a first heartbeat", interval=0.02)
    finally:
        worker.kill()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING, worker.tail()  # it still says "Importing" …
    written_before = Contact.objects.count()
    assert written_before < rows
    if mode == "all":
        assert written_before == 0  # its transaction died with it
    # when its lease runs out (an all-or-nothing write is given time for the whole file), the
    # schedule hands it on and a worker runs it again
    wait_until(lambda: ImportJob.objects.get(pk=job.pk).lease_until < timezone.now(), timeout=30, what="the lease to run out")
    assert recover_import_jobs() == 1
    run_import_job(job_id=job.pk)
    # then the import finishes, every row once, every subscription and consent once
    job.refresh_from_db()
    assert (job.status, job.attempts, job.rows_total, job.bad_rows) == (ImportJob.Status.DONE, 2, rows, 0), job.message
    assert (job.created, job.updated) == (rows, 0)
    assert Contact.objects.count() == rows
    assert Contact.objects.values("email").distinct().count() == rows
    assert Subscription.objects.filter(topic=newsletter).count() == ConsentRecord.objects.filter(topic=newsletter).count() == rows
    # and importing the file once more adds nothing
    again = start_import_job(
        actor=marketer, file_name="big.csv", data=big_csv(rows), mode=mode, topics=[newsletter], inline=True, consent_confirmed=True
    )
    assert (again.status, again.created, again.updated, again.subscriptions) == (ImportJob.Status.DONE, 0, rows, 0)
    assert Contact.objects.count() == rows and ConsentRecord.objects.count() == rows


# --- who may import ---------------------------------------------------------------------------
def test_support_ops_and_approvers_cannot_import(client, support, ops, approver):
    for user in (support, ops, approver):
        client.force_login(user)
        assert client.get(IMPORT_URL).status_code == 403, user
        assert upload(client, b"email\nada@example.com\n").status_code == 403, user
    assert not ImportJob.objects.exists() and not Contact.objects.exists()


def test_anonymous_is_sent_to_the_login_page(client):
    response = upload(client, b"email\nada@example.com\n")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not ImportJob.objects.exists()


def test_the_action_itself_refuses_someone_who_may_not_import(support):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        start_import_job(actor=support, file_name="a.csv", data=b"email\nada@example.com\n", consent_confirmed=True)
    assert not ImportJob.objects.exists()


def test_only_roles_that_import_read_a_jobs_errors_and_progress(client, marketer, admin_user, support, ops, approver):
    client.force_login(marketer)
    upload(client, MIXED_FILE)
    job = ImportJob.objects.get()
    for user in (marketer, admin_user):
        client.force_login(user)
        assert len(report_rows(client, job)) == 6
        assert client.get(f"/admin/messaging/importjob/{job.pk}/progress.json").status_code == 200
    for user in (support, ops, approver):
        client.force_login(user)
        for suffix in ("errors.csv", "progress.json", "change/"):
            assert client.get(f"/admin/messaging/importjob/{job.pk}/{suffix}").status_code == 403, (user, suffix)
    client.logout()
    assert client.get(f"/admin/messaging/importjob/{job.pk}/errors.csv").status_code == 302  # to the login page
