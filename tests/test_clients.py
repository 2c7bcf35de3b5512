"""Clients: phone numbers, create and edit, search, leads, and the client card."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Client, ClientPhone, OptOut
from app.services import clients
from app.services.errors import ServiceError
from app.services.phones import display_phone, normalise_phone, store_sender
from tests.conftest import page_text


@pytest.mark.parametrize(
    "typed", ["(555) 010-1234", "+1 555 010 1234", "5550101234", "555.010.1234", "1-555-010-1234"]
)
def test_common_phone_formats_are_stored_as_one_e164_number(typed):
    assert normalise_phone(typed, "US") == "+15550101234"


@pytest.mark.parametrize("typed", ["12345", "555-010", "call me", "+1 555 010 1234 9999", ""])
def test_an_invalid_phone_number_is_refused_with_a_reason(typed):
    with pytest.raises(ServiceError) as refused:
        normalise_phone(typed, "US")
    assert refused.value.message


def test_numbers_show_in_the_businesss_national_format():
    assert display_phone("+15550101234", "US") == "(555) 010-1234"
    assert display_phone("+447700900123", "US") == "+44 7700 900123"
    assert display_phone("+447700900123", "GB") == "07700 900123"


def test_short_codes_and_alphanumeric_senders_are_stored_as_received():
    assert store_sender("12345") == "12345"
    assert store_sender("MyClinic") == "MyClinic"
    assert store_sender("15550101234") == "+15550101234"


def _new_client(actions, **form):
    data = {
        "name": "Ada Lovelace",
        "phone": "(555) 010-1234",
        "email": "ada@example.com",
        "tags": "VIP, new patient",
    }
    data.update(form)
    return actions.post("/clients", data)


@pytest.fixture
def signed_in(actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    return business


def test_staff_add_a_client_with_numbers_emails_and_tags(app, actions, signed_in):
    response = _new_client(actions)
    assert response.status_code == 302
    with app.app_context():
        client = db.session.execute(db.select(Client)).scalar_one()
        assert client.name == "Ada Lovelace"
        assert [p.number for p in client.phones] == ["+15550101234"]
        assert [e.email for e in client.emails] == ["ada@example.com"]
        assert sorted(t.name for t in client.tags) == ["VIP", "new patient"]
        assert (client.source, client.is_lead) == ("staff", False)
    card = actions.client.get(response.headers["Location"] + "?tab=details")
    assert "(555) 010-1234" in page_text(card)


def test_an_invalid_phone_number_on_the_form_is_refused_and_nothing_is_saved(
    app, actions, signed_in
):
    response = _new_client(actions, phone="555-01")
    assert response.status_code == 422
    assert "isn't a complete phone number" in page_text(response)
    with app.app_context():
        assert db.session.execute(db.select(Client)).first() is None


def test_a_number_already_on_another_client_is_refused_with_a_link_to_them(app, actions, signed_in):
    first = _new_client(actions)
    first_url = first.headers["Location"]
    response = _new_client(actions, name="Someone Else", phone="+1 555 010 1234", email="")
    assert response.status_code == 422
    text = page_text(response)
    assert "already belongs to Ada Lovelace" in text
    assert f'href="{first_url}"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Client.id))).scalar() == 1


def test_the_same_number_may_belong_to_clients_of_different_businesses(
    app, actions, make_business, signed_in
):
    other = make_business()
    with app.app_context():
        clients.create_client(
            other["id"], "US", clients.ClientDetails(name="Theirs", phones=["5550101234"])
        )
    assert _new_client(actions).status_code == 302


def test_editing_a_clients_numbers_replaces_them(app, actions, signed_in):
    url = _new_client(actions).headers["Location"]
    client_id = int(url.rsplit("/", 1)[1])
    response = actions.post(
        f"/clients/{client_id}",
        {"name": "Ada King", "phone": ["555 010 9999", "555 010 1234"], "email": "", "tags": "VIP"},
    )
    assert response.status_code == 302
    with app.app_context():
        client = db.session.get(Client, client_id)
        assert client.name == "Ada King"
        assert [(p.number, p.is_primary) for p in client.phones] == [
            ("+15550109999", True),
            ("+15550101234", False),
        ]
        assert client.emails == []
        assert [t.name for t in client.tags] == ["VIP"]


def _make_clients(app, business_id, *specs):
    with app.app_context():
        ids = []
        for spec in specs:
            name, phone, *rest = spec
            client = clients.create_client(
                business_id,
                "US",
                clients.ClientDetails(
                    name=name, phones=[phone] if phone else [], emails=[e for e in rest[:1] if e]
                ),
                is_lead=bool(rest[1:]) and rest[1] == "lead",
                source="inbound_text" if rest[1:] and rest[1] == "lead" else "staff",
            )
            ids.append(client.id)
        return ids


def _names(response) -> list[str]:
    import re

    return re.findall(
        r'<strong>([^<]+?)(?: <span class="badge badge-lead">Lead</span>)?</strong>',
        response.get_data(as_text=True),
    )


def test_search_finds_a_client_by_partial_phone_digits_in_any_format(app, actions, signed_in):
    _make_clients(app, signed_in["id"], ("Ada", "5550101234"), ("Grace", "5550109876"))
    for typed in ("010-12", "0101 2", "(555) 010-1", "+1 555 0101"):
        response = actions.client.get(
            "/clients", query_string={"q": typed}, headers={"HX-Request": "true"}
        )
        assert _names(response) == ["Ada"], typed


def test_search_finds_by_part_of_a_name_or_email(app, actions, signed_in):
    _make_clients(
        app,
        signed_in["id"],
        ("Ada Lovelace", "5550101234", "ada@math.org"),
        ("Grace Hopper", "5550109876", "grace@navy.mil"),
    )
    assert _names(actions.client.get("/clients?q=love")) == ["Ada Lovelace"]
    assert _names(actions.client.get("/clients?q=navy")) == ["Grace Hopper"]
    assert _names(actions.client.get("/clients?q=hopper grace")) == ["Grace Hopper"]


def test_search_treats_percent_and_underscore_literally(app, actions, signed_in):
    _make_clients(app, signed_in["id"], ("Ada", "5550101234"))
    assert _names(actions.client.get("/clients?q=%25")) == []
    assert _names(actions.client.get("/clients?q=_")) == []


def test_an_htmx_search_returns_only_the_results_fragment(app, actions, signed_in):
    _make_clients(app, signed_in["id"], ("Ada", "5550101234"))
    response = actions.client.get("/clients?q=ada", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="client-results"')
    assert "<html" not in body


def test_the_leads_filter_shows_only_leads(app, actions, signed_in):
    _make_clients(
        app, signed_in["id"], ("Ada", "5550101234"), ("Unknown texter", "5550107777", None, "lead")
    )
    assert _names(actions.client.get("/clients?filter=leads")) == ["Unknown texter"]
    assert "Lead</span>" in actions.client.get("/clients").get_data(as_text=True)


def test_the_opted_out_filter_shows_clients_whose_number_opted_out(app, actions, signed_in):
    _make_clients(app, signed_in["id"], ("Ada", "5550101234"), ("Grace", "5550109876"))
    with app.app_context():
        db.session.add(OptOut(business_id=signed_in["id"], number="+15550109876"))
        db.session.commit()
    assert _names(actions.client.get("/clients?filter=opted_out")) == ["Grace"]


def test_the_client_list_is_paginated(app, actions, signed_in):
    specs = [(f"Client {i:03d}", f"555010{i:04d}") for i in range(clients.PAGE_SIZE + 3)]
    _make_clients(app, signed_in["id"], *specs)
    first = actions.client.get("/clients")
    assert len(_names(first)) == clients.PAGE_SIZE
    assert "Show more" in page_text(first)
    second = actions.client.get("/clients?page=2", headers={"HX-Request": "true"})
    assert _names(second) == [
        f"Client {i:03d}" for i in range(clients.PAGE_SIZE, clients.PAGE_SIZE + 3)
    ]
    assert "Show more" not in page_text(second)


def test_the_client_list_shows_only_the_businesss_own_clients(
    app, actions, make_business, signed_in
):
    other = make_business()
    _make_clients(app, other["id"], ("Their client", "5550101234"))
    _make_clients(app, signed_in["id"], ("Our client", "5550101234"))
    assert _names(actions.client.get("/clients")) == ["Our client"]
    assert _names(actions.client.get("/clients?q=0101234")) == ["Our client"]


def test_editing_a_lead_makes_it_a_client(app, actions, signed_in):
    [lead_id] = _make_clients(app, signed_in["id"], ("Unknown", "5550107777", None, "lead"))
    actions.post(f"/clients/{lead_id}", {"name": "Maria", "phone": "5550107777"})
    with app.app_context():
        assert db.session.get(Client, lead_id).is_lead is False


def test_a_lead_can_be_marked_as_a_client_from_the_card(app, actions, signed_in):
    [lead_id] = _make_clients(app, signed_in["id"], ("Unknown", "5550107777", None, "lead"))
    card = page_text(actions.client.get(f"/clients/{lead_id}"))
    assert "texted you first" in card and "Message" in card
    actions.post(f"/clients/{lead_id}/convert")
    with app.app_context():
        assert db.session.get(Client, lead_id).is_lead is False


def test_the_card_shows_source_and_time_zone(app, actions, signed_in):
    [lead_id] = _make_clients(app, signed_in["id"], ("Unknown", "5550107777", None, "lead"))
    text = page_text(actions.client.get(f"/clients/{lead_id}?tab=details"))
    assert "Texted your number" in text
    assert "From the phone number's area code" in text


def test_staff_add_notes_to_a_card(app, actions, signed_in):
    [client_id] = _make_clients(app, signed_in["id"], ("Ada", "5550101234"))
    actions.post(f"/clients/{client_id}/notes", {"body": "Prefers <b>mornings</b>"})
    page = actions.client.get(f"/clients/{client_id}?tab=notes").get_data(as_text=True)
    assert "Prefers &lt;b&gt;mornings&lt;/b&gt;" in page


def test_two_clients_cannot_end_up_with_the_same_number_even_at_the_database(app, signed_in):
    [a, b] = _make_clients(app, signed_in["id"], ("Ada", "5550101234"), ("Grace", None))
    with app.app_context():
        db.session.add(ClientPhone(business_id=signed_in["id"], client_id=b, number="+15550101234"))
        with pytest.raises(Exception, match="(?i)unique"):
            db.session.commit()


@pytest.mark.parametrize("sparse_limit", [1, 10_000], ids=["dense-path", "sparse-path"])
def test_search_results_are_in_name_order_across_pages_whichever_way_they_are_found(
    app, actions, signed_in, monkeypatch, sparse_limit
):
    monkeypatch.setattr(clients, "SPARSE_MATCHES", sparse_limit)
    names = [f"Zoe {chr(ord('A') + i % 26)}{i:03d}" for i in range(clients.PAGE_SIZE + 5)]
    _make_clients(
        app,
        signed_in["id"],
        ("Ada Other", "5550100001"),
        *[(name, f"555020{i:04d}") for i, name in enumerate(names)],
    )
    first = _names(actions.client.get("/clients?q=zoe"))
    second = _names(actions.client.get("/clients?q=zoe&page=2", headers={"HX-Request": "true"}))
    assert first + second == sorted(names, key=str.lower)
