"""The shared inbox (DESIGN.md §5): one conversation per client, ordered by latest activity,
and the folder Require your attention.

Whoever stores a message that shows in the inbox (an inbound text, a text or email sent to a
client) calls `record_message` in the same transaction, then `announce` after the commit.
Something that needs a person (an unread inbound text, a flagged opt-out request, a failed
send, a new lead) puts the conversation in the folder (`attention=True`, or `flag`); a staff
member marking it handled takes it out, until the next thing that needs attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app.extensions import db, insert_on_conflict
from app.models import Client, Conversation, ConversationRead, Message
from app.models.types import is_row_id
from app.services import events
from app.services.errors import ServiceError

INBOX_EVENT = "inbox.changed"  # SSE: a conversation's place or state changed
MESSAGE_EVENT = "message.created"  # SSE: a message now shows in a conversation


def record_message(message: Message, *, attention: bool, now: datetime) -> None:
    """Moves the message's conversation to the top of the inbox (and into the folder Require
    your attention when `attention`), creating the conversation with the client's first
    message. The message must be flushed (it has an id) and belong to a client. The caller
    commits, then calls `announce`.

    One UPDATE in the usual case (this runs for every message, inbound texts included). Each
    "latest" column moves only forward by message id, so a message released late (held
    before verification) never moves a conversation back behind newer activity."""
    if message.client_id is None or message.id is None:
        raise ValueError("record_message needs a stored message that belongs to a client")
    _update_or_create(
        message.business_id,
        message.client_id,
        _activity_values(message, attention, now),
        last_message_id=message.id,
        last_inbound_message_id=message.id if message.direction == "inbound" else None,
        last_activity_at=message.created_at or now,
        needs_attention=attention,
        attention_since=now if attention else None,
    )


def _update_or_create(business_id: int, client_id: int, values: dict, **created) -> None:
    """Updates the client's conversation with `values`, or creates it with `created` when the
    client has none yet."""
    if _update(business_id, client_id, values):
        return
    try:
        with db.session.begin_nested():
            db.session.add(Conversation(business_id=business_id, client_id=client_id, **created))
    except IntegrityError:  # another transaction created it first: update that one
        _update(business_id, client_id, values)


def _activity_values(message: Message, attention: bool, now: datetime) -> dict:
    newer = or_(Conversation.last_message_id.is_(None), Conversation.last_message_id < message.id)
    values: dict = {
        "last_message_id": case((newer, message.id), else_=Conversation.last_message_id),
        "last_activity_at": case(
            (newer, message.created_at or now), else_=Conversation.last_activity_at
        ),
    }
    if message.direction == "inbound":
        values["last_inbound_message_id"] = case(
            (
                or_(
                    Conversation.last_inbound_message_id.is_(None),
                    Conversation.last_inbound_message_id < message.id,
                ),
                message.id,
            ),
            else_=Conversation.last_inbound_message_id,
        )
    if attention:
        values.update(_attention_values(now))
    return values


def _attention_values(now: datetime) -> dict:
    """Into the folder (the right-hand sides see the row as it was: `attention_since` keeps
    the moment it first needed attention)."""
    return {
        "needs_attention": True,
        "attention_since": case(
            (Conversation.needs_attention.is_(False), now), else_=Conversation.attention_since
        ),
        "handled_at": None,
        "handled_by_id": None,
    }


def _update(business_id: int, client_id: int, values: dict) -> bool:
    return (
        db.session.execute(
            update(Conversation)
            .where(Conversation.business_id == business_id, Conversation.client_id == client_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def flag_client(business_id: int, client_id: int, now: datetime) -> None:
    """Puts the client's conversation in the folder Require your attention (a failed send, a
    new lead), creating it if the client has none. The caller commits, then `announce`s."""
    _update_or_create(
        business_id,
        client_id,
        _attention_values(now),
        last_activity_at=now,
        needs_attention=True,
        attention_since=now,
    )


def announce(business_id: int, client_id: int, message_id: int | None = None) -> None:
    """After the commit: open inboxes, navigation counts and conversations update live."""
    if message_id is not None:
        events.publish(
            business_id, MESSAGE_EVENT, {"message_id": message_id, "client_id": client_id}
        )
    events.publish(business_id, INBOX_EVENT, {"client_id": client_id})


# --- The inbox list -----------------------------------------------------------------------

FOLDERS = {"attention": "Require your attention", "all": "All"}
PAGE_SIZE = 50
MAX_SHOWN = 500  # a live refresh re-reads at most this many rows (the ones a person has loaded)
SNIPPET_LENGTH = 120

# Why a conversation is in the folder Require your attention, in the order they are shown.
REASONS = {
    "opt_out_request": "Opt-out request",
    "failed_send": "Failed send",
    "new_lead": "New lead",
    "new_text": "New text",
    "follow_up": "Marked for follow-up",
}


@dataclass(frozen=True)
class Cursor:
    """A place in the inbox's order (latest activity first, then the highest id): the last
    row a page showed. Rows after it are older; rows through it are what a person has seen."""

    last_activity_at: datetime
    conversation_id: int

    def __str__(self) -> str:
        return f"{self.last_activity_at.isoformat()}_{self.conversation_id}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        """The cursor a link carried; None for none or for anything malformed (first page)."""
        if not value:
            return None
        moment, _, conversation_id = value.rpartition("_")
        try:
            parsed = datetime.fromisoformat(moment)
            parsed_id = int(conversation_id)
            if parsed.tzinfo is None or not is_row_id(parsed_id):
                return None
            return cls(parsed, parsed_id)
        except ValueError:
            return None


@dataclass
class InboxRow:
    """One conversation as a staff member sees it in the inbox."""

    conversation: Conversation
    client: Client
    last_message: Message | None
    unread: bool
    opted_out: bool
    reasons: list[str] = field(default_factory=list)  # keys of REASONS; empty when handled

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.conversation.last_activity_at, self.conversation.id)

    @property
    def reason_labels(self) -> list[str]:
        return [REASONS[reason] for reason in self.reasons]

    @property
    def snippet(self) -> str:
        """The last message's first words ("You: …" when the business sent it)."""
        message = self.last_message
        if message is None:
            return ""
        text = message.body
        if message.channel == "email":
            subject, _, rest = text.partition("\n\n")
            text = f"Email: {subject}" if subject else f"Email: {rest}"
        text = " ".join(text.split())
        if len(text) > SNIPPET_LENGTH:
            text = text[: SNIPPET_LENGTH - 1].rstrip() + "…"
        if message.direction == "outbound":
            text = f"You: {text}"
        if message.incomplete:
            text += " (incomplete)"
        return text


@dataclass
class InboxPage:
    rows: list[InboxRow]
    has_more: bool

    @property
    def last_cursor(self) -> Cursor | None:
        return self.rows[-1].cursor if self.rows else None


def _in_order():
    return (Conversation.last_activity_at.desc(), Conversation.id.desc())


def _after(cursor: Cursor):
    """Rows that come after `cursor` in the inbox's order."""
    return or_(
        Conversation.last_activity_at < cursor.last_activity_at,
        and_(
            Conversation.last_activity_at == cursor.last_activity_at,
            Conversation.id < cursor.conversation_id,
        ),
    )


def _matching(business_id: int, query: str):
    """A condition for conversations matching `query`: every word in the client's name,
    emails or phone digits (the client search column and its trigram index), or the whole
    query in the text of a message shown in the conversation (the trigram index on
    message.body on PostgreSQL)."""
    from app.services.clients import _escape_like, _search_terms

    terms = _search_terms(query)
    if not terms:
        return None
    client_matches = select(Client.id).where(
        Client.business_id == business_id,
        Client.merged_into_id.is_(None),
        *[Client.search_text.like(f"%{_escape_like(term)}%", escape="\\") for term in terms],
    )
    phrase = " ".join(query.split())
    message_matches = select(Message.client_id).where(
        Message.business_id == business_id,
        Message.visibility == "inbox",
        Message.client_id.is_not(None),
        Message.body.ilike(f"%{_escape_like(phrase)}%", escape="\\"),
    )
    return or_(
        Conversation.client_id.in_(client_matches), Conversation.client_id.in_(message_matches)
    )


def list_conversations(
    business_id: int,
    user_id: int,
    *,
    folder: str = "attention",
    query: str = "",
    after: Cursor | None = None,
    through: Cursor | None = None,
) -> InboxPage:
    """A page of the business's conversations, latest activity first, as `user_id` sees them
    (unread or not). `after`: the page that follows that row ("Load more"). `through`: every
    row from the top down to that row (a live refresh of what the person has loaded), at most
    MAX_SHOWN."""
    conditions = [Conversation.business_id == business_id]
    if folder == "attention":
        conditions.append(Conversation.needs_attention.is_(True))
    matching = _matching(business_id, query)
    if matching is not None:
        conditions.append(matching)
    page_conditions = list(conditions)
    limit = PAGE_SIZE
    if after is not None:
        page_conditions.append(_after(after))
    elif through is not None:
        page_conditions.append(~_after(through))
        limit = MAX_SHOWN
    rows = _load_rows(business_id, user_id, page_conditions, limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    if through is not None and after is None and rows and not has_more:
        # Everything down to `through` fits: is there anything below it to load?
        has_more = (
            db.session.execute(
                select(Conversation.id).where(*conditions, _after(rows[-1].cursor)).limit(1)
            ).first()
            is not None
        )
    return InboxPage(rows=rows, has_more=has_more)


def _load_rows(business_id: int, user_id: int, conditions: list, limit: int) -> list[InboxRow]:
    """The conversations matching `conditions` in the inbox's order, with their clients, last
    messages, `user_id`'s reads, opt-outs and reasons, in five queries whatever the count."""
    read = aliased(ConversationRead)
    last = aliased(Message)
    found = db.session.execute(
        select(Conversation, Client, last, read.last_read_message_id)
        .join(Client, Client.id == Conversation.client_id)
        .outerjoin(last, last.id == Conversation.last_message_id)
        .outerjoin(read, and_(read.conversation_id == Conversation.id, read.user_id == user_id))
        .where(*conditions)
        .order_by(*_in_order())
        .limit(limit)
    ).all()
    rows = [
        InboxRow(
            conversation=conversation,
            client=client,
            last_message=message,
            unread=_is_unread(conversation, last_read),
            opted_out=False,
        )
        for conversation, client, message, last_read in found
    ]
    _add_opt_outs(business_id, rows)
    _add_reasons(business_id, rows)
    return rows


def _is_unread(conversation: Conversation, last_read_message_id: int | None) -> bool:
    last_inbound = conversation.last_inbound_message_id
    if last_inbound is None:
        return False
    return last_read_message_id is None or last_inbound > last_read_message_id


def _add_opt_outs(business_id: int, rows: list[InboxRow]) -> None:
    from app.services.clients import _opted_out_clause

    client_ids = [row.client.id for row in rows]
    if not client_ids:
        return
    opted_out = set(
        db.session.execute(
            select(Client.id).where(
                Client.business_id == business_id, Client.id.in_(client_ids), _opted_out_clause()
            )
        ).scalars()
    )
    for row in rows:
        row.opted_out = row.client.id in opted_out


def _add_reasons(business_id: int, rows: list[InboxRow]) -> None:
    """Why each conversation that needs attention does, read from its messages: an opt-out
    request not yet confirmed or dismissed, a send that failed since it entered the folder, a
    lead, an inbound text since it entered the folder."""
    waiting = [row for row in rows if row.conversation.needs_attention]
    if not waiting:
        return
    client_ids = [row.client.id for row in waiting]
    revocations = set(
        db.session.execute(
            select(Message.client_id).where(
                Message.business_id == business_id,
                Message.client_id.in_(client_ids),
                Message.revocation == "flagged",
            )
        ).scalars()
    )
    latest_failure = dict(
        db.session.execute(
            select(Message.client_id, func.max(Message.updated_at))
            .where(
                Message.business_id == business_id,
                Message.client_id.in_(client_ids),
                Message.direction == "outbound",
                Message.status == "failed",
            )
            .group_by(Message.client_id)
        ).all()
    )
    inbound_ids = [
        row.conversation.last_inbound_message_id
        for row in waiting
        if row.conversation.last_inbound_message_id is not None
    ]
    inbound_at = dict(
        db.session.execute(
            select(Message.id, Message.created_at).where(Message.id.in_(inbound_ids))
        ).all()
        if inbound_ids
        else []
    )
    for row in waiting:
        conversation = row.conversation
        since = conversation.attention_since
        reasons = []
        if row.client.id in revocations:
            reasons.append("opt_out_request")
        failed_at = latest_failure.get(row.client.id)
        if failed_at is not None and (since is None or failed_at >= since):
            reasons.append("failed_send")
        if row.client.is_lead:
            reasons.append("new_lead")
        text_at = inbound_at.get(conversation.last_inbound_message_id)
        if text_at is not None and (since is None or text_at >= since or row.unread):
            reasons.append("new_text")
        row.reasons = reasons or ["follow_up"]


def row_for(business_id: int, user_id: int, conversation_id: int) -> InboxRow | None:
    """One conversation's inbox row (after a change to it)."""
    rows = _load_rows(
        business_id,
        user_id,
        [Conversation.business_id == business_id, Conversation.id == conversation_id],
        1,
    )
    return rows[0] if rows else None


def attention_count(business_id: int) -> int:
    """How many of the business's conversations are in the folder Require your attention."""
    return db.session.execute(
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.business_id == business_id, Conversation.needs_attention.is_(True))
    ).scalar_one()


# --- Handled, back to needs attention, read ---------------------------------------------------


def _owned(business_id: int, conversation_id: int) -> Conversation:
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or conversation.business_id != business_id:
        raise ServiceError("That conversation does not exist.")
    return conversation


def mark_handled(business_id: int, conversation_id: int, user_id: int, now: datetime) -> bool:
    """Takes the conversation out of the folder Require your attention, for every staff member
    (reads are not changed). True if it was in the folder; then the caller `announce`s.
    Commits."""
    conversation = _owned(business_id, conversation_id)
    moved = db.session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id, Conversation.needs_attention.is_(True))
        .values(needs_attention=False, handled_at=now, handled_by_id=user_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.refresh(conversation)
    return moved == 1


def mark_needs_attention(business_id: int, conversation_id: int, now: datetime) -> bool:
    """Puts the conversation back in the folder Require your attention. True if it was not in
    it; then the caller `announce`s. Commits."""
    conversation = _owned(business_id, conversation_id)
    was_waiting = conversation.needs_attention
    _update(business_id, conversation.client_id, _attention_values(now))
    db.session.commit()
    db.session.refresh(conversation)
    return not was_waiting


def conversation_of(business_id: int, client_id: int) -> Conversation | None:
    """The business's conversation with the client, if there has been any activity."""
    return db.session.execute(
        db.select(Conversation).where(
            Conversation.business_id == business_id, Conversation.client_id == client_id
        )
    ).scalar_one_or_none()


def mark_read(conversation: Conversation, user_id: int, now: datetime) -> None:
    """Records that `user_id` has read the conversation up to its latest inbound text (per staff
    member; an insert-or-update that only moves forward, so two tabs opening it at once, or a
    late request, never fail or move the mark back). Commits."""
    upto = conversation.last_inbound_message_id
    if upto is None:
        return
    statement = insert_on_conflict(ConversationRead).values(
        conversation_id=conversation.id, user_id=user_id, last_read_message_id=upto, read_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=[ConversationRead.conversation_id, ConversationRead.user_id],
        set_={"last_read_message_id": upto, "read_at": now},
        where=or_(
            ConversationRead.last_read_message_id.is_(None),
            ConversationRead.last_read_message_id < upto,
        ),
    )
    db.session.execute(statement)
    db.session.commit()


# --- Merging two clients' conversations -------------------------------------------------------


def merge_conversations(business_id: int, kept_id: int, removed_id: int) -> None:
    """Before a client merge moves the removed client's rows: when both clients have a
    conversation, folds the removed one into the kept one (the later activity, attention if
    either needed it, each staff member's reads kept only as far as they had read both) and
    deletes it. When only the removed client has one, the merge moves it as it is. In the
    caller's transaction."""
    kept = conversation_of(business_id, kept_id)
    removed = conversation_of(business_id, removed_id)
    if kept is None or removed is None:
        return
    db.session.refresh(kept)
    db.session.refresh(removed)
    if (removed.last_activity_at, removed.last_message_id or 0) > (
        kept.last_activity_at,
        kept.last_message_id or 0,
    ):
        kept.last_activity_at = removed.last_activity_at
        kept.last_message_id = removed.last_message_id
    inbound_ids = [i for i in (kept.last_inbound_message_id, removed.last_inbound_message_id) if i]
    kept.last_inbound_message_id = max(inbound_ids) if inbound_ids else None
    if removed.needs_attention:
        if not kept.needs_attention:
            kept.attention_since = removed.attention_since
        elif kept.attention_since and removed.attention_since:
            kept.attention_since = min(kept.attention_since, removed.attention_since)
        kept.needs_attention = True
        kept.handled_at = None
        kept.handled_by_id = None
    reads = db.session.execute(
        select(ConversationRead).where(ConversationRead.conversation_id.in_((kept.id, removed.id)))
    ).scalars()
    by_user: dict[int, dict[int, int | None]] = {}
    for read in reads:
        by_user.setdefault(read.user_id, {})[read.conversation_id] = read.last_read_message_id
    for user_id, marks in by_user.items():
        read_both = all(
            not _is_unread(conversation, marks.get(conversation.id))
            for conversation in (kept, removed)
        )
        if read_both:
            mark = kept.last_inbound_message_id
        else:  # something unread stays unread: as far as they had read both
            mark = min((marks.get(kept.id) or 0), (marks.get(removed.id) or 0)) or None
        existing = db.session.get(ConversationRead, (kept.id, user_id))
        if existing is None:
            db.session.add(
                ConversationRead(
                    conversation_id=kept.id, user_id=user_id, last_read_message_id=mark
                )
            )
        else:
            existing.last_read_message_id = mark
    db.session.execute(
        ConversationRead.__table__.delete().where(ConversationRead.conversation_id == removed.id)
    )
    db.session.flush()
    db.session.delete(removed)
    db.session.flush()
