"""Suggested maintenance interval. Expected weeks and reasons are written out by hand."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.maintenance import CheckInFact, Suggestion, suggest_interval

START = datetime(2025, 1, 6, 18, 0, tzinfo=UTC)


def history(*replies: tuple[str | None, int | None]) -> list[CheckInFact]:
    """Check-ins a week apart, oldest first."""
    return [CheckInFact(START + timedelta(weeks=i), answer, pain) for i, (answer, pain) in enumerate(replies)]


# --- the guard rails --------------------------------------------------------------------------------


def test_open_escalation_means_no_nudge_until_staff_decide():
    checkins = history(("better", 3), ("better", 2), ("better", 1))
    assert suggest_interval(checkins, 3, open_escalation=True) == Suggestion(
        None, "An escalation is open: no rebooking nudge until staff decide."
    )


@pytest.mark.parametrize("count", [0, 1])
def test_too_few_checkins_keep_the_current_interval(count):
    checkins = history(("worse", 9))[:count]
    assert suggest_interval(checkins, 3) == Suggestion(3, "Not enough check-ins yet: keep 3 weeks.")


def test_too_few_checkins_still_clamp_the_current_interval():
    assert suggest_interval([], 9).weeks == 6
    assert suggest_interval([], 1, min_weeks=2).weeks == 2


# --- improving: stretch -----------------------------------------------------------------------------


def test_improving_answers_and_falling_pain_stretch_by_a_week():
    checkins = history(("better", 5), ("better", 4), ("better", 3))
    assert suggest_interval(checkins, 3) == Suggestion(
        4, "Improving across the last 3 check-ins (3 said better, pain 5 to 3): stretch to 4 weeks."
    )


def test_two_better_answers_without_pain_scores_stretch():
    checkins = history(("better", None), ("better", None))
    assert suggest_interval(checkins, 2) == Suggestion(
        3, "Improving across the last 2 check-ins (2 said better): stretch to 3 weeks."
    )


def test_falling_pain_scores_alone_stretch():
    checkins = history((None, 6), (None, 5), (None, 3))
    assert suggest_interval(checkins, 1) == Suggestion(
        2, "Improving across the last 3 check-ins (pain 6 to 3): stretch to 2 weeks."
    )


def test_improving_stops_at_the_maximum():
    checkins = history(("better", 3), ("better", 2), ("better", 1))
    assert suggest_interval(checkins, 6).weeks == 6
    assert suggest_interval(checkins, 6).reason.endswith("already at the 6-week maximum.")
    assert suggest_interval(checkins, 4, max_weeks=4).weeks == 4
    assert suggest_interval(checkins, 5, max_weeks=6).weeks == 6


def test_a_single_better_is_not_a_trend():
    assert suggest_interval(history((None, None), ("better", None)), 3) == Suggestion(
        3, "Mixed signals in the last 2 check-ins: keep 3 weeks."
    )
    assert suggest_interval(history(("same", None), ("better", None)), 3).weeks == 3


def test_better_with_pain_creeping_up_is_not_steady_improvement():
    checkins = history(("better", 3), ("better", 4), ("better", 4))
    assert suggest_interval(checkins, 3) == Suggestion(
        3, "Mixed signals in the last 3 check-ins: keep 3 weeks."
    )


def test_a_same_in_the_window_blocks_stretching():
    checkins = history(("better", 5), ("same", 4), ("better", 3))
    assert suggest_interval(checkins, 3).weeks == 3


def test_only_the_last_three_checkins_count():
    # An old "worse" has rolled out of the window; the recent trend is improvement.
    checkins = history(("worse", 8), ("better", 5), ("better", 4), ("better", 3))
    assert suggest_interval(checkins, 2).weeks == 3


def test_checkins_are_read_in_time_order_whatever_the_input_order():
    checkins = history(("better", 5), ("better", 4), ("better", 3))
    assert suggest_interval(list(reversed(checkins)), 3) == suggest_interval(checkins, 3)
    # Reversed in time the same scores would be rising pain.
    rising = [CheckInFact(c.at, None, p) for c, p in zip(checkins, (3, 4, 5), strict=True)]
    assert suggest_interval(rising, 3).weeks == 2


# --- worse: shorten ---------------------------------------------------------------------------------


def test_a_worse_answer_shortens_by_a_week():
    checkins = history(("better", 3), ("better", 2), ("worse", 4))
    assert suggest_interval(checkins, 4) == Suggestion(
        3, "Worse in the last 3 check-ins (1 said worse): shorten to 3 weeks."
    )


def test_worse_wins_over_better_answers():
    checkins = history(("worse", None), ("better", None), ("better", None))
    assert suggest_interval(checkins, 4).weeks == 3


def test_pain_rising_by_2_shortens_but_by_1_does_not():
    assert suggest_interval(history((None, 3), (None, 4)), 4).weeks == 4
    assert suggest_interval(history((None, 3), (None, 5)), 4) == Suggestion(
        3, "Pain rose from 3 to 5 in the last 2 check-ins: shorten to 3 weeks."
    )


def test_pain_rising_2_over_the_window_in_small_steps_shortens():
    checkins = history(("same", 2), ("same", 3), ("same", 4))
    assert suggest_interval(checkins, 4) == Suggestion(
        3, "Pain rose from 2 to 4 in the last 3 check-ins: shorten to 3 weeks."
    )


def test_a_spike_inside_the_window_shortens():
    checkins = history(("better", 3), (None, 6), ("better", 4))
    assert suggest_interval(checkins, 4) == Suggestion(
        3, "Pain rose from 3 to 6 in the last 3 check-ins: shorten to 3 weeks."
    )


def test_shortening_stops_at_the_minimum():
    checkins = history(("same", 4), ("worse", 6))
    assert suggest_interval(checkins, 1) == Suggestion(
        1, "Worse in the last 2 check-ins (1 said worse): already at the 1-week minimum."
    )
    assert suggest_interval(checkins, 2, min_weeks=2).weeks == 2
    assert suggest_interval(checkins, 2).weeks == 1


# --- steady ------------------------------------------------------------------------------------------


def test_mostly_same_with_moderate_pain_keeps_the_interval():
    checkins = history(("same", 4), ("same", 4), ("better", 3))
    assert suggest_interval(checkins, 3) == Suggestion(
        3, "Steady in the last 3 check-ins (2 of 3 said same): keep 3 weeks."
    )


def test_mostly_same_with_pain_staying_at_6_shortens():
    checkins = history(("same", 6), ("same", 6), ("same", 6))
    assert suggest_interval(checkins, 3) == Suggestion(
        2, "Steady in the last 3 check-ins (3 of 3 said same) but pain stays at 6+: shorten to 2 weeks."
    )


def test_mostly_same_with_pain_5_keeps():
    checkins = history(("same", 6), ("same", 5), ("same", 5))
    assert suggest_interval(checkins, 3).weeks == 3


def test_flat_pain_scores_without_answers_count_as_steady():
    assert suggest_interval(history((None, 4), (None, 4), (None, 5)), 3) == Suggestion(
        3, "Steady in the last 3 check-ins (pain scores only, no clear change): keep 3 weeks."
    )
    assert suggest_interval(history((None, 6), (None, 6)), 3).weeks == 2


def test_mixed_answers_keep():
    checkins = history(("better", None), ("same", None), ("better", None))
    assert suggest_interval(checkins, 3) == Suggestion(
        3, "Mixed signals in the last 3 check-ins: keep 3 weeks."
    )


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"current_weeks": 0},
        {"current_weeks": 3, "min_weeks": 0},
        {"current_weeks": 3, "min_weeks": 4, "max_weeks": 3},
    ],
)
def test_nonsense_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        suggest_interval([], **kwargs)


def test_checkin_facts_are_validated():
    with pytest.raises(ValueError):
        CheckInFact(START, None, 11)
    with pytest.raises(ValueError):
        CheckInFact(START, None, -1)
    with pytest.raises(ValueError):
        CheckInFact(START, "fine", None)
    with pytest.raises(ValueError):
        CheckInFact(datetime(2025, 1, 6, 18, 0), "better", 3)
    assert CheckInFact(START, "Better", 0).answer == "better"


# --- property ----------------------------------------------------------------------------------------

checkin_facts = st.builds(
    CheckInFact,
    at=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
    answer=st.one_of(st.none(), st.sampled_from(["better", "same", "worse"])),
    pain=st.one_of(st.none(), st.integers(0, 10)),
)


@settings(max_examples=500, deadline=None)
@given(
    checkins=st.lists(checkin_facts, max_size=8),
    current=st.integers(1, 12),
    min_weeks=st.integers(1, 6),
    extra=st.integers(0, 6),
    open_escalation=st.booleans(),
)
def test_suggestion_is_always_within_bounds_or_none(checkins, current, min_weeks, extra, open_escalation):
    max_weeks = min_weeks + extra
    result = suggest_interval(checkins, current, min_weeks, max_weeks, open_escalation)
    assert result.reason and "\n" not in result.reason
    if open_escalation:
        assert result.weeks is None
        return
    assert result.weeks is not None
    assert min_weeks <= result.weeks <= max_weeks
    # Never moves more than a week from the (clamped) current interval.
    assert abs(result.weeks - max(min_weeks, min(max_weeks, current))) <= 1
    if len({c.at for c in checkins}) == len(checkins):
        # Read in time order, so the order they are passed in does not matter.
        assert suggest_interval(list(reversed(checkins)), current, min_weeks, max_weeks) == result
