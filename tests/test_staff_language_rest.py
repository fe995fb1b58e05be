"""The last English on staff pages follows the browser's language too: an escalation's stored
reasons and red-flag words, a failed message's status, the maintenance suggestion, the password
policy, the API key scopes and the client details form's field errors. English by default."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from service.accounts import tokens
from service.domain.escalation import assess
from service.domain.replies import NUMBNESS
from service.models import CheckIn, Client, Escalation, Message, utcnow
from tests.web_helpers import PASSWORD, csrf_token, make_staff

SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}

pytestmark = pytest.mark.usefixtures("daytime")






@pytest.fixture
def ana(session, clinic):
    """Ana said worse, 8/10 (3 up from her baseline), with numbness, on the web today: an open
    urgent escalation with the domain's reasons and an older free-text one; a check-in failed."""
    here = clinic[0]
    person = Client(clinic_id=here.id, name="Ana Ruiz", time_zone="America/New_York",
                    phone="+12025550123", baseline_pain=5)
    session.add(person)
    session.flush()
    reasons = assess("worse", 8, (NUMBNESS,), 5).reasons
    session.add(Escalation(clinic_id=here.id, client_id=person.id, severity="urgent", status="open",
                           reasons=[*reasons, "called the desk crying"], opened_at=utcnow()))
    session.add(CheckIn(client_id=person.id, answer="worse", pain=8, red_flags=[NUMBNESS],
                        source="web", created_at=utcnow()))
    due = utcnow() - timedelta(hours=2)
    session.add(Message(clinic_id=here.id, client_id=person.id, kind="checkin", channel="sms",
                        recipient="+12025550123", due_at=due, next_attempt_at=due, status="failed",
                        dedupe_key="failed:1"))
    session.commit()
    return person


SPANISH_REASONS = ("señal de alarma: entumecimiento u hormigueo; dijo que está peor; dolor 8/10; "
                   "dolor 3 puntos por encima de su nivel inicial de 5; called the desk crying")
ENGLISH_REASONS = ("red flag: numbness or tingling; said worse; pain 8/10; "
                   "pain up 3 from baseline 5; called the desk crying")


def test_the_dashboard_s_reasons_red_flags_and_failed_status_are_in_spanish(owner_web, ana):
    page = owner_web.get("/", headers=SPANISH).get_data(as_text=True)
    assert f'<span class="reason">{SPANISH_REASONS}</span>' in page
    assert "<strong class=\"error\">señal de alarma: entumecimiento u hormigueo</strong>" in page
    assert "peor, dolor 8/10" in page
    assert '<span class="badge failed">fallido</span>' in page
    for english in ("numbness", "said worse", "baseline", ">failed<", "red flag"):
        assert english not in page, english


def test_the_client_page_s_reasons_are_in_spanish(owner_web, ana):
    page = owner_web.get(f"/clients/{ana.id}", headers=SPANISH).get_data(as_text=True)
    assert f"<p>{SPANISH_REASONS}</p>" in page


def test_the_reasons_stay_english_by_default(owner_web, ana):
    """Stored in English as before (exports, alerts and the API read them), shown so by default."""
    assert list(assess("worse", 8, (NUMBNESS,), 5).reasons) == ENGLISH_REASONS.split("; ")[:4]
    page = owner_web.get("/").get_data(as_text=True)
    assert f'<span class="reason">{ENGLISH_REASONS}</span>' in page
    assert "<strong class=\"error\">red flag: numbness or tingling</strong>" in page
    assert '<span class="badge failed">failed</span>' in page
    assert f"<p>{ENGLISH_REASONS}</p>" in owner_web.get(f"/clients/{ana.id}").get_data(as_text=True)


# --- the password policy ---

def test_the_password_policy_is_in_spanish_wherever_a_password_is_set(app, owner_web, session, clinic):
    page = owner_web.get("/account/password", headers=SPANISH)
    short = owner_web.post("/account/password", headers=SPANISH, data={
        "current_password": PASSWORD, "new_password": "short", "csrf_token": csrf_token(page)})
    assert "Contraseña nueva: use al menos 12 caracteres." in short.get_data(as_text=True)
    added = owner_web.post("/settings/staff", headers=SPANISH, follow_redirects=True, data={
        "csrf_token": csrf_token(page), "name": "Lee", "email": "lee@clinic.example",
        "password": "short", "role": "clinician"}).get_data(as_text=True)
    assert "Contraseña: use al menos 12 caracteres." in added
    user = make_staff(session, clinic[0], "new@clinic.example", role="clinician")
    path = urlsplit(tokens.issue(session, user, tokens.INVITE, "http://localhost", utcnow())).path
    session.commit()
    invited = app.test_client()
    common = invited.post(path, headers=SPANISH, data={
        "password": "1qaz2wsx3edc", "csrf_token": csrf_token(invited.get(path))})
    assert "es una de las contraseñas más comunes; elija otra." in common.get_data(as_text=True)
    english = invited.post(path, data={"password": "short", "csrf_token": csrf_token(invited.get(path))})
    assert "New password: use at least 12 characters." in english.get_data(as_text=True)


# --- API key scopes ---

def test_the_api_key_scopes_are_described_in_spanish(owner_web):
    page = owner_web.get("/settings", headers=SPANISH).get_data(as_text=True)
    for words in ("inscribir visitas (enrol)", "leer clientes, visitas, seguimientos y alertas (read)",
                  "confirmar alertas (acknowledge)", "leer el registro de auditoría de un cliente (audit)"):
        assert words in page, words
    english = owner_web.get("/settings").get_data(as_text=True)
    assert "enrol visits (enrol)" in english and "read a client's audit log (audit)" in english


# --- the client details form ---

def _error_of(page: str, field: str) -> str | None:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return found and found.group(1)


@pytest.mark.parametrize(("changes", "field", "spanish", "english"), [
    ({"phone": "+1 202 555 01"}, "phone", "no es un número de teléfono válido", "not a valid phone number"),
    ({"phone": "+1 900 555 0123"}, "phone",
     "los números de tarificación adicional no pueden recibir los mensajes de cuidados",
     "premium-rate numbers cannot receive aftercare texts"),
    ({"time_zone": "Mars/Olympus"}, "time_zone", "no es una zona horaria IANA conocida",
     "not a known IANA time zone"),
    ({"email": "not an email"}, "email", "no es una dirección de correo electrónico válida",
     "value is not a valid email address"),
])
def test_the_details_form_s_errors_are_in_spanish(owner_web, ana, changes, field, spanish, english):
    path = f"/clients/{ana.id}/details"
    form = {"name": "Ana Ruiz", "phone": "+12025550123", "email": "", "language": "en",
            "time_zone": "America/New_York", "csrf_token": csrf_token(owner_web.get(path))}
    refused = owner_web.post(path, headers=SPANISH, data={**form, **changes})
    assert refused.status_code == 422
    assert _error_of(refused.get_data(as_text=True), field).startswith(spanish)
    assert _error_of(owner_web.post(path, data={**form, **changes}).get_data(as_text=True), field) \
        .startswith(english)


# --- the maintenance suggestion ---

def test_the_client_page_s_suggestion_is_in_spanish(owner_web, session, clinic, ana):
    bo = Client(clinic_id=clinic[0].id, name="Bo Diaz", time_zone="America/New_York",
                phone="+12025550124")
    session.add(bo)
    session.flush()
    for days, pain in ((9, 5), (2, 3)):
        session.add(CheckIn(client_id=bo.id, answer="better", pain=pain, source="web",
                            created_at=utcnow() - timedelta(days=days)))
    session.commit()
    page = owner_web.get(f"/clients/{bo.id}", headers=SPANISH).get_data(as_text=True)
    assert re.search(r"Mejorando en los últimos 2 seguimientos \(respuestas «mejor»: 2; dolor de 5 a "
                     r"3\): alargar a \d semanas\.", page)
    assert re.search(r"Improving across the last 2 check-ins \(2 said better, pain 5 to 3\): "
                     r"stretch to \d weeks\.", owner_web.get(f"/clients/{bo.id}").get_data(as_text=True))
    held = owner_web.get(f"/clients/{ana.id}", headers=SPANISH).get_data(as_text=True)
    assert "Hay una alerta abierta: ningún recordatorio para volver a reservar" in held
