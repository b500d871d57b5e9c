"""Console CSV imports that timed out the web worker: a 20,000-row file (0.9 MB) was a 500
after 30 s, a 65 MB one too, and the html format was a 500. Now a large file is stored and
imported by a worker with a progress page, an over-size file is refused with a message,
and only CSV is offered."""

import io

import pytest

from messaging import importing
from messaging.models import AuditEntry, Contact, ImportJob
from messaging.tasks import run_import_job

pytestmark = pytest.mark.django_db
IMPORT_URL = "/admin/messaging/contact/import/"


@pytest.fixture(autouse=True)
def _no_cluster(settings):
    settings.MAILROOM_KICK_CLUSTER = False  # the test runs the task itself


def upload(client, data: bytes, *, mode: str = "all", name: str = "contacts.csv"):
    import_file = io.BytesIO(data)
    import_file.name = name
    form = {"import_file": import_file, "mode": mode, "encoding": "utf-8-sig", "legal_basis": "consent", "consent_confirmed": "on"}
    return client.post(IMPORT_URL, form)


def big_csv(rows: int) -> bytes:
    lines = ["email,first_name,last_name,plan"] + [f"person{n}@example.com,Person,Number {n},gold" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_a_20000_row_console_import_returns_at_once_and_a_worker_imports_every_row(client, marketer, monkeypatch):
    client.force_login(marketer)
    data = big_csv(20_000)
    assert len(data) > 900_000
    # when the marketer uploads it
    response = upload(client, data)
    # then the request only stores the file and lands on the job's page
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/messaging/importjob/{job.pk}/change/"
    assert (job.status, job.rows_total, job.created_by, job.size) == (ImportJob.Status.QUEUED, 20_000, marketer, len(data))
    assert not Contact.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "0 / 20,000 rows" in page
    # and when the worker runs the task, progress is recorded before the rows are written
    seen = []
    write = importing._write

    def spy(rows, *args, **kwargs):
        seen.append(ImportJob.objects.values_list("status", "rows_done").get(pk=job.pk))
        return write(rows, *args, **kwargs)

    monkeypatch.setattr(importing, "_write", spy)
    run_import_job(job_id=job.pk)
    assert set(seen) == {(ImportJob.Status.RUNNING, 20_000)}  # every chunk: after the whole file was read
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total, job.created, job.bad_rows) == (ImportJob.Status.DONE, 20_000, 20_000, 20_000, 0)
    assert job.data == b""  # no second copy of the file once imported
    assert Contact.objects.count() == 20_000
    assert Contact.objects.get(email="person7@example.com").attributes == {"plan": "gold"}
    assert AuditEntry.objects.get(verb="imported").actor == marketer
    # the result is on the page the sidebar leads to
    page = client.get(f"/admin/messaging/importjob/{job.pk}/change/").content.decode()
    assert "20,000 / 20,000 rows" in page and "20000 contacts created" in page
    assert "/admin/messaging/importjob/" in client.get("/admin/").content.decode()
    # and running the task again (a retried delivery) changes nothing
    run_import_job(job_id=job.pk)
    assert Contact.objects.count() == 20_000


def test_a_background_import_with_bad_rows_imports_nothing_and_lists_each_line(client, marketer, settings):
    settings.MAILROOM_IMPORT_INLINE_MAX_BYTES = 10  # every file goes to the worker
    client.force_login(marketer)
    data = b"email,first_name\nada@example.com,Ada\nnot-an-email,Nope\nbob@example.com,B\x00b\ncarl@example.com,Carl\n"
    upload(client, data)
    job = ImportJob.objects.get()
    run_import_job(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.REJECTED
    assert [error["line"] for error in job.errors] == [3, 4]
    assert "cannot be stored" in job.errors[1]["message"]
    assert not Contact.objects.exists()
    page = client.get(f"/admin/messaging/importjob/{job.pk}/change/").content.decode()
    assert "line 3:" in page and "Nothing imported: 2 bad rows" in page
    # the same file, choosing only the good rows
    upload(client, data, mode="good")
    job = ImportJob.objects.filter(status=ImportJob.Status.QUEUED).get()
    run_import_job(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.created, job.bad_rows) == (ImportJob.Status.DONE, 2, 2)
    assert set(Contact.objects.values_list("email", flat=True)) == {"ada@example.com", "carl@example.com"}


def test_an_oversize_console_import_is_refused_with_a_clear_message_and_stores_nothing(client, marketer, settings):
    settings.MAILROOM_IMPORT_MAX_BYTES = 50_000
    client.force_login(marketer)
    response = upload(client, big_csv(2_000))
    assert response.status_code == 200
    assert "the console imports files up to 48.8" in response.content.decode()
    assert not ImportJob.objects.exists()
    assert not Contact.objects.exists()


def test_an_html_file_is_refused_cleanly_and_the_old_preview_path_is_gone(client, marketer):
    client.force_login(marketer)
    # when an HTML table (offered as a format before) is uploaded
    response = upload(client, b"<table><tr><td>email</td></tr><tr><td>ada@example.com</td></tr></table>", name="contacts.html")
    # then its job fails saying which columns a file needs, and nothing is imported
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert job.status == ImportJob.Status.FAILED and "at least one of these columns" in job.message
    assert not Contact.objects.exists()
    # and django-import-export's preview-then-confirm step is not a second way in
    assert client.post("/admin/messaging/contact/process_import/", {"import_file_name": "x", "format": "0"}).status_code == 404
    assert not Contact.objects.exists()


def test_an_unreadable_background_file_fails_with_its_reason(client, marketer, settings):
    settings.MAILROOM_IMPORT_INLINE_MAX_BYTES = 10
    client.force_login(marketer)
    upload(client, "email,first_name\nada@example.com,Hélène\n".encode("latin-1"))
    job = ImportJob.objects.get()
    run_import_job(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and "not valid UTF-8" in job.message
    assert not Contact.objects.exists()


def test_approver_cannot_see_import_jobs(client, approver, marketer, settings):
    settings.MAILROOM_IMPORT_INLINE_MAX_BYTES = 10
    client.force_login(marketer)
    upload(client, b"email\nada@example.com\n")
    job = ImportJob.objects.get()
    client.force_login(approver)
    assert client.get("/admin/messaging/importjob/").status_code == 403
    assert client.get(f"/admin/messaging/importjob/{job.pk}/change/").status_code == 403
