"""Importing clients from CSV: normalised numbers, updates instead of duplicates, bad rows
reported by line while good rows are kept, progress recorded and published."""

from __future__ import annotations

import io

import pytest

from app.extensions import db
from app.models import Client, ClientImport
from app.services import client_import, clients
from tests.conftest import page_text

CSV = """Name,Phone,Email,Notes
Ada Lovelace,(555) 010-1234,ada@example.com,Prefers mornings
Grace Hopper,+1 555 010 9876,,
Bad Phone,555-01,,
No Contact,,,
Ada Again,5550101234,ada.work@example.com,Second line for Ada
,5550105555,nameless@example.com,
Existing Client,555 010 4444,existing.new@example.com,
Bad Email,,not-an-email,
"""


@pytest.fixture
def business(app, actions, make_business):
    business = make_business()
    actions.sign_in(business["owner"][1])
    with app.app_context():
        clients.create_client(
            business["id"],
            "US",
            clients.ClientDetails(name="Existing Client", phones=["5550104444"]),
        )
    return business


def _upload(actions, text: str, name: str = "clients.csv"):
    return actions.post(
        "/clients/import",
        {"file": (io.BytesIO(text.encode()), name)},
        content_type="multipart/form-data",
    )


def test_an_import_with_good_bad_and_duplicate_rows_keeps_the_good_and_reports_the_bad(
    app, actions, business, run_jobs
):
    response = _upload(actions, CSV)
    assert response.status_code == 302
    run_jobs()
    with app.app_context():
        job = db.session.execute(db.select(ClientImport)).scalar_one()
        assert job.status == "done"
        assert (job.total_rows, job.processed_rows) == (8, 8)
        assert (job.created_count, job.updated_count) == (2, 2)
        assert [(e["line"], e["reason"]) for e in job.errors] == [
            (4, "“555-01” isn't a complete phone number: check the number of digits."),
            (5, "No phone number or email."),
            (7, "No name."),
            (9, job.errors[3]["reason"]),
        ]
        assert "not valid" in job.errors[3]["reason"]
        people = {
            c.name: c
            for c in db.session.execute(
                db.select(Client).where(Client.merged_into_id.is_(None))
            ).scalars()
        }
        assert set(people) == {"Ada Lovelace", "Grace Hopper", "Existing Client"}
        ada = people["Ada Lovelace"]
        assert [p.number for p in ada.phones] == ["+15550101234"]
        assert sorted(e.email for e in ada.emails) == ["ada.work@example.com", "ada@example.com"]
        assert sorted(n.body for n in ada.notes) == ["Prefers mornings", "Second line for Ada"]
        assert ada.source == "import"
        assert people["Grace Hopper"].phones[0].number == "+15550109876"
        assert [e.email for e in people["Existing Client"].emails] == ["existing.new@example.com"]


def test_the_progress_page_shows_the_result_and_the_bad_lines(app, actions, business, run_jobs):
    url = _upload(actions, CSV).headers["Location"]
    assert "Waiting to start" in page_text(actions.client.get(url))
    run_jobs()
    text = page_text(actions.client.get(url))
    assert "Done: 2 added, 2 updated, 4 not imported." in text
    assert "Line 4: “555-01” isn't a complete phone number" in text


def test_running_an_import_job_twice_adds_nothing_twice(app, actions, business, run_jobs):
    _upload(actions, CSV)
    run_jobs()
    with app.app_context():
        job_id = db.session.execute(db.select(ClientImport.id)).scalar_one()
        before = db.session.execute(db.select(db.func.count(Client.id))).scalar()
        job = db.session.get(ClientImport, job_id)
        job.status = "running"  # as if the worker died before marking it done
        db.session.commit()
        client_import.run_import(job_id)
        assert db.session.execute(db.select(db.func.count(Client.id))).scalar() == before


def test_a_file_without_the_needed_columns_is_refused_before_importing(app, actions, business):
    response = _upload(actions, "First,Last\nAda,Lovelace\n")
    assert response.status_code == 422
    assert "name, and phone or email" in page_text(response)
    with app.app_context():
        assert db.session.execute(db.select(ClientImport)).first() is None


def test_a_file_that_is_not_utf8_text_is_refused(actions, business):
    response = actions.post(
        "/clients/import",
        {"file": (io.BytesIO(b"\xff\xfe\x00name"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422


def test_an_import_publishes_its_progress_to_the_businesss_live_stream(
    app, actions, business, run_jobs
):
    from app.extensions import get_redis
    from app.services import events

    _upload(actions, CSV)
    run_jobs()
    with app.app_context():
        job_id = db.session.execute(db.select(ClientImport.id)).scalar_one()
        published = get_redis().xrange(events.stream_key(business["id"]))
    finals = [
        fields[b"data"].decode()
        for _, fields in published
        if fields[b"event"] == f"client-import-{job_id}".encode()
    ]
    assert finals and "Done: 2 added" in finals[-1]


def test_a_client_list_larger_than_other_forms_can_be_uploaded(app, actions, business):
    rows = "".join(f"Client {i},555010{i:04d},c{i}@example.com,\n" for i in range(3000))
    text = "Name,Phone,Email,Notes\n" + rows
    assert len(text.encode()) > app.config["MAX_CONTENT_LENGTH"]
    assert _upload(actions, text).status_code == 302
