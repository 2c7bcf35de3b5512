"""The conversation on a client card: every message in time order, both channels and
directions, with delivery state, time and who sent it; failures with a reason and Resend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.extensions import db
from app.models import Message, MessagePart
from tests.conftest import page_text
from tests.sending_helpers import make_client


@pytest.fixture
def shop(app, make_business, actions):
    business = make_business("Bright Smile Dental", staff=("staff",))
    actions.sign_in(business["owner"][1])
    business["client"] = make_client(app, business["id"])
    return business


def _message(app, business, *, at, body, parts=(), **fields) -> int:
    values = dict(
        business_id=business["id"],
        client_id=business["client"],
        channel="text",
        direction="outbound",
        kind="direct",
        body=body,
        sender="+15550000000",
        recipient="+15557654321",
        status="delivered",
        created_at=at,
        updated_at=at,
    )
    values.update(fields)
    with app.app_context():
        message = Message(**values)
        db.session.add(message)
        db.session.flush()
        for index, (status, reason) in enumerate(parts):
            db.session.add(
                MessagePart(
                    message_id=message.id,
                    business_id=business["id"],
                    index=index,
                    text=body,
                    client_ref=f"ref-{message.id}-{index}",
                    status=status,
                    reason=reason,
                    charged_from="allowance",
                    charged_month=at.strftime("%Y-%m"),
                )
            )
        db.session.commit()
        return message.id


def test_the_conversation_shows_both_channels_in_time_order_with_who_sent_them(app, shop, client):
    day = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    # Saved out of order: the view orders by time.
    _message(
        app,
        shop,
        at=day.replace(hour=17),
        body="Thanks, see you!",
        direction="inbound",
        status="delivered",
    )
    _message(
        app,
        shop,
        at=day,
        body="Your appointment is Tuesday.",
        sent_by_id=shop["owner"][0],
        parts=[("delivered", None), ("delivered", None)],
    )
    _message(
        app,
        shop,
        at=day.replace(hour=16),
        channel="email",
        body="Directions\n\nPark behind the building.",
        sender="dana@example.com",
        recipient="sam@example.com",
        status="sent",
        sent_by_id=shop["staff"][0],
    )
    page = page_text(client.get(f"/clients/{shop['client']}?tab=conversation"))
    first = page.index("Your appointment is Tuesday.")
    second = page.index("Park behind the building.")
    third = page.index("Thanks, see you!")
    assert first < second < third
    text_bubble = page[first:second]
    assert "SMS · 2 parts" in text_bubble and "Delivered" in text_bubble
    assert "Mar 4, 2026, 10:00 AM" in text_bubble  # New York time
    assert "Owner 1" in text_bubble
    email_bubble = page[second - 200 : third]
    assert "Email" in email_bubble and "Directions" in email_bubble
    assert "Staff 1" in email_bubble and "Sent" in email_bubble
    assert "bubble-in" in page[second:]


def test_the_conversation_refreshes_on_status_events_from_an_element_that_is_never_swapped(
    app, shop, client
):
    # The listener sits on a wrapper that stays: a status event arriving while a refresh is in
    # flight is queued on it, not lost with a replaced element.
    card = page_text(client.get(f"/clients/{shop['client']}?tab=conversation"))
    wrapper = card[card.index('<div id="conversation-live"') :]
    wrapper = wrapper[: wrapper.index(">")]
    assert 'hx-trigger="sse:message.status, sse:message.created"' in wrapper
    # app.js lets through only this client's events (tests/e2e/test_content_security_policy.py)
    assert f'data-sse-client-id="{shop["client"]}"' in wrapper
    assert 'hx-target="#conversation-messages"' in wrapper
    fragment = page_text(client.get(f"/messages/clients/{shop['client']}"))
    assert fragment.lstrip().startswith('<div id="conversation-messages"')
    assert "hx-trigger" not in fragment and "conversation-live" not in fragment
    assert "No messages with Sam Client yet" in fragment


def test_text_content_is_escaped(app, shop, client):
    _message(app, shop, at=datetime(2026, 3, 4, tzinfo=UTC), body="<script>alert('x')</script>")
    raw = client.get(f"/clients/{shop['client']}?tab=conversation").get_data(as_text=True)
    assert "<script>alert(" not in raw
    assert "&lt;script&gt;alert(" in raw


def test_a_failed_text_shows_the_reason_and_resend_charges_again(app, shop, actions):
    message_id = _message(
        app,
        shop,
        at=datetime(2026, 3, 4, tzinfo=UTC),
        body="Hello",
        status="failed",
        sent_by_id=shop["owner"][0],
        parts=[("failed", "The number is not a mobile phone.")],
    )
    page = page_text(actions.client.get(f"/clients/{shop['client']}?tab=conversation"))
    assert "Failed" in page and "The number is not a mobile phone." in page
    assert "Resend" in page and "charges again" in page
    bubble = page_text(actions.post(f"/messages/{message_id}/resend"))
    assert "Queued" in bubble and "The number is not a mobile phone." not in bubble
    again = page_text(actions.post(f"/messages/{message_id}/resend"))
    assert "Nothing to resend" in again


def test_another_businesss_client_and_message_answer_404(app, shop, make_business, actions):
    other = make_business("Other Shop")
    theirs = make_client(app, other["id"])
    their_message = _message(
        app,
        {"id": other["id"], "client": theirs},
        at=datetime(2026, 3, 4, tzinfo=UTC),
        body="Private",
        status="failed",
        parts=[("failed", "No.")],
    )
    assert actions.client.get(f"/messages/clients/{theirs}").status_code == 404
    assert actions.client.get(f"/messages/clients/{theirs}/composer").status_code == 404
    assert actions.client.get(f"/messages/new?client_id={theirs}").status_code == 404
    sent = actions.post(f"/messages/clients/{theirs}", {"body": "Hi", "channel": "text"})
    assert sent.status_code == 404
    assert actions.post(f"/messages/{their_message}/resend").status_code == 404
    with app.app_context():
        assert db.session.get(Message, their_message).status == "failed"


def test_new_message_picks_a_client_by_typing_then_shows_the_composer(app, shop, client):
    assert "New message" in page_text(client.get("/actions"))
    results = page_text(client.get("/messages/new?q=sam", headers={"HX-Request": "true"}))
    assert "Sam Client" in results
    assert f"/messages/new?client_id={shop['client']}" in results
    page = page_text(client.get(f"/messages/new?client_id={shop['client']}"))
    assert 'id="composer"' in page and 'value="text"' in page
