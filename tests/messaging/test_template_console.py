"""Templates in the console (issue 18, item 7), through HTTP as a marketer: a new template
defaults to a marketing category and picks one of the configured languages, the editor
starts from the starter MJML layout, "Save and activate" saves and activates in one go, the
editor says when the latest version is not the active one, and preview frames open links
in a new tab (and still run nothing)."""

import re

import lxml.html
import pytest
from django.conf import settings

from messaging.admin.delivery import preview_iframe
from messaging.content.previews import PREVIEW_SANDBOX, preview_document
from messaging.content.starter import starter_body
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.models import AuditEntry, Template, TemplateVersion

pytestmark = pytest.mark.django_db
ADD = "/admin/messaging/template/add/"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


def html(response) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.content.decode())


def editor(template: Template) -> str:
    return f"/admin/messaging/template/{template.pk}/editor/"


def flashed(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


# --- the add form ----------------------------------------------------------------------------
def test_a_new_template_defaults_to_a_marketing_category_and_a_configured_language(client, marketer):
    client.force_login(marketer)
    page = html(client.get(ADD))
    [category] = page.cssselect('select[name="category"]')
    assert [g.get("label") for g in category.cssselect("optgroup")] == ["Marketing", "Transactional"]
    assert [o.get("value") for o in category.cssselect("option[selected]")] == ["newsletter"]
    assert [o.get("value") for o in category.cssselect('optgroup[label="Marketing"] option')] == ["newsletter", "promotion", "lifecycle"]
    [language] = page.cssselect('select[name="locale"]')
    assert [o.get("value") for o in language.cssselect("option")] == [code for code, _name in settings.LANGUAGES]
    assert [o.get("value") for o in language.cssselect("option[selected]")] == [settings.LANGUAGE_CODE]
    assert "border" in category.get("class").split() and "border" in language.get("class").split()


def test_adding_a_template_keeps_the_marketing_default_and_opens_the_editor(client, marketer):
    client.force_login(marketer)
    response = client.post(ADD, {"key": "spring", "name": "Spring sale", "locale": "fr", "category": "newsletter", "channel": "email"})
    template = Template.objects.get(key="spring")
    assert response.status_code == 302 and response["Location"] == editor(template)
    assert (template.category, template.locale) == (Template.Category.NEWSLETTER, "fr")
    assert AuditEntry.objects.filter(verb="created", target_type="messaging.template", target_id=str(template.pk)).exists()


@pytest.mark.parametrize(("field", "value"), [("locale", "de"), ("locale", "en-xx"), ("category", "spam"), ("category", "marketing")])
def test_a_language_or_category_outside_the_choices_is_refused_and_nothing_is_created(client, marketer, field, value):
    client.force_login(marketer)
    audits = AuditEntry.objects.count()
    data = {"key": "spring", "name": "Spring sale", "locale": "en", "category": "newsletter", "channel": "email"} | {field: value}
    response = client.post(ADD, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [f"Select a valid choice. {value} is not one of the available choices."]
    assert not Template.objects.exists() and AuditEntry.objects.count() == audits


def test_the_api_default_category_is_unchanged(marketer):
    # only the console's form changed its default; the action (and the API) keep theirs
    assert create_template(actor=marketer, key="api", name="API").category == Template.Category.TRANSACTIONAL


# --- the change form ------------------------------------------------------------------------
def change(template: Template) -> str:
    return f"/admin/messaging/template/{template.pk}/change/"


def test_changing_a_template_in_the_console_goes_through_the_action_and_is_audited(client, marketer):
    template = create_template(actor=marketer, key="spring", name="Spring sale", category="newsletter")
    client.force_login(marketer)
    response = client.post(change(template), {"name": "Spring sale 2", "category": "promotion", "topic": ""})
    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.category) == ("Spring sale 2", Template.Category.PROMOTION)
    entry = AuditEntry.objects.get(verb="changed", target_type="messaging.template", target_id=str(template.pk))
    assert entry.actor == marketer
    assert entry.changes == {
        "name": {"before": "Spring sale", "after": "Spring sale 2"},
        "category": {"before": "newsletter", "after": "promotion"},
    }


def test_the_channel_of_a_template_is_fixed_once_made(client, marketer):
    template = create_template(actor=marketer, key="spring", name="Spring sale", category="newsletter", channel="email")
    client.force_login(marketer)
    response = client.post(change(template), {"name": "Spring sale", "category": "newsletter", "channel": "sms", "topic": ""})
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.channel == "email"
    assert not AuditEntry.objects.filter(verb="changed").exists()


@pytest.mark.parametrize(
    ("channel", "data", "field", "error"),
    [
        ("email", {"name": "   "}, "name", "This field is required."),
        ("whatsapp", {"whatsapp_template_sid": "not a sid!"}, "whatsapp_template_sid", "A Content SID is letters and digits"),
    ],
    ids=["blank name", "bad content sid"],
)
def test_an_invalid_change_shows_the_form_error_and_writes_nothing(client, marketer, channel, data, field, error):
    template = create_template(actor=marketer, key="spring", name="Spring sale", category="newsletter", channel=channel)
    client.force_login(marketer)
    audits = AuditEntry.objects.count()
    form = {"name": "Spring sale", "category": "promotion", "topic": "", "whatsapp_template_sid": "", "whatsapp_variables": "[]"}
    response = client.post(change(template), form | data)
    assert response.status_code == 200
    assert any(error in message for message in response.context["adminform"].form.errors[field])
    template.refresh_from_db()
    assert (template.name, template.category, template.whatsapp_template_sid) == ("Spring sale", Template.Category.NEWSLETTER, "")
    assert AuditEntry.objects.count() == audits


# --- the starter layout ------------------------------------------------------------------------
def test_a_new_email_template_starts_from_the_starter_layout_in_its_language(client, marketer):
    english = create_template(actor=marketer, key="fresh", name="Fresh", category="newsletter")
    french = create_template(actor=marketer, key="fresh", name="Fresh", locale="fr", category="newsletter")
    client.force_login(marketer)
    page = html(client.get(editor(english)))
    body = page.cssselect("textarea#id_body")[0].text_content()
    assert body == starter_body(english) and body.lstrip().startswith("<mjml>")
    for part in ("<mj-section", "{{ unsubscribe_url }}", "{{ preferences_url }}", "{{ view_in_browser_url }}", "{{ site_name }}"):
        assert part in body
    assert page.cssselect("select#id_body_format option[selected]")[0].get("value") == "mjml"
    assert page.cssselect('[data-testid="starter-notice"]')
    # the layout is previewed before anything is saved, and nothing is
    [frame] = page.cssselect('[data-testid="preview-frame"]')
    assert "Your headline" in frame.get("srcdoc") and "Unsubscribe" in frame.get("srcdoc")
    assert not TemplateVersion.objects.exists()
    # a French template starts in French
    assert "Se désinscrire" in html(client.get(editor(french))).cssselect("textarea#id_body")[0].text_content()


def test_the_starter_layout_saves_as_is_and_satisfies_the_marketing_checks(marketer):
    template = create_template(actor=marketer, key="fresh", name="Fresh", category="newsletter")
    version = save_template_version(actor=marketer, template=template, subject="Hello", body_format="mjml", body=starter_body(template))
    assert 'href="{{ unsubscribe_url }}"' in version.compiled_html
    assert "@media" in version.compiled_html  # MJML's responsive rules


def test_mjml_with_a_head_saves_from_a_browser_that_posts_crlf_line_ends(client, marketer):
    # browsers send textareas with CRLF; mjml-python refused a CR inside <mj-head>
    template = create_template(actor=marketer, key="fresh", name="Fresh", category="newsletter")
    body = starter_body(template).replace("\n", "\r\n")
    client.force_login(marketer)
    response = client.post(editor(template), {"action": "save", "subject": "Hello", "body_format": "mjml", "body": body}, follow=True)
    assert flashed(response)[0] == "Saved as version 1."
    assert "Your headline" in TemplateVersion.objects.get(template=template).compiled_html


def test_sms_templates_and_templates_with_versions_do_not_get_the_starter(client, marketer):
    sms = create_template(actor=marketer, key="sms", name="SMS", channel="sms")
    saved = create_template(actor=marketer, key="saved", name="Saved")
    save_template_version(actor=marketer, template=saved, subject="S", body_format="html", body="<p>Mine</p>")
    client.force_login(marketer)
    assert html(client.get(editor(sms))).cssselect("textarea#id_body")[0].text_content() == ""
    page = html(client.get(editor(saved)))
    assert page.cssselect("textarea#id_body")[0].text_content() == "<p>Mine</p>"
    assert not page.cssselect('[data-testid="starter-notice"]')


# --- save and activate -----------------------------------------------------------------------
CONTENT = {"subject": "Hi {{ contact.first_name }}", "body_format": "html", "body": "<p>Hello</p>", "note": ""}


def test_save_and_activate_saves_a_version_and_makes_it_the_active_one(client, marketer):
    template = create_template(actor=marketer, key="t", name="T")
    client.force_login(marketer)
    page = html(client.get(editor(template)))
    assert page.cssselect('button[name="action"][value="save_activate"]')[0].text_content().strip() == "Save and activate"
    response = client.post(editor(template), {**CONTENT, "action": "save_activate"}, follow=True)
    version = TemplateVersion.objects.get(template=template)
    template.refresh_from_db()
    assert template.active_version == version and template.is_active
    assert flashed(response) == ["Saved as version 1. It is the active version."]
    assert list(
        AuditEntry.objects.filter(target_type="messaging.template", target_id=str(template.pk))
        .values_list("verb", flat=True)
        .order_by("pk")
    ) == [
        "created",
        "saved version",
        "activated",
    ]
    assert not html(response).cssselect('[data-testid="not-active-notice"]')


def test_saving_without_activating_says_the_new_version_is_not_the_active_one(client, marketer):
    template = create_template(actor=marketer, key="t", name="T")
    first = save_template_version(actor=marketer, template=template, subject="S", body_format="html", body="<p>One</p>")
    activate_template_version(actor=marketer, version=first)
    client.force_login(marketer)
    response = client.post(editor(template), {**CONTENT, "action": "save"}, follow=True)
    notice = "The latest version (v2) is not the active one: messages still use v1."
    assert flashed(response) == ["Saved as version 2."]
    assert html(response).cssselect('[data-testid="not-active-notice"]')[0].text_content() == notice
    template.refresh_from_db()
    assert template.active_version == first
    # and "Save and activate" of the same content activates it without a new version
    response = client.post(editor(template), {**CONTENT, "action": "save_activate"}, follow=True)
    template.refresh_from_db()
    assert template.active_version.number == 2 and template.versions.count() == 2
    assert not html(response).cssselect('[data-testid="not-active-notice"]')


def test_the_notice_names_a_template_with_no_active_version(client, marketer):
    template = create_template(actor=marketer, key="t", name="T")
    client.force_login(marketer)
    response = client.post(editor(template), {**CONTENT, "action": "save"}, follow=True)
    expected = "No version is active: nothing is sent from this template until you activate one."
    assert flashed(response) == ["Saved as version 1."]
    assert html(response).cssselect('[data-testid="not-active-notice"]')[0].text_content() == expected


def test_save_and_activate_of_a_broken_template_saves_and_activates_nothing(client, marketer):
    template = create_template(actor=marketer, key="t", name="T")
    first = save_template_version(actor=marketer, template=template, subject="S", body_format="html", body="<p>One</p>")
    activate_template_version(actor=marketer, version=first)
    audits = AuditEntry.objects.count()
    client.force_login(marketer)
    response = client.post(editor(template), {**CONTENT, "body": "<p>\n{% for x in y %}</p>", "action": "save_activate"})
    assert response.status_code == 200
    assert any("Line 2 of the body" in message for message in flashed(response))
    # what she typed is still in the editor
    assert "{% for x in y %}" in html(response).cssselect("textarea#id_body")[0].text_content()
    template.refresh_from_db()
    assert template.active_version == first and template.versions.count() == 1 and AuditEntry.objects.count() == audits


# --- preview frames --------------------------------------------------------------------------
def test_the_preview_document_opens_links_in_a_new_tab_without_an_opener():
    framed = preview_document('<html><head><title>x</title></head><body><a href="https://a.example/">A</a></body></html>')
    assert framed.startswith('<html><head><base target="_blank"><title>')
    assert '<a rel="noopener noreferrer" href="https://a.example/">' in framed
    # a link with its own rel keeps it; a fragment without <head> still gets the base first
    assert preview_document('<p><a rel="nofollow" href="/x">x</a></p>') == '<base target="_blank"><p><a rel="nofollow" href="/x">x</a></p>'
    assert preview_document("<!DOCTYPE html><html lang=en><body></body></html>") == (
        '<!DOCTYPE html><html lang=en><head><base target="_blank"></head><body></body></html>'
    )
    assert preview_document("<header><abbr>x</abbr></header>") == '<base target="_blank"><header><abbr>x</abbr></header>'
    assert preview_document("") == ""


def test_the_editor_preview_frame_allows_popups_but_no_scripts_and_the_saved_html_is_untouched(client, marketer):
    template = create_template(actor=marketer, key="t", name="T")
    body = '<html><head></head><body><a href="https://shop.example/">Shop</a></body></html>'
    version = save_template_version(actor=marketer, template=template, subject="S", body_format="html", body=body)
    client.force_login(marketer)
    [frame] = html(client.get(editor(template))).cssselect('[data-testid="preview-frame"]')
    assert frame.get("sandbox").split() == PREVIEW_SANDBOX.split() == ["allow-popups", "allow-popups-to-escape-sandbox"]
    srcdoc = frame.get("srcdoc")
    assert '<base target="_blank">' in srcdoc and '<a rel="noopener noreferrer" href="https://shop.example/">' in srcdoc
    version.refresh_from_db()
    assert "<base" not in version.compiled_html and "noopener" not in version.compiled_html


def test_the_sandbox_inbox_preview_frame_opens_links_in_a_new_tab():
    frame = preview_iframe('<p><a href="https://shop.example/">Shop</a></p>')
    assert re.search(r'<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="&lt;base target=&quot;_blank&quot;&gt;', frame)
    assert "allow-scripts" not in frame and "allow-same-origin" not in frame
