"""The template catalog (templates/email/): every key loads in English and French, syncing
again only versions what changed, and every template renders with nothing missing."""

import io
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from messaging.contacts import create_contact
from messaging.content import rendering
from messaging.content.catalog import catalog_root, sync_catalog
from messaging.content.merge_tags import sample_context
from messaging.delivery.outbox import enqueue_message
from messaging.errors import InvalidInput
from messaging.models import Template, TemplateVersion, Topic, TrackedLink

pytestmark = pytest.mark.django_db

LOCALES = {"en", "fr"}
SMS_LIMIT = 300
TOPICS = {
    "account": Topic.Kind.TRANSACTIONAL,
    "product-news": Topic.Kind.MARKETING,
    "promotions": Topic.Kind.MARKETING,
    "reminders": Topic.Kind.MARKETING,
    "progress-reports": Topic.Kind.MARKETING,
    "newsletter": Topic.Kind.MARKETING,
}

APPOINTMENT = {"when": "Tuesday 14 May, 10:30", "location": "12 rue de la Paix, Paris", "manage_url": "https://example.com/a/42/"}

# Each template's own variables (the contact and the links come from sample_context()).
SAMPLES: dict[str, dict] = {
    "verify-email": {"verify_url": "https://example.com/verify/t0k3n/"},
    "signup-confirmation": {"confirm_url": "https://example.com/f/c/t0k3n/"},
    "password-reset": {"reset_url": "https://example.com/reset/t0k3n/", "expires_in_hours": 2},
    "unsubscribe-confirmation": {},
    "welcome": {"start_url": "https://example.com/start/"},
    "enrollment": {"course": {"title": "Spanish for Beginners", "url": "https://example.com/c/spanish/"}},
    "post-demo": {"demo": {"date": "3 May 2026"}, "booking_url": "https://example.com/book/"},
    "payment-confirmation": {"order": {"number": "A-1042", "total": "49.90", "currency": "EUR"}},
    "invoice": {"invoice": {"number": "INV-2026-0042", "url": "https://example.com/i/0042.pdf"}},
    "account-activation": {"activation_url": "https://example.com/activate/t0k3n/"},
    "weekly-progress": {
        "progress": {
            "week": "11 May 2026",
            "lessons_completed": 4,
            "minutes": 95,
            "highlights": ["Finished unit 3", "Seven-day streak"],
            "url": "https://example.com/learn/",
        }
    },
    "new-content": {"content": {"title": "Unit 4: Travel phrases", "url": "https://example.com/c/spanish/4/"}},
    "order-shipped": {
        "order": {"number": "A-1042"},
        "shipment": {"carrier": "Colissimo", "tracking_url": "https://example.com/track/6A123/"},
    },
    "payment-failed": {"order": {"number": "A-1042"}, "retry_url": "https://example.com/pay/A-1042/"},
    "booking-confirmation": {"appointment": APPOINTMENT},
    "appointment-reminder-24h": {"appointment": APPOINTMENT},
    "appointment-reminder-2h": {"appointment": APPOINTMENT},
    "cart-abandoned": {
        "cart": {
            "items": [{"name": "Linen shirt", "price": "39.00 EUR"}, {"name": "Canvas tote", "price": "15.00 EUR"}],
            "url": "https://example.com/cart/",
        }
    },
    "re-engagement": {"offer": {"code": "BACK15", "url": "https://example.com/shop/?code=BACK15"}},
    "referral-reward": {
        "reward": {"description": "one free month", "code": "REF-7Q2M-K9XD-W4PA", "for_friend": False},
        "referral_url": "https://example.com/r/ADA/",
    },
    "loyalty-points-earned": {"loyalty": {"points": 120, "balance": 860, "tier": "Gold"}},
    "loyalty-points-expiring": {"loyalty": {"expiring_points": 300, "expires_on": "31 May 2026", "url": "https://example.com/rewards/"}},
    "gift-card-delivered": {
        "gift_card": {"amount": "50", "currency": "EUR", "code": "GIFT-7Q2M-K9XD", "message": "Happy birthday!", "sender_name": "Grace"}
    },
}
KEYS = set(SAMPLES)
SMS_KEYS = {"booking-confirmation", "appointment-reminder-24h", "appointment-reminder-2h", "payment-failed", "order-shipped"}


@pytest.fixture(autouse=True)
def topics(db) -> dict[str, Topic]:
    return {key: Topic.objects.get_or_create(key=key, defaults={"name": key, "kind": kind})[0] for key, kind in TOPICS.items()}


@pytest.fixture(autouse=True)
def _fresh_render_cache():
    rendering.compiled_templates.cache_clear()
    yield
    rendering.compiled_templates.cache_clear()


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    root = tmp_path / "email"
    shutil.copytree(catalog_root(), root)
    return root


def sync_templates() -> str:
    out = io.StringIO()
    call_command("sync_templates", stdout=out)
    return out.getvalue()


def versions_by_template() -> dict[tuple[str, str], list[int]]:
    result: dict[tuple[str, str], list[int]] = {}
    for key, locale, number in TemplateVersion.objects.values_list("template__key", "template__locale", "number"):
        result.setdefault((key, locale), []).append(number)
    return {name: sorted(numbers) for name, numbers in result.items()}


def leaves(value) -> list[str]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    if isinstance(value, bool):
        return []  # a flag that picks a wording, not text that shows
    return [str(value)]


def context_for(key: str) -> dict:
    return sample_context() | SAMPLES[key]


def render(key: str, locale: str) -> rendering.Rendered:
    template = Template.objects.get(key=key, locale=locale)
    return rendering.render_version(template.active_version, context_for(key))


# --- loading -----------------------------------------------------------------------------
def test_sync_templates_loads_every_key_in_english_and_french_each_with_an_active_version():
    # when
    output = sync_templates()
    # then
    assert f"{len(KEYS) * 2} created" in output
    assert set(Template.objects.values_list("key", flat=True)) == KEYS
    for key in KEYS:
        templates = Template.objects.filter(key=key)
        assert {t.locale for t in templates} == LOCALES, key
        for template in templates:
            assert template.is_active and template.from_catalog, template
            assert template.active_version is not None and template.active_version.number == 1, template


def test_catalog_headers_give_each_template_a_known_category_and_topic(topics):
    # when
    sync_templates()
    # then
    for template in Template.objects.select_related("topic"):
        assert template.category in {"transactional", "lifecycle", "promotion"}, template
        assert template.topic is not None and template.topic.key in TOPICS, template
        transactional = template.category == "transactional"
        assert (template.topic.kind == Topic.Kind.TRANSACTIONAL) == transactional, template
    # both languages of a key agree
    for key in KEYS:
        en, fr = (Template.objects.get(key=key, locale=locale) for locale in ("en", "fr"))
        assert (en.category, en.topic_id) == (fr.category, fr.topic_id), key


def test_running_sync_templates_twice_creates_no_new_versions():
    # given
    sync_templates()
    before = versions_by_template()
    # when
    output = sync_templates()
    # then
    assert f"0 created, 0 updated, {len(KEYS) * 2} unchanged" in output
    assert versions_by_template() == before


def test_changing_one_file_creates_and_activates_one_new_version_of_that_template_only(catalog_copy):
    # given
    sync_catalog(root=catalog_copy)
    before = versions_by_template()
    path = catalog_copy / "invoice" / "fr.mjml"
    path.write_text(path.read_text(encoding="utf-8").replace("Votre facture est disponible", "Votre facture est prête"), encoding="utf-8")
    # when
    report = sync_catalog(root=catalog_copy)
    # then
    assert (report.created, report.updated, report.unchanged) == (0, 1, len(KEYS) * 2 - 1)
    after = versions_by_template()
    assert after.pop(("invoice", "fr")) == [1, 2]
    before.pop(("invoice", "fr"))
    assert after == before
    invoice = Template.objects.get(key="invoice", locale="fr")
    assert invoice.active_version.number == 2
    assert "Votre facture est prête" in invoice.active_version.compiled_html
    assert Template.objects.get(key="invoice", locale="en").active_version.number == 1


def test_a_malformed_header_line_is_refused_naming_the_file_and_the_line(catalog_copy):
    # given: line 4 of the file (the third header line) has no "name: value" form
    path = catalog_copy / "welcome" / "en.mjml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = "topic product-news\n"
    path.write_text("".join(lines), encoding="utf-8")
    # when / then
    with pytest.raises(InvalidInput) as error:
        sync_catalog(root=catalog_copy)
    assert str(path) in str(error.value)
    assert "line 4" in str(error.value)


def test_an_unknown_header_key_is_refused_naming_the_file_and_the_line(catalog_copy):
    # given
    path = catalog_copy / "invoice" / "en.mjml"
    path.write_text(path.read_text(encoding="utf-8").replace("topic: account\n", "topic: account\nsender: billing\n"), encoding="utf-8")
    # when / then
    with pytest.raises(InvalidInput, match=r"invoice/en\.mjml line 5"):
        sync_catalog(root=catalog_copy)


def test_changing_only_the_header_topic_updates_the_template(catalog_copy, topics):
    # given
    sync_catalog(root=catalog_copy)
    path = catalog_copy / "new-content" / "en.mjml"
    path.write_text(path.read_text(encoding="utf-8").replace("topic: newsletter", "topic: product-news"), encoding="utf-8")
    # when
    sync_catalog(root=catalog_copy)
    # then
    assert Template.objects.get(key="new-content", locale="en").topic == topics["product-news"]


def test_one_bad_file_does_not_stop_the_other_files_from_loading(catalog_copy):
    # given
    (catalog_copy / "aaa-broken").mkdir()
    (catalog_copy / "aaa-broken" / "en.mjml").write_text("---\nnot a header line\n---\n<mjml></mjml>\n", encoding="utf-8")
    # when
    with pytest.raises(InvalidInput):
        sync_catalog(root=catalog_copy)
    # then
    assert Template.objects.filter(key="welcome").count() == 2


# --- rendering ---------------------------------------------------------------------------
@pytest.fixture
def one_key(tmp_path: Path):
    """Sync just one key's files (fast), from the real catalog."""

    def load(key: str) -> None:
        root = tmp_path / "email"
        shutil.copytree(catalog_root() / key, root / key)
        sync_catalog(root=root)

    return load


def test_every_catalog_key_has_sample_values_for_its_own_variables():
    assert {path.name for path in catalog_root().iterdir() if path.is_dir()} == KEYS


@pytest.mark.parametrize("key", sorted(KEYS))
def test_every_template_renders_in_english_and_french_with_nothing_missing(key, one_key):
    # given
    one_key(key)
    # when
    en, fr = render(key, "en"), render(key, "fr")
    # then
    for locale, rendered in (("en", en), ("fr", fr)):
        assert rendered.missing == [], (locale, rendered.missing)
        assert rendered.subject.strip() and rendered.preheader.strip(), locale
        assert rendered.html.strip() and rendered.text.strip(), locale
        for part in (rendered.subject, rendered.preheader, rendered.html, rendered.text, rendered.sms):
            assert "{{" not in part and "{%" not in part and "mrtag" not in part, (locale, part)
        assert "fonts.googleapis" not in rendered.html and "<script" not in rendered.html.lower()
        for value in leaves(SAMPLES[key]):
            assert value in rendered.html, (locale, value)  # every variable of the template is used
        assert "Ada" in rendered.html, locale
    # the French one is actually translated
    assert fr.subject != en.subject
    assert fr.html != en.html
    assert fr.text != en.text


@pytest.mark.parametrize("key", sorted(KEYS))
def test_marketing_templates_link_preferences_and_unsubscribe_and_transactional_ones_need_not(key, one_key):
    # given
    one_key(key)
    context = context_for(key)
    for locale in LOCALES:
        template = Template.objects.select_related("topic").get(key=key, locale=locale)
        # when
        html = render(key, locale).html
        # then
        if template.topic.kind == Topic.Kind.MARKETING:
            assert f'href="{context["preferences_url"]}"' in html, locale
            assert f'href="{context["unsubscribe_url"]}"' in html, locale
        else:
            assert context["unsubscribe_url"] not in html, locale


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("weekly-progress", ["Finished unit 3", "Seven-day streak"]),
        ("cart-abandoned", ["Linen shirt", "39.00 EUR", "Canvas tote", "15.00 EUR"]),
    ],
)
def test_loop_templates_list_every_item_in_html_and_text(key, expected, one_key):
    # given
    one_key(key)
    for locale in LOCALES:
        # when
        rendered = render(key, locale)
        # then
        for value in expected:
            assert value in rendered.html and value in rendered.text, (locale, value)


def test_templates_with_an_sms_part_are_exactly_the_sms_keys():
    assert {path.parent.name for path in catalog_root().glob("*/*.sms")} == SMS_KEYS
    for key in SMS_KEYS:
        assert {path.stem for path in (catalog_root() / key).glob("*.sms")} == LOCALES, key


@pytest.mark.parametrize("key", sorted(SMS_KEYS))
def test_sms_parts_render_within_300_characters_in_both_languages(key, one_key):
    # given
    one_key(key)
    # when
    en, fr = render(key, "en"), render(key, "fr")
    # then
    for locale, rendered in (("en", en), ("fr", fr)):
        assert rendered.missing == [], locale
        assert 0 < len(rendered.sms) <= SMS_LIMIT, (locale, len(rendered.sms), rendered.sms)
    assert en.sms != fr.sms


# --- known bugs in messaging/content (reported, not fixed here) ----------------------------
def test_a_double_quoted_default_inside_a_link_survives_in_the_text_part(tmp_path):
    # given
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "en.mjml").write_text(
        "---\nsubject: Probe\n---\n<mjml><mj-body><mj-section><mj-column>"
        '<mj-button href="{{ start_url|default:"https://example.com/start" }}">Start</mj-button>'
        "</mj-column></mj-section></mj-body></mjml>\n",
        encoding="utf-8",
    )
    sync_catalog(root=tmp_path)
    version = Template.objects.get(key="probe").active_version
    # when
    rendered = rendering.render_version(version, {"start_url": "https://example.com/welcome/"})
    # then
    assert 'href="https://example.com/welcome/"' in rendered.html
    assert "Start (https://example.com/welcome/)" in rendered.text


def test_a_cart_without_items_renders_no_rows_rather_than_the_carts_own_fields(one_key):
    # given
    one_key("cart-abandoned")
    context = sample_context() | {"cart": {"url": "https://example.com/cart/", "id": 7}}
    # when
    rendered = rendering.render_version(Template.objects.get(key="cart-abandoned", locale="en").active_version, context)
    # then
    assert rendered.missing == ["cart.items"]
    item_rows = rendered.html.split("Price</th>", 1)[1].split("</table>", 1)[0]
    assert "<td" not in item_rows


def test_the_welcome_email_names_the_site_from_the_settings(one_key, settings):
    # given the product called Acme at its own address
    settings.MAILROOM_SITE_NAME, settings.MAILROOM_SITE_URL = "Acme", "https://acme.test/"
    settings.MAILROOM_SENDER_ADDRESS = "Acme, 1 rue de la Paix, 75002 Paris"
    one_key("welcome")
    ada = create_contact(actor=None, email="ada@example.com", first_name="Ada")
    # when the welcome email is queued for Ada without a start link
    message = enqueue_message(channel="email", contact=ada, template=Template.objects.get(key="welcome", locale="en"))
    # then it greets her with the site's name and links to the site
    assert message.subject == "Welcome to Acme, Ada!"
    assert "example.com/start" not in message.body_html
    assert TrackedLink.objects.filter(url="https://acme.test/").exists()  # the button, behind click tracking
