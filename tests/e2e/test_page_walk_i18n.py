"""Every sidebar page, in English and in French, in a real browser.

The admin logs in on a console filled with the demo data (seed_demo) and a campaign that
went through approval, collects every link of the sidebar (what Unfold renders from
UNFOLD["SIDEBAR"]), then a few pages reached from them (a campaign's page with its
history, an automation's flow, a topic's form). Each page is opened in English, then in
French (the `django_language` cookie the console's language switcher sets):

- any JavaScript error (console error or uncaught exception) fails, in either language;
- in French, any visible text that is an English msgid of our French catalogue whose
  translation differs fails: a string shown without going through gettext, or missing
  from the catalogue. Data people typed (list rows, select options) and icon ligatures are
  not judged; msgids under 4 characters, with placeholders, or translated identically
  ("Contacts", "Segments") cannot tell English from French and are left out.

The covered pages are printed (`-s` shows them). Screenshots of three French pages go to
test-results/screenshots/fr-*.png (copied to docs/screenshots/)."""

import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils.translation import trans_real
from playwright.sync_api import Page

from marketing.campaigns.actions import approve_campaign, submit_campaign
from marketing.models import Automation
from messaging.models import Topic
from tests.conftest import RESULTS, make_user
from tests.marketing.conftest import SENDER, make_people, make_segment, make_version, new_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = RESULTS / "screenshots"
PLACEHOLDER = re.compile(r"%(\(\w+\))?[a-z]|\{")
# Visible text nodes, skipping icon ligatures ("search", "inbox"), scripts, what people
# typed in list rows, and the options of closed selects.
VISIBLE_TEXT = """() => {
  const skip = "script,style,template,noscript,.material-symbols-outlined,#result_list tbody,option,[data-user-content]";
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, element = node.parentElement;
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    if (text && element && !element.closest(skip) && element.checkVisibility()) texts.push(text);
  }
  return texts;
}"""


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER


def english_msgids() -> dict[str, str]:
    """English msgid → French, for every entry of the French catalogue (ours, the vendored
    Unfold strings, Django's) whose French differs and that can be recognised in a page."""
    catalogue = trans_real.translation("fr")._catalog
    found = {}
    for key, french in catalogue.items():
        if isinstance(key, tuple):  # (msgid, plural index): the singular is enough
            if key[1] != 0:
                continue
            key = key[0]
        msgid = key.split("\x04", 1)[-1]  # drop a context
        if len(msgid) < 4 or french == msgid or PLACEHOLDER.search(msgid) or not re.search(r"[A-Za-z]{3}", msgid):
            continue
        found[msgid] = french
    return found


def untranslated(texts: list[str], msgids: dict[str, str]) -> list[str]:
    """The English msgids a page shows: a text that is one, or holds a long one (two words
    or more, 12 characters or more) as whole words."""
    shown = {text.strip(" :·") for text in texts}
    hits = {msgid for msgid in msgids if msgid in shown}
    long_ones = [m for m in msgids if len(m) >= 12 and " " in m]
    for text in shown:
        if len(text) >= 12:
            hits |= {m for m in long_ones if m in text and re.search(rf"(?<!\w){re.escape(m)}(?!\w)", text)}
    return sorted(hits)


@pytest.fixture
def console(db):
    """The demo console, plus a campaign approved by a second person (its page has a history)."""
    call_command("seed_demo", contacts=24, stdout=open("/dev/null", "w"))  # noqa: SIM115
    admin = make_user("admin", "Admin", superuser=True)
    marketer, approver = make_user("marketer", "Marketer"), make_user("approver", "Approver")
    newsletter = Topic.objects.get(key="newsletter")
    segment = make_segment("Spring readers", make_people(newsletter, 3))
    campaign = new_campaign(marketer, newsletter, segment, make_version(marketer, newsletter))
    approve_campaign(actor=approver, campaign=submit_campaign(actor=marketer, campaign=campaign))
    return {"admin": admin, "campaign": campaign, "automation": Automation.objects.order_by("pk").first(), "topic": newsletter}


def set_language(page: Page, live_server, language: str) -> None:
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])


def test_every_sidebar_page_speaks_french_and_has_no_javascript_error(console, console_login, live_server, capsys):
    page = console_login(console["admin"])
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(f"{page.url}: console {message.type}: {message.text}") if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(f"{page.url}: uncaught {error}"))

    sidebar = page.eval_on_selector_all("#nav-sidebar a[href]", "links => links.map(a => a.getAttribute('href'))")
    links = list(dict.fromkeys(link for link in sidebar if link.startswith("/admin/")))
    assert len(links) >= 35, links  # every group of the sidebar was rendered, not a login page
    links += [
        f"/admin/marketing/campaign/{console['campaign'].pk}/overview/",
        f"/admin/marketing/automation/{console['automation'].pk}/flow/",
        f"/admin/messaging/topic/{console['topic'].pk}/change/",
    ]
    msgids = english_msgids()
    assert {"Sending settings", "Approval queue", "Subscribers per topic"} <= set(msgids)  # the catalogue was read

    problems, covered = [], []
    for language in ("en", "fr"):
        set_language(page, live_server, language)
        for link in links:
            response = page.goto(live_server.url + link, wait_until="load")
            page.wait_for_timeout(250)  # HTMX partials loaded on page load (dry run, queue panel) settle
            assert response is not None and response.status == 200, f"{language} {link}: {response and response.status}"
            assert page.locator("html").get_attribute("lang") == language, f"{link} is not in {language}"
            if language == "fr":
                problems += [
                    f"{link}: “{msgid}” (French: “{msgids[msgid]}”)" for msgid in untranslated(page.evaluate(VISIBLE_TEXT), msgids)
                ]
            covered.append(f"{language} {link}")

    with capsys.disabled():
        print(f"\npage walk: {len(covered)} pages (en + fr)\n  " + "\n  ".join(covered))
    assert errors == [], "JavaScript errors:\n" + "\n".join(errors)
    assert problems == [], "English on French pages (translate in locale/fr or wrap in gettext):\n" + "\n".join(problems)


def test_french_pages_for_the_screenshots_and_the_breadcrumbs(console, console_login, live_server):
    page = console_login(console["admin"])
    set_language(page, live_server, "fr")
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "dashboard": "/admin/",
        "campaign": f"/admin/marketing/campaign/{console['campaign'].pk}/overview/",
        "topic": f"/admin/messaging/topic/{console['topic'].pk}/change/",
    }
    for name, link in pages.items():
        page.goto(live_server.url + link, wait_until="load")
        if name == "campaign":
            page.locator("[data-testid=dry-run]").wait_for()
            page.wait_for_timeout(500)  # the sample renders' frames paint
        page.screenshot(path=str(SHOTS / f"fr-{name}.png"), full_page=True)

    # the campaign page: its dry-run tiles hold their French labels ("Sans consentement"),
    # its history says what happened in French words
    page.goto(live_server.url + pages["campaign"])
    page.locator("[data-testid=dry-run]").wait_for()
    overflowing = page.evaluate("""() => [...document.querySelectorAll("[data-testid=dry-run] .mr-tile")].filter(tile => {
        const label = tile.querySelector(".mr-tile-label"), grid = tile.parentElement.getBoundingClientRect();
        return label.scrollWidth > label.clientWidth || tile.getBoundingClientRect().right > grid.right + 1;
    }).map(tile => tile.innerText)""")
    assert page.get_by_text("Sans consentement").is_visible()
    assert overflowing == []
    history = page.locator("[data-testid=campaign-history]")
    assert history.locator("[data-verb=submitted]").inner_text() == "soumise pour validation"
    assert history.locator("[data-verb=approved]").inner_text() == "validé"
    # the topic form: "Audience › Thématiques › Newsletter", with its French name filled in
    page.goto(live_server.url + pages["topic"])
    crumbs = page.locator("[data-testid=breadcrumbs] > a, [data-testid=breadcrumbs] > span:not(.material-symbols-outlined)")
    assert [text.strip() for text in crumbs.all_inner_texts()] == ["Audience", "Thématiques", "Newsletter"]
    assert page.locator("input[name=name_fr]").input_value() == "Lettre d'information"
