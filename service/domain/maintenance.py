"""A suggested maintenance interval that follows the client's own check-ins.

Other booking systems recall every client at one fixed interval. Back walking usually starts weekly and
settles into maintenance every 2-6 weeks as the back improves, so the interval should stretch while a
client keeps improving and shorten when they are not. This is only a suggestion for the clinic: a few
plain rules over the last few check-ins, each giving a one-line reason a clinic owner can check.

Pure (the standard library and the domain only: no Flask, no database), deterministic, and easy to test.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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
class Suggestion:
    weeks: int | None  # None: no nudge until staff decide (an open escalation)
    reason: str  # one line a clinic owner understands


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
        return Suggestion(None, "An escalation is open: no rebooking nudge until staff decide.")

    keep = _clamp(current_weeks, min_weeks, max_weeks)
    if len(checkins) < MIN_CHECKINS:
        return Suggestion(keep, f"Not enough check-ins yet: keep {_weeks(keep)}.")

    recent = sorted(checkins, key=lambda c: c.at)[-WINDOW:]
    span = f"the last {len(recent)} check-ins"
    answers = [c.answer for c in recent if c.answer is not None]
    scores = [c.pain for c in recent if c.pain is not None]

    def change(delta: int, evidence: str) -> Suggestion:
        weeks = _clamp(current_weeks + delta, min_weeks, max_weeks)
        if delta > 0 and weeks == keep == max_weeks:
            return Suggestion(weeks, f"{evidence}: already at the {max_weeks}-week maximum.")
        if delta < 0 and weeks == keep == min_weeks:
            return Suggestion(weeks, f"{evidence}: already at the {min_weeks}-week minimum.")
        verb = "stretch" if delta > 0 else "shorten"
        return Suggestion(weeks, f"{evidence}: {verb} to {_weeks(weeks)}.")

    # 3. Worse: the cautious direction wins over any good news in the same window.
    worse = answers.count("worse")
    if worse:
        said = "1 said worse" if worse == 1 else f"{worse} said worse"
        return change(-1, f"Worse in {span} ({said})")
    rise = _largest_rise(scores)
    if rise is not None:
        low, high = rise
        return change(-1, f"Pain rose from {low} to {high} in {span}")

    # 4. Improving steadily.
    never_up = all(b <= a for a, b in zip(scores, scores[1:], strict=False))
    better = answers.count("better")
    falling = len(scores) >= 2 and scores[-1] < scores[0]
    if "same" not in answers and never_up and (better >= 2 or falling):
        evidence = []
        if better:
            evidence.append(f"{better} said better")
        if falling:
            evidence.append(f"pain {scores[0]} to {scores[-1]}")
        return change(+1, f"Improving across {span} ({', '.join(evidence)})")

    # 5. Steady: mostly "same", or only pain scores that neither fell steadily nor rose by 2+.
    same = answers.count("same")
    if same * 2 > len(recent) or (not answers and scores):
        what = f"{same} of {len(recent)} said same" if same else "pain scores only, no clear change"
        if scores and min(scores) >= HIGH_PAIN:
            return change(-1, f"Steady in {span} ({what}) but pain stays at {min(scores)}+")
        return Suggestion(keep, f"Steady in {span} ({what}): keep {_weeks(keep)}.")

    # 6. Mixed signals: no reason to move.
    return Suggestion(keep, f"Mixed signals in {span}: keep {_weeks(keep)}.")


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


def _weeks(n: int) -> str:
    return "1 week" if n == 1 else f"{n} weeks"
