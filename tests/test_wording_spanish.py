"""The wording editor for a Spanish clinic: ordinary Spanish (á í ó ú) is saved and sent as its
plain GSM-7 letters, as the preview shows; the editor's problems and placeholder descriptions are
in the page's language, its sample dates in the wording's. English stays as it was."""

import html
import re
from datetime import timedelta

from service.models import Clinic
from tests.helpers import NOW, PHONE, at, drain, enrol, texts_to
from tests.web_helpers import csrf_token, log_in, make_staff

SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}
TYPED = "{clinic_name}: {first_name}, está bien beber agua hoy, día de su sesión. Aquí: {link}"
SENT = "{clinic_name}: {first_name}, esta bien beber agua hoy, dia de su sesion. Aqui: {link}"


def owner_token(client, session, clinic) -> str:
    with at(NOW):
        log_in(client, make_staff(session, clinic[0], "owner@clinic.example").email)
        return csrf_token(client.get("/settings"))


def save(client, token, language, headers=None, **texts):
    with at(NOW):
        return client.post("/settings/wording", headers=headers, data={
            "csrf_token": token, "language": language} | {
            f"wording_{kind}": value for kind, value in texts.items()})


def preview(client, token, kind, text, language, headers=None):
    with at(NOW):
        return client.post("/settings/preview", headers={"X-CSRFToken": token, **(headers or {})},
                           json={"kind": kind, "text": text, "language": language})


def shown(page: str, kind: str) -> str:
    return html.unescape(re.search(rf'data-testid="preview-{kind}">(.*?)</div>', page, re.S)[1])


def test_spanish_accents_are_saved_previewed_and_sent_as_plain_letters(
        client, session, clinic, providers, dispatcher):
    twilio, _ = providers
    token = owner_token(client, session, clinic)
    said = preview(client, token, "hydration", TYPED, "es")
    assert said.status_code == 200 and said.get_json()["problems"] == []
    body = said.get_json()["body"]
    assert "esta bien beber agua hoy, dia de su sesion. Aqui:" in body
    assert said.get_json()["encoding"] == "GSM-7"

    assert save(client, token, "es", hydration=TYPED).status_code == 302
    session.expire_all()
    assert session.get(Clinic, clinic[0].id).plan_overrides["wording"] == {"es": {"hydration": SENT}}
    with at(NOW):
        editor = client.get("/settings?language=es").get_data(as_text=True)
    assert f">{SENT}</textarea>" in html.unescape(editor)  # the owner sees what is stored
    assert "á í ó ú are sent as a i o u, so each text stays in the plain SMS alphabet." in editor

    enrol(client, clinic[1], person={"language": "es"})
    drain(dispatcher, NOW + timedelta(hours=3))
    [sent] = [b for b in texts_to(twilio, PHONE) if "beber agua" in b]
    assert sent.startswith("Back Walk Clinic: Ana, esta bien beber agua hoy, dia de su sesion. "
                           "Aqui: ")
    assert all(ch not in sent for ch in "áíóú")


def test_a_character_with_no_plain_letter_is_still_refused(client, session, clinic):
    token = owner_token(client, session, clinic)
    typed = "{first_name}, está bien \U0001F4A7 \u201choy\u201d"
    response = save(client, token, "es", hydration=typed)
    assert response.status_code == 422
    problems = shown(response.get_data(as_text=True), "hydration")
    assert "\u201c\U0001F4A7\u201d, \u201c\u201c\u201d, \u201c\u201d\u201d cannot be sent in the " \
           "plain SMS alphabet (GSM-7)" in problems
    assert "\u201c\u00e1\u201d" not in problems
    assert f">{typed}</textarea>" in html.unescape(response.get_data(as_text=True))  # as typed
    session.expire_all()
    assert "wording" not in session.get(Clinic, clinic[0].id).plan_overrides


def test_the_problems_are_in_the_pages_language(client, session, clinic):
    token = owner_token(client, session, clinic)
    typed = "{nope} sesión \U0001F4A7 {first_name"
    response = save(client, token, "es", headers=SPANISH, hydration=typed)
    assert response.status_code == 422
    problems = shown(response.get_data(as_text=True), "hydration")
    for words in ("{nope} no es un marcador de este mensaje: use {first_name}, {clinic_name}",
                  "\u201c\U0001F4A7\u201d no se puede enviar en el alfabeto SMS básico (GSM-7)",
                  "tiene una llave sin su pareja"):
        assert words in problems, words
    assert "not a placeholder" not in problems and "plain SMS alphabet" not in problems

    said = preview(client, token, "checkin", "{{ client_name }} " + "x" * 2000, "es", SPANISH)
    assert said.get_json()["problems"] == [
        "tiene 2.018 caracteres; un mensaje puede tener como máximo 2.000"]
    said = preview(client, token, "checkin", "{{ client_name }}", "es", SPANISH)
    assert said.get_json()["problems"] == [
        "tiene código de plantilla: escriba {first_name}, no {{ client_name }} (un mensaje son "
        "palabras sencillas con marcadores)"]
    said = preview(client, token, "hydration", "{first_name} " + "{link} " * 7, "es", SPANISH)
    assert said.get_json()["problems"][0].startswith("ocupa 5 segmentos (GSM-7) con un")

    english = preview(client, token, "checkin", "{{ client_name }} " + "x" * 2000, "es")
    assert english.get_json()["problems"] == [
        "is 2,018 characters long; a text may have at most 2,000"]


def test_the_sample_dates_follow_the_wordings_language_and_the_chips_the_pages(
        client, session, clinic):
    token = owner_token(client, session, clinic)
    text = "Cita: {appointment}. Fin: {first_name} {clinic_name}"
    spanish = preview(client, token, "appointment_reminder", text, "es", SPANISH).get_json()
    assert spanish["body"].startswith("Cita: miércoles, 30 de septiembre, 12:30.")
    english = preview(client, token, "appointment_reminder", text, "en").get_json()
    assert english["body"].startswith("Cita: Wed Sep 30, 12:30 PM.")
    window = preview(client, token, "window_start", "Hasta {window_end}", "es").get_json()
    assert window["body"] == "Hasta miércoles, 12:30"

    with at(NOW):
        page = client.get("/settings?language=es", headers=SPANISH).get_data(as_text=True)
        page_en = client.get("/settings?language=es").get_data(as_text=True)
    chips = re.search(r'data-testid="placeholders-appointment_reminder">(.*?)</div>', page, re.S)[1]
    assert 'title="el nombre de pila del cliente"' in chips
    assert 'title="la cita reservada, p. ej. jueves, 1 de octubre, 16:10"' in chips
    assert "á, í, ó y ú se envían como a, i, o y u" in page
    chips_en = re.search(r'data-testid="placeholders-hydration">(.*?)</div>', page_en, re.S)[1]
    assert "title=\"the client's first name\"" in html.unescape(chips_en)
    assert "miércoles, 30 de septiembre, 12:30" in shown(page_en, "appointment_reminder")
