"""No public secret key (issue 16, item 7): without SECRET_KEY and without var/secret_key a
production start refuses with a clear message instead of signing every link with a key
published in the source; `check --deploy` errors on the built-in or a guessable key."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from messaging.checks import check_secret_key
from messaging.management.commands.doctor import check_secret_key as doctor_check

IMPORT_SETTINGS = "import config.settings as s; print('KEY=' + s.SECRET_KEY)"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "MAILROOM_DEBUG", "MAILROOM_TESTING", "DATABASE_URL"}}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env | extra


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    """The config package in a directory of its own: BASE_DIR is tmp_path, with no var/."""
    shutil.copytree(Path(settings.BASE_DIR) / "config", tmp_path / "config", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def import_settings(base: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", IMPORT_SETTINGS],
        cwd=base,
        env=clean_env(PYTHONPATH=str(base), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_without_any_key_refuse_to_start(fresh_clone):
    result = import_settings(fresh_clone)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr and "var/secret_key" in result.stderr
    assert "KEY=" not in result.stdout  # nothing started with a built-in key
    assert not (fresh_clone / "var" / "secret_key").exists()


def test_development_settings_without_a_key_generate_and_keep_one(fresh_clone):
    first = import_settings(fresh_clone, DEBUG="1")
    assert first.returncode == 0, first.stderr
    key_file = fresh_clone / "var" / "secret_key"
    key = key_file.read_text().strip()
    assert first.stdout.strip() == f"KEY={key}" and len(key) >= 50
    assert key != settings.INSECURE_DEV_KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # the next start, in production mode too, uses the same key (links and sessions survive)
    again = import_settings(fresh_clone)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"KEY={key}"


def test_an_explicit_secret_key_wins_over_the_file(fresh_clone):
    (fresh_clone / "var").mkdir()
    (fresh_clone / "var" / "secret_key").write_text("from-the-file-" + "f" * 50)
    result = import_settings(fresh_clone, SECRET_KEY="from-the-environment-" + "e" * 50)
    assert result.stdout.strip() == "KEY=from-the-environment-" + "e" * 50


def deploy_check(tmp_path: Path, secret_key: str) -> subprocess.CompletedProcess:
    env = clean_env(
        SECRET_KEY=secret_key,
        ALLOWED_HOSTS="mailroom.example.com",
        MAILROOM_BASE_URL="https://mailroom.example.com",
        MAILROOM_HTTPS="1",
        MAILROOM_SQLITE_PATH=str(tmp_path / "deploy.sqlite3"),
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("key", [settings.INSECURE_DEV_KEY, "django-insecure-" + "a1b2c3d4" * 8, "short-key"])
def test_check_deploy_errors_on_the_built_in_or_a_guessable_key(tmp_path, key):
    result = deploy_check(tmp_path, key)
    assert result.returncode != 0
    assert "mailroom.E001" in result.stderr + result.stdout


def test_doctor_and_the_deploy_check_share_one_rule(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = settings.INSECURE_DEV_KEY
    errors = check_secret_key()
    ok, detail = doctor_check()
    assert [error.id for error in errors] == ["mailroom.E001"]
    assert not ok and detail == errors[0].msg
