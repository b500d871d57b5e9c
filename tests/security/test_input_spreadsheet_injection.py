"""CSV injection: a contact named `=HYPERLINK(...)` or `=cmd|...` is exported as text a
spreadsheet will not evaluate, in every export the console offers."""

import csv
import io

import pytest

from messaging.contacts import create_contact
from messaging.spreadsheets import escape_formula

pytestmark = pytest.mark.django_db
EXPORT_URL = "/admin/messaging/contact/export/"
FORMULAE = ['=HYPERLINK("http://x")', "=cmd|' /C calc'!A0", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0"]


def exported_rows(client) -> list[dict[str, str]]:
    page = client.get(EXPORT_URL)
    form = page.context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data["format"] = "0"
    data.update({name: "on" for name in form.fields if name.startswith("contactresource_")})
    response = client.post(EXPORT_URL, data)
    assert response.status_code == 200, response.content[:500]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_contact_export_escapes_formulae_in_names_and_attributes(client, admin_user):
    # given contacts whose names and attributes are spreadsheet formulae
    for index, formula in enumerate(FORMULAE):
        create_contact(actor=None, email=f"f{index}@example.com", first_name=formula, last_name="\t=1+1", phone=f"+3361234567{index}")
    client.force_login(admin_user)
    # when they are exported from the console
    rows = exported_rows(client)
    # then every such cell starts with an apostrophe, and plain values are untouched
    assert sorted(row["first_name"] for row in rows) == sorted("'" + formula for formula in FORMULAE)
    assert {row["last_name"] for row in rows} == {"'\t=1+1"}
    assert {row["phone"] for row in rows} == {f"+3361234567{index}" for index in range(len(FORMULAE))}  # numbers stay importable
    assert all(not row[name].startswith(("=", "+", "-", "@")) for row in rows for name in row if name != "phone")


def test_only_csv_is_offered_for_import_and_export(client, admin_user):
    client.force_login(admin_user)
    choices = [label for _value, label in client.get(EXPORT_URL).context["form"].fields["format"].choices]
    assert choices == ["csv"]
    import_form = client.get("/admin/messaging/contact/import/").context["form"]
    assert "format" not in import_form.fields  # the import reads CSV and nothing else
    assert import_form.fields["import_file"].widget.attrs["accept"] == ".csv,text/csv"


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("=1+1", "'=1+1"),
        ("@A1", "'@A1"),
        ("\r=1", "'\r=1"),
        ("-", "-"),
        ("-5", "-5"),
        ("+33 6 12 34 56 78", "+33 6 12 34 56 78"),
        ("Ada", "Ada"),
        (5, 5),
        (None, None),
    ],
)
def test_escape_formula_follows_owasp(value, escaped):
    assert escape_formula(value) == escaped
