"""Settings → Business info, and Settings → Auto Client Messages and SMS: its "SMS Settings"
tab (two-way texting, the "Do not reply" auto message, or no auto reply) and its "Auto
messages" tab (the automatic messages about appointments). Owner and admins only, except the
verification banner, which every staff member sees."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from app.extensions import db
from app.htmx import is_htmx_request
from app.models import SMS_SETTINGS
from app.models.booking import AUTO_CHANNELS, AUTO_EVENTS, MAX_REMINDERS, REMINDER_OFFSETS_HOURS
from app.models.types import utcnow
from app.routes.guards import settings_role_required
from app.services import business_info, texting, verification
from app.services.booking import auto_messages
from app.services.errors import ServiceError
from app.services.message_templates import APPOINTMENT_PLACEHOLDERS
from app.services.places import COUNTRIES, time_zones
from app.templating import local_date

bp = Blueprint("settings", __name__, url_prefix="/settings")

PANEL_CHANGED = "texting-panel-changed"  # htmx event: the number panel was fetched again


# --- Business info --------------------------------------------------------------------------


def _business_info_page(info: business_info.BusinessInfo, error=None, status: int = 200):
    business = current_user.business
    held = texting.held_number(business.id)
    return render_template(
        "settings/business_info.html",
        info=info,
        error=error,
        countries=COUNTRIES,
        time_zones=time_zones(),
        verification=held.verification if held is not None else None,
        missing=business_info.missing_for_verification(business),
    ), status


@bp.get("/business")
@settings_role_required
def business_info_form():
    return _business_info_page(business_info.BusinessInfo.of(current_user.business))


@bp.post("/business")
@settings_role_required
def business_info_save():
    form = request.form
    info = business_info.BusinessInfo(
        **{name: form.get(name, "") for name in business_info.BusinessInfo.__dataclass_fields__}
    )
    try:
        business_info.update_business_info(current_user.business_id, info)
        if form.get("resubmit"):
            verification.request_resubmission(current_user.business_id, now=utcnow())
    except ServiceError as error:
        return _business_info_page(info, error, 422)
    if form.get("resubmit"):
        flash("Saved, and sent to the carriers again: verification is pending.", "success")
        return redirect(url_for("settings.sms_settings"))
    flash("Business info saved.", "success")
    return redirect(url_for("settings.business_info_form"))


# --- Auto Client Messages and SMS → SMS Settings ---------------------------------------------


def _panel_context(error: ServiceError | None = None) -> dict:
    business = current_user.business
    held = texting.held_number(business.id)
    return dict(
        business=business,
        offer=texting.availability(business),
        number=held,
        verification=held.verification if held is not None else None,
        failure=None if held is not None else texting.last_failure(business.id),
        missing=business_info.missing_for_verification(business),
        country_name=COUNTRIES.get(business.country, business.country),
        panel_error=error,
    )


@bp.get("/messages")
@settings_role_required
def messages():
    return redirect(url_for("settings.sms_settings"))


@bp.get("/messages/sms")
@settings_role_required
def sms_settings():
    context = _panel_context()
    if context["number"] is not None:
        texting.schedule_periodic_jobs()  # restarts the checks if Redis lost them
    return render_template(
        "settings/sms.html",
        options=SMS_SETTINGS,
        chosen=current_user.business.sms_setting,
        error=None,
        **context,
    )


@bp.post("/messages/sms")
@settings_role_required
def save_sms_settings():
    setting = request.form.get("sms_setting", "")
    try:
        number = texting.save_sms_setting(
            current_user.business_id, setting, user_id=current_user.id, now=utcnow()
        )
    except ServiceError as error:
        return render_template(
            "settings/sms.html",
            options=SMS_SETTINGS,
            chosen=setting,
            error=error,
            **_panel_context(),
        ), 422
    if setting == "two_way":
        if number is not None and number.status == "assigning":
            flash("Two-way texting is on: your number will appear in a few seconds.", "success")
        else:
            flash("Saved: two-way texting is on.", "success")
    elif number is not None and number.status == "reserved":
        flash(
            f"Saved: two-way texting is off. Your number is reserved for you until "
            f"{local_date(number.reserved_until)}.",
            "success",
        )
    else:
        flash("Saved.", "success")
    return redirect(url_for("settings.sms_settings"))


@bp.get("/messages/sms/two-way-texting")
@settings_role_required
def two_way_texting_panel():
    """The number panel alone: htmx polls it while the number is being bought, and fetches it
    again when the `texting-changed` event arrives."""
    return _panel_fragment()


def _panel_fragment(error: ServiceError | None = None) -> Response:
    """The panel; its `HX-Trigger` makes the page's verification banner look again too, so
    both change together even where the event stream is not connected."""
    response = make_response(
        render_template("settings/_two_way_texting.html", **_panel_context(error))
    )
    response.headers["HX-Trigger"] = PANEL_CHANGED
    return response


@bp.post("/messages/sms/two-way-texting")
@settings_role_required
def get_two_way_texting():
    """The Get two-way texting button."""
    error = None
    try:
        texting.activate_two_way_texting(
            current_user.business_id, user_id=current_user.id, now=utcnow()
        )
    except ServiceError as caught:
        error = caught
    if is_htmx_request():
        # htmx swaps only 2xx answers: the error is shown inside the panel instead.
        return _panel_fragment(error)
    if error is not None:
        flash(error.message, "error")
    return redirect(url_for("settings.sms_settings"))


@bp.post("/messages/sms/verification")
@settings_role_required
def resubmit_verification():
    """Sends corrected business info to the carriers after a rejection."""
    error = None
    try:
        verification.request_resubmission(current_user.business_id, now=utcnow())
    except ServiceError as caught:
        error = caught
    if is_htmx_request():
        return _panel_fragment(error)
    if error is not None:
        flash(error.message, "error")
    else:
        flash("Sent to the carriers again: verification is pending.", "success")
    return redirect(url_for("settings.sms_settings"))


# --- Auto Client Messages and SMS → Auto messages ------------------------------------------


def _event_or_404(event: str) -> str:
    if event not in AUTO_EVENTS:
        abort(404)
    return event


def _auto_context(
    setting: auto_messages.AutoSetting,
    *,
    template: str | None = None,
    error: ServiceError | None = None,
    saved: str | None = None,
) -> dict:
    """One event's editor: the setting (or what was typed, when it was refused), whether
    replies can reach the business, and the preview of the text in the box."""
    business_id = current_user.business_id
    text = setting.template if template is None else template
    return dict(
        setting=setting,
        template=text,
        confirm=auto_messages.confirm_by_reply(business_id),
        preview=auto_messages.preview(
            business_id, setting.event, text, ask_to_confirm=setting.ask_to_confirm
        ),
        channels=AUTO_CHANNELS,
        offsets=REMINDER_OFFSETS_HOURS,
        max_reminders=MAX_REMINDERS,
        placeholders=APPOINTMENT_PLACEHOLDERS,
        error=error,
        saved=saved,
    )


@bp.get("/messages/auto")
@settings_role_required
def auto_messages_page():
    settings = auto_messages.all_settings(current_user.business_id)
    return render_template(
        "settings/auto_messages.html", editors=[_auto_context(setting) for setting in settings]
    )


def _posted_setting(event: str) -> auto_messages.AutoSetting:
    """What the editor's form holds, as a setting (for showing it again when refused)."""
    form = request.form
    stored = auto_messages.setting_for(current_user.business_id, event)
    shown = "confirm_shown" in form  # the confirm options were on the page
    return auto_messages.AutoSetting(
        event=event,
        enabled=bool(form.get("enabled")),
        channel=form.get("channel", stored.channel),
        template=form.get("template", ""),
        customised=stored.customised,
        reminder_hours=tuple(form.getlist("reminder_hours", type=int)),
        ask_to_confirm=bool(form.get("ask_to_confirm")) if shown else stored.ask_to_confirm,
        thank_for_confirming=bool(form.get("thank_for_confirming"))
        if shown
        else stored.thank_for_confirming,
    )


def _editor(context: dict, status: int = 200):
    if is_htmx_request():
        return render_template("settings/_auto_message.html", **context), 200
    if status != 200:
        settings = auto_messages.all_settings(current_user.business_id)
        editors = [
            context if s.event == context["setting"].event else _auto_context(s) for s in settings
        ]
        return render_template("settings/auto_messages.html", editors=editors), status
    flash(context["saved"], "success")
    return redirect(url_for("settings.auto_messages_page") + f"#auto-{context['setting'].event}")


@bp.post("/messages/auto/<event>")
@settings_role_required
def save_auto_message(event: str):
    event = _event_or_404(event)
    form = request.form
    confirm_shown = "confirm_shown" in form  # the confirm options were on the page
    try:
        setting = auto_messages.save_setting(
            current_user.business_id,
            event,
            enabled=bool(form.get("enabled")),
            channel=form.get("channel", ""),
            template=form.get("template", ""),
            reminder_hours=form.getlist("reminder_hours", type=int),
            ask_to_confirm=bool(form.get("ask_to_confirm")) if confirm_shown else None,
            thank_for_confirming=bool(form.get("thank_for_confirming")) if confirm_shown else None,
            user_id=current_user.id,
            now=utcnow(),
        )
    except ServiceError as error:
        db.session.rollback()
        posted = _posted_setting(event)
        return _editor(_auto_context(posted, template=posted.template, error=error), 422)
    return _editor(_auto_context(setting, saved=f"{setting.label}: saved."))


@bp.post("/messages/auto/<event>/reset")
@settings_role_required
def reset_auto_message(event: str):
    """Reset to default: the default text back in the editor, and stored."""
    event = _event_or_404(event)
    setting = auto_messages.reset_template(
        current_user.business_id, event, user_id=current_user.id, now=utcnow()
    )
    return _editor(_auto_context(setting, saved=f"{setting.label}: default text restored."))


@bp.post("/messages/auto/<event>/preview")
@settings_role_required
def preview_auto_message(event: str):
    """The editor's live preview and part count (htmx, as the composer's count)."""
    event = _event_or_404(event)
    preview = auto_messages.preview(
        current_user.business_id,
        event,
        request.form.get("template", ""),
        ask_to_confirm=bool(request.form.get("ask_to_confirm")),
    )
    return render_template("settings/_auto_preview.html", event=event, preview=preview)


# --- The verification banner on every signed-in page ----------------------------------------


@bp.get("/verification-banner")
@login_required
def verification_banner():
    return render_template("settings/_verification_banner.html")


@bp.post("/verification-banner/dismiss")
@login_required
def dismiss_verification_banner():
    verification.acknowledge_verified(current_user.business_id, now=utcnow())
    if is_htmx_request():
        return render_template("settings/_verification_banner.html")
    return redirect(url_for("shell.inbox"))


@bp.app_context_processor
def banner_context() -> dict:
    """`verification_banner()` for the shell: computed once per request, only when the shell
    (or the banner fragment) asks for it."""

    def banner() -> verification.VerificationBanner | None:
        if not current_user.is_authenticated:
            return None
        if "verification_banner" not in g:
            g.verification_banner = verification.verification_banner(current_user.business_id)
        return g.verification_banner

    return {"verification_banner": banner}
