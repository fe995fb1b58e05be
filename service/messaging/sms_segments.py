"""SMS encoding and segment counting (GSM 03.38 / UCS-2).

A message made only of GSM-7 characters is sent in the 7-bit alphabet: 160 septets fit in a
single segment, 153 per segment once it has to be split (the rest is the concatenation header).
Characters of the extension table take two septets (an escape plus the character). Anything
else forces UCS-2: 70 UTF-16 code units in one segment, 67 per segment when split.

When splitting, a two-septet character or a surrogate pair is never cut across segments, so a
multipart count can be one higher than a plain division would give.
"""

from __future__ import annotations

import re

# GSM 03.38 basic character set (the escape 0x1B itself is not a usable character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each costs two septets (escape + character).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


# The same test as a regular expression: it runs in C (the dispatcher checks every SMS's values).
_GSM7_ONLY = re.compile("[" + re.escape("".join(sorted(GSM7_BASIC | GSM7_EXTENSION))) + "]*")


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent in the GSM 7-bit alphabet."""
    return _GSM7_ONLY.fullmatch(text) is not None


def _units(text: str, gsm: bool) -> list[int]:
    """The size of each character: septets for GSM-7, UTF-16 code units for UCS-2."""
    if gsm:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(units: list[int], per_segment: int) -> int:
    """Segments needed when no character may straddle two segments."""
    segments, used = 1, 0
    for size in units:
        if used + size > per_segment:
            segments += 1
            used = 0
        used += size
    return segments


def segment_count(text: str) -> tuple[str, int]:
    """Return the encoding ("GSM-7" or "UCS-2") and the number of segments for ``text``.

    An empty text still counts as one segment.
    """
    gsm = is_gsm7(text)
    encoding = "GSM-7" if gsm else "UCS-2"
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if gsm else (UCS2_SINGLE, UCS2_MULTI)
    units = _units(text, gsm)
    if sum(units) <= single:
        return encoding, 1
    return encoding, _pack(units, multi)
