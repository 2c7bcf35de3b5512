"""The composer: the live count from the one segment function, the channels a client can be
reached on, the server refusing what cannot go out, a double Send sending once, and emails
going out from the business's name with replies to its contact email."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import ClientEmail, Message
from app.services import sending
from tests.conftest import page_text
from tests.sending_helpers import give_dedicated_number, make_client
from tests.texting_helpers import complete_business_info, use_sandbox

TEXT_200_WITH_EMOJI = ("Hi Sam, your appointment is confirmed for Tuesday at 3pm. " * 4)[
    :199
] + "😀"


def _add_email(app, client_id: int, email: str = "sam@example.com") -> None:
    with app.app_context():
        from app.models import Client

        client = db.session.get(Client, client_id)
        db.session.add(ClientEmail(business_id=client.business_id, client=client, email=email))
        db.session.commit()


def _messages(app) -> list[Message]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Message).order_by(Message.id)).scalars())
        db.session.expunge_all()
        return rows


def _token(html: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)


@pytest.fixture
def shop(app, make_business, actions):
    """A business without texting set up, its owner signed in."""
    business = make_business("Bright Smile Dental", staff=("staff",))
    complete_business_info(app, business["id"])
    actions.sign_in(business["owner"][1])
    return business


@pytest.fixture
def texting_shop(app, sandbox, make_business, actions, run_jobs, monkeypatch):
    """A business with a verified dedicated number and a client with a phone; owner signed in."""
    use_sandbox(app, sandbox)
    monkeypatch.setattr(sending, "retry_delay", lambda failures: timedelta(0))
    business = make_business("Bright Smile Dental")
    complete_business_info(app, business["id"])
    business["number"] = give_dedicated_number(app, business["id"], sandbox, run_jobs)
    business["client"] = make_client(app, business["id"])
    actions.sign_in(business["owner"][1])
    return business


def test_the_counter_shows_3_texts_for_200_characters_with_one_emoji(app, shop, actions):
    response = actions.post("/messages/count", {"body": TEXT_200_WITH_EMOJI, "channel": "text"})
    text = page_text(response)
    assert "3 texts · 200 characters · Unicode because of 😀" in text
    assert 'id="composer-count"' in text
    assert "disabled" not in text.split("composer-send")[1].split(">")[0]


def test_the_counter_counts_a_line_break_once_and_offers_plain_quotes(app, shop, actions):
    assert "3/160 · 1 text" in page_text(actions.post("/messages/count", {"body": "a\r\nb"}))
    smart = page_text(actions.post("/messages/count", {"body": "It’s here"}))
    assert "Unicode because of ’" in smart and "Use plain quotes" in smart
    swapped = page_text(actions.post("/messages/plain-quotes", {"body": "It’s here"}))
    assert ">It's here</textarea>" in swapped and "Use plain quotes" not in swapped
    assert "9/160 · 1 text" in swapped


def test_the_counter_disables_send_over_550_characters(app, shop, actions):
    text = page_text(actions.post("/messages/count", {"body": "a" * 551}))
    assert "551/550 characters: too long" in text
    assert re.search(r'class="[^"]*composer-send"[^>]*disabled', text)


def test_the_counter_shows_the_balance_left(app, shop, actions):
    text = page_text(actions.post("/messages/count", {"body": "Hello"}))
    assert re.search(r"1 text · \d+ texts left", text)


def test_text_is_offered_only_with_a_phone_and_email_only_with_an_email(app, shop, client):
    phone_only = make_client(app, shop["id"])
    email_only = make_client(app, shop["id"], phone=None)
    _add_email(app, email_only)
    page = page_text(client.get(f"/clients/{phone_only}?tab=conversation"))
    assert 'value="text"' in page and 'value="email"' not in page
    page = page_text(client.get(f"/clients/{email_only}?tab=conversation"))
    assert 'value="email"' in page and 'value="text"' not in page
    assert "Subject" in page
    nothing = make_client(app, shop["id"], phone=None)
    page = page_text(client.get(f"/clients/{nothing}?tab=conversation"))
    assert "has no phone number or email address" in page


def test_the_unverified_warning_shows_above_the_composer(app, shop, client, monkeypatch):
    monkeypatch.setattr(sending, "unverified_warning", lambda business_id: "Still verifying.")
    sam = make_client(app, shop["id"])
    assert "Still verifying." in page_text(client.get(f"/clients/{sam}?tab=conversation"))


def test_a_text_over_550_characters_is_refused_by_the_server(app, texting_shop, actions):
    sam = texting_shop["client"]
    response = actions.post(
        f"/messages/clients/{sam}", {"body": "a" * 551, "channel": "text", "token": "t1"}
    )
    assert response.status_code == 422
    assert "Texts can be at most 550 characters; this one has 551." in page_text(response)
    assert _messages(app) == []


def test_a_double_send_with_the_same_token_sends_once(app, texting_shop, actions, client):
    sam = texting_shop["client"]
    token = _token(page_text(client.get(f"/clients/{sam}?tab=conversation")))
    form = {"body": "See you at 3pm.", "channel": "text", "token": token}
    first = actions.post(f"/messages/clients/{sam}", form, headers={"HX-Request": "true"})
    second = actions.post(f"/messages/clients/{sam}", form, headers={"HX-Request": "true"})
    assert first.status_code == second.status_code == 200
    assert [m.body for m in _messages(app)] == ["See you at 3pm."]
    # The answer is a fresh composer (new token, empty box) and the conversation with the text.
    assert _token(page_text(first)) != token
    assert 'hx-swap-oob="true"' in page_text(first) and "See you at 3pm." in page_text(first)
    assert "></textarea>" in page_text(first)


def test_a_refused_send_can_be_tried_again_with_the_same_token(app, shop, actions):
    sam = make_client(app, shop["id"])  # no texting number yet: the send is refused
    form = {"body": "Hello", "channel": "text", "token": "abc123"}
    response = actions.post(f"/messages/clients/{sam}", form, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Texting clients needs two-way texting" in page_text(response)
    assert ">Hello</textarea>" in page_text(response)  # kept for after the fix
    assert "Texting clients needs two-way texting" in page_text(
        actions.post(f"/messages/clients/{sam}", form, headers={"HX-Request": "true"})
    )
    assert _messages(app) == []


def test_an_email_goes_out_from_the_business_name_with_replies_to_its_contact_email(
    app, shop, actions, run_jobs, mailbox
):
    sam = make_client(app, shop["id"], phone=None)
    _add_email(app, sam, "sam@example.com")
    missing_subject = actions.post(
        f"/messages/clients/{sam}", {"body": "Hi", "channel": "email", "token": "e0"}
    )
    assert "An email needs a subject." in page_text(missing_subject)
    assert _messages(app) == []

    actions.post(
        f"/messages/clients/{sam}",
        {
            "subject": "Your visit",
            "body": "See you Tuesday.\r\nDana",
            "channel": "email",
            "token": "e1",
        },
    )
    run_jobs()
    [email] = mailbox()
    assert email["To"] == "sam@example.com"
    assert email["Subject"] == "Your visit"
    assert email["From"].addresses[0].display_name == "Bright Smile Dental"
    assert email["Reply-To"] == "dana@brightsmile.example.com"
    assert email.get_content().strip() == "See you Tuesday.\nDana"
    [message] = _messages(app)
    assert (message.channel, message.status, message.recipient) == (
        "email",
        "sent",
        "sam@example.com",
    )
    assert message.sent_by_id == shop["owner"][0]


def test_a_text_to_an_opted_out_client_is_refused_inline_and_nothing_is_sent(
    app, texting_shop, actions, sandbox, run_jobs
):
    from app.models import OptOut

    with app.app_context():
        db.session.add(OptOut(business_id=texting_shop["id"], number="+15557654321"))
        db.session.commit()
    response = actions.post(
        f"/messages/clients/{texting_shop['client']}",
        {"body": "Hello", "channel": "text", "token": "o1"},
        headers={"HX-Request": "true"},
    )
    assert "has opted out of your texts (they replied STOP)" in page_text(response)
    run_jobs()
    assert _messages(app) == [] and sandbox.requests("/sms/json") == []


def test_a_text_the_balance_cannot_cover_is_refused_inline(app, texting_shop, actions):
    from app.models import Business, TextBalance
    from app.models.types import utcnow
    from app.services import balance

    with app.app_context():
        business = db.session.get(Business, texting_shop["id"])
        db.session.merge(
            TextBalance(
                business_id=texting_shop["id"],
                allowance_month=balance.month_of(business, utcnow()),
                allowance_left=1,
                purchased_left=0,
            )
        )
        db.session.commit()
        left = balance.balance_for(texting_shop["id"], utcnow()).total
    response = actions.post(
        f"/messages/clients/{texting_shop['client']}",
        {"body": TEXT_200_WITH_EMOJI, "channel": "text", "token": "b1"},
        headers={"HX-Request": "true"},
    )
    assert left == 1
    assert "Not enough texts left: this message needs 3 and 1 is left." in page_text(response)
    assert _messages(app) == []


def test_unlimited_plans_show_no_balance_in_the_counter(app, make_business, actions):
    business = make_business(plan="unlimited")
    actions.sign_in(business["owner"][1])
    text = page_text(actions.post("/messages/count", {"body": "Hello"}))
    assert "5/160 · 1 text" in text and "left" not in text


def test_an_email_the_mail_server_refuses_shows_failed_and_resend_sends_it(
    app, shop, actions, run_jobs, mailbox, monkeypatch
):
    import smtplib

    import jobs.mail

    sam = make_client(app, shop["id"], phone=None)
    _add_email(app, sam)
    real_deliver = jobs.mail.deliver_email

    def refuse(**kwargs):
        raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr(jobs.mail, "deliver_email", refuse)
    actions.post(
        f"/messages/clients/{sam}",
        {"subject": "Hi", "body": "Hello", "channel": "email", "token": "f1"},
    )
    run_jobs()
    [message] = _messages(app)
    assert message.status == "failed" and mailbox() == []
    page = page_text(actions.client.get(f"/clients/{sam}?tab=conversation"))
    assert "Our mail server could not send this email." in page and "Resend" in page

    monkeypatch.setattr(jobs.mail, "deliver_email", real_deliver)
    assert "Queued" in page_text(actions.post(f"/messages/{message.id}/resend"))
    run_jobs()
    assert [m.status for m in _messages(app)] == ["sent"]
    assert [e["Subject"] for e in mailbox()] == ["Hi"]
