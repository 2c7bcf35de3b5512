"""The app's sections: Inbox, Clients, Quick actions and Settings.

The inbox (DESIGN.md §5): conversations by latest activity in two folders, Require your
attention and All, with search, "Load more", Mark handled / Back to needs attention, and the
attention count in the navigation; the list and the count refresh live on `inbox.changed`.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup

from app.extensions import db
from app.htmx import is_htmx_request, render_page_or_fragment
from app.models import Client, Conversation, User
from app.models.types import utcnow
from app.plans import get_plan
from app.services import inbox as inbox_service
from app.services.balance import balance_for
from app.services.tenancy import owned_or_404

bp = Blueprint("shell", __name__)


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for("shell.inbox"))
    return redirect(url_for("auth.sign_in_form"))


@bp.get("/inbox")
@login_required
def inbox():
    """The inbox page; for htmx, only the list (a search, a live refresh through the rows the
    person has loaded) or, with `after`, the next rows ("Load more")."""
    folder = request.args.get("folder", "attention")
    if folder not in inbox_service.FOLDERS:
        folder = "attention"
    query = request.args.get("q", "")[:100]
    after = inbox_service.Cursor.parse(request.args.get("after"))
    through = inbox_service.Cursor.parse(request.args.get("through"))
    page = inbox_service.list_conversations(
        current_user.business_id,
        current_user.id,
        folder=folder,
        query=query,
        after=after,
        through=through,
    )
    context = dict(page=page, folder=folder, query=query, folders=inbox_service.FOLDERS)
    if is_htmx_request() and after is not None:
        return render_template("shell/_inbox_rows.html", more=True, **context)
    return render_page_or_fragment("shell/inbox.html", "shell/_inbox_list.html", **context)


@bp.get("/inbox/count")
@login_required
def attention_count():
    """The navigation's count of conversations that need attention (refreshed live)."""
    return render_template("shell/_attention_count.html")


def _changed(conversation: Conversation, changed: bool):
    """After Mark handled / Back to needs attention: tell open pages, then answer the row (or
    the client card's control) in its new state; a plain form post goes back where it was."""
    if changed:
        inbox_service.announce(conversation.business_id, conversation.client_id)
    if not is_htmx_request():
        if request.form.get("view") == "card":
            return redirect(url_for("clients.card", client_id=conversation.client_id))
        return redirect(url_for("shell.inbox", folder=request.form.get("folder") or None))
    if request.form.get("view") == "card":
        return render_template(
            "shell/_conversation_state.html",
            conversation=conversation,
            client_id=conversation.client_id,
        )
    row = inbox_service.row_for(current_user.business_id, current_user.id, conversation.id)
    if row is None:
        abort(404)
    return render_template("shell/_inbox_row.html", row=row, folder=request.form.get("folder"))


@bp.post("/inbox/conversations/<int:conversation_id>/handled")
@login_required
def mark_handled(conversation_id: int):
    """Mark handled: out of the folder Require your attention, for every staff member."""
    conversation = owned_or_404(Conversation, conversation_id)
    changed = inbox_service.mark_handled(
        current_user.business_id, conversation.id, current_user.id, utcnow()
    )
    return _changed(conversation, changed)


@bp.post("/inbox/conversations/<int:conversation_id>/attention")
@login_required
def mark_needs_attention(conversation_id: int):
    """Back to needs attention: into the folder again, for every staff member."""
    conversation = owned_or_404(Conversation, conversation_id)
    changed = inbox_service.mark_needs_attention(
        current_user.business_id, conversation.id, utcnow()
    )
    return _changed(conversation, changed)


@bp.get("/inbox/clients/<int:client_id>/state")
@login_required
def conversation_state(client_id: int):
    """The client card's Needs attention / Handled control (refreshed live)."""
    client = owned_or_404(Client, client_id)
    return render_template(
        "shell/_conversation_state.html",
        conversation=inbox_service.conversation_of(current_user.business_id, client.id),
        client_id=client.id,
    )


@bp.app_template_global()
def conversation_state_for(client: Client) -> Markup:
    """The control, for the client card's Conversation tab, in a wrapper that fetches it
    again when this client's conversation changes."""
    return Markup(
        render_template(
            "shell/_conversation_state_live.html",
            conversation=inbox_service.conversation_of(current_user.business_id, client.id),
            client_id=client.id,
        )
    )


@bp.app_template_global()
def handled_by_name(conversation: Conversation) -> str:
    user = db.session.get(User, conversation.handled_by_id) if conversation.handled_by_id else None
    return user.name if user else "someone"


@bp.app_template_global()
def inbox_attention_count() -> int:
    """For the navigation: conversations of the signed-in business that need attention."""
    if not current_user.is_authenticated:
        return 0
    return inbox_service.attention_count(current_user.business_id)


@bp.get("/actions")
@login_required
def quick_actions():
    return render_template("shell/quick_actions.html")


@bp.get("/settings")
@login_required
def settings():
    return render_template(
        "shell/settings.html",
        plan=get_plan(current_user.business.plan),
        balance=balance_for(current_user.business_id, utcnow()),
    )
