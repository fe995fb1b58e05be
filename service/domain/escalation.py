"""When a client's reply must reach the clinic, and how often to chase staff until someone acknowledges it.

Pure (no Flask, no database): the reply interpreter turns an SMS into plain values
(answer, pain score, red-flag words) and the caller stores the outcome. Keeping the rules here means
every threshold in DESIGN.md ("Replies and escalation") is one line of code with a test beside it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from service.domain import replies
from service.domain.i18n import N_, reader

CONCERN = "concern"
URGENT = "urgent"
SEVERITIES = (CONCERN, URGENT)  # lowest first
_RANK = {None: 0, CONCERN: 1, URGENT: 2}

PAIN_MIN, PAIN_MAX = 0, 10
HIGH_PAIN = 7  # 7/10 or more is a concern on its own
# 2 points is the smallest change in a 0-10 pain score that matters for low back pain, so a rise of
# 2+ over the client's own baseline is a concern even when the absolute score is still moderate.
MEANINGFUL_RISE = 2

# What staff read for each red flag, on the dashboard, in alerts and in exports: words, not codes.
RED_FLAG_WORDS = {
    replies.NUMBNESS: N_("numbness or tingling"),
    replies.LEG_WEAKNESS: N_("new leg weakness"),
    replies.BLADDER_BOWEL: N_("loss of bladder or bowel control"),
    replies.FEVER: N_("fever"),
    replies.CANNOT_WALK: N_("cannot walk or stand"),
}

# The reasons an escalation stores, in English (exports, alerts and the API show them as stored); a
# staff page reads one back with read_reason and says it in its own language.
RED_FLAG_REASON = N_("red flag: %(flag)s")
RED_FLAG_UNNAMED = N_("red flag")
SAID_WORSE = N_("said worse")
HIGH_PAIN_REASON = N_("pain %(pain)s/10")
PAIN_RISE_REASON = N_("pain up %(rise)s from baseline %(baseline)s")
# A stored reason back as (msgid, values); None for one written otherwise (an older free text).
read_reason = reader(RED_FLAG_REASON, RED_FLAG_UNNAMED, SAID_WORSE, HIGH_PAIN_REASON, PAIN_RISE_REASON)

DEFAULT_RENOTIFY_INTERVAL = timedelta(minutes=30)
DEFAULT_RENOTIFY_MAX = 3


@dataclass(frozen=True)
class Assessment:
    severity: str | None  # None, CONCERN or URGENT
    reasons: tuple[str, ...]  # short, human-readable, e.g. ("said worse", "pain 8/10")

    def __post_init__(self) -> None:
        if self.severity is not None and self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")


@dataclass(frozen=True)
class OpenEscalation:
    """The little the rules need to know about the client's open (unacknowledged) escalation."""

    severity: str
    opened_at: datetime
    last_notified_at: datetime | None
    notify_count: int  # re-notifications already sent (the first alert is not counted)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.notify_count < 0:
            raise ValueError(f"notify_count must not be negative, got {self.notify_count}")


@dataclass(frozen=True)
class Decision:
    """What to do with a worrying reply. When page_now is True the caller alerts on-call staff and
    records that alert as the escalation's last_notified_at, so re-notification counts from it."""

    open_new: bool  # no escalation open: open one
    upgrade: bool  # open concern + new urgent: raise it to urgent
    page_now: bool  # alert on-call staff now (new escalation or upgrade)
    reasons: tuple[str, ...]


def assess(
    answer: str | None,
    pain: int | None,
    red_flags: tuple[str, ...],
    baseline_pain: int | None,
) -> Assessment:
    """Grade one reply. Every rule that fires is listed (most severe first) so staff see the whole
    picture; the highest severity wins. Without a baseline only the absolute pain rule can apply."""
    if isinstance(red_flags, str):
        # A bare string would be read letter by letter; the interpreter must pass a tuple of words.
        raise TypeError("red_flags must be a tuple of words, not a string")
    _check_pain(pain, "pain")
    _check_pain(baseline_pain, "baseline_pain")
    said = _normalise_answer(answer)

    urgent = tuple(RED_FLAG_REASON % {"flag": _words(flag)} if flag.strip() else RED_FLAG_UNNAMED
                   for flag in red_flags)
    concern: list[str] = []
    if said == replies.WORSE:
        concern.append(SAID_WORSE)
    if pain is not None and pain >= HIGH_PAIN:
        concern.append(HIGH_PAIN_REASON % {"pain": pain})
    if pain is not None and baseline_pain is not None and pain - baseline_pain >= MEANINGFUL_RISE:
        concern.append(PAIN_RISE_REASON % {"rise": pain - baseline_pain, "baseline": baseline_pain})

    if urgent:
        return Assessment(URGENT, tuple(dict.fromkeys(urgent)) + tuple(concern))
    if concern:
        return Assessment(CONCERN, tuple(concern))
    return Assessment(None, ())


def on_assessment(open_escalation: OpenEscalation | None, assessment: Assessment) -> Decision | None:
    """One open escalation per client: a new worry opens one, a worse worry upgrades it, anything
    else is added to it without paging again (staff are already being chased for it)."""
    if assessment.severity is None:
        return None
    if open_escalation is None:
        return Decision(open_new=True, upgrade=False, page_now=True, reasons=assessment.reasons)
    if _RANK[assessment.severity] > _RANK[open_escalation.severity]:
        return Decision(open_new=False, upgrade=True, page_now=True, reasons=assessment.reasons)
    return Decision(open_new=False, upgrade=False, page_now=False, reasons=assessment.reasons)


def renotification_due(
    escalation: OpenEscalation,
    now: datetime,
    interval: timedelta = DEFAULT_RENOTIFY_INTERVAL,
    max_count: int = DEFAULT_RENOTIFY_MAX,
) -> bool:
    """Chase on-call staff every `interval` after the last alert (or the opening), at most max_count
    times, so an unacknowledged escalation is neither forgotten nor turned into a pager storm."""
    _require_aware(now, "now")
    _require_aware(escalation.opened_at, "opened_at")
    if escalation.last_notified_at is not None:
        _require_aware(escalation.last_notified_at, "last_notified_at")
    if interval <= timedelta(0):
        raise ValueError(f"interval must be positive, got {interval}")
    if max_count < 0:
        raise ValueError(f"max_count must not be negative, got {max_count}")
    if escalation.notify_count >= max_count:
        return False
    last_alert = escalation.last_notified_at or escalation.opened_at
    return now >= last_alert + interval


def unanswered(escalation: OpenEscalation, max_count: int = DEFAULT_RENOTIFY_MAX) -> bool:
    """Every re-notification has gone out and nobody acknowledged: the dashboard flags it."""
    if max_count < 0:
        raise ValueError(f"max_count must not be negative, got {max_count}")
    return escalation.notify_count >= max_count


def _words(flag: str) -> str:
    """A red flag as staff read it; a flag named in words already is kept as it is."""
    flag = flag.strip()
    return RED_FLAG_WORDS.get(flag, flag.replace("_", " "))


def _check_pain(value: int | None, name: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number 0-10, got {value!r}")
    if not PAIN_MIN <= value <= PAIN_MAX:
        raise ValueError(f"{name} must be 0-10, got {value}")


def _normalise_answer(answer: str | None) -> str | None:
    """Case-insensitive, so a "Worse" from any caller can never slip past the concern rule."""
    if answer is None:
        return None
    said = answer.strip().lower()
    if said not in replies.ANSWERS:
        raise ValueError(f"answer must be one of {replies.ANSWERS} or None, got {answer!r}")
    return said


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
