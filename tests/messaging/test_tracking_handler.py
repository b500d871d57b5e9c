"""The lean WSGI path for tracking hits (config.wsgi): same answers as the full stack."""

import io
import sys

import pytest

from config.wsgi import application


def call(path: str) -> tuple[str, dict, bytes]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
    }
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(application(environ, start_response))
    return seen["status"], seen["headers"], body


@pytest.mark.django_db(transaction=True)
def test_a_bad_pixel_token_still_gets_a_gif_with_a_length_and_no_cookie():
    status, headers, body = call("/o/not-a-token.gif")
    assert status.startswith("400") and headers["Content-Type"] == "image/gif" and body.startswith(b"GIF89a")
    assert headers["Content-Length"] == str(len(body))
    assert "Set-Cookie" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db(transaction=True)
def test_an_unknown_click_is_the_plain_404_page_under_the_strict_csp():
    status, headers, body = call("/t/999999/whatever/")
    assert status.startswith("404")
    assert "script-src 'none'" in headers["Content-Security-Policy"]
    assert b"<html" in body.lower()


@pytest.mark.django_db(transaction=True)
def test_other_paths_still_take_the_full_stack():
    status, headers, _body = call("/healthz")
    assert status.startswith("200") and "X-Frame-Options" in headers
