#!/usr/bin/env bash
# Updates locale_vendor/fr/LC_MESSAGES/django.po with the msgids that the console's
# third-party packages show (django-unfold; django-import-export and django-q2 where
# their own French is missing) and that no installed French catalogue translates.
# Existing translations are kept, new msgids come in untranslated (or fuzzy when close
# to an old one), msgids that went away are dropped. See locale_vendor/README.md.
# Run from the project root: bash locale_vendor/extract.sh
set -euo pipefail
ROOT=$(pwd)
SP=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# 1. Every msgid in the packages' templates and Python code, in a tree of its own.
mkdir -p "$WORK/src/locale" "$WORK/src/django_q"
cp -r "$SP/unfold" "$SP/import_export" "$WORK/src/"
cp "$SP/django_q/admin.py" "$SP/django_q/models.py" "$WORK/src/django_q/"  # its other strings are log lines
find "$WORK/src" \( -name __pycache__ -o -path "$WORK/src/import_export/locale" \) -prune -exec rm -rf {} +
mkdir -p "$WORK/src/locale"
(cd "$WORK/src" && env -u DJANGO_SETTINGS_MODULE "$ROOT/.venv/bin/django-admin" makemessages --keep-pot -l fr -v0)

# 2. What the French catalogues in use already translate (from the compiled .mo files,
#    i.e. exactly what Django loads: fuzzy and empty entries are left out).
for mo in "$SP/django/conf/locale/fr/LC_MESSAGES/django.mo" \
          "$SP/django/contrib/admin/locale/fr/LC_MESSAGES/django.mo" \
          "$SP/import_export/locale/fr/LC_MESSAGES/django.mo" \
          "$SP/django_q/locale/fr/LC_MESSAGES/django.mo"; do
  msgunfmt "$mo" -o "$WORK/$(echo "$mo" | md5sum | cut -c1-8).po"
done
msgcat --use-first "$WORK"/*.po -o "$WORK/translated.po"

# 3. Keep only the msgids nobody translates.
msgattrib --only-file="$WORK/translated.po" --set-obsolete "$WORK/src/locale/django.pot" -o "$WORK/marked.pot"
msgattrib --no-obsolete "$WORK/marked.pot" -o "$WORK/vendor.pot"

# 4. Merge into the French catalogue.
PO="$ROOT/locale_vendor/fr/LC_MESSAGES/django.po"
if [ -f "$PO" ]; then
  msgmerge --quiet --previous --backup=none --update "$PO" "$WORK/vendor.pot"
  msgattrib --no-obsolete "$PO" -o "$PO"
else
  mkdir -p "$(dirname "$PO")"
  msginit --no-translator --no-wrap -l fr_FR.UTF-8 -i "$WORK/vendor.pot" -o "$PO"
  sed -i 's/^"Plural-Forms: .*/"Plural-Forms: nplurals=2; plural=(n > 1);\\n"/' "$PO"
fi
printf '%s: ' "${PO#"$ROOT/"}"
msgfmt --statistics -o /dev/null "$PO"
