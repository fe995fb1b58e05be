"""Staff pages follow the browser's language (Accept-Language), English by default."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from service.models import Client, Escalation, Visit, utcnow
from tests.web_helpers import csrf_token, log_in, make_staff

SPANISH = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"}


def _logged_in(client, session, clinic):
    make_staff(session, clinic[0], "owner@clinic.example")
    assert log_in(client, "owner@clinic.example").status_code == 302
    return client


def test_the_login_page_is_in_the_browser_s_language(client):
    assert '<html lang="es">' in client.get("/login", headers=SPANISH).get_data(as_text=True)
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)


def test_staff_pages_are_in_the_browser_s_language_and_english_by_default(client, session, clinic):
    web = _logged_in(client, session, clinic)
    assert '<html lang="es">' in web.get("/", headers=SPANISH).get_data(as_text=True)
    assert '<html lang="en">' in web.get("/").get_data(as_text=True)
    assert '<html lang="en">' in web.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)


def test_the_spanish_dashboard_says_its_headings_counts_and_nav_in_spanish(client, session, clinic):
    web = _logged_in(client, session, clinic)
    person = Client(clinic_id=clinic[0].id, name="Ana Ruiz", time_zone="America/New_York")
    session.add(person)
    session.flush()
    session.add(Escalation(clinic_id=clinic[0].id, client_id=person.id, severity="urgent",
                           status="open", reasons=["said worse"], opened_at=utcnow()))
    session.commit()
    spanish = web.get("/", headers=SPANISH).get_data(as_text=True)
    for words in ("Alertas abiertas", "<strong>1</strong> urgente", "URGENTE", "Visitas de hoy (0)",
                  "Envíos fallidos, últimos", "Confirmar", ">Clientes<", "Cerrar sesión"):
        assert words in spanish, words
    english = web.get("/").get_data(as_text=True)
    assert "Open escalations" in english and "<strong>1</strong> urgent" in english
    assert "Alertas abiertas" not in english


def test_a_failed_login_says_so_in_spanish(client, session, clinic):
    make_staff(session, clinic[0], "owner@clinic.example")
    page = client.get("/login", headers=SPANISH)
    assert "Acceso del personal" in page.get_data(as_text=True)
    refused = client.post("/login", headers=SPANISH, data={
        "email": "owner@clinic.example", "password": "wrong", "csrf_token": csrf_token(page)})
    assert refused.status_code == 401
    assert "El correo y la contraseña no coinciden." in refused.get_data(as_text=True)


def test_the_clients_list_and_the_inbox_are_in_spanish(client, session, clinic):
    web = _logged_in(client, session, clinic)
    session.add(Client(clinic_id=clinic[0].id, name="Ana Ruiz", time_zone="America/New_York"))
    session.commit()
    clients = web.get("/clients?q=Ana", headers=SPANISH).get_data(as_text=True)
    for words in ("Nombre, teléfono o correo", "Buscar", "1 cliente", "sin cita", "Última visita: ninguna"):
        assert words in clients, words
    inbox = web.get("/inbox", headers=SPANISH).get_data(as_text=True)
    for words in ("0 sin leer", "Qué quieren decir", "No hay nada."):
        assert words in inbox, words
    assert "1 client<" in web.get("/clients?q=Ana").get_data(as_text=True)


def test_a_conversation_is_in_spanish(client, session, clinic):
    web = _logged_in(client, session, clinic)
    person = Client(clinic_id=clinic[0].id, name="Ana Ruiz", time_zone="America/New_York")
    session.add(person)
    session.commit()
    page = web.get(f"/clients/{person.id}/conversation", headers=SPANISH).get_data(as_text=True)
    for words in ("Ficha del cliente", "Aún no hay mensajes en ninguna dirección.", "Responder",
                  "No podemos enviar mensajes ni correos a este cliente"):
        assert words in page, words


def test_staff_pages_give_times_in_the_page_s_language(client, session, clinic):
    web = _logged_in(client, session, clinic)
    person = Client(clinic_id=clinic[0].id, name="Ana Ruiz", time_zone="America/New_York")
    session.add(person)
    session.flush()
    session.add(Visit(clinic_id=clinic[0].id, client_id=person.id,
                      occurred_at=datetime(2026, 12, 7, 15, 0, tzinfo=UTC), visit_number=1))
    session.commit()
    zone = clinic[0].time_zone
    spanish = web.get("/clients?q=Ana", headers=SPANISH).get_data(as_text=True)
    assert format_datetime(datetime(2026, 12, 7, 15, 0, tzinfo=UTC), "EEE d MMM, HH:mm",
                           tzinfo=ZoneInfo(zone), locale="es") in spanish
    assert "dic" in spanish and "Dec" in web.get("/clients?q=Ana").get_data(as_text=True)
