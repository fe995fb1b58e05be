"""Urgent latency: red-flag replies during a rate-limited wave.

--count routine texts fall due at once; --replies enrolled clients, one after another, text "my
leg is numb and I can't walk" (a signed webhook over HTTP to gunicorn), the first --first seconds
after the release, then one every --every seconds. For each: from the webhook's 200 to the
on-call alert and to the client's urgent advice arriving at the fake Twilio. The path measured is
the real one: signed webhook -> inbound -> outbox -> `aftercare worker` -> fake Twilio. Each
answer is known by its message id (its status callback carries it) and checked against its
row's recipient and kind.

The wave is not sent to its end (20,000 at 10/s would take 2,000 s): the worker is killed once
every answer has arrived, or --timeout seconds after the last reply (what never came is reported
as unanswered). "Routine texts ahead" counts the wave's texts that reached the fake between a
reply's 200 and its answer; "replied during the wave": the wave was still being sent after
the reply's 200 (else the reply met no backlog).

Baseline (bench/baseline.py): one APScheduler job per message in a SQLAlchemy job store, 16
threads. Its webhook (bench/baseline_web.py) is the project's, then each message the reply queued
is one more job, due now. It has no rate limit, so it runs once, at its own pace, its replies
spaced to fall within its wave; APScheduler 3 is not told of a job another process adds, so its
scheduler is made to look at its store every 0.5 s. Its order at each rate is also shown:
the routine texts it sent ahead of an answer divided by the rate (what that order costs there).
"""

from __future__ import annotations

import bisect
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from bench import baseline
from bench.common import (
    ArrivalTail,
    FakeTwilioProcess,
    due_times,
    engine_for,
    log,
    now,
    percentile,
    print_table,
    release_wave,
    running_worker,
    seed_clinic,
    temp_database,
    vacuum,
    watch,
)
from bench.http import Gunicorn
from bench.wave import BaselineProcesses
from tests.fakes.workers import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, PUBLIC_URL, worker_env

RED_FLAG = "my leg is numb and I can't walk"
ON_CALL = "+12025550111"
TARGET_P99_S = 2.0
WEB = {"WEB_WORKERS": "1", "WEB_THREADS": "2"}  # one reply at a time
BASELINE_POLL_SECONDS = 0.5


def add_arguments(parser) -> None:
    parser.add_argument("--count", type=int, default=20_000, help="routine texts due at once")
    parser.add_argument("--rates", default="10,30,100", help="SEND_RATE_PER_SECOND values")
    parser.add_argument("--replies", type=int, default=20,
                        help="red-flag replies, each from its own enrolled client")
    parser.add_argument("--first", type=float, default=6.0,
                        help="seconds from the wave's release to the first reply")
    parser.add_argument("--every", type=float, default=2.5,
                        help="seconds between replies (less if the wave would end first)")
    parser.add_argument("--timeout", type=float, default=240.0,
                        help="seconds after the last reply that answers are waited for")
    parser.add_argument("--skip-baseline", action="store_true")


@dataclass
class Seeded:
    clients: list[tuple[int, str]]  # (id, phone) of those who reply
    last_routine_id: int


def seed(url: str, count: int, replies: int) -> Seeded:
    """One clinic (no quiet hours) with one on-call phone; `count` routine texts, not yet due."""
    engine = engine_for(url)
    clinic = seed_clinic(engine, count, clients=max(count, replies))
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE clinic SET on_call_phones = '[\"{ON_CALL}\"]' WHERE id = :c"),
                     {"c": clinic})
    with engine.connect() as conn:
        clients = conn.execute(text("SELECT id, phone FROM client ORDER BY id LIMIT :n"),
                               {"n": replies}).all()
        last = conn.execute(text("SELECT coalesce(max(id), 0) FROM message")).scalar_one()
    engine.dispose()
    vacuum(url)
    return Seeded([tuple(c) for c in clients], last)


@dataclass
class Reply:
    client_id: int
    phone: str
    posted: float
    ok_at: float  # the webhook's 200 came back


class Replies:
    """Posts the signed red-flag replies on schedule and watches the fake for their answers."""

    def __init__(self, web_url: str, path: str, seeded: Seeded, tail: ArrivalTail,
                 released: float, count: int):
        self.url, self.signed_url = web_url + path, PUBLIC_URL + path
        self.seeded, self.tail, self.released, self.count = seeded, tail, released, count
        self.validator = RequestValidator(AUTH_TOKEN)
        self.http = requests.Session()
        self.sent: list[Reply] = []
        self.every = 0.0

    def post_all(self, first: float, every: float, alive) -> None:
        for i, (client_id, phone) in enumerate(self.seeded.clients):
            if i == 0:
                _sleep_until(self.released + first)
                self.every = self._spacing(every)
            else:
                _sleep_until(self.sent[0].posted + i * self.every)
            if not alive():
                raise RuntimeError("the sending process died")
            self.sent.append(self._post(client_id, phone))

    def _spacing(self, every: float) -> float:
        """`every`, or less if the wave at its pace so far would end before the last reply."""
        routine = sum(1 for a in self.tail.read()
                      if a.message_id and a.message_id <= self.seeded.last_routine_id)
        pace = routine / max(0.1, time.time() - self.released)
        if 0 < routine < self.count and len(self.seeded.clients) > 1:
            return min(every, 0.8 * (self.count - routine) / pace / len(self.seeded.clients))
        return every

    def _post(self, client_id: int, phone: str) -> Reply:
        form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID,
                "From": phone, "To": FROM_NUMBER, "Body": RED_FLAG}
        signature = self.validator.compute_signature(self.signed_url, form)
        posted = time.time()
        response = self.http.post(self.url, data=form, timeout=30,
                                  headers={"X-Twilio-Signature": signature})
        ok_at = time.time()
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:300]}")
        return Reply(client_id, phone, posted, ok_at)

    def answered(self) -> bool:
        """Each client's phone and the on-call phone (once per reply) received something."""
        phones = {r.phone for r in self.sent}
        seen, on_call = set(), 0
        for a in self.tail.read():
            if a.message_id and a.message_id > self.seeded.last_routine_id:
                seen.add(a.to)
                on_call += a.to == ON_CALL
        return phones <= seen and on_call >= len(self.sent)


def _warm(web: Gunicorn) -> None:
    """gunicorn loads the app at its first request: not the first reply's."""
    requests.get(f"{web.url}/healthz", timeout=60).raise_for_status()


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def measure(url: str, replies: Replies) -> dict:
    """Latencies from each 200 to the first arrival of its alert and of its advice."""
    engine = engine_for(url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT id, client_id, kind, recipient FROM message WHERE id > :last"),
            {"last": replies.seeded.last_routine_id}).all()
    engine.dispose()
    arrivals = replies.tail.read()
    routine = sorted(a.at for a in arrivals
                     if a.message_id and a.message_id <= replies.seeded.last_routine_id)
    first_seen: dict[int, float] = {}
    times_seen: dict[int, int] = {}
    wrong_recipient = 0
    recipients = {row.id: row.recipient for row in rows}
    for a in arrivals:
        if a.message_id in recipients:
            first_seen.setdefault(a.message_id, a.at)
            times_seen[a.message_id] = times_seen.get(a.message_id, 0) + 1
            wrong_recipient += a.to != recipients[a.message_id]
    latency = {"staff_alert": [], "urgent_advice": []}
    ahead = {"staff_alert": [], "urgent_advice": []}
    during_wave = sum(1 for r in replies.sent if routine and routine[-1] > r.ok_at)
    for reply in replies.sent:
        for kind in latency:
            ids = [row.id for row in rows if row.client_id == reply.client_id and row.kind == kind]
            arrived = [first_seen[i] for i in ids if i in first_seen]
            at = min(arrived) if arrived else float("inf")
            latency[kind].append(at - reply.ok_at)
            ahead[kind].append(bisect.bisect_left(routine, at)
                               - bisect.bisect_right(routine, reply.ok_at))
    span = routine[-1] - replies.released if routine else 0
    webhook_ms = [1000 * (r.ok_at - r.posted) for r in replies.sent]
    doc = {"replies": len(replies.sent), "reply_every_s": round(replies.every, 2),
           "unanswered": sum(1 for v in latency["urgent_advice"] + latency["staff_alert"]
                             if v == float("inf")),
           "replied_during_wave": during_wave,
           "duplicates": sum(n - 1 for n in times_seen.values()),
           "wrong_recipient": wrong_recipient,
           "routine_sent": len(routine),
           "routine_per_s": round(len(routine) / span, 1) if span > 0 else None,
           "webhook_p50_ms": round(percentile(webhook_ms, 50), 1),
           "webhook_p99_ms": round(percentile(webhook_ms, 99), 1),
           "latency_s": {k: [_finite(v) for v in values] for k, values in latency.items()},
           "routine_ahead": ahead}
    for kind, name in (("staff_alert", "alert"), ("urgent_advice", "advice")):
        for q in (50, 99):
            doc[f"{name}_p{q}_s"] = _finite(percentile(latency[kind], q))
            doc[f"{name}_ahead_p{q}"] = percentile(ahead[kind], q)
    return doc


def _finite(value: float) -> float | None:
    """Seconds to 3 decimals; an answer that never came is None (JSON has no infinity)."""
    return None if value == float("inf") else round(value, 3)


def project_urgent(workdir: Path, args, rate: int) -> dict:
    with temp_database("urgent") as url:
        log(f"project: seeding {args.count:,} routine texts, {args.replies} repliers")
        seeded = seed(url, args.count, args.replies)
        engine = engine_for(url)
        with FakeTwilioProcess(workdir) as fake:
            env = worker_env(url, fake.url, SEND_RATE_PER_SECOND=rate)
            web = Gunicorn(workdir, "service:create_app()", {**env, **WEB})
            try:
                _warm(web)
                with running_worker(workdir / f"urgent{rate}.log", env) as worker:
                    released = release_wave(engine, margin=0.5).timestamp()
                    log(f"project: {args.count:,} released at {rate}/s; replies from "
                        f"{args.first:.0f} s on")
                    replies = Replies(web.url, "/webhooks/twilio/sms", seeded, ArrivalTail(fake),
                                      released, args.count)
                    replies.post_all(args.first, args.every, worker.alive)
                    watch(replies.answered, args.timeout, worker.alive)
                    errors = worker.errors()
            finally:
                web.stop()
            doc = measure(url, replies)
        engine.dispose()
    return {"rate": rate, "routine_texts": args.count, "worker_errors": errors, **doc}


def baseline_urgent(workdir: Path, args) -> dict:
    with temp_database("urgentbase") as url:
        log(f"baseline: seeding {args.count:,} routine texts and their APScheduler jobs")
        seeded = seed(url, args.count, args.replies)
        engine = engine_for(url)
        due = now()
        baseline.bulk_enqueue(url, [(m, due) for m in sorted(due_times(engine))])
        engine.dispose()
        vacuum(url)
        with FakeTwilioProcess(workdir) as fake:
            env = worker_env(url, fake.url, BASELINE_POLL_SECONDS=BASELINE_POLL_SECONDS)
            web = Gunicorn(workdir, "bench.baseline_web:create_app()", {**env, **WEB})
            try:
                _warm(web)
                with BaselineProcesses(workdir, env, 1) as procs:
                    log(f"baseline: {args.count:,} jobs released; replies from "
                        f"{args.first:.0f} s on")
                    replies = Replies(web.url, "/baseline/webhooks/twilio/sms", seeded,
                                      ArrivalTail(fake), procs.released, args.count)
                    replies.post_all(args.first, args.every, procs.alive)
                    watch(replies.answered, args.timeout, procs.alive)
            finally:
                web.stop()
            doc = measure(url, replies)
    return {"routine_texts": args.count, "errors": procs.errors, **doc}


def _met(doc: dict) -> bool:
    return all(doc[k] is not None and doc[k] <= TARGET_P99_S for k in ("alert_p99_s",
                                                                       "advice_p99_s"))


def run(args) -> dict:
    rates = [int(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-urgent-") as tmp:
        ours = []
        for rate in rates:
            ours.append(project_urgent(Path(tmp), args, rate))
        base = None if args.skip_baseline else baseline_urgent(Path(tmp), args)
    timeout = f"> {args.timeout:.0f} s after the last reply"
    rows = []
    for doc in ours:
        rows.append([f"this project, {doc['rate']}/s", *_cells(doc, timeout),
                     "yes" if _met(doc) else "NO"])
    if base:
        rows.append([f"baseline, no rate limit (its own pace, {base['routine_per_s']}/s)",
                     *_cells(base, timeout), "-"])
        for rate in rates:
            derived = [base[f"{k}_ahead_p{q}"] / rate for k in ("alert", "advice")
                       for q in (50, 99)]
            rows.append([f"baseline's order at {rate}/s (texts ahead / rate)", *derived,
                         base["advice_ahead_p99"], "", ""])
    print_table(
        f"Urgent latency: {args.replies} red-flag replies during a wave of {args.count:,} "
        "routine texts due at once; seconds from the webhook's 200 to arrival at the fake "
        "(PostgreSQL, one worker, gunicorn)",
        ["", "on-call alert p50", "p99", "client's advice p50", "p99",
         "routine texts ahead (p99)", "replied during the wave", f"p99 <= {TARGET_P99_S:.0f} s"],
        rows)
    for doc in ours + ([base] if base else []):
        if doc["unanswered"] or doc["duplicates"] or doc["wrong_recipient"]:
            print(f"  note: {doc.get('rate', 'baseline')}: {doc['unanswered']} answer(s) "
                  f"missing, {doc['duplicates']} duplicate(s), "
                  f"{doc['wrong_recipient']} to a wrong recipient")
    return {"count": args.count, "replies": args.replies, "project": ours, "baseline": base,
            "targets": {"p99_s": TARGET_P99_S},
            "met": {f"p99_at_{d['rate']}_per_s": _met(d) for d in ours}}


def _cells(doc: dict, timeout: str) -> list:
    cells = [doc[f"{k}_p{q}_s"] for k in ("alert", "advice") for q in (50, 99)]
    return [timeout if c is None else c for c in cells] + [
        doc["advice_ahead_p99"], f"{doc['replied_during_wave']} of {doc['replies']}"]
