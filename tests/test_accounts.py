"""Sign-up confirmed by email, sign-in (and how long it takes), sign-out and password reset."""

from __future__ import annotations

import re
import statistics
import threading
import time
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Business, PendingSignUp, User
from app.models.types import utcnow
from app.services import accounts
from app.services.errors import ServiceError
from tests.conftest import PASSWORD, page_text


def _sign_up(actions, **overrides):
    form = {
        "business_name": "Glow Salon",
        "country": "US",
        "time_zone": "America/Chicago",
        "plan": "growth",
        "name": "Gloria",
        "email": "Gloria@Example.com",
        "password": "a-long-password",
    }
    form.update(overrides)
    return actions.post("/sign-up", form)


def _without_csrf_token(page: str) -> str:
    # The CSRF token is signed with the second it was made in: two pages a second apart differ.
    return re.sub(r'"X-CSRFToken": "[^"]+"', '"X-CSRFToken": "…"', page)


def _confirmation_link(mailbox) -> str:
    body = mailbox()[-1].get_body(("plain",)).get_content()
    return re.search(r"http://twoway\.test(/sign-up/confirm/\S+)", body).group(1)


def _count(app, model) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(model.id))).scalar()


def test_sign_up_creates_nothing_until_its_email_is_confirmed(app, actions, client, run_jobs):
    response = _sign_up(actions)
    run_jobs()

    assert response.status_code == 200
    assert "Check your email" in page_text(response)
    assert (_count(app, Business), _count(app, User)) == (0, 0)
    assert client.get("/inbox").status_code == 302


def test_a_confirmed_sign_up_creates_the_business_and_its_owner_and_signs_in(
    app, actions, client, mailbox, run_jobs
):
    _sign_up(actions)
    run_jobs()
    assert mailbox()[-1]["To"] == "gloria@example.com"
    link = _confirmation_link(mailbox)
    assert "Glow Salon" in page_text(client.get(link))

    response = actions.post(link)

    assert response.status_code == 302
    assert response.headers["Location"] == "/inbox"
    with app.app_context():
        owner = db.session.execute(db.select(User)).scalar_one()
        assert owner.email == "gloria@example.com"
        assert owner.role == "owner"
        assert (
            owner.business.name,
            owner.business.country,
            owner.business.time_zone,
            owner.business.plan,
        ) == ("Glow Salon", "US", "America/Chicago", "growth")
        assert owner.password_hash != "a-long-password"
    assert client.get("/inbox").status_code == 200
    actions.sign_out()
    assert actions.sign_in("gloria@example.com", "a-long-password").status_code == 302


def test_opening_the_confirmation_link_changes_nothing_until_its_button_is_pressed(
    app, actions, client, mailbox, run_jobs
):
    _sign_up(actions)
    run_jobs()
    assert client.get(_confirmation_link(mailbox)).status_code == 200
    assert _count(app, User) == 0


def test_a_confirmation_link_used_twice_makes_one_account(app, actions, mailbox, run_jobs):
    _sign_up(actions)
    run_jobs()
    link = _confirmation_link(mailbox)
    actions.post(link)
    actions.sign_out()

    again = actions.post(link)

    assert again.status_code == 400
    assert "already confirmed" in page_text(again)
    assert (_count(app, Business), _count(app, User)) == (1, 1)


def test_a_confirmation_link_used_twice_at_once_makes_one_account(app, actions, mailbox, run_jobs):
    _sign_up(actions)
    run_jobs()
    token = _confirmation_link(mailbox).rsplit("/", 1)[1]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def confirm() -> None:
        with app.app_context():
            start.wait()
            try:
                accounts.confirm_sign_up(token)
                outcomes.append("created")
            except ServiceError:
                outcomes.append("refused")
            finally:
                db.session.remove()

    workers = [threading.Thread(target=confirm) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    assert sorted(outcomes) == ["created", "refused"]
    assert (_count(app, Business), _count(app, User)) == (1, 1)


def test_two_confirmed_sign_ups_for_one_email_make_one_account(app, actions, mailbox, run_jobs):
    _sign_up(actions)
    _sign_up(actions, business_name="Glow Salon Two")
    run_jobs()
    first, second = (
        re.search(r"/sign-up/confirm/\S+", m.get_body(("plain",)).get_content()).group(0)
        for m in mailbox()
    )
    actions.post(first)
    actions.sign_out()

    response = actions.post(second)

    assert response.status_code == 400
    assert "already exists" in page_text(response)
    assert (_count(app, Business), _count(app, User)) == (1, 1)


def test_an_expired_confirmation_link_is_refused(app, actions, mailbox, run_jobs):
    _sign_up(actions)
    run_jobs()
    link = _confirmation_link(mailbox)
    with app.app_context():
        pending = db.session.execute(db.select(PendingSignUp)).scalar_one()
        pending.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()

    response = actions.post(link)

    assert response.status_code == 400
    assert "expired" in page_text(response)
    assert _count(app, User) == 0


def test_a_forged_confirmation_link_is_refused(actions):
    response = actions.client.get("/sign-up/confirm/not-a-real-token")
    assert response.status_code == 400
    assert "not valid" in page_text(response)


def test_sign_up_answers_the_same_for_an_email_that_already_has_an_account(
    app, actions, make_business
):
    make_business()
    taken = _sign_up(actions, email="owner1@example.com")
    new = _sign_up(actions, email="someone.new@example.com")

    assert taken.status_code == new.status_code == 200
    taken_page = _without_csrf_token(taken.get_data(as_text=True)).replace("owner1@", "X@")
    new_page = _without_csrf_token(new.get_data(as_text=True)).replace("someone.new@", "X@")
    assert taken_page == new_page
    assert _count(app, Business) == 1


def test_the_holder_of_an_email_someone_signs_up_with_is_emailed_the_way_in(
    actions, make_business, mailbox, run_jobs
):
    make_business()
    _sign_up(actions, email="Owner1@Example.com")
    run_jobs()

    email = mailbox()[-1]
    body = email.get_body(("plain",)).get_content()
    assert email["To"] == "owner1@example.com"
    assert "tried to create a new Twoway account" in body
    assert "http://twoway.test/sign-in" in body
    assert "http://twoway.test/password/forgot" in body
    assert "/sign-up/confirm/" not in body


def test_a_removed_member_whose_email_someone_signs_up_with_is_told_to_use_another_address(
    app, actions, make_business, mailbox, run_jobs
):
    business = make_business(staff=("staff",))
    with app.app_context():
        db.session.get(User, business["staff"][0]).deactivated_at = utcnow()
        db.session.commit()
    _sign_up(actions, email=business["staff"][1])
    run_jobs()

    body = mailbox()[-1].get_body(("plain",)).get_content()
    assert mailbox()[-1]["To"] == business["staff"][1]
    assert "sign up with another address" in body
    assert "/sign-up/confirm/" not in body


def test_sign_up_takes_as_long_for_an_email_that_has_an_account_as_for_a_new_one(
    app, make_business
):
    taken = make_business()["owner"][1]
    times: dict[str, list[float]] = {"taken": [], "new": []}
    with app.app_context():
        for n in range(8):
            for label, email in (("taken", taken), ("new", f"new{n}@example.com")):
                started = time.perf_counter()
                accounts.sign_up(
                    business_name="Glow Salon",
                    country="US",
                    time_zone="America/Chicago",
                    plan="growth",
                    owner_name="Gloria",
                    email=email,
                    password="a-long-password",
                )
                times[label].append(time.perf_counter() - started)
    ratio = statistics.median(times["taken"]) / statistics.median(times["new"])
    assert 0.5 < ratio < 2


def test_sign_up_refuses_a_short_password_and_creates_nothing(app, actions):
    response = _sign_up(actions, password="short")
    assert response.status_code == 422
    assert "at least 10 characters" in page_text(response)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(User.id))).scalar() == 0


def test_sign_up_refuses_an_unknown_plan_country_or_time_zone(actions):
    assert _sign_up(actions, plan="platinum").status_code == 422
    assert _sign_up(actions, country="XX").status_code == 422
    assert _sign_up(actions, time_zone="Mars/Olympus").status_code == 422


def test_sign_in_with_the_right_password_opens_the_inbox(actions, make_business, client):
    business = make_business()
    response = actions.sign_in(business["owner"][1])
    assert response.status_code == 302
    assert response.headers["Location"] == "/inbox"


def test_sign_in_with_a_wrong_password_is_refused(actions, make_business, client):
    business = make_business()
    response = actions.sign_in(business["owner"][1], "not-the-password")
    assert response.status_code == 401
    assert "don't match" in page_text(response)
    assert client.get("/inbox").status_code == 302


def test_sign_in_follows_only_same_site_next_links(actions, make_business):
    business = make_business()
    email = business["owner"][1]
    ok = actions.post("/sign-in", {"email": email, "password": PASSWORD, "next": "/clients"})
    assert ok.headers["Location"] == "/clients"
    actions.sign_out()
    evil = actions.post(
        "/sign-in", {"email": email, "password": PASSWORD, "next": "//evil.example.com/x"}
    )
    assert evil.headers["Location"] == "/inbox"


def test_sign_out_ends_the_session(actions, make_business, client):
    business = make_business()
    actions.sign_in(business["owner"][1])
    assert actions.sign_out().status_code == 302
    assert client.get("/inbox").status_code == 302


def test_removed_staff_cannot_sign_in(app, actions, make_business):
    business = make_business(staff=("staff",))
    with app.app_context():
        member = db.session.get(User, business["staff"][0])
        member.deactivated_at = db.func.now()
        db.session.commit()
    assert actions.sign_in(business["staff"][1]).status_code == 401


def _median_sign_in_seconds(app, attempts: dict[str, str], tries: int) -> dict[str, float]:
    """The median time of a failed sign-in for each label's email, the tries interleaved so
    the machine's load weighs on every label alike."""
    app.config["SIGNIN_FREE_FAILURES"] = 10_000  # time the password check, never a wait
    times: dict[str, list[float]] = {label: [] for label in attempts}
    with app.app_context():
        for n in range(tries):
            for label, email in attempts.items():
                started = time.perf_counter()
                with pytest.raises(ServiceError):
                    accounts.authenticate(email, f"wrong-{n}", "192.0.2.1", now=utcnow())
                times[label].append(time.perf_counter() - started)
    return {label: statistics.median(spent) for label, spent in times.items()}


def test_a_sign_in_takes_as_long_for_an_unknown_email_as_for_a_known_one(app, make_business):
    known = make_business()["owner"][1]
    medians = _median_sign_in_seconds(
        app, {"known": known, "unknown": "nobody@example.com"}, tries=15
    )
    assert 0.5 < medians["unknown"] / medians["known"] < 2


def test_a_removed_members_sign_in_takes_as_long_as_an_active_ones(app, make_business):
    business = make_business(staff=("staff",))
    with app.app_context():
        db.session.get(User, business["staff"][0]).deactivated_at = utcnow()
        db.session.commit()
    medians = _median_sign_in_seconds(
        app, {"active": business["owner"][1], "removed": business["staff"][1]}, tries=10
    )
    assert 0.5 < medians["removed"] / medians["active"] < 2


def _reset_link(mailbox) -> str:
    body = mailbox()[-1].get_body(("plain",)).get_content()
    return re.search(r"http://twoway\.test(/password/reset/\S+)", body).group(1)


def test_password_reset_by_email_sets_a_new_password(actions, make_business, mailbox, run_jobs):
    business = make_business()
    email = business["owner"][1]
    actions.post("/password/forgot", {"email": email})
    run_jobs()
    assert mailbox()[-1]["To"] == email
    link = _reset_link(mailbox)
    assert actions.post(link, {"password": "a-brand-new-password"}).status_code == 302
    assert actions.sign_in(email, PASSWORD).status_code == 401
    assert actions.sign_in(email, "a-brand-new-password").status_code == 302


def test_a_password_reset_link_works_only_once(actions, make_business, mailbox, run_jobs):
    business = make_business()
    actions.post("/password/forgot", {"email": business["owner"][1]})
    run_jobs()
    link = _reset_link(mailbox)
    actions.post(link, {"password": "a-brand-new-password"})
    again = actions.post(link, {"password": "yet-another-password"})
    assert again.status_code == 400
    assert "already been used" in page_text(again)


def test_a_forged_password_reset_link_is_refused(actions):
    response = actions.client.get("/password/reset/not-a-real-token")
    assert response.status_code == 400
    assert "not valid" in page_text(response)


def test_password_reset_for_an_unknown_email_sends_nothing_and_says_the_same(
    actions, make_business, mailbox, run_jobs
):
    make_business()
    known = actions.post("/password/forgot", {"email": "owner1@example.com"})
    unknown = actions.post("/password/forgot", {"email": "nobody@example.com"})
    run_jobs()
    assert len(mailbox()) == 1
    assert known.get_data(as_text=True) == unknown.get_data(as_text=True)
