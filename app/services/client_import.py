"""Importing clients from a CSV file (name, phone, email, notes), as a job with live progress.

Numbers are read with the business's country and stored in E.164. A row whose phone or email
matches an existing client updates that client (adds what is new) instead of duplicating it.
Bad rows are reported by line with the reason; good rows are kept.
"""

from __future__ import annotations

import csv
import io

from flask import current_app, render_template

from app.extensions import db
from app.models import Business, ClientEmail, ClientImport, ClientNote, ClientPhone
from app.models.types import utcnow
from app.services import clients, events
from app.services.accounts import normalise_email
from app.services.errors import ServiceError
from app.services.phones import normalise_phone
from app.services.queues import enqueue
from app.services.text_input import multi_line, single_line

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
BATCH = 200  # rows per transaction and per progress update

# Header spellings people use, mapped to our four columns.
HEADERS = {
    "name": "name",
    "full name": "name",
    "client": "name",
    "client name": "name",
    "phone": "phone",
    "phone number": "phone",
    "mobile": "phone",
    "cell": "phone",
    "email": "email",
    "email address": "email",
    "e-mail": "email",
    "notes": "notes",
    "note": "notes",
}


def _columns(header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        key = HEADERS.get(title.strip().lower())
        if key and key not in columns:
            columns[key] = index
    return columns


def start_import(business_id: int, user_id: int, filename: str, data: bytes) -> ClientImport:
    """Checks the file's shape, saves it, and queues the import job."""
    if not filename or not data:
        raise ServiceError("Choose a CSV file to import.")
    if len(data) > MAX_FILE_BYTES:
        raise ServiceError("That file is over 5 MB. Split it into smaller files.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ServiceError(
            "That file isn't a UTF-8 CSV file. Export it again as CSV (UTF-8)."
        ) from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ServiceError("That file is empty.")
    columns = _columns(rows[0])
    if "name" not in columns or not ({"phone", "email"} & columns.keys()):
        raise ServiceError(
            "The first line must name the columns: name, and phone or email (notes is optional)."
        )
    total = sum(1 for row in rows[1:] if any(cell.strip() for cell in row))
    if total > MAX_ROWS:
        raise ServiceError(
            f"That file has {total:,} clients; import at most {MAX_ROWS:,} at a time."
        )
    job = ClientImport(
        business_id=business_id,
        started_by_id=user_id,
        filename=single_line(filename)[:255],
        csv_text=text,
        total_rows=total,
        errors=[],
    )
    db.session.add(job)
    db.session.commit()
    from jobs.clients import run_client_import

    enqueue(run_client_import, job.id, timeout=30 * 60)
    return job


def run_import(import_id: int) -> None:
    """Imports the rows not yet processed (safe to run again after a crash: it resumes)."""
    job = db.session.get(ClientImport, import_id)
    if job is None or job.status == "done":
        return
    business = db.session.get(Business, job.business_id)
    job.status = "running"
    db.session.commit()
    reader = csv.reader(io.StringIO(job.csv_text))
    columns = _columns(next(reader))
    errors = list(job.errors or [])
    processed = created = updated = 0
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        processed += 1
        if processed <= job.processed_rows:
            continue  # done by an earlier run of this job
        line = reader.line_num
        try:
            outcome = _import_row(business, columns, row)
        except ServiceError as error:
            errors.append({"line": line, "reason": error.message})
        else:
            created += outcome == "created"
            updated += outcome == "updated"
        if processed % BATCH == 0:
            _save_progress(job, processed, created, updated, errors)
            created = updated = 0
    _save_progress(job, processed, created, updated, errors, done=True)


def _save_progress(
    job: ClientImport, processed: int, created: int, updated: int, errors: list, done: bool = False
) -> None:
    job.processed_rows = processed
    job.created_count += created
    job.updated_count += updated
    job.errors = list(errors)
    if done:
        job.status = "done"
        job.finished_at = utcnow()
    db.session.commit()
    publish_progress(job)


def publish_progress(job: ClientImport) -> None:
    """Sends the progress fragment to the business's open pages."""
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]):
        html = render_template("clients/_import_status.html", job=job)
    events.publish(job.business_id, f"client-import-{job.id}", html)


def _cell(row: list[str], columns: dict[str, int], key: str) -> str:
    index = columns.get(key)
    return row[index].strip() if index is not None and index < len(row) else ""


def _import_row(business: Business, columns: dict[str, int], row: list[str]) -> str:
    name = _cell(row, columns, "name")
    raw_phone, raw_email = _cell(row, columns, "phone"), _cell(row, columns, "email")
    notes = _cell(row, columns, "notes")
    if not raw_phone and not raw_email:
        raise ServiceError("No phone number or email.")
    phone = normalise_phone(raw_phone, business.country) if raw_phone else None
    email = normalise_email(raw_email) if raw_email else None
    by_phone = clients.find_client_by_number(business.id, phone) if phone else None
    by_email = clients.find_client_by_email(business.id, email) if email else None
    if by_phone and by_email and by_phone.id != by_email.id:
        raise ServiceError(
            f"The phone belongs to {by_phone.name} but the email to "
            f"{by_email.name}: merge them first."
        )
    existing = by_phone or by_email
    if existing is None:
        if not name:
            raise ServiceError("No name.")
        details = clients.ClientDetails(
            name=name, phones=[phone] if phone else [], emails=[email] if email else []
        )
        client = clients.create_client(
            business.id, business.country, details, source="import", commit=False
        )
        if notes:
            db.session.add(
                ClientNote(business_id=business.id, client=client, body=multi_line(notes))
            )
        return "created"
    if phone and by_phone is None:
        existing.phones.append(
            ClientPhone(business_id=business.id, number=phone, is_primary=not existing.phones)
        )
    if email and by_email is None:
        existing.emails.append(
            ClientEmail(business_id=business.id, email=email, is_primary=not existing.emails)
        )
    if notes and notes not in {note.body for note in existing.notes}:
        db.session.add(ClientNote(business_id=business.id, client_id=existing.id, body=notes))
    clients.refresh_search_text(existing)
    db.session.flush()
    return "updated"
