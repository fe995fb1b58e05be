"""Spanish message templates: same file set and variables as English, GSM-7 SMS within two segments."""

from __future__ import annotations

import pytest

from service.domain.careplan import PLAN_KINDS
from service.messaging.rendering import TEMPLATES_DIR, Renderer
from service.messaging.sms_segments import is_gsm7, segment_count
from tests.message_contexts import (
    EMAIL_KINDS,
    EXTRA_LONG,
    EXTRA_SHORT,
    LONG,
    LONG_ES_LABELS,
    SHORT_ES,
    SMS_KINDS,
    STAFF_ACCOUNT_EMAILS,
    contexts,
)

EN = TEMPLATES_DIR / "messages" / "en"
ES = TEMPLATES_DIR / "messages" / "es"

SMS_CASES = [pytest.param(kind, ctx, id=f"{kind}-{cid}") for kind in SMS_KINDS for cid, ctx in contexts()]
EMAIL_CASES = [pytest.param(kind, ctx, id=f"{kind}-{cid}") for kind in EMAIL_KINDS for cid, ctx in contexts()]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES_DIR)


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_spanish_has_exactly_the_english_file_set():
    assert SMS_KINDS and EMAIL_KINDS
    assert set(PLAN_KINDS) <= set(SMS_KINDS) & set(EMAIL_KINDS)
    assert _files(ES) == _files(EN)


def test_spanish_emails_extend_the_spanish_base():
    for kind in EMAIL_KINDS:
        for suffix in (".txt", ".html"):
            en = (EN / "email" / f"{kind}{suffix}").read_text("utf-8")
            es = (ES / "email" / f"{kind}{suffix}").read_text("utf-8")
            assert ("messages/en/" in es) is False, (kind, suffix)
            if f'extends "messages/en/email/base{suffix}"' in en:
                assert f'{{% extends "messages/es/email/base{suffix}" %}}' in es, (kind, suffix)


@pytest.mark.parametrize("kind,ctx", SMS_CASES)
def test_sms_renders_in_spanish_as_gsm7_within_two_segments(renderer, kind, ctx):
    body = renderer.render(kind, "sms", "es", ctx).body
    assert body and body == body.strip()
    assert "None" not in body
    encoding, segments = segment_count(body)
    assert encoding == "GSM-7", [ch for ch in body if not is_gsm7(ch)]
    assert segments <= 2, body
    if kind == "staff_reply":  # the staff member's own words, in whatever language they wrote
        assert body == renderer.render(kind, "sms", "en", ctx).body
        assert body.startswith(f"{ctx['clinic_name']}: ") and body.endswith(ctx["text"][-40:])
        return
    assert body != renderer.render(kind, "sms", "en", ctx).body
    if kind == "staff_alert":
        assert ctx["client_url"] in body
        return
    assert ctx["clinic_name"] in body
    if ctx["page_url"] is None:
        assert "http" not in body


def test_sms_templates_contain_only_gsm7_text():
    for kind in SMS_KINDS:
        text = (ES / "sms" / f"{kind}.txt").read_text("utf-8")
        assert is_gsm7(text), (kind, [ch for ch in text if not is_gsm7(ch)])


@pytest.mark.parametrize("kind,ctx", EMAIL_CASES)
def test_email_renders_in_spanish(renderer, kind, ctx):
    out = renderer.render(kind, "email", "es", ctx)
    english = renderer.render(kind, "email", "en", ctx)
    assert out.subject and "\n" not in out.subject
    assert out.html.startswith("<!DOCTYPE html>")
    assert '<html lang="es">' in out.html
    for part in (out.subject, out.body, out.html):
        assert "None" not in part
    assert out.subject != english.subject
    assert out.body != english.body and out.html != english.html
    if kind == "staff_alert":
        assert ctx["client_url"] in out.body and ctx["client_url"] in out.html
        return
    if kind in STAFF_ACCOUNT_EMAILS:
        assert out.body.startswith(f"Hola, {ctx['staff_name']}:")
        assert ctx["link"] in out.body and ctx["link"] in out.html
        return
    assert out.body.startswith(f"Hola, {ctx['client_name']}:")
    for part in (out.body, out.html):
        assert ctx["clinic_phone"] in part
        assert "Para dejar de recibirlos" in part
    if ctx["page_url"] is None:
        assert "http" not in out.body


@pytest.mark.parametrize("channel", ["sms", "email"])
@pytest.mark.parametrize("first_visit", [True, False])
def test_window_start_wording(renderer, channel, first_visit):
    ctx = dict(LONG_ES_LABELS, **EXTRA_SHORT, first_visit=first_visit)
    out = renderer.render("window_start", channel, "es", ctx)
    parts = [out.body] if channel == "sms" else [out.body, out.html]
    for part in parts:
        assert ctx["window_ends"] in part
        assert ("rimera " in part) is first_visit
    if channel == "sms":
        lines = out.body.splitlines()
        assert "ALTO" in lines[-1]
        assert lines[-2] == ctx["page_url"]  # link last, before the opt-out line


def test_only_first_plan_message_carries_the_opt_out_keyword(renderer):
    for kind in PLAN_KINDS:
        body = renderer.render(kind, "sms", "es", dict(SHORT_ES, **EXTRA_SHORT, first_visit=False)).body
        assert ("ALTO" in body) is (kind == "window_start"), kind


@pytest.mark.parametrize("kind", ["checkin", "followup"])
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_checkins_list_reply_options(renderer, kind, channel):
    body = renderer.render(kind, channel, "es", dict(SHORT_ES, **EXTRA_SHORT, first_visit=False)).body
    for fragment in ("1", "2", "3", "mejor", "igual", "peor", "0", "10"):
        assert fragment in body


def test_reply_keywords(renderer):
    ctx = dict(SHORT_ES, **EXTRA_SHORT, first_visit=False)

    def sms(kind, **changes):
        return renderer.render(kind, "sms", "es", dict(ctx, **changes)).body

    assert "START" in sms("opt_out_confirmation")
    assert "ALTO" in sms("opt_in_confirmation") and "AYUDA" in sms("opt_in_confirmation")
    for kind in ("help", "clarify"):
        assert all(word in sms(kind) for word in ("1 mejor", "2 igual", "3 peor", "ALTO"))
    assert "911" in sms("urgent_advice") and "urgente" in sms("urgent_advice")
    assert ctx["clinic_phone"] in sms("concern_advice")
    reminder = sms("appointment_reminder")
    assert ctx["appointment"] in reminder
    assert "C para confirmar" in reminder and "R para reprogramar" in reminder
    assert sms("checkin_thanks", answer="better") != sms("checkin_thanks", answer="worse")
    for kind in ("appointment_confirmed", "appointment_reschedule"):
        assert ctx["appointment"] in sms(kind)
        assert "None" not in sms(kind, appointment=None)


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_appointment_reminder(renderer, channel):
    ctx = dict(LONG, **EXTRA_SHORT, first_visit=False)
    out = renderer.render("appointment_reminder", channel, "es", ctx)
    assert LONG["appointment"] in out.body and LONG["clinic_name"] in out.body
    assert "C para confirmar" in out.body and "R para reprogramar" in out.body
    if channel == "email":
        assert ".ics" in out.body and ".ics" in out.html
        assert LONG["appointment"] in out.subject


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_rebook_nudge_gives_the_phone(renderer, channel):
    body = renderer.render("rebook_nudge", channel, "es", dict(LONG, **EXTRA_SHORT, first_visit=False)).body
    assert LONG["clinic_phone"] in body


@pytest.mark.parametrize("channel", ["sms", "email"])
@pytest.mark.parametrize("severity", ["urgent", "concern"])
def test_staff_alert_says_how_serious(renderer, channel, severity):
    ctx = dict(LONG, **EXTRA_LONG, first_visit=False)
    ctx["severity"] = severity
    out = renderer.render("staff_alert", channel, "es", ctx)
    assert ("URGENTE" in out.body) is (severity == "urgent")
    assert "recordatorio 12" in out.body
    assert "; ".join(ctx["reasons"]) in out.body
    if channel == "email":
        assert ("URGENTE" in out.subject) is (severity == "urgent")
        assert ("Atención" in out.subject) is (severity != "urgent")
        assert ctx["reply_text"] in out.body


@pytest.mark.parametrize("kind", EMAIL_KINDS)
def test_html_escapes_hostile_input(renderer, kind):
    hostile = "<script>alert(1)</script>"
    ctx = dict(SHORT_ES, **EXTRA_LONG, client_name=hostile, clinic_name='A&B "Clinic"', first_visit=True)
    ctx["reply_text"] = ctx["staff_name"] = hostile
    email = renderer.render(kind, "email", "es", ctx)
    assert hostile not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "A&amp;B" in email.html
    assert hostile in email.body  # the plain-text part is not HTML
    if kind in SMS_KINDS:
        sms = renderer.render(kind, "sms", "es", ctx)
        assert (kind == "staff_alert") or 'A&B "Clinic"' in sms.body


@pytest.mark.parametrize("language", ["es-MX", "es_US", "ES"])
def test_regional_spanish_uses_the_spanish_templates(renderer, language):
    ctx = dict(SHORT_ES, **EXTRA_SHORT, first_visit=False)
    for kind in SMS_KINDS:
        assert renderer.render(kind, "sms", language, ctx) == renderer.render(kind, "sms", "es", ctx)
