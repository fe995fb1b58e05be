"""The care pages staff use (enrol, client, visit, inbox words, screening, erase) and the words
the server sends their scripts follow the browser's language: Spanish with Accept-Language: es,
English by default."""

import re

import pytest
from babel.messages.extract import extract_from_file
from babel.support import Translations
from markupsafe import escape
from sqlmodel import select

from service.config import ROOT
from service.domain.replies import NUMBNESS
from service.messaging.links import client_page_url
from service.models import CheckIn, Client, Escalation, Visit, utcnow
from tests.web_helpers import csrf_token

SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}
SPANISH_CATALOG = Translations.load(ROOT / "service" / "translations", ["es"])

pytestmark = pytest.mark.usefixtures("daytime")






def _english_left(page: str, template: str) -> list[str]:
    """A staff template's English sentences (the longest piece between placeholders) that show up
    in its Spanish render: none should."""
    left = []
    for _, text, *_ in extract_from_file("jinja2", ROOT / "templates/web/staff" / template):
        if isinstance(text, str):
            piece = max(re.split(r"%\(\w+\)s", text), key=len).strip()
            if len(piece) > 3 and str(escape(piece)) in page and piece not in SPANISH_CATALOG.gettext(text):
                left.append(piece)
    return left


def _error_of(page: str, field: str) -> str | None:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return found and found.group(1)


def test_the_enrol_form_and_its_errors_are_in_spanish(owner_web):
    form = owner_web.get("/visits/new", headers=SPANISH)
    page = form.get_data(as_text=True)
    for words in ("Inscribir tras una sesión", "Nombre del cliente", "Teléfono móvil",
                  "Lista de comprobación de salud", "Fracturas por compresión", "No aplica ninguna",
                  "Dolor antes", "(0 nada, 10 el peor)", "Próxima cita", "+2 semanas",
                  "mié 17 jun, 10:00", "Inscribir y planificar los cuidados"):
        assert words in page, words
    assert _english_left(page, "enrol.html") == []
    refused = owner_web.post("/visits/new", headers=SPANISH, data={
        "name": "Ana Ruiz", "phone": "12", "sms_consent": "on", "language": "en", "pain_before": "11",
        "csrf_token": csrf_token(form)}).get_data(as_text=True)
    assert _error_of(refused, "phone") == ("Escriba un número al que podamos enviar mensajes, "
                                           "como (201) 555-0123")
    assert _error_of(refused, "pain_before") == "Elija un número del 0 al 10"
    assert _error_of(refused, "contraindication") == ("marque las casillas que correspondan, "
                                                      "o «No aplica ninguna»")


def test_the_enrol_form_stays_english_by_default(owner_web):
    form = owner_web.get("/visits/new")
    page = form.get_data(as_text=True)
    for words in ("Client name", "Pain before", "(0 none, 10 worst)", "+1 week<", "+2 weeks",
                  "Wed 17 Jun, 10:00", "Compression fractures", "Enrol and plan aftercare"):
        assert words in page, words
    refused = owner_web.post("/visits/new", data={
        "name": "Ana Ruiz", "phone": "12", "sms_consent": "on", "language": "en",
        "csrf_token": csrf_token(form)}).get_data(as_text=True)
    assert _error_of(refused, "phone") == "Enter a phone number we can text, like (201) 555-0123"
    assert _error_of(refused, "contraindication") == (
        "tick the boxes that apply, or &#34;None of these apply&#34;")


@pytest.fixture
def ana(owner_web, session, clinic):
    """Ana, enrolled through the form (English), who then said worse with a red flag on her page,
    raising an open escalation: her visit."""
    form = owner_web.get("/visits/new")
    enrolled = owner_web.post("/visits/new", data={
        "name": "Ana Ruiz", "phone": "(202) 555-0123", "sms_consent": "on", "language": "en",
        "none_apply": "on", "pain_before": "6", "pain_after": "3", "csrf_token": csrf_token(form)})
    visit = session.get(Visit, int(enrolled.location.rsplit("/", 1)[1]))
    session.add(CheckIn(client_id=visit.client_id, answer="worse", pain=7, red_flags=[NUMBNESS],
                        source="web", created_at=utcnow()))
    session.add(Escalation(clinic_id=clinic[0].id, client_id=visit.client_id, severity="urgent",
                           status="open", reasons=["said worse"], opened_at=utcnow()))
    session.commit()
    return visit


def test_the_visit_client_and_details_pages_are_in_spanish(owner_web, ana):
    visit = owner_web.get(f"/visits/{ana.id}", headers=SPANISH).get_data(as_text=True)
    for words in ("Cuidados planificados para <a", "Visita 1 el mié 10 jun, 10:07",
                  "horas en America/New_York", "cuidados de las primeras 24 horas",
                  ">pendiente<", "Inscribir al siguiente cliente"):
        assert words in visit, words
    assert _english_left(visit, "visit.html") == []
    page = owner_web.get(f"/clients/{ana.client_id}", headers=SPANISH).get_data(as_text=True)
    for words in ("Mensajes: aceptó el mié 10 jun", "Dolor inicial:", ">urgente<", ">abierta<",
                  "¿Qué hizo?", "Seguimientos", "peor dolor 7/10", "Visita 1</a>",
                  "dolor 6 → 3", "consejo de hidratación", 'data-copied="Copiado"',
                  "Revocar el enlace y enviar uno nuevo"):
        assert words in page, words
    assert _english_left(page, "client.html") == []
    details = owner_web.get(f"/clients/{ana.client_id}/details", headers=SPANISH).get_data(as_text=True)
    assert "Datos de Ana Ruiz" in details and "Los mensajes van por" in details
    assert _english_left(details, "client_details.html") == []


def test_the_client_page_stays_english_by_default(owner_web, ana):
    page = owner_web.get(f"/clients/{ana.client_id}").get_data(as_text=True)
    for words in ("Texts: consented Wed 10 Jun", ">urgent<", ">open<", "worse pain 7/10",
                  "hydration tip", 'data-copied="Copied"', "Revoke link and send a new one"):
        assert words in page, words
    assert "Aftercare planned for <a" in owner_web.get(f"/visits/{ana.id}").get_data(as_text=True)


def test_acknowledging_says_so_in_spanish(owner_web, session, ana):
    escalation = session.exec(select(Escalation)).one()
    token = csrf_token(owner_web.get(f"/clients/{ana.client_id}", headers=SPANISH))
    done = owner_web.post(f"/escalations/{escalation.id}/acknowledge", headers=SPANISH,
                    data={"csrf_token": token}, follow_redirects=True)
    assert "Alerta confirmada." in done.get_data(as_text=True)


def test_the_inbox_words_and_the_reply_preview_are_in_spanish(owner_web, ana):
    inbox = owner_web.get("/inbox", headers=SPANISH).get_data(as_text=True)
    for words in (">Peor</a>", ">Señal de alarma</a>", ">Pregunta</a>", ">No entendido</a>",
                  'data-testid="meaning">señal de alarma<', "peor, dolor 7/10", "entumecimiento u hormigueo"):
        assert words in inbox, words
    assert ">Worse</a>" in owner_web.get("/inbox").get_data(as_text=True)
    conversation = owner_web.get(f"/clients/{ana.client_id}/conversation", headers=SPANISH)
    assert "cuidados de las primeras 24 horas" in conversation.get_data(as_text=True)
    token = {"X-CSRFToken": csrf_token(conversation)}
    preview = f"/clients/{ana.client_id}/reply/preview"
    said = owner_web.post(preview, json={"text": "Hola"}, headers=SPANISH | token).get_json()
    assert said["summary"] == "4 de 640 caracteres: 1 mensaje(s) de texto, GSM-7"
    assert owner_web.post(preview, json={"text": ""}, headers=SPANISH | token).get_json()["problem"] == (
        "Escriba primero la respuesta.")
    assert owner_web.post(preview, json={"text": "Hola"}, headers=token).get_json()["summary"] == (
        "4 of 640 characters: 1 text message(s), GSM-7")
    sent = owner_web.post(f"/clients/{ana.client_id}/reply", headers=SPANISH, follow_redirects=True,
                    data={"csrf_token": token["X-CSRFToken"], "text": "Llámenos"})
    assert "Respuesta en camino por mensaje de texto." in sent.get_data(as_text=True)


def test_screening_says_its_words_and_flashes_in_spanish(owner_web):
    form = owner_web.get("/visits/new", headers=SPANISH)
    enrolled = owner_web.post("/visits/new", headers=SPANISH, follow_redirects=True, data={
        "name": "Ana Ruiz", "phone": "(202) 555-0123", "sms_consent": "on", "language": "en",
        "contraindication": "compression_fracture", "csrf_token": csrf_token(form)})
    assert "Cuidados planificados. Volver a reservar espera a que se revise la lista." in (
        enrolled.get_data(as_text=True))
    page = owner_web.get("/screening", headers=SPANISH)
    html = page.get_data(as_text=True)
    for words in ("Por revisar (1)", "Fracturas por compresión", "Cerrar (revisada)",
                  "Aprobar el caminado de espalda", 'placeholder="Nota"'):
        assert words in html, words
    assert _english_left(html, "screening.html") == []
    close = re.search(r'action="(/screening/\d+/close)"', html).group(1)
    closed = owner_web.post(close, headers=SPANISH, data={"csrf_token": csrf_token(page)},
                      follow_redirects=True).get_data(as_text=True)
    assert "Revisión cerrada: volver a reservar sigue en espera." in closed
    assert "Nothing to review." in owner_web.get("/screening").get_data(as_text=True)


def test_erasing_and_saving_details_say_so_in_spanish(owner_web, ana):
    page = owner_web.get(f"/clients/{ana.client_id}/erase", headers=SPANISH)
    assert "¿Borrar a Ana Ruiz?" in page.get_data(as_text=True)
    assert _english_left(page.get_data(as_text=True), "erase.html") == []
    refused = owner_web.post(f"/clients/{ana.client_id}/erase", headers=SPANISH,
                       data={"csrf_token": csrf_token(page), "confirm": "no"})
    assert refused.status_code == 422
    assert "Escriba ERASE para confirmar." in refused.get_data(as_text=True)
    details = owner_web.get(f"/clients/{ana.client_id}/details", headers=SPANISH)
    kept = owner_web.post(f"/clients/{ana.client_id}/details", headers=SPANISH, follow_redirects=True, data={
        "name": "Ana Ruiz", "phone": "(202) 555-0123", "language": "en",
        "time_zone": "America/New_York", "csrf_token": csrf_token(details)})
    assert "No cambió nada." in kept.get_data(as_text=True)


def test_a_revoked_link_s_page_is_in_its_client_s_language(app, client, session, clinic):
    rosa = Client(clinic_id=clinic[0].id, name="Rosa", time_zone="America/New_York",
                  language="es", link_version=2)
    session.add(rosa)
    session.commit()
    config = app.extensions["aftercare.config"]
    old = client.get("/c/" + client_page_url(config, rosa.id, 1).split("/c/")[1])
    assert old.status_code == 404
    page = old.get_data(as_text=True)
    assert "Este enlace ya no es válido" in page and "This link has expired" not in page
    unknown = client.get("/c/garbage").get_data(as_text=True)
    assert "This link has expired" in unknown and "Este enlace ya no es válido" in unknown
