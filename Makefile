# Mailroom. `make run` starts everything on SQLite; `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# What the application needs (requirements/runtime.txt), and that plus what the tests, the
# linter and the benchmarks need (requirements/dev.txt). Both locks come from pyproject.toml.
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PG_URL ?= postgres://postgres@127.0.0.1:5432/test

# The first interpreter that is Python >= 3.12 (Django 6.1 needs it). Debian's python3 is
# 3.11 here, so look at explicit versions and pyenv's installs before it.
FIND_PYTHON = for c in $(PYTHON) python3.13 python3.12 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV) python3 python; do \
	  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then command -v $$c; exit 0; fi; \
	done; exit 1

.PHONY: help venv install install-dev lock messages setup run dev test test-fast test-unit test-postgres test-browser lint browser-deps imap-deps bench doctor clean

help:
	@echo "make run        install, migrate, load demo data, print a login, start web + cluster (Ctrl-C stops)"
	@echo "make test       install test deps (Debian chromium and dovecot included) and run lint + every suite"
	@echo "make test-fast  unit tests on SQLite only"
	@echo "make dev        like run, with Django's runserver"
	@echo "make bench      run the benchmarks in bench/"
	@echo "make install    runtime packages only (requirements/runtime.txt); install-dev adds test and lint"
	@echo "make lock       regenerate requirements/*.txt from pyproject.toml (pins kept, hashes for every file)"
	@echo "make doctor     PASS/FAIL health table"

$(PY):
	@py=$$($(FIND_PYTHON)) || { echo "ERROR: Mailroom needs Python 3.12 or newer (Django 6.1). Install it (e.g. 'pyenv install 3.12') or run 'make PYTHON=/path/to/python3.12 ...'." >&2; exit 1; }; \
	echo "Using $$py ($$($$py --version))"; \
	$$py -m venv $(VENV)

venv: $(PY)

$(STAMP): requirements/runtime.txt | $(PY)
	$(PIP) install --disable-pip-version-check -q --upgrade pip
	$(PIP) install --disable-pip-version-check -q --require-hashes -r requirements/runtime.txt
	@touch $@

$(DEV_STAMP): requirements/dev.txt $(STAMP)
	$(PIP) install --disable-pip-version-check -q --require-hashes -r requirements/dev.txt
	@touch $@

install: $(STAMP)

install-dev: $(DEV_STAMP)

# Regenerates both locks from pyproject.toml with hashes of every file of each pin. Versions
# already in a lock are kept; to move one: make lock UPGRADE="--upgrade-package django".
# uv lives in its own venv (.venv/lock), outside both locks.
UV_VERSION := 0.13.9
LOCK = $(VENV)/lock/bin/uv pip compile --quiet pyproject.toml --python $(PY) --python-version 3.12 --python-platform linux --generate-hashes $(UPGRADE)
lock: | $(PY)
	@test -x $(VENV)/lock/bin/uv || { $(PY) -m venv $(VENV)/lock && $(VENV)/lock/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION); }
	$(LOCK) -o requirements/runtime.txt
	$(LOCK) --group pyproject.toml:dev -c requirements/runtime.txt -o requirements/dev.txt

messages: $(STAMP) var/secret_key
	@command -v msgfmt >/dev/null || { echo "Installing gettext (msgfmt)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; }
	$(PY) manage.py compilemessages -v0 --ignore=.venv

var/secret_key: | $(PY)
	@mkdir -p var
	@$(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > $@
	@chmod 600 $@

setup: install messages var/secret_key
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py seed_demo
	$(PY) manage.py sync_templates

run: setup
	@$(PY) manage.py ensure_admin
	@echo "Starting the web server and the django-q2 cluster (Ctrl-C stops both)..."
	$(VENV)/bin/honcho start -f Procfile

dev: setup
	@$(PY) manage.py ensure_admin
	DEBUG=1 $(VENV)/bin/honcho start -f Procfile web=0 cluster=1 & DEBUG=1 $(PY) manage.py runserver 127.0.0.1:8000

doctor: install var/secret_key
	$(PY) manage.py doctor

# --- tests -------------------------------------------------------------------------
browser-deps:
	@command -v chromium >/dev/null || { echo "Installing Debian chromium for the browser tests"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The email inbox tests read a real IMAP server on loopback (tests/support/dovecot.py).
imap-deps:
	@test -x /usr/sbin/dovecot -a -x /usr/lib/dovecot/imap || { echo "Installing Debian dovecot-imapd for the IMAP inbox tests"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; }

lint: $(DEV_STAMP) var/secret_key
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

test-unit: $(DEV_STAMP) messages imap-deps
	$(VENV)/bin/pytest -m "not postgres and not browser and not reliability" -p no:cacheprovider

# PostgreSQL: the concurrency tests plus the whole unit suite again, so both databases
# are proven. In CI an unreachable server is a failure, not a skip (see tests/conftest.py).
test-postgres: $(DEV_STAMP) messages imap-deps
	DATABASE_URL=$(PG_URL) $(VENV)/bin/pytest -m "not browser" -p no:cacheprovider

test-browser: $(DEV_STAMP) messages browser-deps
	$(VENV)/bin/pytest -m browser -p no:cacheprovider

test: $(DEV_STAMP) messages browser-deps imap-deps lint
	$(VENV)/bin/pytest -m "not postgres" -p no:cacheprovider
	DATABASE_URL=$(PG_URL) $(VENV)/bin/pytest -m "not browser" -p no:cacheprovider

test-fast: test-unit

# Each prints one JSON object as its last line (see README). send_throughput installs
# django-post-office (the peer) and Postfix's smtp-sink when they are missing, and falls back
# to the aiosmtpd sink in tests/support (a dev dependency).
bench: $(DEV_STAMP) var/secret_key
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) staticfiles var db.sqlite3 db.sqlite3-wal db.sqlite3-shm test-results
