"""Fixtures: each test reads as a short spec.

`backend` is "sqlite" unless a test parametrizes it (see BOTH_BACKENDS). The schema is always
built by the migrations: once per run into a template (SQLite file copy, PostgreSQL truncation
between tests).
"""

import os
import shutil
from datetime import UTC, datetime

import freezegun
import jinja2
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from freezegun import freeze_time
from sqlmodel import Session
from werkzeug.routing import Rule

from service import create_app, db
from service.accounts import apikeys, passwords
from service.models import Clinic
from tests.fakes.smtp_server import FakeSMTP
from tests.fakes.twilio import FakeTwilio
from tests.fakes.workers import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, PUBLIC_URL, SECRET_KEY
from tests.web_helpers import log_in, make_staff

PG_URL = os.environ.get(
    "AFTERCARE_TEST_PG_URL",
    "postgresql+psycopg://aftercare:aftercare@127.0.0.1:5432/aftercare_test",
)
BOTH_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

# Every setting a developer's shell might carry is pinned, so tests never reach a real provider;
# the app runs as in production (a SECRET_KEY long enough to start with).
NO_PROVIDERS = {
    "TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None, "TWILIO_API_KEY_SID": None,
    "TWILIO_API_KEY_SECRET": None, "TWILIO_FROM_NUMBER": None,
    "TWILIO_MESSAGING_SERVICE_SID": None, "TWILIO_API_BASE_URL": None, "SMTP_HOST": None,
    "PUBLIC_BASE_URL": PUBLIC_URL, "SECRET_KEY": SECRET_KEY,
    "SEND_RATE_PER_SECOND": 10_000.0, "AFTERCARE_ENV": "production",
}


# freezegun looks through every loaded module each time a test freezes the clock: about 40 ms
# with this suite's 1,800 modules, and a test freezes it several times. These libraries never
# read the clock for the code under test (most only drive tests or browsers): it skips them.
freezegun.configure(extend_ignore_list=[
    "playwright", "greenlet", "pyee", "schemathesis", "hypothesis_jsonschema", "jsonschema",
    "pygments", "requests", "urllib3", "charset_normalizer", "idna", "certifi", "mako", "yaml",
    "phonenumbers"])


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    """argon2 at its lowest cost: production's takes 0.1-1 s of CPU a hash, and hundreds of tests
    make staff and log in. The timing test that needs the real cost asks for
    `real_password_hashing`."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", cheap)
        yield


@pytest.fixture(scope="session", autouse=True)
def url_rules_built_once():
    """Each test builds its own app, and werkzeug writes and compiles Python source for every URL
    rule of every app: about 45 ms an app, 90% of create_app, a minute and a half of a run. The
    same rule always compiles to the same builder, so the run keeps the first (test-only:
    production builds one app). A werkzeug without this private method gets no shortcut."""
    original = getattr(Rule, "_compile_builder", None)
    if original is None:
        yield
        return
    built = {}

    def compile_once(rule, append_unknown=True):
        key = (rule.rule, repr(rule._trace), repr(sorted((rule.defaults or {}).items())),
               append_unknown)
        if key not in built:
            built[key] = original(rule, append_unknown)
        return built[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Rule, "_compile_builder", compile_once)
        yield


@pytest.fixture
def real_password_hashing(monkeypatch):
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "aftercare.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url():
    """A database of this run's own, migrated once, dropped at the end. Unreachable server:
    skip with the reason, or fail when CI is set."""
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"aftercare_run_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        reason = f"PostgreSQL test server unreachable at {PG_URL} (run `make pg-up`): {exc.orig}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db.upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def database_url(request, backend, tmp_path):
    if backend == "sqlite":
        path = tmp_path / "aftercare.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = conn.execute(sa.text(
            "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'")).scalar()
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url):
    """The app's settings; tests add to it before asking for `app`."""
    return {**NO_PROVIDERS, "DATABASE_URL": database_url}


@pytest.fixture(scope="session")
def page_bytecode(tmp_path_factory):
    """Each test builds its own app, and each app's Jinja would compile every page it renders
    again (about 50 ms a page): Jinja's own bytecode cache, keyed by the template's source, lets
    the run compile each page once."""
    return jinja2.FileSystemBytecodeCache(str(tmp_path_factory.mktemp("pages")))


def make_test_app(settings: dict, page_bytecode):
    app = create_app(settings)
    app.jinja_env.bytecode_cache = page_bytecode
    return app


@pytest.fixture
def app(request, settings, page_bytecode):
    if "providers" in request.fixturenames:  # the fakes' addresses must be in the settings first
        request.getfixturevalue("providers")
    app = make_test_app({**settings, "TESTING": True}, page_bytecode)
    yield app
    app.extensions["aftercare.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


DAYTIME = datetime(2026, 6, 10, 14, 7, tzinfo=UTC)  # a Wednesday, 10:07 in New York


@pytest.fixture
def daytime():
    """The clock at DAYTIME, ticking: a test that sends is never in quiet hours, whatever the
    hour it runs at."""
    with freeze_time(DAYTIME, tick=True) as frozen:
        yield frozen


@pytest.fixture
def owner_web(client, session, clinic):
    """The test client, logged in as the clinic's owner."""
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    assert log_in(client, owner.email).status_code == 302
    return client


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    with Session(app.extensions["aftercare.engine"], expire_on_commit=False) as s:
        yield s


def make_clinic(session, name="Back Walk Clinic", **fields) -> tuple[Clinic, str]:
    clinic = Clinic(name=name, phone="+12025550100", time_zone="America/New_York",
                    on_call_phones=["+12025550101"], on_call_emails=["oncall@example.com"],
                    **fields)
    session.add(clinic)
    session.commit()
    return clinic, apikeys.issue(session, clinic, "tests")


@pytest.fixture
def clinic(session):
    """A clinic and a valid API key for it."""
    return make_clinic(session)


@pytest.fixture
def fake_twilio():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def fake_smtp():
    with FakeSMTP() as fake:
        yield fake


@pytest.fixture
def providers(settings, fake_twilio, fake_smtp):
    """Real Twilio client code and a real SMTP conversation, against fakes on 127.0.0.1."""
    settings.update(
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_BASE_URL=fake_twilio.url, SMTP_HOST=fake_smtp.host, SMTP_PORT=fake_smtp.port,
        SMTP_TLS="none", SMTP_SENDER="Clinic <care@clinic.example>", SEND_TIMEOUT_SECONDS=2.0,
    )
    return fake_twilio, fake_smtp


@pytest.fixture
def dispatcher(app):
    """The worker's dispatch job, run on demand instead of on a tick."""
    from service.messaging.dispatch import Dispatcher

    return Dispatcher(app.extensions["aftercare.config"], app.extensions["aftercare.engine"],
                      worker_id="test-worker")


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}
