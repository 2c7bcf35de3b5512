"""Two-way texting: who is offered it, the dedicated number (exactly one, bought through the
real SDK against the sandbox), its verification, deactivation and the three-month reservation,
and which number each kind of text goes from."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db, get_redis
from app.models import Business, DedicatedNumber, Notification, Verification
from app.services import events, texting, verification
from jobs import texting as texting_jobs
from tests.conftest import page_text as _page_text
from tests.texting_helpers import bought_numbers, complete_business_info, use_sandbox

T0 = datetime(2027, 1, 15, 15, 0, tzinfo=UTC)
SMS_URL = "/settings/messages/sms"
GET_URL = "/settings/messages/sms/two-way-texting"


@pytest.fixture
def texting_app(app, sandbox):
    use_sandbox(app, sandbox)
    return app


@pytest.fixture
def business(texting_app, actions, make_business):
    """A US business on Growth with complete business info, its owner signed in."""
    business = make_business("Bright Smile Dental", staff=("admin", "staff"))
    complete_business_info(texting_app, business["id"])
    actions.sign_in(business["owner"][1])
    return business


def page_text(response) -> str:
    """What a person reads: entities decoded, tags dropped, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", _page_text(response)).split())


def _rows(app, business_id: int) -> list[DedicatedNumber]:
    with app.app_context():
        rows = db.session.execute(
            db.select(DedicatedNumber)
            .where(DedicatedNumber.business_id == business_id)
            .order_by(DedicatedNumber.id)
        ).scalars()
        return [_detached(row) for row in rows]


def _detached(row: DedicatedNumber) -> DedicatedNumber:
    db.session.expunge(row)
    return row


def _held(app, business_id: int) -> DedicatedNumber | None:
    with app.app_context():
        row = texting.held_number(business_id)
        return _detached(row) if row is not None else None


def _verification(app, business_id: int) -> Verification:
    with app.app_context():
        row = texting.held_number(business_id)
        verification = row.verification
        db.session.expunge(verification)
        return verification


def _setting(app, business_id: int) -> str:
    with app.app_context():
        return db.session.get(Business, business_id).sms_setting


def _activate(actions, run_jobs) -> None:
    response = actions.post(GET_URL)
    assert response.status_code == 302
    run_jobs()


def _poll(app, now: datetime | None = None) -> None:
    with app.app_context():
        verification.poll_verifications(now=now or datetime.now(UTC))


def _registration_id(app, business_id: int) -> str:
    return _verification(app, business_id).registration_id


def _as_of(app, now: datetime, action, *args, **kwargs):
    with app.app_context():
        return action(*args, now=now, **kwargs)


# --- Who is offered two-way texting ---------------------------------------------------------


def test_a_us_business_on_a_plan_with_two_way_texting_sees_the_option_and_the_button(
    business, actions
):
    text = page_text(actions.client.get(SMS_URL))
    assert "Two-way texting" in text
    assert "Get two-way texting" in text
    assert "“Do not reply” auto message" in text and "No auto reply" in text


@pytest.mark.parametrize("country", ["GB", "AU"])
def test_two_way_texting_is_hidden_outside_the_us_and_canada_with_a_plain_reason(
    texting_app, actions, make_business, country
):
    other = make_business(country=country)
    complete_business_info(texting_app, other["id"])
    actions.sign_in(other["owner"][1])
    response = actions.client.get(SMS_URL)
    text = page_text(response)
    assert response.status_code == 200
    assert "Get two-way texting" not in text
    assert 'value="two_way"' not in text
    assert "available to businesses in the United States and Canada" in text
    assert "“Do not reply” auto message" in text  # the other choices still apply


def test_two_way_texting_is_hidden_on_a_plan_without_it_with_an_upgrade_hint_naming_the_plan(
    texting_app, actions, make_business
):
    starter = make_business(plan="starter")
    complete_business_info(texting_app, starter["id"])
    actions.sign_in(starter["owner"][1])
    text = page_text(actions.client.get(SMS_URL))
    assert "Get two-way texting" not in text
    assert "Your Starter plan" in text
    assert "Upgrade to Growth ($49/month)" in text


@pytest.mark.parametrize(("country", "plan"), [("GB", "growth"), ("US", "starter")])
def test_activation_posted_directly_is_refused_where_two_way_texting_is_not_offered(
    texting_app, actions, make_business, run_jobs, sandbox, country, plan
):
    other = make_business(country=country, plan=plan)
    complete_business_info(texting_app, other["id"])
    actions.sign_in(other["owner"][1])
    actions.post(GET_URL)
    response = actions.post(SMS_URL, {"sms_setting": "two_way"})
    assert response.status_code == 422
    run_jobs()
    assert _rows(texting_app, other["id"]) == []
    assert bought_numbers(sandbox) == []
    assert _setting(texting_app, other["id"]) == "do_not_reply"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/settings/business"),
        ("POST", "/settings/business"),
        ("GET", "/settings/messages"),
        ("GET", SMS_URL),
        ("POST", SMS_URL),
        ("GET", GET_URL),
        ("POST", GET_URL),
        ("POST", "/settings/messages/sms/verification"),
    ],
)
def test_staff_cannot_open_or_change_business_info_or_sms_settings(
    texting_app, actions, business, method, url
):
    actions.sign_out()
    actions.sign_in(business["staff"][1])
    token = actions.csrf_token()
    response = actions.client.open(
        url, method=method, data={"csrf_token": token, "sms_setting": "two_way"}
    )
    assert response.status_code == 403
    assert _rows(texting_app, business["id"]) == []


def test_the_settings_page_links_to_business_info_and_sms_settings_for_owners_only(
    business, actions
):
    text = actions.client.get("/settings").get_data(as_text=True)
    assert 'href="/settings/business"' in text and f'href="{SMS_URL}"' in text
    actions.sign_out()
    actions.sign_in(business["staff"][1])
    text = actions.client.get("/settings").get_data(as_text=True)
    assert 'href="/settings/business"' not in text and f'href="{SMS_URL}"' not in text
    assert "The owner or an admin can change them." in page_text(actions.client.get("/settings"))


def test_the_faq_answers_the_common_questions(business, actions):
    text = page_text(actions.client.get(SMS_URL))
    assert "Why don't I see two-way texting?" in text
    assert "can't connect a cell phone or landline" in text
    assert "toll-free number of your business's country" in text
    assert "Receiving texts is free" in text


# --- The number ------------------------------------------------------------------------------


def test_activation_needs_complete_business_info_and_says_what_is_missing(
    texting_app, actions, make_business, run_jobs, sandbox
):
    bare = make_business()
    actions.sign_in(bare["owner"][1])
    text = page_text(actions.client.get(SMS_URL))
    assert "Before you get a number, complete your" in text
    assert "street address, city, state or province, ZIP or postal code, website" in text
    response = actions.post(GET_URL, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Before you get a number, complete your Business info" in page_text(response)
    run_jobs()
    assert _rows(texting_app, bare["id"]) == []
    assert bought_numbers(sandbox) == []


@pytest.mark.parametrize(("country", "prefix"), [("US", "+1888555"), ("CA", "+1844555")])
def test_get_two_way_texting_buys_a_toll_free_number_of_the_business_country_pointed_at_us(
    texting_app, actions, make_business, run_jobs, sandbox, country, prefix
):
    owner = make_business(country=country, time_zone="America/Toronto")
    complete_business_info(texting_app, owner["id"], region="ON", contact_phone="+14165550123")
    actions.sign_in(owner["owner"][1])
    _activate(actions, run_jobs)
    [row] = _rows(texting_app, owner["id"])
    assert row.status == "active" and row.country == country
    assert row.number.startswith(prefix)
    assert bought_numbers(sandbox) == [row.number]
    [vonage_number] = [
        n for n in sandbox.snapshot()["numbers"]["owned"] if "+" + n["msisdn"] == row.number
    ]
    assert vonage_number["moHttpUrl"] == "http://twoway.test/webhooks/vonage/inbound"
    assert _setting(texting_app, owner["id"]) == "two_way"


def test_the_panel_says_getting_your_number_then_shows_the_number_without_a_reload(
    texting_app, business, actions, run_jobs
):
    response = actions.post(GET_URL, headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert 'id="two-way-texting"' in fragment and "<html" not in fragment
    assert "Getting your number…" in page_text(response)
    assert "every 2s" in fragment and "sse:texting-changed" in fragment  # polls until it's there
    run_jobs()
    with texting_app.app_context():
        published = [
            fields[b"event"] for _, fields in get_redis().xrange(events.stream_key(business["id"]))
        ]
    assert b"texting-changed" in published  # open pages fetch the panel again at once
    number = _held(texting_app, business["id"]).number
    panel = actions.client.get(GET_URL, headers={"HX-Request": "true"})
    text = page_text(panel)
    assert "Getting your number" not in text
    assert f"({number[2:5]}) {number[5:8]}-{number[8:]}" in text
    assert "every 2s" not in panel.get_data(as_text=True)


def test_double_clicking_get_two_way_texting_gives_one_number(
    texting_app, business, actions, run_jobs, sandbox
):
    for _ in range(3):
        actions.post(GET_URL, headers={"HX-Request": "true"})
    actions.post(SMS_URL, {"sms_setting": "two_way"})
    run_jobs()
    rows = _rows(texting_app, business["id"])
    assert [row.status for row in rows] == ["active"]
    assert bought_numbers(sandbox) == [rows[0].number]


def test_two_admins_pressing_at_the_same_moment_get_one_number(
    texting_app, business, make_business, run_jobs, sandbox, monkeypatch
):
    from tests.conftest import Actions

    people = []
    for who in ("owner", "admin"):
        person = Actions(texting_app, texting_app.test_client())
        person.sign_in(business[who][1])
        people.append(person)
    # Both requests look for a held number before either stores one: the database's
    # uniqueness, not luck in timing, must keep the business to one number.
    both_looked = threading.Barrier(2, timeout=10)
    first_look = threading.local()
    original = texting.held_number

    def held_number_after_both_looked(business_id: int):
        found = original(business_id)
        if not getattr(first_look, "done", False):
            first_look.done = True
            both_looked.wait()
        return found

    monkeypatch.setattr(texting, "held_number", held_number_after_both_looked)
    tokens = [person.csrf_token() for person in people]
    answers: list[int] = []

    def press(person, token):
        response = person.client.post(
            GET_URL, data={"csrf_token": token}, headers={"HX-Request": "true"}
        )
        answers.append(response.status_code)

    threads = [
        threading.Thread(target=press, args=pair) for pair in zip(people, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == [200, 200]
    monkeypatch.undo()
    run_jobs()
    rows = _rows(texting_app, business["id"])
    assert [row.status for row in rows] == ["active"]
    assert len(bought_numbers(sandbox)) == 1


def test_a_retried_assignment_job_buys_nothing_more(
    texting_app, business, actions, run_jobs, sandbox
):
    _activate(actions, run_jobs)
    row = _held(texting_app, business["id"])
    texting_jobs.assign_dedicated_number(row.id)
    texting_jobs.assign_dedicated_number(row.id)
    run_jobs()
    assert bought_numbers(sandbox) == [row.number]
    assert len(sandbox.requests("/number/buy")) == 1
    with texting_app.app_context():
        assert db.session.execute(db.select(db.func.count(Verification.id))).scalar() == 1
    assert len(sandbox.requests("/tfn/v1/registrations")) == 1


def test_an_assignment_whose_job_died_after_buying_keeps_the_number_it_bought(
    texting_app, business, actions, sandbox, gateway
):
    actions.post(GET_URL)  # queued, not run
    row = _held(texting_app, business["id"])
    # A first run chose a number, bought it, and died before recording the result.
    [candidate, *_] = gateway.search_numbers("US")
    gateway.buy_number("US", candidate.msisdn)
    with texting_app.app_context():
        stored = db.session.get(DedicatedNumber, row.id)
        stored.number = "+" + candidate.msisdn
        stored.claimed_at = datetime.now(UTC) - timedelta(hours=1)
        db.session.commit()
    _as_of(texting_app, datetime.now(UTC), texting.assign_number, row.id)
    held = _held(texting_app, business["id"])
    assert held.status == "active" and held.number == "+" + candidate.msisdn
    assert bought_numbers(sandbox) == [held.number]
    assert len(sandbox.requests("/number/buy")) == 1  # only the first run's purchase


def test_a_second_job_does_not_work_on_a_number_another_job_is_buying(
    texting_app, business, actions, sandbox
):
    actions.post(GET_URL)
    row = _held(texting_app, business["id"])
    now = datetime.now(UTC)
    with texting_app.app_context():
        db.session.get(DedicatedNumber, row.id).claimed_at = now  # another worker has it
        db.session.commit()
        texting.assign_number(row.id, now=now + timedelta(seconds=10))
    assert sandbox.requests("/number/search") == []
    assert _held(texting_app, business["id"]).status == "assigning"


def test_no_number_for_sale_leaves_nothing_held_says_so_and_the_button_works_again(
    texting_app, business, actions, run_jobs, sandbox
):
    with sandbox.state.lock:
        stock, sandbox.state.available["US"] = sandbox.state.available["US"], []
    actions.post(SMS_URL, {"sms_setting": "no_auto_reply"})
    _activate(actions, run_jobs)
    assert [row.status for row in _rows(texting_app, business["id"])] == ["failed"]
    assert _held(texting_app, business["id"]) is None
    assert bought_numbers(sandbox) == []
    assert _setting(texting_app, business["id"]) == "no_auto_reply"  # as before the button
    text = page_text(actions.client.get(SMS_URL))
    assert "No toll-free numbers are available in United States right now" in text
    assert "Get two-way texting" in text
    with sandbox.state.lock:
        sandbox.state.available["US"] = stock
    _activate(actions, run_jobs)
    assert _held(texting_app, business["id"]).status == "active"
    assert "No toll-free numbers are available" not in page_text(actions.client.get(SMS_URL))


def test_a_purchase_vonage_refuses_leaves_no_number_and_no_half_state(
    texting_app, business, actions, run_jobs, sandbox
):
    sandbox.set_faults(http_error_count=1, http_error_status=401, paths=["/number/buy"])
    _activate(actions, run_jobs)
    [row] = _rows(texting_app, business["id"])
    assert row.status == "failed" and row.number is None
    with texting_app.app_context():
        assert db.session.execute(db.select(Verification)).first() is None
    assert bought_numbers(sandbox) == []
    assert sandbox.requests("/tfn/v1/registrations") == []
    assert _setting(texting_app, business["id"]) == "do_not_reply"
    assert "Vonage refused to set up the number" in page_text(actions.client.get(SMS_URL))


def test_a_number_whose_webhook_vonage_cannot_reach_is_given_back(
    texting_app, business, actions, run_jobs, sandbox
):
    use_sandbox(texting_app, sandbox, probe_webhooks=True)
    texting_app.config["PUBLIC_URL"] = "http://127.0.0.1:9"  # nothing answers there
    _activate(actions, run_jobs)
    [row] = _rows(texting_app, business["id"])
    assert row.status == "failed"
    assert len(sandbox.requests("/number/buy")) == 1
    assert bought_numbers(sandbox) == []  # bought, then cancelled: nothing kept
    assert len(sandbox.requests("/number/cancel")) == 1


def test_a_vonage_outage_while_buying_is_retried_later(
    texting_app, business, actions, run_jobs, sandbox
):
    sandbox.set_faults(http_error_count=1, http_error_status=503, paths=["/number/search"])
    _activate(actions, run_jobs)
    row = _held(texting_app, business["id"])
    assert row.status == "assigning" and row.attempts == 1  # the retry waits a few seconds
    texting_jobs.assign_dedicated_number(row.id)
    assert _held(texting_app, business["id"]).status == "active"
    assert len(bought_numbers(sandbox)) == 1


def test_a_long_vonage_outage_ends_with_a_clear_message_and_nothing_held(
    texting_app, business, actions, run_jobs, sandbox
):
    sandbox.set_faults(http_error_count=100, http_error_status=500, paths=["/number/search"])
    _activate(actions, run_jobs)
    row = _held(texting_app, business["id"])
    for _ in texting.ASSIGN_RETRY_DELAYS:
        texting_jobs.assign_dedicated_number(row.id)
    assert [r.status for r in _rows(texting_app, business["id"])] == ["failed"]
    assert "isn't answering right now" in page_text(actions.client.get(SMS_URL))


# --- Verification ------------------------------------------------------------------------------


def test_activation_submits_the_verification_with_the_business_info(
    texting_app, business, actions, run_jobs, sandbox
):
    _activate(actions, run_jobs)
    number = _held(texting_app, business["id"]).number
    [registration] = sandbox.snapshot()["registrations"]
    assert registration["business"]["name"] == "Bright Smile Dental"
    assert registration["business"]["address"]["street"] == "12 Main Street"
    assert registration["business"]["company_website"] == "https://brightsmile.example.com"
    assert registration["business"]["contact"]["email"] == "dana@brightsmile.example.com"
    assert registration["numbers"] == [number.lstrip("+")]
    assert "Bright Smile Dental" in registration["use_case"]["message_samples"][0]
    verification = _verification(texting_app, business["id"])
    assert verification.state == "pending" and verification.registration_id == registration["id"]


def test_a_pending_verification_shows_a_banner_on_every_signed_in_page(
    texting_app, business, actions, run_jobs
):
    _activate(actions, run_jobs)
    for url in ("/inbox", "/clients", "/actions", "/settings", SMS_URL):
        assert "is being verified" in page_text(actions.client.get(url)), url
    actions.sign_out()
    actions.sign_in(business["staff"][1])
    assert "is being verified" in page_text(actions.client.get("/inbox"))


def test_no_banner_before_activation_and_none_while_two_way_texting_is_off(
    texting_app, business, actions, run_jobs
):
    assert "is being verified" not in page_text(actions.client.get("/inbox"))
    _activate(actions, run_jobs)
    actions.post(SMS_URL, {"sms_setting": "do_not_reply"})
    assert "is being verified" not in page_text(actions.client.get("/inbox"))


def test_verified_tells_staff_in_the_app_and_emails_the_owner_exactly_once(
    texting_app, business, actions, run_jobs, sandbox, mailbox
):
    _activate(actions, run_jobs)
    run_jobs()
    emails_before = len(mailbox())
    sandbox.approve(_registration_id(texting_app, business["id"]))
    _poll(texting_app)
    _poll(texting_app)  # the poll job ran twice
    with texting_app.app_context():  # and a check raced it
        verification.check_verification(_verification(texting_app, business["id"]).id, now=T0)
    texting_jobs.poll_verifications()
    run_jobs()
    assert _verification(texting_app, business["id"]).state == "verified"
    with texting_app.app_context():
        [notification] = db.session.execute(db.select(Notification)).scalars()
        assert notification.kind == "number_verified" and notification.user_id is None
    emails = mailbox()[emails_before:]
    assert [(e["To"], "is verified" in e["Subject"]) for e in emails] == [
        (business["owner"][1], True)
    ]
    assert "is verified" in page_text(actions.client.get("/inbox"))  # the banner says so


def test_the_verified_banner_goes_away_when_dismissed_and_the_notification_is_read(
    texting_app, business, actions, run_jobs, sandbox
):
    _activate(actions, run_jobs)
    sandbox.approve(_registration_id(texting_app, business["id"]))
    _poll(texting_app)
    response = actions.post("/settings/verification-banner/dismiss", headers={"HX-Request": "true"})
    assert "is verified" not in page_text(response)
    assert "is verified" not in page_text(actions.client.get("/inbox"))
    with texting_app.app_context():
        assert db.session.execute(db.select(Notification.read_at)).scalar() is not None
    assert "Verified" in page_text(actions.client.get(GET_URL))


def test_rejected_then_corrected_and_resubmitted_then_verified(
    texting_app, business, actions, run_jobs, sandbox, mailbox
):
    _activate(actions, run_jobs)
    registration_id = _registration_id(texting_app, business["id"])
    sandbox.reject(registration_id, "The website does not load.")
    _poll(texting_app)
    _poll(texting_app)
    verification = _verification(texting_app, business["id"])
    assert (verification.state, verification.reason) == ("rejected", "The website does not load.")
    assert "needs changes" in page_text(actions.client.get("/inbox"))
    assert "The website does not load." in page_text(actions.client.get("/settings/business"))
    with texting_app.app_context():
        kinds = list(db.session.execute(db.select(Notification.kind)).scalars())
    assert kinds == ["verification_rejected"]  # told once, however often it was polled

    form = {
        "name": "Bright Smile Dental",
        "country": "US",
        "time_zone": "America/New_York",
        **{k: v for k, v in _complete_form().items()},
        "website": "brightsmile-dental.example.com",
        "resubmit": "1",
    }
    response = actions.post("/settings/business", form)
    assert response.status_code == 302
    assert _verification(texting_app, business["id"]).state == "pending"
    run_jobs()
    [registration] = sandbox.snapshot()["registrations"]
    assert registration["id"] == registration_id  # the same registration, corrected
    assert registration["status"] == "CARRIER_REVIEW"
    assert registration["business"]["company_website"] == "https://brightsmile-dental.example.com"
    assert "is being verified" in page_text(actions.client.get("/inbox"))

    sandbox.approve(registration_id)
    _poll(texting_app)
    assert _verification(texting_app, business["id"]).state == "verified"
    run_jobs()
    assert any("is verified" in email["Subject"] for email in mailbox())


def _complete_form() -> dict[str, str]:
    from tests.texting_helpers import COMPLETE_INFO

    return dict(COMPLETE_INFO)


def test_resubmitting_from_the_sms_settings_tab_sends_the_details_again(
    texting_app, business, actions, run_jobs, sandbox
):
    _activate(actions, run_jobs)
    registration_id = _registration_id(texting_app, business["id"])
    sandbox.reject(registration_id, "Add a privacy policy to the website.")
    _poll(texting_app)
    text = page_text(actions.client.get(SMS_URL))
    assert "Add a privacy policy to the website." in text and "Resubmit" in text
    actions.post("/settings/messages/sms/verification", headers={"HX-Request": "true"})
    run_jobs()
    assert [r["method"] for r in sandbox.requests(f"/tfn/v1/registrations/{registration_id}")][
        -1
    ] == "PATCH"
    assert _verification(texting_app, business["id"]).state == "pending"


def test_verification_is_checked_by_a_periodic_job_that_keeps_one_chain(
    texting_app, business, actions, run_jobs
):
    from rq.registry import ScheduledJobRegistry

    from app.services.queues import get_queue

    _activate(actions, run_jobs)
    with texting_app.app_context():
        registry = ScheduledJobRegistry(queue=get_queue())
        scheduled = [job_id for job_id in registry.get_job_ids() if "poll-verifications" in job_id]
        assert len(scheduled) == 1
        texting.schedule_periodic_jobs()  # asked again (another page view, another job)
        again = [job_id for job_id in registry.get_job_ids() if "poll-verifications" in job_id]
        assert again == scheduled


# --- Deactivation, the reservation, the daily release ---------------------------------------


def _activate_verified(app, business, actions, run_jobs, sandbox) -> DedicatedNumber:
    _activate(actions, run_jobs)
    sandbox.approve(_registration_id(app, business["id"]))
    _poll(app)
    return _held(app, business["id"])


@pytest.mark.parametrize("choice", ["do_not_reply", "no_auto_reply"])
def test_choosing_another_option_and_saving_turns_two_way_off_and_reserves_the_number(
    texting_app, business, actions, run_jobs, sandbox, choice
):
    number = _activate_verified(texting_app, business, actions, run_jobs, sandbox)
    with texting_app.app_context():
        texting.save_sms_setting(business["id"], choice, user_id=business["owner"][0], now=T0)
    held = _held(texting_app, business["id"])
    assert held.status == "reserved" and held.number == number.number
    assert held.reserved_until == datetime(2027, 4, 15, 15, 0, tzinfo=UTC)
    assert _setting(texting_app, business["id"]) == choice
    text = page_text(actions.client.get(SMS_URL))
    assert "reserved for you until Apr 15, 2027" in text
    assert bought_numbers(sandbox) == [number.number]  # still ours at Vonage


def test_saving_do_not_reply_through_the_page_says_until_when_the_number_is_kept(
    texting_app, business, actions, run_jobs
):
    _activate(actions, run_jobs)
    response = actions.post(SMS_URL, {"sms_setting": "do_not_reply"}, follow_redirects=True)
    assert "two-way texting is off. Your number is reserved for you until" in page_text(response)


def test_deactivating_while_the_number_is_being_bought_is_refused(texting_app, business, actions):
    actions.post(GET_URL)
    response = actions.post(SMS_URL, {"sms_setting": "do_not_reply"})
    assert response.status_code == 422
    assert "still being set up" in page_text(response)
    assert _setting(texting_app, business["id"]) == "two_way"


def test_reactivating_at_2_months_29_days_gives_the_same_number_and_its_verification(
    texting_app, business, actions, run_jobs, sandbox
):
    number = _activate_verified(texting_app, business, actions, run_jobs, sandbox)
    owner_id = business["owner"][0]
    _as_of(
        texting_app, T0, texting.save_sms_setting, business["id"], "do_not_reply", user_id=owner_id
    )
    later = datetime(2027, 4, 13, 15, 0, tzinfo=UTC)  # 2 months and 29 days after
    _as_of(texting_app, later, texting.release_expired_numbers)  # the daily job ran that day
    _as_of(texting_app, later, texting.activate_two_way_texting, business["id"], user_id=owner_id)
    run_jobs()
    held = _held(texting_app, business["id"])
    assert (held.id, held.number, held.status) == (number.id, number.number, "active")
    assert _verification(texting_app, business["id"]).state == "verified"
    assert len(sandbox.requests("/number/buy")) == 1
    assert len(sandbox.snapshot()["registrations"]) == 1
    with texting_app.app_context():
        assert texting.sender_for(business["id"], "transactional") == number.number


def test_after_3_months_and_a_day_the_job_has_released_the_number_and_reactivation_buys_a_new_one(
    texting_app, business, actions, run_jobs, sandbox
):
    number = _activate_verified(texting_app, business, actions, run_jobs, sandbox)
    owner_id = business["owner"][0]
    _as_of(
        texting_app, T0, texting.save_sms_setting, business["id"], "no_auto_reply", user_id=owner_id
    )
    later = datetime(2027, 4, 16, 15, 0, tzinfo=UTC)  # 3 months and a day after
    texting_jobs.release_expired_numbers(now=later.isoformat())
    [released] = _rows(texting_app, business["id"])
    assert released.status == "released" and released.released_at == later
    assert bought_numbers(sandbox) == []  # cancelled at Vonage
    assert sandbox.requests("/number/cancel")[0]["params"]["msisdn"] == number.number.lstrip("+")

    _as_of(texting_app, later, texting.activate_two_way_texting, business["id"], user_id=owner_id)
    run_jobs()
    held = _held(texting_app, business["id"])
    assert held.id != number.id and held.status == "active"
    assert bought_numbers(sandbox) == [held.number]
    registrations = sandbox.snapshot()["registrations"]
    assert len(registrations) == 2  # a new verification for the new number
    verification = _verification(texting_app, business["id"])
    assert verification.state == "pending"
    assert verification.registration_id != _first_registration(registrations, number.number)


def _first_registration(registrations: list[dict], number: str) -> str:
    return next(r["id"] for r in registrations if r["numbers"] == [number.lstrip("+")])


def test_the_daily_job_keeps_numbers_still_within_their_three_months(
    texting_app, business, actions, run_jobs, sandbox
):
    number = _activate_verified(texting_app, business, actions, run_jobs, sandbox)
    owner_id = business["owner"][0]
    _as_of(
        texting_app, T0, texting.save_sms_setting, business["id"], "do_not_reply", user_id=owner_id
    )
    texting_jobs.release_expired_numbers(now=datetime(2027, 4, 15, 14, 59, tzinfo=UTC).isoformat())
    assert _held(texting_app, business["id"]).status == "reserved"
    assert bought_numbers(sandbox) == [number.number]


def test_a_release_that_vonage_cannot_do_today_is_tried_again_tomorrow(
    texting_app, business, actions, run_jobs, sandbox
):
    _activate_verified(texting_app, business, actions, run_jobs, sandbox)
    owner_id = business["owner"][0]
    _as_of(
        texting_app, T0, texting.save_sms_setting, business["id"], "do_not_reply", user_id=owner_id
    )
    sandbox.set_faults(http_error_count=1, http_error_status=500, paths=["/number/cancel"])
    day = datetime(2027, 4, 16, 15, 0, tzinfo=UTC)
    _as_of(texting_app, day, texting.release_expired_numbers)
    assert [r.status for r in _rows(texting_app, business["id"])] == ["releasing"]
    _as_of(texting_app, day + timedelta(days=1), texting.release_expired_numbers)
    assert [r.status for r in _rows(texting_app, business["id"])] == ["released"]
    assert bought_numbers(sandbox) == []


def test_a_business_that_moved_country_while_its_number_was_reserved_gets_a_new_countrys_number(
    texting_app, business, actions, run_jobs, sandbox
):
    number = _activate_verified(texting_app, business, actions, run_jobs, sandbox)
    actions.post(SMS_URL, {"sms_setting": "do_not_reply"})
    form = {
        "name": "Bright Smile Dental",
        "country": "CA",
        "time_zone": "America/Toronto",
        **_complete_form(),
        "region": "ON",
    }
    assert actions.post("/settings/business", form).status_code == 302
    _activate(actions, run_jobs)
    held = _held(texting_app, business["id"])
    assert held.country == "CA" and held.number.startswith("+1844")
    _as_of(texting_app, datetime.now(UTC), texting.release_expired_numbers)
    assert bought_numbers(sandbox) == [held.number]
    assert number.number not in bought_numbers(sandbox)


# --- Which number texts go from -------------------------------------------------------------


def test_transactional_texts_go_from_the_system_number_until_the_dedicated_number_is_verified(
    texting_app, business, actions, run_jobs, sandbox
):
    with texting_app.app_context():
        assert texting.sender_for(business["id"], "transactional") == "+18885550000"
    _activate(actions, run_jobs)
    number = _held(texting_app, business["id"]).number
    with texting_app.app_context():
        assert texting.sender_for(business["id"], "transactional") == "+18885550000"
        assert texting.sender_for(business["id"], "direct") == number  # with a warning
    sandbox.approve(_registration_id(texting_app, business["id"]))
    _poll(texting_app)
    with texting_app.app_context():
        assert texting.sender_for(business["id"], "transactional") == number


def test_transactional_texts_go_from_the_system_number_again_after_deactivation(
    texting_app, business, actions, run_jobs, sandbox
):
    _activate_verified(texting_app, business, actions, run_jobs, sandbox)
    actions.post(SMS_URL, {"sms_setting": "do_not_reply"})
    with texting_app.app_context():
        assert texting.sender_for(business["id"], "transactional") == "+18885550000"
        with pytest.raises(texting.ServiceError):
            texting.sender_for(business["id"], "direct")


def test_marketing_texts_always_go_from_the_marketing_system_number(
    texting_app, business, actions, run_jobs, sandbox
):
    _activate_verified(texting_app, business, actions, run_jobs, sandbox)
    with texting_app.app_context():
        assert texting.sender_for(business["id"], "marketing") == "+18885550001"


def test_system_numbers_are_configured_in_one_place(texting_app, business):
    texting_app.config.update(TRANSACTIONAL_SYSTEM_NUMBER="18005550100")
    with texting_app.app_context():
        numbers = texting.system_numbers()
        assert numbers.transactional == "+18005550100"
        assert "+18885550001" in numbers
        assert texting.sender_for(business["id"], "transactional") == "+18005550100"


def test_inbound_texts_to_a_dedicated_number_find_its_business_even_when_reserved(
    texting_app, business, actions, run_jobs, sandbox
):
    number = _activate_verified(texting_app, business, actions, run_jobs, sandbox)
    with texting_app.app_context():
        assert (
            texting.find_dedicated_number(number.number.lstrip("+")).business_id == business["id"]
        )
    actions.post(SMS_URL, {"sms_setting": "do_not_reply"})
    with texting_app.app_context():
        found = texting.find_dedicated_number(number.number)
        assert (found.business_id, found.status) == (business["id"], "reserved")
        assert texting.find_dedicated_number("+18885559999") is None


def test_three_months_are_calendar_months():
    assert texting.add_months(datetime(2027, 1, 15, tzinfo=UTC), 3) == datetime(
        2027, 4, 15, tzinfo=UTC
    )
    assert texting.add_months(datetime(2026, 11, 30, tzinfo=UTC), 3) == datetime(
        2027, 2, 28, tzinfo=UTC
    )
    assert texting.add_months(datetime(2027, 10, 31, tzinfo=UTC), 3) == datetime(
        2028, 1, 31, tzinfo=UTC
    )
