"""Live events under gunicorn + gevent + real Redis: publish-to-arrival time over N open streams.

    .venv/bin/python bench/sse_latency.py [--streams 500] [--rounds 20]
        [--redis-url redis://127.0.0.1:6379/14]

Builds a scratch SQLite database with the demo business, starts the app as production runs it
(`gunicorn -k gevent -w 1 wsgi:app`) against the given Redis, signs in, opens N `/events`
streams, then publishes `--rounds` events with `app.services.events.publish` from this process
and times each one's arrival on every stream. In the same run it times a page (`/inbox`) with
no stream and with all N open, and a bare Flask route served by gunicorn + gevent the same
way, as the baseline for one HTTP round trip on this machine. Only the given Redis database's
demo-business stream is written to; nothing is flushed.
Target with 500 streams: median < 50 ms, p99 < 250 ms, and every event on every stream.
"""

from __future__ import annotations

from flask import Flask

# The baseline: gunicorn imports `bench.sse_latency:bare` in its own process.
bare = Flask("bare")


@bare.get("/ping")
def ping() -> str:
    return "pong"


def main() -> int:
    from gevent import monkey

    monkey.patch_all()  # the client side: N streams as greenlets in this process

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
    from pathlib import Path

    import gevent
    import gevent.event
    import requests

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from bench.servers import free_port, wait_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    parser.add_argument("--requests", type=int, default=100, help="page requests per timing")
    args = parser.parse_args()

    def summary(times: list[float]) -> str:
        ordered = sorted(times)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"median {statistics.median(ordered) * 1000:6.1f} ms   "
            f"p99 {p99 * 1000:6.1f} ms   max {ordered[-1] * 1000:6.1f} ms"
        )

    def timed_gets(session: requests.Session, url: str) -> list[float]:
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            response = session.get(url, timeout=10)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
        return times

    scratch = Path(tempfile.mkdtemp(prefix="twoway-sse-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{scratch / 'twoway.db'}",
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": secrets.token_hex(16),
        "SANDBOX": "1",  # the demo business, no Vonage
    }
    os.environ.update(env)  # this process publishes through the same app configuration
    flask_cli = [sys.executable, "-m", "flask", "--app", "wsgi"]
    for command in (["db", "upgrade"], ["seed-demo"]):
        subprocess.run(flask_cli + command, cwd=root, env=env, check=True, capture_output=True)

    port, bare_port = free_port(), free_port()
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        "gevent",
        "-w",
        "1",
        "--log-level",
        "warning",
        "--worker-connections",
        str(max(1000, args.streams * 2)),
        "--graceful-timeout",  # open streams never finish by themselves
        "2",
    ]
    servers = [
        subprocess.Popen(gunicorn + ["--bind", f"127.0.0.1:{port}", "wsgi:app"], cwd=root, env=env),
        subprocess.Popen(
            gunicorn + ["--bind", f"127.0.0.1:{bare_port}", "bench.sse_latency:bare"],
            cwd=root,
            env=env,
        ),
    ]
    streams: list[socket.socket] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/sign-in")
        wait_for(f"http://127.0.0.1:{bare_port}/ping")

        from app import create_app
        from app.cli import DEMO_EMAIL, DEMO_PASSWORD
        from app.extensions import db
        from app.models import User
        from app.services.events import publish

        app = create_app()
        with app.app_context():
            owner = db.session.execute(db.select(User).filter_by(email=DEMO_EMAIL)).scalar_one()
            business_id = owner.business_id
        session = requests.Session()
        form = session.get(f"{base}/sign-in", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
        signed_in = session.post(
            f"{base}/sign-in",
            data={"csrf_token": token, "email": DEMO_EMAIL, "password": DEMO_PASSWORD},
            timeout=10,
        )
        assert signed_in.ok and signed_in.url.endswith("/inbox"), "sign-in failed"
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)

        bare_session = requests.Session()
        bare_times = timed_gets(bare_session, f"http://127.0.0.1:{bare_port}/ping")
        page_alone = timed_gets(session, f"{base}/inbox")

        # The streams: raw sockets, so arrival is stamped the moment the bytes come in.
        arrivals: list[dict[int, float]] = [{} for _ in range(args.streams)]
        ready = [gevent.event.Event() for _ in range(args.streams)]
        marker = re.compile(rb"data: ping-(\d+)\n")

        def follow(n: int) -> None:
            sock = socket.create_connection(("127.0.0.1", port))
            streams.append(sock)
            sock.sendall(
                f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            buffer = b""
            while True:
                chunk = sock.recv(65536)
                now = time.perf_counter()
                if not chunk:
                    return
                scan_from = max(0, len(buffer) - 32)
                buffer += chunk
                if not ready[n].is_set() and b"event: ready" in buffer:
                    ready[n].set()
                for found in marker.finditer(buffer, scan_from):
                    arrivals[n].setdefault(int(found[1]), now)
                buffer = buffer[-64:]

        redis = app.extensions["twoway.redis"]
        database = redis.connection_pool.connection_kwargs.get("db", 0)

        def pubsub_clients() -> set[str]:
            return {
                c["addr"] for c in redis.client_list(_type="pubsub") if int(c["db"]) == database
            }

        subscribers_before = pubsub_clients()  # anything else subscribed in that database
        readers = [gevent.spawn(follow, n) for n in range(args.streams)]
        opening = time.perf_counter()
        for event in ready:
            assert event.wait(30), "a stream did not open within 30 s"
        opened_in = time.perf_counter() - opening

        page_with_streams = timed_gets(session, f"{base}/inbox")
        subscribers = pubsub_clients() - subscribers_before

        published: dict[int, float] = {}
        with app.app_context():
            for round_number in range(args.rounds):
                published[round_number] = time.perf_counter()
                publish(business_id, "bench.ping", f"ping-{round_number}")
                gevent.sleep(0.2)
        gevent.sleep(1)

        latencies = [
            arrived[n] - published[n] for arrived in arrivals for n in published if n in arrived
        ]
        missing = args.streams * args.rounds - len(latencies)
        for reader in readers:
            reader.kill(block=False)

        print(f"streams: {args.streams}   rounds: {args.rounds}   redis: {args.redis_url}")
        print(
            f"all streams opened in {opened_in:.2f} s; "
            f"Redis pub/sub connections they opened: {len(subscribers)}"
        )
        rows = [
            ("bare Flask route (gunicorn+gevent)", bare_times),
            ("/inbox, no stream open", page_alone),
            (f"/inbox, {args.streams} streams open", page_with_streams),
            ("publish -> arrival, every stream", latencies),
        ]
        for label, times in rows:
            print(f"{label:36s} {summary(times)}")
        print(f"events missing: {missing}")
        median = statistics.median(latencies)
        p99 = sorted(latencies)[int(len(latencies) * 0.99)]
        met = median < 0.050 and p99 < 0.250 and missing == 0
        print(f"target median < 50 ms, p99 < 250 ms, none missing: {'met' if met else 'NOT met'}")
        return 0 if met else 1
    finally:
        for sock in streams:
            sock.close()
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
