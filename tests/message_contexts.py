"""Values for rendering every message template, shared by the template tests and the tests that
compare replies with what we sent: the longest and the shortest a clinic and a client can have."""

import itertools
from datetime import UTC, datetime, timedelta

from service.domain.escalation import assess
from service.domain.replies import CANNOT_WALK, NUMBNESS
from service.messaging.rendering import TEMPLATES_DIR, local_time_label

EN = TEMPLATES_DIR / "messages" / "en"

SMS_KINDS = sorted(p.stem for p in (EN / "sms").glob("*.txt"))
# Emails to a staff member about their account: neither a client nor a clinic phone in them.
STAFF_ACCOUNT_EMAILS = ("staff_invite", "password_reset")
EMAIL_KINDS = sorted(p.name.removesuffix(".subject.txt") for p in (EN / "email").glob("*.subject.txt"))

LONG = {
    "client_name": "Alexandria-Marguerite Bartholo",  # 30
    "clinic_name": "Riverside Back Walking & Wellness Studio",  # 40
    "clinic_phone": "+44 20 7946 0958",  # 16
    "page_url": "https://aftercare.example.com/p/" + "a" * 28,  # 60
    "window_ends": "Wed 12:30 PM",  # the longest "EEE h:mm a" label in English
    "appointment": "Wednesday, September 30, 12:30 PM",
    "clinic_tel": "tel:+442079460958",
    "emergency_number": "112",
    "window_started_earlier": False,
}
SHORT = {
    "client_name": "Al",
    "clinic_name": "Oak",
    "clinic_phone": "555 0100",
    "page_url": "https://a.example/p/x",
    "window_ends": "Thu 4:10 PM",
    "appointment": "Fri 9:00 AM",
    "clinic_tel": "tel:5550100",
    "emergency_number": "911",
    "window_started_earlier": False,
}


def _longest_spanish_label(with_date: bool) -> str:
    """Of every hour of a September week, for a client whose language is "es" (the only Spanish
    schemas.LANGUAGES allows: Spain's 24-hour clock, "miércoles, 23:30")."""
    start = datetime(2026, 9, 21, tzinfo=UTC)
    return max((local_time_label(start + timedelta(hours=h), "America/Mexico_City", "es", with_date)
                for h in range(7 * 24)), key=len)


# LONG with the longest labels local_time_label gives a Spanish client.
LONG_ES_LABELS = dict(LONG, window_ends=_longest_spanish_label(False),
                      appointment=_longest_spanish_label(True))
SHORT_ES = {
    "client_name": "Al",
    "clinic_name": "Oak",
    "clinic_phone": "555 0100",
    "page_url": "https://a.example/p/x",
    "window_ends": "jueves 4:10 p.m.",
    "appointment": "viernes 9:00 a.m.",
    "clinic_tel": "tel:5550100",
    "emergency_number": "911",
    "window_started_earlier": False,
}
# What dispatch adds for reply kinds and staff alerts (see service/messaging/dispatch/compose.py, render).
EXTRA_LONG = {
    "answer": "better",
    "client_url": "https://aftercare.example.com/clients/" + "0" * 36,
    "severity": "urgent",
    "reasons": list(assess("worse", 9, (NUMBNESS, CANNOT_WALK), 3).reasons),
    "reply_text": "me duele mucho la espalda y tengo fiebre",
    "renotify_count": 12,
    "team_sees_at": _longest_spanish_label(False),
    "daily_send_cap": None,
    # A staff member's reply from the inbox (a realistic long one; the form allows up to 640)
    "text": "Hola, gracias por escribirnos. Sí, puede venir el jueves a las 4. Mientras tanto "
            "descanse, use calor suave y llámenos si el dolor sube o nota algo nuevo.",
    # A staff member's invitation or password reset link (service/accounts/tokens.py)
    "staff_name": "Maria Fernanda Gutierrez-Villanueva",
    "link": "https://aftercare.example.com/invite/" + "a" * 43,
    "valid_for": "7 days",
}
EXTRA_SHORT = {
    "answer": None,
    "client_url": "https://a.example/clients/1",
    "severity": "concern",
    "reasons": ["said worse"],
    "reply_text": None,
    "renotify_count": 0,
    "team_sees_at": None,
    "daily_send_cap": None,
    "text": "Thursday at 4 works.",
    "staff_name": "Al",
    "link": "https://a.example/reset-password/x",
    "valid_for": "30 minutes",
}


def contexts():
    """(id, values) for every size, in English and Spanish labels, first visit or not, with or
    without a page link."""
    sizes = (
        ("long", LONG, EXTRA_LONG),
        ("long_es", LONG_ES_LABELS, EXTRA_LONG),
        ("short", SHORT_ES, EXTRA_SHORT),
    )
    for (size, values, extra), first_visit, with_url in itertools.product(
        sizes, (True, False), (True, False)
    ):
        ctx = dict(values, **extra, first_visit=first_visit)
        if not with_url:
            ctx["page_url"] = None
        yield f"{size}-fv{int(first_visit)}-url{int(with_url)}", ctx
