"""Reading in a real browser: opening a conversation or a notification marks it read, though
the GETs that open them change nothing (the page marks it read with an htmx POST as it loads,
CSRF header and all)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import Notification
from tests.sending_helpers import make_client, store_unread_text

pytestmark = pytest.mark.e2e


def _is_read(url: str, method: str = "POST"):
    return lambda response: response.request.method == method and response.url.endswith(url)


def test_on_a_phone_opening_a_conversation_from_the_inbox_marks_it_read(
    app, make_business, phone, sign_in
):
    business = make_business()
    client_id = make_client(app, business["id"])
    with app.app_context():
        store_unread_text(business["id"], client_id, "Can I come at 4?")
    sign_in(phone, business["owner"][1])
    row = phone.locator(".inbox-row").first
    expect(row).to_have_class(re.compile(r"\bis-unread\b"))

    with phone.expect_response(_is_read(f"/messages/clients/{client_id}/read")) as marked:
        row.get_by_role("link").click()
    assert marked.value.status == 204
    expect(phone.get_by_text("Can I come at 4?")).to_be_visible()

    phone.goto("/inbox")
    expect(phone.locator(".inbox-row").first).not_to_have_class(re.compile(r"\bis-unread\b"))


def test_on_a_phone_opening_a_notification_marks_it_read_where_it_leads(
    app, make_business, phone, sign_in
):
    business = make_business()
    client_id = make_client(app, business["id"])
    with app.app_context():
        notification = Notification(
            business_id=business["id"],
            kind="text_received",
            text="Sam Client texted: see you at 3",
            link=f"/clients/{client_id}?tab=conversation",
        )
        db.session.add(notification)
        db.session.commit()
        notification_id = notification.id
    sign_in(phone, business["owner"][1])
    phone.goto("/notifications")
    entry = phone.locator(f"#notification-{notification_id}")
    expect(entry).to_have_class(re.compile(r"\bis-unread\b"))

    with phone.expect_response(_is_read(f"/notifications/{notification_id}/read")) as marked:
        entry.get_by_role("link").click()
    assert marked.value.status == 204
    expect(phone).to_have_url(re.compile(rf"/clients/{client_id}\?tab=conversation"))

    phone.go_back()
    phone.reload()
    expect(phone.locator(f"#notification-{notification_id}")).not_to_have_class(
        re.compile(r"\bis-unread\b")
    )
    with app.app_context():
        assert db.session.get(Notification, notification_id).read_at is not None
