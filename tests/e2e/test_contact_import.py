"""CSV import in the console, in a real browser: a file with bad rows and duplicates in both
modes (imported in the request), its error report downloaded, then a 100,000-row file
imported by a real django-q2 cluster while the job's page shows its progress bar moving.
Screenshots go to docs/screenshots/import-*.png."""

import csv
import io
import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import Page, expect

from messaging.models import ConsentRecord, Contact, ImportJob, Subscription, Topic
from tests.support.cluster import database_env, start_cluster

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
MIXED_FILE = (
    b"email,phone,first_name,last_name,plan\n"
    b"ada@example.com,,Ada,Lovelace,gold\n"  # 2: good
    b"not-an-email,,Nope,,\n"  # 3: bad email
    b"Grace@Example.com,,Grace,Hopper,\n"  # 4: same email as line 6
    b"alan@example.com,06 12 34 56 78,Alan,Turing,\n"  # 5: same phone as line 7
    b" grace@example.com ,,Grace,Again,\n"  # 6
    b"joan@example.com,+33612345678,Joan,Clarke,\n"  # 7
    b"linus@example.com,,Linus,Torvalds,silver\n"  # 8: good
    b"zoe@example.com,,Zoe,,,extra cell\n"  # 9: more cells than the header
)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"import-{name}.png"), full_page=True)


def fill_import_form(page: Page, live_server, *, name: str, data: bytes, mode_label: str) -> None:
    page.goto(f"{live_server.url}/admin/messaging/contact/")
    page.locator("a[href='/admin/messaging/contact/import/']").first.click()
    expect(page).to_have_url(f"{live_server.url}/admin/messaging/contact/import/")
    page.set_input_files("input[name=import_file]", files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
    page.get_by_label("Newsletter").check()
    page.get_by_label("Legal basis for these subscriptions").select_option("consent")
    page.get_by_label("These contacts agreed to receive these topics").check()
    page.get_by_label(mode_label).check()


def test_console_import_in_both_modes_and_a_100000_row_background_job(live_server, console_login, marketer, settings, tmp_path):
    settings.MAILROOM_KICK_CLUSTER = False  # the small files run in the request; the cluster comes later
    newsletter = Topic.objects.create(key="newsletter", name="Newsletter")
    page = console_login(marketer)

    # Given a small file with bad rows and duplicates, imported "all or nothing"
    fill_import_form(page, live_server, name="mixed.csv", data=MIXED_FILE, mode_label="All or nothing")
    shot(page, "1-form")
    page.get_by_role("button", name="Import").click()
    # then nothing is imported and every bad line is listed, the duplicates naming each other
    expect(page.locator("#import-progress")).to_contain_text("Nothing imported: bad rows")
    expect(page.get_by_text("Nothing imported: 6 bad rows").first).to_be_visible()
    expect(page.locator("body")).to_contain_text("line 4: same email as line 6")
    expect(page.locator("body")).to_contain_text("line 7: same phone as line 5")
    assert not Contact.objects.exists()
    shot(page, "2-all-or-nothing")
    # and the error report downloads as CSV: line, column, value, error
    with page.expect_download() as download:
        page.locator("#import-error-report").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert [int(row["line"]) for row in rows] == [3, 4, 5, 6, 7, 9]
    assert rows[1] == {"line": "4", "column": "email", "value": "grace@example.com", "error": "same email as line 6"}

    # When the same file is imported choosing "only the good rows"
    fill_import_form(page, live_server, name="mixed.csv", data=MIXED_FILE, mode_label="Only the good rows")
    page.get_by_role("button", name="Import").click()
    # then exactly the two good rows land, subscribed with their consent recorded
    expect(page.get_by_text("2 contacts created, 0 updated, 2 subscriptions. 6 bad rows were left out.").first).to_be_visible()
    assert set(Contact.objects.values_list("email", flat=True)) == {"ada@example.com", "linus@example.com"}
    assert set(ConsentRecord.objects.values_list("legal_basis", "source")) == {("consent", "import")}
    shot(page, "3-good-rows")

    # Given a real cluster, and a 100,000-row file
    settings.MAILROOM_KICK_CLUSTER = True
    env = {
        **os.environ,
        **database_env(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MAILROOM_KICK_CLUSTER": "1",
        "MAILROOM_Q_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    cluster = start_cluster(env=env, log_path=tmp_path / "cluster.log")
    try:
        lines = ["email,first_name,last_name,plan"] + [f"person{n}@example.com,Person,Number {n},gold" for n in range(100_000)]
        big = ("\n".join(lines) + "\n").encode()
        fill_import_form(page, live_server, name="big.csv", data=big, mode_label="Only the good rows")
        started = time.monotonic()
        page.get_by_role("button", name="Import").click()
        # then the request returns at once, on the job's page with its progress bar
        expect(page.locator("#import-progress")).to_be_visible()
        assert time.monotonic() - started < 20
        job = ImportJob.objects.get(file_name="big.csv")
        expect(page.get_by_text("The file is being imported in the background")).to_be_visible()
        # and the bar moves as the worker reads and writes the file
        seen: list[int] = []
        shot_taken = False
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if page.locator("#import-progress[data-finished='1']").count():
                break
            try:
                percent = int(page.locator("[data-field=percent-label]").inner_text(timeout=2000).rstrip("%"))
            except Exception:  # the page reloads itself when the job ends
                continue
            if not seen or percent != seen[-1]:
                seen.append(percent)
            if not shot_taken and 30 < percent < 90:
                shot(page, "4-progress")
                shot_taken = True
            page.wait_for_timeout(300)
        assert shot_taken, (seen, cluster.tail())
        assert len(seen) >= 3 and seen == sorted(seen), seen
        # when it ends, the page shows the result
        expect(page.locator("#import-progress")).to_contain_text("Imported", timeout=30_000)
        expect(page.get_by_text("100000 contacts created, 0 updated, 100000 subscriptions.").first).to_be_visible()
        shot(page, "5-background-done")
    finally:
        cluster.kill()
    job.refresh_from_db()
    assert (job.status, job.created, job.rows_total, job.attempts) == (ImportJob.Status.DONE, 100_000, 100_000, 1)
    assert Contact.objects.count() == 100_002
    assert Subscription.objects.filter(topic=newsletter).count() == 100_002
