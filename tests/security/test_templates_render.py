"""Template rendering under attack: a template that would run for minutes (nested loops over
long strings) is stopped by the render budget with a clear "too much work" error in the
editor, at save and at send; a filter argument naming a missing variable
(`|default:nickname`) renders empty and is reported missing instead of a server error."""

import time

import pytest
from rest_framework.test import APIClient

from messaging.contacts import create_contact
from messaging.content.rendering import engine, render_parts
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput
from messaging.models import OutboxMessage, SandboxMessage, TemplateVersion

pytestmark = pytest.mark.django_db


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


Status = OutboxMessage.Status

LONG = "x" * 500
# Three nested loops over 500-character strings: 125 million iterations, 18 s of CPU before.
NESTED_LOOPS = (
    f'<p>{{% for a in "{LONG}" %}}{{% for b in "{LONG}" %}}{{% for c in "{LONG}" %}}{{{{ c }}}}'
    "{% endfor %}{% endfor %}{% endfor %}</p>"
)
# The same loops over merge data: harmless with the editor's samples, a bomb with the data sent.
NESTED_DATA_LOOPS = "<p>{% for a in items %}{% for b in items %}{% for c in items %}.{% endfor %}{% endfor %}{% endfor %}</p>"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


@pytest.fixture
def template(marketer):
    return create_template(actor=marketer, key="digest", name="Digest", locale="en")


def test_nested_loops_over_long_strings_in_the_editor_preview_answer_quickly_with_too_much_work(client, marketer, template):
    client.force_login(marketer)
    started = time.monotonic()
    response = client.post(
        f"/admin/messaging/template/{template.pk}/editor/preview/", {"subject": "Hi", "body": NESTED_LOOPS, "body_format": "html"}
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    page = response.content.decode()
    assert "too much work" in page and "body" in page
    assert elapsed < 5, elapsed
    assert template.versions.count() == 0


def test_saving_a_version_with_nested_loops_over_long_strings_is_refused_with_too_much_work(marketer, template):
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="too much work") as refused:
        save_template_version(actor=marketer, template=template, subject="Hi", body_format="html", body=NESTED_LOOPS)
    assert time.monotonic() - started < 5
    assert refused.value.code == "template_too_much_work" and "body" in refused.value.fields
    assert not TemplateVersion.objects.exists()


def test_saving_nested_loops_through_the_editor_shows_too_much_work_and_saves_nothing(client, marketer, template):
    client.force_login(marketer)
    response = client.post(
        f"/admin/messaging/template/{template.pk}/editor/",
        {"action": "save", "subject": "Hi", "body": NESTED_LOOPS, "body_format": "html"},
        follow=True,
    )
    assert response.status_code == 200 and "too much work" in response.content.decode()
    assert template.versions.count() == 0


def test_nested_loops_in_a_subject_or_text_part_are_stopped_too():
    for part in ("subject", "text", "sms"):
        with pytest.raises(InvalidInput, match="too much work"):
            render_parts({part: engine(html=False).from_string(NESTED_LOOPS)}, {})


def test_a_loop_whose_output_would_be_huge_is_stopped_by_the_output_cap(settings):
    settings.MAILROOM_RENDER_MAX_OUTPUT = 100_000
    big = "y" * 5_000
    source = f"{{% for a in items %}}{big}{{% endfor %}}"
    with pytest.raises(InvalidInput, match="too much work"):
        render_parts({"html": engine(html=True).from_string(source)}, {"items": list(range(100))})
    assert len(render_parts({"html": engine(html=True).from_string(source)}, {"items": list(range(10))}).html) == 50_000


def test_join_cannot_multiply_a_string_past_the_output_cap(settings):
    settings.MAILROOM_RENDER_MAX_OUTPUT = 100_000
    source = "{{ items|join:sep }}"
    with pytest.raises(InvalidInput, match="too much work"):
        render_parts({"text": engine(html=False).from_string(source)}, {"items": ["a"] * 1000, "sep": "z" * 1000})


def test_partials_cannot_multiply_a_template(marketer, template):
    bomb = "{% partialdef a %}xxxxxxxxxx{% endpartialdef %}{% partialdef b %}{% partial a %}{% partial a %}{% endpartialdef %}"
    with pytest.raises(InvalidInput, match="partialdef"):
        save_template_version(actor=marketer, template=template, subject="Hi", body_format="html", body=bomb)


def test_an_ordinary_newsletter_loop_is_well_within_the_budget(marketer, template):
    version = save_template_version(
        actor=marketer,
        template=template,
        subject="Hi",
        body_format="html",
        body="<ul>{% for item in items %}<li>{{ forloop.counter }}. {{ item.name|upper }} {% for tag in item.tags %}#{{ tag }} {% endfor %}</li>{% endfor %}</ul>",
    )
    items = [{"name": f"product {n}", "tags": ["new", "sale", "eco"]} for n in range(200)]
    rendered = render_parts({"html": engine(html=True).from_string(version.compiled_html)}, {"items": items})
    assert "200. PRODUCT 199 #new #sale #eco" in rendered.html


def test_a_deferred_message_whose_merge_data_makes_the_loops_explode_fails_at_send_with_too_much_work(marketer, template):
    # given a version that saved fine (the editor's samples have no `items`), and a batch where
    # one message's merge data turns its loops into 125 million iterations
    bomb = save_template_version(actor=marketer, template=template, subject="Digest", body_format="html", body=NESTED_DATA_LOOPS)
    other = create_template(actor=marketer, key="hello", name="Hello", locale="en")
    fine = save_template_version(
        actor=marketer, template=other, subject="Hello {{ name }}", body_format="html", body="<p>Hi {{ name }}</p>"
    )
    before = enqueue_message(channel="email", to="a@example.com", subject="Plain", text="plain")
    exploding = enqueue_message(
        channel="email",
        to="b@example.com",
        text="(rendered when sent)",
        metadata={"render": {"version": bomb.pk, "subject": "", "context": {"items": LONG}}},
    )
    deferred = enqueue_message(
        channel="email",
        to="c@example.com",
        text="(rendered when sent)",
        metadata={"render": {"version": fine.pk, "subject": "", "context": {"name": "Cy"}}},
    )
    # when the real drain runs
    started = time.monotonic()
    send_due_messages()
    assert time.monotonic() - started < 10
    # then the exploding message failed with the clear error and the others were sent
    failed = OutboxMessage.objects.get(pk=exploding.pk)
    assert failed.status == Status.FAILED and "too much work" in failed.error, failed.error
    assert OutboxMessage.objects.get(pk=before.pk).status == Status.SENT
    sent = OutboxMessage.objects.get(pk=deferred.pk)
    assert sent.status == Status.SENT and sent.subject == "Hello Cy"
    assert set(SandboxMessage.objects.values_list("to_address", flat=True)) == {"a@example.com", "c@example.com"}


def test_enqueueing_a_template_whose_merge_data_makes_the_loops_explode_is_refused(marketer, template, ops, contact):
    version = save_template_version(actor=marketer, template=template, subject="Digest", body_format="html", body=NESTED_DATA_LOOPS)
    activate_template_version(actor=marketer, version=version)
    with pytest.raises(InvalidInput, match="too much work"):
        enqueue_message(channel="email", contact=contact, template=template, context={"items": LONG})
    assert not OutboxMessage.objects.exists()


# --- a filter argument naming a missing variable ------------------------------------------------
DEFAULT_NICKNAME = "Hi {{ contact.first_name|default:nickname }}!"


@pytest.fixture
def nameless(db):
    return create_contact(actor=None, email="nameless@example.com", first_name="")


@pytest.fixture
def nickname_template(marketer):
    template = create_template(actor=marketer, key="nick", name="Nick", locale="en")
    version = save_template_version(
        actor=marketer, template=template, subject=DEFAULT_NICKNAME, body_format="html", body=f"<p>{DEFAULT_NICKNAME}</p>"
    )
    activate_template_version(actor=marketer, version=version)
    return template


def test_default_filter_with_a_missing_variable_argument_renders_empty_and_is_reported():
    rendered = render_parts({"text": engine(html=False).from_string(DEFAULT_NICKNAME)}, {"contact": {"first_name": ""}})
    assert rendered.text == "Hi !" and rendered.missing == ["nickname"]
    rendered = render_parts({"text": engine(html=False).from_string(DEFAULT_NICKNAME)}, {"contact": {"first_name": "Ada"}})
    assert rendered.text == "Hi Ada!" and rendered.missing == ["nickname"]
    nested = render_parts({"text": engine(html=False).from_string("{{ a|default:contact.nick }}")}, {"contact": {}})
    assert nested.text == "" and nested.missing == ["a", "contact.nick"]


def test_missing_filter_argument_in_other_tags_is_not_a_server_error():
    source = "{% with n=x|default:nickname %}[{{ n }}]{% endwith %}{% for i in y|default:nickname %}{{ i }}{% endfor %}"
    rendered = render_parts({"text": engine(html=False).from_string(source)}, {"x": ""})
    assert rendered.text == "[]" and "nickname" in rendered.missing


def test_default_with_a_missing_variable_in_the_editor_preview_renders_empty_and_names_it(client, marketer, template, nameless):
    client.force_login(marketer)
    response = client.post(
        f"/admin/messaging/template/{template.pk}/editor/preview/",
        {"subject": DEFAULT_NICKNAME, "body": "<p>x</p>", "body_format": "html", "sample_contact": nameless.pk},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="preview-subject">Hi !<' in page and "nickname" in page


def test_default_with_a_missing_variable_on_single_send_renders_empty_and_is_reported(ops, nameless, nickname_template):
    response = as_user(ops).post("/api/v1/messages/", {"contact": nameless.pk, "template": "nick"}, format="json")
    assert response.status_code == 201, response.content
    message = OutboxMessage.objects.get(pk=response.json()["id"])
    assert message.subject == "Hi !" and message.metadata["missing_variables"] == ["nickname"]
    # raw content is strict, like any other missing variable: a 400 naming it, never a 500
    response = as_user(ops).post("/api/v1/messages/", {"to": "x@example.com", "text": DEFAULT_NICKNAME}, format="json")
    assert response.status_code == 400 and "nickname" in response.json()["detail"]
    assert OutboxMessage.objects.count() == 1


def test_default_with_a_missing_variable_in_the_bulk_api_renders_empty_and_is_reported(ops, nameless, nickname_template):
    response = as_user(ops).post("/api/v1/messages/bulk/", {"key": "nick-1", "template": "nick", "contacts": [nameless.pk]}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["queued"] == 1
    message = OutboxMessage.objects.get()
    assert message.subject == "Hi !" and message.metadata["missing_variables"] == ["nickname"]
    response = as_user(ops).post(
        "/api/v1/messages/bulk/", {"key": "nick-2", "text": DEFAULT_NICKNAME, "recipients": ["y@example.com"]}, format="json"
    )
    assert response.status_code == 202 and "nickname" in response.json()["skipped"]["y@example.com"]


def test_default_with_a_missing_variable_in_a_deferred_render_is_sent_and_reported(marketer, nickname_template):
    version = nickname_template.versions.get()
    message = enqueue_message(
        channel="email", to="d@example.com", text="(rendered when sent)", metadata={"render": {"version": version.pk, "subject": ""}}
    )
    send_due_messages()
    message.refresh_from_db()
    assert message.status == Status.SENT and message.subject == "Hi !" and "nickname" in message.metadata["missing_variables"]
