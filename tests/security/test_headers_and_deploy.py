"""Security headers on every console page and `check --deploy` with production settings."""

import os
import subprocess
import sys

from django.conf import settings
from django.contrib import admin
from django.urls import reverse


def test_every_console_list_page_sends_a_nonce_csp_and_safe_headers(client, admin_user):
    client.force_login(admin_user)
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        csp = response.headers.get("Content-Security-Policy", "")
        script_src = csp.split("script-src", 1)[1].split(";", 1)[0]
        assert "'unsafe-inline'" not in script_src, url
        assert "object-src" in csp or "default-src 'self'" in csp, url
        assert response.headers.get("X-Content-Type-Options") == "nosniff", url
        assert response.headers.get("X-Frame-Options") in ("SAMEORIGIN", "DENY"), url
        # every inline script carries the page's nonce
        body = response.content.decode()
        nonce = csp.split("'nonce-")[1].split("'")[0] if "'nonce-" in csp else "(no nonce)"
        for chunk in body.split("<script")[1:]:
            tag = chunk.split(">", 1)[0]
            assert "src=" in tag or f'nonce="{nonce}"' in tag or "application/json" in tag, (url, tag[:120])


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "SECRET_KEY": "x" * 30 + "-production-secret-key-that-is-long-enough-0123456789",
        "ALLOWED_HOSTS": "mailroom.example.com",
        "MAILROOM_BASE_URL": "https://mailroom.example.com",
        "MAILROOM_HTTPS": "1",
        "DEBUG": "",
        "MAILROOM_DEBUG": "",
        "MAILROOM_SQLITE_PATH": str(tmp_path / "deploy.sqlite3"),
    }
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests in this process
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
