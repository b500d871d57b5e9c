"""Shared fixtures: role users, topics, contacts, and a real headless Chromium.

PostgreSQL: tests marked `postgres` need DATABASE_URL to point at PostgreSQL. Outside CI
they are skipped without it; with CI=true a missing or unreachable server fails the run.
"""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection
from hypothesis import settings as hypothesis_settings

from messaging import site
from messaging.contacts import create_contact
from messaging.delivery import tracking
from messaging.models import Topic

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
RESULTS = Path(settings.BASE_DIR) / "test-results"
CHROMIUM = os.environ.get("MAILROOM_CHROMIUM", "/usr/bin/chromium")
ROLE_NAMES = ["Marketer", "Approver", "Ops", "Support", "Admin"]

# CI replays the same generated examples on every run, so a red build is the change's
# doing and reproducible; a developer's runs stay random and keep exploring (what they
# find becomes a named regression test).
hypothesis_settings.register_profile("ci", derandomize=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")


def _uses_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith(("postgresql", "postgis"))


def pytest_configure(config: pytest.Config) -> None:
    # The SQLite test database lives in var/, which a fresh clone does not have yet.
    (Path(settings.BASE_DIR) / "var").mkdir(exist_ok=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return
    import psycopg

    params = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=params["HOST"] or "127.0.0.1",
            port=params["PORT"] or 5432,
            user=params["USER"] or None,
            dbname=params["NAME"],
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as error:
        pytest.exit(f"PostgreSQL is unreachable at {os.environ['DATABASE_URL']}: {error}", returncode=3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _uses_postgres() or IN_CI:  # in CI a PostgreSQL test without PostgreSQL fails (pytest_runtest_setup)
        return
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A CI run that reaches a PostgreSQL test without PostgreSQL fails it (DESIGN): a skip or
    an xfail would let CI pass without ever running the concurrency tests."""
    if IN_CI and "postgres" in item.keywords and not _uses_postgres():
        pytest.fail("CI must run this test on PostgreSQL: set DATABASE_URL (see the Makefile's test target).")


@pytest.fixture(autouse=True)
def _english(settings) -> None:
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def _fresh_caches(request: pytest.FixtureRequest, django_db_blocker):
    """Rate-limit counters and the per-process link caches never leak from one test to the
    next (each test's database starts empty, so ids are reused). The shared cache is the
    test database's cache table: a test's transaction takes its rows away, and after a
    transactional test (whose flush leaves that table alone) it is emptied here."""
    from django.core.cache import caches

    caches["local"].clear()
    tracking.forget_links()
    site.forget()  # the Settings row a previous test saved is gone with its transaction
    yield
    if "_django_db_helper" in request.fixturenames:  # the test database is set up
        with django_db_blocker.unblock():
            caches["default"].clear()


# --- people ----------------------------------------------------------------------------
def make_user(username: str, role: str | None = None, *, superuser: bool = False) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, email=f"{username}@staff.test")
    user.is_staff = True
    user.is_superuser = superuser
    user.save()
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def admin_user(db) -> User:
    return make_user("admin", "Admin", superuser=True)


@pytest.fixture
def marketer(db) -> User:
    return make_user("marketer", "Marketer")


@pytest.fixture
def approver(db) -> User:
    return make_user("approver", "Approver")


@pytest.fixture
def ops(db) -> User:
    return make_user("ops", "Ops")


@pytest.fixture
def support(db) -> User:
    return make_user("support", "Support")


# --- domain ----------------------------------------------------------------------------
@pytest.fixture
def newsletter(db) -> Topic:
    return Topic.objects.create(key="newsletter", name="Newsletter", kind=Topic.Kind.MARKETING)


@pytest.fixture
def receipts(db) -> Topic:
    return Topic.objects.create(key="receipts", name="Receipts", kind=Topic.Kind.TRANSACTIONAL)


@pytest.fixture
def contact(db):
    return create_contact(actor=None, email="ada@example.com", first_name="Ada", timezone="Europe/Paris", locale="fr")


# --- browser ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls made by the
    # test around it are still synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian chromium not found at {CHROMIUM}: run `make browser-deps` (apt-get install chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        RESULTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def console_login(live_server, page):
    """Log a user into the console through the real login form; returns the page."""

    def login(user: User, password: str | None = None):
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", password or "pw-" + user.username)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        return page

    return login


def db_vendor() -> str:
    return connection.vendor
