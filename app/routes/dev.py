"""Development only: read the emails the app would have sent (no SMTP server configured)."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from flask import Blueprint, current_app, render_template

bp = Blueprint("dev", __name__, url_prefix="/dev")


def captured_emails() -> list[dict[str, str]]:
    """Captured emails, newest first."""
    folder = Path(current_app.config["MAIL_CAPTURE_DIR"])
    files = sorted(folder.glob("*.eml"), key=lambda f: f.stat().st_mtime, reverse=True)
    emails = []
    for file in files[:100]:
        message = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
        emails.append(
            {
                "to": message["To"],
                "from": message["From"],
                "subject": message["Subject"],
                "date": message["Date"],
                "body": message.get_body(("plain",)).get_content(),
            }
        )
    return emails


@bp.get("/mail")
def mail():
    return render_template("dev/mail.html", emails=captured_emails())
