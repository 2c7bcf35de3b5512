"""Clients: search, create, edit, leads and merging."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Client, ClientEmail, ClientNote, ClientPhone, ClientTag, OptOut, User
from app.models.types import MAX_ROW_ID, utcnow
from app.services import inbox
from app.services.accounts import normalise_email
from app.services.errors import ServiceError
from app.services.phones import normalise_phone, phone_search_digits
from app.services.places import is_time_zone
from app.services.text_input import multi_line, single_line

PAGE_SIZE = 25
SPARSE_MATCHES = 5000  # see search_clients
FILTERS = {"all": "All", "leads": "Leads", "opted_out": "Opted out of texts"}
MAX_TAG_LENGTH = 40


class PhoneTaken(ServiceError):
    """A phone number that already belongs to another client of the business."""

    def __init__(self, number: str, client_id: int, client_name: str):
        super().__init__(f"{number} already belongs to {client_name}.", field="phones")
        self.number = number
        self.client_id = client_id
        self.client_name = client_name


@dataclass
class ClientDetails:
    """What a person types on the client form, before checking."""

    name: str
    phones: list[str] = field(default_factory=list)  # the first is the primary number
    emails: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    time_zone: str = ""


def client_or_none(business_id: int, client_id: int) -> Client | None:
    client = db.session.get(Client, client_id)
    if client is None or client.business_id != business_id:
        return None
    return client


def surviving_client(client: Client) -> Client:
    """The card a merged client now lives on (itself when it was never merged)."""
    while client.merged_into_id is not None:
        client = db.session.get(Client, client.merged_into_id)
    return client


def number_opted_out(business_id: int, number: str) -> bool:
    """True when the number opted out of the business's texts (STOP)."""
    return (
        db.session.execute(
            select(OptOut.id).where(OptOut.business_id == business_id, OptOut.number == number)
        ).first()
        is not None
    )


def is_opted_out(client: Client) -> bool:
    """True when any of the client's numbers opted out of the business's texts."""
    numbers = [phone.number for phone in client.phones]
    if not numbers:
        return False
    return (
        db.session.execute(
            select(OptOut.id)
            .where(OptOut.business_id == client.business_id, OptOut.number.in_(numbers))
            .limit(1)
        ).first()
        is not None
    )


def _opted_out_clause():
    return exists().where(
        ClientPhone.client_id == Client.id,
        OptOut.business_id == ClientPhone.business_id,
        OptOut.number == ClientPhone.number,
    )


def search_clients(
    business_id: int, query: str = "", filter_: str = "all", page: int = 1
) -> tuple[list[Client], bool]:
    """A page of the business's clients matching `query` (name, email, or any run of phone
    digits in any format), by name; and whether there is a next page."""
    if page > MAX_ROW_ID // PAGE_SIZE + 1:
        return [], False  # past every row there can be (and past what SQLite's OFFSET takes)
    conditions = [Client.business_id == business_id, Client.merged_into_id.is_(None)]
    terms = _search_terms(query)
    conditions += [
        Client.search_text.like(f"%{_escape_like(term)}%", escape="\\") for term in terms
    ]
    if filter_ == "leads":
        conditions.append(Client.is_lead.is_(True))
    elif filter_ == "opted_out":
        conditions.append(_opted_out_clause())
    offset = (max(1, page) - 1) * PAGE_SIZE
    by_name = (Client.sort_name, Client.id)
    statement = select(Client).where(*conditions).order_by(*by_name)
    if terms:
        # Ordering by name while filtering by a substring: left to itself the database may walk
        # the name index hoping to meet matches early, which is slow when they sort late (the
        # "zoe"s come last). So collect at most SPARSE_MATCHES + 1 matches first (the trigram
        # index finds them) and take the page from those, in one query; only when there are
        # more are matches dense, and then walking the name index meets them soon.
        matches = (
            select(Client.id, Client.sort_name)
            .where(*conditions)
            .limit(SPARSE_MATCHES + 1)
            .cte("matches")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        count = select(func.count()).select_from(matches)
        total = count.scalar_subquery()
        page_rows = db.session.execute(
            select(matches.c.id, total.label("total"))
            .order_by(matches.c.sort_name, matches.c.id)
            .offset(offset)
            .limit(PAGE_SIZE + 1)
        ).all()
        if page_rows:
            sparse = page_rows[0].total <= SPARSE_MATCHES
        else:  # a page past the end of the collected matches: were they all of them?
            sparse = db.session.execute(count).scalar_one() <= SPARSE_MATCHES
        if sparse:
            page_ids = [row.id for row in page_rows]
            statement = select(Client).where(Client.id.in_(page_ids)).order_by(*by_name)
            offset = 0
    rows = (
        db.session.execute(
            statement.options(joinedload(Client.phones), joinedload(Client.emails))
            .offset(offset)
            .limit(PAGE_SIZE + 1)
        )
        .unique()
        .scalars()
        .all()
    )
    return list(rows[:PAGE_SIZE]), len(rows) > PAGE_SIZE


def _search_terms(query: str) -> list[str]:
    """Words to find, lower-case. A query that is mostly a phone number ("(555) 010-12") is one
    run of digits, whatever punctuation the person typed."""
    query = query.strip().lower()
    if not query:
        return []
    digits = re.sub(r"\D", "", query)
    if digits and re.fullmatch(r"[\d\s().+\-]+", query):
        return [digits]
    return query.split()


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def refresh_search_text(client: Client) -> None:
    """Rebuilds the columns that search and ordering read (call after changing names, numbers,
    emails)."""
    client.sort_name = client.name.lower()
    parts = [client.sort_name]
    parts += [email.email for email in client.emails]
    parts += [phone_search_digits(phone.number) for phone in client.phones]
    client.search_text = " | ".join(parts)


def _check_details(
    business_id: int, country: str, details: ClientDetails
) -> tuple[str, list[str], list[str], list[str], str | None]:
    name = single_line(details.name)
    if not name:
        raise ServiceError("Enter the client's name.", field="name")
    if len(name) > 120:
        raise ServiceError("A name can be at most 120 characters.", field="name")
    phones: list[str] = []
    for raw in details.phones:
        if raw.strip():
            number = normalise_phone(raw, country)
            if number not in phones:
                phones.append(number)
    emails: list[str] = []
    for raw in details.emails:
        if raw.strip():
            email = normalise_email(raw)
            if email not in emails:
                emails.append(email)
    tags: list[str] = []
    for raw in details.tags:
        tag = single_line(raw)
        if tag and len(tag) > MAX_TAG_LENGTH:
            raise ServiceError(f"A tag can be at most {MAX_TAG_LENGTH} characters.", field="tags")
        if tag and tag.lower() not in {t.lower() for t in tags}:
            tags.append(tag)
    time_zone = details.time_zone.strip() or None
    if time_zone and not is_time_zone(time_zone):
        raise ServiceError("Choose a time zone from the list.", field="time_zone")
    return name, phones, emails, tags, time_zone


def _refuse_taken_numbers(business_id: int, numbers: list[str], client_id: int | None) -> None:
    if not numbers:
        return
    taken = db.session.execute(
        select(ClientPhone.number, Client.id, Client.name)
        .join(Client, Client.id == ClientPhone.client_id)
        .where(ClientPhone.business_id == business_id, ClientPhone.number.in_(numbers))
    ).first()
    if taken and taken.id != client_id:
        raise PhoneTaken(taken.number, taken.id, taken.name)


def create_client(
    business_id: int,
    country: str,
    details: ClientDetails,
    *,
    source: str = "staff",
    is_lead: bool = False,
    commit: bool = True,
) -> Client:
    """Adds a client. A number already on another client is refused (PhoneTaken). With
    `commit=False` the caller owns the transaction (an import commits in batches)."""
    name, phones, emails, tags, time_zone = _check_details(business_id, country, details)
    _refuse_taken_numbers(business_id, phones, None)
    client = Client(
        business_id=business_id, name=name, source=source, is_lead=is_lead, time_zone=time_zone
    )
    client.phones = [
        ClientPhone(business_id=business_id, number=number, is_primary=i == 0)
        for i, number in enumerate(phones)
    ]
    client.emails = [
        ClientEmail(business_id=business_id, email=email, is_primary=i == 0)
        for i, email in enumerate(emails)
    ]
    client.tags = [ClientTag(business_id=business_id, name=tag) for tag in tags]
    refresh_search_text(client)
    db.session.add(client)
    if commit:
        _commit_or_phone_taken(business_id, phones, None)
    else:
        db.session.flush()
    return client


def update_client(client: Client, country: str, details: ClientDetails) -> Client:
    """Saves the client form. Editing a lead makes it a client (it's been looked at)."""
    name, phones, emails, tags, time_zone = _check_details(client.business_id, country, details)
    _refuse_taken_numbers(client.business_id, phones, client.id)
    client.name = name
    client.time_zone = time_zone
    client.is_lead = False
    _replace_children(client, "phones", ClientPhone, "number", phones)
    _replace_children(client, "emails", ClientEmail, "email", emails)
    by_name = {tag.name: tag for tag in client.tags}
    client.tags = [
        by_name.get(tag) or ClientTag(business_id=client.business_id, name=tag) for tag in tags
    ]
    refresh_search_text(client)
    _commit_or_phone_taken(client.business_id, phones, client.id)
    return client


def _replace_children(client: Client, attribute: str, model, column: str, values: list[str]):
    existing = {getattr(child, column): child for child in getattr(client, attribute)}
    children = []
    for i, value in enumerate(values):
        child = existing.get(value) or model(business_id=client.business_id, **{column: value})
        child.is_primary = i == 0
        children.append(child)
    setattr(client, attribute, children)
    db.session.flush()  # deletes removed numbers before new ones take their place


def _commit_or_phone_taken(business_id: int, phones: list[str], client_id: int | None) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        # Another request took the number between our check and our insert.
        db.session.rollback()
        _refuse_taken_numbers(business_id, phones, client_id)
        raise


def convert_lead(client: Client) -> None:
    """Marks a lead as a client."""
    client.is_lead = False
    db.session.commit()


def add_note(client: Client, author: User, body: str) -> ClientNote:
    body = multi_line(body).strip()
    if not body:
        raise ServiceError("Write something in the note.", field="body")
    if len(body) > 5000:
        raise ServiceError("A note can be at most 5,000 characters.", field="body")
    note = ClientNote(
        business_id=client.business_id, client_id=client.id, author_id=author.id, body=body
    )
    db.session.add(note)
    db.session.commit()
    return note


# Merging -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergePreview:
    """What merging `removed` into `kept` will leave on the kept card."""

    kept: Client
    removed: Client
    name: str
    phones: list[str]
    emails: list[str]
    tags: list[str]
    notes: int
    created_at: object
    opted_out: bool
    is_lead: bool
    moved_rows: dict[str, int]  # table -> rows that move to the kept card


def _client_tables():
    """Every table with a `client_id` column: what a merge moves to the kept card. New tables
    that belong to a client (messages, say) are moved without anyone remembering."""
    return [
        table
        for table in db.metadata.sorted_tables
        if "client_id" in table.c and table.name != "client"
    ]


def preview_merge(business_id: int, kept_id: int, removed_id: int) -> MergePreview:
    kept, removed = _merge_pair(business_id, kept_id, removed_id)
    moved = {}
    for table in _client_tables():
        count = db.session.execute(
            select(func.count()).select_from(table).where(table.c.client_id == removed.id)
        ).scalar_one()
        if count:
            moved[table.name] = count
    return MergePreview(
        kept=kept,
        removed=removed,
        name=kept.name,
        phones=[p.number for p in kept.phones] + [p.number for p in removed.phones],
        emails=list(
            dict.fromkeys([e.email for e in kept.emails] + [e.email for e in removed.emails])
        ),
        tags=sorted({t.name for t in kept.tags} | {t.name for t in removed.tags}, key=str.lower),
        notes=len(kept.notes) + len(removed.notes),
        created_at=min(kept.created_at, removed.created_at),
        opted_out=is_opted_out(kept) or is_opted_out(removed),
        is_lead=kept.is_lead and removed.is_lead,
        moved_rows=moved,
    )


def _merge_pair(business_id: int, kept_id: int, removed_id: int) -> tuple[Client, Client]:
    if kept_id == removed_id:
        raise ServiceError("A client can't be merged with itself.")
    kept = client_or_none(business_id, kept_id)
    removed = client_or_none(business_id, removed_id)
    if kept is None or removed is None:
        raise LookupError("no such client in this business")
    if kept.merged_into_id is not None or removed.merged_into_id is not None:
        raise ServiceError("One of these clients was already merged into another card.")
    return kept, removed


def merge_clients(business_id: int, kept_id: int, removed_id: int, actor: User) -> Client:
    """Moves everything of `removed` onto `kept` in one transaction: every phone number, email,
    note, tag and message; the earlier creation date; the stricter consent (opt-outs belong to
    the numbers, which all move); a note saying who merged what and when. The removed card
    stays as a pointer to the kept one. Completes or changes nothing."""
    kept, removed = _merge_pair(business_id, kept_id, removed_id)
    removed_name = removed.name
    try:
        kept_tags = {tag.name.lower() for tag in kept.tags}
        for tag in list(removed.tags):
            if tag.name.lower() in kept_tags:
                db.session.delete(tag)
        db.session.flush()
        db.session.execute(
            update(ClientPhone).where(ClientPhone.client_id == removed.id).values(is_primary=False)
        )
        db.session.execute(
            update(ClientEmail).where(ClientEmail.client_id == removed.id).values(is_primary=False)
        )
        kept_emails = {email.email for email in kept.emails}
        for email in list(removed.emails):
            if email.email in kept_emails:
                db.session.delete(email)
        db.session.flush()
        # One conversation per client: fold the removed card's into the kept one's first.
        inbox.merge_conversations(business_id, kept.id, removed.id)
        for table in _client_tables():
            db.session.execute(
                update(table).where(table.c.client_id == removed.id).values(client_id=kept.id)
            )
        kept.created_at = min(kept.created_at, removed.created_at)
        kept.is_lead = kept.is_lead and removed.is_lead
        removed.merged_into_id = kept.id
        removed.search_text = ""
        db.session.add(
            ClientNote(
                business_id=business_id,
                client_id=kept.id,
                author_id=actor.id,
                kind="merge",
                body=f"{actor.name} merged “{removed_name}” (client #{removed.id}) into this "
                f"card on {utcnow():%Y-%m-%d %H:%M} UTC.",
            )
        )
        db.session.flush()
        db.session.expire(kept)
        refresh_search_text(kept)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    inbox.announce(business_id, kept.id)
    return kept


def find_client_by_number(business_id: int, number: str) -> Client | None:
    return db.session.execute(
        select(Client)
        .join(ClientPhone, ClientPhone.client_id == Client.id)
        .where(ClientPhone.business_id == business_id, ClientPhone.number == number)
    ).scalar_one_or_none()


def find_client_by_email(business_id: int, email: str) -> Client | None:
    return db.session.execute(
        select(Client)
        .join(ClientEmail, ClientEmail.client_id == Client.id)
        .where(
            ClientEmail.business_id == business_id,
            ClientEmail.email == email,
            Client.merged_into_id.is_(None),
        )
        .order_by(Client.id)
        .limit(1)
    ).scalar_one_or_none()
