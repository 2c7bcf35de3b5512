"""Reminders due together: the one way to send later under load, on real PostgreSQL and Redis,
`rq worker` processes and the Vonage sandbox at the account rate.

    .venv/bin/python bench/reminders.py [--reminders 20000] [--businesses 200]
        [--future 1000000] [--workers 4] [--rate 30] [--window SECONDS] [--staff-texts 10]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/twoway_bench]
        [--redis redis://127.0.0.1:6379/12]

Builds the schema in the database (dropping what is there) and flushes the Redis database.
Saves N appointments across B businesses, each with its reminder row due within the window
(default: N / 33.3 per second, so 20,000 reminders are due within ten minutes: more than the
account rate can send, so the rate is what is measured), plus F reminder rows due weeks ahead
(the future rows the due query must not pay for). Then starts W `rq worker --with-scheduler`
processes (Twoway's worker class: its watchman queues the dispatcher when rows are due) and
waits until every reminder has been sent. The sandbox throttles past the account rate, as
Vonage does.

Prints: reminders sent once (duplicates and lost must be 0), the send rate against the limit
(within 10 %), the highest count in any one second at the sandbox, how late reminders reached
the sandbox after their due time, and the due-reminder queries' p95 with F future rows beside a
bare `SELECT 1` on the same connection in the same run (target: p95 under 5 ms).

Lanes (DESIGN.md §10): while the reminders flood the booking lane, S texts that people wait on
(`send_text`, in the first lane) go out spread over the window; it prints how long each took
from `send_text` to the sandbox (a worker's job in hand, then the rate: seconds, never the
reminders' backlog).

A quick check: `--reminders 2000 --businesses 20 --future 100000` (due within a minute).

Each reminder is the real one: `auto_messages.add_auto_message` renders the business's
reminder template and adds a transactional text on the real pipeline, in workers running
production's worker class (`app.worker.Worker`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DUE_PER_SECOND = 20000 / 600  # the load: 20,000 due within ten minutes


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _time_query(raw, sql: str, params: tuple, samples: int) -> list[float]:
    """Milliseconds per execution (each in its own transaction, rolled back), on psycopg."""
    timings = []
    with raw.cursor() as cursor:
        for _ in range(samples):
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            raw.rollback()
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def _send_figures(sandbox, limit: int) -> dict:
    """What the sandbox saw: texts accepted, the rate first to last, the busiest second."""
    requests = sandbox.requests("/sms/json")
    accepted = sandbox.snapshot()["messages"]
    arrivals = sorted(m["at"] for m in accepted)
    highest, j = 0, 0
    for i, start in enumerate(arrivals):
        j = max(j, i)
        while j < len(arrivals) and arrivals[j] - start < 1.0:
            j += 1
        highest = max(highest, j - i)
    span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    rate = (len(arrivals) - 1) / span if span else 0.0
    return {
        "accepted": accepted,
        "rate": rate,
        "against": (rate / limit - 1) * 100,
        "highest": highest,
        "throttled": len(requests) - len(accepted),
    }


def _workers(args, env, *extra: str) -> list[subprocess.Popen]:
    from app.services.queues import LANES

    return [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "rq"),  # this virtualenv's rq
                "worker",
                *extra,
                "--worker-class",
                "app.worker.Worker",
                "--url",
                args.redis,
                *LANES,  # every lane, in priority order, as production's workers
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(args.workers)
    ]


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()  # a warm shutdown: the job in hand finishes
    for worker in workers:
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _bare_sending(app, sandbox, args, env, client_ids: list[int]) -> dict:
    """This machine's ceiling, in the same run: `--baseline` texts saved with `send_text` and
    sent by the same workers, with no scheduling at all."""
    from app.extensions import db
    from app.models import Client
    from app.models.types import utcnow
    from app.services import sending

    print(f"bare sending: {len(client_ids)} texts straight through send_text ...", flush=True)
    with app.app_context():
        for client_id in client_ids:
            sending.send_text(
                db.session.get(Client, client_id).business_id,
                client_id,
                "Reminder: see you tomorrow at 10:30.",
                user_id=None,
                kind="transactional",
                now=utcnow(),
            )
        db.session.remove()
    for worker in _workers(args, env, "--burst"):
        worker.wait()
    return _send_figures(sandbox, args.rate)


def _staff_text(client_id: int, queued: dict[str, float]) -> None:
    """A text someone waits on, in the first lane, in the middle of the flood (in an app
    context). The bench's businesses have no dedicated number: a transactional text with no
    `auto_event` waits in the same lane as a staff reply."""
    from app.extensions import db
    from app.models import Client, MessagePart
    from app.models.types import utcnow
    from app.services import sending

    message = sending.send_text(
        db.session.get(Client, client_id).business_id,
        client_id,
        "Yes, 4 pm today works. See you then!",
        user_id=None,
        kind="transactional",
        now=utcnow(),
    )
    at = time.time()
    for ref in db.session.execute(
        db.select(MessagePart.client_ref).where(MessagePart.message_id == message.id)
    ).scalars():
        queued[ref] = at
    db.session.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reminders", type=int, default=20000)
    parser.add_argument("--businesses", type=int, default=200)
    parser.add_argument("--future", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=int, default=30)
    parser.add_argument("--window", type=float, help="seconds the reminders come due over")
    parser.add_argument("--samples", type=int, default=2000, help="timings per query")
    parser.add_argument(
        "--staff-texts", type=int, default=10, help="texts in the first lane during the flood"
    )
    parser.add_argument(
        "--baseline", type=int, default=1000, help="texts sent bare first (0: none)"
    )
    parser.add_argument(
        "--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/twoway_bench"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    window = args.window if args.window is not None else args.reminders / DUE_PER_SECOND

    from sandbox import start_sandbox

    # Credit for every text (the sandbox's default balance runs out after about 13,000).
    sandbox = start_sandbox(config={"receipt_delay": 0.0, "balance": "1000000"})
    sandbox.set_faults(throttle_per_second=args.rate)  # Vonage's answer past the account rate
    env = {
        **os.environ,
        "DATABASE_URL": args.database,
        "REDIS_URL": args.redis,
        "VONAGE_REST_HOST": sandbox.host_port,
        "VONAGE_API_HOST": sandbox.host_port,
        "VONAGE_PLAIN_HTTP": "1",
        "SANDBOX": "1",  # the sandbox's credentials over plain HTTP
        "VONAGE_SMS_PER_SECOND": str(args.rate),
        "SECRET_KEY": "bench",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
    }
    os.environ.update(env)

    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert, text

    from app import create_app
    from app.extensions import db, get_redis
    from app.models import Appointment, Business, Client, ClientPhone, ScheduledSend
    from app.models.types import utcnow
    from app.services.booking import reminders

    app = create_app()
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            raise SystemExit("this benchmark needs PostgreSQL (--database)")
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        from flask_migrate import upgrade

        upgrade()
        get_redis().flushdb()

        print(f"saving {args.businesses} businesses, {args.reminders} appointments ...", flush=True)
        businesses = [
            Business(name=f"Bench {n}", country="US", time_zone="UTC", plan="unlimited")
            for n in range(args.businesses)
        ]
        db.session.add_all(businesses)
        db.session.commit()
        business_ids = [b.id for b in businesses]
        now = utcnow()
        clients = [
            {
                "business_id": business_ids[n % len(business_ids)],
                "name": f"Client {n}",
                "search_text": "",
                "time_zone": "UTC",
            }
            for n in range(args.reminders)
        ]
        client_ids = list(
            db.session.execute(insert(Client).returning(Client.id), clients).scalars()
        )
        db.session.execute(
            insert(ClientPhone),
            [
                {
                    "business_id": clients[n]["business_id"],
                    "client_id": client_id,
                    "number": f"+1555{n:07d}",
                    "is_primary": True,
                }
                for n, client_id in enumerate(client_ids)
            ],
        )
        # Spread evenly over the window, from tomorrow: moved to a few seconds from now once
        # everything else has been measured.
        first_due = now.timestamp() + 86400
        dues = [
            datetime.fromtimestamp(first_due + window * n / args.reminders, UTC)
            for n in range(args.reminders)
        ]
        appointments = [
            {
                "business_id": clients[n]["business_id"],
                "client_id": client_ids[n],
                "service": "Check-up",
                "starts_at": dues[n] + timedelta(hours=24),
                "duration_minutes": 30,
                "state": "booked",
                "created_at": now,
                "updated_at": now,
            }
            for n in range(args.reminders)
        ]
        appointment_ids = list(
            db.session.execute(
                insert(Appointment).returning(Appointment.id), appointments
            ).scalars()
        )
        db.session.execute(
            insert(ScheduledSend),
            [
                {
                    "business_id": appointments[n]["business_id"],
                    "purpose": reminders.REMINDER,
                    "subject_id": appointment_ids[n],
                    "slot": "reminder-1:24h",
                    "due_at": dues[n],
                    "state": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(args.reminders)
            ],
        )
        db.session.commit()
        print(f"saving {args.future} future reminder rows ...", flush=True)
        db.session.execute(
            text(
                "INSERT INTO scheduled_send (business_id, purpose, subject_id, slot, note,"
                " due_at, state, attempts, created_at, updated_at)"
                " SELECT :first + (g % :count), :purpose, NULL, 'reminder-1:24h', '',"
                "  now() + interval '2 days' + (g % 5000000) * interval '1 second',"
                "  'pending', 0, now(), now()"
                " FROM generate_series(1, :future) AS g"
            ),
            {
                "first": business_ids[0],
                "count": len(business_ids),
                "purpose": reminders.REMINDER,
                "future": args.future,
            },
        )
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()

        # The due queries as the watchman and the dispatcher run them, beside a bare query,
        # at a moment when half the reminders are due.
        claim_sql = (
            "SELECT id FROM scheduled_send WHERE state = 'pending' AND due_at <= %s"
            " ORDER BY due_at LIMIT 20 FOR UPDATE SKIP LOCKED"
        )
        check_sql = (
            "SELECT EXISTS (SELECT 1 FROM scheduled_send WHERE state = 'pending'"
            " AND due_at <= %s LIMIT 1)"
        )
        raw = db.engine.raw_connection()
        moment = datetime.fromtimestamp(first_due + window / 2, UTC)
        with raw.cursor() as cursor:
            cursor.execute("EXPLAIN " + claim_sql, (moment,))
            plan = [row[0] for row in cursor.fetchall()]
        raw.rollback()
        timings = {
            "bare SELECT 1": _time_query(raw, "SELECT 1", (), args.samples),
            "due check (watchman)": _time_query(raw, check_sql, (moment,), args.samples),
            "due claim, 20 rows (dispatcher)": _time_query(raw, claim_sql, (moment,), args.samples),
        }
        raw.close()
        db.session.remove()

    baseline = None
    if args.baseline:
        baseline = _bare_sending(app, sandbox, args, env, client_ids[: args.baseline])
        sandbox.reset()
        sandbox.set_faults(throttle_per_second=args.rate)

    with app.app_context():
        shift = time.time() + 5 - first_due  # the reminders come due from 5 s from now
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE scheduled_send SET due_at = due_at + :shift * interval '1 second'"
                    " WHERE subject_id IS NOT NULL"
                ),
                {"shift": shift},
            )
            connection.execute(
                text("UPDATE appointment SET starts_at = starts_at + :shift * interval '1 second'"),
                {"shift": shift},
            )
        db.session.remove()

    print(f"starting {args.workers} rq workers ...", flush=True)
    workers = _workers(args, env, "--with-scheduler")
    deadline = time.time() + 5 + window + args.reminders / args.rate * 2 + 120
    count_sql = text(
        "SELECT count(*) FILTER (WHERE state = 'pending'),"
        " count(*) FILTER (WHERE state = 'claimed'),"
        " count(*) FILTER (WHERE state = 'done'),"
        " count(*) FILTER (WHERE state NOT IN ('pending', 'claimed', 'done'))"
        " FROM scheduled_send WHERE subject_id IS NOT NULL"
    )
    settled_sql = text(
        "SELECT count(*) FROM message_part p JOIN message m ON m.id = p.message_id"
        " WHERE m.auto_event = 'reminder' AND p.status IN ('sent', 'delivered', 'failed',"
        " 'unknown')"
    )
    staff_queued: dict[str, float] = {}  # client-ref → when send_text returned
    staff_every = max(5.0, window / max(1, args.staff_texts))
    next_staff = time.time() + 5 + staff_every / 2
    try:
        with app.app_context():
            while time.time() < deadline:
                if len(staff_queued) < args.staff_texts and time.time() >= next_staff:
                    _staff_text(client_ids[len(staff_queued)], staff_queued)
                    next_staff += staff_every
                pending, claimed, done, other = db.session.execute(count_sql).one()
                settled = db.session.execute(settled_sql).scalar()
                db.session.rollback()
                print(
                    f"  reminder rows: {pending} pending, {claimed} claimed, {done} done,"
                    f" {other} other; texts settled: {settled}",
                    flush=True,
                )
                if done + other == args.reminders and settled >= done:
                    break
                time.sleep(5)
    finally:
        _stop(workers)

    figures = _send_figures(sandbox, args.rate)
    accepted = figures["accepted"]
    by_ref = Counter(m["client_ref"] for m in accepted)
    to_numbers = Counter(m["to"] for m in accepted if m["client_ref"] not in staff_queued)
    with app.app_context():
        states = Counter(
            db.session.execute(
                text("SELECT state FROM scheduled_send WHERE subject_id IS NOT NULL")
            ).scalars()
        )
        per_appointment = Counter(
            db.session.execute(
                text("SELECT appointment_id FROM message WHERE auto_event = 'reminder'")
            ).scalars()
        )
        due_of = dict(
            db.session.execute(
                text(
                    "SELECT p.client_ref, s.due_at FROM scheduled_send s"
                    " JOIN message_part p ON p.message_id = s.message_id"
                )
            ).all()
        )
        future_left = db.session.execute(
            text(
                "SELECT count(*) FROM scheduled_send WHERE subject_id IS NULL AND state = 'pending'"
            )
        ).scalar()
    lateness = [
        m["at"] - due_of[m["client_ref"]].timestamp() for m in accepted if m["client_ref"] in due_of
    ]
    sent_once = sum(1 for count in per_appointment.values() if count == 1)
    staff_waits = [
        m["at"] - staff_queued[m["client_ref"]] for m in accepted if m["client_ref"] in staff_queued
    ]

    print()
    print(
        f"reminders: {args.reminders} across {args.businesses} businesses, due over"
        f" {window:.0f} s ({args.reminders / window:.1f} a second); {args.future} future"
        f" rows ({future_left} still pending, untouched)"
    )
    print(f"reminder rows: {dict(states)}")
    print(f"texts accepted by the sandbox: {len(accepted)}; reminders sent once: {sent_once}")
    print(
        f"duplicates: {sum(c - 1 for c in by_ref.values())} by client-ref,"
        f" {sum(c - 1 for c in to_numbers.values())} by recipient,"
        f" {sum(c - 1 for c in per_appointment.values())} by appointment;"
        f" lost: {args.reminders - len(per_appointment)}"
    )
    print(
        f"send rate (first to last arrival): {figures['rate']:.1f}/s against a limit of"
        f" {args.rate}/s ({figures['against']:+.1f} %); highest in any one second:"
        f" {figures['highest']}; throttled requests: {figures['throttled']}"
    )
    if baseline is not None:
        print(
            f"  bare sending, same workers, same run ({args.baseline} texts, no scheduling):"
            f" {baseline['rate']:.1f}/s ({baseline['against']:+.1f} %); highest in any one"
            f" second: {baseline['highest']}; throttled: {baseline['throttled']}"
        )
    if lateness:
        print(
            f"due to sandbox (s): median {statistics.median(lateness):.1f},"
            f" p99 {_percentile(lateness, 0.99):.1f}, first {min(lateness):.2f}"
            " (due faster than the account rate: the backlog grows to the end)"
        )
    if staff_queued:
        print(
            f"lanes: {len(staff_waits)} of {len(staff_queued)} first-lane texts sent mid-flood,"
            f" send_text to sandbox (s): median {statistics.median(staff_waits or [0]):.2f},"
            f" max {max(staff_waits or [0]):.2f}"
        )
    print(
        f"due queries with {args.future} future rows and {args.reminders // 2} due"
        f" ({args.samples} runs each):"
    )
    for name, values in timings.items():
        print(
            f"  {name:32} p50 {statistics.median(values):.3f} ms,"
            f" p95 {_percentile(values, 0.95):.3f} ms, p99 {_percentile(values, 0.99):.3f} ms"
        )
    print("  plan: " + " / ".join(line.strip() for line in plan))
    sandbox.stop()


if __name__ == "__main__":
    main()
