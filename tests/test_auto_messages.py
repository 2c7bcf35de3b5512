"""Automatic messages about appointments (issue 11 items 2 and 3): each goes as one
transactional text on the pipeline from the right number, out-of-texts fails them with one
owner alert a day, opt-outs get no texts (email where the row allows), and the Settings →
Auto messages tab edits them."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import (
    Appointment,
    AutoMessageSetting,
    ClientEmail,
    ClientNote,
    DailyAlert,
    Message,
    MessagePart,
    Notification,
    OptOut,
)
from app.models.types import utcnow
from app.services import balance, message_templates, texting
from app.services.booking import auto_messages
from app.services.booking.signals import appointment_changed
from app.services.phones import client_time_zone
from app.services.segments import check_text
from tests.conftest import TEST_DATABASE_URL, page_text
from tests.sending_helpers import accepted, give_dedicated_number, make_client, sends
from tests.texting_helpers import complete_business_info, use_sandbox

SHARED = "+18885550000"  # the sandbox's transactional system number
EVENTS = ("booking_confirmation", "rescheduled", "cancelled", "reminder", "thank_you")
CHANGE_OF = {
    "booking_confirmation": "booked",
    "rescheduled": "rescheduled",
    "cancelled": "cancelled",
}


@pytest.fixture
def texting_app(app, sandbox):
    use_sandbox(app, sandbox)
    return app


@pytest.fixture
def shared(texting_app, make_business):
    """A business without a verified number: booking texts go from the shared number."""
    business = make_business("Bright Smile Dental", staff=("staff",))
    complete_business_info(texting_app, business["id"])
    business["client"] = make_client(texting_app, business["id"])
    return business


@pytest.fixture
def verified(texting_app, make_business, sandbox, run_jobs):
    """A business with two-way texting on a verified number."""
    business = make_business("Lakeside Clinic", staff=("staff",))
    complete_business_info(texting_app, business["id"])
    business["number"] = give_dedicated_number(texting_app, business["id"], sandbox, run_jobs)
    business["client"] = make_client(texting_app, business["id"])
    return business


def _appointment(app, business, *, client_id=None, starts_in=timedelta(days=3), **values) -> int:
    with app.app_context():
        appointment = Appointment(
            business_id=business["id"],
            client_id=client_id or business["client"],
            service="Cleaning",
            starts_at=utcnow() + starts_in,
            duration_minutes=45,
            **values,
        )
        db.session.add(appointment)
        db.session.commit()
        return appointment.id


def _change(app, appointment_id: int, change: str, *, now=None) -> None:
    """What the appointments service does: the change and its signal in one transaction."""
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        if change == "cancelled":
            appointment.state = "cancelled"
        appointment_changed.send(
            appointment, change=change, previous_starts_at=None, user_id=None, now=now or utcnow()
        )
        db.session.commit()


def _send(app, appointment_id: int, event: str, *, now=None, **kwargs) -> int | None:
    """What the reminders' scheduler does at the due time (and the receiver on a change)."""
    if event in CHANGE_OF and not kwargs:
        _change(app, appointment_id, CHANGE_OF[event], now=now)
        with app.app_context():
            return db.session.execute(
                db.select(Message.id)
                .where(Message.appointment_id == appointment_id, Message.auto_event == event)
                .order_by(Message.id.desc())
            ).scalar()
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        message = auto_messages.add_auto_message(appointment, event, now=now or utcnow(), **kwargs)
        db.session.commit()
        return message.id if message is not None else None


def _set(app, business, event: str, **values) -> None:
    with app.app_context():
        row = db.session.get(AutoMessageSetting, (business["id"], event)) or AutoMessageSetting(
            business_id=business["id"], event=event, reminder_hours=[24]
        )
        for name, value in values.items():
            setattr(row, name, value)
        db.session.add(row)
        db.session.commit()


def _messages(app) -> list[Message]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Message).order_by(Message.id)).scalars())
        for row in rows:
            db.session.expunge(row)
        return rows


def _add_email(app, client_id: int, business_id: int) -> None:
    with app.app_context():
        db.session.add(
            ClientEmail(
                business_id=business_id,
                client_id=client_id,
                email="sam@example.com",
                is_primary=True,
            )
        )
        db.session.commit()


def _opt_out(app, business_id: int, number: str = "+15557654321") -> None:
    with app.app_context():
        db.session.add(OptOut(business_id=business_id, number=number))
        db.session.commit()


def _notes(app, client_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.execute(
                db.select(ClientNote.body).where(ClientNote.client_id == client_id)
            ).scalars()
        )


# --- Each event: one message of its kind, from the right number -------------------------------


@pytest.mark.parametrize("event", EVENTS)
def test_each_event_sends_one_transactional_text_from_the_shared_number_before_verification(
    texting_app, shared, sandbox, run_jobs, event
):
    _set(texting_app, shared, "thank_you", enabled=True, channel="text_or_email")
    appointment_id = _appointment(texting_app, shared)
    message_id = _send(texting_app, appointment_id, event)
    run_jobs()
    [message] = _messages(texting_app)
    assert message.id == message_id
    assert (message.auto_event, message.appointment_id) == (event, appointment_id)
    assert (message.kind, message.channel, message.sender) == ("transactional", "text", SHARED)
    assert message.status == "sent"
    assert [m["from"] for m in accepted(sandbox)] == [SHARED.lstrip("+")]


@pytest.mark.parametrize("event", EVENTS)
def test_each_event_sends_one_text_from_the_business_number_once_it_is_verified(
    texting_app, verified, sandbox, run_jobs, event
):
    _set(texting_app, verified, "thank_you", enabled=True, channel="text_or_email")
    appointment_id = _appointment(texting_app, verified)
    _send(texting_app, appointment_id, event)
    run_jobs()
    [message] = _messages(texting_app)
    assert (message.auto_event, message.sender) == (event, verified["number"])
    assert [m["from"] for m in accepted(sandbox)] == [verified["number"].lstrip("+")]


def test_a_message_is_charged_and_split_by_the_pipeline(texting_app, shared, run_jobs):
    _set(texting_app, shared, "booking_confirmation", template="{location} " + "x" * 200)
    appointment_id = _appointment(texting_app, shared, location="12 Main Street")
    message_id = _send(texting_app, appointment_id, "booking_confirmation")
    with texting_app.app_context():
        message = db.session.get(Message, message_id)
        assert len(message.parts) == check_text(message.body).count == 2
        assert balance.balance_for(shared["id"], utcnow()).total == 498
    run_jobs()


def test_a_change_rolled_back_sends_nothing(texting_app, shared, sandbox, run_jobs):
    appointment_id = _appointment(texting_app, shared)
    with texting_app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        appointment_changed.send(
            appointment, change="booked", previous_starts_at=None, user_id=None, now=utcnow()
        )
        db.session.rollback()
    run_jobs()
    assert _messages(texting_app) == [] and sends(sandbox) == []


def test_a_change_that_sends_nothing_and_an_event_turned_off_send_nothing(
    texting_app, shared, run_jobs
):
    appointment_id = _appointment(texting_app, shared)
    _change(texting_app, appointment_id, "confirmed")
    _set(texting_app, shared, "booking_confirmation", enabled=False)
    _change(texting_app, appointment_id, "booked")
    assert _send(texting_app, appointment_id, "thank_you") is None  # off by default
    assert _messages(texting_app) == []


def test_a_reminder_for_a_cancelled_appointment_or_beyond_the_reminders_set_sends_nothing(
    texting_app, shared
):
    appointment_id = _appointment(texting_app, shared)
    assert _send(texting_app, appointment_id, "reminder", reminder_number=2) is None
    assert _send(texting_app, appointment_id, "reminder", reminder_number=1) is not None
    cancelled = _appointment(texting_app, shared, state="cancelled")
    assert _send(texting_app, cancelled, "reminder", reminder_number=1) is None


def test_the_reminder_asks_to_reply_c_only_where_replies_reach_the_business(
    texting_app, shared, verified
):
    for business in (shared, verified):
        _set(texting_app, business, "reminder", ask_to_confirm=True)
    shared_text = _send(texting_app, _appointment(texting_app, shared), "reminder")
    own_text = _send(texting_app, _appointment(texting_app, verified), "reminder")
    with texting_app.app_context():
        assert not db.session.get(Message, shared_text).body.endswith("Reply C to confirm.")
        assert db.session.get(Message, own_text).body.endswith(" Reply C to confirm.")


def test_the_texts_dates_and_times_are_in_the_clients_zone_where_it_differs(texting_app, shared):
    # 15:00 UTC in January: 10:00 AM in New York (the business's zone), 9:00 AM in Chicago.
    with texting_app.app_context():
        appointment = Appointment(
            business_id=shared["id"],
            client_id=shared["client"],
            service="Cleaning",
            starts_at=utcnow().replace(year=utcnow().year + 1, month=1, day=20, hour=15, minute=0),
        )
        db.session.add(appointment)
        db.session.flush()
        at_home = auto_messages.appointment_context(appointment, zone="America/New_York")
        assert at_home["appointment_time"] == "10:00 AM"
        chicago = client_time_zone(None, "+13125550123", "America/New_York")
        assert chicago == "America/Chicago"
        abroad = auto_messages.appointment_context(appointment, zone=chicago)
        assert abroad["appointment_time"] == "9:00 AM CST"
        assert client_time_zone("America/Los_Angeles", "+13125550123", "America/New_York") == (
            "America/Los_Angeles"
        )
        assert client_time_zone(None, "+15557654321", "America/New_York") == "America/New_York"
        db.session.rollback()


def test_the_client_cards_zone_is_used_for_the_text(texting_app, shared):
    with texting_app.app_context():
        from app.models import Client

        db.session.get(Client, shared["client"]).time_zone = "America/Los_Angeles"
        db.session.commit()
    _set(texting_app, shared, "booking_confirmation", template="At {appointment_time}")
    message_id = _send(texting_app, _appointment(texting_app, shared), "booking_confirmation")
    with texting_app.app_context():
        assert re.fullmatch(r"At \d+:\d\d [AP]M P[SD]T", db.session.get(Message, message_id).body)


# --- Out of texts ------------------------------------------------------------------------------


def _empty_balance(app, business) -> None:
    with app.app_context():
        balance.reserve(
            business["id"], balance.balance_for(business["id"], utcnow()).total, utcnow()
        )
        db.session.commit()


def test_out_of_texts_stores_failed_messages_sends_nothing_and_alerts_the_owner_once_a_day(
    texting_app, shared, sandbox, run_jobs, mailbox
):
    _empty_balance(texting_app, shared)
    now = utcnow().replace(hour=15)  # mid-day in New York: the same local day throughout
    for minutes in range(4):
        appointment_id = _appointment(texting_app, shared)
        _send(
            texting_app,
            appointment_id,
            "booking_confirmation",
            now=now + timedelta(minutes=minutes),
        )
    run_jobs()
    messages = _messages(texting_app)
    assert len(messages) == 4 and {m.status for m in messages} == {"failed"}
    assert sends(sandbox) == []
    with texting_app.app_context():
        reasons = set(db.session.execute(db.select(MessagePart.reason)).scalars())
        assert reasons == {auto_messages.OUT_OF_TEXTS_REASON}
        alerts = (
            db.session.execute(db.select(Notification).where(Notification.kind == "out_of_texts"))
            .scalars()
            .all()
        )
        assert len(alerts) == 1
    emails = [m for m in mailbox() if "out of texts" in m["Subject"]]
    assert [m["To"] for m in emails] == [shared["owner"][1]]

    _send(
        texting_app,
        _appointment(texting_app, shared),
        "booking_confirmation",
        now=now + timedelta(days=1),
    )
    run_jobs()
    with texting_app.app_context():
        assert (
            db.session.execute(db.select(db.func.count()).select_from(DailyAlert)).scalar_one() == 2
        )
    assert len([m for m in mailbox() if "out of texts" in m["Subject"]]) == 2


def test_an_out_of_texts_message_shows_failed_with_its_reason_in_the_conversation(
    texting_app, shared, actions
):
    _empty_balance(texting_app, shared)
    _send(texting_app, _appointment(texting_app, shared), "booking_confirmation")
    actions.sign_in(shared["owner"][1])
    html = page_text(actions.client.get(f"/messages/clients/{shared['client']}"))
    assert "Out of texts" in html and "Booking confirmation · from the shared number" in html


def test_a_resend_after_buying_texts_sends_the_failed_message(
    texting_app, shared, sandbox, run_jobs
):
    from app.services import sending

    _empty_balance(texting_app, shared)
    message_id = _send(texting_app, _appointment(texting_app, shared), "booking_confirmation")
    with texting_app.app_context():
        balance.add_purchased(shared["id"], 10, utcnow())
        sending.resend(shared["id"], message_id, now=utcnow())
    run_jobs()
    assert len(accepted(sandbox)) == 1


# --- Opt-outs and channels ---------------------------------------------------------------------


def test_an_opted_out_client_gets_no_text_and_the_card_says_why(texting_app, shared, run_jobs):
    _set(texting_app, shared, "booking_confirmation", channel="text")
    _add_email(texting_app, shared["client"], shared["id"])
    _opt_out(texting_app, shared["id"])
    assert _send(texting_app, _appointment(texting_app, shared), "booking_confirmation") is None
    assert _messages(texting_app) == []
    assert any("opted out" in note for note in _notes(texting_app, shared["client"]))


def test_an_opted_out_client_with_an_email_gets_an_email_with_text_or_email(
    texting_app, shared, sandbox, run_jobs, mailbox
):
    _add_email(texting_app, shared["client"], shared["id"])
    _opt_out(texting_app, shared["id"])
    _send(texting_app, _appointment(texting_app, shared), "booking_confirmation")
    run_jobs()
    [message] = _messages(texting_app)
    assert (message.channel, message.auto_event, message.status) == (
        "email",
        "booking_confirmation",
        "sent",
    )
    assert sends(sandbox) == []
    [email] = [m for m in mailbox() if m["To"] == "sam@example.com"]
    assert email["Subject"] == "Your booking with Bright Smile Dental"


def test_an_opted_out_client_without_an_email_gets_nothing_recorded(texting_app, shared):
    _opt_out(texting_app, shared["id"])
    assert _send(texting_app, _appointment(texting_app, shared), "booking_confirmation") is None
    assert _messages(texting_app) == []
    assert any(
        "opted out of your texts and has no email" in n
        for n in _notes(texting_app, shared["client"])
    )


def test_the_email_channel_always_emails(texting_app, shared, sandbox, run_jobs):
    _set(texting_app, shared, "booking_confirmation", channel="email")
    _add_email(texting_app, shared["client"], shared["id"])
    _send(texting_app, _appointment(texting_app, shared), "booking_confirmation")
    run_jobs()
    assert [m.channel for m in _messages(texting_app)] == ["email"] and sends(sandbox) == []


def test_a_client_without_phone_or_email_gets_nothing_and_the_card_says_why(texting_app, shared):
    nobody = make_client(texting_app, shared["id"], phone=None)
    appointment_id = _appointment(texting_app, shared, client_id=nobody)
    assert _send(texting_app, appointment_id, "booking_confirmation") is None
    assert _messages(texting_app) == []
    assert any("no phone number or email" in note for note in _notes(texting_app, nobody))


# --- Defaults and settings --------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS)
def test_each_default_text_names_the_business_and_is_one_gsm_text_with_typical_values(event):
    template = auto_messages.DEFAULT_TEMPLATES[event]
    assert "{business_name}" in template
    assert message_templates.validate(template, limit=auto_messages.template_limit(event)) == []
    suffix = auto_messages.CONFIRM_SUFFIX if event == "reminder" else ""
    preview = message_templates.preview(template, suffix=suffix)
    assert preview.split.encoding == "GSM-7" and preview.count == 1


def test_the_defaults_apply_without_a_row(app, make_business):
    business = make_business()
    with app.app_context():
        reminder = auto_messages.setting_for(business["id"], "reminder")
        thank_you = auto_messages.setting_for(business["id"], "thank_you")
    assert reminder.enabled and reminder.reminder_hours == (24,)
    assert reminder.channel == "text_or_email" and not reminder.customised
    assert not thank_you.enabled


def test_saving_refuses_bad_input_and_changes_nothing(app, make_business):
    business = make_business()
    with app.app_context():
        for bad in (
            dict(template="Hi {nobody}"),
            dict(channel="fax"),
            dict(reminder_hours=[3]),
            dict(reminder_hours=[1, 2, 24]),
        ):
            values = (
                dict(
                    enabled=True,
                    channel="text",
                    template="Hi {client_first_name}",
                    reminder_hours=[24],
                )
                | bad
            )
            with pytest.raises(auto_messages.ServiceError):
                auto_messages.save_setting(
                    business["id"], "reminder", user_id=None, now=utcnow(), **values
                )
            db.session.rollback()
        assert db.session.execute(db.select(AutoMessageSetting)).first() is None


def test_the_confirm_options_are_kept_unchanged_where_replies_cannot_reach(app, make_business):
    business = make_business()
    with app.app_context():
        saved = auto_messages.save_setting(
            business["id"],
            "reminder",
            enabled=True,
            channel="text",
            template=auto_messages.DEFAULT_TEMPLATES["reminder"],
            reminder_hours=[48, 2],
            ask_to_confirm=True,
            user_id=None,
            now=utcnow(),
        )
    assert saved.reminder_hours == (48, 2) and not saved.ask_to_confirm and not saved.customised


# --- The Auto messages tab ---------------------------------------------------------------------

TAB = "/settings/messages/auto"


def test_the_auto_messages_tab_lists_every_event_beside_sms_settings(texting_app, shared, actions):
    actions.sign_in(shared["owner"][1])
    html = page_text(actions.client.get(TAB))
    for label in (
        "SMS Settings",
        "Auto messages",
        "Booking confirmation",
        "Rescheduled",
        "Cancelled",
        "Reminder",
        "Thank-you",
        "1 text",
    ):
        assert label in html
    assert 'href="/settings/messages/auto"' in page_text(
        actions.client.get("/settings/messages/sms")
    )


def test_staff_cannot_see_or_change_the_auto_messages(texting_app, shared, actions):
    actions.sign_in(shared["staff"][1])
    assert actions.client.get(TAB).status_code == 403
    token = actions.csrf_token()
    for url in (f"{TAB}/reminder", f"{TAB}/reminder/reset", f"{TAB}/reminder/preview"):
        assert (
            actions.client.post(url, data={"csrf_token": token, "template": "x"}).status_code == 403
        )


def test_an_unknown_event_answers_404(texting_app, shared, actions):
    actions.sign_in(shared["owner"][1])
    assert actions.post(f"{TAB}/birthday", {"template": "Hi"}).status_code == 404


def _form(event: str, template: str, **extra) -> dict:
    return {"enabled": "1", "channel": "text", "template": template, **extra}


def test_saving_a_template_with_an_unknown_placeholder_shows_the_known_ones_and_changes_nothing(
    texting_app, shared, actions
):
    actions.sign_in(shared["owner"][1])
    response = actions.post(
        f"{TAB}/booking_confirmation", _form("booking_confirmation", "Hi {nme}")
    )
    assert response.status_code == 422
    html = page_text(response)
    assert "{nme}" in html and "{client_first_name}" in html
    with texting_app.app_context():
        assert db.session.execute(db.select(AutoMessageSetting)).first() is None


def test_a_template_is_saved_and_reset_to_its_default_from_the_tab(texting_app, shared, actions):
    actions.sign_in(shared["owner"][1])
    response = actions.post(
        f"{TAB}/cancelled",
        _form("cancelled", "Sorry {client_first_name}, {business_name} cancelled."),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "saved" in page_text(response)
    with texting_app.app_context():
        assert auto_messages.setting_for(shared["id"], "cancelled").customised
    response = actions.post(f"{TAB}/cancelled/reset", headers={"HX-Request": "true"})
    assert auto_messages.DEFAULT_TEMPLATES["cancelled"] in page_text(response)
    with texting_app.app_context():
        assert not auto_messages.setting_for(shared["id"], "cancelled").customised


def test_the_preview_shows_sample_data_and_the_split_functions_part_count(
    texting_app, shared, actions
):
    actions.sign_in(shared["owner"][1])
    template = "Hi {client_first_name}! " + "See you soon. " * 15
    html = page_text(actions.post(f"{TAB}/booking_confirmation/preview", {"template": template}))
    expected = check_text(
        message_templates.render(
            template, message_templates.sample_context(business_name="Bright Smile Dental")
        )
    )
    assert "Hi Sam!" in html and expected.summary in html and expected.count == 2


def test_the_editor_hides_the_confirm_options_on_the_shared_number_and_says_why(
    texting_app, shared, actions
):
    actions.sign_in(shared["owner"][1])
    html = page_text(actions.client.get(TAB))
    assert "Reply C to confirm" not in html and 'name="ask_to_confirm"' not in html
    assert "can't confirm by replying" in html


def test_the_editor_offers_the_confirm_options_on_a_verified_number(texting_app, verified, actions):
    actions.sign_in(verified["owner"][1])
    html = page_text(actions.client.get(TAB))
    assert 'name="ask_to_confirm"' in html and 'name="thank_for_confirming"' in html
    actions.post(
        f"{TAB}/reminder",
        _form(
            "reminder",
            auto_messages.DEFAULT_TEMPLATES["reminder"],
            reminder_hours="24",
            ask_to_confirm="1",
            confirm_shown="1",
        ),
    )
    with texting_app.app_context():
        assert auto_messages.setting_for(verified["id"], "reminder").ask_to_confirm


def test_one_business_never_sees_or_changes_anothers_auto_messages(
    texting_app, shared, make_business, actions
):
    other = make_business("Other Place")
    actions.sign_in(other["owner"][1])
    actions.post(
        f"{TAB}/thank_you", _form("thank_you", "Other Place thanks you, {client_first_name}")
    )
    with texting_app.app_context():
        assert not auto_messages.setting_for(shared["id"], "thank_you").enabled
        assert auto_messages.setting_for(other["id"], "thank_you").enabled
    actions.sign_out()
    actions.sign_in(shared["owner"][1])
    assert "Other Place thanks you" not in page_text(actions.client.get(TAB))


def test_the_conversation_shows_what_each_automatic_text_is_and_its_number(
    texting_app, verified, actions, run_jobs
):
    _send(texting_app, _appointment(texting_app, verified), "reminder")
    actions.sign_in(verified["owner"][1])
    html = page_text(actions.client.get(f"/messages/clients/{verified['client']}"))
    assert "Reminder · from your number" in html


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="real concurrent transactions need PostgreSQL")
def test_senders_racing_on_an_empty_balance_alert_the_owner_once(texting_app, shared, run_jobs):
    _empty_balance(texting_app, shared)
    appointment_ids = [_appointment(texting_app, shared) for _ in range(6)]
    start = threading.Barrier(len(appointment_ids), timeout=10)
    errors: list[BaseException] = []

    def send(appointment_id: int) -> None:
        try:
            with texting_app.app_context():
                appointment = db.session.get(Appointment, appointment_id)
                start.wait()
                auto_messages.add_auto_message(appointment, "booking_confirmation", now=utcnow())
                db.session.commit()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=send, args=(i,)) for i in appointment_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with texting_app.app_context():
        assert db.session.execute(
            db.select(db.func.count()).select_from(Message).where(Message.status == "failed")
        ).scalar_one() == len(appointment_ids)
        assert (
            db.session.execute(db.select(db.func.count()).select_from(Notification)).scalar_one()
            == 1
        )


def test_while_the_number_is_pending_booking_texts_go_from_the_shared_number_and_confirm_is_hidden(
    texting_app, shared, actions, run_jobs
):
    with texting_app.app_context():
        texting.activate_two_way_texting(shared["id"], user_id=shared["owner"][0], now=utcnow())
    run_jobs()  # the number is bought; its verification is pending
    with texting_app.app_context():
        assert texting.held_number(shared["id"]).verification.state == "pending"
    message_id = _send(texting_app, _appointment(texting_app, shared), "booking_confirmation")
    with texting_app.app_context():
        assert db.session.get(Message, message_id).sender == SHARED
    actions.sign_in(shared["owner"][1])
    html = page_text(actions.client.get(TAB))
    assert 'name="ask_to_confirm"' not in html and "Until the carriers verify" in html
