"""In-app notifications: stored with the change they report, listed for staff, marked read,
and handed to the push hook after the commit."""

from __future__ import annotations

from app.extensions import db
from app.models import Notification
from app.services import notifications
from tests.conftest import page_text


def _notify(app, business_id: int, text: str, **kwargs) -> int:
    with app.app_context():
        notification = notifications.notify(business_id, kind="test", text=text, **kwargs)
        db.session.commit()
        notifications.announce(notification)
        return notification.id


def test_staff_see_business_wide_notifications_and_their_own_but_not_a_colleagues(
    app, actions, make_business
):
    business = make_business(staff=("admin", "staff"))
    _notify(app, business["id"], "For everyone")
    _notify(app, business["id"], "For the staff member", user_id=business["staff"][0])
    _notify(app, business["id"], "For the admin", user_id=business["admin"][0])
    actions.sign_in(business["staff"][1])
    text = page_text(actions.client.get("/notifications"))
    assert "For everyone" in text and "For the staff member" in text
    assert "For the admin" not in text


def _read_at(app, notification_id: int):
    with app.app_context():
        return db.session.get(Notification, notification_id).read_at


def test_opening_a_notification_marks_it_read_and_goes_where_it_points(app, actions, make_business):
    business = make_business()
    notification_id = _notify(app, business["id"], "Verified", link="/settings/messages/sms")
    actions.sign_in(business["owner"][1])
    response = actions.client.get(f"/notifications/{notification_id}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/settings/messages/sms?notification={notification_id}"
    # The page it leads to marks it read as it loads (htmx), as a browser would.
    page = actions.client.get(response.headers["Location"]).get_data(as_text=True)
    read_url = f"/notifications/{notification_id}/read"
    assert f'hx-post="{read_url}" hx-trigger="load"' in page
    assert actions.post(read_url, headers={"HX-Request": "true"}).status_code == 204
    assert _read_at(app, notification_id) is not None


def test_following_a_notifications_link_alone_marks_nothing_read(app, actions, make_business):
    business = make_business()
    notification_id = _notify(app, business["id"], "Verified", link="/settings/messages/sms")
    actions.sign_in(business["owner"][1])

    actions.client.get(f"/notifications/{notification_id}", follow_redirects=True)

    assert _read_at(app, notification_id) is None


def test_a_notification_without_a_link_opens_the_list_which_marks_it_read(
    app, actions, make_business
):
    business = make_business()
    notification_id = _notify(app, business["id"], "Something happened")
    actions.sign_in(business["owner"][1])
    response = actions.client.get(f"/notifications/{notification_id}")
    assert response.headers["Location"] == f"/notifications?notification={notification_id}"
    page = actions.client.get(response.headers["Location"]).get_data(as_text=True)
    assert f'hx-post="/notifications/{notification_id}/read"' in page
    # Once read, the list (which listens for this event) fetches itself again.
    answer = actions.post(f"/notifications/{notification_id}/read", headers={"HX-Request": "1"})
    assert answer.headers["HX-Trigger"] == "notification-read"
    assert 'hx-trigger="sse:notification-created, notification-read from:body"' in page


def test_a_colleagues_own_notification_is_not_marked_read_by_another(app, actions, make_business):
    business = make_business(staff=("staff",))
    notification_id = _notify(app, business["id"], "Yours", user_id=business["staff"][0])
    actions.sign_in(business["owner"][1])

    actions.post(f"/notifications/{notification_id}/read", headers={"HX-Request": "true"})

    assert _read_at(app, notification_id) is None


def test_mark_all_as_read(app, actions, make_business):
    business = make_business()
    _notify(app, business["id"], "One")
    _notify(app, business["id"], "Two")
    actions.sign_in(business["owner"][1])
    assert "Mark all as read" in page_text(actions.client.get("/notifications"))
    actions.post("/notifications/read")
    with app.app_context():
        assert notifications.unread_count(business["id"], business["owner"][0]) == 0
    assert "Mark all as read" not in page_text(actions.client.get("/notifications"))


def test_the_push_hook_receives_each_notification_after_it_is_stored(app, make_business):
    business = make_business()
    received = []

    def receiver(sender, notification):
        with app.app_context():
            stored = db.session.get(Notification, notification.id)
            received.append(stored.text if stored else None)

    notifications.notification_created.connect(receiver)
    try:
        _notify(app, business["id"], "Your number is verified")
    finally:
        notifications.notification_created.disconnect(receiver)
    assert received == ["Your number is verified"]
