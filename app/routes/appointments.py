"""Appointments: the agenda (a day with its week strip, Upcoming, Past), an appointment's page
(reschedule, cancel, mark), the New appointment form, and the client card's Appointments tab.
Open agendas and cards refresh themselves on `appointment.changed`."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup

from app.extensions import db
from app.htmx import is_htmx_request, render_page_or_fragment
from app.models import APPOINTMENT_STATES, Appointment, Client
from app.models.types import is_row_id, utcnow
from app.services import clients
from app.services.booking import appointments
from app.services.errors import ServiceError
from app.services.tenancy import owned_or_404

bp = Blueprint("appointments", __name__, url_prefix="/appointments")
VIEWS = {"day": "Today", "upcoming": "Upcoming", "past": "Past"}


def _zone() -> ZoneInfo:
    return ZoneInfo(current_user.business.time_zone)


def _today() -> date:
    return utcnow().astimezone(_zone()).date()


def _day_from(text: str | None) -> date:
    """The agenda's day from the address (`2026-03-08`); today for anything else."""
    try:
        day = date.fromisoformat(text or "")
    except ValueError:
        return _today()
    return day if appointments.FIRST_DAY <= day <= appointments.LAST_DAY else _today()


@bp.get("")
@login_required
def agenda():
    """The agenda: one day (today unless `day` says) with the week strip, or the Upcoming or
    Past list. For htmx (a live refresh), only the agenda fragment."""
    view = request.args.get("view", "day")
    if view not in VIEWS:
        view = "day"
    business_id = current_user.business_id
    now = utcnow()
    day = _day_from(request.args.get("day"))
    context: dict = dict(view=view, views=VIEWS, day=day, today=_today())
    if view == "day":
        week = appointments.week_of(day)
        context.update(
            rows=appointments.agenda_for_day(business_id, day),
            week=week,
            counts=appointments.counts_by_day(business_id, week),
        )
    elif view == "upcoming":
        context["rows"] = appointments.upcoming(business_id, now=now)
    else:
        context["rows"] = appointments.past(business_id, now=now)
    return render_page_or_fragment(
        "appointments/agenda.html", "appointments/_agenda.html", **context
    )


def _form_values(source) -> dict:
    return {
        "client_id": source.get("client_id", ""),
        "service": source.get("service", ""),
        "staff_id": source.get("staff_id", ""),
        "date": source.get("date", ""),
        "time": source.get("time", ""),
        "duration_minutes": source.get("duration_minutes", "60"),
        "location": source.get("location", ""),
        "note": source.get("note", ""),
    }


def _form_id(text: str) -> int | None:
    """An id from a form field: None when empty, 0 (no row's id) when it isn't a number."""
    text = (text or "").strip()
    if not text:
        return None
    value = int(text) if text.isdigit() and len(text) < 12 else 0
    return value if is_row_id(value) else 0


def _form_minutes(text: str) -> int:
    text = (text or "").strip()
    return int(text) if text.isdigit() and len(text) < 6 else 0


def _new_page(client: Client | None, form: dict, error: ServiceError | None = None):
    business_id = current_user.business_id
    return render_template(
        "appointments/new.html",
        client=client,
        form=form,
        error=error,
        services=appointments.recent_services(business_id),
        staff=appointments.bookable_staff(business_id),
        durations=appointments.DURATION_CHOICES,
        rows=[],
        query="",
        **_picks(form["date"]),
    )


def _picks(day: str) -> dict:
    """For the client picker (messages/_picker_results.html): a pick opens this form."""
    return dict(pick_endpoint="appointments.new", pick_args={"date": day})


@bp.get("/new")
@login_required
def new():
    """New appointment: pick a client by typing (unless `client_id` names one), then the form,
    its date set to `date` (the agenda's day) or today."""
    client_id = request.args.get("client_id", type=int)
    form = _form_values(request.args)
    form["date"] = _day_from(request.args.get("date")).isoformat()
    if client_id:
        client = clients.surviving_client(owned_or_404(Client, client_id))
        form["client_id"] = str(client.id)
        return _new_page(client, form)
    query = request.args.get("q", "")[:100]
    rows = clients.search_clients(current_user.business_id, query)[0] if query else []
    pick = _picks(form["date"])
    if is_htmx_request():
        return render_template("messages/_picker_results.html", rows=rows, query=query, **pick)
    return render_template(
        "appointments/new.html", client=None, rows=rows, query=query, form=form, **pick
    )


@bp.post("")
@login_required
def create():
    form = _form_values(request.form)
    business = current_user.business
    client_id = _form_id(form["client_id"])
    try:
        appointment = appointments.create_appointment(
            business.id,
            client_id=client_id or 0,
            service=form["service"],
            starts_at=appointments.start_from_local(business.time_zone, form["date"], form["time"]),
            duration_minutes=_form_minutes(form["duration_minutes"]),
            staff_id=_form_id(form["staff_id"]),
            location=form["location"],
            note=form["note"],
            user_id=current_user.id,
            now=utcnow(),
        )
    except ServiceError as error:
        db.session.rollback()
        client = clients.client_or_none(business.id, client_id) if client_id else None
        return _new_page(client, form, error), 422
    flash(f"Booked: {appointment.service} with {appointment.client.name}.", "success")
    return redirect(url_for("appointments.show", appointment_id=appointment.id))


def _appointment(appointment_id: int) -> Appointment:
    return owned_or_404(Appointment, appointment_id)


def _page(appointment: Appointment, error: ServiceError | None = None, form: dict | None = None):
    local = appointment.starts_at.astimezone(_zone())
    form = form or {
        "date": local.date().isoformat(),
        "time": f"{local:%H:%M}",
        "duration_minutes": str(appointment.duration_minutes),
    }
    return render_template(
        "appointments/show.html",
        appointment=appointment,
        error=error,
        form=form,
        durations=appointments.DURATION_CHOICES,
        now=utcnow(),
    )


@bp.get("/<int:appointment_id>")
@login_required
def show(appointment_id: int):
    appointment = _appointment(appointment_id)
    if is_htmx_request():  # the page's live refresh
        return render_template("appointments/_summary.html", appointment=appointment, now=utcnow())
    return _page(appointment)


@bp.post("/<int:appointment_id>/reschedule")
@login_required
def reschedule(appointment_id: int):
    appointment = _appointment(appointment_id)
    form = {key: request.form.get(key, "") for key in ("date", "time", "duration_minutes")}
    try:
        appointments.reschedule(
            current_user.business_id,
            appointment.id,
            starts_at=appointments.start_from_local(
                current_user.business.time_zone, form["date"], form["time"]
            ),
            duration_minutes=_form_minutes(form["duration_minutes"]),
            user_id=current_user.id,
            now=utcnow(),
        )
    except ServiceError as error:
        db.session.rollback()
        return _page(appointment, error, form), 422
    flash("Rescheduled.", "success")
    return redirect(url_for("appointments.show", appointment_id=appointment.id))


@bp.post("/<int:appointment_id>/cancel")
@login_required
def cancel(appointment_id: int):
    appointment = _appointment(appointment_id)
    try:
        appointments.cancel(
            current_user.business_id, appointment.id, user_id=current_user.id, now=utcnow()
        )
    except ServiceError as error:
        db.session.rollback()
        return _page(appointment, error), 422
    flash("Cancelled.", "success")
    return redirect(url_for("appointments.show", appointment_id=appointment.id))


@bp.post("/<int:appointment_id>/mark")
@login_required
def mark(appointment_id: int):
    appointment = _appointment(appointment_id)
    state = request.form.get("state", "")
    try:
        appointments.mark(
            current_user.business_id, appointment.id, state, user_id=current_user.id, now=utcnow()
        )
    except ServiceError as error:
        db.session.rollback()
        return _page(appointment, error), 422
    flash(f"Marked {APPOINTMENT_STATES[state].lower()}.", "success")
    return redirect(url_for("appointments.show", appointment_id=appointment.id))


@bp.get("/clients/<int:client_id>")
@login_required
def for_client(client_id: int):
    """The client card's Appointments tab (its live refresh)."""
    client = clients.surviving_client(owned_or_404(Client, client_id))
    return _client_tab(client)


def _client_tab(client: Client) -> str:
    ahead, over = appointments.for_client(current_user.business_id, client.id, now=utcnow())
    return render_template(
        "appointments/_client_appointments.html", client=client, ahead=ahead, over=over
    )


@bp.app_template_global()
def appointments_for(client: Client) -> Markup:
    """The Appointments tab, for the client card."""
    return Markup(_client_tab(client))


# --- Times as the agenda shows them ------------------------------------------------------


def _clock(moment: datetime) -> str:
    return f"{moment:%I:%M %p}".lstrip("0")


@bp.app_template_filter("appointment_time")
def appointment_time(appointment: Appointment) -> str:
    """“3:00 – 4:15 PM” in the business's zone."""
    zone = _zone()
    start, end = appointment.starts_at.astimezone(zone), appointment.ends_at.astimezone(zone)
    if f"{start:%p}" == f"{end:%p}" and start.date() == end.date():
        return f"{_clock(start)[:-3]} – {_clock(end)}"
    return f"{_clock(start)} – {_clock(end)}"


@bp.app_template_filter("appointment_day")
def appointment_day(appointment: Appointment) -> str:
    """“Mon, Mar 9, 2026” in the business's zone."""
    local = appointment.starts_at.astimezone(_zone())
    return f"{local:%a}, {local:%b} {local.day}, {local.year}"


@bp.app_template_filter("client_local_time")
def client_local_time(appointment: Appointment) -> str:
    """“12:00 PM their time (Los Angeles)” when the client's own zone shows the start at
    another clock time (or on another day) than the business's; "" when it is the same."""
    zone_name = appointments.client_time_zone(appointment.client)
    if not zone_name:
        return ""
    theirs = appointment.starts_at.astimezone(ZoneInfo(zone_name))
    ours = appointment.starts_at.astimezone(_zone())
    if theirs.replace(tzinfo=None) == ours.replace(tzinfo=None):
        return ""
    place = zone_name.rsplit("/", 1)[-1].replace("_", " ")
    other_day = f" {theirs:%a}" if theirs.date() != ours.date() else ""
    return f"{_clock(theirs)}{other_day} their time ({place})"


@bp.app_template_filter("week_day")
def week_day(day: date) -> str:
    return f"{day:%a}"


@bp.app_template_global()
def day_title(day: date, today: date) -> str:
    """“Today”, “Tomorrow”, “Yesterday”, or “Wednesday, Mar 11”."""
    names = {0: "Today", 1: "Tomorrow", -1: "Yesterday"}
    label = f"{day:%A}, {day:%b} {day.day}" + (f", {day.year}" if day.year != today.year else "")
    return names.get((day - today).days, label)


@bp.app_template_filter("appointment_local_date")
def appointment_local_date(moment: datetime) -> str:
    """The business-zone date of an instant, as the agenda's `day` (“2026-03-09”)."""
    return moment.astimezone(_zone()).date().isoformat()


bp.add_app_template_global(timedelta, "timedelta")
bp.add_app_template_global(APPOINTMENT_STATES, "appointment_states")
