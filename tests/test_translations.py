"""The French catalogues are complete: every string the code and templates mark for
translation is in locale/fr (makemessages was run after adding it), and every entry of
locale/fr and locale_vendor/fr is translated, not fuzzy, and keeps the English
placeholders. A string added without its French fails here instead of showing English
on a French console or public page."""

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
OURS = BASE / "locale" / "fr" / "LC_MESSAGES" / "django.po"
VENDOR = BASE / "locale_vendor" / "fr" / "LC_MESSAGES" / "django.po"
# The options of the regeneration command written at the top of OURS.
IGNORED = [".venv", "staticfiles", "var", "tests", "bench"]
NOT_COPIED = {".git", ".venv", "var", "staticfiles", "tests", "bench", "locale", "locale_vendor", "test-results", "node_modules"}
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# %(name)s, %d, %s; Django template variables ({{ name }}); str.format fields ({name}).
PLACEHOLDER = re.compile(r"%\(\w+\)[a-z]|%[a-z]|\{\{[^{}]*\}\}|\{\w*\}")


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def key(self) -> tuple[str | None, str]:
        return self.msgctxt, self.msgid

    def __str__(self) -> str:
        return f"line {self.line}: {self.msgid!r}"


def parse_po(path: Path) -> list[Entry]:
    """The live entries of a .po file (obsolete #~ entries and the header left out)."""
    entries: list[Entry] = []
    entry, target = Entry(), None

    def finish() -> None:
        if entry.msgid:
            entries.append(entry)

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
            entry, target = Entry(), None
            continue
        if line.startswith("#~"):
            continue
        if line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            value = ast.literal_eval(line)
        else:
            keyword, _, rest = line.partition(" ")
            value = ast.literal_eval(rest)
            target = keyword
            entry.line = entry.line or number
            if keyword.startswith("msgstr"):
                entry.msgstr[int(keyword[7:-1]) if "[" in keyword else 0] = ""
        if target.startswith("msgstr"):
            index = int(target[7:-1]) if "[" in target else 0
            entry.msgstr[index] += value
        else:
            setattr(entry, target, (getattr(entry, target) or "") + value)
    finish()
    return entries


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text.replace("%%", "")))


@pytest.fixture(scope="module", params=[OURS, VENDOR], ids=["locale", "locale_vendor"])
def catalogue(request) -> list[Entry]:
    return parse_po(request.param)


def test_every_french_entry_is_translated(catalogue):
    untranslated = [str(entry) for entry in catalogue if not all(entry.msgstr.values()) or not entry.msgstr]
    assert untranslated == [], "translate these entries (see the header of the .po file)"


def test_no_french_entry_is_left_fuzzy(catalogue):
    fuzzy = [str(entry) for entry in catalogue if "fuzzy" in entry.flags]
    assert fuzzy == [], "check these guesses of msgmerge, then remove their '#, fuzzy' line"


def test_french_keeps_the_english_placeholders(catalogue):
    wrong = []
    for entry in catalogue:
        english = placeholders(entry.msgid) | placeholders(entry.msgid_plural or "")
        for index, text in entry.msgstr.items():
            french = placeholders(text)
            # French's singular may spell out "un" instead of the count; it may not invent one.
            ok = french <= english if entry.msgid_plural and index == 0 else french == english
            if not ok:
                wrong.append(f"{entry} msgstr[{index}] has {sorted(french)}, expected {sorted(english)}")
    assert wrong == []


def test_the_french_catalogue_has_every_string_the_code_marks_for_translation(tmp_path):
    """makemessages (as the .po header says) on a copy of the tree must find nothing that
    locale/fr lacks: a new _("...") or {% translate %} without its entry fails here."""
    if shutil.which("xgettext") is None:
        if IN_CI:
            pytest.fail("xgettext is missing: install gettext (make messages does)")
        pytest.skip("needs gettext's xgettext (make messages installs it)")
    for item in BASE.iterdir():
        if item.name in NOT_COPIED:
            continue
        if item.is_dir():
            shutil.copytree(item, tmp_path / item.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(item, tmp_path / item.name)
    (tmp_path / "locale").mkdir()
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    command = [sys.executable, "-m", "django", "makemessages", "--keep-pot", "-l", "fr", "-v0"]
    command += [f"--ignore={name}" for name in IGNORED]
    subprocess.run(command, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)

    in_code = {entry.key: entry for entry in parse_po(tmp_path / "locale" / "django.pot")}
    assert len(in_code) > 1000  # the extraction really read the code and templates
    catalogued = {entry.key for entry in parse_po(OURS)}
    missing = [
        f"{entry.msgid!r} (context {entry.msgctxt!r})" if entry.msgctxt else repr(entry.msgid)
        for key, entry in in_code.items()
        if key not in catalogued
    ]
    assert missing == [], "run the makemessages command in the header of locale/fr/LC_MESSAGES/django.po, then translate"
