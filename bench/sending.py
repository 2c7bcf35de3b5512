"""Sustained sending through real Redis, `rq worker` processes and the Vonage sandbox.

    .venv/bin/python bench/sending.py [--parts 5000] [--workers 4] [--rate 30]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/twoway_bench]
        [--redis redis://127.0.0.1:6379/12]

Builds the schema in the database (dropping what is there), starts the sandbox in this process,
saves N one-part transactional texts (each with `send_text`, so each is charged and queued like
a real one), then starts W `rq worker --burst` processes (SimpleWorker) against the same Redis,
database and sandbox. Prints parts a second, the highest count the sandbox saw in any one second
(must not exceed --rate), duplicates (must be 0) and the time from Send to the sandbox receiving
the part (median, p99). Target: the configured rate reached within 10%, no duplicates.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=int, default=30)
    parser.add_argument(
        "--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/twoway_bench"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()

    from sandbox import start_sandbox

    sandbox = start_sandbox(config={"receipt_delay": 0.0})
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
    }
    os.environ.update(env)

    from sqlalchemy import text

    from app import create_app
    from app.extensions import db, get_redis
    from app.models import Business, Client, ClientPhone, Message
    from app.models.types import utcnow
    from app.services import sending

    app = create_app()
    with app.app_context():
        with db.engine.begin() as connection:
            if db.engine.dialect.name == "postgresql":
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        from flask_migrate import upgrade

        upgrade()
        get_redis().flushdb()
        business = Business(name="Bench", country="US", time_zone="UTC", plan="unlimited")
        db.session.add(business)
        db.session.flush()
        clients = []
        for n in range(50):
            client = Client(business_id=business.id, name=f"Client {n}", search_text="")
            db.session.add(client)
            db.session.add(
                ClientPhone(
                    business_id=business.id,
                    client=client,
                    number=f"+1555700{n:04d}",
                    is_primary=True,
                )
            )
            clients.append(client)
        db.session.commit()
        client_ids = [c.id for c in clients]
        print(f"saving {args.parts} texts ...", flush=True)
        queued_at: dict[int, float] = {}
        for n in range(args.parts):
            message = sending.send_text(
                business.id,
                client_ids[n % len(client_ids)],
                f"Reminder {n}: see you tomorrow at 10:30.",
                user_id=None,
                kind="transactional",
                now=utcnow(),
            )
            queued_at[message.id] = time.time()
        refs = dict(
            db.session.execute(text("SELECT client_ref, message_id FROM message_part")).all()
        )

    from app.services.queues import LANES

    print(f"starting {args.workers} rq workers ...", flush=True)
    started = time.time()
    workers = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "rq"),  # this virtualenv's rq
                "worker",
                "--burst",
                # In-process jobs: the default worker forks per job and builds the app in
                # every fork (about a second each); see the note in the report.
                "--worker-class",
                "rq.worker.SimpleWorker",
                "--url",
                args.redis,
                *LANES,  # every lane, in priority order
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.wait()
    finished = time.time()

    requests = sandbox.requests("/sms/json")
    arrivals = sorted(r["at"] for r in requests)
    accepted = Counter(m["client_ref"] for m in sandbox.snapshot()["messages"])
    duplicates = sum(count - 1 for count in accepted.values())
    throttled = len(requests) - sum(accepted.values())
    highest = 0
    j = 0
    for i, start in enumerate(arrivals):
        j = max(j, i)
        while j < len(arrivals) and arrivals[j] - start < 1.0:
            j += 1
        highest = max(highest, j - i)
    first_part = {}
    for r in requests:
        ref = r["client_ref"]
        first_part.setdefault(ref, r["at"])
    latencies = sorted(at - queued_at[refs[ref]] for ref, at in first_part.items() if ref in refs)
    with app.app_context():
        statuses = Counter(db.session.execute(text("SELECT status FROM message_part")).scalars())
        _ = Message
    sent_span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    print(f"parts accepted by the sandbox: {sum(accepted.values())} of {args.parts}")
    print(f"part statuses: {dict(statuses)}")
    print(f"workers ran for {finished - started:.1f} s")
    print(f"parts a second (first to last arrival): {len(arrivals) / sent_span:.1f}")
    print(f"highest in any one second at the sandbox: {highest} (limit {args.rate})")
    print(f"throttled requests: {throttled}")
    print(f"duplicates: {duplicates}")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"send to sandbox (s): median {statistics.median(latencies):.2f}, p99 {p99:.2f} "
            "(all texts were queued before the workers started)"
        )
    sandbox.stop()


if __name__ == "__main__":
    main()
