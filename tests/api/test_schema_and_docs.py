"""The OpenAPI schema is valid, and its Swagger UI / ReDoc pages work offline under the CSP;
in a browser, Swagger UI lists the operations (screenshot: test-results/screenshots/api-swagger.png)."""

import json
import re

import pytest
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from playwright.sync_api import expect

from tests.api.conftest import assert_problem
from tests.conftest import RESULTS

pytestmark = pytest.mark.django_db
SHOTS = RESULTS / "screenshots"


def test_spectacular_validate_is_clean():
    # --fail-on-warn: a warning (e.g. an enum name collision) fails the build as an error does
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_schema_endpoint_serves_valid_openapi_with_both_auth_schemes(as_user, support):
    response = as_user(support).get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert {"jwtAuth", "apiKey"} <= set(schema["components"]["securitySchemes"])
    assert {"/api/v1/contacts/", "/api/v1/messages/{id}/cancel/", "/api/v1/stats/messages/"} <= set(schema["paths"])
    cancel = schema["paths"]["/api/v1/messages/{id}/cancel/"]["post"]["responses"]
    assert set(cancel["409"]["content"]) == {"application/problem+json"}


def test_schema_needs_credentials(api):
    assert_problem(api.get("/api/v1/schema/"), 401)


def test_swagger_ui_is_served_locally_without_inline_script(client, support):
    client.force_login(support)
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    # every <script> has a src: the page needs no inline script, so the site's CSP applies as is
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "unsafe-inline" not in response["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in script.content.decode()


def test_redoc_is_served_locally_and_may_start_its_worker(client, support):
    client.force_login(support)
    response = client.get("/api/v1/redoc/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in html
    assert "googleapis" not in html and "https://" not in html
    assert "worker-src 'self' blob:" in response["Content-Security-Policy"]


def test_docs_send_an_anonymous_browser_to_the_login(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_api_root_lists_the_resources(as_user, support):
    body = as_user(support).get("/api/v1/").json()
    assert {"contacts", "templates", "messages", "suppressions"} <= set(body)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path, ready", [("/api/v1/docs/", ".swagger-ui .info .title"), ("/api/v1/redoc/", "h1")])
def test_docs_render_in_a_browser_without_csp_violations(live_server, console_login, admin_user, path, ready):
    page = console_login(admin_user)
    problems: list[str] = []
    page.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}{path}")
    page.wait_for_selector(ready)
    assert "Mailroom API" in page.locator(ready).first.inner_text()
    page.wait_for_timeout(500)
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_lists_the_operations_for_a_signed_in_admin(live_server, console_login, admin_user):
    page = console_login(admin_user)
    page.goto(f"{live_server.url}/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Mailroom API")
    # the operations are listed, grouped by resource, each with its method and path
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 40
    for method, path in [("get", "/api/v1/contacts/"), ("post", "/api/v1/events/"), ("post", "/api/v1/messages/{id}/cancel/")]:
        operation = page.locator(f".opblock-{method}").filter(has=page.locator(f"[data-path='{path}']"))
        expect(operation.first).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "api-swagger.png"))  # the top: title, auth and the first resources
    # opening one shows its parameters and responses, the problem+json 400 included
    events = page.locator(".opblock-post").filter(has=page.locator("[data-path='/api/v1/events/']")).first
    events.locator(".opblock-summary").click()
    expect(events.locator(".responses-table")).to_be_visible()
    expect(events.locator(".response[data-code='400']")).to_be_visible()
