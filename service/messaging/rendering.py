"""Render outgoing messages (SMS bodies, emails) from the Jinja templates we ship. A clinic's own
SMS wording of a plan text is data, never a template: domain/wording.py fills in its placeholders.

No Flask here: the worker renders at send time, outside any app context.

Layout under ``templates_dir``::

    messages/<language>/sms/<kind>.txt
    messages/<language>/email/<kind>.subject.txt
    messages/<language>/email/<kind>.txt      plain-text part
    messages/<language>/email/<kind>.html     HTML part, extends .../email/base.html
    messages/<language>/email/base.txt        plain-text frame (greeting, sign-off, opt-out)

Context variables the templates may use: client_name, clinic_name, clinic_phone (as the reader
dials it), clinic_tel (its tel: link, for HTML), emergency_number (where the reader is), first_visit,
window_ends, window_started_earlier (a late enrolment: the window began at the session, not now),
appointment, page_url; answers to a client also answer and team_sees_at (when a held
concern reaches the team), staff alerts severity, reasons, reply_text, client_url, renotify_count
(or, for the clinic reaching its daily send cap, daily_send_cap alone).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from service.config import TEMPLATES
from service.domain import wording as own_wording
from service.domain.i18n import N_
from service.messaging.sms_segments import is_gsm7, segment_count

log = logging.getLogger(__name__)
TEMPLATES_DIR = TEMPLATES

CHANNELS = ("sms", "email")
DEFAULT_LANGUAGE = "en"

# Language tags look like "en", "es", "es-MX", "es_MX"; anything else falls back to the default.
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class Rendered:
    body: str  # SMS body, or the email's plain-text part
    subject: str | None = None  # email only
    html: str | None = None  # email only


def _autoescape(template_name: str | None) -> bool:
    return template_name is not None and template_name.endswith(".html")


class Renderer:
    """Renders one message kind for one channel and language."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR):
        self.templates_dir = Path(templates_dir)
        self.env = Environment(
            loader=FileSystemLoader(str(self.templates_dir)),
            undefined=StrictUndefined,
            autoescape=_autoescape,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._languages: dict[tuple[str, str, str], str] = {}

    def _has(self, name: str) -> bool:
        try:
            self.env.get_template(name)
        except TemplateNotFound:
            return False
        return True

    def _language_for(self, kind: str, channel: str, language: str) -> str:
        """The first of (language, its base language, "en") that has this kind for this channel.
        Remembered: a worker asks for the same few combinations for every message."""
        key = (kind, channel, language)
        if key not in self._languages:
            self._languages[key] = self._find_language(kind, channel, language)
        return self._languages[key]

    def _find_language(self, kind: str, channel: str, language: str) -> str:
        candidates: list[str] = []
        if language and _LANGUAGE_RE.match(language):
            tag = language.replace("_", "-")
            candidates += [tag, tag.split("-")[0].lower()]
        candidates.append(DEFAULT_LANGUAGE)
        for candidate in dict.fromkeys(candidates):
            if self._has(f"messages/{candidate}/{channel}/{kind}.txt"):
                return candidate
        raise ValueError(f"no template for {kind!r} on {channel!r}")

    def render(self, kind: str, channel: str, language: str, context: Mapping,
               wording: Mapping[str, str] | None = None) -> Rendered:
        """`wording`: a clinic's own SMS text per kind, in this language, instead of ours (for
        the kinds a clinic may word: never urgent advice or a staff alert)."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel: {channel!r}")
        if kind == "appointment_reminder" and not context.get("appointment"):
            raise ValueError("appointment_reminder needs an 'appointment' label")

        lang = self._language_for(kind, channel, language)
        base = f"messages/{lang}/{channel}/{kind}"
        if channel == "sms":
            # A name with one character outside GSM-7 would make the whole text UCS-2 (3x the cost).
            ctx = {k: gsm_safe(v) if isinstance(v, str) else v for k, v in context.items()}
            own = wording.get(kind) if wording and kind in own_wording.EDITABLE else None
            if own:
                try:
                    return Rendered(body=own_wording.render(own, kind, ctx))
                except own_wording.WordingError as exc:  # stored around the editor's checks
                    log.warning("a clinic's %s wording cannot be used, ours is sent: %s", kind, exc)
            return Rendered(body=self._render(f"{base}.txt", ctx))
        ctx = dict(context)
        subject = " ".join(self._render(f"{base}.subject.txt", ctx).split())
        return Rendered(
            body=self._render(f"{base}.txt", ctx),
            subject=subject,
            html=self._render(f"{base}.html", ctx),
        )

    def _render(self, name: str, context: dict) -> str:
        return self.env.get_template(name).render(context).strip()

    def starting_wording(self, kind: str, language: str) -> str:
        """Our text of a kind as a clinic's wording, the editor's starting point: our template
        rendered with the placeholders as its values (a repeat visit's text: a wording reads the
        same for every visit)."""
        placeholders = {p.key: f"{{{p.name}}}" for p in own_wording.allowed(kind)}
        context = {"first_visit": False, "window_started_earlier": False, **placeholders}
        return self.render(kind, "sms", language, context).body


def as_sent(text: str) -> str:
    """A clinic's wording as it is stored and sent: each letter GSM-7 lacks but has a plain
    letter under its accent (á í ó ú, in every other Spanish sentence) written as that letter,
    by gsm_safe, the rule our dates and a client's name follow; one such letter would make the
    whole text UCS-2, up to three times the cost.

    Converted once, on save (and in the preview), not at each render: the stored wording is then
    the very text clients get, the editor shows it back as it is, and the worker renders every
    clinic's wording by substitution alone. A character with no plain letter under it (an emoji,
    a curly quote) is left as it is, for wording_problems to refuse."""
    return gsm_safe(text)


def wording_problems(text: str, kind: str, longest: Mapping) -> list[own_wording.Problem]:
    """Everything that keeps a clinic's wording from being saved, each in plain words: its form
    (domain/wording.py), a character outside GSM-7 once it is as sent, more than MAX_SEGMENTS
    segments with the longest realistic values (`longest`, a message context)."""
    form = own_wording.problems(text, kind)
    if len(text) > own_wording.MAX_LENGTH:
        return form  # that alone: nothing more is read
    problems = list(form)
    text = as_sent(text)
    outside = [ch for ch in dict.fromkeys(text) if not is_gsm7(ch)]
    if outside:
        problems.append(own_wording.Problem(
            N_("%(characters)s cannot be sent in the plain SMS alphabet (GSM-7): one such "
               "character makes every segment hold 70 characters instead of 160, up to three "
               "times the cost"), characters=", ".join(f"“{ch}”" for ch in outside)))
    if not form:
        encoding, segments = segment_count(own_wording.render(text, kind, longest))
        if segments > own_wording.MAX_SEGMENTS:
            problems.append(own_wording.Problem(
                N_("takes %(num)s segments (%(encoding)s) with a long name, link and times; keep "
                   "it within %(max)s"), num=segments, encoding=encoding,
                max=own_wording.MAX_SEGMENTS))
    return problems


# Short "weekday + time" patterns per language; other languages get a skeleton in their own
# hour cycle (12 h or 24 h) from CLDR, with whole day and month names: their short forms can read
# as other words (Spanish "mar" is both martes and marzo, and "the sea").
_TIME_PATTERNS = {"en": "EEE h:mm a"}
_DATE_TIME_PATTERNS = {"en": "EEE MMM d, h:mm a"}
_SHORT_NAMES = re.compile(r"'[^']*'|E+|M{3,}|L{3,}")  # quoted literals are kept as they are
_SPACES = {"\u202f": " ", "\u00a0": " ", "\u2009": " ", "\u2007": " "}


def gsm_safe(text: str) -> str:
    """Plain spaces for babel's special spaces; strip accents that GSM-7 lacks (á -> a)."""
    if is_gsm7(text):  # the common case, and babel's special spaces are not GSM-7
        return text
    for special, plain in _SPACES.items():
        text = text.replace(special, plain)
    out = []
    for ch in text:
        if not is_gsm7(ch):
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if is_gsm7(c))
            ch = base or ch  # a script GSM-7 cannot carry is left as it is (UCS-2 anyway)
        out.append(ch)
    return "".join(out)


def local_time_label(moment: datetime, time_zone: str, language: str, with_date: bool = False) -> str:
    """A short local label such as "Thu 4:10 PM" (with_date: "Thu Dec 3, 4:10 PM", for an
    appointment weeks away), in the client's zone and language.

    ``moment`` should be aware; a naive value is taken as UTC (how SQLite hands it back).
    The result is GSM-7 safe for Latin-script languages, so it can go into an SMS.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Labels show minutes: visits in the same minute share one (a wave repeats them a lot).
    return _label(moment.replace(second=0, microsecond=0), time_zone, language, with_date)


@lru_cache(maxsize=4096)
def _label(moment: datetime, time_zone: str, language: str, with_date: bool) -> str:
    locale, pattern = _locale_pattern(language, with_date)
    return gsm_safe(format_datetime(moment, pattern, tzinfo=ZoneInfo(time_zone), locale=locale))


@lru_cache(maxsize=64)
def _locale_pattern(language: str, with_date: bool) -> tuple[Locale, str]:
    try:
        locale = Locale.parse((language or DEFAULT_LANGUAGE).replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        locale = Locale.parse(DEFAULT_LANGUAGE)
    pattern = (_DATE_TIME_PATTERNS if with_date else _TIME_PATTERNS).get(str(locale))
    if pattern is None:
        skeletons = locale.datetime_skeletons
        time_skeleton = "hm" if any(c in locale.time_formats["short"].pattern for c in "hK") else "Hm"
        if with_date:
            date = skeletons.get("MMMMEd") or skeletons["MMMEd"]
            pattern = f"{date.pattern}, {skeletons[time_skeleton].pattern}"
        else:
            pattern = skeletons[f"E{time_skeleton}"].pattern
        pattern = _SHORT_NAMES.sub(_whole_name, pattern)
    return locale, pattern


def _whole_name(field: re.Match[str]) -> str:
    text = field[0]
    return text if text.startswith("'") else text[0] * 4
