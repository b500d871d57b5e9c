"""Accessibility: axe-core in a real browser on every console page the sidebar reaches (plus
each list's first change page) and on every public page, in light and dark mode.

axe-core is vendored (static/vendor/axe-core, from its npm package) and evaluated into each
page by Playwright; no CDN, and the public pages' strict CSP stays on (a DevTools evaluate is
not a page script). The test fails on any serious or critical violation, listing its page,
rule and target selectors, and prints the pages it covered (all of it is also written to
test-results/accessibility.json).
"""

import json
import re
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from growth.giftcards import issue_gift_card
from growth.referrals import get_or_create_referral_code, sign_up_with_referral
from marketing.campaigns.actions import create_campaign
from marketing.events import record_order
from messaging.consent import subscribe, suppress_address
from messaging.content.catalog import sync_catalog
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import public_link
from messaging.models import Contact, OutboxMessage, Topic
from messaging.secrets import attach_secrets, reveal
from messaging.verification import send_email_verification, send_password_reset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = (Path(settings.BASE_DIR) / "static" / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
AXE_VERSION = re.match(r"/\*! axe v([\d.]+)", AXE).group(1)
BLOCKING = {"serious", "critical"}
RESULTS = Path(settings.BASE_DIR) / "test-results"
OBJECT = re.compile(r"\d+/\w+/$")  # <id>/change/, <id>/overview/, ...


@dataclass(frozen=True)
class Exclusion:
    """A violation in markup we neither write nor can reach with a template override or a
    stylesheet: one rule, on the pages whose path matches, on the targets that match."""

    rule: str
    path: str  # regular expression, whole path
    target: str  # regular expression, searched in the selector axe reports
    why: str

    def covers(self, rule: str, path: str, target: str) -> bool:
        return rule == self.rule and re.fullmatch(self.path, path) is not None and re.search(self.target, target) is not None


EXCLUSIONS = [
    Exclusion(
        "aria-prohibited-attr",
        r"/admin/auth/(user|group)/\d+/change/",
        r"\.help-tooltip\.search-label-icon$",
        "Django's admin/js/SelectFilter2.js (filter_horizontal for groups and permissions) creates "
        "<span class='help-tooltip search-label-icon' aria-label=...> in JavaScript at page load; no template renders it",
    ),
    Exclusion(
        "nested-interactive",
        r"/api/v1/docs/",
        r"^#operations-[\w-]+ > \.opblock-summary-\w+\.opblock-summary > \.opblock-summary-control$",
        "Swagger UI (drf-spectacular-sidecar) draws each operation's header as a <button> that holds its "
        "copy-path button, in JavaScript; its colours are fixed in static/mailroom/swagger-a11y.css",
    ),
]

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({impact: n.impact, summary: n.failureSummary, html: n.html.slice(0, 300), target: n.target.map(t => Array.isArray(t) ? t.join(' >> ') : t)})),
  }));
}"""

HTML = """<html><body><h1>Spring news</h1><p>Hello {{ contact.first_name }}.</p>
<p><a href="__MAILROOM_PREFERENCES__">Manage your preferences</a> · <a href="__MAILROOM_VIEW__">View in your browser</a>
· <a href="__MAILROOM_UNSUBSCRIBE__">Unsubscribe</a></p></body></html>"""


@dataclass
class Finding:
    page: str
    path: str
    mode: str
    rule: str
    impact: str
    help: str
    target: str
    summary: str = ""
    html: str = ""

    def __str__(self) -> str:
        return f"[{self.mode}] {self.page}: {self.rule} ({self.impact}) {self.target} - {self.help}"


class Auditor:
    def __init__(self, page: Page, mode: str) -> None:
        self.page, self.mode = page, mode
        self.covered: list[str] = []
        self.findings: list[Finding] = []
        self.excluded: list[Finding] = []

    def check(self, label: str) -> None:
        """Audit the page as it is now (after its scripts settled)."""
        self.page.wait_for_load_state("load")
        with suppress(PlaywrightTimeout):  # let HTMX and Alpine settle; a polling page never idles
            self.page.wait_for_load_state("networkidle", timeout=3_000)
        if not self.page.evaluate("() => typeof window.axe === 'object'"):
            self.page.evaluate(AXE)
        path = urlsplit(self.page.url).path
        where = f"{label} {path}"
        self.covered.append(where)
        for violation in self.page.evaluate(RUN_AXE):
            for node in violation["nodes"]:
                impact = node["impact"] or violation["impact"]
                if impact not in BLOCKING:
                    continue
                for target in node["target"]:
                    rule = violation["id"]
                    finding = Finding(where, path, self.mode, rule, impact, violation["help"], target, node["summary"], node["html"])
                    excluded = any(exclusion.covers(rule, path, target) for exclusion in EXCLUSIONS)
                    (self.excluded if excluded else self.findings).append(finding)

    def visit(self, url: str, label: str) -> None:
        response = self.page.goto(url)
        assert response is not None and response.status < 500, f"{url}: {response and response.status}"
        self.check(label)


# --- data ------------------------------------------------------------------------------
@pytest.fixture
def demo(live_server, settings, admin_user):
    """The demo data (seed_demo's own command), the template catalog, and one of each thing
    a page is about: a sent email with its links, a verification, a reset link, a referral,
    a gift card, an order, a suppression and a campaign."""
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_BASE_URL = live_server.url
    call_command("seed_demo", contacts=12, stdout=open("/dev/null", "w"))  # noqa: SIM115
    sync_catalog()
    contact = Contact.objects.filter(email__endswith="@demo.mailroom.test").order_by("pk").first()
    news = Topic.objects.get(key="newsletter")
    subscribe(actor=None, contact=contact, topic=news)
    message = enqueue_message(channel="email", contact=contact, topic=news, subject="Spring news", html=HTML)
    send_due_messages()
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT

    verification = send_email_verification(actor=None, contact=contact)
    resetting = User.objects.create_user("reset-me", email="reset-me@staff.test", password="pw-reset-me-1")
    assert send_password_reset(address=resetting.email)
    reset_message = OutboxMessage.objects.filter(to_address=resetting.email).latest("pk")
    code = get_or_create_referral_code(contact=contact)
    sign_up_with_referral(code=code.code, email="first-friend@example.org", first_name="Ada")
    issue_gift_card(actor=admin_user, amount="25.00", recipient=contact)
    record_order(contact=contact, external_id="A-1001", amount="42.00", status="paid")  # an event, points
    suppress_address(actor=admin_user, address="bounced@example.org", channel="email", reason="hard_bounce")

    create_campaign(actor=admin_user, name="Spring sale", topic=news)
    return {
        "preferences": public_link(message.pk, "__MAILROOM_PREFERENCES__"),
        "unsubscribe": public_link(message.pk, "__MAILROOM_UNSUBSCRIBE__"),
        "view": public_link(message.pk, "__MAILROOM_VIEW__"),
        "verify": link_in(verification, "/e/verify/"),
        "reset": link_in(reset_message, "/e/reset/"),
        "referral": f"{live_server.url}/r/{code.code}/",
    }


def link_in(message: OutboxMessage, prefix: str) -> str:
    """A sealed link as its recipient reads it (the stored body only holds a marker)."""
    attach_secrets(message)
    return re.search(r"(https?://\S+" + re.escape(prefix) + r"[^\s/]+/)", reveal(message, message.body_text)).group(1)


# --- pages -----------------------------------------------------------------------------
def audit_public_pages(audit: Auditor, base: str, links: dict[str, str]) -> None:
    page = audit.page
    audit.visit(f"{base}/admin/login/", "login")
    audit.visit(links["preferences"], "preference center")
    page.get_by_role("button", name="Save my preferences").click()
    audit.check("preference center, saved")
    audit.visit(links["view"], "view in browser")
    audit.visit(links["verify"], "verify email")
    audit.visit(f"{base}/e/reset/", "password reset request")
    page.get_by_label("Your email address").fill("nobody@example.com")
    page.get_by_role("button", name="Email me a link").click()
    audit.check("password reset, sent")
    audit.visit(links["reset"], "password reset confirm")
    page.get_by_role("button", name="Save the new password").click()  # empty: the errors show
    audit.check("password reset confirm, errors")
    audit.visit(links["referral"], "referral landing")
    audit.visit(f"{base}/r/NO-SUCH-CODE/", "referral invalid")
    audit.visit(f"{base}/p/not-a-token/", "problem page")
    audit.visit(links["unsubscribe"], "unsubscribe")


def audit_public_confirmations(audit: Auditor, links: dict[str, str]) -> None:
    """The pages after a POST that changes something: run once (light mode)."""
    page = audit.page
    audit.visit(links["verify"], "verify email")
    page.get_by_role("button", name="Confirm").click()
    audit.check("verify email, confirmed")
    audit.visit(links["referral"], "referral landing")
    page.get_by_label("Your email address").fill("friend@example.org")
    page.get_by_role("button", name="Sign up").click()
    audit.check("referral, welcome")
    audit.visit(links["reset"], "password reset confirm")
    page.get_by_label("New password", exact=True).fill("A-long-new-passphrase-42")
    page.get_by_label("New password confirmation").fill("A-long-new-passphrase-42")
    page.get_by_role("button", name="Save the new password").click()
    audit.check("password reset, done")
    audit.visit(links["unsubscribe"], "unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    audit.check("unsubscribe, confirmed")


def console_pages(page: Page, base: str) -> list[tuple[str, str]]:
    """Every link in the sidebar, then each list's first change page."""
    page.goto(f"{base}/admin/")
    links = page.eval_on_selector_all(
        "#nav-sidebar a[href]",
        """links => links.map(a => {
            const copy = a.cloneNode(true);
            copy.querySelectorAll('.material-symbols-outlined').forEach(icon => icon.remove());  // icon ligatures
            return [copy.textContent.replace(/\\s+/g, ' ').trim(), a.getAttribute('href')];
        })""",
    )
    pages, seen = [], set()
    for title, href in links:
        path = urlsplit(href).path
        if not path.startswith("/") or path in seen:
            continue
        seen.add(path)
        pages.append((title, base + href))
    assert len(pages) > 10, pages
    return pages


def audit_console(audit: Auditor, base: str, pages: list[tuple[str, str]]) -> None:
    """Each sidebar page, then the page of a list's first row (its change page, or the page its
    first link opens: a campaign's overview, a segment's builder)."""
    page = audit.page
    for title, url in pages:
        audit.visit(url, f"sidebar: {title}")
        path = urlsplit(url).path
        rows = page.locator(f"#result_list tbody tr:first-child a[href^='{path}']")
        hrefs = [href for href in rows.evaluate_all("links => links.map(a => a.getAttribute('href'))") if OBJECT.match(href[len(path) :])]
        if hrefs:
            audit.visit(base + hrefs[0], f"first of {title}")


def test_every_console_and_public_page_has_no_serious_accessibility_violation(demo, admin_user, console_login, live_server, page: Page):
    base = live_server.url
    audits = []
    for mode in ("light", "dark"):
        page.emulate_media(color_scheme=mode)
        audit = Auditor(page, mode)
        page.context.clear_cookies()
        audit_public_pages(audit, base, demo)
        console_login(admin_user)
        dark = page.evaluate("document.documentElement.classList.contains('dark')")
        assert dark == (mode == "dark"), f"the console did not switch to {mode} mode"
        audit_console(audit, base, console_pages(page, base))
        audits.append(audit)
    page.emulate_media(color_scheme="light")
    page.context.clear_cookies()
    audit_public_confirmations(audits[0], demo)

    for audit in audits:
        print(f"\naxe-core {AXE_VERSION} covered {len(audit.covered)} pages in {audit.mode} mode:")
        print("\n".join(f"  {where}" for where in audit.covered))
        for exclusion in EXCLUSIONS:
            if count := sum(exclusion.covers(f.rule, f.path, f.target) for f in audit.excluded):
                print(f"  excluded {count} x {exclusion.rule} on {exclusion.path}: {exclusion.why}")
    findings = [finding for audit in audits for finding in audit.findings]
    RESULTS.mkdir(exist_ok=True)
    report = {
        "axe_core": AXE_VERSION,
        "covered": {audit.mode: audit.covered for audit in audits},
        "violations": [asdict(finding) for finding in findings],
        "excluded": [asdict(finding) for audit in audits for finding in audit.excluded],
    }
    (RESULTS / "accessibility.json").write_text(json.dumps(report, indent=1))
    assert not findings, f"{len(findings)} serious/critical accessibility violations:\n" + "\n".join(map(str, findings))
