"""Signed out while a page is open (the session ended, signed out in another tab, or another
local app's cookie replaced ours): the person lands on the sign-in page, and back where they
were after signing in; a live fragment never shows the sign-in page inside the page."""

from __future__ import annotations

from sandbox.app import create_sandbox_app
from tests.conftest import PASSWORD, csrf_token_from


def test_a_fragment_request_when_signed_out_sends_the_whole_page_to_sign_in(client):
    response = client.get(
        "/inbox/count",
        headers={"HX-Request": "true", "HX-Current-URL": "http://twoway.test/inbox?folder=all"},
    )

    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/sign-in?next=/inbox?folder%3Dall"
    assert b"Sign in" not in response.data


def test_a_page_when_signed_out_goes_to_sign_in_and_back_after(app, client, make_business):
    owner = make_business()["owner"]

    response = client.get("/clients?q=ada")

    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in?next=/clients?q%3Dada"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Please sign in to continue." in page
    assert 'name="next" value="/clients?q=ada"' in page
    form = {"email": owner[1], "password": PASSWORD, "next": "/clients?q=ada"}
    signed_in = client.post("/sign-in", data={**form, "csrf_token": csrf_token_from(page)})
    assert signed_in.headers["Location"] == "/clients?q=ada"


def test_the_phone_simulator_keeps_its_own_cookie_so_using_it_never_signs_staff_out(app):
    # Both run on 127.0.0.1 in the demo; browsers share cookies across ports of one host.
    assert create_sandbox_app().config["SESSION_COOKIE_NAME"] != app.config["SESSION_COOKIE_NAME"]
