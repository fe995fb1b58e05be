"""The aftercare plan: which messages a visit gets, and when.

Kept pure (stdlib only, no Flask, no database) so that the timing rules, the part most likely to go
wrong around time zones, DST and quiet hours, can be tested exhaustively and reused by enrolment and
the worker alike. Offsets are elapsed time; due times are computed in the client's zone and returned
as aware UTC datetimes, ready for the outbox.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WINDOW_START = "window_start"
HYDRATION = "hydration"
HEAT = "heat"
CHECKIN = "checkin"
FOLLOWUP = "followup"
APPOINTMENT_REMINDER = "appointment_reminder"
REBOOK_NUDGE = "rebook_nudge"
PLAN_KINDS = (
    WINDOW_START,
    HYDRATION,
    HEAT,
    CHECKIN,
    FOLLOWUP,
    APPOINTMENT_REMINDER,
    REBOOK_NUDGE,
)

# Advice about the 24-hour window: pointless once the window is over.
WINDOW_ADVICE = frozenset({WINDOW_START, HYDRATION, HEAT})
CHANNELS = ("sms", "email")  # in order of preference: a text is read soonest

WINDOW_LENGTH = timedelta(hours=24)
# A window text sent later than this after the session must not read as if the window starts now.
STARTS_NOW_WITHIN = timedelta(hours=1)
# Messages due this close together are one moment: the one that covers the other goes alone.
TOGETHER = timedelta(hours=1)
# Which later (or simultaneous) messages of the plan make a message redundant: the window's first
# text says what the tips say, and the follow-up asks what the check-in asks.
COVERED_BY = {
    HYDRATION: frozenset({WINDOW_START}),
    HEAT: frozenset({WINDOW_START, HYDRATION}),
    CHECKIN: frozenset({FOLLOWUP}),
}
# A reminder arriving closer to the appointment than this is more confusing than helpful.
MIN_REMINDER_LEAD = timedelta(hours=1)


@dataclass(frozen=True)
class PlanSettings:
    """A clinic's timing choices; the defaults are the ones in DESIGN.md."""

    quiet_start: time = time(21, 0)  # client-local; may wrap midnight; start == end: no quiet hours
    quiet_end: time = time(8, 0)
    hydration_after: timedelta = timedelta(hours=2)
    heat_after: timedelta = timedelta(hours=6)
    checkin_after: timedelta = timedelta(hours=24)
    followup_after: timedelta = timedelta(hours=72)
    reminder_before: timedelta = timedelta(hours=24)
    weekly_visits: int = 3  # visits 1..weekly_visits are rebooked weekly
    maintenance_weeks: int = 3  # afterwards every N weeks (clinic setting, 1-6)
    enabled_kinds: frozenset[str] = frozenset(PLAN_KINDS)

    def __post_init__(self) -> None:
        unknown = set(self.enabled_kinds) - set(PLAN_KINDS)
        if unknown:
            raise ValueError(f"unknown message kinds: {sorted(unknown)}")
        if not 1 <= self.maintenance_weeks <= 6:
            raise ValueError(f"maintenance_weeks must be 1-6, got {self.maintenance_weeks}")
        if self.weekly_visits < 0:
            raise ValueError(f"weekly_visits must not be negative, got {self.weekly_visits}")
        offsets = (self.hydration_after, self.heat_after, self.checkin_after, self.followup_after)
        # A negative offset would schedule advice for before the session took place.
        if any(offset < timedelta(0) for offset in offsets) or self.reminder_before < timedelta(0):
            raise ValueError("plan offsets must not be negative")


@dataclass(frozen=True)
class VisitFacts:
    """What enrolment knows about a session; checked here so the plan never sees nonsense."""

    occurred_at: datetime
    visit_number: int  # 1 = first visit
    time_zone: str  # the client's IANA zone, e.g. "America/New_York"
    channels: tuple[str, ...]  # e.g. ("sms",), ("email",), ("sms", "email")
    appointment_at: datetime | None = None  # the next booked appointment, if any
    enrolled_at: datetime | None = None  # when the plan is made; the session's time by default

    def __post_init__(self) -> None:
        _require_aware(self.occurred_at, "occurred_at")
        if self.enrolled_at is not None:
            _require_aware(self.enrolled_at, "enrolled_at")
        if self.appointment_at is not None:
            _require_aware(self.appointment_at, "appointment_at")
        if self.visit_number < 1:
            raise ValueError(f"visit_number starts at 1, got {self.visit_number}")
        _zone(self.time_zone)


@dataclass(frozen=True)
class PlannedMessage:
    kind: str
    channel: str
    due_at: datetime  # aware, UTC


@dataclass(frozen=True)
class PendingMessage:
    """The little a superseding decision needs to know about an outbox row."""

    id: int
    kind: str
    appointment_at: datetime | None  # for appointment reminders: the appointment they remind of


def channels_for(*, can_text: bool, can_email: bool, choice: str | None = None,
                 requested: Iterable[str] | None = None, clinic_both: bool = False) -> tuple[str, ...]:
    """The channels a client's plan messages go on: one by default (texts when the client can get
    them, else email), both only when chosen.

    The client's own choice ("sms", "email" or "both") comes first, then the enrolment's
    (`requested`), then the clinic's (`clinic_both`). A channel the client cannot be reached on is
    left out, and when that leaves none, the other one is used: a client who texts STOP still
    gets the aftercare by email. Empty when neither can reach the client.
    """
    reachable = [channel for channel, ok in zip(CHANNELS, (can_text, can_email), strict=True) if ok]
    if choice in CHANNELS:
        wanted = {choice}
    elif choice == "both" or (not requested and clinic_both):
        wanted = set(CHANNELS)
    else:
        wanted = set(requested or reachable[:1])
    return tuple(c for c in reachable if c in wanted) or tuple(reachable[:1])


def window_started_earlier(occurred_at: datetime, now: datetime) -> bool:
    """Whether a window text sent now must say the window began at the session, not now."""
    return now - occurred_at > STARTS_NOW_WITHIN


def _covered(kind: str, due_at: datetime, others: Iterable[tuple[str, datetime]]) -> bool:
    """Whether a message due at `due_at` is made redundant by one of `others` (kind, due) of the
    same visit, due with it or within TOGETHER after it."""
    covering = COVERED_BY.get(kind, ())
    return any(k in covering and timedelta(0) <= at - due_at <= TOGETHER for k, at in others)


def window_ends_at(occurred_at: datetime) -> datetime:
    """End of the no-exercise window: 24 real hours, so its local end shifts across DST."""
    _require_aware(occurred_at, "occurred_at")
    return occurred_at.astimezone(UTC) + WINDOW_LENGTH


def window_over(occurred_at: datetime, at: datetime) -> bool:
    """Whether window advice arriving `at` is too late: planned (plan_visit) and sent
    (sendtime) by this one rule."""
    return at >= window_ends_at(occurred_at)


def defer_for_quiet_hours(due_at: datetime, time_zone: str, settings: PlanSettings) -> datetime:
    """Hold a message that would land in the client's quiet hours until they end (in UTC)."""
    _require_aware(due_at, "due_at")
    zone = _zone(time_zone)
    due_utc = due_at.astimezone(UTC)
    end_date = _quiet_end_date(due_utc.astimezone(zone), settings)
    if end_date is None:
        return due_utc
    # A quiet end inside a spring-forward gap resolves (fold=0) to the instant just after the gap.
    end = datetime.combine(end_date, settings.quiet_end, tzinfo=zone)
    if end.astimezone(UTC) < due_utc:
        # On a fall-back night the end's wall time occurs twice; ours is the second occurrence.
        end = end.replace(fold=1)
    # Landing past a gap can skip a short open period entirely; then the next day's end applies.
    return defer_for_quiet_hours(end, time_zone, settings)


def rebook_interval(visit_number: int, settings: PlanSettings) -> timedelta:
    """Early visits build on each other weekly; later ones keep the clinic's maintenance rhythm."""
    if visit_number < 1:
        raise ValueError(f"visit_number starts at 1, got {visit_number}")
    if visit_number <= settings.weekly_visits:
        return timedelta(weeks=1)
    return timedelta(weeks=settings.maintenance_weeks)


def plan_visit(visit: VisitFacts, settings: PlanSettings) -> list[PlannedMessage]:
    """Every message the visit should produce, per channel, already moved out of quiet hours.

    A late enrolment (`enrolled_at` after the session) sends at once what is already due, and
    leaves out what is past its use: window texts that would arrive once the window is over, and
    a message that a message covering it (COVERED_BY) would follow within TOGETHER.
    """
    start = visit.occurred_at.astimezone(UTC)
    now = max(start, (visit.enrolled_at or start).astimezone(UTC))
    appointment = visit.appointment_at.astimezone(UTC) if visit.appointment_at is not None else None
    due_by_kind = {
        WINDOW_START: start,
        HYDRATION: start + settings.hydration_after,
        HEAT: start + settings.heat_after,
        CHECKIN: start + settings.checkin_after,
        FOLLOWUP: start + settings.followup_after,  # whether it goes out is decided at send time
    }
    if appointment is None:
        due_by_kind[REBOOK_NUDGE] = start + rebook_interval(visit.visit_number, settings)
    else:
        # An appointment closer than reminder_before is reminded of at once.
        due_by_kind[APPOINTMENT_REMINDER] = max(appointment - settings.reminder_before, start)
    due_by_kind = {
        kind: defer_for_quiet_hours(max(due, now), visit.time_zone, settings)
        for kind, due in due_by_kind.items()
        if kind in settings.enabled_kinds
    }
    if appointment is not None and APPOINTMENT_REMINDER in due_by_kind:
        if appointment - due_by_kind[APPOINTMENT_REMINDER] < MIN_REMINDER_LEAD:
            del due_by_kind[APPOINTMENT_REMINDER]
    for kind in WINDOW_ADVICE:
        if kind in due_by_kind and window_over(start, due_by_kind[kind]):
            del due_by_kind[kind]
    # Quiet hours or a late enrolment can put several messages on one moment: one text then
    # beats several (in COVERED_BY's order, so a tip dropped does not cover another).
    for kind in COVERED_BY:
        if kind in due_by_kind and _covered(kind, due_by_kind[kind], due_by_kind.items()):
            del due_by_kind[kind]

    planned = [
        PlannedMessage(kind=kind, channel=channel, due_at=due)
        for channel in visit.channels
        for kind, due in due_by_kind.items()
    ]
    return sorted(planned, key=lambda message: (message.due_at, PLAN_KINDS.index(message.kind)))


def superseded_by_new_visit(pending: Iterable[PendingMessage], new_visit_at: datetime) -> list[int]:
    """Ids to cancel when a client comes back: the new visit's plan replaces the old one's.

    Only reminders for an appointment still ahead survive: that appointment is still booked.
    """
    _require_aware(new_visit_at, "new_visit_at")
    return [
        message.id
        for message in pending
        if not (
            message.kind == APPOINTMENT_REMINDER
            and message.appointment_at is not None
            and message.appointment_at > new_visit_at
        )
    ]


def _quiet_end_date(local: datetime, settings: PlanSettings) -> date | None:
    """The local date on which the quiet hours around `local` end, or None if it is not quiet."""
    start, end, wall = settings.quiet_start, settings.quiet_end, local.time()
    if start == end:
        return None
    if start < end:
        return local.date() if start <= wall < end else None
    if wall >= start:  # wrapping window, evening side: it ends tomorrow morning
        return local.date() + timedelta(days=1)
    if wall < end:  # wrapping window, early-morning side: it ends this morning
        return local.date()
    return None


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone: {time_zone!r}") from None
