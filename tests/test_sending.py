"""Sending texts through the real SDK against the sandbox: saved first, then each part sent
exactly once, whatever Vonage or the worker does; delivery receipts settle each part."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest

from app.extensions import db, get_redis
from app.models import Message, OptOut
from app.models.types import utcnow
from app.services import balance, events, rate_limit, sending, texting
from app.services.errors import ServiceError
from app.vonage_gateway import Gateway
from tests.sending_helpers import (
    accepted,
    catch_receipts,
    deliver_receipts,
    give_dedicated_number,
    make_client,
    message_status,
    parts_of,
    run_until_settled,
    sends,
)
from tests.texting_helpers import complete_business_info, use_sandbox

TEXT_200_WITH_EMOJI = ("Hi Sam, your appointment is confirmed for Tuesday at 3pm. " * 4)[
    :199
] + "😀"


@pytest.fixture
def texting_app(app, sandbox, monkeypatch):
    use_sandbox(app, sandbox)
    monkeypatch.setattr(sending, "retry_delay", lambda failures: timedelta(0))
    return app


@pytest.fixture
def business(texting_app, make_business, sandbox, run_jobs):
    business = make_business("Bright Smile Dental")
    complete_business_info(texting_app, business["id"])
    business["number"] = give_dedicated_number(texting_app, business["id"], sandbox, run_jobs)
    business["client"] = make_client(texting_app, business["id"])
    return business


def _send(app, business, body="Your appointment is confirmed.", **kwargs) -> int:
    with app.app_context():
        message = sending.send_text(
            business["id"],
            kwargs.pop("client_id", business["client"]),
            body,
            user_id=business["owner"][0],
            now=utcnow(),
            **kwargs,
        )
        return message.id


def _left(app, business) -> int:
    with app.app_context():
        return balance.balance_for(business["id"], utcnow()).total


def _messages(app) -> int:
    with app.app_context():
        return len(db.session.execute(db.select(Message.id)).all())


# --- The happy path ---------------------------------------------------------------------------


def test_a_text_is_saved_then_each_part_sent_once_from_the_dedicated_number_and_delivered(
    texting_app, business, sandbox, webhook_catcher, run_jobs, client
):
    catch_receipts(sandbox, webhook_catcher)
    message_id = _send(texting_app, business, TEXT_200_WITH_EMOJI)
    assert message_status(texting_app, message_id) == "queued"
    assert sends(sandbox) == []  # saved first; the job sends
    assert _left(texting_app, business) == 500 - 3  # charged when saved

    run_jobs()
    parts = parts_of(texting_app, message_id)
    assert [p["status"] for p in parts] == ["sent", "sent", "sent"]
    got = accepted(sandbox)
    assert [m["client_ref"] for m in got] == [p["client_ref"] for p in parts]
    assert {m["from"] for m in got} == {business["number"].lstrip("+")}
    assert {m["to"] for m in got} == {"15557654321"}
    assert "".join(m["text"] for m in got) == TEXT_200_WITH_EMOJI
    assert {m["type"] for m in got} == {"unicode"}

    deliver_receipts(client, webhook_catcher, 3)
    assert [p["status"] for p in parts_of(texting_app, message_id)] == ["delivered"] * 3
    assert message_status(texting_app, message_id) == "delivered"


def test_status_changes_are_published_to_the_business_event_stream(
    texting_app, business, sandbox, webhook_catcher, run_jobs, client
):
    catch_receipts(sandbox, webhook_catcher)
    message_id = _send(texting_app, business)
    run_jobs()
    deliver_receipts(client, webhook_catcher, 1)
    with texting_app.app_context():
        entries = get_redis().xrange(events.stream_key(business["id"]))
    statuses = [
        fields[b"data"].decode()
        for _id, fields in entries
        if fields.get(b"event") == sending.STATUS_EVENT.encode()
    ]
    assert any(f'"message_id":{message_id}' in s and '"status":"delivered"' in s for s in statuses)


def test_transactional_texts_go_from_the_system_number_without_a_verified_number(
    texting_app, make_business, sandbox, run_jobs
):
    other = make_business()
    other["client"] = make_client(texting_app, other["id"])
    message_id = _send(texting_app, other, kind="transactional")
    run_jobs()
    assert [m["from"] for m in accepted(sandbox)] == ["18885550000"]
    assert message_status(texting_app, message_id) == "sent"


# --- Refusals: nothing saved, sent or charged -------------------------------------------------


def test_a_direct_text_without_a_dedicated_number_is_refused_with_the_reason(
    texting_app, make_business, sandbox
):
    other = make_business()
    other["client"] = make_client(texting_app, other["id"])
    with pytest.raises(ServiceError, match="two-way texting"):
        _send(texting_app, other)
    assert _messages(texting_app) == 0 and _left(texting_app, other) == 500


def test_a_text_to_a_client_without_a_phone_is_refused(texting_app, business, sandbox):
    no_phone = make_client(texting_app, business["id"], phone=None)
    with pytest.raises(ServiceError, match="no phone number"):
        _send(texting_app, business, client_id=no_phone)
    assert _messages(texting_app) == 0


def test_a_text_to_an_opted_out_number_is_refused_before_anything_is_sent_or_charged(
    texting_app, business, sandbox, run_jobs
):
    with texting_app.app_context():
        db.session.add(OptOut(business_id=business["id"], number="+15557654321"))
        db.session.commit()
    with pytest.raises(ServiceError, match="opted out"):
        _send(texting_app, business)
    run_jobs()
    assert _messages(texting_app) == 0 and sends(sandbox) == []
    assert _left(texting_app, business) == 500


def test_a_text_the_balance_cannot_cover_is_refused_before_anything_is_sent(
    texting_app, business, sandbox, run_jobs
):
    with texting_app.app_context():
        balance.reserve(business["id"], 499, utcnow())
        db.session.commit()
    with pytest.raises(ServiceError) as refused:
        _send(texting_app, business, "x" * 320)
    assert refused.value.message.startswith("Not enough texts left: this message needs 2 and 1 is")
    run_jobs()
    assert _messages(texting_app) == 0 and sends(sandbox) == []
    assert _left(texting_app, business) == 1


def test_a_text_over_550_characters_is_refused(texting_app, business):
    with pytest.raises(ServiceError, match="at most 550"):
        _send(texting_app, business, "x" * 551)
    assert _messages(texting_app) == 0


# --- Vonage misbehaving -----------------------------------------------------------------------


def test_a_throttling_storm_is_retried_until_every_part_is_sent_exactly_once(
    texting_app, business, sandbox, run_jobs
):
    sandbox.set_faults(throttle_per_second=2)
    message_ids = [_send(texting_app, business, "x" * 300) for _ in range(3)]  # 6 parts
    run_until_settled(texting_app, run_jobs, message_ids)
    for message_id in message_ids:
        assert [p["status"] for p in parts_of(texting_app, message_id)] == ["sent", "sent"]
    refs = Counter(m["client_ref"] for m in accepted(sandbox))
    assert len(refs) == 6 and set(refs.values()) == {1}
    assert len(sends(sandbox)) > 6  # some were throttled and asked again


def test_a_5xx_is_retried_and_the_part_then_sent_once(texting_app, business, sandbox, run_jobs):
    sandbox.set_faults(http_error_count=2, http_error_status=503, paths=["/sms"])
    message_id = _send(texting_app, business)
    run_until_settled(texting_app, run_jobs, [message_id])
    (part,) = parts_of(texting_app, message_id)
    assert part["status"] == "sent" and part["attempts"] == 3
    assert len(accepted(sandbox)) == 1


def test_a_dropped_connection_leaves_the_part_unknown_not_sent_twice_and_the_receipt_settles_it(
    texting_app, business, sandbox, webhook_catcher, run_jobs, client
):
    catch_receipts(sandbox, webhook_catcher)
    sandbox.set_faults(drop_count=1, drop_after_processing=True, paths=["/sms"])
    message_id = _send(texting_app, business)
    run_jobs()
    (part,) = parts_of(texting_app, message_id)
    assert part["status"] == "unknown"
    assert message_status(texting_app, message_id) == "unknown"
    run_jobs()  # a rerun (or a retry) must not send it again
    assert sandbox.snapshot()["requests_by_client_ref"][part["client_ref"]] == 1
    deliver_receipts(client, webhook_catcher, 1)
    (part,) = parts_of(texting_app, message_id)
    assert part["status"] == "delivered" and part["vonage_message_id"]
    assert message_status(texting_app, message_id) == "delivered"
    assert len(accepted(sandbox)) == 1


class WorkerKilled(BaseException):
    """The worker process dying: nothing after it runs."""


def _kill_after_sending(monkeypatch) -> None:
    real = Gateway.send_part

    def send_then_die(self, **kwargs):
        real(self, **kwargs)
        raise WorkerKilled

    monkeypatch.setattr(Gateway, "send_part", send_then_die)


def test_a_worker_killed_after_sending_is_reconciled_by_the_receipt_without_a_duplicate(
    texting_app, business, sandbox, webhook_catcher, run_jobs, client, monkeypatch
):
    catch_receipts(sandbox, webhook_catcher)
    message_id = _send(texting_app, business)
    with monkeypatch.context() as patch:
        _kill_after_sending(patch)
        with texting_app.app_context(), pytest.raises(WorkerKilled):
            sending.send_message(message_id)
    (part,) = parts_of(texting_app, message_id)
    assert part["status"] == "sending"
    run_jobs()  # the job runs again after the crash
    with texting_app.app_context():
        sending.sweep(now=utcnow())  # before the time-out: left alone
    deliver_receipts(client, webhook_catcher, 1)
    assert parts_of(texting_app, message_id)[0]["status"] == "delivered"
    assert sandbox.snapshot()["requests_by_client_ref"] == {part["client_ref"]: 1}


def test_a_part_stuck_sending_with_no_receipt_becomes_unknown_with_a_resend(
    texting_app, business, sandbox, run_jobs, monkeypatch
):
    message_id = _send(texting_app, business)
    with monkeypatch.context() as patch:
        _kill_after_sending(patch)
        with texting_app.app_context(), pytest.raises(WorkerKilled):
            sending.send_message(message_id)
    later = utcnow() + sending.SENDING_TIMEOUT + timedelta(seconds=1)
    with texting_app.app_context():
        sending.sweep(now=later)
    (part,) = parts_of(texting_app, message_id)
    assert part["status"] == "unknown" and "resend" in part["reason"]
    assert len(sends(sandbox)) == 1
    with texting_app.app_context():
        sending.resend(business["id"], message_id, now=utcnow())
    run_jobs()
    (again,) = parts_of(texting_app, message_id)
    assert again["status"] == "sent" and again["client_ref"] != part["client_ref"]
    assert len(accepted(sandbox)) == 2  # resent on purpose, as staff asked


def test_a_permanent_failure_shows_the_reason_refunds_and_resend_really_sends_and_charges(
    texting_app, business, sandbox, run_jobs
):
    sandbox.set_faults(reject_count=1, reject_status="7")
    message_id = _send(texting_app, business)
    run_jobs()
    (part,) = parts_of(texting_app, message_id)
    assert part["status"] == "failed" and part["err_code"] == "7"
    assert part["reason"] == "The recipient's number is barred from receiving texts."
    assert message_status(texting_app, message_id) == "failed"
    assert part["refunded"] and _left(texting_app, business) == 500  # Vonage never took it
    with texting_app.app_context():
        sending.resend(business["id"], message_id, now=utcnow())
    assert _left(texting_app, business) == 499  # charged again
    run_jobs()
    assert parts_of(texting_app, message_id)[0]["status"] == "sent"
    assert len(accepted(sandbox)) == 1


def test_resend_is_refused_when_nothing_failed(texting_app, business, sandbox, run_jobs):
    message_id = _send(texting_app, business)
    run_jobs()
    with texting_app.app_context(), pytest.raises(ServiceError, match="Nothing to resend"):
        sending.resend(business["id"], message_id, now=utcnow())
    assert _left(texting_app, business) == 499


def test_a_failed_delivery_receipt_fails_the_part_with_the_err_code_explained(
    texting_app, business, sandbox, webhook_catcher, run_jobs, client
):
    catch_receipts(sandbox, webhook_catcher)
    sandbox.set_faults(fail_delivery_count=1, fail_delivery_err_code="6")
    message_id = _send(texting_app, business, "x" * 300)
    run_jobs()
    deliver_receipts(client, webhook_catcher, 2)
    statuses = sorted(p["status"] for p in parts_of(texting_app, message_id))
    assert statuses == ["delivered", "failed"]
    failed = next(p for p in parts_of(texting_app, message_id) if p["status"] == "failed")
    assert failed["reason"] == "The carrier rejected the text as spam."
    assert message_status(texting_app, message_id) == "failed"  # the worst of its parts


# --- The account-wide rate --------------------------------------------------------------------


def test_the_rate_limiter_never_admits_more_than_the_limit_in_any_second_across_threads(
    app, monkeypatch
):
    app.config["VONAGE_SMS_PER_SECOND"] = 5
    admitted: list[float] = []  # when the limiter admitted each send, on its own (Redis) clock
    lock = threading.Lock()
    take_slot = rate_limit.try_acquire_send_slot

    def recorded_take_slot() -> int:
        # The lock only keeps the reading of Redis's clock beside the limiter's decision (at
        # or just after it); the waiting between tries still happens in every thread at once.
        with lock:
            wait_ms = take_slot()
            if wait_ms == 0:
                seconds, microseconds = get_redis().time()
                admitted.append(seconds + microseconds / 1_000_000)
            return wait_ms

    monkeypatch.setattr(rate_limit, "try_acquire_send_slot", recorded_take_slot)

    def worker() -> None:
        with app.app_context():
            for _ in range(4):
                assert rate_limit.acquire_send_slot(max_wait=10)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(admitted) == 16
    admitted.sort()
    for i, start in enumerate(admitted):
        in_window = [t for t in admitted[i:] if t - start < 1.0]
        assert len(in_window) <= 5
    assert admitted[-1] - admitted[0] >= 2.0  # 16 at 5 a second takes over 3 windows


def test_the_sending_rate_setting_defaults_to_30(app):
    assert app.config["VONAGE_SMS_PER_SECOND"] == 30


def test_several_workers_sending_at_once_stay_within_the_account_rate_at_vonage(
    texting_app, business, sandbox
):
    texting_app.config["VONAGE_SMS_PER_SECOND"] = 4
    sandbox.set_faults(throttle_per_second=4)  # Vonage's own limit: it would throttle past it
    message_ids = [_send(texting_app, business, "x" * 400) for _ in range(3)]  # 9 parts

    errors: list[BaseException] = []

    def worker(message_id: int) -> None:
        with texting_app.app_context():
            try:
                sending.send_message(message_id)
            except BaseException as error:  # shown by the assertion below
                errors.append(error)

    threads = [threading.Thread(target=worker, args=(m,)) for m in message_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    times = sorted(r["at"] for r in sends(sandbox))
    assert len(times) == 9  # none throttled, so none asked twice
    for i, start in enumerate(times):
        assert len([t for t in times[i:] if t - start < 1.0]) <= 4
    for message_id in message_ids:
        assert {p["status"] for p in parts_of(texting_app, message_id)} == {"sent"}


def test_the_sweep_queues_again_a_message_whose_job_was_lost(
    texting_app, business, sandbox, run_jobs
):
    from rq import Queue

    message_id = _send(texting_app, business)
    with texting_app.app_context():
        Queue("default", connection=get_redis()).empty()  # the job is lost (Redis restarted)
    run_jobs()
    assert sends(sandbox) == []
    with texting_app.app_context():
        sending.sweep(now=utcnow() + sending.LOST_JOB_AFTER + timedelta(seconds=1))
    run_jobs()
    assert parts_of(texting_app, message_id)[0]["status"] == "sent"
    assert len(accepted(sandbox)) == 1


def test_direct_texts_warn_while_the_number_is_unverified_and_not_once_it_is(
    texting_app, business, make_business, sandbox, run_jobs
):
    with texting_app.app_context():
        assert sending.unverified_warning(business["id"]) is None  # verified
    other = make_business()
    complete_business_info(texting_app, other["id"])
    with texting_app.app_context():
        assert sending.unverified_warning(other["id"]) is None  # no number at all
        texting.activate_two_way_texting(other["id"], user_id=other["owner"][0], now=utcnow())
    run_jobs()
    with texting_app.app_context():
        assert "still being verified" in sending.unverified_warning(other["id"])
    other["client"] = make_client(texting_app, other["id"])
    message_id = _send(texting_app, other)  # sent anyway, from the dedicated number
    run_jobs()
    assert message_status(texting_app, message_id) == "sent"
