"""Security headers and cookie flags (app/security_headers.py, app/config.py cookie_flags), and
the templates' side of the Content-Security-Policy: nothing inline for it to refuse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import url_for

from app import create_app
from app.extensions import db
from tests.sending_helpers import make_client

TEMPLATES = Path(__file__).parent.parent / "app" / "templates"
# Values for URL parameters that are not ids of the signed-in business's rows.
PARAMETER_VALUES = {"filename": "app.css", "token": "x", "kind": "email"}


def every_get_url(app, client_id: int) -> list[str]:
    """One URL for each GET route of the URL map (a row id: the owner's client, else 1)."""
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in (rule.methods or ()):
                continue
            values = {
                name: PARAMETER_VALUES.get(name, client_id if name == "client_id" else 1)
                for name in rule.arguments
            }
            urls.append(url_for(rule.endpoint, **values))
    return sorted(urls)


@pytest.fixture
def signed_in_owner(app, actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    return {**business, "client": make_client(app, business["id"])}


def fetch(client, url: str):
    response = client.get(url, buffered=False)  # /events streams: headers, then close
    response.close()
    return response


def test_every_response_carries_the_content_security_policy(app, client, signed_in_owner):
    urls = every_get_url(app, signed_in_owner["client"])
    assert "/inbox" in urls and "/static/app.css" in urls and "/events" in urls
    for url in urls:
        policy = fetch(client, url).headers.get("Content-Security-Policy", "")
        directives = {d.strip() for d in policy.split(";")}
        assert "frame-ancestors 'none'" in directives, url
        assert "script-src 'self'" in directives, url
        assert "style-src 'self'" in directives, url
        assert "object-src 'none'" in directives, url


def test_pages_of_people_not_signed_in_carry_the_policy_too(client):
    for url in ["/sign-in", "/sign-up", "/password/forgot", "/no-such-page"]:
        assert "frame-ancestors 'none'" in client.get(url).headers["Content-Security-Policy"]


def test_every_response_forbids_content_sniffing_static_files_included(
    app, client, signed_in_owner
):
    for url in every_get_url(app, signed_in_owner["client"]):
        assert fetch(client, url).headers.get("X-Content-Type-Options") == "nosniff", url


def test_signed_in_pages_are_never_stored(client, signed_in_owner):
    client_id = signed_in_owner["client"]
    for url in ["/inbox", "/clients", f"/clients/{client_id}", "/settings", "/notifications"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url


def test_htmx_fragments_for_a_signed_in_user_are_never_stored(client, signed_in_owner):
    response = client.get("/inbox/count", headers={"HX-Request": "true"})
    assert response.headers["Cache-Control"] == "no-store"


def test_static_files_keep_their_own_caching(client):
    response = client.get("/static/app.css")
    assert "no-store" not in response.headers.get("Cache-Control", "")
    response.close()


def sign_in_cookies(app, email: str, *, remember: bool) -> dict[str, str]:
    """The Set-Cookie headers of a sign-in, by cookie name."""
    client = app.test_client()
    form = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    data = {"email": email, "password": "correct-horse-battery", "csrf_token": token}
    if remember:
        data["remember"] = "1"
    response = client.post("/sign-in", data=data)
    assert response.status_code == 302
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


@pytest.fixture
def https_app(app):
    """The suite's app (same database), built again as if reached at an https address."""
    https = create_app({**app.config, "PUBLIC_URL": "https://texts.example.com"})
    yield https
    with https.app_context():
        db.engine.dispose()


def test_over_https_the_session_cookie_is_secure(https_app, make_business):
    cookies = sign_in_cookies(https_app, make_business()["owner"][1], remember=False)
    assert "; Secure" in cookies["session"]
    assert "; HttpOnly" in cookies["session"]


def test_over_https_the_keep_me_signed_in_cookie_is_secure(https_app, make_business):
    cookies = sign_in_cookies(https_app, make_business()["owner"][1], remember=True)
    assert "; Secure" in cookies["remember_token"]
    assert "; HttpOnly" in cookies["remember_token"]


def test_over_plain_http_the_cookies_still_reach_a_local_app(app, make_business):
    cookies = sign_in_cookies(app, make_business()["owner"][1], remember=True)
    assert "; Secure" not in cookies["session"]
    assert "; Secure" not in cookies["remember_token"]


# --- the templates: nothing inline for the policy to refuse --------------------------------

INLINE = {
    "an inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "an on…= event handler": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "a style= attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "a <style> element": re.compile(r"<style\b", re.IGNORECASE),
    "an hx-on attribute": re.compile(r"\shx-on\b", re.IGNORECASE),
    "a javascript: URL or js: value": re.compile(r"=\s*[\"']\s*(javascript|js):", re.IGNORECASE),
    # An hx-trigger filter (`event[condition]`) is evaluated as code: a name, then `[`.
    "an hx-trigger filter": re.compile(r"hx-trigger=\"(?:[^\"]*,)?\s*[^\s,\[\"]+\["),
}


def test_no_template_holds_anything_the_policy_refuses():
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = re.sub(r"{#.*?#}", "", template.read_text(), flags=re.DOTALL)  # comments
        for what, pattern in INLINE.items():
            for match in pattern.finditer(text):
                found.append(f"{template.relative_to(TEMPLATES)}: {what}: {match.group(0)!r}")
    assert not found, "\n".join(found)


def test_the_template_guard_catches_each_kind_of_inline_code():
    samples = {
        "an inline <script>": "<script>alert(1)</script>",
        "an on…= event handler": '<button onclick="go()">',
        "a style= attribute": '<p style="color: red">',
        "a <style> element": "<style>p {}</style>",
        "an hx-on attribute": '<div hx-on::after-swap="x()">',
        "a javascript: URL or js: value": '<a href="javascript:go()">',
        "an hx-trigger filter": '<div hx-trigger="every 2s, sse:x[detail.a == 1]">',
    }
    for what, sample in samples.items():
        assert INLINE[what].search(sample), what
    assert not INLINE["an hx-trigger filter"].search(
        '<div hx-trigger="input changed delay:200ms from:input[name=q], submit">'
    )
    assert not INLINE["an inline <script>"].search('<script src="/static/app.js" defer>')


def test_pages_turn_off_htmx_eval_script_tags_and_inline_indicator_styles(client):
    page = client.get("/sign-in").get_data(as_text=True)
    for setting in ['"allowEval": false', '"allowScriptTags": false']:
        assert setting in page
    assert '"includeIndicatorStyles": false' in page
