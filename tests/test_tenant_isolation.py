"""Every row that belongs to a business is reachable only by its own staff; an id no row can
have answers 404 like a missing one; and a GET changes nothing.

The checks walk the app's URL map, so a route added later is covered without anyone
remembering to add a test: a route whose URL names a row must have a maker in ROW_MAKERS.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import Client, ClientImport, Invitation, Notification, PushSubscription
from app.models.types import utcnow
from tests.sending_helpers import store_unread_text

# URL parameters that are not ids of a business's rows, and a value each accepts.
NOT_ROW_IDS = {
    "filename": "app.css",
    "token": "not-a-token",
    "kind": "phone",
    "event": "reminder",
}

# Ids no row can have: one past the id columns' range (integer, 2**31 - 1), and 23 digits.
IDS_OUT_OF_RANGE = (str(2**31), "1" + "0" * 22)

# Routes that need no sign-in: public pages, webhooks (signed instead) and static files.
PUBLIC_ENDPOINTS = {
    "static",
    "shell.home",
    "auth.sign_in_form",
    "auth.sign_in",
    "auth.sign_up_form",
    "auth.sign_up",
    "auth.confirm_sign_up_form",
    "auth.confirm_sign_up",
    "auth.forgot_password_form",
    "auth.forgot_password",
    "auth.reset_password_form",
    "auth.reset_password",
    "auth.accept_invitation",
    "auth.join_business",
    "dev.mail",
    "push.service_worker",
}


def _make_invitation(other: dict) -> int:
    invitation = Invitation(
        business_id=other["id"],
        email="guest@example.com",
        role="staff",
        token_hash="x" * 64,
        invited_by_id=other["owner"][0],
        expires_at=utcnow() + timedelta(days=1),
    )
    db.session.add(invitation)
    db.session.commit()
    return invitation.id


def _make_client(other: dict) -> int:
    client = Client(business_id=other["id"], name="Their client", search_text="their client")
    db.session.add(client)
    db.session.commit()
    return client.id


def _make_import(other: dict) -> int:
    job = ClientImport(
        business_id=other["id"],
        started_by_id=other["owner"][0],
        filename="theirs.csv",
        csv_text="name,phone\n",
        errors=[],
    )
    db.session.add(job)
    db.session.commit()
    return job.id


def _make_push_subscription(other: dict) -> int:
    subscription = PushSubscription(
        business_id=other["id"],
        user_id=other["owner"][0],
        endpoint="https://push.example.com/theirs",
        p256dh="BPuKbZyUSxVWJ8mZ" + "A" * 71,
        auth="AAAAAAAAAAAAAAAAAAAAAA",
    )
    db.session.add(subscription)
    db.session.commit()
    return subscription.id


def _make_notification(other: dict) -> int:
    notification = Notification(
        business_id=other["id"], kind="number_verified", text="Their number is verified."
    )
    db.session.add(notification)
    db.session.commit()
    return notification.id


def _make_message(other) -> int:
    from app.models import Message

    client_id = _make_client(other)
    message = Message(
        business_id=other["id"],
        client_id=client_id,
        channel="text",
        direction="outbound",
        kind="direct",
        body="Hello",
        sender="+15550000000",
        recipient="+15557654321",
        status="failed",
    )
    db.session.add(message)
    db.session.commit()
    return message.id


def _make_conversation(other) -> int:
    from app.models import Conversation

    conversation = Conversation(
        business_id=other["id"],
        client_id=_make_client(other),
        last_activity_at=utcnow(),
        needs_attention=True,
    )
    db.session.add(conversation)
    db.session.commit()
    return conversation.id


def _make_appointment(other) -> int:
    from app.models import Appointment

    appointment = Appointment(
        business_id=other["id"],
        client_id=_make_client(other),
        service="Their haircut",
        starts_at=utcnow() + timedelta(days=1),
        duration_minutes=60,
        state="booked",
    )
    db.session.add(appointment)
    db.session.commit()
    return appointment.id


# URL parameter -> makes a row of that kind in the *other* business and returns its id.
ROW_MAKERS = {
    "user_id": lambda other: other["staff"][0],
    "invitation_id": _make_invitation,
    "client_id": _make_client,
    "other_id": _make_client,
    "import_id": _make_import,
    "notification_id": _make_notification,
    "subscription_id": _make_push_subscription,
    "message_id": _make_message,
    "conversation_id": _make_conversation,
    "appointment_id": _make_appointment,
}


def _snapshot() -> dict:
    return {
        table.name: sorted(map(tuple, db.session.execute(select(table)).all()), key=repr)
        for table in db.metadata.sorted_tables
    }


def _routes_with_row_ids(app):
    for rule in app.url_map.iter_rules():
        row_args = rule.arguments - NOT_ROW_IDS.keys()
        if row_args:
            yield rule, row_args


def _url(rule, values: dict) -> str:
    """The rule's path with each argument replaced by its value (the others by NOT_ROW_IDS)."""
    url = rule.rule
    for arg in rule.arguments:
        value = values.get(arg, NOT_ROW_IDS.get(arg))
        url = url.replace(f"<int:{arg}>", str(value)).replace(f"<{arg}>", str(value))
        url = url.replace(f"<path:{arg}>", str(value))
    return url


def test_every_route_that_names_a_row_has_a_maker_for_the_isolation_check(app):
    missing = {
        rule.rule: sorted(args - ROW_MAKERS.keys())
        for rule, args in _routes_with_row_ids(app)
        if args - ROW_MAKERS.keys()
    }
    assert missing == {}, "add these parameters to ROW_MAKERS in this file"


def test_another_businesss_row_answers_404_on_every_route_and_changes_nothing(
    app, actions, make_business
):
    mine = make_business(staff=("staff",))
    other = make_business(staff=("staff",))
    # The owner passes every role check, so a 404 can only come from tenant isolation.
    actions.sign_in(mine["owner"][1])
    token = actions.csrf_token()
    checked = 0
    for rule, args in _routes_with_row_ids(app):
        with app.app_context():
            values = {arg: ROW_MAKERS[arg](other) for arg in args}
            before = _snapshot()
        url = _url(rule, values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = actions.client.open(
                url, method=method, data={"csrf_token": token}, headers={"X-CSRFToken": token}
            )
            assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
            checked += 1
        with app.app_context():
            assert _snapshot() == before, f"{rule.rule} changed another business's data"
    assert checked > 0


def test_an_id_beyond_the_databases_range_answers_404_on_every_route_and_changes_nothing(
    app, actions, make_business
):
    mine = make_business(staff=("staff",))
    actions.sign_in(mine["owner"][1])
    token = actions.csrf_token()
    with app.app_context():
        before = _snapshot()
    checked = 0
    for rule, args in _routes_with_row_ids(app):
        for too_large in IDS_OUT_OF_RANGE:
            url = _url(rule, dict.fromkeys(args, too_large))
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                response = actions.client.open(
                    url, method=method, data={"csrf_token": token}, headers={"X-CSRFToken": token}
                )
                assert response.status_code == 404, f"{method} {url}: {response.status_code}"
                checked += 1
    with app.app_context():
        assert _snapshot() == before
    assert checked > 0


def test_an_id_beyond_the_databases_range_is_no_row_for_the_tenancy_check(app, make_business):
    from flask_login import login_user
    from werkzeug.exceptions import NotFound

    from app.models import User
    from app.services import sessions
    from app.services.tenancy import owned_or_404

    mine = make_business()
    with app.test_request_context():
        owner = db.session.get(User, mine["owner"][0])
        sessions.start(owner, remembered=False, user_agent="pytest")
        login_user(owner)
        for row_id in (0, -1, 2**31, 10**22):
            try:
                owned_or_404(Client, row_id)
            except NotFound:
                continue
            raise AssertionError(f"owned_or_404 took {row_id}")


def _make_client_with_unread_text(business: dict) -> int:
    """A client whose conversation has a text nobody has read yet (opening it would mark it)."""
    client_id = _make_client(business)
    store_unread_text(business["id"], client_id)
    return client_id


def _make_unread_notification(business: dict) -> int:
    notification = Notification(
        business_id=business["id"],
        kind="text_received",
        text="Sam texted: can I come at 4?",
        link=f"/clients/{_make_client_with_unread_text(business)}",
    )
    db.session.add(notification)
    db.session.commit()
    return notification.id


# For the GET walk: rows of the signed-in business in the state a GET could wrongly change.
UNREAD_ROW_MAKERS = {
    **ROW_MAKERS,
    "client_id": _make_client_with_unread_text,
    "notification_id": _make_unread_notification,
}

# GET routes the walk cannot follow: the event stream never ends (and reads no rows).
ENDLESS_GETS = {"events.stream"}


def test_no_get_request_on_any_route_changes_a_row(app, actions, make_business):
    mine = make_business(staff=("staff",))
    actions.sign_in(mine["owner"][1])
    checked = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ENDLESS_GETS:
            continue
        with app.app_context():
            values = {
                arg: UNREAD_ROW_MAKERS[arg](mine) for arg in rule.arguments - NOT_ROW_IDS.keys()
            }
            before = _snapshot()
        url = _url(rule, values)
        response = actions.client.get(url)
        assert response.status_code < 500, f"GET {url} answered {response.status_code}"
        response.close()
        with app.app_context():
            assert _snapshot() == before, f"GET {url} changed rows"
        checked += 1
    assert checked > 20


def test_every_private_route_sends_anonymous_visitors_to_sign_in(app, actions):
    token = actions.csrf_token()  # a valid token, so only the sign-in check can refuse
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.startswith("webhooks."):
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<int:{arg}>", "1").replace(f"<{arg}>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = actions.client.open(url, method=method, data={"csrf_token": token})
            if rule.endpoint == "events.stream":  # EventSource can't follow a sign-in page
                assert response.status_code == 401, f"{method} {url}"
            else:
                assert response.status_code == 302, f"{method} {url}"
                assert response.headers["Location"].startswith("/sign-in"), f"{method} {url}"
            checked += 1
    assert checked > 0
