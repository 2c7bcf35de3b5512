"""Inbound texts under gunicorn + gevent on PostgreSQL and real Redis: webhook throughput, and
the time from the webhook's 2xx to the live event on 500 open streams.

    .venv/bin/python bench/inbound_webhook.py throughput [--rounds 3] [--duration 5]
        [--connections 4] [--threads 1] [--max-rate 5000]
    .venv/bin/python bench/inbound_webhook.py latency [--streams 500] [--texts 50]
        [--senders 10] [--rq-workers 2]
  both: [--web-workers <cores>] [--app wsgi:app]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/bench_inbound]
        [--redis-url redis://127.0.0.1:6379/6]

Both modes rebuild the scratch database from the migrations (dropping what is there), flush the
given Redis database, and make one business with an owner, 60 clients with phones and an
active, verified dedicated number (as two-way texting leaves it). The app runs as production
runs it, `gunicorn -c gunicorn.conf.py wsgi:app` (gevent workers, access log on), with
WEB_CONCURRENCY = the machine's cores unless --web-workers says otherwise. Every request is a
real inbound text as Vonage's SMS API sends it (POST form), signed with the app's
VONAGE_SIGNATURE_SECRET and method by `sandbox.signing.sign_params`, with its own messageId.

throughput: wrk (Debian package `wrk`) posts pre-signed bodies, signed right before each run
    so their timestamps are fresh, each used once (bench/inbound_webhook.lua), at a bare Flask
    route under the same gunicorn settings that does one plain INSERT into the same
    `inbound_part` table (the ceiling) and at `/webhooks/vonage/inbound`: a 3-second warm-up
    of each, then --rounds rounds of --duration seconds on each in turn, so a change in the
    machine's other load falls on both alike. No rq worker runs: the jobs the webhook queues
    wait in Redis, so the 2xx cannot have waited for them. Afterwards the database must hold
    every messageId that got a 2xx exactly once, and nothing that wrk did not post (a request
    wrk had posted when it stopped, whose answer it never counted, may be stored). Also
    printed: the CPU time the gunicorn processes spent per request, steadier than requests/s
    on a busy machine. Target: webhook requests/s >= 0.6 of the bare route's, webhook p99
    < 50 ms, every accepted message stored once. The default 4 connections keep both routes
    at their peak rate on 2 cores; more only queue requests (at 16 the bare route's own p99 is
    80-100 ms and both rates drop), so p99 then measures the queue, not the route.

latency: starts `rq worker` processes (app.worker.Worker, as in production) and signs in as the
    owner, opens N `/events` streams, then sends texts one after another, from S clients in
    turn (each one's first text starts a conversation, the rest go to an existing one), and
    times each from the webhook's 2xx to the arrival of its `message.created` and
    `inbox.changed` events on every stream. Baselines in the same run: a bare Flask route's
    round trip under the same gunicorn settings, and `events.publish` from this process to
    arrival on every stream. Also printed, from RQ's finished jobs: how long each job waited
    for a worker and how long it ran. Target with 500 streams: median < 50 ms, p99 < 250 ms,
    and every event on every stream.

The machine's load average is printed with the figures: other work on it skews them.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script, or imported by gunicorn from the root

from bench.servers import free_port, wait_for  # noqa: E402

# The baselines: gunicorn imports `bench.inbound_webhook:bare` in its own processes.
bare = Flask("bare")
_bare_engine = None


@bare.get("/ping")
def ping() -> str:
    return "pong"


@bare.post("/insert")
def insert_one_row() -> str:
    """The ceiling for a webhook that stores what it got: parse the form, one INSERT, commit."""
    global _bare_engine
    from sqlalchemy import create_engine, text

    if _bare_engine is None:  # the app's engine options, built in the worker after gevent
        _bare_engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
    form = request.form
    with _bare_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO inbound_part (vonage_message_id, sender, to_number, text, type,"
                " received_at) VALUES (:id, :sender, :to, :text, :type, now())"
            ),
            {
                "id": form["messageId"],
                "sender": form["msisdn"],
                "to": form["to"],
                "text": form["text"],
                "type": form["type"],
            },
        )
    return "ok"


SIGNATURE_SECRET = "bench-signature-secret"
SIGNATURE_METHOD = "sha256"
PASSWORD = "bench-password-1"
DEDICATED_NUMBER = "+18005550188"
CLIENTS = 60
INBOUND_PATH = "/webhooks/vonage/inbound"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench_inbound"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--web-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--app", default="wsgi:app", help="what gunicorn serves, e.g. a variant being tried"
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    throughput = modes.add_parser("throughput", help="wrk: webhook beside a one-INSERT route")
    throughput.add_argument("--rounds", type=int, default=3)
    throughput.add_argument("--duration", type=int, default=5, help="seconds per run")
    throughput.add_argument("--connections", type=int, default=4)
    throughput.add_argument("--threads", type=int, default=1, help="wrk threads")
    throughput.add_argument(
        "--max-rate", type=int, default=5000, help="requests/s the signed bodies must cover"
    )
    latency = modes.add_parser("latency", help="webhook 2xx to the event on N open streams")
    latency.add_argument("--streams", type=int, default=500)
    latency.add_argument("--texts", type=int, default=50)
    latency.add_argument("--senders", type=int, default=10, help="clients the texts come from")
    latency.add_argument("--rq-workers", type=int, default=2)
    args = parser.parse_args()

    if args.mode == "latency":
        from gevent import monkey

        monkey.patch_all()  # the client side: N streams as greenlets in this process
    env = {
        **os.environ,
        "DATABASE_URL": args.database,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": "bench-secret-key",
        "VONAGE_SIGNATURE_SECRET": SIGNATURE_SECRET,
        "VONAGE_SIGNATURE_METHOD": SIGNATURE_METHOD,
        "VONAGE_API_KEY": "bench-key",  # production settings: the app refuses sandbox values
        "VONAGE_API_SECRET": "bench-secret",
        "SANDBOX": "0",
        "WEB_CONCURRENCY": str(args.web_workers),
    }
    os.environ.update(env)  # this process builds the database through the same configuration
    scenario = build_scratch(args.database)
    with Processes(env) as processes:
        if args.mode == "throughput":
            return run_throughput(args, scenario, processes)
        return run_latency(args, scenario, processes)


# --- set-up ----------------------------------------------------------------------------------


def build_scratch(database: str) -> dict:
    """Fresh schema from the migrations, an empty Redis database, and one business ready to
    receive texts: owner, clients with phones, an active dedicated number that is verified."""
    from flask_migrate import upgrade
    from sqlalchemy import text
    from werkzeug.security import generate_password_hash

    from app import create_app
    from app.extensions import db, get_redis
    from app.models import Business, Client, ClientPhone, User
    from app.models.texting import DedicatedNumber, Verification
    from app.models.types import utcnow
    from bench.client_search import ensure_database

    ensure_database(database)
    app = create_app()
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        upgrade()
        get_redis().flushdb()
        now = utcnow()
        business = Business(
            name="Bench Dental", country="US", time_zone="UTC", plan="growth", sms_setting="two_way"
        )
        owner = User(
            business=business,
            email="owner@bench.example.com",
            name="Bench Owner",
            role="owner",
            password_hash=generate_password_hash(PASSWORD),
        )
        db.session.add_all([business, owner])
        db.session.flush()
        number = DedicatedNumber(
            business_id=business.id,
            number=DEDICATED_NUMBER,
            country="US",
            status="active",
            activated_at=now,
        )
        db.session.add(number)
        db.session.flush()
        db.session.add(
            Verification(
                business_id=business.id,
                dedicated_number_id=number.id,
                state="verified",
                registration_id="bench-registration",
                raw_status="VERIFIED",
                needs_submission=False,
                submitted_at=now,
                decided_at=now,
                notified_at=now,
                acknowledged_at=now,
            )
        )
        phones = {}
        for n in range(CLIENTS):
            client = Client(business_id=business.id, name=f"Client {n}", search_text="")
            phone = f"+1555700{n:04d}"
            db.session.add(client)
            db.session.add(
                ClientPhone(business_id=business.id, client=client, number=phone, is_primary=True)
            )
            db.session.flush()
            phones[client.id] = phone
        db.session.commit()
        return {"app": app, "business_id": business.id, "email": owner.email, "phones": phones}


def signed_inbound(sender: str, message_id: str, text: str) -> dict[str, str]:
    """An inbound SMS to the dedicated number exactly as Vonage's SMS API posts it, signed."""
    from sandbox.signing import sign_params

    params = {
        "msisdn": sender.lstrip("+"),
        "to": DEDICATED_NUMBER.lstrip("+"),
        "messageId": message_id,
        "text": text,
        "type": "text",
        "keyword": text.split()[0].upper(),
        "message-timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "api-key": os.environ.get("VONAGE_API_KEY", "sandbox-key"),
    }
    return sign_params(params, SIGNATURE_SECRET, SIGNATURE_METHOD)


def new_message_id() -> str:
    """Vonage's messageIds are 16 hex digits."""
    return secrets.token_hex(8).upper()


class Processes:
    """The servers and workers of one run, each logging to a scratch file; all stopped at the
    end, however the run ends."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.scratch = Path(tempfile.mkdtemp(prefix="twoway-inbound-bench-"))
        self.running: list = []
        self.pids: dict[str, list[int]] = {}  # by name: a gunicorn's base URL, or "rq"

    def __enter__(self) -> Processes:
        return self

    def start(self, name: str, command: list[str], **env: str):
        log = open(self.scratch / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            command, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.running.append((process, log))
        return process

    def gunicorn(self, name: str, target: str) -> str:
        """`gunicorn -c gunicorn.conf.py <target>` on a free port; returns its base URL once it
        answers."""
        port = free_port()
        master = self.start(
            name,
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", target],
            BIND=f"127.0.0.1:{port}",
        )
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/ping" if target.startswith("bench.") else f"{base}{INBOUND_PATH}")
        self.pids[base] = [master.pid]
        return base

    def cpu_seconds(self, name: str) -> float:
        """CPU time used so far by the processes started under `name` and their children."""
        started = set(self.pids[name])
        total = 0.0
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # a process that just ended
            fields = stat.rsplit(")", 1)[1].split()  # after the command name
            if int(entry) in started or int(fields[1]) in started:  # the pid, or its parent's
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def rq_workers(self, count: int, redis_url: str) -> None:
        rq = str(Path(sys.executable).parent / "rq")  # this virtualenv's rq
        self.pids["rq"] = [
            self.start(
                f"rq-{n}",
                [rq, "worker", "--worker-class", "app.worker.Worker", "--url", redis_url],
            ).pid
            for n in range(count)
        ]

    def __exit__(self, *exc) -> None:
        for process, _ in self.running:
            process.terminate()
        for process, log in self.running:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
        if exc[0] is None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        else:
            print(f"logs kept in {self.scratch}", file=sys.stderr)


def load_average() -> str:
    return "load average " + " ".join(f"{load:.2f}" for load in os.getloadavg())


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# --- throughput ------------------------------------------------------------------------------


def run_throughput(args, scenario: dict, processes: Processes) -> int:
    senders = list(scenario["phones"].values())
    webhook_base = processes.gunicorn("web", args.app)
    bare_base = processes.gunicorn("bare", "bench.inbound_webhook:bare")

    def wrk(base: str, path: str, seconds: int) -> tuple[dict, set[str], set[str]]:
        """One wrk run over freshly signed bodies, each used at most once; returns wrk's
        figures, the messageIds it posted and those it had left."""
        count = seconds * args.max_rate
        ids = [new_message_id() for _ in range(count)]
        bodies = processes.scratch / "bodies.txt"
        with open(bodies, "w") as out:
            for n, message_id in enumerate(ids):
                text = f"Hi, can I move my appointment to Thursday? ({n})"
                out.write(urlencode(signed_inbound(senders[n % len(senders)], message_id, text)))
                out.write("\n")
        cpu_before = processes.cpu_seconds(base)
        result = run_wrk(base + path, bodies, seconds, args.threads, args.connections)
        result["cpu_s"] = processes.cpu_seconds(base) - cpu_before
        if result["exhausted"]:
            raise SystemExit(f"the signed bodies ran out at {path}: raise --max-rate")
        # wrk thread t posts lines t, t + T, t + 2T, ... of the file, in that order
        posted = {
            message_id
            for t, how_many in enumerate(result["posted_by_thread"])
            for message_id in ids[t :: args.threads][:how_many]
        }
        return result, posted, set(ids) - posted

    # Warm both up, then alternate short runs (bare, webhook, bare, webhook, ...) so a change in
    # the machine's other load falls on both alike.
    targets = {"bare": (bare_base, "/insert"), "webhook": (webhook_base, INBOUND_PATH)}
    rounds: dict[str, list[dict]] = {"bare": [], "webhook": []}
    webhook_runs: list[dict] = []  # the warm-up too: everything it stored is checked
    posted: set[str] = set()
    unposted: set[str] = set()
    for number in range(args.rounds + 1):
        for label, (base, path) in targets.items():
            result, run_posted, run_unposted = wrk(base, path, args.duration if number else 3)
            if number:
                rounds[label].append(result)
            if label == "webhook":
                webhook_runs.append(result)
                posted |= run_posted
                unposted |= run_unposted
    totals = {
        key: sum(run[key] for run in webhook_runs) for key in ("accepted", "refused", "posted")
    }

    # Every 2xx must be a stored row, once; a request wrk had posted when it stopped (its answer
    # never counted) may be stored too; nothing that was not posted may be.
    time.sleep(2)  # the server finishes what was in flight
    stored = stored_message_ids(scenario["app"])
    stored_posted = [message_id for message_id in stored if message_id in posted]
    stored_unposted = sum(1 for message_id in stored if message_id in unposted)
    in_flight = totals["posted"] - totals["accepted"] - totals["refused"]
    rows, distinct = len(stored_posted), len(set(stored_posted))
    once = (
        rows == distinct
        and totals["refused"] == 0
        and stored_unposted == 0
        and totals["accepted"] <= rows <= totals["accepted"] + in_flight
    )
    queued = queued_jobs(scenario["app"])

    print(
        f"gunicorn -c gunicorn.conf.py: gevent, {args.web_workers} workers "
        f"(cores: {os.cpu_count()}); wrk {args.threads} thread(s), {args.connections} "
        f"connections; {args.rounds} rounds of {args.duration} s each, alternating, after a 3 s "
        "warm-up each; no rq worker running"
    )
    print(f"database {args.database}   redis {args.redis_url}   {load_average()}")
    print(
        f"{'':38s}{'requests/s':>11s}{'p50 ms':>9s}{'p99 ms':>9s}{'max ms':>9s}"
        f"{'CPU ms/req':>12s}  non-2xx"
    )
    summary = {label: combined(runs) for label, runs in rounds.items()}
    for label, name in (
        ("bare", "bare Flask route, one INSERT"),
        ("webhook", "inbound webhook, signed POST form"),
    ):
        run = summary[label]
        print(
            f"{name:38s}{run['rate']:11.1f}{run['p50_ms']:9.1f}{run['p99_ms']:9.1f}"
            f"{run['max_ms']:9.1f}{run['cpu_ms']:12.2f}  {run['other']}"
            + (f" socket errors {run['socket_errors']}" if run["socket_errors"] else "")
        )
    print("(requests/s over all rounds; p50: the rounds' median; p99 and max: the worst round)")
    ratio = summary["webhook"]["rate"] / summary["bare"]["rate"]
    p99 = summary["webhook"]["p99_ms"]
    by_round = [
        webhook["rate"] / bare["rate"]
        for webhook, bare in zip(rounds["webhook"], rounds["bare"], strict=True)
    ]
    print(f"per round: {' '.join(f'{r:.2f}' for r in by_round)}")
    print(f"ratio webhook / bare: {ratio:.2f}")
    print(
        f"webhook, warm-up included: posted {totals['posted']}, 2xx {totals['accepted']}, "
        f"other answers {totals['refused']}, no answer counted (in flight when a run stopped, "
        f"or a socket error) {in_flight}"
    )
    print(
        f"stored rows with posted messageIds: {rows}, distinct: {distinct}; with unposted ones: "
        f"{stored_unposted}; jobs waiting in Redis: {queued}"
    )
    met = ratio >= 0.6 and p99 < 50 and once
    print(
        f"target ratio >= 0.6: {ratio:.2f}, p99 < 50 ms: {p99:.1f} ms, every accepted message "
        f"stored once: {'yes' if once else 'NO'} -> {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


def run_wrk(url: str, bodies: Path, seconds: int, threads: int, connections: int) -> dict:
    """Runs wrk with bench/inbound_webhook.lua; returns its BENCH line as numbers."""
    script = Path(__file__).with_suffix(".lua")
    completed = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", str(script)]
        + ["--timeout", "10s", url, "--", str(bodies), str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in completed.stdout.splitlines() if line.startswith("BENCH "))
    fields = dict(field.split("=", 1) for field in line.split()[1:])
    result: dict = {key: int(value) for key, value in fields.items() if value.isdigit()}
    result["other"] = fields["other"]
    result["posted_by_thread"] = [int(n) for n in fields["posted_by_thread"].split(",")]
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def combined(runs: list[dict]) -> dict:
    """The figures of several wrk runs of one route, taken together."""
    requests = sum(run["requests"] for run in runs)
    return {
        "rate": requests / sum(run["duration_us"] / 1e6 for run in runs),
        "p50_ms": statistics.median(run["p50_us"] for run in runs) / 1000,
        "p99_ms": max(run["p99_us"] for run in runs) / 1000,
        "max_ms": max(run["max_us"] for run in runs) / 1000,
        "cpu_ms": sum(run["cpu_s"] for run in runs) * 1000 / requests,
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "other": ",".join(run["other"] for run in runs if run["other"] != "-") or "-",
    }


def stored_message_ids(app) -> list[str]:
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        return list(
            db.session.execute(text("SELECT vonage_message_id FROM inbound_part")).scalars()
        )


def queued_jobs(app) -> int:
    from app.services.queues import get_queue

    with app.app_context():
        return get_queue().count


# --- latency ---------------------------------------------------------------------------------


def job_timings(app, since: float) -> dict[str, tuple[list[float], list[float]]]:
    """From RQ's finished-job registry, per job function: how long each job queued after
    `since` (unix time) waited for a worker, and how long it ran."""
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    from app.services.queues import get_queue

    def unix(moment: datetime) -> float:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

    timings: dict[str, tuple[list[float], list[float]]] = {}
    with app.app_context():
        queue = get_queue()
        ids = FinishedJobRegistry(queue=queue).get_job_ids()
        for job in Job.fetch_many(ids, connection=queue.connection):
            if job is None or unix(job.enqueued_at) < since:
                continue
            waits, runs = timings.setdefault(job.func_name, ([], []))
            waits.append(unix(job.started_at) - unix(job.enqueued_at))
            runs.append(unix(job.ended_at) - unix(job.started_at))
    return timings


def run_latency(args, scenario: dict, processes: Processes) -> int:
    import gevent
    import requests

    from app.services.events import publish

    app = scenario["app"]
    clients = list(scenario["phones"].items())
    warm_ups = 2 * args.rq_workers  # each worker builds the app on its first job
    if args.senders + warm_ups > len(clients):
        raise SystemExit(f"--senders: at most {len(clients) - warm_ups}")
    senders = clients[warm_ups : warm_ups + args.senders]
    base = processes.gunicorn("web", args.app)
    bare_base = processes.gunicorn("bare", "bench.inbound_webhook:bare")
    processes.rq_workers(args.rq_workers, args.redis_url)

    session = requests.Session()
    form = session.get(f"{base}/sign-in", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    signed_in = session.post(
        f"{base}/sign-in",
        data={"csrf_token": token, "email": scenario["email"], "password": PASSWORD},
        timeout=10,
    )
    assert signed_in.ok and "/sign-in" not in signed_in.url, "sign-in failed"
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)

    # The streams: raw sockets, so arrival is stamped the moment the bytes come in. Each stream
    # keeps the arrivals of every (event, key), in order: key is the client id of a message
    # event, the data of a `bench.ping`. A mark (event, key, i) is the i-th of them.
    arrivals: list[dict[tuple[str, str], list[float]]] = [{} for _ in range(args.streams)]
    streams_with: Counter[tuple[str, str, int]] = Counter()  # how many streams have each mark
    frame = re.compile(
        rb"event: (ready|message\.created|inbox\.changed|bench\.ping)\n"
        rb'data: (?:\{[^\n]*"client_id": ?(\d+)[^\n]*\}|(ping-\d+))?'
    )
    sockets: list[socket.socket] = []

    def follow(n: int) -> None:
        sock = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        sockets.append(sock)
        sock.sendall(
            f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        pending = b""
        while chunk := sock.recv(65536):
            now = time.perf_counter()
            *frames, pending = (pending + chunk).split(b"\n\n")
            for found in frame.finditer(b"\n\n".join(frames)):
                key = (found[1].decode(), (found[2] or found[3] or b"").decode())
                times = arrivals[n].setdefault(key, [])
                times.append(now)
                streams_with[(*key, len(times) - 1)] += 1

    def arrival(n: int, mark: tuple[str, str, int]) -> float | None:
        times = arrivals[n].get(mark[:2], [])
        return times[mark[2]] if len(times) > mark[2] else None

    def wait_everywhere(mark: tuple[str, str, int], seconds: float) -> bool:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            if streams_with[mark] == args.streams:
                return True
            gevent.sleep(0.005)
        return False

    def post_text(sender: str) -> float:
        """Posts one signed inbound text; returns when its 2xx arrived."""
        data = signed_inbound(sender, new_message_id(), "Can I move my appointment to 3pm?")
        try:
            response = session.post(f"{base}{INBOUND_PATH}", data=data, timeout=10)
        except requests.ConnectionError:
            # gunicorn closed the idle keep-alive connection as we sent: send it again, as
            # Vonage would (the same messageId, so it is stored once)
            response = session.post(f"{base}{INBOUND_PATH}", data=data, timeout=10)
        answered = time.perf_counter()
        assert 200 <= response.status_code < 300, (response.status_code, response.text)
        return answered

    readers = [gevent.spawn(follow, n) for n in range(args.streams)]
    opening = time.perf_counter()
    if not wait_everywhere(("ready", "", 0), 60):
        raise SystemExit("not every stream opened within 60 s")
    opened_in = time.perf_counter() - opening

    bare_session = requests.Session()
    round_trips = []
    for _ in range(200):
        started = time.perf_counter()
        bare_session.get(f"{bare_base}/ping", timeout=10).raise_for_status()
        round_trips.append(time.perf_counter() - started)

    for client_id, phone in clients[:warm_ups]:
        post_text(phone)
        wait_everywhere(("message.created", str(client_id), 0), 30)

    published: dict[tuple[str, str, int], float] = {}
    with app.app_context():
        for n in range(20):
            published[("bench.ping", f"ping-{n}", 0)] = time.perf_counter()
            publish(scenario["business_id"], "bench.ping", f"ping-{n}")
            wait_everywhere(("bench.ping", f"ping-{n}", 0), 10)
            gevent.sleep(0.05)

    # Text k comes from sender k mod S: the first text of each sender starts a conversation,
    # the others go to one that exists.
    created_at: dict[tuple[str, str, int], float] = {}
    changed_at: dict[tuple[str, str, int], float] = {}
    posts = []
    texts_from = time.time()
    cpu_before = {name: processes.cpu_seconds(name) for name in ("rq", base)}
    for k in range(args.texts):
        client_id, phone = senders[k % len(senders)]
        started = time.perf_counter()
        answered = post_text(phone)
        posts.append(answered - started)
        created_at[("message.created", str(client_id), k // len(senders))] = answered
        changed_at[("inbox.changed", str(client_id), k // len(senders))] = answered
        wait_everywhere(("message.created", str(client_id), k // len(senders)), 10)
        wait_everywhere(("inbox.changed", str(client_id), k // len(senders)), 1)
        gevent.sleep(0.05)
    gevent.sleep(0.5)
    cpu_per_text = {
        name: (processes.cpu_seconds(name) - before) * 1000 / args.texts
        for name, before in cpu_before.items()
    }

    def delays(sent: dict[tuple[str, str, int], float]) -> tuple[list[float], int]:
        """Sent-to-arrival times of the marks on every stream, and how many never came."""
        pairs = [(arrival(n, mark), at) for n in range(args.streams) for mark, at in sent.items()]
        times = [came - at for came, at in pairs if came is not None]
        return times, len(pairs) - len(times)

    publish_times, publish_missing = delays(published)
    created, created_missing = delays(created_at)
    changed, changed_missing = delays(changed_at)
    for reader in readers:
        reader.kill(block=False)
    for sock in sockets:
        sock.close()

    print(
        f"gunicorn -c gunicorn.conf.py: gevent, {args.web_workers} workers (cores: "
        f"{os.cpu_count()}); {args.rq_workers} rq workers; {args.streams} streams opened "
        f"in {opened_in:.2f} s; {args.texts} texts one after another from {len(senders)} "
        "clients"
    )
    print(f"database {args.database}   redis {args.redis_url}   {load_average()}")

    def row(label: str, times: list[float], missing: int | None = None) -> None:
        print(
            f"{label:40s} median {statistics.median(times) * 1000:6.1f} ms   "
            f"p99 {percentile(times, 0.99) * 1000:6.1f} ms   max {max(times) * 1000:6.1f} ms"
            + ("" if missing is None else f"   missing {missing}")
        )

    row("bare Flask route round trip", round_trips)
    row("webhook POST round trip (to its 2xx)", posts)
    row("events.publish -> arrival, every stream", publish_times, publish_missing)
    row("webhook 2xx -> message.created", created, created_missing)
    row("webhook 2xx -> inbox.changed", changed, changed_missing)
    for name, (waits, runs) in sorted(job_timings(app, texts_from).items()):
        row(f"rq {name.rsplit('.', 1)[-1]}: queued -> started", waits, None)
        row(f"rq {name.rsplit('.', 1)[-1]}: started -> ended", runs, None)
    print(
        f"CPU per text: rq workers {cpu_per_text['rq']:.1f} ms; gunicorn (the webhook and the "
        f"events to {args.streams} streams) {cpu_per_text[base]:.1f} ms"
    )
    median, p99 = statistics.median(created), percentile(created, 0.99)
    met = median < 0.050 and p99 < 0.250 and created_missing == 0
    print(
        f"target 2xx -> message.created median < 50 ms: {median * 1000:.1f}, p99 < 250 ms: "
        f"{p99 * 1000:.1f}, none missing -> {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
