"""Emails to clients (issue 5 item 7): saved as a Message on the email channel, so they show in
the conversation, then delivered through SMTP by a job, from the business's name with replies
going to the business's contact email.

Message has no subject column, so an email's subject is kept as the first line of its body
(`split_email` reads it back for the conversation).
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime

from flask import current_app

from app.extensions import db
from app.models import Business
from app.models.messages import Message
from app.services import events, inbox
from app.services.after_commit import call_after_commit
from app.services.clients import client_or_none, surviving_client
from app.services.errors import ServiceError
from app.services.queues import enqueue
from app.services.text_input import multi_line, single_line

MAX_SUBJECT = 200
MAX_BODY = 10_000
STATUS_EVENT = "message.status"
FAILED_REASON = "Our mail server could not send this email. You can resend it."

log = logging.getLogger(__name__)


def split_email(body: str) -> tuple[str, str]:
    """(subject, text) of an email Message's body."""
    subject, _, text = body.partition("\n\n")
    return subject, text


def send_email_message(
    business_id: int,
    client_id: int,
    subject: str,
    body: str,
    *,
    user_id: int | None,
    now: datetime,
) -> Message:
    """Saves an email to the client and queues its delivery. Raises ServiceError, before
    anything is saved or sent, when it cannot go out."""
    subject = " ".join(single_line(subject).split())
    body = multi_line(body)
    if not subject:
        raise ServiceError("An email needs a subject.", field="subject")
    if len(subject) > MAX_SUBJECT:
        raise ServiceError(f"Keep the subject under {MAX_SUBJECT} characters.", field="subject")
    if not body.strip():
        raise ServiceError("Write a message before sending.", field="body")
    if len(body) > MAX_BODY:
        raise ServiceError(f"Emails can be at most {MAX_BODY} characters.", field="body")
    client = client_or_none(business_id, client_id)
    if client is None:
        raise ServiceError("That client does not exist.")
    client = surviving_client(client)
    if not client.emails:
        raise ServiceError(f"{client.name} has no email address.")
    message = _add(
        business_id,
        client.id,
        client.emails[0].email,
        subject,
        body,
        kind="direct",
        user_id=user_id,
        now=now,
    )
    db.session.commit()
    from jobs.email_messages import deliver_email_message

    enqueue(deliver_email_message, message.id)
    _publish(message)
    inbox.announce(business_id, message.client_id, message.id)
    return message


def _add(
    business_id: int,
    client_id: int,
    recipient: str,
    subject: str,
    body: str,
    *,
    kind: str,
    user_id: int | None,
    now: datetime,
    auto_event: str | None = None,
    appointment_id: int | None = None,
) -> Message:
    """Adds a queued email Message to the session (the caller commits)."""
    business = db.session.get(Business, business_id)
    sender = business.contact_email or current_app.config["MAIL_FROM"]
    message = Message(
        business_id=business_id,
        client_id=client_id,
        channel="email",
        direction="outbound",
        kind=kind,
        body=f"{subject}\n\n{body}",
        sender=sender[:254],
        recipient=recipient,
        status="queued",
        sent_by_id=user_id,
        auto_event=auto_event,
        appointment_id=appointment_id,
        created_at=now,
        updated_at=now,
    )
    db.session.add(message)
    db.session.flush()
    inbox.record_message(message, attention=False, now=now)  # the inbox's latest activity
    return message


def add_email_message(
    business_id: int,
    client_id: int,
    recipient: str,
    subject: str,
    body: str,
    *,
    now: datetime,
    auto_event: str | None = None,
    appointment_id: int | None = None,
) -> Message:
    """Adds an email Twoway itself sends (an automatic message) to the caller's transaction;
    its delivery is queued, and open pages told, after the caller commits. The caller has
    checked the address; the subject and body are Twoway's own (already within limits)."""
    message = _add(
        business_id,
        client_id,
        recipient,
        " ".join(single_line(subject).split())[:MAX_SUBJECT],
        multi_line(body)[:MAX_BODY],
        kind="transactional",
        user_id=None,
        now=now,
        auto_event=auto_event,
        appointment_id=appointment_id,
    )
    message_id, client = message.id, message.client_id
    payload = {"message_id": message_id, "client_id": client, "status": "queued"}

    def after() -> None:  # Redis only: the session cannot be asked after the commit
        from jobs.email_messages import deliver_email_message

        enqueue(deliver_email_message, message_id)
        events.publish(business_id, STATUS_EVENT, payload)
        inbox.announce(business_id, client, message_id)

    call_after_commit(after)
    return message


def deliver(message_id: int, now: datetime) -> None:
    """Sends a queued email Message through SMTP (the job); safe to run twice."""
    from jobs.mail import deliver_email

    message = db.session.get(Message, message_id)
    if message is None or message.channel != "email" or message.status != "queued":
        return
    business = db.session.get(Business, message.business_id)
    subject, text = split_email(message.body)
    try:
        # deliver_email is itself a job function; called here it sends in this job's context.
        deliver_email(
            to=message.recipient,
            subject=subject,
            body=text,
            reply_to=business.contact_email or None,
            from_name=business.name,
        )
    except (smtplib.SMTPException, OSError):
        log.exception("email message %s was not delivered", message_id)
        message.status = "failed"  # the bubble says so and offers Resend
        if message.client_id is not None:  # a failed send needs someone's attention
            inbox.flag_client(message.business_id, message.client_id, now)
    else:
        message.status = "sent"
    message.updated_at = now
    db.session.commit()
    _publish(message)
    if message.status == "failed" and message.client_id is not None:
        inbox.announce(message.business_id, message.client_id)


def resend(business_id: int, message_id: int, *, now: datetime) -> Message:
    """Queues a failed email again (emails cost no texts). Raises ServiceError."""
    message = db.session.get(Message, message_id)
    if message is None or message.business_id != business_id or message.channel != "email":
        raise ServiceError("That message does not exist.")
    if message.status != "failed":
        raise ServiceError("Nothing to resend: this email went out.")
    message.status = "queued"
    message.updated_at = now
    db.session.commit()
    from jobs.email_messages import deliver_email_message

    enqueue(deliver_email_message, message.id)
    _publish(message)
    return message


def _publish(message: Message) -> None:
    events.publish(
        message.business_id,
        STATUS_EVENT,
        {"message_id": message.id, "client_id": message.client_id, "status": message.status},
    )
