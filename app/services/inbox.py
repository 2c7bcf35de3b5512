"""The shared inbox (DESIGN.md §5): one conversation per client, ordered by latest activity,
and the folder Require your attention.

Whoever stores a message that shows in the inbox (an inbound text, a text or email sent to a
client) calls `record_message` in the same transaction, then `announce` after the commit.
Something that needs a person (an unread inbound text, a flagged opt-out request, a failed
send, a new lead) puts the conversation in the folder (`attention=True`, or `flag`); a staff
member marking it handled takes it out, until the next thing that needs attention.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Conversation, Message
from app.services import events

INBOX_EVENT = "inbox.changed"  # SSE: a conversation's place or state changed
MESSAGE_EVENT = "message.created"  # SSE: a message now shows in a conversation


def conversation_for(business_id: int, client_id: int, now: datetime) -> Conversation:
    """The business's conversation with the client, created if it has none (in the caller's
    transaction; concurrent callers end with the same row)."""
    found = _find(business_id, client_id)
    if found is not None:
        return found
    try:
        with db.session.begin_nested():
            created = Conversation(
                business_id=business_id, client_id=client_id, last_activity_at=now
            )
            db.session.add(created)
        return created
    except IntegrityError:  # another transaction created it first
        found = _find(business_id, client_id)
        assert found is not None
        return found


def _find(business_id: int, client_id: int) -> Conversation | None:
    return db.session.execute(
        db.select(Conversation).where(
            Conversation.business_id == business_id, Conversation.client_id == client_id
        )
    ).scalar_one_or_none()


def record_message(message: Message, *, attention: bool, now: datetime) -> Conversation:
    """Moves the message's conversation to the top of the inbox (and into the folder Require
    your attention when `attention`). The message must be flushed (it has an id) and belong
    to a client. The caller commits, then calls `announce`."""
    if message.client_id is None or message.id is None:
        raise ValueError("record_message needs a stored message that belongs to a client")
    conversation = conversation_for(message.business_id, message.client_id, now)
    values = {"last_message_id": message.id, "last_activity_at": message.created_at or now}
    # Conditional on the id, so a message released late (held before verification) never
    # moves a conversation back behind newer activity.
    db.session.execute(
        update(Conversation)
        .where(
            Conversation.id == conversation.id,
            (Conversation.last_message_id.is_(None)) | (Conversation.last_message_id < message.id),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if message.direction == "inbound":
        db.session.execute(
            update(Conversation)
            .where(
                Conversation.id == conversation.id,
                (Conversation.last_inbound_message_id.is_(None))
                | (Conversation.last_inbound_message_id < message.id),
            )
            .values(last_inbound_message_id=message.id)
            .execution_options(synchronize_session=False)
        )
    if attention:
        flag(conversation, now)
    db.session.refresh(conversation)
    return conversation


def flag(conversation: Conversation, now: datetime) -> None:
    """Puts the conversation in the folder Require your attention (no change if it is)."""
    db.session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id, Conversation.needs_attention.is_(False))
        .values(needs_attention=True, attention_since=now, handled_at=None, handled_by_id=None)
        .execution_options(synchronize_session=False)
    )


def flag_client(business_id: int, client_id: int, now: datetime) -> Conversation:
    """`flag` by client (a failed send, a new lead): the caller commits, then `announce`s."""
    conversation = conversation_for(business_id, client_id, now)
    flag(conversation, now)
    return conversation


def announce(business_id: int, client_id: int, message_id: int | None = None) -> None:
    """After the commit: open inboxes, navigation counts and conversations update live."""
    if message_id is not None:
        events.publish(
            business_id, MESSAGE_EVENT, {"message_id": message_id, "client_id": client_id}
        )
    events.publish(business_id, INBOX_EVENT, {"client_id": client_id})
