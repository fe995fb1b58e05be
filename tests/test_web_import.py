"""Clients from a CSV on the web (issue 16 item 8): the CLI's reading and report
(care/client_import.py), a dry run that writes nothing, then a confirm step that imports the
upload kept signed in the form; capped in size, owners only, audited."""

import io
import re

from sqlmodel import select

from service.models import AuditEvent, Client
from service.web.staff import imports
from tests.web_helpers import csrf_token, log_in, make_staff

GOOD_AND_BAD = ("name,phone,email,language\n"
                "Ana Ruiz,(202) 555-0181,,es\n"
                "Bo Chen,,bo@example.com,en\n"
                "No Contact,,,en\n"
                "Cy Bad,12,,fr\n")


def web_as(app, session, clinic, role="owner"):
    make_staff(session, clinic, f"{role}@clinic.example", role=role)
    web = app.test_client()
    log_in(web, f"{role}@clinic.example")
    return web


def upload(web, text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return web.post("/clients/import", content_type="multipart/form-data",
                    data={"csrf_token": csrf_token(web.get("/clients/import")),
                          "file": (io.BytesIO(data), "clients.csv")})


def signed(response) -> str:
    return re.search(r'name="upload" value="([^"]+)"', response.get_data(as_text=True))[1]


def clients(session) -> list[str]:
    session.expire_all()
    return sorted(c.name for c in session.exec(select(Client)).all())


def test_a_dry_run_reports_every_bad_row_and_writes_nothing_then_confirm_imports(app, session, clinic):
    web = web_as(app, session, clinic[0])
    report = upload(web, GOOD_AND_BAD)
    page = report.get_data(as_text=True)
    assert report.status_code == 200 and "Dry run" in page
    assert "line 4: phone: a phone or an email is required" in page
    assert "line 5: phone:" in page and "line 5: language:" in page
    assert "2 row(s) can be imported" in page
    assert clients(session) == []  # nothing written
    assert not session.exec(select(AuditEvent).where(AuditEvent.action == "clients_imported")).all()

    done = web.post("/clients/import/confirm", data={"csrf_token": csrf_token(report),
                                                      "upload": signed(report)})
    assert done.status_code == 302
    assert clients(session) == ["Ana Ruiz", "Bo Chen"]
    ana = session.exec(select(Client).where(Client.name == "Ana Ruiz")).one()
    assert ana.clinic_id == clinic[0].id and ana.phone == "+12025550181" and ana.language == "es"
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "clients_imported")).one()
    assert event.detail == {"count": 2, "skipped": 2} and event.clinic_id == clinic[0].id
    assert "Imported 2 client(s), skipped 2 bad row(s)." in web.get("/clients/import").get_data(as_text=True)


def test_an_altered_or_foreign_upload_is_refused(app, session, clinic):
    web = web_as(app, session, clinic[0])
    report = upload(web, "name,email\nDee,dee@example.com\n")
    token = signed(report)
    for bad in (token[:-2] + "xx", ""):
        refused = web.post("/clients/import/confirm", data={"csrf_token": csrf_token(report),
                                                             "upload": bad})
        assert refused.status_code == 422 and "upload: expired or altered" in refused.get_data(as_text=True)
    with app.app_context():
        other = imports._signer().dumps({"clinic": clinic[0].id + 1, "csv": "name,email\nE,e@x.io\n"})
    refused = web.post("/clients/import/confirm", data={"csrf_token": csrf_token(report),
                                                         "upload": other})
    assert refused.status_code == 422 and "another clinic" in refused.get_data(as_text=True)
    assert clients(session) == []


def test_a_bad_file_is_a_422_naming_it_and_a_big_one_a_413(app, session, clinic):
    web = web_as(app, session, clinic[0])
    header = upload(web, "nom,phone\nAna,2025550181\n")
    assert header.status_code == 422 and "unknown column &#39;nom&#39;" in header.get_data(as_text=True)
    assert upload(web, b"name\n\xff\xfe\n").status_code == 422
    big = upload(web, "name,email\n" + "A,a@example.com\n" * (imports.MAX_BYTES // 16 + 1))
    assert big.status_code == 413 and "larger than 200,000 bytes" in big.get_data(as_text=True)
    assert clients(session) == []


def test_only_owners_import(app, session, clinic):
    for role in ("clinician", "front_desk", "read_only"):
        web = web_as(app, session, clinic[0], role)
        assert web.get("/clients/import").status_code == 403
        assert web.post("/clients/import/confirm", data={"upload": "x"}).status_code in (400, 403)
