"""A suggested maintenance interval that follows the client's own check-ins.

Other booking systems recall every client at one fixed interval. Back walking usually starts weekly and
settles into maintenance every 2-6 weeks as the back improves, so the interval should stretch while a
client keeps improving and shorten when they are not. This is only a suggestion for the clinic: a few
plain rules over the last few check-ins, each giving a one-line reason a clinic owner can check.

Pure (the standard library and the domain only: no Flask, no database), deterministic, and easy to test.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from service.domain.i18n import N_, Nn_
from service.domain.replies import ANSWERS

WINDOW = 3  # how many recent check-ins the rules look at
MIN_CHECKINS = 2  # fewer than this is no trend at all
MEANINGFUL_RISE = 2  # 2 points is the smallest pain change that matters for low back pain
HIGH_PAIN = 6  # "same" while pain stays at 6+ is not a client to leave alone longer


@dataclass(frozen=True)
class CheckInFact:
    at: datetime  # aware
    answer: str | None  # better | same | worse
    pain: int | None  # 0-10

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"at must be timezone-aware, got naive {self.at.isoformat()}")
        if self.answer is not None:
            said = self.answer.strip().lower()
            if said not in ANSWERS:
                raise ValueError(f"answer must be one of {ANSWERS} or None, got {self.answer!r}")
            object.__setattr__(self, "answer", said)
        if self.pain is not None:
            if isinstance(self.pain, bool) or not isinstance(self.pain, int) or not 0 <= self.pain <= 10:
                raise ValueError(f"pain must be a whole number 0-10, got {self.pain!r}")


@dataclass(frozen=True)
class Sentence:
    """A reason as its msgid and values, so a page says it in its language: a (singular, plural)
    pair names the weeks as %(num)s (ngettext by `weeks`). str() is the English."""

    msgid: str | tuple[str, str]
    weeks: int | None = None
    values: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        if isinstance(self.msgid, str):
            return self.msgid % self.values
        singular, plural = self.msgid
        return (singular if self.weeks == 1 else plural) % {"num": self.weeks, **self.values}


@dataclass(frozen=True)
class Suggestion:
    weeks: int | None  # None: no nudge until staff decide (an open escalation)
    reason: str  # one line a clinic owner understands, in English (the API's)
    sentence: Sentence | None = field(default=None, compare=False)  # the reason, for a page

    @classmethod
    def of(cls, weeks: int | None, sentence: Sentence) -> "Suggestion":
        return cls(weeks, str(sentence), sentence)


# Every reason is a whole sentence (one msgid). A rule that moves the interval has two: moved to
# %(num)s weeks, or already at the limit (%(limit)s).
OPEN = N_("An escalation is open: no rebooking nudge until staff decide.")
FEW = Nn_("Not enough check-ins yet: keep %(num)s week.", "Not enough check-ins yet: keep %(num)s weeks.")
STEADY_KEEP = Nn_(
    "Steady in the last %(count)s check-ins (%(same)s of %(count)s said same): keep %(num)s week.",
    "Steady in the last %(count)s check-ins (%(same)s of %(count)s said same): keep %(num)s weeks.")
SCORES_KEEP = Nn_(
    "Steady in the last %(count)s check-ins (pain scores only, no clear change): keep %(num)s week.",
    "Steady in the last %(count)s check-ins (pain scores only, no clear change): keep %(num)s weeks.")
MIXED = Nn_("Mixed signals in the last %(count)s check-ins: keep %(num)s week.",
            "Mixed signals in the last %(count)s check-ins: keep %(num)s weeks.")
WORSE = (Nn_("Worse in the last %(count)s check-ins (%(worse)s said worse): shorten to %(num)s week.",
             "Worse in the last %(count)s check-ins (%(worse)s said worse): shorten to %(num)s weeks."),
         N_("Worse in the last %(count)s check-ins (%(worse)s said worse): "
            "already at the %(limit)s-week minimum."))
ROSE = (Nn_("Pain rose from %(low)s to %(high)s in the last %(count)s check-ins: shorten to %(num)s week.",
            "Pain rose from %(low)s to %(high)s in the last %(count)s check-ins: shorten to %(num)s weeks."),
        N_("Pain rose from %(low)s to %(high)s in the last %(count)s check-ins: "
           "already at the %(limit)s-week minimum."))
STEADY_HIGH = (
    Nn_("Steady in the last %(count)s check-ins (%(same)s of %(count)s said same) but pain stays at "
        "%(pain)s+: shorten to %(num)s week.",
        "Steady in the last %(count)s check-ins (%(same)s of %(count)s said same) but pain stays at "
        "%(pain)s+: shorten to %(num)s weeks."),
    N_("Steady in the last %(count)s check-ins (%(same)s of %(count)s said same) but pain stays at "
       "%(pain)s+: already at the %(limit)s-week minimum."))
SCORES_HIGH = (
    Nn_("Steady in the last %(count)s check-ins (pain scores only, no clear change) but pain stays at "
        "%(pain)s+: shorten to %(num)s week.",
        "Steady in the last %(count)s check-ins (pain scores only, no clear change) but pain stays at "
        "%(pain)s+: shorten to %(num)s weeks."),
    N_("Steady in the last %(count)s check-ins (pain scores only, no clear change) but pain stays at "
       "%(pain)s+: already at the %(limit)s-week minimum."))
BETTER = (Nn_("Improving across the last %(count)s check-ins (%(better)s said better): "
              "stretch to %(num)s week.",
              "Improving across the last %(count)s check-ins (%(better)s said better): "
              "stretch to %(num)s weeks."),
          N_("Improving across the last %(count)s check-ins (%(better)s said better): "
             "already at the %(limit)s-week maximum."))
FALLING = (Nn_("Improving across the last %(count)s check-ins (pain %(first)s to %(last)s): "
               "stretch to %(num)s week.",
               "Improving across the last %(count)s check-ins (pain %(first)s to %(last)s): "
               "stretch to %(num)s weeks."),
           N_("Improving across the last %(count)s check-ins (pain %(first)s to %(last)s): "
              "already at the %(limit)s-week maximum."))
BETTER_FALLING = (
    Nn_("Improving across the last %(count)s check-ins (%(better)s said better, pain %(first)s to "
        "%(last)s): stretch to %(num)s week.",
        "Improving across the last %(count)s check-ins (%(better)s said better, pain %(first)s to "
        "%(last)s): stretch to %(num)s weeks."),
    N_("Improving across the last %(count)s check-ins (%(better)s said better, pain %(first)s to "
       "%(last)s): already at the %(limit)s-week maximum."))


def suggest_interval(
    checkins: Sequence[CheckInFact],
    current_weeks: int,
    min_weeks: int = 1,
    max_weeks: int = 6,
    open_escalation: bool = False,
) -> Suggestion:
    """Suggest the next maintenance interval from the last 3 check-ins (oldest to newest by time).

    The first rule that matches decides:
    1. an open escalation: no suggestion, staff decide;
    2. fewer than 2 check-ins: keep the current interval;
    3. any "worse", or a pain score 2+ above an earlier one: one week shorter;
    4. steadily improving (no "same"/"worse", pain never going up, and 2+ "better" or pain falling): one
       week longer;
    5. mostly "same" (or only pain scores): keep, but one week shorter if pain stays at 6 or more;
    6. anything else is mixed: keep.
    The result is always clamped to [min_weeks, max_weeks].
    """
    if min_weeks < 1:
        raise ValueError(f"min_weeks must be at least 1, got {min_weeks}")
    if max_weeks < min_weeks:
        raise ValueError(f"max_weeks ({max_weeks}) must not be below min_weeks ({min_weeks})")
    if current_weeks < 1:
        raise ValueError(f"current_weeks must be at least 1, got {current_weeks}")

    if open_escalation:
        return Suggestion.of(None, Sentence(OPEN))

    keep = _clamp(current_weeks, min_weeks, max_weeks)
    if len(checkins) < MIN_CHECKINS:
        return Suggestion.of(keep, Sentence(FEW, keep))

    recent = sorted(checkins, key=lambda c: c.at)[-WINDOW:]
    answers = [c.answer for c in recent if c.answer is not None]
    scores = [c.pain for c in recent if c.pain is not None]

    def change(delta: int, sentences: tuple[tuple[str, str], str], **values: int) -> Suggestion:
        """One week longer (delta 1) or shorter (-1): the rule's sentence moved, or at the limit."""
        moved, at_limit = sentences
        weeks = _clamp(current_weeks + delta, min_weeks, max_weeks)
        values["count"] = len(recent)
        limit = max_weeks if delta > 0 else min_weeks
        if weeks == keep == limit:
            return Suggestion.of(weeks, Sentence(at_limit, values={**values, "limit": limit}))
        return Suggestion.of(weeks, Sentence(moved, weeks, values))

    # 3. Worse: the cautious direction wins over any good news in the same window.
    worse = answers.count("worse")
    if worse:
        return change(-1, WORSE, worse=worse)
    rise = _largest_rise(scores)
    if rise is not None:
        low, high = rise
        return change(-1, ROSE, low=low, high=high)

    # 4. Improving steadily.
    never_up = all(b <= a for a, b in zip(scores, scores[1:], strict=False))
    better = answers.count("better")
    falling = len(scores) >= 2 and scores[-1] < scores[0]
    if "same" not in answers and never_up and (better >= 2 or falling):
        if not falling:
            return change(+1, BETTER, better=better)
        return change(+1, BETTER_FALLING if better else FALLING, better=better, first=scores[0],
                      last=scores[-1])

    # 5. Steady: mostly "same", or only pain scores that neither fell steadily nor rose by 2+.
    same = answers.count("same")
    if same * 2 > len(recent) or (not answers and scores):
        if scores and min(scores) >= HIGH_PAIN:
            return change(-1, STEADY_HIGH if same else SCORES_HIGH, same=same, pain=min(scores))
        return Suggestion.of(keep, Sentence(STEADY_KEEP if same else SCORES_KEEP, keep,
                                            {"count": len(recent), "same": same}))

    # 6. Mixed signals: no reason to move.
    return Suggestion.of(keep, Sentence(MIXED, keep, {"count": len(recent)}))


def _largest_rise(scores: list[int]) -> tuple[int, int] | None:
    """The biggest climb from an earlier score to a later one, if it is 2+ points."""
    best: tuple[int, int] | None = None
    lowest = None
    for score in scores:
        if lowest is not None and score - lowest >= MEANINGFUL_RISE:
            if best is None or score - lowest > best[1] - best[0]:
                best = (lowest, score)
        lowest = score if lowest is None else min(lowest, score)
    return best


def _clamp(weeks: int, low: int, high: int) -> int:
    return max(low, min(high, weeks))
