"""Delivers email through SMTP, or captures it for a person to read in development."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path

from flask import current_app

from jobs import app_job


@app_job
def deliver_email(
    *, to: str, subject: str, body: str, reply_to: str | None = None, from_name: str | None = None
) -> str:
    """Sends one email and returns its Message-ID."""
    config = current_app.config
    default_name, from_address = parseaddr(config["MAIL_FROM"])
    message = EmailMessage()
    message["From"] = formataddr((from_name or default_name, from_address))
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=from_address.partition("@")[2] or None)
    if reply_to:
        message["Reply-To"] = reply_to
    message.set_content(body)

    if not config.get("MAIL_SERVER"):
        capture = Path(config["MAIL_CAPTURE_DIR"])
        capture.mkdir(parents=True, exist_ok=True)
        (capture / f"{uuid.uuid4().hex}.eml").write_bytes(bytes(message))
        return message["Message-ID"]

    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        smtp.send_message(message)
    return message["Message-ID"]
