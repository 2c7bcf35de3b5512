"""The inbox (issue 6 item 5): conversations by latest activity, the folder Require your
attention and why each conversation is in it, Mark handled / Back to needs attention, reads per
staff member, the live count, search, "Load more", live events, merges and tenancy."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from app.extensions import db, get_redis
from app.models import Client, ClientPhone, Conversation, ConversationRead, Message, OptOut
from app.models.messages import MessagePart
from app.services import clients, email_messages, events, inbox, sending
from tests.conftest import page_text

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def shop(app, make_business, actions):
    """A business with an owner and a staff member; the owner is signed in."""
    business = make_business("Bright Smile Dental", staff=("staff",))
    actions.sign_in(business["owner"][1])
    return business


def _client(app, business, name: str, phone: str | None = None, *, lead: bool = False) -> int:
    with app.app_context():
        client = Client(
            business_id=business["id"],
            name=name,
            is_lead=lead,
            source="inbound_text" if lead else "staff",
        )
        if phone:
            client.phones.append(
                ClientPhone(business_id=business["id"], number=phone, is_primary=True)
            )
        db.session.add(client)
        db.session.flush()
        clients.refresh_search_text(client)
        db.session.commit()
        return client.id


def _inbound(app, business, client_id, body, *, at, **fields) -> int:
    """An inbound text as helper A's pipeline stores it: the row, then record_message with
    attention in the same transaction, then announce (the contract)."""
    with app.app_context():
        message = Message(
            business_id=business["id"],
            client_id=client_id,
            channel="text",
            direction="inbound",
            kind="direct",
            body=body,
            sender="+15557654321",
            recipient="+18885550100",
            status="delivered",
            created_at=at,
            updated_at=at,
            **fields,
        )
        db.session.add(message)
        db.session.flush()
        inbox.record_message(message, attention=True, now=at)
        db.session.commit()
        inbox.announce(business["id"], client_id, message.id)
        return message.id


def _outbound(app, business, client_id, body, *, at, status="delivered", parts=()) -> int:
    with app.app_context():
        message = Message(
            business_id=business["id"],
            client_id=client_id,
            channel="text",
            direction="outbound",
            kind="direct",
            body=body,
            sender="+18885550100",
            recipient="+15557654321",
            status=status,
            created_at=at,
            updated_at=at,
        )
        db.session.add(message)
        db.session.flush()
        for index, (part_status, ref) in enumerate(parts):
            db.session.add(
                MessagePart(
                    message_id=message.id,
                    business_id=business["id"],
                    index=index,
                    text=body,
                    client_ref=ref,
                    status=part_status,
                )
            )
        inbox.record_message(message, attention=False, now=at)
        db.session.commit()
        return message.id


def _rows(app, business, user="owner", **kwargs) -> list[inbox.InboxRow]:
    with app.app_context():
        page = inbox.list_conversations(business["id"], business[user][0], **kwargs)
        for row in page.rows:  # keep what the assertions read after the context ends
            db.session.expunge(row.conversation)
        return page.rows


def _names(rows) -> list[str]:
    return [row.client.name for row in rows]


def _conversation_id(app, business, client_id) -> int:
    with app.app_context():
        return inbox.conversation_of(business["id"], client_id).id


def _inbox_events(app, business) -> list[dict]:
    with app.app_context():
        published = get_redis().xrange(events.stream_key(business["id"]))
    return [
        json.loads(fields[b"data"])
        for _, fields in published
        if fields[b"event"] == inbox.INBOX_EVENT.encode()
    ]


# --- Order and the folder -----------------------------------------------------------------


def test_conversations_are_ordered_by_latest_activity_in_either_direction(app, shop):
    ada = _client(app, shop, "Ada")
    bo = _client(app, shop, "Bo")
    cy = _client(app, shop, "Cy")
    _inbound(app, shop, ada, "Hi", at=T0)
    _inbound(app, shop, bo, "Hello", at=T0 + timedelta(minutes=1))
    _inbound(app, shop, cy, "Hey", at=T0 + timedelta(minutes=2))
    _outbound(app, shop, ada, "Sure", at=T0 + timedelta(minutes=3))

    assert _names(_rows(app, shop, folder="all")) == ["Ada", "Cy", "Bo"]


def test_a_text_staff_send_moves_the_conversation_up_without_needing_attention(app, shop):
    ada = _client(app, shop, "Ada", "+15557654321")
    bo = _client(app, shop, "Bo")
    _inbound(app, shop, bo, "Hello", at=T0)
    with app.app_context():
        sending.send_text(
            shop["id"],
            ada,
            "Your appointment is at 3",
            user_id=None,
            kind="transactional",
            now=T0 + timedelta(minutes=5),
        )

    rows = _rows(app, shop, folder="all")
    assert _names(rows) == ["Ada", "Bo"]
    assert rows[0].snippet == "You: Your appointment is at 3"
    assert not rows[0].conversation.needs_attention
    assert _names(_rows(app, shop)) == ["Bo"]


def test_an_email_to_a_client_is_activity_in_the_inbox(app, shop):
    with app.app_context():
        client = clients.create_client(
            shop["id"], "US", clients.ClientDetails(name="Ada", emails=["ada@example.com"])
        )
        email_messages.send_email_message(
            shop["id"], client.id, "Your visit", "See you soon", user_id=None, now=T0
        )

    rows = _rows(app, shop, folder="all")
    assert _names(rows) == ["Ada"]
    assert rows[0].snippet == "You: Email: Your visit"


def test_an_inbound_text_puts_the_conversation_in_the_folder_as_a_new_text(app, shop):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Can I move my appointment?", at=T0)

    [row] = _rows(app, shop)
    assert row.reason_labels == ["New text"]
    assert row.unread
    assert row.snippet == "Can I move my appointment?"


def test_a_new_lead_is_in_the_folder_as_a_new_lead(app, shop):
    lead = _client(app, shop, "+1 555-010-2222", "+15550102222", lead=True)
    with app.app_context():
        inbox.flag_client(shop["id"], lead, T0)
        db.session.commit()
    _inbound(app, shop, lead, "Do you take new patients?", at=T0)

    [row] = _rows(app, shop)
    assert row.reason_labels == ["New lead", "New text"]
    response = shop_client_get(app, shop, "/inbox")
    assert "Lead" in page_text(response)


def test_a_flagged_opt_out_request_is_in_the_folder_as_an_opt_out_request(app, shop):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "please stop texting me", at=T0, revocation="flagged")

    [row] = _rows(app, shop)
    assert "Opt-out request" in row.reason_labels


def test_a_text_that_fails_for_good_puts_the_conversation_in_the_folder(app, shop):
    ada = _client(app, shop, "Ada")
    _outbound(app, shop, ada, "Reminder", at=T0, status="sent", parts=[("sent", "ref-fail-0")])
    assert _rows(app, shop) == []

    with app.app_context():
        sending.record_receipt(
            client_ref="ref-fail-0",
            vonage_message_id=None,
            status="failed",
            err_code="6",
            now=T0 + timedelta(minutes=1),
        )

    [row] = _rows(app, shop)
    assert row.reason_labels == ["Failed send"]
    assert {"client_id": ada} in _inbox_events(app, shop)


def test_an_email_the_mail_server_refuses_puts_the_conversation_in_the_folder(
    app, shop, monkeypatch, run_jobs
):
    import jobs.mail

    def refuse(**kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(jobs.mail, "deliver_email", refuse)
    with app.app_context():
        client = clients.create_client(
            shop["id"], "US", clients.ClientDetails(name="Ada", emails=["ada@example.com"])
        )
        email_messages.send_email_message(
            shop["id"], client.id, "Your visit", "See you soon", user_id=None, now=T0
        )
    run_jobs()

    [row] = _rows(app, shop)
    assert row.reason_labels == ["Failed send"]


def test_the_opted_out_marker_shows_on_the_row(app, shop):
    ada = _client(app, shop, "Ada", "+15557654321")
    _inbound(app, shop, ada, "STOP", at=T0)
    with app.app_context():
        db.session.add(OptOut(business_id=shop["id"], number="+15557654321"))
        db.session.commit()

    [row] = _rows(app, shop)
    assert row.opted_out
    assert "Opted out" in page_text(shop_client_get(app, shop, "/inbox"))


# --- Handled and back ----------------------------------------------------------------------


def test_mark_handled_takes_it_out_of_the_folder_and_a_new_text_brings_it_back(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    conversation_id = _conversation_id(app, shop, ada)

    response = actions.post(
        f"/inbox/conversations/{conversation_id}/handled", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "Back to needs attention" in page_text(response)
    assert _rows(app, shop) == []
    assert _names(_rows(app, shop, folder="all")) == ["Ada"]

    _inbound(app, shop, ada, "Hello again?", at=T0 + timedelta(hours=1))
    [row] = _rows(app, shop)
    assert row.reason_labels == ["New text"]


def test_mark_handled_answers_the_row_however_far_down_the_inbox_it_is(
    app, shop, actions, monkeypatch
):
    monkeypatch.setattr(inbox, "MAX_SHOWN", 1)
    oldest = _client(app, shop, "Oldest")
    _inbound(app, shop, oldest, "Hi", at=T0)
    for number in range(3):
        newer = _client(app, shop, f"Newer {number}")
        _inbound(app, shop, newer, "Hello", at=T0 + timedelta(minutes=number + 1))

    response = actions.post(
        f"/inbox/conversations/{_conversation_id(app, shop, oldest)}/handled",
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert "Oldest" in page_text(response)


def test_back_to_needs_attention_puts_it_in_the_folder_for_follow_up(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _outbound(app, shop, ada, "Thanks for coming in", at=T0)
    conversation_id = _conversation_id(app, shop, ada)

    response = actions.post(
        f"/inbox/conversations/{conversation_id}/attention", headers={"HX-Request": "true"}
    )
    assert "Mark handled" in page_text(response)
    [row] = _rows(app, shop)
    assert row.reason_labels == ["Marked for follow-up"]


def test_handled_is_shared_by_the_business(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    actions.post(f"/inbox/conversations/{_conversation_id(app, shop, ada)}/handled")

    assert _rows(app, shop, user="staff") == []


def test_marking_handled_and_back_publish_inbox_changed(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    assert _inbox_events(app, shop) == [{"client_id": ada}]
    conversation_id = _conversation_id(app, shop, ada)

    actions.post(f"/inbox/conversations/{conversation_id}/handled")
    assert len(_inbox_events(app, shop)) == 2
    actions.post(f"/inbox/conversations/{conversation_id}/handled")  # a double click
    assert len(_inbox_events(app, shop)) == 2
    actions.post(f"/inbox/conversations/{conversation_id}/attention")
    assert _inbox_events(app, shop) == [{"client_id": ada}] * 3


def test_recording_an_inbound_text_publishes_the_message_and_the_inbox_change(app, shop):
    ada = _client(app, shop, "Ada")
    message_id = _inbound(app, shop, ada, "Hi", at=T0)
    with app.app_context():
        published = get_redis().xrange(events.stream_key(shop["id"]))
    names = [fields[b"event"].decode() for _, fields in published]
    assert names == [inbox.MESSAGE_EVENT, inbox.INBOX_EVENT]
    assert json.loads(published[0][1][b"data"]) == {"message_id": message_id, "client_id": ada}


# --- Reads per staff member ------------------------------------------------------------------


def _open_conversation(actions, client_id: int) -> None:
    """Opens the client's card as a browser does: the page, then the POST its conversation
    makes as it loads (htmx, `hx-trigger="load"`) to mark it read."""
    page = actions.client.get(f"/clients/{client_id}?tab=conversation").get_data(as_text=True)
    read_url = f"/messages/clients/{client_id}/read"
    marker = rf'hx-post="{read_url}"\s+hx-trigger="load, conversation-shown from:body"'
    assert re.search(marker, page)
    response = actions.post(read_url, headers={"HX-Request": "true"})
    assert response.status_code == 204


def test_opening_the_conversation_marks_it_read_for_that_staff_member_only(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    assert _rows(app, shop)[0].unread and _rows(app, shop, user="staff")[0].unread

    _open_conversation(actions, ada)

    assert not _rows(app, shop)[0].unread
    assert _rows(app, shop, user="staff")[0].unread
    # Reading is not handling: it is still in the folder for everyone.
    assert _names(_rows(app, shop)) == ["Ada"]


def test_a_new_text_after_reading_is_unread_again(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    _open_conversation(actions, ada)
    _inbound(app, shop, ada, "Are you there?", at=T0 + timedelta(minutes=5))

    assert _rows(app, shop)[0].unread


def test_opening_the_conversation_alone_marks_nothing_read(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)

    actions.client.get(f"/clients/{ada}?tab=conversation")
    actions.client.get(f"/messages/clients/{ada}", headers={"HX-Request": "true"})

    assert _rows(app, shop)[0].unread


def test_the_conversation_refreshed_live_marks_itself_read_again(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    _open_conversation(actions, ada)
    _inbound(app, shop, ada, "Are you there?", at=T0 + timedelta(minutes=5))

    fragment = actions.client.get(f"/messages/clients/{ada}", headers={"HX-Request": "true"})
    assert fragment.headers["HX-Trigger"] == "conversation-shown"  # the page's marker posts
    actions.post(f"/messages/clients/{ada}/read", headers={"HX-Request": "true"})

    assert not _rows(app, shop)[0].unread


def test_marking_handled_does_not_change_reads(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    actions.post(f"/inbox/conversations/{_conversation_id(app, shop, ada)}/handled")

    assert _rows(app, shop, folder="all")[0].unread


def test_marking_read_never_moves_the_mark_back(app, shop):
    ada = _client(app, shop, "Ada")
    first = _inbound(app, shop, ada, "Hi", at=T0)
    second = _inbound(app, shop, ada, "Hello?", at=T0 + timedelta(minutes=1))
    with app.app_context():
        conversation = inbox.conversation_of(shop["id"], ada)
        inbox.mark_read(conversation, shop["owner"][0], T0)
        # A late request that loaded the conversation before the second text: the same row
        # stays, its mark does not move back.
        stale = SimpleNamespace(id=conversation.id, last_inbound_message_id=first)
        inbox.mark_read(stale, shop["owner"][0], T0)  # type: ignore[arg-type]
        reads = db.session.execute(db.select(ConversationRead)).scalars().all()
        assert [(r.user_id, r.last_read_message_id) for r in reads] == [(shop["owner"][0], second)]


def test_two_tabs_opening_a_conversation_at_once_leave_one_read_mark(app, shop):
    ada = _client(app, shop, "Ada")
    last = _inbound(app, shop, ada, "Hi", at=T0)
    conversation_id = _conversation_id(app, shop, ada)
    start = threading.Barrier(2)
    errors = []

    def open_it():
        try:
            with app.app_context():
                conversation = db.session.get(Conversation, conversation_id)
                start.wait(timeout=10)
                inbox.mark_read(conversation, shop["owner"][0], T0)
        except Exception as error:  # reported below; a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    with app.app_context():
        reads = db.session.execute(db.select(ConversationRead)).scalars().all()
        assert [(r.user_id, r.last_read_message_id) for r in reads] == [(shop["owner"][0], last)]


def test_the_unread_row_is_bold_with_a_dot_and_the_read_row_is_not(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    page = actions.client.get("/inbox").get_data(as_text=True)
    assert 'class="inbox-row is-unread needs-attention"' in page
    assert 'aria-label="Unread"' in page

    _open_conversation(actions, ada)
    page = actions.client.get("/inbox").get_data(as_text=True)
    assert 'class="inbox-row needs-attention"' in page
    assert 'aria-label="Unread"' not in page


# --- The count -------------------------------------------------------------------------------


def _nav_count(html: str) -> int:
    match = re.search(
        r'id="nav-attention-count"[^>]*>\s*(?:<span class="count-badge">'
        r'<span class="count-number" aria-hidden="true">(\d+)</span>)?',
        html,
    )
    assert match, "no attention count in the navigation"
    return int(match.group(1) or 0)


def test_the_navigation_counts_conversations_that_need_attention(app, shop, actions):
    ada = _client(app, shop, "Ada")
    bo = _client(app, shop, "Bo")
    cy = _client(app, shop, "Cy")
    assert _nav_count(actions.client.get("/clients").get_data(as_text=True)) == 0

    _inbound(app, shop, ada, "Hi", at=T0)
    _inbound(app, shop, ada, "Hi again", at=T0 + timedelta(minutes=1))  # same conversation
    _inbound(app, shop, bo, "Hello", at=T0)
    _outbound(app, shop, cy, "Thanks", at=T0)
    assert _nav_count(actions.client.get("/clients").get_data(as_text=True)) == 2

    actions.post(f"/inbox/conversations/{_conversation_id(app, shop, bo)}/handled")
    fragment = actions.client.get("/inbox/count").get_data(as_text=True)
    assert re.search(r'<span class="count-number" aria-hidden="true">1</span>', fragment)


def test_the_count_refreshes_on_inbox_changed_from_an_element_that_is_never_swapped(
    app, shop, actions
):
    page = actions.client.get("/settings").get_data(as_text=True)
    badge = re.search(r'<span class="nav-count"[^>]*>', page).group(0)
    assert 'hx-trigger="sse:inbox.changed"' in badge
    assert 'hx-swap="innerHTML"' in badge


# --- Search and pages ------------------------------------------------------------------------


def test_search_finds_conversations_by_name_phone_digits_and_message_text(app, shop):
    ada = _client(app, shop, "Ada Lovelace", "+15550101234")
    bo = _client(app, shop, "Bo Diddley", "+15550109999")
    _inbound(app, shop, ada, "Is Tuesday OK?", at=T0)
    _inbound(app, shop, bo, "Can I bring my dog?", at=T0)

    def found(query):
        return _names(_rows(app, shop, folder="all", query=query))

    assert found("lovelace") == ["Ada Lovelace"]
    assert found("(555) 010-9999") == ["Bo Diddley"]
    assert found("bring my DOG") == ["Bo Diddley"]
    assert found("tuesday") == ["Ada Lovelace"]
    assert found("nobody") == []
    assert found("100%") == []  # LIKE wildcards are searched for, not obeyed


def test_search_stays_within_the_folder(app, shop, actions):
    ada = _client(app, shop, "Ada Lovelace")
    _inbound(app, shop, ada, "Hi", at=T0)
    actions.post(f"/inbox/conversations/{_conversation_id(app, shop, ada)}/handled")

    assert _rows(app, shop, query="ada") == []
    response = actions.client.get("/inbox?q=ada", headers={"HX-Request": "true"})
    assert "Search all conversations" in page_text(response)


def test_load_more_continues_after_the_last_row_shown_without_repeats(app, shop, actions):
    ids = []
    for number in range(inbox.PAGE_SIZE + 5):
        client_id = _client(app, shop, f"Client {number:02d}")
        _inbound(app, shop, client_id, "Hi", at=T0 + timedelta(minutes=number % 7))
        ids.append(client_id)

    first = actions.client.get("/inbox").get_data(as_text=True)
    shown = re.findall(r'id="conversation-(\d+)"', first)
    assert len(shown) == inbox.PAGE_SIZE
    more = re.search(r'hx-get="([^"]*after=[^"]+)"', first).group(1).replace("&amp;", "&")
    # Something happens at the top meanwhile; the next page still starts after the last row.
    _inbound(app, shop, ids[6], "Still there?", at=T0 + timedelta(hours=1))  # was shown
    second = actions.client.get(more, headers={"HX-Request": "true"}).get_data(as_text=True)
    rest = re.findall(r'id="conversation-(\d+)"', second)

    assert len(rest) == 5
    assert not set(rest) & set(shown)
    assert "Load more" not in second
    assert 'id="inbox-through"' in second  # the live refresh now reaches these rows too


def test_a_live_refresh_keeps_every_row_loaded_and_the_new_one_on_top(app, shop):
    for number in range(inbox.PAGE_SIZE + 5):
        client_id = _client(app, shop, f"Client {number:02d}")
        _inbound(app, shop, client_id, "Hi", at=T0 + timedelta(seconds=number))
    with app.app_context():
        first = inbox.list_conversations(shop["id"], shop["owner"][0])
        second = inbox.list_conversations(shop["id"], shop["owner"][0], after=first.last_cursor)
        through = second.last_cursor
    newcomer = _client(app, shop, "Newcomer")
    _inbound(app, shop, newcomer, "Hello", at=T0 + timedelta(hours=1))

    with app.app_context():
        refreshed = inbox.list_conversations(shop["id"], shop["owner"][0], through=through)
        names = _names(refreshed.rows)
        has_more = refreshed.has_more
    assert len(names) == inbox.PAGE_SIZE + 6
    assert names[0] == "Newcomer"
    assert not has_more


def test_the_inbox_list_refreshes_live_with_the_search_and_the_rows_loaded(app, shop, actions):
    page = actions.client.get("/inbox?q=ada").get_data(as_text=True)
    live = re.search(r'<div id="inbox-live"[^>]*>', page).group(0)
    assert 'hx-trigger="sse:inbox.changed"' in live
    assert 'hx-include="#inbox-search, #inbox-through"' in live
    assert 'value="ada"' in page


def test_a_malformed_cursor_shows_the_first_page(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    response = actions.client.get("/inbox?after=yesterday_x&through=nonsense&folder=bogus")
    assert response.status_code == 200
    assert "Ada" in page_text(response)


# --- Pages -----------------------------------------------------------------------------------


def shop_client_get(app, shop, url):
    client = app.test_client()
    from tests.conftest import Actions

    Actions(app, client).sign_in(shop["owner"][1])
    return client.get(url)


def test_each_folder_has_its_own_empty_state(app, shop, actions):
    assert "All caught up" in page_text(actions.client.get("/inbox"))
    assert "No conversations yet" in page_text(actions.client.get("/inbox?folder=all"))


def test_a_row_shows_name_snippet_time_and_why_and_opens_the_conversation(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Can I come at 4?", at=T0)
    text = page_text(actions.client.get("/inbox"))

    assert "Ada" in text
    assert "Can I come at 4?" in text
    assert "Nov 2, 2026, 10:00 AM" in text  # New York time
    assert "New text" in text
    assert f'href="/clients/{ada}?tab=conversation&from=inbox"' in text
    assert "Mark handled" in text
    card = page_text(actions.client.get(f"/clients/{ada}?tab=conversation&from=inbox"))
    assert "Can I come at 4?" in card
    assert '<a class="back" href="/inbox">Inbox</a>' in card


def test_html_in_a_message_snippet_is_shown_as_text(app, shop, actions):
    ada = _client(app, shop, "<b>Ada</b>")
    _inbound(app, shop, ada, "<script>alert('x')</script>", at=T0)
    html = actions.client.get("/inbox").get_data(as_text=True)

    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;Ada&lt;/b&gt;" in html


def test_the_client_card_shows_needs_attention_with_mark_handled(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    text = page_text(actions.client.get(f"/clients/{ada}"))
    assert "Needs attention" in text

    conversation_id = _conversation_id(app, shop, ada)
    response = actions.post(
        f"/inbox/conversations/{conversation_id}/handled",
        {"view": "card"},
        headers={"HX-Request": "true"},
    )
    assert "Handled by Owner" in page_text(response)
    assert "Back to needs attention" in page_text(response)


def test_a_plain_form_post_goes_back_to_the_inbox(app, shop, actions):
    ada = _client(app, shop, "Ada")
    _inbound(app, shop, ada, "Hi", at=T0)
    response = actions.post(f"/inbox/conversations/{_conversation_id(app, shop, ada)}/handled")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/inbox")


# --- Merging -----------------------------------------------------------------------------------


def test_merging_two_clients_leaves_one_conversation_with_the_later_activity_and_attention(
    app, shop, actions
):
    old = _client(app, shop, "Ada", "+15550101234")
    new = _client(app, shop, "Ada (new phone)", "+15550109999", lead=True)
    _inbound(app, shop, old, "Old number here", at=T0)
    _inbound(app, shop, new, "It's Ada, new number", at=T0 + timedelta(days=1))
    actions.post(f"/inbox/conversations/{_conversation_id(app, shop, new)}/handled")

    response = actions.post(f"/clients/{new}/merge/{old}")
    assert response.status_code == 302

    with app.app_context():
        conversations = db.session.execute(db.select(Conversation)).scalars().all()
        assert len(conversations) == 1
        [kept] = conversations
        assert kept.client_id == new
        assert kept.needs_attention  # the old card's conversation still needed attention
        assert kept.last_activity_at == T0 + timedelta(days=1)
        assert db.session.get(Message, kept.last_message_id).body == "It's Ada, new number"
    [row] = _rows(app, shop)
    assert row.snippet == "It's Ada, new number"


def test_merging_keeps_unread_what_a_staff_member_had_not_read(app, shop, actions):
    old = _client(app, shop, "Ada", "+15550101234")
    new = _client(app, shop, "Ada (new phone)", "+15550109999")
    _inbound(app, shop, old, "Old number here", at=T0)
    _inbound(app, shop, new, "New number here", at=T0 + timedelta(hours=1))
    _open_conversation(actions, new)  # the owner read the new card only
    with app.app_context():  # the staff member read both
        for client_id in (old, new):
            inbox.mark_read(inbox.conversation_of(shop["id"], client_id), shop["staff"][0], T0)

    actions.post(f"/clients/{new}/merge/{old}")

    assert _rows(app, shop)[0].unread
    assert not _rows(app, shop, user="staff")[0].unread


def test_merging_into_a_client_without_a_conversation_moves_it(app, shop, actions):
    old = _client(app, shop, "Ada", "+15550101234")
    new = _client(app, shop, "Ada (new phone)", "+15550109999")
    _inbound(app, shop, old, "Hello", at=T0)

    actions.post(f"/clients/{new}/merge/{old}")

    [row] = _rows(app, shop)
    assert row.client.id == new
    assert row.snippet == "Hello"


# --- Tenancy -------------------------------------------------------------------------------------


def test_another_businesss_conversations_are_not_listed_counted_or_changed(
    app, shop, actions, make_business
):
    other = make_business("Elsewhere")
    theirs = _client(app, other, "Their client")
    _inbound(app, other, theirs, "Secret", at=T0)
    conversation_id = _conversation_id(app, other, theirs)

    assert _rows(app, shop, folder="all") == []
    assert "Their client" not in page_text(actions.client.get("/inbox?folder=all&q=secret"))
    assert _nav_count(actions.client.get("/clients").get_data(as_text=True)) == 0
    for action in ("handled", "attention"):
        response = actions.post(f"/inbox/conversations/{conversation_id}/{action}")
        assert response.status_code == 404
    assert actions.client.get(f"/inbox/clients/{theirs}/state").status_code == 404
    with app.app_context():
        assert db.session.get(Conversation, conversation_id).needs_attention
