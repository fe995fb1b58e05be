"""Care-plan timing. Expected instants are written out by hand, never recomputed by the formula."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.careplan import (
    APPOINTMENT_REMINDER,
    CHECKIN,
    FOLLOWUP,
    HEAT,
    HYDRATION,
    PLAN_KINDS,
    REBOOK_NUDGE,
    WINDOW_START,
    PendingMessage,
    PlanSettings,
    VisitFacts,
    defer_for_quiet_hours,
    plan_visit,
    rebook_interval,
    superseded_by_new_visit,
    window_ends_at,
)

NEW_YORK = "America/New_York"
NY = ZoneInfo(NEW_YORK)
DEFAULTS = PlanSettings()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ny(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NY, fold=fold)


def visit(occurred_at, *, number=1, channels=("sms",), appointment_at=None, zone=NEW_YORK):
    return VisitFacts(
        occurred_at=occurred_at,
        visit_number=number,
        time_zone=zone,
        channels=channels,
        appointment_at=appointment_at,
    )


def due_by_kind(messages):
    by_kind = {m.kind: m.due_at for m in messages}
    assert len(by_kind) == len(messages), "one message per kind on a single channel"
    return by_kind


# --- the default plan --------------------------------------------------------------------------


def test_default_plan_for_a_first_visit_in_june():
    # 2026-06-10 10:00 EDT (UTC-4) is 14:00 UTC.
    plan = plan_visit(visit(ny(2026, 6, 10, 10, 0)), DEFAULTS)

    assert due_by_kind(plan) == {
        WINDOW_START: utc(2026, 6, 10, 14, 0),  # 10:00 local
        HYDRATION: utc(2026, 6, 10, 16, 0),  # 12:00 local
        HEAT: utc(2026, 6, 10, 20, 0),  # 16:00 local
        CHECKIN: utc(2026, 6, 11, 14, 0),  # next day 10:00 local
        FOLLOWUP: utc(2026, 6, 13, 14, 0),  # three days later 10:00 local
        REBOOK_NUDGE: utc(2026, 6, 17, 14, 0),  # a week later 10:00 local
    }
    assert [m.kind for m in plan] == [
        WINDOW_START,
        HYDRATION,
        HEAT,
        CHECKIN,
        FOLLOWUP,
        REBOOK_NUDGE,
    ]
    assert all(m.due_at.tzinfo is UTC for m in plan)
    assert all(m.channel == "sms" for m in plan)


def test_local_wall_times_of_the_default_plan():
    plan = plan_visit(visit(ny(2026, 6, 10, 10, 0)), DEFAULTS)
    local = {m.kind: m.due_at.astimezone(NY).replace(tzinfo=None) for m in plan}
    assert local[HYDRATION] == datetime(2026, 6, 10, 12, 0)
    assert local[HEAT] == datetime(2026, 6, 10, 16, 0)
    assert local[CHECKIN] == datetime(2026, 6, 11, 10, 0)


def test_fifth_visit_is_nudged_after_the_maintenance_interval():
    plan = plan_visit(visit(ny(2026, 6, 10, 10, 0), number=5), DEFAULTS)
    assert due_by_kind(plan)[REBOOK_NUDGE] == utc(2026, 7, 1, 14, 0)  # three weeks, 10:00 local


@pytest.mark.parametrize(
    ("visit_number", "expected"),
    [
        (1, timedelta(weeks=1)),
        (3, timedelta(weeks=1)),
        (4, timedelta(weeks=3)),
        (9, timedelta(weeks=3)),
    ],
)
def test_rebook_interval_is_weekly_then_maintenance(visit_number, expected):
    assert rebook_interval(visit_number, DEFAULTS) == expected


def test_rebook_interval_follows_clinic_settings():
    clinic = PlanSettings(weekly_visits=1, maintenance_weeks=6)
    assert rebook_interval(1, clinic) == timedelta(weeks=1)
    assert rebook_interval(2, clinic) == timedelta(weeks=6)


def test_clinic_timings_replace_the_defaults():
    clinic = PlanSettings(hydration_after=timedelta(hours=1), heat_after=timedelta(hours=4))
    plan = due_by_kind(plan_visit(visit(ny(2026, 6, 10, 10, 0)), clinic))
    assert plan[HYDRATION] == utc(2026, 6, 10, 15, 0)
    assert plan[HEAT] == utc(2026, 6, 10, 18, 0)


# --- the 24-hour window across DST -------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "session_local", "expected_end_local", "expected_end_utc"),
    [
        # Spring forward (2026-03-08): 24 real hours end at 16:00 EDT, not 15:00.
        (
            NEW_YORK,
            datetime(2026, 3, 7, 15, 0),
            datetime(2026, 3, 8, 16, 0),
            utc(2026, 3, 8, 20, 0),
        ),
        # Fall back (2026-11-01): they end at 14:00 EST.
        (
            NEW_YORK,
            datetime(2026, 10, 31, 15, 0),
            datetime(2026, 11, 1, 14, 0),
            utc(2026, 11, 1, 19, 0),
        ),
        # London springs forward on 2026-03-29: 12:00 GMT -> 13:00 BST.
        (
            "Europe/London",
            datetime(2026, 3, 28, 12, 0),
            datetime(2026, 3, 29, 13, 0),
            utc(2026, 3, 29, 12, 0),
        ),
        # Sydney falls back on 2026-04-05: 10:00 AEDT -> 09:00 AEST.
        (
            "Australia/Sydney",
            datetime(2026, 4, 4, 10, 0),
            datetime(2026, 4, 5, 9, 0),
            utc(2026, 4, 4, 23, 0),
        ),
    ],
)
def test_window_ends_24_elapsed_hours_later(
    zone, session_local, expected_end_local, expected_end_utc
):
    tz = ZoneInfo(zone)
    ends = window_ends_at(session_local.replace(tzinfo=tz))
    assert ends == expected_end_utc
    assert ends.tzinfo is UTC
    assert ends.astimezone(tz).replace(tzinfo=None) == expected_end_local


def test_checkin_across_spring_forward_is_24_real_hours_later():
    plan = due_by_kind(plan_visit(visit(ny(2026, 3, 7, 15, 0)), DEFAULTS))
    assert plan[CHECKIN] == utc(2026, 3, 8, 20, 0)  # 16:00 EDT


# --- quiet hours -------------------------------------------------------------------------------


def test_evening_session_moves_night_messages_to_eight_next_morning():
    plan = due_by_kind(plan_visit(visit(ny(2026, 6, 10, 19, 30)), DEFAULTS))
    assert plan[WINDOW_START] == utc(2026, 6, 10, 23, 30)  # 19:30 local: not quiet
    assert plan[HYDRATION] == utc(2026, 6, 11, 12, 0)  # 21:30 -> 08:00 EDT
    # The heat tip (01:30) would land at the same 08:00: one morning text, not two.
    assert HEAT not in plan


def test_late_session_sends_one_morning_text_not_three():
    plan = plan_visit(visit(ny(2026, 6, 10, 22, 15)), DEFAULTS)
    morning = [m.kind for m in plan if m.due_at == utc(2026, 6, 11, 12, 0)]
    assert morning == [WINDOW_START]


def test_late_session_gets_its_first_message_at_eight_next_morning():
    plan = due_by_kind(plan_visit(visit(ny(2026, 6, 10, 22, 15)), DEFAULTS))
    assert plan[WINDOW_START] == utc(2026, 6, 11, 12, 0)  # 08:00 EDT
    assert plan[CHECKIN] == utc(2026, 6, 12, 12, 0)  # 22:15 next day, held to 08:00


@pytest.mark.parametrize(
    ("due_local", "expected"),
    [
        (ny(2026, 6, 10, 20, 59, 59), utc(2026, 6, 11, 0, 59, 59)),  # just before: unchanged
        (ny(2026, 6, 10, 21, 0), utc(2026, 6, 11, 12, 0)),  # 21:00 is quiet
        (ny(2026, 6, 10, 23, 30), utc(2026, 6, 11, 12, 0)),  # -> next day 08:00
        (ny(2026, 6, 11, 0, 0), utc(2026, 6, 11, 12, 0)),  # midnight -> same day 08:00
        (ny(2026, 6, 11, 2, 0), utc(2026, 6, 11, 12, 0)),  # -> same day 08:00
        (ny(2026, 6, 11, 7, 59, 59), utc(2026, 6, 11, 12, 0)),
        (ny(2026, 6, 11, 8, 0), utc(2026, 6, 11, 12, 0)),  # 08:00 is not quiet
        (ny(2026, 6, 11, 13, 0), utc(2026, 6, 11, 17, 0)),
    ],
)
def test_default_quiet_window_wraps_midnight(due_local, expected):
    deferred = defer_for_quiet_hours(due_local, NEW_YORK, DEFAULTS)
    assert deferred == expected
    assert deferred.tzinfo is UTC


@pytest.mark.parametrize(
    ("due_local", "expected"),
    [
        (ny(2026, 6, 10, 11, 59), utc(2026, 6, 10, 15, 59)),
        (ny(2026, 6, 10, 12, 0), utc(2026, 6, 10, 18, 0)),  # -> 14:00 same day
        (ny(2026, 6, 10, 13, 30), utc(2026, 6, 10, 18, 0)),
        (ny(2026, 6, 10, 14, 0), utc(2026, 6, 10, 18, 0)),  # 14:00 is not quiet
        (ny(2026, 6, 10, 23, 0), utc(2026, 6, 11, 3, 0)),  # night is not quiet here
    ],
)
def test_non_wrapping_quiet_window(due_local, expected):
    siesta = PlanSettings(quiet_start=time(12, 0), quiet_end=time(14, 0))
    assert defer_for_quiet_hours(due_local, NEW_YORK, siesta) == expected


def test_equal_start_and_end_means_no_quiet_hours():
    always_open = PlanSettings(quiet_start=time(0, 0), quiet_end=time(0, 0))
    assert defer_for_quiet_hours(ny(2026, 6, 11, 3, 0), NEW_YORK, always_open) == utc(
        2026, 6, 11, 7, 0
    )


def test_due_at_in_another_zone_is_judged_in_client_local_time():
    # 2026-06-11 03:00 UTC is 23:00 EDT: quiet for a New York client.
    deferred = defer_for_quiet_hours(
        datetime(2026, 6, 11, 5, 0, tzinfo=ZoneInfo("Europe/Paris")), NEW_YORK, DEFAULTS
    )
    assert deferred == utc(2026, 6, 11, 12, 0)


def test_quiet_hours_ending_on_spring_forward_morning():
    # 23:30 EST on 2026-03-07 is held until 08:00 EDT (12:00 UTC), i.e. 7.5 real hours.
    assert defer_for_quiet_hours(ny(2026, 3, 7, 23, 30), NEW_YORK, DEFAULTS) == utc(2026, 3, 8, 12)


def test_quiet_hours_ending_on_fall_back_morning():
    # 23:30 EDT on 2026-10-31 is held until 08:00 EST (13:00 UTC), i.e. 9.5 real hours.
    assert defer_for_quiet_hours(ny(2026, 10, 31, 23, 30), NEW_YORK, DEFAULTS) == utc(
        2026, 11, 1, 13
    )


def test_quiet_end_inside_the_spring_forward_gap():
    # 02:30 does not exist on 2026-03-08 in New York: the hold ends at 03:30 EDT (07:30 UTC).
    clinic = PlanSettings(quiet_end=time(2, 30))
    assert defer_for_quiet_hours(ny(2026, 3, 8, 1, 0), NEW_YORK, clinic) == utc(2026, 3, 8, 7, 30)


def test_quiet_end_in_the_repeated_fall_back_hour():
    clinic = PlanSettings(quiet_end=time(1, 30))
    # 01:10 EDT (first pass) waits until 01:30 EDT; 01:10 EST (second pass) until 01:30 EST.
    assert defer_for_quiet_hours(ny(2026, 11, 1, 1, 10), NEW_YORK, clinic) == utc(
        2026, 11, 1, 5, 30
    )
    assert defer_for_quiet_hours(ny(2026, 11, 1, 1, 10, fold=1), NEW_YORK, clinic) == utc(
        2026, 11, 1, 6, 30
    )


def test_gap_swallowing_a_short_open_period_holds_until_the_next_day():
    # Open only 02:15-02:45; on 2026-03-08 that half hour falls in the gap and never happens.
    clinic = PlanSettings(quiet_start=time(2, 45), quiet_end=time(2, 15))
    assert defer_for_quiet_hours(ny(2026, 3, 8, 1, 0), NEW_YORK, clinic) == utc(2026, 3, 9, 6, 15)


# --- appointments ------------------------------------------------------------------------------


def test_reminder_a_day_before_an_appointment_three_days_out():
    plan = due_by_kind(
        plan_visit(visit(ny(2026, 6, 10, 10, 0), appointment_at=ny(2026, 6, 13, 15, 0)), DEFAULTS)
    )
    assert plan[APPOINTMENT_REMINDER] == utc(2026, 6, 12, 19, 0)  # 15:00 local the day before
    assert REBOOK_NUDGE not in plan


def test_next_morning_appointment_is_reminded_of_at_once():
    session = ny(2026, 6, 10, 17, 0)
    plan = due_by_kind(plan_visit(visit(session, appointment_at=ny(2026, 6, 11, 9, 0)), DEFAULTS))
    assert plan[APPOINTMENT_REMINDER] == utc(2026, 6, 10, 21, 0)  # 17:00 local, the session itself


def test_reminder_pushed_by_quiet_hours_too_close_to_the_appointment_is_dropped():
    # Session 22:00: the reminder would wait until 08:00, only 30 minutes before 08:30.
    plan = due_by_kind(
        plan_visit(visit(ny(2026, 6, 10, 22, 0), appointment_at=ny(2026, 6, 11, 8, 30)), DEFAULTS)
    )
    assert APPOINTMENT_REMINDER not in plan
    assert REBOOK_NUDGE not in plan


def test_reminder_exactly_one_hour_ahead_is_kept():
    plan = due_by_kind(
        plan_visit(visit(ny(2026, 6, 10, 22, 0), appointment_at=ny(2026, 6, 11, 9, 0)), DEFAULTS)
    )
    assert plan[APPOINTMENT_REMINDER] == utc(2026, 6, 11, 12, 0)  # 08:00 local


def test_appointment_before_the_session_gets_no_reminder():
    plan = due_by_kind(
        plan_visit(visit(ny(2026, 6, 10, 10, 0), appointment_at=ny(2026, 6, 9, 10, 0)), DEFAULTS)
    )
    assert APPOINTMENT_REMINDER not in plan


def test_reminder_offset_is_elapsed_time_across_dst():
    # Appointment 15:00 EDT on 2026-03-08 (19:00 UTC): 24 real hours earlier is 14:00 EST on 03-07.
    plan = due_by_kind(
        plan_visit(visit(ny(2026, 3, 5, 10, 0), appointment_at=ny(2026, 3, 8, 15, 0)), DEFAULTS)
    )
    assert plan[APPOINTMENT_REMINDER] == utc(2026, 3, 7, 19, 0)


def test_no_appointment_means_no_reminder():
    plan = due_by_kind(plan_visit(visit(ny(2026, 6, 10, 10, 0)), DEFAULTS))
    assert APPOINTMENT_REMINDER not in plan


# --- channels and enabled kinds ----------------------------------------------------------------


def test_every_channel_gets_every_message():
    plan = plan_visit(
        visit(
            ny(2026, 6, 10, 10, 0), channels=("sms", "email"), appointment_at=ny(2026, 6, 13, 15)
        ),
        DEFAULTS,
    )
    expected_kinds = {WINDOW_START, HYDRATION, HEAT, CHECKIN, FOLLOWUP, APPOINTMENT_REMINDER}
    assert {m.kind for m in plan if m.channel == "sms"} == expected_kinds
    assert {m.kind for m in plan if m.channel == "email"} == expected_kinds
    assert len(plan) == 12
    assert [m.due_at for m in plan] == sorted(m.due_at for m in plan)


def test_disabled_kinds_are_not_planned():
    clinic = PlanSettings(enabled_kinds=frozenset(PLAN_KINDS) - {HYDRATION, REBOOK_NUDGE})
    plan = plan_visit(visit(ny(2026, 6, 10, 10, 0)), clinic)
    assert {m.kind for m in plan} == {WINDOW_START, HEAT, CHECKIN, FOLLOWUP}


def test_disabled_reminder_is_not_planned():
    clinic = PlanSettings(enabled_kinds=frozenset(PLAN_KINDS) - {APPOINTMENT_REMINDER})
    plan = plan_visit(visit(ny(2026, 6, 10, 10, 0), appointment_at=ny(2026, 6, 13, 15)), clinic)
    assert APPOINTMENT_REMINDER not in {m.kind for m in plan}


# --- a new visit supersedes the old plan -------------------------------------------------------


def test_new_visit_cancels_old_plan_but_keeps_reminders_for_later_appointments():
    new_visit_at = ny(2026, 6, 17, 10, 0)
    pending = [
        PendingMessage(1, FOLLOWUP, None),
        PendingMessage(2, REBOOK_NUDGE, None),
        PendingMessage(3, CHECKIN, None),
        PendingMessage(4, APPOINTMENT_REMINDER, ny(2026, 6, 24, 10, 0)),  # still ahead: kept
        PendingMessage(5, APPOINTMENT_REMINDER, ny(2026, 6, 17, 10, 0)),  # this very visit
        PendingMessage(6, APPOINTMENT_REMINDER, ny(2026, 6, 16, 10, 0)),  # already past
        PendingMessage(7, APPOINTMENT_REMINDER, None),
    ]
    assert superseded_by_new_visit(pending, new_visit_at) == [1, 2, 3, 5, 6, 7]


def test_nothing_pending_nothing_to_cancel():
    assert superseded_by_new_visit(iter([]), utc(2026, 6, 17, 14)) == []


# --- input validation --------------------------------------------------------------------------


def test_naive_session_time_is_rejected():
    with pytest.raises(ValueError, match="occurred_at"):
        visit(datetime(2026, 6, 10, 10, 0))


def test_naive_appointment_is_rejected():
    with pytest.raises(ValueError, match="appointment_at"):
        visit(ny(2026, 6, 10, 10, 0), appointment_at=datetime(2026, 6, 13, 15, 0))


@pytest.mark.parametrize(
    "call",
    [
        lambda: window_ends_at(datetime(2026, 6, 10, 10, 0)),
        lambda: defer_for_quiet_hours(datetime(2026, 6, 10, 23, 0), NEW_YORK, DEFAULTS),
        lambda: superseded_by_new_visit([], datetime(2026, 6, 10, 10, 0)),
    ],
)
def test_naive_datetimes_are_rejected(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "America", "../etc/passwd", "EST5EDT/"])
def test_unknown_time_zone_is_rejected_by_name(zone):
    with pytest.raises(ValueError, match="unknown time zone") as excinfo:
        visit(ny(2026, 6, 10, 10, 0), zone=zone)
    assert repr(zone) in str(excinfo.value)
    with pytest.raises(ValueError, match="unknown time zone"):
        defer_for_quiet_hours(utc(2026, 6, 10, 14), zone, DEFAULTS)


def test_visit_numbers_start_at_one():
    with pytest.raises(ValueError, match="visit_number"):
        visit(ny(2026, 6, 10, 10, 0), number=0)
    with pytest.raises(ValueError, match="visit_number"):
        rebook_interval(0, DEFAULTS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"enabled_kinds": frozenset({"horoscope"})}, "unknown message kinds"),
        ({"maintenance_weeks": 0}, "maintenance_weeks"),
        ({"maintenance_weeks": 7}, "maintenance_weeks"),
        ({"weekly_visits": -1}, "weekly_visits"),
        ({"heat_after": timedelta(hours=-1)}, "negative"),
        ({"reminder_before": timedelta(hours=-1)}, "negative"),
    ],
)
def test_nonsense_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PlanSettings(**kwargs)


# --- property ----------------------------------------------------------------------------------

ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "UTC"]
quarter_hours = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


def in_quiet_window(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


@settings(max_examples=300, deadline=None)
@given(
    occurred_naive=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)),
    zone=st.sampled_from(ZONES),
    quiet_start=quarter_hours,
    quiet_end=quarter_hours,
    visit_number=st.integers(1, 12),
    appointment_in=st.none()
    | st.integers(-2 * 24 * 60, 30 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes)),
)
def test_plan_invariants(
    occurred_naive, zone, quiet_start, quiet_end, visit_number, appointment_in
):
    occurred_at = occurred_naive.replace(tzinfo=UTC)
    appointment_at = None if appointment_in is None else occurred_at + appointment_in
    clinic = PlanSettings(quiet_start=quiet_start, quiet_end=quiet_end)
    tz = ZoneInfo(zone)

    plan = plan_visit(
        visit(occurred_at, number=visit_number, zone=zone, appointment_at=appointment_at), clinic
    )

    assert window_ends_at(occurred_at) - occurred_at == timedelta(hours=24)
    assert {m.kind for m in plan} >= {WINDOW_START, CHECKIN, FOLLOWUP}
    tips = [m.due_at for m in plan if m.kind in (WINDOW_START, HYDRATION, HEAT)]
    assert len(tips) == len(set(tips))  # quiet hours never stack the window's texts
    for message in plan:
        assert message.due_at.tzinfo is UTC
        assert message.due_at >= occurred_at
        assert not in_quiet_window(message.due_at.astimezone(tz).time(), quiet_start, quiet_end)
        if message.kind == APPOINTMENT_REMINDER:
            assert appointment_at - message.due_at >= timedelta(hours=1)
