"""The staff dashboard at volume (issue 16 item 3): server time and page weight of GET / for a
clinic with 1,000 open escalations, beside a baseline run of the same clinic with 10 open, in the
same run. Both clinics have the same clients, visits, replies and failed deliveries; only the
number of open escalations differs, so the ratio is what the escalations cost.

Server time is the app's own (Flask's test client in this process, against PostgreSQL): what a
request costs the server, without a network. Bytes are the HTML as sent, and gzipped for
reference.
"""

from __future__ import annotations

import gzip
import re
import statistics
import time

import sqlalchemy as sa
from sqlmodel import Session

from bench.common import create_clinic, engine_for, log, print_table, ratio, seed_clients, temp_database
from service import create_app
from service.models import Clinic
from tests.fakes.workers import PUBLIC_URL, SECRET_KEY
from tests.web_helpers import log_in, make_staff


def add_arguments(parser) -> None:
    parser.add_argument("--open", type=int, default=1000, help="open escalations")
    parser.add_argument("--baseline", type=int, default=10, help="open escalations, baseline")
    parser.add_argument("--clients", type=int, default=1200, help="clients of the clinic")
    parser.add_argument("--requests", type=int, default=30, help="timed GET / per run")


def seed(engine: sa.Engine, clients: int, open_escalations: int) -> int:
    """A clinic with `clients` clients (each a visit 12 h ago), a reply from 50 of them today,
    20 failed texts, and `open_escalations` open escalations, one in 7 urgent."""
    clinic = create_clinic(engine)
    seed_clients(engine, clinic, clients)
    with engine.begin() as conn:
        params = {"clinic": clinic, "n": open_escalations}
        conn.execute(sa.text("""
            INSERT INTO escalation (clinic_id, client_id, severity, status, reasons, opened_at,
                                    notify_count)
            SELECT :clinic, id, CASE WHEN id % 7 = 0 THEN 'urgent' ELSE 'concern' END, 'open',
                   CAST(CASE WHEN id % 7 = 0 THEN '["red flag: new leg weakness", "pain 8/10"]'
                             ELSE '["said worse"]' END AS json),
                   timezone('utc', now()) - make_interval(mins => id % 600), id % 4
            FROM client WHERE clinic_id = :clinic ORDER BY id LIMIT :n"""), params)
        conn.execute(sa.text("""
            INSERT INTO inbound_message (provider_sid, clinic_id, client_id, from_number,
                                         to_number, body, intent, received_at)
            SELECT 'SMbench' || :clinic || '-' || id, :clinic, id, phone, '+12025550100',
                   'a bit sore today', 'answer', timezone('utc', now()) - interval '1 minute'
            FROM client WHERE clinic_id = :clinic ORDER BY id LIMIT 50"""), params)
        conn.execute(sa.text("""
            INSERT INTO message (clinic_id, client_id, kind, priority, params, channel, recipient,
                                 due_at, status, attempts, next_attempt_at, dedupe_key,
                                 error_code, created_at)
            SELECT :clinic, id, 'checkin', 1, '{}', 'sms', phone,
                   timezone('utc', now()) - interval '1 hour', 'failed', 1,
                   timezone('utc', now()) - interval '1 hour', 'bench-failed:' || id, '30006',
                   timezone('utc', now())
            FROM client WHERE clinic_id = :clinic ORDER BY id LIMIT 20"""), params)
    return clinic


def measure(url: str, clinic_id: int, requests: int) -> dict:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "PUBLIC_BASE_URL": PUBLIC_URL,
                      "AFTERCARE_ENV": "production", "SMTP_HOST": None,
                      "TWILIO_ACCOUNT_SID": None, "TWILIO_FROM_NUMBER": None})
    engine = app.extensions["aftercare.engine"]
    with Session(engine) as session:
        user = make_staff(session, session.get(Clinic, clinic_id), f"bench{clinic_id}@clinic.example")
        email = user.email
    web = app.test_client()
    assert log_in(web, email).status_code == 302, "the bench's staff member could not log in"
    for _ in range(3):  # warm: templates compiled, connections open
        web.get("/")
    seconds, body = [], b""
    for _ in range(requests):
        started = time.perf_counter()
        response = web.get("/")
        seconds.append(time.perf_counter() - started)
        body = response.get_data()
    engine.dispose()
    html = body.decode()
    return {
        "status": response.status_code,
        "rows_shown": html.count('data-testid="escalation"'),
        "counts": dict(re.findall(r'data-testid="count-(\w+)"[^>]*>\s*<strong>(\d+)</strong>', html)),
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(sorted(seconds)[max(0, int(len(seconds) * 0.95) - 1)] * 1000, 1),
        "bytes": len(body),
        "gzip_bytes": len(gzip.compress(body)),
    }


def one_run(clients: int, open_escalations: int, requests: int) -> dict:
    with temp_database("dashboard") as url:
        engine = engine_for(url)
        clinic = seed(engine, clients, open_escalations)
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
        engine.dispose()
        return {"open": open_escalations, **measure(url, clinic, requests)}


def run(args) -> dict:
    log(f"dashboard: {args.clients} clients, {args.open} open escalations vs {args.baseline}")
    baseline = one_run(args.clients, args.baseline, args.requests)
    volume = one_run(args.clients, args.open, args.requests)
    print_table(f"GET / (the dashboard), {args.requests} requests each, server time in-process",
                ["open escalations", "rows shown", "median ms", "p95 ms", "bytes", "gzip bytes"],
                [[doc["open"], doc["rows_shown"], doc["median_ms"], doc["p95_ms"], doc["bytes"],
                  doc["gzip_bytes"]] for doc in (baseline, volume)])
    print(f"{args.open} open vs {args.baseline}: time {ratio(volume['median_ms'], baseline['median_ms'])}, "
          f"bytes {ratio(volume['bytes'], baseline['bytes'])}")
    return {"clients": args.clients, "requests": args.requests, "baseline": baseline,
            "volume": volume}
