"""Templates: versions, compile-once rendering, safety, locale fallback, diff, editor views."""

import pytest

from messaging.content import merge_tags, rendering
from messaging.content.merge_tags import register_merge_tag, sample_context
from messaging.content.versions import (
    activate_template_version,
    create_template,
    deactivate_template,
    diff_versions,
    duplicate_template,
    pick_template,
    restore_template_version,
    save_template_version,
)
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import AuditEntry, OutboxMessage, SandboxMessage, Template, TemplateVersion

pytestmark = pytest.mark.django_db

MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hello {{ contact.first_name|default:"friend" }}, order {{ order.number }}</mj-text>
<mj-button href="{{ order.url }}">Track</mj-button>
</mj-column></mj-section></mj-body></mjml>"""


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


@pytest.fixture
def template(marketer):
    return create_template(actor=marketer, key="order-shipped", name="Order shipped", locale="en")


def save(template, actor=None, **overrides):
    content = {"subject": "Your order {{ order.number }}", "body": MJML, "body_format": "mjml"} | overrides
    return save_template_version(actor=actor, template=template, **content)


# --- versions --------------------------------------------------------------------------------
def test_saving_creates_numbered_immutable_versions_and_audits(template, marketer):
    first = save(template, marketer)
    second = save(template, marketer, subject="Shipped: {{ order.number }}")
    assert (first.number, second.number) == (1, 2)
    assert AuditEntry.objects.filter(verb="saved version", actor=marketer).count() == 2
    first.subject = "tampered"
    with pytest.raises(TypeError, match="immutable"):
        first.save()
    assert TemplateVersion.objects.get(pk=first.pk).subject == "Your order {{ order.number }}"


def test_saving_unchanged_content_makes_no_new_version(template):
    first = save(template)
    assert save(template).pk == first.pk
    assert template.versions.count() == 1


def test_compiled_html_is_inlined_and_keeps_template_tags_intact(template):
    version = save(template)
    assert 'href="{{ order.url }}"' in version.compiled_html  # not URL-encoded by the inliner
    assert "style=" in version.compiled_html and "fonts.googleapis" not in version.compiled_html
    assert "Hello" in version.compiled_text  # text part generated from the HTML


def test_a_second_render_does_not_recompile(template, monkeypatch):
    version = save(template)
    rendering.compiled_templates.cache_clear()
    rendering.render_version(version, {"order": {"number": "A1", "url": "https://x.test/a1"}})
    calls = []
    monkeypatch.setattr(rendering, "parse_parts", lambda **parts: calls.append(parts))
    rendered = rendering.render_version(version, {"order": {"number": "A2", "url": "https://x.test/a2"}})
    assert calls == [] and "A2" in rendered.html


def test_activate_deactivate_restore_duplicate(template, marketer):
    first = save(template, marketer)
    second = save(template, marketer, subject="v2 {{ order.number }}")
    activate_template_version(actor=marketer, version=first)
    template.refresh_from_db()
    assert template.active_version == first
    restored = restore_template_version(actor=marketer, version=first)
    assert restored.number == 3 and restored.subject == first.subject and "Restored from version 1" in restored.note
    with pytest.raises(NotAllowed):
        restore_template_version(actor=marketer, version=first)  # already the latest content
    copy = duplicate_template(actor=marketer, template=template, key="order-shipped-copy")
    assert copy.versions.get().subject == first.subject
    deactivate_template(actor=marketer, template=template)
    template.refresh_from_db()
    assert not template.is_active and second.pk


# --- rendering and safety -------------------------------------------------------------------
def test_missing_variables_render_empty_and_are_reported_never_crash(template):
    version = save(template)
    rendered = rendering.render_version(version, {"contact": {"first_name": "Ada"}})
    assert rendered.missing == ["order"]
    assert "Hello Ada, order" in rendered.html


def test_context_is_plain_data_even_when_given_objects(template, contact):
    version = save(template, body="<p>{{ who }}</p>", body_format="html")
    rendered = rendering.render_version(version, {"who": contact, "order": {"number": 1}})
    assert "ada@example.com" in rendered.html  # str(contact), not the model


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"body": "<mjml><mj-body><mj-section></mjml>"}, "MJML error"),
        ({"body": "<p>{% if x %}unclosed</p>", "body_format": "html"}, "Line 1 of the body"),
        ({"body": "<p>\n\n{{ x|nosuchfilter }}</p>", "body_format": "html"}, "Line 3 of the body"),
        ({"subject": "{{ settings.SECRET_KEY }}"}, "“settings” is not available"),
        ({"body": "<p>{% debug %}</p>", "body_format": "html"}, "is not allowed"),
        ({"body": "<p>{% include 'admin/base.html' %}</p>", "body_format": "html"}, "is not allowed"),
        ({"body": "<p>" + "x" * (600 * 1024) + "</p>", "body_format": "html"}, "too large"),
        ({"body": "", "subject": "Hi"}, "needs a body"),
    ],
)
def test_bad_templates_are_refused_with_a_clear_error_and_change_nothing(template, overrides, message):
    with pytest.raises(InvalidInput) as error:
        save(template, **overrides)
    assert message in str(error.value)
    assert template.versions.count() == 0
    assert not AuditEntry.objects.filter(verb="saved version").exists()


@pytest.mark.parametrize("source", ['{{ price|floatformat:"" }}', "{{ tags|join:price }}"])
def test_a_filter_argument_django_trips_on_is_a_clear_error(source):
    """Found by hypothesis: inside Django `floatformat:""` raises IndexError, `join:<a number>`
    AttributeError."""
    with pytest.raises(InvalidInput) as error:
        rendering.render_parts(rendering.parse_parts(text=source), {"price": 1.5, "tags": ["a", "b"]})
    assert "could not be rendered" in str(error.value)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_merging_prints_exactly_what_django_would(settings, language):
    """parse_parts swaps VariableNode for a faster node: the output must not change, in
    either language, for text to escape, numbers, booleans, lists, filters and blanks."""
    from django.template import Context
    from django.utils import translation

    source = (
        "{{ name }}|{{ count }}|{{ price }}|{{ ratio }}|{{ flag }}|{{ nothing }}|{{ items }}|{{ nested.value }}|"
        "{{ name|upper }}|{{ price|floatformat:2 }}|{{ missing }}|{{ name|safe }}|{% for i in items %}{{ i }},{% endfor %}"
    )
    data = {"name": "Zoë <b>&\"'", "count": 1234567, "price": 12.5, "ratio": -0.25, "flag": True, "nothing": None,
            "items": ["a<", 2, 3.5], "nested": {"value": 7}}  # fmt: skip
    with translation.override(language):
        for html in (True, False):
            name = "html" if html else "text"
            fast = rendering.render_parts(rendering.parse_parts(**{name: source}), data)
            plain = rendering.engine(html=html).from_string(source).render(Context(rendering.plain_data(data), autoescape=html))
            assert getattr(fast, name) == plain
            assert ("&lt;b&gt;&amp;&quot;&#x27;" in plain) is html


def test_private_attributes_cannot_be_reached(template):
    with pytest.raises(InvalidInput, match="may not begin with underscores"):
        save(template, body="<p>{{ order.__class__.__mro__ }}</p>", body_format="html")
    assert template.versions.count() == 0


# --- locale fallback and sending ------------------------------------------------------------
def test_the_contacts_language_is_picked_with_a_fallback(marketer, contact):
    english = create_template(actor=marketer, key="hello", name="Hello", locale="en")
    activate_template_version(actor=marketer, version=save(english, subject="Hello", body="<p>Hello</p>", body_format="html"))
    assert pick_template(key="hello", locale="fr") == english  # no French yet: default language
    french = create_template(actor=marketer, key="hello", name="Bonjour", locale="fr")
    activate_template_version(actor=marketer, version=save(french, subject="Bonjour", body="<p>Bonjour</p>", body_format="html"))
    assert pick_template(key="hello", locale="fr") == french
    message = enqueue_message(channel="email", contact=contact, template=english)  # contact.locale == "fr"
    assert message.subject == "Bonjour"


def test_enqueue_from_a_template_renders_once_and_sends(marketer, contact, template):
    activate_template_version(actor=marketer, version=save(template))
    template.refresh_from_db()
    message = enqueue_message(
        channel="email", contact=contact, template=template, context={"order": {"number": "A-42", "url": "https://shop.test/a42"}}
    )
    assert message.subject == "Your order A-42"
    assert message.metadata["template_version"] == template.active_version_id
    send_due_messages()
    caught = SandboxMessage.objects.get()
    assert "Hello Ada" in caught.body_html and "shop.test" not in caught.body_html  # the link is tracked


def test_enqueue_from_an_inactive_template_is_refused(marketer, contact, template):
    save(template)
    with pytest.raises(InvalidInput, match="no active version"):
        enqueue_message(channel="email", contact=contact, template=template)
    assert not OutboxMessage.objects.exists()


def test_higher_apps_can_register_merge_tags():
    register_merge_tag("referral.link", description="Referral link", sample="https://example.com/r/ADA")
    assert sample_context()["referral"]["link"] == "https://example.com/r/ADA"


def test_costly_merge_tags_resolve_only_when_the_template_uses_them(marketer, contact, template):
    # given a registered tag whose resolver would cost a query per recipient
    calls = []
    register_merge_tag("testcost.points", description="Points", sample=1, resolve=lambda c: calls.append(c.pk) or 7)
    try:
        activate_template_version(actor=marketer, version=save(template))
        template.refresh_from_db()
        # when a template that does not mention it is sent, then the resolver never runs
        enqueue_message(channel="email", contact=contact, template=template, context={"order": {"number": "1", "url": "https://s.test"}})
        assert calls == []
        # when a version mentions it, then it runs once and its value is merged
        version = save(template, body="<p>{{ testcost.points }} points</p>", body_format="html")
        message = enqueue_message(channel="email", contact=contact, template_version=version, context={"order": {"number": "2"}})
        assert calls == [contact.pk] and "7 points" in message.body_html
    finally:
        merge_tags._registry.pop("testcost.points")


# --- diff -----------------------------------------------------------------------------------------
def test_diff_marks_the_changed_lines(template):
    old = save(template, body="<p>one</p>\n<p>two</p>", body_format="html")
    new = save(template, body="<p>one</p>\n<p>deux</p>\n<p>three</p>", body_format="html")
    table = diff_versions(old=old, new=new, field="body")
    assert "Version 1" in table and "Version 2" in table
    assert 'class="diff_add"' in table or 'class="diff_chg"' in table
    assert "deux" in table and "three" in table
    assert diff_versions(old=old, new=old, field="body").count("diff_chg") == 0


# --- editor views ----------------------------------------------------------------------------------
def test_editor_preview_renders_without_saving(client, marketer, template):
    client.force_login(marketer)
    response = client.post(
        f"/admin/messaging/template/{template.pk}/editor/preview/",
        {"subject": "Hi {{ contact.first_name }}", "body": "<p>Hey {{ missing_thing }}</p>", "body_format": "html"},
    )
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page[:200]
    assert 'data-testid="preview-subject">Hi Ada<' in page
    assert "missing_thing" in page and "<iframe sandbox" in page
    assert "&lt;p&gt;Hey" in page  # the preview is escaped into srcdoc, never live in the console
    assert template.versions.count() == 0


def test_editor_preview_shows_the_error_line(client, marketer, template):
    client.force_login(marketer)
    response = client.post(
        f"/admin/messaging/template/{template.pk}/editor/preview/", {"body": "<p>\n{% for x in y %}</p>", "body_format": "html"}
    )
    assert "Line 2 of the body" in response.content.decode()


def test_editor_save_activate_and_view_only_roles(client, marketer, approver, template):
    client.force_login(marketer)
    response = client.post(
        f"/admin/messaging/template/{template.pk}/editor/",
        {"action": "save", "subject": "S", "body": "<p>B</p>", "body_format": "html", "note": "first"},
    )
    assert response.status_code == 302
    version = template.versions.get()
    client.post(f"/admin/messaging/template/{template.pk}/editor/", {"action": "activate", "version": version.pk})
    assert Template.objects.get(pk=template.pk).active_version == version
    client.force_login(approver)
    assert client.get(f"/admin/messaging/template/{template.pk}/editor/").status_code == 403
    assert client.get(f"/admin/messaging/template/{template.pk}/versions/diff/").status_code == 200


def test_editor_test_send_goes_to_the_sandbox_now(client, marketer, template):
    save(template)
    client.force_login(marketer)
    response = client.post(f"/admin/messaging/template/{template.pk}/editor/test-send/", {"to": "qa@example.com"})
    assert 'data-testid="test-send-result"' in response.content.decode()
    caught = SandboxMessage.objects.get()
    assert caught.to_address == "qa@example.com" and caught.subject.startswith("Your order")
    client.post(f"/admin/messaging/template/{template.pk}/editor/test-send/", {"to": "a@example.com, b@example.com"})
    assert set(SandboxMessage.objects.values_list("to_address", flat=True)) == {"qa@example.com", "a@example.com", "b@example.com"}
    bad = client.post(f"/admin/messaging/template/{template.pk}/editor/test-send/", {"to": "nope"})
    assert "not a valid email" in bad.content.decode()
