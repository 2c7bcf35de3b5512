"""Signed-in sessions that can be ended: a copied session or remember cookie stops working
when its session ends (sign-out, a password change or reset, "Sign out other devices",
removal), every sign-in gets a new session, and the profile page where a staff member changes
their name and password and sees where they are signed in. (The open event streams of ended
sessions are in test_events.py; the open pages in the browser tests.)"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login.utils import encode_cookie
from werkzeug.security import check_password_hash
from werkzeug.serving import make_server

from app.extensions import db
from app.models import User, UserSession
from app.models.types import utcnow
from app.services import events, sessions
from tests.conftest import PASSWORD, Actions, page_text, sign_in_without_password

SESSION = "session"
REMEMBER = "remember_token"
NEW_PASSWORD = "a-brand-new-password"
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


def copy_of(app: Flask, browser: FlaskClient, *names: str) -> FlaskClient:
    """Another browser holding copies of these cookies of `browser`: a stolen cookie."""
    thief = app.test_client()
    for name in names:
        cookie = browser.get_cookie(name)
        assert cookie is not None, f"no {name} cookie to copy"
        thief.set_cookie(name, cookie.value)
    return thief


def is_signed_in(browser: FlaskClient) -> bool:
    response = browser.get("/inbox")
    assert response.status_code in {200, 302}, response.status
    return response.status_code == 200


def sign_in_kept(actions: Actions, email: str, password: str = PASSWORD):
    """Signs in with "Keep me signed in on this device" ticked."""
    return actions.post("/sign-in", {"email": email, "password": password, "remember": "1"})


def sessions_of(app: Flask, user_id: int) -> int:
    with app.app_context():
        return db.session.execute(
            db.select(db.func.count(UserSession.id)).filter_by(user_id=user_id)
        ).scalar()


# Cookies stop working when their session ends ----------------------------------------------


def test_a_copied_session_cookie_is_refused_after_sign_out(app, actions, client, make_business):
    owner = make_business()["owner"]
    actions.sign_in(owner[1])
    thief = copy_of(app, client, SESSION)
    assert is_signed_in(thief)
    assert actions.sign_out().status_code == 302
    assert not is_signed_in(thief)


def test_a_remember_cookie_is_refused_after_sign_out(app, actions, client, make_business):
    owner = make_business()["owner"]
    sign_in_kept(actions, owner[1])
    thief = copy_of(app, client, REMEMBER)
    assert is_signed_in(thief)  # the remember cookie alone signs a browser in
    assert actions.sign_out().status_code == 302
    assert not is_signed_in(thief)


def test_session_and_remember_cookies_are_refused_after_a_password_reset(
    app, actions, client, make_business, mailbox, run_jobs
):
    owner = make_business()["owner"]
    sign_in_kept(actions, owner[1])
    stolen_session, stolen_remember = copy_of(app, client, SESSION), copy_of(app, client, REMEMBER)
    assert is_signed_in(stolen_session) and is_signed_in(stolen_remember)

    resetting = Actions(app, app.test_client())
    resetting.post("/password/forgot", {"email": owner[1]})
    run_jobs()
    body = mailbox()[-1].get_body(("plain",)).get_content()
    link = re.search(r"http://twoway\.test(/password/reset/\S+)", body).group(1)
    assert resetting.post(link, {"password": NEW_PASSWORD}).status_code == 302

    assert not is_signed_in(stolen_session)
    assert not is_signed_in(stolen_remember)
    assert not is_signed_in(client)  # the owner's own browser too: a reset ends them all
    assert sessions_of(app, owner[0]) == 0


def test_a_cookie_holding_a_bare_user_id_is_refused(app, client, make_business):
    # What Twoway's cookies held before sessions were kept on the server.
    owner_id = make_business()["owner"][0]
    with client.session_transaction() as session:
        session["_user_id"] = str(owner_id)
    assert not is_signed_in(client)
    with app.test_request_context():
        old_remember = encode_cookie(str(owner_id))
    remembered = app.test_client()
    remembered.set_cookie(REMEMBER, old_remember)
    assert not is_signed_in(remembered)


def test_removing_a_staff_member_ends_all_their_sessions(app, actions, make_business):
    business = make_business(staff=("staff",))
    phone, laptop = app.test_client(), app.test_client()
    sign_in_without_password(app, phone, business["staff"][0])
    sign_in_without_password(app, laptop, business["staff"][0], remembered=True)
    actions.sign_in(business["owner"][1])
    assert actions.post(f"/settings/team/{business['staff'][0]}/remove").status_code == 302
    assert sessions_of(app, business["staff"][0]) == 0
    assert not is_signed_in(phone) and not is_signed_in(laptop)


# Every sign-in is a new session ---------------------------------------------------------------


def test_every_sign_in_starts_a_new_session_token(app, actions, client, make_business):
    owner = make_business()["owner"]
    tokens = []
    for _ in range(2):
        actions.sign_in(owner[1])
        with client.session_transaction() as session:
            tokens.append(session["_user_id"])
        actions.sign_out()
    assert tokens[0] != tokens[1]
    assert str(owner[0]) not in tokens


def test_signing_in_again_in_a_browser_ends_the_session_it_had(app, actions, client, make_business):
    business = make_business(staff=("staff",))
    actions.sign_in(business["owner"][1])
    owners_cookie = copy_of(app, client, SESSION)
    assert actions.sign_in(business["staff"][1]).status_code == 302  # without signing out
    assert not is_signed_in(owners_cookie)
    assert client.get("/settings").get_data(as_text=True).count(business["staff"][1]) == 1


def test_signing_in_again_after_signing_out_works(actions, client, make_business):
    owner = make_business()["owner"]
    actions.sign_in(owner[1])
    actions.sign_out()
    assert not is_signed_in(client)
    assert actions.sign_in(owner[1]).status_code == 302
    assert is_signed_in(client)


def test_signing_in_without_keep_me_signed_in_drops_a_remember_cookie_left_from_before(
    app, actions, client, make_business
):
    business = make_business(staff=("staff",))
    sign_in_kept(actions, business["owner"][1])
    assert client.get_cookie(REMEMBER) is not None
    actions.sign_in(business["staff"][1])
    assert client.get_cookie(REMEMBER) is None


# Sessions that end by themselves, and what a request costs ---------------------------------


def _start(app: Flask, user_id: int, *, remembered: bool, at) -> str:
    with app.app_context():
        user = db.session.get(User, user_id)
        return sessions.start(user, remembered=remembered, user_agent="pytest", now=at)


def _signed_in_at(app: Flask, token: str, at) -> bool:
    with app.app_context():
        return sessions.user_for_token(token, now=at) is not None


def test_a_session_not_kept_signed_in_ends_after_a_week_without_use(app, make_business):
    owner_id = make_business()["owner"][0]
    start = utcnow()
    token = _start(app, owner_id, remembered=False, at=start)
    assert _signed_in_at(app, token, start + timedelta(days=6))
    assert _signed_in_at(app, token, start + timedelta(days=12))  # used 6 days before
    assert not _signed_in_at(app, token, start + timedelta(days=20))


def test_a_kept_session_lasts_as_long_as_its_remember_cookie(app, make_business):
    owner_id = make_business()["owner"][0]
    start = utcnow()
    token = _start(app, owner_id, remembered=True, at=start)
    assert _signed_in_at(app, token, start + timedelta(days=300))
    assert not _signed_in_at(app, token, start + timedelta(days=366))


def test_last_seen_is_written_at_most_every_five_minutes(app, make_business):
    owner_id = make_business()["owner"][0]
    start = utcnow()
    token = _start(app, owner_id, remembered=False, at=start)

    def last_seen():
        with app.app_context():
            return db.session.execute(db.select(UserSession.last_seen_at)).scalar_one()

    assert _signed_in_at(app, token, start + timedelta(minutes=4))
    assert last_seen() == start
    assert _signed_in_at(app, token, start + timedelta(minutes=6))
    assert last_seen() == start + timedelta(minutes=6)


def test_signing_in_clears_away_the_users_lapsed_sessions(app, make_business):
    owner_id = make_business()["owner"][0]
    start = utcnow()
    _start(app, owner_id, remembered=False, at=start)
    _start(app, owner_id, remembered=True, at=start)
    _start(app, owner_id, remembered=False, at=start + timedelta(days=8))
    assert sessions_of(app, owner_id) == 2  # the kept one, and the new one


def test_a_signed_in_request_looks_the_session_up_once(app, client, make_business):
    owner_id = make_business()["owner"][0]
    sign_in_without_password(app, client, owner_id)
    statements: list[str] = []

    from sqlalchemy import event

    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get("/settings/profile").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    lookups = [s for s in statements if "WHERE user_session.token_hash =" in s]
    writes = [s for s in statements if s.lstrip().upper().startswith("UPDATE USER_SESSION")]
    assert (len(lookups), writes) == (1, [])


# The profile page ---------------------------------------------------------------------------


def _two_browsers(app: Flask, actions: Actions, owner: tuple[int, str]) -> FlaskClient:
    """Signs the owner in on `actions`' browser and, kept signed in, on a laptop."""
    laptop = Actions(app, app.test_client())
    sign_in_kept(laptop, owner[1])
    actions.sign_in(owner[1])
    return laptop.client


def test_a_password_change_ends_other_sessions_but_keeps_this_one(
    app, actions, client, make_business
):
    owner = make_business()["owner"]
    laptop = _two_browsers(app, actions, owner)
    laptops_remember_cookie = copy_of(app, laptop, REMEMBER)
    form = {"current_password": PASSWORD, "password": NEW_PASSWORD}
    response = actions.post("/settings/profile/password", form, follow_redirects=True)
    assert "Your password is changed" in page_text(response)
    assert is_signed_in(client)
    assert not is_signed_in(laptop)
    assert not is_signed_in(laptops_remember_cookie)
    with app.app_context():
        assert check_password_hash(db.session.get(User, owner[0]).password_hash, NEW_PASSWORD)


def test_a_password_change_needs_the_current_password_and_changes_nothing_without_it(
    app, actions, make_business
):
    owner = make_business()["owner"]
    laptop = _two_browsers(app, actions, owner)
    form = {"current_password": "not-my-password", "password": NEW_PASSWORD}
    response = actions.post("/settings/profile/password", form)
    assert response.status_code == 422
    assert "current password isn't right" in page_text(response)
    assert is_signed_in(laptop)
    with app.app_context():
        assert check_password_hash(db.session.get(User, owner[0]).password_hash, PASSWORD)


def test_a_too_short_new_password_is_refused_and_changes_nothing(app, actions, make_business):
    owner = make_business()["owner"]
    laptop = _two_browsers(app, actions, owner)
    form = {"current_password": PASSWORD, "password": "short"}
    response = actions.post("/settings/profile/password", form)
    assert response.status_code == 422
    assert "at least 10 characters" in page_text(response)
    assert is_signed_in(laptop)
    with app.app_context():
        assert check_password_hash(db.session.get(User, owner[0]).password_hash, PASSWORD)


def test_sign_out_other_devices_ends_the_others_and_keeps_this_one(
    app, actions, client, make_business
):
    business = make_business(staff=("staff",))
    owner = business["owner"]
    laptop = _two_browsers(app, actions, owner)
    laptops_remember_cookie = copy_of(app, laptop, REMEMBER)
    colleague = app.test_client()
    sign_in_without_password(app, colleague, business["staff"][0])
    response = actions.post("/settings/profile/sign-out-other-devices", follow_redirects=True)
    assert "signed out on every other device" in page_text(response)
    assert is_signed_in(client)
    assert not is_signed_in(laptop)
    assert not is_signed_in(laptops_remember_cookie)
    assert is_signed_in(colleague)  # only the owner's own sessions end


def test_sign_out_other_devices_needs_the_csrf_token(app, actions, make_business):
    owner = make_business()["owner"]
    laptop = _two_browsers(app, actions, owner)
    response = actions.client.post("/settings/profile/sign-out-other-devices")
    assert response.status_code == 400
    assert is_signed_in(laptop)


def test_the_profile_lists_where_you_are_signed_in_this_device_first(
    app, actions, client, make_business
):
    owner = make_business()["owner"]
    phone = Actions(app, app.test_client())
    phone.client.environ_base["HTTP_USER_AGENT"] = ANDROID_CHROME
    sign_in_kept(phone, owner[1])
    actions.sign_in(owner[1])
    page = page_text(client.get("/settings/profile"))
    devices = re.findall(r'<li class="row">\s*<span class="row-main">\s*<span>([^<]*)', page)
    assert devices == ["Unknown browser", "Chrome on Android"]
    assert "this device" in page and "kept signed in" in page


def test_the_profile_is_linked_from_settings(actions, client, make_business):
    actions.sign_in(make_business()["owner"][1])
    assert 'href="/settings/profile"' in client.get("/settings").get_data(as_text=True)


def test_a_staff_member_renames_themselves_on_the_profile(app, actions, make_business):
    staff = make_business(staff=("staff",))["staff"]
    actions.sign_in(staff[1])
    response = actions.post("/settings/profile/name", {"name": "  Sam Rivera "})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(User, staff[0]).name == "Sam Rivera"


def test_an_empty_name_is_refused_and_changes_nothing(app, actions, make_business):
    owner = make_business()["owner"]
    actions.sign_in(owner[1])
    response = actions.post("/settings/profile/name", {"name": "   "})
    assert response.status_code == 422
    assert "Enter your name." in page_text(response)
    with app.app_context():
        assert db.session.get(User, owner[0]).name == "Owner 1"


# A removed member's open stream, over real HTTP -----------------------------------------------


@pytest.fixture
def http_server(app: Flask) -> Iterator[str]:
    """The app on a real port (a threaded werkzeug server, as the browser tests use)."""
    app.config["SSE_HEARTBEAT_SECONDS"] = 0.2
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_a_removed_members_open_stream_over_http_is_closed_at_once(
    app, http_server, make_business, monkeypatch
):
    monkeypatch.setattr(events, "SESSION_CHECK_SECONDS", 3600.0)  # only being told ends it
    business = make_business(staff=("staff",))
    staff_browser = app.test_client()
    sign_in_without_password(app, staff_browser, business["staff"][0])
    address = urlsplit(http_server)
    # The read time-out is a deadline, not a measurement: heartbeats come every 0.2 s.
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        cookie = staff_browser.get_cookie(SESSION).value
        connection.request("GET", "/events", headers={"Cookie": f"{SESSION}={cookie}"})
        response = connection.getresponse()
        assert response.status == 200
        received = b""
        while b"event: ready" not in received:
            received += response.read1(65536)

        owner = Actions(app, app.test_client())
        owner.sign_in(business["owner"][1])
        assert owner.post(f"/settings/team/{business['staff'][0]}/remove").status_code == 302

        while chunk := response.read1(65536):  # b"" once the server ends the stream
            received += chunk
        assert received.rstrip().endswith(b"event: session.changed\ndata:")
    finally:
        connection.close()
