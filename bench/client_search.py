"""Client list search with 50,000 clients on PostgreSQL: server time per request.

    .venv/bin/python bench/client_search.py [--clients 50000] [--requests 300]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/twoway_bench]

Builds (or reuses) a database holding one business with N clients, then times the client list
search (name fragments, partial phone digits in several formats, emails, filters) through
the WSGI app in this process, beside a bare Flask route measured in the same run.
Target: p95 under 30 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

FIRST = [
    "Ada",
    "Grace",
    "Maria",
    "Liam",
    "Noah",
    "Olivia",
    "Emma",
    "Sofia",
    "Lucas",
    "Mia",
    "Ethan",
    "Chloe",
    "Zoe",
    "Omar",
    "Priya",
    "Kenji",
    "Fatima",
    "Diego",
    "Hana",
    "Ivan",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Garcia",
    "Smith",
    "Nguyen",
    "Khan",
    "Rossi",
    "Müller",
    "Silva",
    "Kim",
    "Brown",
    "Martin",
    "Lopez",
    "Wilson",
    "Cohen",
    "Okafor",
    "Tanaka",
    "Novak",
]


def ensure_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def seed(app, count: int) -> int:
    from flask_migrate import upgrade

    from app.extensions import db
    from app.models import Business, Client, ClientEmail, ClientPhone, User
    from app.services.phones import phone_search_digits

    with app.app_context():
        upgrade()
        business = db.session.execute(
            db.select(Business).filter_by(name="Bench Clinic")
        ).scalar_one_or_none()
        if business is not None:
            have = db.session.execute(
                db.select(db.func.count(Client.id)).filter_by(business_id=business.id)
            ).scalar()
            if have >= count:
                return business.id
            db.session.execute(
                text(
                    "TRUNCATE client, client_phone, client_email, client_note, "
                    "client_tag RESTART IDENTITY CASCADE"
                )
            )
            db.session.commit()
        else:
            business = Business(
                name="Bench Clinic", country="US", time_zone="America/New_York", plan="unlimited"
            )
            db.session.add(business)
            db.session.add(
                User(
                    business=business,
                    email="bench@example.com",
                    name="Bench",
                    role="owner",
                    password_hash="x",
                )
            )
            db.session.commit()
        rng = random.Random(7)
        started = time.perf_counter()
        for start in range(0, count, 5000):
            batch = range(start, min(count, start + 5000))
            people = []
            for i in batch:
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}"
                number = f"+1555{(i * 7919) % 10_000_000:07d}"  # unique, scattered
                email = f"client{i}@example.com"
                people.append((name, number, email))
            ids = (
                db.session.execute(
                    insert(Client).returning(Client.id),
                    [
                        {
                            "business_id": business.id,
                            "name": name,
                            "sort_name": name.lower(),
                            "source": "import",
                            "is_lead": i % 17 == 0,
                            "search_text": " | ".join(
                                [name.lower(), email, phone_search_digits(number)]
                            ),
                        }
                        for i, (name, number, email) in zip(batch, people, strict=True)
                    ],
                )
                .scalars()
                .all()
            )
            db.session.execute(
                insert(ClientPhone),
                [
                    {
                        "business_id": business.id,
                        "client_id": cid,
                        "number": number,
                        "is_primary": True,
                    }
                    for cid, (_, number, _) in zip(ids, people, strict=True)
                ],
            )
            db.session.execute(
                insert(ClientEmail),
                [
                    {
                        "business_id": business.id,
                        "client_id": cid,
                        "email": email,
                        "is_primary": True,
                    }
                    for cid, (_, _, email) in zip(ids, people, strict=True)
                ],
            )
            db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        print(f"seeded {count:,} clients in {time.perf_counter() - started:.1f} s")
        return business.id


def timed(client, urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url, headers={"HX-Request": "true"})
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/twoway_bench"
    )
    args = parser.parse_args()

    ensure_database(args.database)
    from app import create_app

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": args.database, "SECRET_KEY": "bench", "SANDBOX": True}
    )
    business_id = seed(app, args.clients)
    with app.app_context():
        from app.extensions import db
        from app.models import User
        from app.services import sessions

        user = db.session.execute(db.select(User).filter_by(business_id=business_id)).scalar()
        token = sessions.start(user, remembered=False, user_agent="bench")  # a signed-in session

    rng = random.Random(11)
    queries = []
    for _ in range(args.requests):
        kind = rng.randrange(6)
        if kind == 0:
            queries.append(f"/clients?q={rng.choice(FIRST)[:3].lower()}")
        elif kind == 1:
            queries.append(f"/clients?q={rng.choice(LAST).lower()}+{rng.choice(FIRST).lower()}")
        elif kind == 2:
            queries.append(f"/clients?q={rng.randrange(100, 999)}-{rng.randrange(10, 99)}")
        elif kind == 3:
            queries.append(f"/clients?q=client{rng.randrange(args.clients)}%40")
        elif kind == 4:
            queries.append("/clients?filter=leads")
        else:
            queries.append(f"/clients?q=%28555%29+{rng.randrange(200, 999)}")

    bare = Flask("bare")

    @bare.get("/ping")
    def ping():
        return "pong"

    with app.test_client() as client, bare.test_client() as bare_client:
        with client.session_transaction() as session:
            session["_user_id"] = token
            session["_fresh"] = True
        timed(client, queries[:20])  # warm up connections and caches
        search = timed(client, queries)
        baseline = timed(bare_client, ["/ping"] * args.requests)

    print(f"clients: {args.clients:,}   requests: {args.requests}")
    by_kind: dict[str, list[float]] = {}
    for url, elapsed in zip(queries, search, strict=True):
        kind = (
            "filter"
            if "filter=" in url
            else ("digits" if url[11:12].isdigit() or "%28" in url else "text")
        )
        by_kind.setdefault(kind, []).append(elapsed)
    for kind, times in sorted(by_kind.items()):
        print(f"  search by {kind:7s}   {summary(times)}   ({len(times)} requests)")
    print(f"bare Flask route      {summary(baseline)}")
    print(f"client list search    {summary(search)}")
    p95 = sorted(search)[int(len(search) * 0.95) - 1]
    print(f"target p95 < 30 ms: {'met' if p95 < 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
