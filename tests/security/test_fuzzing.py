"""Property-based fuzzing (hypothesis) of the four parsers that take text from outside:
the segment rule compiler, the token parser, the CSV importer and the merge-tag renderer.

The property is the same everywhere (DESIGN.md invariant 6): whatever comes in, the
answer is a result or the module's own clear error — never another exception (which would
be a 500), and never state changed half-way. Example counts are kept small enough for CI
(a few seconds each); the database is rolled back after every example."""

import csv
import io
import string

import pytest
from django.db import transaction
from django.utils.html import escape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketing.segments.compiler import contacts_matching
from marketing.segments.fields.registry import segment_fields
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.content.rendering import check_source, render_strict
from messaging.errors import InvalidInput
from messaging.importing import Mode, import_contacts
from messaging.models import AuditEntry, Contact, Subscription, Topic
from messaging.tokens import TokenError, TokenService, conceal_id, reveal_id

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Text that reaches the edges: SQL and JSON-path punctuation, LIKE wildcards, NUL,
# surrogates-free unicode, numbers written as text.
nasty = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "0", "-1", "1e308", "NaN", "2024-02-30", "' OR 1=1 --", "%", "_", "\\", '"', "$.a", "\x00", "١٢", "💌"]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)


@pytest.fixture
def people(db, django_db_blocker):
    newsletter = Topic.objects.create(key="newsletter", name="Newsletter", kind=Topic.Kind.MARKETING)
    ada = create_contact(actor=None, email="ada@example.com", first_name="Ada", attributes={"stage": "lead", "tags": ["vip"], "n": "7"})
    create_contact(actor=None, email="bob@example.com", phone="+33612345678", attributes={"n": 3})
    subscribe(actor=None, contact=ada, topic=newsletter)
    return newsletter


# --- segment rule compiler ------------------------------------------------------------------------
def rules() -> st.SearchStrategy:
    fields = sorted(segment_fields())
    operators = sorted({op for field in segment_fields().values() for op in field.operators} | {"", "drop", "equals"})
    rule = st.fixed_dictionaries(
        {"type": st.just("rule")},
        optional={
            "field": st.one_of(st.sampled_from(fields), nasty),
            "operator": st.one_of(st.sampled_from(operators), nasty),
            "value": nasty,
            "key": st.one_of(st.sampled_from(["stage", "tags", "n", "newsletter", "signed_up"]), nasty),
            "channel": st.one_of(st.sampled_from(["email", "sms"]), nasty),
            "days": nasty,
        },
    )
    junk = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2))
    return st.recursive(
        st.one_of(rule, junk),
        lambda children: st.fixed_dictionaries(
            {"type": st.just("group"), "rules": st.lists(children, max_size=4)}, optional={"op": st.sampled_from(["and", "or", "xor", ""])}
        ),
        max_leaves=8,
    )


@settings(FUZZ, max_examples=80)
@given(tree=st.one_of(rules(), st.dictionaries(st.text(max_size=5), nasty, max_size=3)))
def test_any_rule_tree_compiles_to_a_count_or_a_rule_error(people, tree):
    try:
        with transaction.atomic():  # a database error must not leave the test's transaction broken
            count = contacts_matching(tree).count()
    except InvalidInput as error:
        assert str(error).startswith("Rule") or "rule" in str(error).lower()
    else:
        assert 0 <= count <= 2


# --- token parser -----------------------------------------------------------------------------------
SERVICE = TokenService("mailroom.fuzz", max_age=lambda: 3600, compress=True)


@FUZZ
@given(token=st.one_of(st.text(max_size=200), st.from_regex(r"\A[.A-Za-z0-9_-]{0,60}:[A-Za-z0-9]{0,8}:[A-Za-z0-9_-]{0,50}\Z")))
def test_any_text_is_a_token_error_never_a_crash(token):
    with pytest.raises(TokenError):
        SERVICE.read(token)
    with pytest.raises(TokenError):
        SERVICE.read_id(token, "m")


@FUZZ
@given(data=st.data(), payload=st.dictionaries(st.sampled_from("mcl"), st.integers(1, 2**40).map(conceal_id), min_size=1))
def test_a_tampered_token_never_reads_as_another_payload(data, payload):
    token = SERVICE.make(payload)
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(string.ascii_letters + string.digits + "-_:."))
    tampered = token[:position] + replacement + token[position + 1 :]
    try:
        read = SERVICE.read(tampered)
    except TokenError:
        return
    assert read.data == payload, "a changed token was accepted with different content"


@FUZZ
@given(value=st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.integers(), max_size=2)))
def test_reveal_id_answers_an_id_or_none(value):
    revealed = reveal_id(value)
    assert revealed is None or 0 <= revealed < 2**64


@FUZZ
@given(number=st.integers(0, 2**64 - 1))
def test_concealed_ids_round_trip(number):
    assert reveal_id(conceal_id(number)) == number


# --- CSV importer -------------------------------------------------------------------------------------
COLUMNS = ["email", "phone", "external_id", "first_name", "last_name", "locale", "timezone", "topics", "plan", "Email ", ""]
cell = st.one_of(
    nasty.map(str),
    st.sampled_from(
        ["ada@example.com", "bob@example.com", "+33612345678", "newsletter", "newsletter;ghost", "fr", "Europe/Paris", "x" * 300]
    ),
    st.emails().map(str),
)


@st.composite
def csv_files(draw) -> bytes:
    if draw(st.integers(0, 9)) == 0:  # sometimes: any bytes at all
        return draw(st.binary(max_size=300))
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=len(header) + 1), max_size=8))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"])), errors="replace")


@settings(FUZZ, max_examples=80)
@given(file=csv_files(), mode=st.sampled_from([Mode.ALL_OR_NOTHING, Mode.GOOD_ROWS]))
def test_any_csv_imports_as_chosen_or_is_refused_and_nothing_lands_half_way(people, file, mode):
    before = (Contact.objects.count(), Subscription.objects.count(), AuditEntry.objects.count())
    with transaction.atomic():
        try:
            report = import_contacts(actor=None, stream=io.BytesIO(file), mode=mode)
        except InvalidInput:
            after = (Contact.objects.count(), Subscription.objects.count(), AuditEntry.objects.count())
            assert after == before, "a refused file changed the database"
        else:
            after_contacts = Contact.objects.count()
            if not report.imported:
                assert mode == Mode.ALL_OR_NOTHING and report.errors
                assert (after_contacts, Subscription.objects.count()) == before[:2]
            else:
                assert mode == Mode.GOOD_ROWS or not report.errors
                assert after_contacts == before[0] + report.created
                assert report.created + report.updated + report.bad_rows <= report.rows
                assert all(error.line >= 2 and error.message for error in report.errors)
        transaction.set_rollback(True)


# --- merge-tag renderer ----------------------------------------------------------------------------------
fragments = st.sampled_from(
    ["{{", "}}", "{%", "%}", "{#", "#}", "{{ contact.first_name }}", "{{ x|default:'a' }}", "{% if x %}", "{% endif %}", "{% for i in xs %}",
     "{% endfor %}", "{{ xs.0 }}", "|", ":", "'", '"', "{{ x|truncatechars:n }}", "{{ x|ljust:n }}", "{% with a=x %}", "{% endwith %}",
     "{% cycle 'a' 'b' %}", "{{ x|date:'Y' }}", "{{ n|add:x }}", "{% widthratio n 0 1 %}", "{{ xs|slice:n }}", "{{ x|wordwrap:n }}",
     "{{ n|floatformat:x }}", "{{ x|stringformat:n }}", "{% now x %}", "{{ xs|join:x }}", "{{ x.__class__ }}", "{% load x %}"]
)  # fmt: skip
sources = st.lists(st.one_of(fragments, st.text(max_size=8)), max_size=12).map("".join)
contexts = st.fixed_dictionaries(
    {"x": nasty, "n": nasty, "xs": st.lists(nasty, max_size=3), "contact": st.fixed_dictionaries({"first_name": st.text(max_size=10)})}
)


@FUZZ
@given(source=sources, context=contexts, html=st.booleans())
def test_any_template_source_renders_or_gets_a_clear_error(source, context, html):
    try:
        check_source(source, part="body")
        rendered = render_strict(source, context, html=html)
    except InvalidInput as error:
        assert str(error)
    else:
        assert isinstance(rendered, str) and len(rendered) < 50_000


@FUZZ
@given(value=st.text(max_size=60))
def test_merged_values_are_always_escaped_in_html(value):
    assert render_strict("<p>{{ v }}</p>", {"v": value}, html=True) == f"<p>{escape(value)}</p>"
    assert render_strict("{{ v }}", {"v": value}) == value


def test_a_file_cut_in_the_middle_of_a_character_is_refused_clearly(db):
    """Found by the fuzzer: the last bytes of a UTF-8 sequence missing at the end of the file
    raised UnicodeDecodeError (a 500) instead of the clear encoding error."""
    with pytest.raises(InvalidInput, match="not valid UTF-8 near line 2"):
        import_contacts(actor=None, stream=io.BytesIO("email\nadé@example.com\n".encode()[:-1] + b"\xc2"))
    assert not Contact.objects.exists()
