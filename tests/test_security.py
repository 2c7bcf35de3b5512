"""CSRF on every form and htmx request, error pages, and request size limits."""

from __future__ import annotations

from app.extensions import db
from app.models import Invitation
from tests.conftest import page_text


def test_a_form_post_without_a_csrf_token_is_refused_and_changes_nothing(
    app, actions, make_business
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.client.post(
        "/settings/team/invitations", data={"email": "x@example.com", "role": "staff"}
    )
    assert response.status_code == 400
    assert "Reload the page" in page_text(response)
    with app.app_context():
        assert db.session.execute(db.select(Invitation)).first() is None


def test_a_form_post_with_a_forged_csrf_token_is_refused(app, actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.client.post(
        "/settings/team/invitations",
        data={"email": "x@example.com", "role": "staff", "csrf_token": "forged"},
    )
    assert response.status_code == 400


def test_an_htmx_request_carries_its_csrf_token_in_a_header(app, actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    token = actions.csrf_token()
    response = actions.client.post(
        "/settings/team/invitations",
        data={"email": "x@example.com", "role": "staff"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.execute(db.select(Invitation)).first() is not None


def test_every_signed_in_page_gives_htmx_the_csrf_header(actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    page = actions.client.get("/inbox").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in page


def test_the_sign_in_form_itself_needs_a_csrf_token(actions, make_business):
    business = make_business()
    response = actions.client.post(
        "/sign-in", data={"email": business["owner"][1], "password": "x"}
    )
    assert response.status_code == 400


def test_unknown_pages_get_the_apps_own_404_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Not found" in page_text(response)
    assert 'href="/static/app.css"' in response.get_data(as_text=True)


def test_an_htmx_request_for_an_unknown_page_gets_only_the_error_fragment(client):
    response = client.get("/no-such-page", headers={"HX-Request": "true"})
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert 'id="error"' in body and "<html" not in body


def test_staff_get_the_apps_own_403_page(actions, make_business):
    business = make_business(staff=("staff",))
    actions.sign_in(business["staff"][1])
    response = actions.client.get("/settings/team")
    assert response.status_code == 403
    assert "Not allowed" in page_text(response)


def test_an_unexpected_error_gets_the_apps_own_500_page(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("boom")

    response = client.get("/boom-for-test")
    assert response.status_code == 500
    assert "Something went wrong" in page_text(response)
    assert "boom" not in page_text(response)


def test_an_oversized_request_body_is_refused_with_413(app, actions):
    token = actions.csrf_token()
    response = actions.client.post(
        "/sign-in",
        data={
            "csrf_token": token,
            "email": "x@example.com",
            "password": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1),
        },
    )
    assert response.status_code == 413
