"""Clients: the list with live search, the client card, create and edit, merge, import."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.htmx import is_htmx_request, render_page_or_fragment
from app.models import SOURCES, Client, ClientImport
from app.routes.guards import allows_upload
from app.services import client_import, clients
from app.services.errors import ServiceError
from app.services.places import time_zones
from app.services.tenancy import owned_or_404

bp = Blueprint("clients", __name__, url_prefix="/clients")


@bp.get("")
@login_required
def index():
    query = request.args.get("q", "")[:100]
    filter_ = request.args.get("filter", "all")
    if filter_ not in clients.FILTERS:
        filter_ = "all"
    page = request.args.get("page", 1, type=int) or 1
    rows, has_more = clients.search_clients(current_user.business_id, query, filter_, page)
    context = dict(
        clients=rows,
        has_more=has_more,
        query=query,
        filter=filter_,
        page=page,
        filters=clients.FILTERS,
    )
    if is_htmx_request() and page > 1:
        return render_template("clients/_rows.html", **context)
    return render_page_or_fragment("clients/index.html", "clients/_results.html", **context)


def _details_from_form() -> clients.ClientDetails:
    form = request.form
    return clients.ClientDetails(
        name=form.get("name", ""),
        phones=form.getlist("phone"),
        emails=form.getlist("email"),
        tags=form.get("tags", "").split(","),
        time_zone=form.get("time_zone", ""),
    )


def _form_page(client: Client | None, details: clients.ClientDetails, error=None, status=200):
    return render_template(
        "clients/form.html", client=client, details=details, error=error, time_zones=time_zones()
    ), status


@bp.get("/new")
@login_required
def new():
    details = clients.ClientDetails(
        name=request.args.get("name", ""), phones=[request.args.get("phone", "")]
    )
    return _form_page(None, details)


@bp.post("")
@login_required
def create():
    details = _details_from_form()
    try:
        client = clients.create_client(
            current_user.business_id, current_user.business.country, details
        )
    except ServiceError as error:
        return _form_page(None, details, error, 422)
    flash(f"{client.name} added.", "success")
    return redirect(url_for("clients.card", client_id=client.id))


@bp.get("/field/<kind>")
@login_required
def extra_field(kind: str):
    """One more phone or email input for the client form (htmx)."""
    if kind not in ("phone", "email"):
        abort(404)
    return render_template("clients/_extra_field.html", kind=kind)


def _client(client_id: int) -> Client:
    return owned_or_404(Client, client_id)


@bp.get("/<int:client_id>")
@login_required
def card(client_id: int):
    client = _client(client_id)
    if client.merged_into_id is not None:
        survivor = clients.surviving_client(client)
        flash(f"That card was merged into {survivor.name}'s.", "info")
        return redirect(url_for("clients.card", client_id=survivor.id))
    tab = request.args.get("tab", "conversation")
    return render_template(
        "clients/card.html",
        client=client,
        tab=tab,
        opted_out=clients.is_opted_out(client),
        sources=SOURCES,
    )


@bp.get("/<int:client_id>/badges")
@login_required
def badges(client_id: int):
    """The card's badges (lead, opted out, tags), for the card's live refresh."""
    client = _client(client_id)
    return render_template(
        "clients/_badges.html", client=client, opted_out=clients.is_opted_out(client)
    )


@bp.get("/<int:client_id>/edit")
@login_required
def edit(client_id: int):
    client = _client(client_id)
    details = clients.ClientDetails(
        name=client.name,
        phones=[p.number for p in client.phones],
        emails=[e.email for e in client.emails],
        tags=[t.name for t in client.tags],
        time_zone=client.time_zone or "",
    )
    return _form_page(client, details)


@bp.post("/<int:client_id>")
@login_required
def update(client_id: int):
    client = _client(client_id)
    details = _details_from_form()
    try:
        clients.update_client(client, current_user.business.country, details)
    except ServiceError as error:
        db.session.rollback()
        return _form_page(client, details, error, 422)
    flash("Saved.", "success")
    return redirect(url_for("clients.card", client_id=client.id, tab="details"))


@bp.post("/<int:client_id>/convert")
@login_required
def convert(client_id: int):
    client = _client(client_id)
    clients.convert_lead(client)
    flash(f"{client.name} is now a client.", "success")
    return redirect(url_for("clients.card", client_id=client.id))


@bp.post("/<int:client_id>/notes")
@login_required
def add_note(client_id: int):
    client = _client(client_id)
    try:
        clients.add_note(client, current_user, request.form.get("body", ""))
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("clients.card", client_id=client.id, tab="notes"))


@bp.get("/<int:client_id>/merge")
@login_required
def merge_pick(client_id: int):
    client = _client(client_id)
    query = request.args.get("q", "")[:100]
    candidates = []
    if query:
        candidates, _ = clients.search_clients(current_user.business_id, query)
        candidates = [c for c in candidates if c.id != client.id]
    return render_page_or_fragment(
        "clients/merge_pick.html",
        "clients/_merge_candidates.html",
        client=client,
        query=query,
        candidates=candidates,
    )


@bp.get("/<int:client_id>/merge/<int:other_id>")
@login_required
def merge_preview(client_id: int, other_id: int):
    _client(client_id), _client(other_id)
    try:
        preview = clients.preview_merge(current_user.business_id, client_id, other_id)
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for("clients.card", client_id=client_id))
    return render_template("clients/merge_preview.html", preview=preview)


@bp.post("/<int:client_id>/merge/<int:other_id>")
@login_required
def merge(client_id: int, other_id: int):
    _client(client_id), _client(other_id)
    try:
        kept = clients.merge_clients(current_user.business_id, client_id, other_id, current_user)
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for("clients.card", client_id=client_id))
    flash("Merged. Everything from both cards is here now.", "success")
    return redirect(url_for("clients.card", client_id=kept.id))


@bp.get("/import")
@login_required
def import_form():
    return render_template("clients/import.html", error=None)


@bp.post("/import")
@allows_upload(client_import.MAX_FILE_BYTES + 64 * 1024)  # a client list is the largest form
@login_required
def start_import():
    upload = request.files.get("file")
    try:
        started = client_import.start_import(
            current_user.business_id,
            current_user.id,
            upload.filename if upload else "",
            upload.read() if upload else b"",
        )
    except ServiceError as error:
        return render_template("clients/import.html", error=error), 422
    return redirect(url_for("clients.import_progress", import_id=started.id))


@bp.get("/import/<int:import_id>")
@login_required
def import_progress(import_id: int):
    job = owned_or_404(ClientImport, import_id)
    return render_page_or_fragment(
        "clients/import_progress.html", "clients/_import_status.html", job=job
    )
