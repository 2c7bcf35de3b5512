"""Settings → Business info: the details the number's country and its verification use."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Business
from tests.conftest import page_text
from tests.texting_helpers import COMPLETE_INFO, use_sandbox

URL = "/settings/business"


def _form(**changes: str) -> dict[str, str]:
    return {
        "name": "Bright Smile Dental",
        "country": "US",
        "time_zone": "America/Chicago",
        **COMPLETE_INFO,
        **changes,
    }


def _business(app, business_id: int) -> Business:
    with app.app_context():
        business = db.session.get(Business, business_id)
        db.session.expunge(business)
        return business


@pytest.fixture
def owner(app, actions, make_business):
    business = make_business("Old Name")
    actions.sign_in(business["owner"][1])
    return business


def test_business_info_is_saved_with_website_email_and_phone_in_their_stored_forms(
    app, actions, owner
):
    response = actions.post(
        URL,
        _form(
            website="brightsmile.example.com",
            contact_email="Dana@BrightSmile.Example.com",
            contact_phone="(555) 010-1234",
        ),
    )
    assert response.status_code == 302
    business = _business(app, owner["id"])
    assert business.name == "Bright Smile Dental"
    assert business.time_zone == "America/Chicago"
    assert (business.street_address, business.city, business.region, business.postal_code) == (
        "12 Main Street",
        "Springfield",
        "IL",
        "62701",
    )
    assert business.website == "https://brightsmile.example.com"
    assert business.contact_email == "dana@brightsmile.example.com"
    assert business.contact_phone == "+15550101234"
    text = page_text(actions.client.get(URL))
    assert "(555) 010-1234" in text and "Business info saved." in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "  ", "Enter your business's name."),
        ("website", "not a website", "isn't a website address"),
        ("contact_email", "dana@", "That email address is not valid"),
        ("contact_phone", "555-01", "isn't a complete phone number"),
        ("country", "ZZ", "Choose your business's country."),
        ("time_zone", "Mars/Olympus", "Choose your business's time zone."),
        ("postal_code", "9" * 21, "at most 20 characters"),
    ],
)
def test_bad_business_info_is_refused_with_a_clear_message_and_changes_nothing(
    app, actions, owner, field, value, message
):
    response = actions.post(URL, _form(**{field: value}))
    assert response.status_code == 422
    assert message in page_text(response)
    business = _business(app, owner["id"])
    assert (business.name, business.website) == ("Old Name", "")


def test_the_country_cannot_change_while_the_business_uses_its_texting_number(
    app, actions, owner, sandbox, run_jobs
):
    use_sandbox(app, sandbox)
    assert actions.post(URL, _form()).status_code == 302
    actions.post("/settings/messages/sms/two-way-texting")
    run_jobs()
    response = actions.post(URL, _form(country="CA", time_zone="America/Toronto"))
    assert response.status_code == 422
    assert "Your texting number belongs to your current country" in page_text(response)
    assert _business(app, owner["id"]).country == "US"


def test_the_page_says_what_the_verification_needs_while_details_are_missing(actions, owner):
    assert "Two-way texting needs your full address, website and a contact person" in page_text(
        actions.client.get(URL)
    )
    actions.post(URL, _form())
    assert "Two-way texting needs" not in page_text(actions.client.get(URL))
