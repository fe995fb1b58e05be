"""HTTP through gunicorn (deploy/gunicorn.conf.py: WEB_WORKERS processes x WEB_THREADS threads)
against PostgreSQL, load from wrk on 127.0.0.1 (`make bench` installs it: apt-get install wrk).

- Enrolments: POST /api/v1/visits, a new client each time; requests/s and p50/p99 latency at a
  few connection counts. Baseline: the naive design's enrolment (bench/baseline_web.py: the same
  client and visit, each planned message an APScheduler job in a SQLAlchemyJobStore).
- Inbound webhooks: POST /webhooks/twilio/sms, each signed (X-Twilio-Signature checked), a reply
  "2" from an enrolled client (stored, interpreted, a check-in recorded, an answer queued).
- Reference: GET /healthz (no database): what gunicorn + Flask alone give on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from bench.common import ROOT, log, print_table, ratio, temp_database
from tests.fakes.workers import AUTH_TOKEN, FROM_NUMBER, PUBLIC_URL, wait_until, worker_env

WRK = ROOT / "bench" / "wrk"


def add_arguments(parser) -> None:
    parser.add_argument("--seconds", type=int, default=15, help="each wrk run")
    parser.add_argument("--connections", default="4,8,16", help="wrk connection counts")
    parser.add_argument("--web-workers", type=int, default=None,
                        help="WEB_WORKERS (default: the project's default)")
    parser.add_argument("--web-threads", type=int, default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, workdir: Path, app: str, env: dict):
        self.port = _free_port()
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        self._log = open(self.log_path, "w")
        env = {**env, "WEB_BIND": f"127.0.0.1:{self.port}", "LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(
            [str(Path(os.sys.executable).parent / "gunicorn"), "--config",
             str(ROOT / "deploy" / "gunicorn.conf.py"), app],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._up, timeout=60, what="gunicorn up")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn died: {self.log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def wrk(url: str, script: str | None, args: list[str], connections: int, seconds: int) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        command += ["-s", str(WRK / script)]
    command.append(url)
    if args:
        command += ["--", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    out = done.stdout
    if "Requests/sec:" not in out:
        raise RuntimeError(f"wrk failed: {out[-1500:]} {done.stderr[-1500:]}")
    doc = {}
    for line in out.splitlines():
        if line.startswith("JSON "):
            doc.update(json.loads(line[5:]))
        elif line.startswith("Requests/sec:"):
            doc["requests_per_s"] = float(line.split()[1])
    if "p50_us" not in doc:  # no script: read wrk's own latency distribution
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("50%", "99%"):
                doc[f"p{parts[0][:-1]}_us"] = _us(parts[1])
    doc["connections"] = connections
    return doc


def _us(text: str) -> float:
    for unit, factor in (("us", 1), ("ms", 1000), ("s", 1_000_000)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float("nan")


def _summary(doc: dict) -> dict:
    return {"connections": doc["connections"], "requests_per_s": round(doc["requests_per_s"], 1),
            "p50_ms": round(doc["p50_us"] / 1000, 1), "p99_ms": round(doc["p99_us"] / 1000, 1),
            "non_2xx": doc.get("non_2xx", 0), "timeouts": doc.get("timeouts", 0)}


def _api_key(url: str) -> str:
    from service.accounts import apikeys
    from service.models import Clinic

    engine = sa.create_engine(url)
    with Session(engine) as session:
        clinic = Clinic(name="HTTP Bench Clinic", phone="+12025550100",
                        on_call_phones=["+12025550101"], on_call_emails=["oncall@example.com"])
        session.add(clinic)
        session.commit()
        key = apikeys.issue(session, clinic, "bench")
    engine.dispose()
    return key


def _signed_replies(url: str, path: Path, count: int) -> int:
    """Signed inbound texts ("2": the same) from the enrolled clients, one per line."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        phones = conn.execute(sa.text(
            "SELECT phone FROM client WHERE phone IS NOT NULL ORDER BY id")).scalars().all()
    engine.dispose()
    validator = RequestValidator(AUTH_TOKEN)
    webhook = f"{PUBLIC_URL}/webhooks/twilio/sms"
    with open(path, "w") as f:
        for i in range(count):
            form = {"MessageSid": f"SM{time.time_ns() % 10**12:012d}{i:020d}",
                    "From": phones[i % len(phones)], "To": FROM_NUMBER, "Body": "2"}
            f.write(f"{urlencode(form)}\t{validator.compute_signature(webhook, form)}\n")
    return len(phones)


def _enrolments(workdir: Path, app: str, path: str, args, tag: str) -> list[dict]:
    results = []
    with temp_database(f"http{tag}") as url:
        key = _api_key(url)
        if tag == "baseline":
            from bench import baseline

            baseline.create_job_store(url)
        # Throughput, not the rate limit, is measured: a limit no run reaches (each request is
        # still counted, so its cost is in the figures).
        env = worker_env(url, "http://127.0.0.1:9", API_RATE_PER_MINUTE=10**9)
        if args.web_workers:
            env["WEB_WORKERS"] = str(args.web_workers)
        if args.web_threads:
            env["WEB_THREADS"] = str(args.web_threads)
        server = Gunicorn(workdir, app, env)
        try:
            wrk(server.url, "enrol.lua", [path, key, f"warm{tag}"], 4, 3)  # warm up
            for c in [int(n) for n in args.connections.split(",")]:
                log(f"{tag}: enrolments with {c} connections")
                results.append(_summary(wrk(server.url, "enrol.lua", [path, key, f"{tag}{c}"],
                                            c, args.seconds)))
            if tag == "project":
                replies = workdir / "replies.txt"
                clients = _signed_replies(url, replies, 60_000)
                log(f"{tag}: signed webhooks from {clients:,} clients")
                for c in [int(n) for n in args.connections.split(",")]:
                    doc = _summary(wrk(server.url, "replay.lua",
                                       ["/webhooks/twilio/sms", str(replies)], c, args.seconds))
                    results.append({"webhooks": True, **doc})
                for c in [int(n) for n in args.connections.split(",")]:
                    doc = _summary(wrk(f"{server.url}/healthz", None, [], c, args.seconds))
                    results.append({"healthz": True, **doc})
        except Exception:
            log(f"gunicorn's log: {server.log_path.read_text()[-3000:]}")
            raise
        finally:
            server.stop()
    return results


def run(args) -> dict:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        ours = _enrolments(Path(tmp), "service:create_app()", "/api/v1/visits", args, "project")
        base = _enrolments(Path(tmp), "bench.baseline_web:create_app()", "/baseline/visits",
                           args, "baseline")
    enrol_ours = [r for r in ours if not r.get("webhooks") and not r.get("healthz")]
    hooks = [r for r in ours if r.get("webhooks")]
    health = [r for r in ours if r.get("healthz")]
    rows = []
    for o, b in zip(enrol_ours, base, strict=True):
        rows.append([f"enrolments, {o['connections']} connections", o["requests_per_s"],
                     o["p50_ms"], o["p99_ms"], b["requests_per_s"], b["p50_ms"], b["p99_ms"],
                     ratio(o["requests_per_s"], b["requests_per_s"]), ">= 300/s, p99 <= 100 ms"])
    for h in hooks:
        rows.append([f"signed webhooks, {h['connections']} connections", h["requests_per_s"],
                     h["p50_ms"], h["p99_ms"], "", "", "", "", ""])
    for h in health:
        rows.append([f"GET /healthz (reference), {h['connections']} c.", h["requests_per_s"],
                     h["p50_ms"], h["p99_ms"], "", "", "", "", ""])
    print_table("HTTP through gunicorn on PostgreSQL (wrk on 127.0.0.1)",
                ["", "req/s", "p50 ms", "p99 ms", "baseline req/s", "p50", "p99",
                 "ratio", "target"], rows)
    met = any(o["requests_per_s"] >= 300 and o["p99_ms"] <= 100 and not o["non_2xx"]
              for o in enrol_ours)
    return {"enrolments": enrol_ours, "baseline_enrolments": base, "webhooks": hooks,
            "healthz": health, "targets": {"enrolments_per_s": 300, "p99_ms": 100},
            "met": {"enrolments": met}}
