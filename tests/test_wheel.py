"""The package as production installs it: the wheel, in a clean virtual environment that has the
locked runtime dependencies and nothing else (no dev tools, which once hid a missing greenlet),
outside the checkout. It migrates, serves pages and sends, so a missing dependency or a file
left out of the wheel fails here."""

import ast
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from service.config import ROOT
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

UV = Path(sys.executable).parent / "uv"  # the dev group's, pinned: see test_one_uv_version
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement)[0]).lower()


def test_every_imported_package_is_declared():
    """Installed today through another package is not enough: declare what the code imports."""
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    imported = set()
    for path in [*(ROOT / "service").rglob("*.py"), *(ROOT / "jobs").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    distributions = packages_distributions()
    third_party = imported - set(sys.stdlib_module_names) - {"service", "jobs"}
    undeclared = {module: distributions.get(module) for module in third_party
                  if not declared & {_name(d) for d in distributions.get(module, [])}}
    assert undeclared == {}


def test_one_uv_version_everywhere():
    """make bootstraps uv, the image and the systemd install build with it, the lock has it:
    one pin for all."""
    pinned = {r.split("==")[1].split()[0] for r in PYPROJECT["dependency-groups"]["dev"]
              if _name(r) == "uv"}
    makefile = re.findall(r"^UV_VERSION\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    dockerfile = re.findall(r"\buv==(\S+)", (ROOT / "deploy" / "Dockerfile").read_text())
    readme = re.findall(r"\buv==([0-9.]+)", (ROOT / "README.md").read_text())
    assert len(pinned) == 1 and set(makefile) == set(dockerfile) == set(readme) == pinned


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([str(UV), "build", "--wheel", "--quiet", "--out-dir", str(dist), str(ROOT)],
                   check=True)
    return next(dist.glob("aftercare-*.whl"))


def test_the_wheel_carries_templates_static_files_translations_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("service/templates/web/auth/login.html", "service/templates/web/error.html",
                     "service/templates/messages/en/sms/window_start.txt",
                     "service/templates/messages/es/email/base.html", "service/static/app.css",
                     "service/translations/es/LC_MESSAGES/messages.mo", "service/migrations/env.py",
                     "service/migrations/script.py.mako", "jobs/worker.py",
                     "service/accounts/common-passwords.txt"):
        assert required in names, required
    versions = {p.name for p in (ROOT / "service" / "migrations" / "versions").glob("*.py")}
    assert versions == {Path(n).name for n in names if n.startswith("service/migrations/versions/")}
    assert not [n for n in names if "__pycache__" in n or n.endswith((".po", ".pot"))]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A new virtual environment with the lock's runtime packages (hash-checked), then the wheel
    without dependencies: what the lock does not list is not there."""
    root = tmp_path_factory.mktemp("clean")
    requirements = root / "requirements.txt"
    subprocess.run([str(UV), "export", "--locked", "--no-dev", "--no-emit-project", "--quiet",
                    "--format", "requirements-txt", "--output-file", str(requirements)],
                   cwd=ROOT, check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    for args in (["-r", str(requirements)], ["--no-deps", str(wheel)]):
        subprocess.run([str(UV), "pip", "install", "--quiet", "--python", str(python), *args],
                       check=True)
    return root / "venv" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body: dict | None = None, **headers) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    if data:
        headers["Content-Type"] = "application/json"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers),
                                    timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for_server(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30  # a process starting: nothing to wait on but its port
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise
            time.sleep(0.1)


@pytest.mark.slow
def test_the_installed_wheel_migrates_serves_pages_and_sends_a_text(venv, tmp_path, fake_twilio):
    port = free_port()
    # No provider settings from the developer's shell; bytecode written (each process then
    # imports what the one before it compiled: half the time of this test).
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
           and not key.startswith(("TWILIO_", "SMTP_"))}
    env.update(
        PATH=f"{venv}:{env['PATH']}", DATABASE_URL=f"sqlite:///{tmp_path / 'aftercare.db'}",
        SECRET_KEY=secrets.token_urlsafe(48), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        WEB_BIND=f"127.0.0.1:{port}", WEB_WORKERS="1", WEB_THREADS="2", LOG_LEVEL="WARNING",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_BASE_URL=fake_twilio.url, SEND_RATE_PER_SECOND="1000")

    def aftercare(*args: str) -> str:
        result = subprocess.run([str(venv / "aftercare"), *args], cwd=tmp_path, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    # The code that runs is the wheel's, not the checkout's.
    where = subprocess.run([str(venv / "python"), "-c", "import service; print(service.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv.parent / "lib"))

    aftercare("db", "upgrade")
    # The demo clinic (quiet hours off, so the texts go at any hour) and its API key.
    key = re.search(r"API key\s+(\S+)", aftercare("demo"))[1]

    processes = []
    try:
        web = subprocess.Popen([str(venv / "gunicorn"), "--config", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                "service:create_app()"], cwd=tmp_path, env=env)
        processes.append(web)
        base = f"http://127.0.0.1:{port}"
        wait_for_server(f"{base}/healthz", web)
        status, page = request(f"{base}/login")
        assert status == 200 and "<form" in page and 'name="csrf_token"' in page
        assert request(f"{base}/static/app.css")[0] == 200
        status, page = request(f"{base}/nowhere", **{"Accept-Language": "es"})  # the compiled .mo
        assert status == 404 and "No encontramos esa página" in page
        status, body = request(f"{base}/api/v1/visits", {
            "external_id": "wheel-1", "channels": ["sms"],
            "client": {"name": "Sam Lee", "phone": "+12025550142", "sms_consent": True,
                       "time_zone": "America/Chicago"}}, Authorization=f"Bearer {key}")
        assert status == 201, body

        worker = subprocess.Popen([str(venv / "aftercare"), "worker"], cwd=tmp_path, env=env)
        processes.append(worker)
        sent = fake_twilio.wait_for(2, timeout=30)  # the demo visit's first text and the API's
        assert {m.to for m in sent} == {"+12025550123", "+12025550142"}
        assert all(m.from_ == FROM_NUMBER and "no exercise" in m.body for m in sent)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(timeout=30) == 0
