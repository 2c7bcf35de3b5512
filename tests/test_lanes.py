"""Lanes under one rate (DESIGN.md §10): every text shares the account's rate, and a worker
takes texts people wait on (staff texts, automatic answers, staff alerts) before automatic
booking texts, however many of those are queued ahead; each kind of job waits in its lane and
goes back to it when queued again; every worker listens to every lane, in order; nothing is
lost when every lane holds work at once. Texts go through the real pipeline to the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry

import jobs
from app import worker
from app.extensions import db, get_redis
from app.inprocess_worker import ThreadWorker
from app.models import Appointment, AutoMessageSetting, Message, ScheduledSend, User
from app.models.types import utcnow
from app.services import queues, scheduling, sending
from app.services.booking import auto_messages, reminders, staff_alerts
from app.services.queues import BOOKING, DIRECT, LANES
from tests.conftest import TEST_REDIS_URL
from tests.sending_helpers import (
    accepted,
    give_dedicated_number,
    make_client,
    parts_of,
    run_until_settled,
    store_unread_text,
)
from tests.texting_helpers import complete_business_info, use_sandbox

STAFF_REPLY = "Yes, 4 pm today works. See you then!"
BOOKING_EVENTS = ("booking_confirmation", "rescheduled", "cancelled", "reminder", "thank_you")


@pytest.fixture
def texting_app(app, sandbox, monkeypatch):
    use_sandbox(app, sandbox)
    monkeypatch.setattr(sending, "retry_delay", lambda failures: timedelta(0))
    return app


@pytest.fixture
def business(texting_app, make_business, sandbox, run_jobs):
    """A business texting from its own verified number, with a client and a staff member."""
    made = make_business("Bright Smile Dental", staff=("staff",))
    complete_business_info(texting_app, made["id"])
    made["number"] = give_dedicated_number(texting_app, made["id"], sandbox, run_jobs)
    made["client"] = make_client(texting_app, made["id"])
    return made


class OneWorker(ThreadWorker, worker.Worker):
    """Production's worker class (its lanes, its watchman), run inside the test process as the
    in-process worker runs: no signal handlers, no command channel, a timer for time-outs."""


def _appointment(business, *, starts_in: timedelta = timedelta(days=2)) -> Appointment:
    """In an app context: an appointment of the business's client, committed."""
    appointment = Appointment(
        business_id=business["id"],
        client_id=business["client"],
        service="Cleaning",
        starts_at=utcnow() + starts_in,
        duration_minutes=45,
    )
    db.session.add(appointment)
    db.session.commit()
    return appointment


def _booking_texts(app, business, count: int, event: str = "reminder") -> list[int]:
    """`count` automatic booking texts, added and queued as the reminders' dispatcher does."""
    with app.app_context():
        message_ids = []
        for _ in range(count):
            message = auto_messages.add_auto_message(_appointment(business), event, now=utcnow())
            db.session.commit()
            message_ids.append(message.id)
        return message_ids


def _staff_text(app, business, body: str = STAFF_REPLY) -> int:
    with app.app_context():
        return sending.send_text(
            business["id"], business["client"], body, user_id=business["staff"][0], now=utcnow()
        ).id


def _lane_of_send(app, message_id: int) -> list[str]:
    """The lanes holding a sending job for the message, now or later (a delayed retry)."""
    with app.app_context():
        found = []
        for lane in LANES:
            queue = queues.get_queue(lane)
            ids = [*queue.job_ids, *ScheduledJobRegistry(queue=queue).get_job_ids()]
            for job in queue.job_class.fetch_many(ids, connection=get_redis()):
                if job.func_name == "jobs.sending.send_message" and job.args == (message_id,):
                    found.append(lane)
        return found


def _empty_every_lane(app) -> None:
    with app.app_context():
        for lane in LANES:
            queues.get_queue(lane).empty()


# --- A staff reply never waits behind booking texts --------------------------------------


def test_a_staff_text_queued_after_many_due_booking_texts_is_sent_first_by_one_worker(
    texting_app, business, sandbox
):
    reminder_ids = _booking_texts(texting_app, business, 30)
    staff_id = _staff_text(texting_app, business)  # queued last, behind 30 reminders

    jobs.use_app(texting_app)
    with texting_app.app_context():
        connection = get_redis()
    OneWorker(connection=connection).work(burst=True, logging_level="WARNING")

    got = [m["text"] for m in accepted(sandbox)]
    assert got[0] == STAFF_REPLY
    assert len(got) == 31  # and every reminder after it
    assert {p["status"] for m in [staff_id, *reminder_ids] for p in parts_of(texting_app, m)} == {
        "sent"
    }


def test_the_in_process_worker_sends_a_staff_text_before_the_booking_texts_queued_ahead(
    texting_app, business, sandbox, run_jobs
):
    _booking_texts(texting_app, business, 10)
    _staff_text(texting_app, business)
    run_jobs()
    got = [m["text"] for m in accepted(sandbox)]
    assert got[0] == STAFF_REPLY and len(got) == 11


# --- Each kind of job waits in its lane ----------------------------------------------------


def test_a_text_staff_write_waits_in_the_first_lane(texting_app, business):
    message_id = _staff_text(texting_app, business)
    assert _lane_of_send(texting_app, message_id) == [DIRECT]


@pytest.mark.parametrize("event", BOOKING_EVENTS)
def test_each_automatic_booking_text_waits_in_the_booking_lane(texting_app, business, event):
    if event == "thank_you":
        with texting_app.app_context():  # off by default
            db.session.add(
                AutoMessageSetting(
                    business_id=business["id"], event=event, enabled=True, reminder_hours=[24]
                )
            )
            db.session.commit()
    [message_id] = _booking_texts(texting_app, business, 1, event)
    assert _lane_of_send(texting_app, message_id) == [BOOKING]


@pytest.mark.parametrize("purpose", ["stop", "help", "do_not_reply", "confirm_thanks"])
def test_an_automatic_answer_to_an_inbound_text_waits_in_the_first_lane(
    texting_app, business, purpose
):
    with texting_app.app_context():
        inbound_id = store_unread_text(business["id"], business["client"])
        inbound = db.session.get(Message, inbound_id)
        auto_event = "confirm_thanks" if purpose == "confirm_thanks" else None
        reply = sending.add_reply(
            inbound, "Thanks.", purpose=purpose, auto_event=auto_event, now=utcnow()
        )
        db.session.commit()
        sending.queue_reply(reply)
        reply_id = reply.id
    assert _lane_of_send(texting_app, reply_id) == [DIRECT]


def test_a_staff_alert_text_waits_in_the_first_lane(texting_app, business):
    with texting_app.app_context():
        staff = db.session.get(User, business["staff"][0])
        staff_alerts.save_alert_choices(
            staff,
            mobile_number="+15551230001",
            chosen={event: {"in_app", "text"} for event in staff_alerts.ALERT_EVENTS},
            now=utcnow(),
        )
        db.session.commit()
        alerts = staff_alerts.alert_staff(
            business["id"],
            "booking",
            text="New booking: Sam Client, Cleaning, Tue at 3:00 PM",
            link="/",
            now=utcnow(),
            appointment_id=_appointment(business).id,
        )
        db.session.commit()
        [alert_text] = [a.text_message_id for a in alerts if a.user_id == staff.id]
    assert alert_text is not None
    assert _lane_of_send(texting_app, alert_text) == [DIRECT]


def test_the_dispatcher_of_sends_for_later_waits_in_the_booking_lane(texting_app, business):
    with texting_app.app_context():
        scheduling.schedule(
            business["id"],
            reminders.REMINDER,
            utcnow() - timedelta(seconds=1),
            subject_id=_appointment(business).id,
            slot="reminder-1:24h",
            now=utcnow(),
        )
        db.session.commit()
        assert scheduling.queue_dispatch_when_due(now=utcnow())
        by_lane = {lane: [j.func_name for j in queues.get_queue(lane).jobs] for lane in LANES}
    assert by_lane[BOOKING] == ["jobs.scheduling.dispatch"]
    assert "jobs.scheduling.dispatch" not in by_lane[DIRECT]


def test_a_booking_text_retried_after_an_outage_goes_back_to_the_booking_lane(
    texting_app, business, sandbox, run_jobs
):
    sandbox.set_faults(http_error_count=1, http_error_status=503, paths=["/sms"])
    [message_id] = _booking_texts(texting_app, business, 1)
    run_jobs()  # the first try meets the outage; the retry waits, delayed, in its lane
    assert parts_of(texting_app, message_id)[0]["status"] == "queued"
    assert _lane_of_send(texting_app, message_id) == [BOOKING]
    run_jobs()
    assert parts_of(texting_app, message_id)[0]["status"] == "sent"


def test_the_sweep_queues_a_lost_booking_text_again_in_the_booking_lane(
    texting_app, business, sandbox, run_jobs
):
    [message_id] = _booking_texts(texting_app, business, 1)
    staff_id = _staff_text(texting_app, business)
    _empty_every_lane(texting_app)  # both jobs are lost (Redis restarted)
    with texting_app.app_context():
        sending.sweep(now=utcnow() + sending.LOST_JOB_AFTER + timedelta(seconds=1))
    assert _lane_of_send(texting_app, message_id) == [BOOKING]
    assert _lane_of_send(texting_app, staff_id) == [DIRECT]
    run_jobs()
    assert len(accepted(sandbox)) == 2


def test_a_lane_that_does_not_exist_is_refused(app):
    with app.app_context(), pytest.raises(ValueError, match="no lane"):
        queues.get_queue("campaigns")


# --- Every worker listens to every lane, in order ------------------------------------------


def test_the_production_worker_named_no_lane_listens_to_every_lane_in_order(app):
    with app.app_context():
        connection = get_redis()
    # `rq worker --worker-class app.worker.Worker` naming no queue passes RQ's "default".
    as_rq_starts_it = worker.Worker([Queue("default", connection=connection)], name="w1")
    assert as_rq_starts_it.queue_names() == list(LANES)
    assert worker.Worker(connection=connection).queue_names() == list(LANES)


def test_the_production_worker_given_every_lane_listens_in_the_order_given(app):
    with app.app_context():
        connection = get_redis()
    given = [Queue(lane, connection=connection) for lane in LANES]
    assert worker.Worker(given, connection=connection).queue_names() == list(LANES)


def test_the_in_process_worker_listens_to_every_lane_in_order(app, monkeypatch):
    listened: list[list[str]] = []
    work = ThreadWorker.work

    def recording_work(self, *args, **kwargs):
        listened.append(self.queue_names())
        return work(self, *args, **kwargs)

    monkeypatch.setattr(ThreadWorker, "work", recording_work)
    from app.inprocess_worker import run_pending_jobs

    run_pending_jobs(app)
    assert listened and listened[0] == list(LANES)


@pytest.mark.skipif(
    not TEST_REDIS_URL, reason="needs real Redis (TEST_REDIS_URL): a worker process"
)
def test_a_worker_started_by_the_production_command_naming_no_lane_sends_from_every_lane(
    texting_app, business, sandbox, database_url, tmp_path
):
    [booking_id] = _booking_texts(texting_app, business, 1)
    staff_id = _staff_text(texting_app, business)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL or "",
        "SECRET_KEY": "test-secret-key",
        "SANDBOX": "1",
        "VONAGE_REST_HOST": sandbox.host_port,
        "VONAGE_API_HOST": sandbox.host_port,
        "VONAGE_PLAIN_HTTP": "1",
    }
    rq = str(Path(sys.executable).parent / "rq")  # this virtualenv's rq
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        finished = subprocess.run(  # README's command (in burst mode: it ends when idle)
            [rq, "worker", "--with-scheduler", "--worker-class", "app.worker.Worker"]
            + ["--url", TEST_REDIS_URL or "", "--burst"],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=90,
        )
    assert finished.returncode == 0, log.read_text()[-3000:]
    assert parts_of(texting_app, staff_id)[0]["status"] == "sent", log.read_text()[-3000:]
    assert parts_of(texting_app, booking_id)[0]["status"] == "sent", log.read_text()[-3000:]


# --- Nothing lost -------------------------------------------------------------------------


def test_nothing_is_lost_when_every_lane_holds_work_at_once(
    texting_app, business, sandbox, run_jobs
):
    booking_ids = _booking_texts(texting_app, business, 8)
    with texting_app.app_context():
        for _ in range(6):  # due reminders, for the dispatcher in the booking lane
            scheduling.schedule(
                business["id"],
                reminders.REMINDER,
                utcnow() - timedelta(seconds=1),
                subject_id=_appointment(business).id,
                slot="reminder-1:24h",
                now=utcnow(),
            )
        db.session.commit()
        scheduling.queue_dispatch_when_due(now=utcnow())
    staff_ids = [_staff_text(texting_app, business, f"Reply {n}") for n in range(5)]
    sandbox.set_faults(http_error_count=3, http_error_status=503, paths=["/sms"])

    run_jobs()
    with texting_app.app_context():
        rows = db.session.execute(db.select(ScheduledSend.state, ScheduledSend.message_id)).all()
    assert [state for state, _ in rows] == ["done"] * 6
    every = [*booking_ids, *staff_ids, *(message_id for _, message_id in rows)]
    run_until_settled(texting_app, run_jobs, every)

    refs = Counter(m["client_ref"] for m in accepted(sandbox))
    assert len(refs) == 19 and set(refs.values()) == {1}  # each text once, none lost
    assert {p["status"] for m in every for p in parts_of(texting_app, m)} == {"sent"}
