"""Staff alerts (issue 11 item 6): each staff member hears of bookings, cancellations,
confirmations by reply and new leads on the channels they chose on their profile: in the app
(and push), by email, by a text from the shared system number charged to the balance."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import (
    Appointment,
    Client,
    Message,
    MessagePart,
    Notification,
    StaffAlert,
    TextLedgerEntry,
    User,
)
from app.models.types import utcnow
from app.services import balance, inbox
from app.services.booking import staff_alerts
from app.services.booking.signals import appointment_changed
from tests.conftest import page_text, sign_in_without_password
from tests.inbound_helpers import (
    SYSTEM,
    dedicated_number,
    deliver,
    inbound_messages,
    make_known_client,
    text_fields,
)
from tests.texting_helpers import use_sandbox

MOBILE = "+15551230001"
NEW_NUMBER = "+15559870001"


@pytest.fixture
def shop(app, make_business):
    made = make_business("Bright Smile Dental", plan="starter", staff=("staff",))
    made["client"] = make_known_client(app, made["id"], name="Sam Client")
    return made


def _appointment(app, business_id: int, client_id: int, **values) -> int:
    with app.app_context():
        row = Appointment(
            business_id=business_id,
            client_id=client_id,
            service=values.pop("service", "Cleaning"),
            starts_at=values.pop("starts_at", utcnow() + timedelta(days=2)),
            **values,
        )
        db.session.add(row)
        db.session.commit()
        return row.id


def _choose(app, user_id: int, mobile: str = "", **chosen: set[str]) -> None:
    with app.app_context():
        user = db.session.get(User, user_id)
        staff_alerts.save_alert_choices(
            user,
            mobile_number=mobile,
            chosen={event: chosen.get(event, {"in_app"}) for event in staff_alerts.ALERT_EVENTS},
            now=utcnow(),
        )


def _alert(app, shop, what: str = "booking", **ids) -> None:
    if not ids:
        ids = {"appointment_id": _appointment(app, shop["id"], shop["client"])}
    with app.app_context():
        staff_alerts.alert_staff(
            shop["id"],
            what,
            text="New booking: Sam Client, Cleaning, Tue, Mar 4 at 3:00 PM",
            link=f"/clients/{shop['client']}",
            now=utcnow(),
            **ids,
        )
        db.session.commit()


def _notifications(app, business_id: int) -> list[tuple[int | None, str]]:
    with app.app_context():
        return [
            (n.user_id, n.kind)
            for n in db.session.execute(
                db.select(Notification)
                .where(Notification.business_id == business_id)
                .order_by(Notification.id)
            ).scalars()
        ]


def _alert_texts(app) -> list[Message]:
    with app.app_context():
        rows = list(
            db.session.execute(
                db.select(Message).where(Message.auto_event == "staff_alert").order_by(Message.id)
            ).scalars()
        )
        for row in rows:
            db.session.expunge(row)
        return rows


# --- Channels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "kind"),
    [
        ("booking", "new_booking"),
        ("cancellation", "booking_cancelled"),
        ("confirmation", "booking_confirmed"),
        ("lead", "new_lead"),
    ],
)
def test_by_default_each_staff_member_hears_of_each_event_in_the_app_only(
    app, shop, mailbox, run_jobs, what, kind
):
    _alert(app, shop, what)
    run_jobs()
    owner, staff = shop["owner"][0], shop["staff"][0]
    assert _notifications(app, shop["id"]) == [(owner, kind), (staff, kind)]
    assert mailbox() == []
    assert _alert_texts(app) == []


def test_a_staff_member_who_unticks_in_app_gets_no_notification(app, shop, run_jobs):
    _choose(app, shop["staff"][0], booking=set())
    _alert(app, shop)
    assert _notifications(app, shop["id"]) == [(shop["owner"][0], "new_booking")]


def test_email_alerts_go_to_the_staff_members_own_address(app, shop, mailbox, run_jobs):
    _choose(app, shop["staff"][0], booking={"email"})
    _alert(app, shop)
    run_jobs()
    (email,) = mailbox()
    assert email["To"] == shop["staff"][1]
    assert email["Subject"] == "New booking: Sam Client, Cleaning, Tue, Mar 4 at 3:00 PM"
    assert f"http://twoway.test/clients/{shop['client']}" in email.get_content()
    assert _notifications(app, shop["id"]) == [(shop["owner"][0], "new_booking")]


def test_text_alerts_go_from_the_shared_system_number_and_are_charged_to_the_balance(
    app, shop, sandbox, run_jobs
):
    use_sandbox(app, sandbox)
    _choose(app, shop["owner"][0], "(555) 123-0001", booking={"text"})
    with app.app_context():
        before = balance.balance_for(shop["id"], utcnow()).total
    _alert(app, shop)
    (text,) = _alert_texts(app)
    assert (text.sender, text.recipient) == (SYSTEM, MOBILE)
    assert (text.kind, text.client_id, text.visibility) == ("transactional", None, "system")
    assert (
        text.body == "Bright Smile Dental: New booking: Sam Client, Cleaning, Tue, Mar 4 at 3:00 PM"
    )
    with app.app_context():
        assert balance.balance_for(shop["id"], utcnow()).total == before - 1
        assert db.session.execute(
            db.select(TextLedgerEntry.reason).where(TextLedgerEntry.message_id == text.id)
        ).scalars().all() == ["send"]
    run_jobs()
    with app.app_context():
        (part,) = db.session.execute(
            db.select(MessagePart).where(MessagePart.message_id == text.id)
        ).scalars()
        assert part.status in ("sent", "delivered")
        assert part.charged_from == "allowance"
    assert sandbox.snapshot()["requests_by_client_ref"][part.client_ref] == 1


def test_a_text_alert_the_balance_cannot_cover_is_not_sent_and_is_recorded(app, shop, run_jobs):
    _choose(app, shop["owner"][0], MOBILE, booking={"text", "in_app"})
    with app.app_context():
        balance.reserve(shop["id"], 100, utcnow())  # the starter plan's whole allowance
        db.session.commit()
    _alert(app, shop)
    assert _alert_texts(app) == []
    with app.app_context():
        alert = db.session.execute(
            db.select(StaffAlert).where(StaffAlert.user_id == shop["owner"][0])
        ).scalar_one()
        assert alert.text_skipped == "out_of_texts"
        assert alert.notification_id is not None  # the in-app alert still goes


def test_a_mobile_number_that_texted_stop_gets_no_text_alerts(app, shop):
    from app.services.inbound import opt_out

    _choose(app, shop["owner"][0], MOBILE, booking={"text"})
    with app.app_context():
        opt_out(shop["id"], MOBILE, utcnow())
        db.session.commit()
    _alert(app, shop)
    assert _alert_texts(app) == []


# --- Exactly once, and only the business's own staff --------------------------------------


def test_an_event_raised_again_alerts_each_staff_member_once_on_every_channel(
    app, shop, mailbox, run_jobs
):
    _choose(app, shop["owner"][0], MOBILE, booking={"in_app", "email", "text"})
    appointment_id = _appointment(app, shop["id"], shop["client"])
    for _ in range(3):  # the caller's job retried, the signal sent again
        _alert(app, shop, appointment_id=appointment_id)
        run_jobs()
    assert _notifications(app, shop["id"]) == [
        (shop["owner"][0], "new_booking"),
        (shop["staff"][0], "new_booking"),
    ]
    assert len(mailbox()) == 1
    assert len(_alert_texts(app)) == 1


def test_an_alert_rolled_back_with_its_event_sends_nothing(app, shop, mailbox, run_jobs):
    _choose(app, shop["owner"][0], booking={"email"})
    appointment_id = _appointment(app, shop["id"], shop["client"])
    with app.app_context():
        staff_alerts.alert_staff(
            shop["id"], "booking", text="x", link="/", now=utcnow(), appointment_id=appointment_id
        )
        db.session.rollback()
    run_jobs()
    assert mailbox() == []
    assert _notifications(app, shop["id"]) == []


def test_only_the_businesss_own_active_staff_are_alerted(app, shop, make_business):
    other = make_business("Other Salon")
    with app.app_context():
        db.session.get(User, shop["staff"][0]).deactivated_at = utcnow()
        db.session.commit()
    _alert(app, shop)
    assert _notifications(app, shop["id"]) == [(shop["owner"][0], "new_booking")]
    assert _notifications(app, other["id"]) == []


# --- Alert texts are not conversations ----------------------------------------------------


def test_alert_texts_show_in_no_inbox_or_conversation(app, shop, client):
    _choose(app, shop["owner"][0], MOBILE, booking={"text"})
    _alert(app, shop)
    with app.app_context():
        page = inbox.list_conversations(shop["id"], shop["owner"][0], folder="all")
        assert page.rows == []
    sign_in_without_password(app, client, shop["owner"][0])
    response = client.get(f"/messages/clients/{shop['client']}")
    assert response.status_code == 200
    assert "New booking" not in page_text(response)


def test_a_reply_from_a_staff_members_phone_to_the_system_number_makes_no_lead(
    app, shop, client, run_jobs
):
    _choose(app, shop["owner"][0], MOBILE, booking={"text"})
    _alert(app, shop)
    deliver(client, text_fields("Thanks, got it", sender=MOBILE, to=SYSTEM))
    run_jobs()
    (reply,) = inbound_messages(app)
    assert (reply.business_id, reply.visibility, reply.client_id) == (shop["id"], "system", None)
    with app.app_context():
        clients = db.session.execute(
            db.select(Client.id).where(Client.business_id == shop["id"])
        ).scalars()
        assert list(clients) == [shop["client"]]
        assert inbox.list_conversations(shop["id"], shop["owner"][0], folder="all").rows == []


# --- Bookings, cancellations and confirmations from the appointment signal -----------------


def _send_change(app, appointment_id: int, change: str, user_id: int | None) -> None:
    with app.app_context():
        appointment = db.session.get(Appointment, appointment_id)
        appointment_changed.send(
            appointment, change=change, previous_starts_at=None, user_id=user_id, now=utcnow()
        )
        db.session.commit()


def test_a_booking_alerts_the_staff_but_not_the_one_who_booked(app, shop):
    appointment_id = _appointment(app, shop["id"], shop["client"], service="Whitening")
    _send_change(app, appointment_id, "booked", shop["owner"][0])
    with app.app_context():
        (alert,) = db.session.execute(db.select(Notification)).scalars()
        assert (alert.user_id, alert.kind) == (shop["staff"][0], "new_booking")
        assert alert.text.startswith("New booking: Sam Client, Whitening, ")
        assert alert.link == f"/appointments/{appointment_id}"


def test_a_cancellation_alerts_the_staff(app, shop):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _send_change(app, appointment_id, "cancelled", None)
    assert {kind for _, kind in _notifications(app, shop["id"])} == {"booking_cancelled"}


def test_a_confirmation_by_reply_alerts_the_staff_and_one_by_staff_does_not(app, shop):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    _send_change(app, appointment_id, "confirmed", shop["owner"][0])
    assert _notifications(app, shop["id"]) == []
    _send_change(app, appointment_id, "confirmed", None)
    assert {kind for _, kind in _notifications(app, shop["id"])} == {"booking_confirmed"}


def test_reschedules_and_completions_raise_no_alert(app, shop):
    appointment_id = _appointment(app, shop["id"], shop["client"])
    for change in ("rescheduled", "completed", "no_show"):
        _send_change(app, appointment_id, change, None)
    assert _notifications(app, shop["id"]) == []


# --- New leads still alert, now as each staff member chose ---------------------------------


def test_a_new_lead_alerts_each_staff_member_on_their_channels(
    app, shop, client, mailbox, run_jobs
):
    dedicated_number(app, shop["id"])
    _choose(app, shop["staff"][0], lead={"email"})
    deliver(client, text_fields("Do you take new patients?", sender=NEW_NUMBER))
    run_jobs()
    assert _notifications(app, shop["id"]) == [(shop["owner"][0], "new_lead")]
    (email,) = mailbox()
    assert email["To"] == shop["staff"][1]
    assert email["Subject"] == "New lead (555) 987-0001: Do you take new patients?"


# --- The profile's Alerts section -----------------------------------------------------------


def test_the_profile_shows_the_defaults_in_app_on_email_and_text_off(app, shop, client):
    sign_in_without_password(app, client, shop["owner"][0])
    shown = client.get("/settings/profile").get_data(as_text=True)
    assert "Alerts" in shown
    for event in staff_alerts.ALERT_EVENTS:
        assert f'name="{event}" value="in_app" checked' in shown
        assert f'name="{event}" value="email">' in shown
        assert f'name="{event}" value="text">' in shown


def test_the_profile_saves_the_mobile_number_in_e164_and_the_channels(app, shop, actions):
    sign_in_without_password(app, actions.client, shop["owner"][0])
    response = actions.post(
        "/settings/profile/alerts",
        {
            "mobile_number": "(555) 123-0001",
            "booking": ["in_app", "text"],
            "lead": ["email"],
            "cancellation": ["in_app"],
        },
    )
    assert response.status_code == 302
    with app.app_context():
        user = db.session.get(User, shop["owner"][0])
        assert user.mobile_number == MOBILE
        chosen = {e: c.channels for e, c in staff_alerts.choices_of(user).items()}
    assert chosen == {
        "booking": ("in_app", "text"),
        "cancellation": ("in_app",),
        "confirmation": (),
        "lead": ("email",),
    }
    shown = actions.client.get("/settings/profile").get_data(as_text=True)
    assert 'value="(555) 123-0001"' in shown


@pytest.mark.parametrize(
    ("mobile", "says"),
    [
        ("call me", "it has letters in it"),
        ("555 12", "isn't a complete phone number"),
        ("", "Add your mobile number to get alerts by text"),
    ],
)
def test_the_profile_refuses_a_bad_mobile_number_and_changes_nothing(
    app, shop, actions, mobile, says
):
    sign_in_without_password(app, actions.client, shop["owner"][0])
    response = actions.post(
        "/settings/profile/alerts", {"mobile_number": mobile, "booking": ["text"]}
    )
    assert response.status_code == 422
    assert says in page_text(response)
    with app.app_context():
        user = db.session.get(User, shop["owner"][0])
        assert user.mobile_number is None
        assert staff_alerts.choices_of(user)["booking"].channels == ("in_app",)


def test_the_profile_refuses_an_unknown_channel(app, shop, actions):
    sign_in_without_password(app, actions.client, shop["owner"][0])
    response = actions.post("/settings/profile/alerts", {"booking": ["fax"]})
    assert response.status_code == 422
    with app.app_context():
        user = db.session.get(User, shop["owner"][0])
        assert staff_alerts.choices_of(user)["booking"].channels == ("in_app",)


def test_saving_alerts_changes_only_the_signed_in_staff_members_choices(app, shop, actions):
    sign_in_without_password(app, actions.client, shop["staff"][0])
    actions.post("/settings/profile/alerts", {"mobile_number": MOBILE, "booking": ["text"]})
    with app.app_context():
        owner = db.session.get(User, shop["owner"][0])
        staff = db.session.get(User, shop["staff"][0])
        assert (owner.mobile_number, staff.mobile_number) == (None, MOBILE)
        assert staff_alerts.choices_of(owner)["booking"].channels == ("in_app",)
        assert staff_alerts.choices_of(staff)["booking"].channels == ("text",)
