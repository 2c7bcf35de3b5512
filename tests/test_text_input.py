"""Control characters and bidirectional overrides: stripped from names and every other
single-line field, from message bodies and notes too (which keep their line breaks), and
refused in email addresses; the composer's count and what is sent agree on the cleaned text."""

from __future__ import annotations

import io
import re

import pytest

from app.extensions import db
from app.models import Business, Client, ClientImport, ClientNote, Invitation, Message, User
from app.services.text_input import BIDI_CONTROLS, multi_line, single_line
from tests.conftest import page_text
from tests.texting_helpers import COMPLETE_INFO

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "Ana\u202egnp.exe" shows as "Anaexe.png"
ZWNJ = "\u200c"  # ZERO WIDTH NON-JOINER: part of how Persian is written
FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f467"  # one emoji: three joined by ZWJ


# --- The two rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("control", sorted(BIDI_CONTROLS) + ["\u200e", "\u200f", "\u061c"])
def test_a_single_line_field_loses_every_bidirectional_control(control):
    assert single_line(f"Ana{control}gnp.exe") == "Anagnp.exe"


@pytest.mark.parametrize("invisible", ["\x00", "\x07", "\x1b", "\x7f", "\x9b", "\u200b", "\ufeff"])
def test_a_single_line_field_loses_control_and_invisible_format_characters(invisible):
    assert single_line(f"Bright{invisible}Smile") == "BrightSmile"


def test_a_line_break_or_tab_in_a_single_line_field_becomes_a_space():
    assert single_line(" Bright\tSmile\r\nDental\u2028Co \n") == "Bright Smile  Dental Co"


def test_a_single_line_field_keeps_the_joiners_names_and_emoji_need():
    persian = f"می{ZWNJ}خواهم"
    assert single_line(persian) == persian
    assert single_line(f"Sam {FAMILY}") == f"Sam {FAMILY}"


def test_multi_line_text_keeps_line_breaks_and_tabs_and_loses_overrides_and_controls():
    assert multi_line(f"Hi\r\nSam,\rsee\tyou{RLO} at 3\x07\u2066pm\u2069") == (
        "Hi\nSam,\nsee\tyou at 3pm"
    )


def test_multi_line_text_keeps_the_marks_and_joiners_of_right_to_left_writing():
    text = f"שלום\u200f {FAMILY} می{ZWNJ}خواهم"
    assert multi_line(text) == text


# --- Names and other single-line fields, as people submit them ---------------------------------


def test_sign_up_stores_the_business_and_owner_names_without_overrides(
    app, actions, mailbox, run_jobs
):
    actions.post(
        "/sign-up",
        {
            "business_name": f"Glow{RLO} Salon\x00",
            "country": "US",
            "time_zone": "America/Chicago",
            "plan": "growth",
            "name": "\u2066Gloria\u2069\n",
            "email": "gloria@example.com",
            "password": "a-long-password",
        },
    )
    run_jobs()
    body = mailbox()[-1].get_body(("plain",)).get_content()
    link = re.search(r"http://twoway\.test(/sign-up/confirm/\S+)", body).group(1)
    response = actions.post(link)
    assert response.status_code == 302
    with app.app_context():
        owner = db.session.execute(db.select(User)).scalar_one()
        assert (owner.business.name, owner.name) == ("Glow Salon", "Gloria")


def test_a_name_made_only_of_invisible_characters_is_refused_as_empty(app, actions):
    response = actions.post(
        "/sign-up",
        {
            "business_name": f"{RLO}\u200b",
            "country": "US",
            "time_zone": "America/Chicago",
            "plan": "growth",
            "name": "Gloria",
            "email": "gloria@example.com",
            "password": "a-long-password",
        },
    )
    assert response.status_code == 422
    assert "Enter the business's name." in page_text(response)
    with app.app_context():
        assert db.session.execute(db.select(Business)).first() is None


def test_an_invitation_to_an_email_with_an_override_is_refused_and_nothing_is_stored(
    app, actions, make_business
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.post(
        "/settings/team/invitations", {"email": f"nina{RLO}@example.com", "role": "staff"}
    )
    assert response.status_code == 422
    assert "RIGHT-TO-LEFT OVERRIDE" in page_text(response)
    with app.app_context():
        assert db.session.execute(db.select(Invitation)).first() is None


def test_business_info_fields_are_stored_without_overrides_or_controls(app, actions, make_business):
    business = make_business("Old Name")
    actions.sign_in(business["owner"][1])
    form = {
        "name": f"Bright Smile{RLO} Dental",
        "country": "US",
        "time_zone": "America/Chicago",
        **COMPLETE_INFO,
        "street_address": "1 Main\u202dSt\r\nSuite 2",
        "city": f"Spring{RLO}field",
        "contact_name": "Dana\x1b Reyes",
        "contact_phone": f"(555) 010{RLO}-1234",
    }
    assert actions.post("/settings/business", form).status_code == 302
    with app.app_context():
        stored = db.session.get(Business, business["id"])
        assert stored.name == "Bright Smile Dental"
        assert stored.street_address == "1 MainSt  Suite 2"
        assert stored.city == "Springfield"
        assert stored.contact_name == "Dana Reyes"
        assert stored.contact_phone == "+15550101234"


def test_a_client_is_stored_without_overrides_in_name_tags_or_phone(app, actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.post(
        "/clients",
        {
            "name": f"Ana{RLO}gnp.exe",
            "phone": f"555{RLO}0101234",
            "tags": "vip\u2067, new\tclient",
            "time_zone": "",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        client = db.session.execute(db.select(Client)).scalar_one()
        assert client.name == "Anagnp.exe"
        assert [phone.number for phone in client.phones] == ["+15550101234"]
        assert sorted(tag.name for tag in client.tags) == ["new client", "vip"]


def test_a_client_name_of_only_invisible_characters_is_refused_and_nothing_stored(
    app, actions, make_business
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.post("/clients", {"name": f"{RLO}\u2066", "phone": "5550101234"})
    assert response.status_code == 422
    assert "Enter the client's name." in page_text(response)
    with app.app_context():
        assert db.session.execute(db.select(Client)).first() is None


def test_imported_names_notes_and_the_files_name_lose_their_overrides(
    app, actions, make_business, run_jobs
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    csv_text = f"name,phone,notes\nAna{RLO} Ruiz,5550101234,Likes\u2066 mornings\n"
    actions.post(
        "/clients/import",
        {"file": (io.BytesIO(csv_text.encode()), f"clients{RLO}vsc.csv")},
        content_type="multipart/form-data",
    )
    run_jobs()
    with app.app_context():
        assert db.session.execute(db.select(ClientImport.filename)).scalar_one() == "clientsvsc.csv"
        assert db.session.execute(db.select(Client.name)).scalar_one() == "Ana Ruiz"
        assert db.session.execute(db.select(ClientNote.body)).scalar_one() == "Likes mornings"


# --- Multi-line text ---------------------------------------------------------------------------


def test_a_note_keeps_its_line_breaks_and_loses_overrides(app, actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    actions.post("/clients", {"name": "Sam", "phone": "5550101234"})
    with app.app_context():
        client_id = db.session.execute(db.select(Client.id)).scalar_one()
    actions.post(f"/clients/{client_id}/notes", {"body": f"Line one\r\nLine{RLO} two\x07"})
    with app.app_context():
        assert db.session.execute(db.select(ClientNote.body)).scalar_one() == ("Line one\nLine two")


@pytest.fixture
def texting_shop(app, sandbox, make_business, actions, run_jobs):
    from tests.sending_helpers import give_dedicated_number, make_client
    from tests.texting_helpers import complete_business_info, use_sandbox

    use_sandbox(app, sandbox)
    business = make_business("Bright Smile Dental")
    complete_business_info(app, business["id"])
    give_dedicated_number(app, business["id"], sandbox, run_jobs)
    business["client"] = make_client(app, business["id"])
    actions.sign_in(business["owner"][1])
    return business


def test_the_composers_count_and_the_text_sent_agree_on_the_cleaned_text(
    app, texting_shop, actions, sandbox, run_jobs
):
    # The override alone would make the text Unicode (70 a part); without it, it is GSM-7.
    body = f"Hi Sam,{RLO} see you at 3\x07"
    count = page_text(actions.post("/messages/count", {"body": body, "channel": "text"}))
    assert "Unicode" not in count
    assert re.search(r"\b20/160 · 1 text\b", count)

    actions.post(
        f"/messages/clients/{texting_shop['client']}",
        {"body": body, "channel": "text", "token": "clean-1"},
        headers={"HX-Request": "true"},
    )
    run_jobs()
    with app.app_context():
        message = db.session.execute(db.select(Message)).scalar_one()
        assert message.body == "Hi Sam, see you at 3"
        assert len(message.parts) == 1
    [sent] = sandbox.snapshot()["messages"]  # what the client's phone got
    assert sent["text"] == "Hi Sam, see you at 3"
    assert sent["type"] == "text"  # GSM-7, as the count said


def test_an_emails_subject_and_body_lose_overrides_and_the_body_keeps_its_lines(
    app, actions, make_business
):
    from app.models import ClientEmail

    business = make_business()
    actions.sign_in(business["owner"][1])
    actions.post("/clients", {"name": "Sam", "email": "sam@example.com"})
    with app.app_context():
        client_id = db.session.execute(db.select(ClientEmail.client_id)).scalar_one()
    actions.post(
        f"/messages/clients/{client_id}",
        {
            "channel": "email",
            "subject": f"Your{RLO} visit\r\n",
            "body": f"Hi Sam,\r\nsee you{RLO} at 3",
            "token": "e-clean",
        },
        headers={"HX-Request": "true"},
    )
    with app.app_context():
        assert db.session.execute(db.select(Message.body)).scalar_one() == (
            "Your visit\n\nHi Sam,\nsee you at 3"
        )
