"""Messages: the conversation with a client, the composer (text or email) with its live count,
sending, Resend, and Quick actions → New message."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, render_template, request
from flask_login import current_user, login_required
from markupsafe import Markup

from app.extensions import db, get_redis
from app.htmx import is_htmx_request
from app.models import AUTO_EVENTS, Client
from app.models.messages import Message
from app.models.types import utcnow
from app.services import balance, clients, email_messages, inbound, inbox, sending, texting
from app.services.errors import ServiceError
from app.services.segments import MAX_CHARACTERS, plain_quotes, split_text
from app.services.tenancy import owned_or_404
from app.services.text_input import multi_line

bp = Blueprint("messages", __name__, url_prefix="/messages")

SEND_TOKEN_SECONDS = 600  # a composer's token guards against a double Send this long
SHOWN_EVENT = "conversation-shown"  # htmx event (HX-Trigger): the messages were shown again
bp.add_app_template_global(email_messages.FAILED_REASON, "email_failed_reason")


def _client(client_id: int) -> Client:
    client = owned_or_404(Client, client_id)
    return clients.surviving_client(client)


def _body(name: str = "body") -> str:
    """The textarea's text as it is counted and sent: line breaks as LF (browsers submit CR LF;
    a text counts one), without control characters or bidirectional overrides (the same
    cleaning `sending.send_text` does, so the live count is the count sent)."""
    return multi_line(request.form.get(name, ""))


def _channels(client: Client) -> list[str]:
    return (["text"] if client.phones else []) + (["email"] if client.emails else [])


def _counter_context(body: str, channel: str) -> dict:
    split = split_text(body)
    texts_left = None
    if channel == "text":
        texts_left = balance.balance_for(current_user.business_id, utcnow()).total
    return dict(
        split=split,
        channel=channel,
        texts_left=texts_left,
        max_characters=MAX_CHARACTERS,
        smart_quotes=bool(split.unicode_because) and plain_quotes(body) != body,
    )


def _composer(
    client: Client,
    *,
    body: str = "",
    subject: str = "",
    channel: str | None = None,
    error: str | None = None,
) -> str:
    channels = _channels(client)
    if channel not in channels:
        channel = channels[0] if channels else None
    return render_template(
        "messages/_composer.html",
        client=client,
        channels=channels,
        body=body,
        subject=subject,
        error=error,
        token=uuid.uuid4().hex,
        warning=sending.unverified_warning(current_user.business_id)
        if "text" in channels
        else None,
        **_counter_context(body, channel or "text"),
    )


def _messages(client: Client) -> list[Message]:
    return list(
        db.session.execute(
            db.select(Message)
            .where(
                Message.business_id == current_user.business_id,
                Message.client_id == client.id,
                Message.visibility == "inbox",  # held, logged and system texts never show
            )
            .order_by(Message.created_at, Message.id)
        ).scalars()
    )


@bp.get("/clients/<int:client_id>")
@login_required
def conversation(client_id: int):
    """Every message with the client in time order (refreshes itself on `message.status`).
    Changes nothing: its answer tells the page, which then marks it read (`mark_read`)."""
    client = _client(client_id)
    return _shown(
        render_template(
            "messages/_conversation_messages.html", client=client, messages=_messages(client)
        )
    )


def _shown(html: str) -> Response:
    """An answer that shows the conversation's messages: the page's read marker (in
    _conversation.html) posts `mark_read` when it arrives."""
    return Response(html, headers={"HX-Trigger": SHOWN_EVENT})


@bp.post("/clients/<int:client_id>/read")
@login_required
def mark_read(client_id: int):
    """The conversation was shown to the signed-in staff member: read for them (only them),
    up to what it showed. The page asks, with an htmx POST, each time it shows the messages
    (opened, refreshed live, after a send): the GETs that show them change nothing."""
    client = _client(client_id)
    conversation = inbox.conversation_of(current_user.business_id, client.id)
    if conversation is not None:
        inbox.mark_read(conversation, current_user.id, utcnow())
    return Response(status=204)


@bp.get("/clients/<int:client_id>/composer")
@login_required
def composer(client_id: int):
    return _composer(_client(client_id))


@bp.post("/count")
@login_required
def count():
    """The composer's live line: the one segment function's summary and the balance left."""
    channel = request.form.get("channel", "text")
    return render_template("messages/_counter.html", **_counter_context(_body(), channel))


@bp.post("/plain-quotes")
@login_required
def use_plain_quotes():
    """The textarea and its line again, with smart quotes and dashes swapped for plain ones."""
    body = plain_quotes(_body())
    return render_template("messages/_body.html", body=body, **_counter_context(body, "text"))


def _token_key(token: str) -> str:
    return f"send-token:{current_user.business_id}:{token[:64]}"


def _first_use(token: str) -> bool:
    """True the first time this composer's token is sent (a double click sends once)."""
    if not token:
        return True
    return bool(get_redis().set(_token_key(token), "1", nx=True, ex=SEND_TOKEN_SECONDS))


def _forget(token: str) -> None:
    if token:
        get_redis().delete(_token_key(token))


@bp.post("/clients/<int:client_id>")
@login_required
def send(client_id: int):
    """Sends a text or an email; answers a fresh composer and the conversation (out of band)."""
    client = _client(client_id)
    channel = request.form.get("channel", "text")
    body = _body()
    subject = request.form.get("subject", "")
    if channel not in _channels(client):
        error = (
            "Choose text or email."
            if _channels(client)
            else (f"{client.name} has no phone number or email address.")
        )
        return _refused(client, body, subject, channel, error)
    if not _first_use(request.form.get("token", "")):
        return _composer(client, channel=channel)  # the first click already sent it
    try:
        if channel == "email":
            email_messages.send_email_message(
                current_user.business_id,
                client.id,
                subject,
                body,
                user_id=current_user.id,
                now=utcnow(),
            )
        else:
            sending.send_text(
                current_user.business_id, client.id, body, user_id=current_user.id, now=utcnow()
            )
    except ServiceError as error:
        db.session.rollback()
        _forget(request.form.get("token", ""))  # nothing went out: the same Send may try again
        return _refused(client, body, subject, channel, str(error))
    return _shown(
        _composer(client, channel=channel)
        + render_template(
            "messages/_conversation_messages.html",
            client=client,
            messages=_messages(client),
            oob=True,
        )
    )


def _refused(client, body, subject, channel, error):
    status = 200 if is_htmx_request() else 422  # htmx swaps only 2xx answers in
    return _composer(client, body=body, subject=subject, channel=channel, error=error), status


@bp.post("/<int:message_id>/resend")
@login_required
def resend(message_id: int):
    message = owned_or_404(Message, message_id)
    error = None
    try:
        if message.channel == "email":
            message = email_messages.resend(current_user.business_id, message.id, now=utcnow())
        else:
            message = sending.resend(current_user.business_id, message.id, now=utcnow())
    except ServiceError as exc:
        db.session.rollback()
        error = str(exc)
        message = db.session.get(Message, message_id)
    return render_template("messages/_bubble.html", message=message, error=error)


@bp.post("/<int:message_id>/revocation/confirm")
@login_required
def confirm_revocation(message_id: int):
    """One click on a text flagged as "please stop texting me": opted out, one confirmation."""
    return _settle_revocation(message_id, inbound.confirm_revocation)


@bp.post("/<int:message_id>/revocation/dismiss")
@login_required
def dismiss_revocation(message_id: int):
    """Staff decide a flagged text was not a request to stop texts."""
    return _settle_revocation(message_id, inbound.dismiss_revocation)


def _settle_revocation(message_id: int, settle):
    message = owned_or_404(Message, message_id)
    error = None
    try:
        message = settle(current_user.business_id, message.id, now=utcnow())
    except ServiceError as exc:
        db.session.rollback()
        error = str(exc)
        message = db.session.get(Message, message_id)
    return render_template("messages/_bubble.html", message=message, error=error)


@bp.get("/new")
@login_required
def new():
    """Quick actions → New message: pick a client by typing, then the composer."""
    query = request.args.get("q", "")[:100]
    client_id = request.args.get("client_id", type=int)
    if client_id:
        client = _client(client_id)
        return render_template("messages/new.html", client=client)
    rows = clients.search_clients(current_user.business_id, query)[0] if query else []
    if is_htmx_request():
        return render_template("messages/_picker_results.html", rows=rows, query=query)
    return render_template("messages/new.html", client=None, rows=rows, query=query)


@bp.app_template_filter("auto_label")
def auto_label(message: Message) -> str | None:
    """What an automatic message is ("Booking confirmation", "Reminder") and, for a text,
    which number it went from; None for a message a person wrote."""
    if message.auto_event is None:
        return None
    label = AUTO_EVENTS.get(message.auto_event, "Automatic message")
    if message.channel != "text":
        return f"{label} · by email"
    shared = message.sender in texting.system_numbers()
    return f"{label} · {'from the shared number' if shared else 'from your number'}"


@bp.app_template_filter("email_parts")
def email_parts(body: str) -> tuple[str, str]:
    return email_messages.split_email(body)


@bp.app_template_global()
def conversation_for(client: Client) -> Markup:
    """The conversation fragment, for the client card's Conversation tab (it marks itself read
    for the signed-in staff member as it loads)."""
    return Markup(
        render_template("messages/_conversation.html", client=client, messages=_messages(client))
    )


@bp.app_template_global()
def composer_for(client: Client) -> Markup:
    """The composer, for the client card's Conversation tab."""
    return Markup(_composer(client))
