"""The account pages (login's second step, two-factor, passwords, email links), client import
and settings follow the browser's language, English by default."""

import io
import re
from urllib.parse import urlsplit

import pyotp
from babel.messages.extract import extract_from_file

from service.accounts import tokens
from service.config import ROOT
from service.models import utcnow
from tests.web_helpers import (
    PASSWORD,
    code_step,
    csrf_token,
    enrolled,
    log_in,
    make_staff,
    password_step,
)

SPANISH = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"}


def _owner(app, session, clinic):
    make_staff(session, clinic[0], "owner@clinic.example")
    web = app.test_client()
    assert log_in(web, "owner@clinic.example").status_code == 302
    return web


def _no_english_of(template: str, html: str, data=()) -> None:
    """None of the template's own English sentences is left in its Spanish render (placeholders
    cut off: only the words around them are looked for), once `data` (a clinic's name...) is
    taken out."""
    for value in data:
        html = html.replace(value, "")
    path = ROOT / "templates" / "web" / template
    for _line, msgid, *_ in extract_from_file("jinja2", path):
        for words in re.split(r"%\(\w+\)s", msgid if isinstance(msgid, str) else msgid[0]):
            if len(words.strip(" .:;,")) > 3:
                assert not re.search(rf"(?<!\w){re.escape(words)}(?!\w)", html), words


def _spanish(web, path: str, template: str, *words: str, status: int = 200, data=()) -> str:
    page = web.get(path, headers=SPANISH)
    assert page.status_code == status
    html = page.get_data(as_text=True)
    for word in words:
        assert word in html, word
    _no_english_of(template, html, data)
    return html


# --- the account pages ---

def test_the_password_pages_are_in_spanish_and_english_by_default(app, session, clinic):
    web = _owner(app, session, clinic)
    _spanish(web, "/account/password", "auth/password.html", "Cambie su contraseña",
             "Contraseña actual", "Sus otras sesiones se cierran cuando cambia.")
    page = web.get("/account/password", headers=SPANISH)
    wrong = web.post("/account/password", headers=SPANISH, data={
        "current_password": "not it", "new_password": "a" * 20, "csrf_token": csrf_token(page)})
    assert "Su contraseña actual no es correcta." in wrong.get_data(as_text=True)
    assert "Change your password" in web.get("/account/password").get_data(as_text=True)
    confirm = web.get("/confirm-password", headers=SPANISH).get_data(as_text=True)
    assert "Confirme su contraseña" in confirm and "hace más de 10 minutos" in confirm
    _no_english_of("auth/confirm.html", confirm)
    assert "Confirm your password" in web.get("/confirm-password").get_data(as_text=True)


def test_a_password_change_flashes_in_spanish(app, session, clinic):
    web = _owner(app, session, clinic)
    page = web.get("/account/password", headers=SPANISH)
    done = web.post("/account/password", headers=SPANISH, follow_redirects=True, data={
        "current_password": PASSWORD, "new_password": "a much better passphrase",
        "csrf_token": csrf_token(page)})
    assert "Contraseña cambiada; sus otras sesiones se han cerrado." in done.get_data(as_text=True)


def test_two_factor_enrolment_its_codes_and_its_status_are_in_spanish(app, session, clinic):
    web = _owner(app, session, clinic)
    html = _spanish(web, "/account/two-factor", "auth/enrol.html", "Acceso en dos pasos",
                    "O escriba esta clave:", "Código QR para su aplicación de autenticación")
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', html)[1]
    page = web.get("/account/two-factor", headers=SPANISH)
    wrong = web.post("/account/two-factor", headers=SPANISH,
                     data={"code": "000000", "csrf_token": csrf_token(page)})
    assert "Ese código no es correcto: compruebe la hora" in wrong.get_data(as_text=True)
    empty = web.post("/account/two-factor", headers=SPANISH, data={"csrf_token": csrf_token(page)})
    assert "Código: " in empty.get_data(as_text=True)  # the field's name, then WTForms' Spanish
    codes = web.post("/account/two-factor", headers=SPANISH,
                     data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_token(page)})
    assert "Sus códigos de recuperación, que se muestran una sola vez" in codes.get_data(as_text=True)
    _no_english_of("auth/recovery_codes.html", codes.get_data(as_text=True))
    _spanish(web, "/account/two-factor", "auth/two_factor_on.html",
             "Activado: entra con su contraseña", "Códigos de recuperación restantes: 10.")
    assert "Recovery codes left: 10." in web.get("/account/two-factor").get_data(as_text=True)


def test_the_login_code_step_is_in_spanish(app, session, clinic):
    enrolled(app, session, clinic[0])
    web, location = password_step(app, "owner@clinic.example")
    _spanish(web, location, "auth/code.html", "Su código", "Escriba el código de 6 dígitos")
    wrong = web.post(location, headers=SPANISH,
                     data={"code": "000000", "csrf_token": csrf_token(web.get(location))})
    assert "Ese código no es correcto (o ya se usó)" in wrong.get_data(as_text=True)
    english = code_step(web, location, "000000").get_data(as_text=True)
    assert "That code is not right (or was already used): try the next one." in english


def test_a_reset_request_and_a_dead_link_are_in_spanish(client):
    _spanish(client, "/reset-password", "auth/reset_request.html", "¿Olvidó su contraseña?",
             "Su correo del personal", "Envíenme un enlace por correo")
    page = client.get("/reset-password", headers=SPANISH)
    sent = client.post("/reset-password", headers=SPANISH, data={
        "email": "nobody@clinic.example", "csrf_token": csrf_token(page)})
    assert "Si esa dirección tiene una cuenta, le llegará un enlace" in sent.get_data(as_text=True)
    gone = _spanish(client, "/reset-password/nonsense", "auth/link_gone.html",
                    "Este enlace ya no funciona", status=410)
    assert re.search(r'<a href="/reset-password">Pida un enlace nuevo</a>: funciona una sola vez', gone)
    assert "Ask for a new link</a>: it works once, for 30 minutes." in \
        client.get("/reset-password/nonsense").get_data(as_text=True)


def test_an_invitation_s_page_is_in_spanish(app, session, clinic):
    user = make_staff(session, clinic[0], "new@clinic.example", role="clinician")
    link = tokens.issue(session, user, tokens.INVITE, "http://localhost", utcnow())
    session.commit()
    web, path = app.test_client(), urlsplit(link).path
    _spanish(web, path, "auth/set_password.html", "Bienvenido, New",
             "Elija una contraseña para new@clinic.example; entrará en cuanto la haya elegido.")
    assert "Welcome, New" in web.get(path).get_data(as_text=True)


# --- client import ---

def _upload(web, text: str, headers=None):
    return web.post("/clients/import", content_type="multipart/form-data", headers=headers or {},
                    data={"csrf_token": csrf_token(web.get("/clients/import")),
                          "file": (io.BytesIO(text.encode()), "clients.csv")})


def test_the_import_page_its_report_and_its_flash_are_in_spanish(app, session, clinic):
    web = _owner(app, session, clinic)
    _spanish(web, "/clients/import", "staff/import.html", "Importar clientes",
             "Un archivo CSV (como máximo 200", "Revisar el archivo")
    csv = "name,phone,email\nAna Ruiz,(202) 555-0181,\nNo Contact,,\n"
    report = _upload(web, csv, SPANISH)
    html = report.get_data(as_text=True)
    for words in ("Prueba: todavía no se guarda nada",
                  "Se pueden importar 1 fila(s); 1 línea(s) tienen problemas y se omitirán.",
                  "línea 3: phone: se necesita un teléfono o un correo",
                  "Importar 1 cliente(s), omitiendo las líneas de arriba"):
        assert words in html, words
    _no_english_of("staff/import.html", html)
    assert "line 3: phone: a phone or an email is required" in _upload(web, csv).get_data(as_text=True)
    upload = re.search(r'name="upload" value="([^"]+)"', html)[1]
    done = web.post("/clients/import/confirm", headers=SPANISH, follow_redirects=True,
                    data={"csrf_token": csrf_token(report), "upload": upload})
    assert "Se importaron 1 cliente(s) y se omitieron 1 fila(s) con errores." in \
        done.get_data(as_text=True)
    bad = web.post("/clients/import/confirm", headers=SPANISH,
                   data={"csrf_token": csrf_token(report), "upload": "altered"})
    assert bad.status_code == 422
    assert "subida: caducada o alterada; vuelva a subir el archivo" in bad.get_data(as_text=True)


# --- settings ---

def test_the_settings_page_is_in_spanish_and_english_by_default(app, session, clinic):
    web = _owner(app, session, clinic)
    make_staff(session, clinic[0], "desk@clinic.example", role="front_desk")
    html = _spanish(web, "/settings", "staff/settings.html", "Ajustes de la clínica",
                    "Horas de silencio desde las", "Teléfonos de guardia (uno por línea)",
                    "Consejo de hidratación (horas)", "Redacción de los mensajes",
                    "cuyo idioma es el inglés", "Volver al nuestro", "Enviar la invitación",
                    '<span class="badge">recepción</span>', "Mensajes habituales al día como máximo",
                    "nunca usada", "Crear la clave de API", "Exigir el acceso en dos pasos",
                    "Guardar la seguridad",
                    data=(clinic[0].name,))
    assert re.search(r"\d+ segmento\(s\), (GSM-7|UCS-2)", html)
    english = web.get("/settings").get_data(as_text=True)
    for words in ("Clinic settings", "Quiet hours from", "Hydration tip (hours)", "Reset to ours",
                  "segment(s), GSM-7"):
        assert words in english, words
    assert "Ajustes de la clínica" not in english


def test_a_settings_save_and_its_errors_are_in_spanish(app, session, clinic):
    web = _owner(app, session, clinic)
    page = web.get("/settings")
    saved = web.post("/settings", headers=SPANISH, follow_redirects=True, data={
        "csrf_token": csrf_token(page), "section": "security", "idle_timeout_minutes": "30"})
    assert "Seguridad: guardado." in saved.get_data(as_text=True)
    refused = web.post("/settings", headers=SPANISH, data={
        "csrf_token": csrf_token(page), "section": "on_call", "on_call_phones": "",
        "on_call_emails": "nobody", "renotify_minutes": "999", "renotify_max": "3"})
    assert refused.status_code == 422
    for words in ("debe estar entre 5 y 240", "no es una dirección de correo: nobody"):
        assert words in refused.get_data(as_text=True), words
    english = web.post("/settings", follow_redirects=True, data={
        "csrf_token": csrf_token(page), "section": "security", "idle_timeout_minutes": "30"})
    assert "Security saved." in english.get_data(as_text=True)


def test_staff_changes_flash_in_spanish(app, session, clinic):
    web = _owner(app, session, clinic)
    lee = make_staff(session, clinic[0], "lee@clinic.example", role="clinician")
    token = csrf_token(web.get("/settings"))
    moved = web.post("/settings/staff/role", headers=SPANISH, follow_redirects=True,
                     data={"csrf_token": token, "staff_id": lee.id, "role": "front_desk"})
    assert "Lee ahora es recepción." in moved.get_data(as_text=True)
    out = web.post(f"/settings/staff/{lee.id}/sign-out", headers=SPANISH, follow_redirects=True,
                   data={"csrf_token": token})
    assert "Se cerraron todas las sesiones de Lee." in out.get_data(as_text=True)
    english = web.post("/settings/staff/role", follow_redirects=True,
                       data={"csrf_token": token, "staff_id": lee.id, "role": "read_only"})
    assert "Lee is now read only." in english.get_data(as_text=True)


def test_the_wording_preview_says_its_summary_in_the_page_s_language(app, session, clinic):
    web = _owner(app, session, clinic)
    headers = {"X-CSRFToken": csrf_token(web.get("/settings"))}
    ask = {"kind": "hydration", "text": "{first_name}, drink water."}
    spanish = web.post("/settings/preview", headers={**headers, **SPANISH}, json=ask).get_json()
    assert spanish["summary"] == f"{spanish['segments']} segmento(s), {spanish['encoding']}"
    english = web.post("/settings/preview", headers=headers, json=ask).get_json()
    assert english["summary"] == f"{english['segments']} segment(s), {english['encoding']}"
    refused = web.post("/settings/preview", headers={**headers, **SPANISH}, json={"kind": "nope"})
    assert refused.status_code == 400
    assert refused.get_json()["problems"] == [
        "un tipo de mensaje que una clínica puede redactar, su texto y su idioma"]
