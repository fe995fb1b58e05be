"""Message templates, the renderer, local time labels and the SMS segment counter."""

from __future__ import annotations

import itertools
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from service.domain.careplan import PLAN_KINDS
from service.messaging.rendering import (
    CHANNELS,
    TEMPLATES_DIR,
    Rendered,
    Renderer,
    local_time_label,
)
from service.messaging.sms_segments import is_gsm7, segment_count
from tests.message_contexts import LONG, SHORT

FIRST_VISIT_WORDS = "lighter pressure"


def test_long_values_have_the_intended_lengths():
    assert [len(LONG[k]) for k in ("client_name", "clinic_name", "clinic_phone", "page_url")] == [
        30,
        40,
        16,
        60,
    ]


def contexts():
    for (size, values), first_visit, with_url in itertools.product(
        (("long", LONG), ("short", SHORT)), (True, False), (True, False)
    ):
        ctx = dict(values, first_visit=first_visit)
        if not with_url:
            ctx["page_url"] = None
        yield f"{size}-fv{int(first_visit)}-url{int(with_url)}", ctx


CASES = [
    pytest.param(kind, channel, ctx, id=f"{kind}-{channel}-{cid}")
    for kind in PLAN_KINDS
    for channel in CHANNELS
    for cid, ctx in contexts()
]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES_DIR)


def test_every_template_file_exists():
    root = TEMPLATES_DIR / "messages" / "en"
    assert (root / "email" / "base.html").is_file()
    for kind in PLAN_KINDS:
        assert (root / "sms" / f"{kind}.txt").is_file()
        for suffix in (".subject.txt", ".txt", ".html"):
            assert (root / "email" / f"{kind}{suffix}").is_file()


@pytest.mark.parametrize("kind,channel,ctx", CASES)
def test_renders(renderer, kind, channel, ctx):
    out = renderer.render(kind, channel, "en", ctx)
    assert isinstance(out, Rendered)
    assert out.body and out.body == out.body.strip()
    assert "None" not in out.body
    if channel == "sms":
        assert out.subject is None and out.html is None
        assert ctx["clinic_name"] in out.body
    else:
        assert out.subject and "\n" not in out.subject
        assert out.html.startswith("<!DOCTYPE html>")
        assert out.body.startswith(f"Hi {ctx['client_name']},")
        for part in (out.body, out.html):
            assert ctx["clinic_phone"] in part
            assert "None" not in part
        # header carries the clinic name, footer says how to unsubscribe
        assert "To stop them" in out.body and "To stop them" in out.html
    if ctx["page_url"] is None:
        assert "http" not in out.body


SMS_CASES = [pytest.param(c.values[0], c.values[2], id=c.id) for c in CASES if c.values[1] == "sms"]


@pytest.mark.parametrize("kind,ctx", SMS_CASES)
def test_sms_is_gsm7_and_at_most_two_segments(renderer, kind, ctx):
    body = renderer.render(kind, "sms", "en", ctx).body
    encoding, segments = segment_count(body)
    assert encoding == "GSM-7", [ch for ch in body if not is_gsm7(ch)]
    assert segments <= 2, body


def test_sms_templates_contain_only_gsm7_text():
    for kind in PLAN_KINDS:
        text = (TEMPLATES_DIR / "messages" / "en" / "sms" / f"{kind}.txt").read_text("utf-8")
        assert is_gsm7(text), (kind, [ch for ch in text if not is_gsm7(ch)])


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("first_visit", [True, False])
def test_window_start_wording(renderer, channel, first_visit):
    ctx = dict(LONG, first_visit=first_visit)
    out = renderer.render("window_start", channel, "en", ctx)
    parts = [out.body] if channel == "sms" else [out.body, out.html]
    for part in parts:
        assert LONG["window_ends"] in part
        assert (FIRST_VISIT_WORDS in part) is first_visit
    if channel == "sms":
        assert "Reply STOP to opt out" in out.body
        assert out.body.splitlines()[-2] == LONG["page_url"]  # link last, before STOP


def test_window_start_sms_without_page_url_has_no_link(renderer):
    ctx = dict(SHORT, first_visit=False, page_url=None)
    body = renderer.render("window_start", "sms", "en", ctx).body
    assert "http" not in body
    assert body.endswith("Reply STOP to opt out")


def test_only_first_message_carries_stop(renderer):
    for kind in PLAN_KINDS:
        body = renderer.render(kind, "sms", "en", dict(SHORT, first_visit=False)).body
        assert ("STOP" in body) is (kind == "window_start")


@pytest.mark.parametrize("kind", ["checkin", "followup"])
@pytest.mark.parametrize("channel", CHANNELS)
def test_checkins_list_reply_options(renderer, kind, channel):
    body = renderer.render(kind, channel, "en", dict(SHORT, first_visit=False)).body
    for fragment in ("1", "2", "3", "better", "same", "worse", "0", "10"):
        assert fragment in body


@pytest.mark.parametrize("channel", CHANNELS)
def test_appointment_reminder(renderer, channel):
    out = renderer.render("appointment_reminder", channel, "en", dict(LONG, first_visit=False))
    assert LONG["appointment"] in out.body and LONG["clinic_name"] in out.body
    assert "C to confirm" in out.body and "R to reschedule" in out.body
    if channel == "email":
        assert ".ics" in out.body and ".ics" in out.html
        assert LONG["appointment"] in out.subject


def test_appointment_reminder_needs_an_appointment(renderer):
    with pytest.raises(ValueError):
        ctx = dict(SHORT, appointment=None, first_visit=False)
        renderer.render("appointment_reminder", "sms", "en", ctx)


@pytest.mark.parametrize("channel", CHANNELS)
def test_rebook_nudge_gives_the_phone(renderer, channel):
    body = renderer.render("rebook_nudge", channel, "en", dict(LONG, first_visit=False)).body
    assert LONG["clinic_phone"] in body


@pytest.mark.parametrize("kind", PLAN_KINDS)
def test_html_escapes_hostile_input(renderer, kind):
    hostile = "<script>alert(1)</script>"
    ctx = dict(SHORT, client_name=hostile, clinic_name='A&B "Clinic"', first_visit=True)
    email = renderer.render(kind, "email", "en", ctx)
    assert hostile not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "A&amp;B" in email.html
    assert hostile in email.body  # the plain-text part is not HTML
    sms = renderer.render(kind, "sms", "en", ctx)
    assert 'A&B "Clinic"' in sms.body


def test_unknown_kind_or_channel(renderer):
    ctx = dict(SHORT, first_visit=False)
    with pytest.raises(ValueError):
        renderer.render("nonsense", "sms", "en", ctx)
    with pytest.raises(ValueError):
        renderer.render("hydration", "fax", "en", ctx)


@pytest.mark.parametrize("language", ["fr", "de-AT", "fr_CA", "", "../../etc", "xx"])
def test_language_falls_back_to_english(renderer, language):
    ctx = dict(SHORT, first_visit=False)
    assert renderer.render("hydration", "sms", language, ctx) == renderer.render(
        "hydration", "sms", "en", ctx
    )


def test_language_with_its_own_template_is_used(tmp_path):
    shutil.copytree(TEMPLATES_DIR / "messages" / "en", tmp_path / "messages" / "en")
    fr = tmp_path / "messages" / "fr" / "sms"
    fr.mkdir(parents=True)
    (fr / "hydration.txt").write_text("{{ clinic_name }}: Bonjour {{ client_name }}, buvez.\n")
    renderer = Renderer(tmp_path)
    ctx = dict(SHORT, first_visit=False)
    assert renderer.render("hydration", "sms", "fr", ctx).body == "Oak: Bonjour Al, buvez."
    assert renderer.render("hydration", "sms", "fr-CA", ctx).body == "Oak: Bonjour Al, buvez."
    # a kind French lacks falls back to English
    assert renderer.render("heat", "sms", "fr", ctx).body.startswith("Oak: Hi Al,")


def test_missing_context_variable_is_an_error(renderer):
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        renderer.render("heat", "sms", "en", {"clinic_name": "Oak", "client_name": "Al"})


# --- segment_count ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length,segments", [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm7_segments(length, segments):
    assert segment_count("a" * length) == ("GSM-7", segments)


def test_empty_text_is_one_segment():
    assert segment_count("") == ("GSM-7", 1)


@pytest.mark.parametrize("odd", ["\u2019", "\u201c", "\u2013", "\U0001f600", "\u00e1"])
def test_one_non_gsm_character_switches_to_ucs2(odd):
    assert not is_gsm7(odd)
    assert segment_count(odd + "a" * 60)[0] == "UCS-2"


def test_ucs2_limits_are_70_then_67():
    assert segment_count("\u2019" + "a" * 69) == ("UCS-2", 1)
    assert segment_count("\u2019" + "a" * 70) == ("UCS-2", 2)
    assert segment_count("\u2019" + "a" * 133) == ("UCS-2", 2)  # 134 = 2 x 67
    assert segment_count("\u2019" + "a" * 134) == ("UCS-2", 3)


def test_emoji_counts_two_utf16_units():
    assert segment_count("\U0001f600" * 35) == ("UCS-2", 1)  # 70 units
    assert segment_count("\U0001f600" * 35 + "a") == ("UCS-2", 2)


@pytest.mark.parametrize("ext", list("^{}\\[~]|\u20ac"))
def test_extension_characters_count_double(ext):
    assert is_gsm7(ext)
    assert segment_count(ext + "a" * 158) == ("GSM-7", 1)  # 160 septets
    assert segment_count(ext + "a" * 159) == ("GSM-7", 2)  # 161 septets


def test_extension_character_is_not_split_across_segments():
    # 152 septets then a two-septet character: it cannot straddle the 153 boundary.
    text = "a" * 152 + "\u20ac" + "a" * 152
    assert segment_count(text) == ("GSM-7", 3)


def test_gsm7_basic_set_samples():
    assert is_gsm7("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà\n\r")
    assert not is_gsm7("\x1b")  # the escape itself is not a character
    assert not is_gsm7("`")


# --- local_time_label ------------------------------------------------------------------------


def test_local_time_label_english():
    moment = datetime(2024, 5, 16, 20, 10, tzinfo=UTC)
    assert local_time_label(moment, "America/New_York", "en") == "Thu 4:10 PM"


def test_local_time_label_across_spring_forward():
    # Session Sat 9 Mar 2024 4:10 PM EST; 24 real hours later it is 5:10 PM EDT on Sunday.
    session = datetime(2024, 3, 9, 21, 10, tzinfo=UTC)
    assert local_time_label(session, "America/New_York", "en") == "Sat 4:10 PM"
    label = local_time_label(session + timedelta(hours=24), "America/New_York", "en")
    assert label == "Sun 5:10 PM"
    assert "\u202f" not in label and "\u00a0" not in label


def test_local_time_label_across_fall_back():
    # Sat 2 Nov 2024 4:10 PM EDT + 24 h = Sun 3 Nov 3:10 PM EST.
    session = datetime(2024, 11, 2, 20, 10, tzinfo=UTC)
    assert local_time_label(session + timedelta(hours=24), "America/New_York", "en") == ("Sun 3:10 PM")


def test_local_time_label_naive_is_utc():
    moment = datetime(2024, 5, 16, 20, 10)
    assert local_time_label(moment, "America/New_York", "en") == "Thu 4:10 PM"


@pytest.mark.parametrize("language", ["en", "es", "es-MX", "fr", "de", "pt-BR", "xx", ""])
def test_local_time_label_is_gsm7(language):
    for day in range(7):
        moment = datetime(2024, 3, 4 + day, 21, 10, tzinfo=UTC)
        label = local_time_label(moment, "America/Mexico_City", language)
        assert is_gsm7(label), label
        assert "\u202f" not in label
