"""Marketing's console lists as django-tables2 tables, through HTTP as named staff: each
sortable column changes the order, an unknown sort key is ignored, pages hold 50 and a page
past the end shows the last one, the CSV export is the whole list with no formula left in
it, a role that cannot see the page cannot export it, and the queries do not grow with rows."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketing.models import Automation, AutomationRun, AutomationStepLog, CampaignRecipient
from messaging.models import Contact

pytestmark = pytest.mark.django_db
INJECTION = '=HYPERLINK("http://evil.test","x")'


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode())))


def row_order(html: str, people: list[str]) -> list[str]:
    """The given contacts in the order the page lists them."""
    return sorted(people, key=html.index)


def contacts(n: int, *, prefix: str) -> list[Contact]:
    return Contact.objects.bulk_create([Contact(email=f"{prefix}{i:03d}@example.com") for i in range(n)])


# --- campaign recipients ----------------------------------------------------------------------


@pytest.fixture
def recipients(sending):
    """Three recipients that sort differently on each column, one named like a formula."""
    now = timezone.now()
    people = [
        Contact.objects.create(email="bea@example.com"),
        Contact.objects.create(external_id=INJECTION),
        Contact.objects.create(email="ana@example.com"),
    ]
    rows = [
        CampaignRecipient(campaign=sending, contact=people[0], status="queued", scheduled_at=now + timedelta(hours=1)),
        CampaignRecipient(campaign=sending, contact=people[1], status="skipped", skip_reason="address", scheduled_at=now),
        CampaignRecipient(campaign=sending, contact=people[2], status="holdout", scheduled_at=now + timedelta(hours=2)),
    ]
    CampaignRecipient.objects.bulk_create(rows)
    return sending


def recipients_url(campaign) -> str:
    return f"/admin/marketing/campaign/{campaign.pk}/recipients/"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("contact", ["=HYPERLINK", "ana@", "bea@"]),  # the formula contact has no email: sorts first
        ("-contact", ["bea@", "ana@", "=HYPERLINK"]),
        ("delivery_status", ["ana@", "bea@", "=HYPERLINK"]),  # holdout, queued, skipped
        ("-delivery_status", ["=HYPERLINK", "bea@", "ana@"]),
        ("scheduled_at", ["=HYPERLINK", "bea@", "ana@"]),
        ("-scheduled_at", ["ana@", "bea@", "=HYPERLINK"]),
        ("skip_reason", ["bea@", "ana@", "=HYPERLINK"]),  # blank before "address", then by id
    ],
)
def test_recipients_sort_by_each_sortable_column(client, marketer, recipients, sort, expected):
    client.force_login(marketer)
    html = client.get(recipients_url(recipients), {"sort": sort}).content.decode()
    # the formula is shown escaped on the page
    assert row_order(html.replace("=HYPERLINK(&quot;", "=HYPERLINK"), expected) == expected
    assert f'aria-sort="{"descending" if sort.startswith("-") else "ascending"}"' in html


def test_recipients_ignore_an_unknown_sort_key_and_keep_the_filter(client, marketer, recipients):
    client.force_login(marketer)
    default = client.get(recipients_url(recipients)).content.decode()
    for bad in ("password", "contact__password", "-nope", "contact,id;drop"):
        response = client.get(recipients_url(recipients), {"sort": bad})
        assert response.status_code == 200
        assert row_order(response.content.decode(), ["bea@", "ana@"]) == row_order(default, ["bea@", "ana@"]) == ["bea@", "ana@"]
    # a filter and a sort together: the status filter links keep the sort, the sort links the filter
    filtered = client.get(recipients_url(recipients), {"status": "queued", "sort": "-contact"}).content.decode()
    assert filtered.count('data-testid="recipient-row"') == 1 and "bea@example.com" in filtered
    assert "?status=skipped&amp;sort=-contact" in filtered or "?sort=-contact&amp;status=skipped" in filtered
    assert "status=queued&amp;sort=contact" in filtered


def test_recipients_page_by_fifty_and_a_page_past_the_end_shows_the_last(client, marketer, sending):
    people = contacts(120, prefix="r")
    CampaignRecipient.objects.bulk_create([CampaignRecipient(campaign=sending, contact=p, status="queued") for p in people])
    client.force_login(marketer)
    first = client.get(recipients_url(sending)).content.decode()
    assert first.count('data-testid="recipient-row"') == 50 and "Page 1 of 3 (120 recipients)" in first
    assert "r000@" in first and "r050@" not in first
    last = client.get(recipients_url(sending), {"page": 3}).content.decode()
    assert last.count('data-testid="recipient-row"') == 20 and "r119@" in last
    for page in ("99", "-1", "abc", "0"):
        response = client.get(recipients_url(sending), {"page": page})
        assert response.status_code == 200, page
        assert response.content.decode().count('data-testid="recipient-row"') in (50, 20)
    assert "Page 3 of 3" in client.get(recipients_url(sending), {"page": 99}).content.decode()
    # a page size from the URL is kept within bounds (0 is the default, below 1 would divide by zero)
    assert client.get(recipients_url(sending), {"per_page": 0}).content.decode().count('data-testid="recipient-row"') == 50
    assert client.get(recipients_url(sending), {"per_page": -5}).content.decode().count('data-testid="recipient-row"') == 1
    assert client.get(recipients_url(sending), {"per_page": 10**9}).content.decode().count('data-testid="recipient-row"') == 120


def test_recipients_export_every_row_sorted_with_formulas_neutralised(client, marketer, recipients):
    client.force_login(marketer)
    response = client.get(recipients_url(recipients), {"_export": "csv", "sort": "-contact", "page": "2"})
    rows = csv_rows(response)
    assert f"campaign-{recipients.pk}-recipients.csv" in response["Content-Disposition"]
    assert rows[0] == ["Contact", "Status", "Reason", "Variant", "Send at", "Message"]  # no "Remove" column
    assert [row[0] for row in rows[1:]] == ["bea@example.com", "ana@example.com", "'" + INJECTION]
    assert [row[1] for row in rows[1:]] == ["queued", "holdout", "skipped"]
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "@")]
    # an unknown export format is not an export: the page
    assert client.get(recipients_url(recipients), {"_export": "xlsx"})["Content-Type"].startswith("text/html")


def test_a_role_that_cannot_see_the_recipients_cannot_export_them(client, support, ops, recipients):
    for user in (support, ops):
        client.force_login(user)
        response = client.get(recipients_url(recipients), {"_export": "csv"})
        assert response.status_code == 403
        assert b"HYPERLINK" not in response.content


def test_recipients_page_queries_do_not_grow_with_rows(client, marketer, sending, django_assert_max_num_queries):
    client.force_login(marketer)
    CampaignRecipient.objects.bulk_create(
        [CampaignRecipient(campaign=sending, contact=p, status="queued") for p in contacts(3, prefix="a")]
    )
    with CaptureQueriesContext(connection) as few:
        assert client.get(recipients_url(sending)).status_code == 200
    CampaignRecipient.objects.bulk_create(
        [CampaignRecipient(campaign=sending, contact=p, status="queued") for p in contacts(60, prefix="b")]
    )
    with django_assert_max_num_queries(len(few)):
        assert client.get(recipients_url(sending)).content.decode().count('data-testid="recipient-row"') == 50
    with django_assert_max_num_queries(len(few)):
        assert len(csv_rows(client.get(recipients_url(sending), {"_export": "csv"}))) == 64


# --- automation runs ----------------------------------------------------------------------------


@pytest.fixture
def automation(db):
    return Automation.objects.create(name="Welcome")


def make_runs(automation, people, **fields) -> list[AutomationRun]:
    runs = AutomationRun.objects.bulk_create(
        [AutomationRun(automation=automation, contact=p, trigger_key=f"t{i}", **fields) for i, p in enumerate(people)]
    )
    AutomationStepLog.objects.bulk_create([AutomationStepLog(run=run, step_index=0, kind="send", outcome="sent") for run in runs])
    return runs


@pytest.fixture
def runs(automation):
    people = [
        Contact.objects.create(email="bea@example.com"),
        Contact.objects.create(email=INJECTION + "@x.test"),
        Contact.objects.create(email="ana@example.com"),
    ]
    runs = make_runs(automation, people)
    now = timezone.now()
    for run, (status, started, next_run) in zip(
        runs,
        [
            ("active", now - timedelta(days=1), now + timedelta(hours=3)),
            ("failed", now - timedelta(days=3), None),
            ("completed", now, now + timedelta(hours=1)),
        ],
        strict=True,
    ):
        AutomationRun.objects.filter(pk=run.pk).update(status=status, started_at=started, next_run_at=next_run)
    return runs


def flow_url(automation) -> str:
    return f"/admin/marketing/automation/{automation.pk}/flow/"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, ["ana@", "bea@", "=HYPERLINK"]),  # newest first
        ("contact", ["=HYPERLINK", "ana@", "bea@"]),
        ("-contact", ["bea@", "ana@", "=HYPERLINK"]),
        ("status", ["bea@", "ana@", "=HYPERLINK"]),  # active, completed, failed
        ("-status", ["=HYPERLINK", "ana@", "bea@"]),
        ("started_at", ["=HYPERLINK", "bea@", "ana@"]),
        ("next_run_at", ["ana@", "bea@", "=HYPERLINK"]),  # nothing due (NULL) last either way, on both databases
        ("-next_run_at", ["bea@", "ana@", "=HYPERLINK"]),
    ],
)
def test_automation_runs_sort_by_each_sortable_column(client, marketer, runs, automation, sort, expected):
    client.force_login(marketer)
    html = client.get(flow_url(automation), {"sort": sort} if sort else {}).content.decode()
    assert html.count('data-testid="run-row"') == 3
    assert row_order(html, expected) == expected


def test_automation_runs_page_ignore_bad_sort_and_export_safely(client, marketer, runs, automation):
    client.force_login(marketer)
    assert row_order(client.get(flow_url(automation), {"sort": "lease_owner"}).content.decode(), ["ana@", "bea@"]) == ["ana@", "bea@"]
    rows = csv_rows(client.get(flow_url(automation), {"_export": "csv", "sort": "contact"}))
    assert rows[0] == ["Contact", "Status", "Steps done", "Next run", "Started", "Ended"]
    assert [row[0] for row in rows[1:]] == ["'" + INJECTION + "@x.test", "ana@example.com", "bea@example.com"]
    assert rows[1][1:3] == ["failed", "1:sent"]


def test_automation_runs_page_by_fifty(client, marketer, automation):
    make_runs(automation, contacts(70, prefix="run"))
    client.force_login(marketer)
    assert client.get(flow_url(automation)).content.decode().count('data-testid="run-row"') == 50
    last = client.get(flow_url(automation), {"page": 7}).content.decode()
    assert last.count('data-testid="run-row"') == 20 and "Page 2 of 2 (70 runs)" in last


def test_a_role_that_cannot_read_runs_sees_no_runs_and_cannot_export_them(client, approver, runs, automation):
    # an approver reviews automations but may not read who went through them
    client.force_login(approver)
    page = client.get(flow_url(automation))
    assert page.status_code == 200 and b'data-testid="run-row"' not in page.content and b"ana@example.com" not in page.content
    response = client.get(flow_url(automation), {"_export": "csv"})
    assert response.status_code == 403 and b"ana@example.com" not in response.content


def test_automation_flow_queries_do_not_grow_with_runs(client, marketer, automation, django_assert_max_num_queries):
    client.force_login(marketer)
    make_runs(automation, contacts(2, prefix="few"))
    with CaptureQueriesContext(connection) as few:
        client.get(flow_url(automation))
    make_runs(automation, contacts(60, prefix="many"))
    with django_assert_max_num_queries(len(few)):
        assert client.get(flow_url(automation)).content.decode().count('data-testid="run-row"') == 50
    with django_assert_max_num_queries(len(few)):
        assert len(csv_rows(client.get(flow_url(automation), {"_export": "csv"}))) == 63
