"""Inviting staff by email link, roles, and who may change settings."""

from __future__ import annotations

import re

from app.extensions import db
from app.models import Invitation, User
from tests.conftest import page_text


def _invitation_link(mailbox) -> str:
    body = mailbox()[-1].get_body(("plain",)).get_content()
    return re.search(r"http://twoway\.test(/invitations/\S+)", body).group(1)


def test_owner_invites_staff_who_join_the_same_business_by_the_emailed_link(
    app, actions, make_business, mailbox, run_jobs
):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.post(
        "/settings/team/invitations", {"email": "new.hire@example.com", "role": "staff"}
    )
    assert response.status_code == 302
    run_jobs()
    assert mailbox()[-1]["To"] == "new.hire@example.com"
    link = _invitation_link(mailbox)
    actions.sign_out()
    joined = actions.post(link, {"name": "Nina", "password": "nina-password-1"})
    assert joined.status_code == 302
    with app.app_context():
        nina = db.session.execute(
            db.select(User).filter_by(email="new.hire@example.com")
        ).scalar_one()
        assert (nina.business_id, nina.role, nina.name) == (business["id"], "staff", "Nina")


def test_an_invitation_link_works_only_once(actions, make_business, mailbox, run_jobs):
    business = make_business()
    actions.sign_in(business["owner"][1])
    actions.post("/settings/team/invitations", {"email": "x@example.com", "role": "staff"})
    run_jobs()
    link = _invitation_link(mailbox)
    actions.sign_out()
    actions.post(link, {"name": "X", "password": "x-password-123"})
    actions.sign_out()
    again = actions.post(link, {"name": "Y", "password": "y-password-123"})
    assert again.status_code == 400
    assert "already been accepted" in page_text(again)


def test_a_cancelled_invitation_no_longer_works(app, actions, make_business, mailbox, run_jobs):
    business = make_business()
    actions.sign_in(business["owner"][1])
    actions.post("/settings/team/invitations", {"email": "x@example.com", "role": "staff"})
    run_jobs()
    link = _invitation_link(mailbox)
    with app.app_context():
        invitation_id = db.session.execute(db.select(Invitation.id)).scalar_one()
    actions.post(f"/settings/team/invitations/{invitation_id}/revoke")
    actions.sign_out()
    assert actions.client.get(link).status_code == 400


def test_inviting_someone_as_owner_is_refused(app, actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    response = actions.post(
        "/settings/team/invitations", {"email": "x@example.com", "role": "owner"}
    )
    assert response.status_code == 422
    with app.app_context():
        assert db.session.execute(db.select(Invitation)).first() is None


def test_staff_cannot_open_or_change_team_settings(app, actions, make_business):
    business = make_business(staff=("staff", "admin"))
    actions.sign_in(business["staff"][1])
    assert actions.client.get("/settings/team").status_code == 403
    response = actions.post(
        "/settings/team/invitations", {"email": "x@example.com", "role": "staff"}
    )
    assert response.status_code == 403
    response = actions.post(f"/settings/team/{business['admin'][0]}/role", {"role": "staff"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(User, business["admin"][0]).role == "admin"
        assert db.session.execute(db.select(Invitation)).first() is None


def test_admin_can_change_a_staff_members_role(app, actions, make_business):
    business = make_business(staff=("staff", "admin"))
    actions.sign_in(business["admin"][1])
    response = actions.post(f"/settings/team/{business['staff'][0]}/role", {"role": "admin"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(User, business["staff"][0]).role == "admin"


def test_the_owners_role_cannot_be_changed_nor_the_owner_removed(app, actions, make_business):
    business = make_business(staff=("admin",))
    actions.sign_in(business["admin"][1])
    owner_id = business["owner"][0]
    assert actions.post(f"/settings/team/{owner_id}/role", {"role": "staff"}).status_code == 422
    assert actions.post(f"/settings/team/{owner_id}/remove").status_code == 422
    with app.app_context():
        owner = db.session.get(User, owner_id)
        assert owner.role == "owner" and owner.is_active


def test_removing_a_staff_member_ends_their_access(app, actions, make_business, client):
    business = make_business(staff=("staff",))
    actions.sign_in(business["owner"][1])
    assert actions.post(f"/settings/team/{business['staff'][0]}/remove").status_code == 302
    actions.sign_out()
    assert actions.sign_in(business["staff"][1]).status_code == 401


def test_a_removed_staff_members_open_session_stops_working(app, make_business):
    business = make_business(staff=("staff",))
    staff_browser = app.test_client()
    from tests.conftest import Actions

    Actions(app, staff_browser).sign_in(business["staff"][1])
    assert staff_browser.get("/inbox").status_code == 200
    with app.app_context():
        db.session.get(User, business["staff"][0]).deactivated_at = db.func.now()
        db.session.commit()
    assert staff_browser.get("/inbox").status_code == 302


def test_inviting_an_email_that_already_has_an_account_answers_as_for_a_new_one(
    actions, make_business
):
    business = make_business()
    elsewhere = make_business()["owner"][1]
    actions.sign_in(business["owner"][1])

    answers = []
    for email in (elsewhere, "new.hire@example.com"):
        sent = actions.post("/settings/team/invitations", {"email": email, "role": "staff"})
        team = page_text(actions.client.get(sent.headers["Location"]))
        flashes = re.findall(r'<p class="flash[^"]*" role="status">([^<]*)</p>', team)
        listed = f"<strong>{email}</strong>" in team  # among the pending invitations
        answers.append((sent.status_code, sent.headers["Location"], flashes, listed))

    assert answers[0] == (302, "/settings/team", [f"Invitation sent to {elsewhere}."], True)
    assert answers[1] == (302, "/settings/team", ["Invitation sent to new.hire@example.com."], True)


def test_someone_invited_who_already_has_an_account_is_emailed_without_a_join_link(
    actions, make_business, mailbox, run_jobs
):
    business = make_business()
    elsewhere = make_business()["owner"][1]
    actions.sign_in(business["owner"][1])

    actions.post("/settings/team/invitations", {"email": elsewhere, "role": "staff"})
    run_jobs()

    email = mailbox()[-1]
    body = email.get_body(("plain",)).get_content()
    assert email["To"] == elsewhere
    assert "already has a Twoway account" in body
    assert "/invitations/" not in body


def test_inviting_someone_already_on_your_team_says_so_and_invites_no_one(
    app, actions, make_business
):
    business = make_business(staff=("staff",))
    actions.sign_in(business["owner"][1])

    response = actions.post(
        "/settings/team/invitations", {"email": business["staff"][1], "role": "admin"}
    )

    assert response.status_code == 422
    assert "already on your team" in page_text(response)
    with app.app_context():
        assert db.session.execute(db.select(Invitation)).first() is None
