"""Escalation rules: which replies reach the clinic, and how often on-call staff are chased.

Expected values are written out by hand (DESIGN.md, "Replies and escalation"), never recomputed.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.escalation import (
    CONCERN,
    URGENT,
    Assessment,
    Decision,
    OpenEscalation,
    assess,
    on_assessment,
    renotification_due,
    unanswered,
)
from service.domain.replies import RED_FLAGS

OPENED = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)


# --- assess -----------------------------------------------------------------------------------------


def test_calm_reply_is_no_escalation():
    assert assess("better", 3, (), 4) == Assessment(None, ())
    assert assess("same", None, (), None) == Assessment(None, ())
    assert assess(None, None, (), None) == Assessment(None, ())


def test_said_worse_is_a_concern():
    assert assess("worse", None, (), None) == Assessment(CONCERN, ("said worse",))


def test_answer_is_case_insensitive():
    assert assess("Worse", None, (), None) == Assessment(CONCERN, ("said worse",))


def test_pain_6_is_not_a_concern_but_7_is():
    assert assess(None, 6, (), None) == Assessment(None, ())
    assert assess(None, 7, (), None) == Assessment(CONCERN, ("pain 7/10",))
    assert assess(None, 10, (), None) == Assessment(CONCERN, ("pain 10/10",))


def test_baseline_rise_of_1_is_not_a_concern_but_2_is():
    assert assess(None, 5, (), 4) == Assessment(None, ())
    assert assess(None, 6, (), 4) == Assessment(CONCERN, ("pain up 2 from baseline 4",))
    assert assess(None, 3, (), 0) == Assessment(CONCERN, ("pain up 3 from baseline 0",))


def test_pain_below_baseline_is_no_concern():
    assert assess(None, 1, (), 5) == Assessment(None, ())


def test_without_baseline_only_the_absolute_rule_applies():
    # 6 would be +4 over a baseline of 2, but there is no baseline.
    assert assess(None, 6, (), None) == Assessment(None, ())
    assert assess(None, 6, (), 2) == Assessment(CONCERN, ("pain up 4 from baseline 2",))
    assert assess(None, 8, (), None) == Assessment(CONCERN, ("pain 8/10",))


def test_high_pain_and_baseline_rise_are_both_listed():
    assert assess(None, 8, (), 4) == Assessment(CONCERN, ("pain 8/10", "pain up 4 from baseline 4"))


def test_high_pain_with_small_rise_lists_only_high_pain():
    assert assess(None, 7, (), 6) == Assessment(CONCERN, ("pain 7/10",))


def test_every_concern_reason_is_listed():
    assert assess("worse", 9, (), 3) == Assessment(
        CONCERN, ("said worse", "pain 9/10", "pain up 6 from baseline 3")
    )


def test_red_flag_is_urgent():
    assert assess(None, None, ("numbness",), None) == Assessment(URGENT, ("red flag: numbness or tingling",))


def test_staff_read_every_red_flag_in_words_not_codes():
    reasons = assess(None, None, RED_FLAGS, None).reasons
    assert reasons == (
        "red flag: numbness or tingling",
        "red flag: new leg weakness",
        "red flag: loss of bladder or bowel control",
        "red flag: fever",
        "red flag: cannot walk or stand",
    )
    assert not any("_" in reason for reason in reasons)


def test_red_flag_is_urgent_even_when_the_client_says_better():
    assert assess("better", 2, ("fever",), 4) == Assessment(URGENT, ("red flag: fever",))


def test_worse_plus_red_flag_is_urgent_with_both_reasons():
    assert assess("worse", None, ("leg weakness",), None) == Assessment(
        URGENT, ("red flag: leg weakness", "said worse")
    )


def test_several_red_flags_and_concerns_all_listed_urgent_first():
    result = assess("worse", 8, ("numbness", "bladder control", "numbness"), 5)
    assert result == Assessment(
        URGENT,
        (
            "red flag: numbness or tingling",
            "red flag: bladder control",  # a flag named in words already is kept as it is
            "said worse",
            "pain 8/10",
            "pain up 3 from baseline 5",
        ),
    )


@pytest.mark.parametrize("pain", [-1, 11, 100])
def test_pain_outside_0_to_10_is_rejected(pain):
    with pytest.raises(ValueError):
        assess(None, pain, (), None)


@pytest.mark.parametrize("baseline", [-1, 11])
def test_baseline_outside_0_to_10_is_rejected(baseline):
    with pytest.raises(ValueError):
        assess(None, 5, (), baseline)


def test_non_integer_pain_is_rejected():
    with pytest.raises(ValueError):
        assess(None, 7.5, (), None)
    with pytest.raises(ValueError):
        assess(None, True, (), None)


def test_pain_bounds_0_and_10_are_accepted():
    assert assess(None, 0, (), 0).severity is None
    assert assess(None, 10, (), 10).severity == CONCERN


def test_unknown_answer_is_rejected():
    with pytest.raises(ValueError):
        assess("terrible", None, (), None)


def test_red_flags_as_a_bare_string_is_a_caller_bug():
    with pytest.raises(TypeError):
        assess(None, None, "numbness", None)


# --- on_assessment ----------------------------------------------------------------------------------


def _open(severity: str, notify_count: int = 0, last: datetime | None = None) -> OpenEscalation:
    return OpenEscalation(severity, opened_at=OPENED, last_notified_at=last, notify_count=notify_count)


def test_nothing_worrying_decides_nothing():
    assert on_assessment(None, Assessment(None, ())) is None
    assert on_assessment(_open(CONCERN), Assessment(None, ())) is None
    assert on_assessment(_open(URGENT), Assessment(None, ())) is None


def test_nothing_open_and_a_concern_opens_and_pages():
    decision = on_assessment(None, Assessment(CONCERN, ("said worse",)))
    assert decision == Decision(open_new=True, upgrade=False, page_now=True, reasons=("said worse",))


def test_nothing_open_and_urgent_opens_and_pages():
    decision = on_assessment(None, Assessment(URGENT, ("red flag: fever",)))
    assert decision == Decision(open_new=True, upgrade=False, page_now=True, reasons=("red flag: fever",))


def test_concern_open_and_another_concern_adds_without_paging():
    decision = on_assessment(_open(CONCERN), Assessment(CONCERN, ("pain 8/10",)))
    assert decision == Decision(open_new=False, upgrade=False, page_now=False, reasons=("pain 8/10",))


def test_concern_open_and_urgent_upgrades_and_pages():
    decision = on_assessment(_open(CONCERN), Assessment(URGENT, ("red flag: numbness",)))
    assert decision == Decision(open_new=False, upgrade=True, page_now=True, reasons=("red flag: numbness",))


def test_urgent_open_and_a_concern_adds_without_paging():
    decision = on_assessment(_open(URGENT), Assessment(CONCERN, ("said worse",)))
    assert decision == Decision(open_new=False, upgrade=False, page_now=False, reasons=("said worse",))


def test_urgent_open_and_another_urgent_adds_without_paging():
    decision = on_assessment(_open(URGENT), Assessment(URGENT, ("red flag: fever",)))
    assert decision == Decision(open_new=False, upgrade=False, page_now=False, reasons=("red flag: fever",))


def test_unknown_severities_are_rejected():
    with pytest.raises(ValueError):
        Assessment("critical", ())
    with pytest.raises(ValueError):
        _open("minor")
    with pytest.raises(ValueError):
        _open(CONCERN, notify_count=-1)


# --- re-notification ----------------------------------------------------------------------------------


def test_renotification_every_30_minutes_three_times_then_unanswered():
    """The first alert goes out at opening; each re-send updates last_notified_at and the count."""
    esc = _open(CONCERN, notify_count=0, last=OPENED)  # opened and first alert at 14:00
    for resend_at in (
        datetime(2025, 3, 4, 14, 30, tzinfo=UTC),
        datetime(2025, 3, 4, 15, 0, tzinfo=UTC),
        datetime(2025, 3, 4, 15, 30, tzinfo=UTC),
    ):
        assert not unanswered(esc)
        assert not renotification_due(esc, resend_at - timedelta(seconds=1))
        assert renotification_due(esc, resend_at)
        esc = OpenEscalation(esc.severity, esc.opened_at, resend_at, esc.notify_count + 1)  # re-sent
    assert esc.notify_count == 3
    assert unanswered(esc)
    for later in (timedelta(minutes=120), timedelta(hours=5), timedelta(days=3)):
        assert not renotification_due(esc, OPENED + later)


def test_without_last_notified_the_interval_counts_from_opening():
    esc = _open(URGENT, last=None)
    assert not renotification_due(esc, OPENED + timedelta(minutes=29, seconds=59))
    assert renotification_due(esc, OPENED + timedelta(minutes=30))


def test_interval_counts_from_the_last_alert_not_the_opening():
    # Re-paged at 14:45 (for example by an upgrade): the next re-send is 15:15, not 14:30.
    esc = _open(CONCERN, last=OPENED + timedelta(minutes=45))
    assert not renotification_due(esc, OPENED + timedelta(minutes=30))
    assert not renotification_due(esc, OPENED + timedelta(minutes=74))
    assert renotification_due(esc, OPENED + timedelta(minutes=75))


def test_overdue_renotification_is_still_due():
    esc = _open(CONCERN, last=OPENED)
    assert renotification_due(esc, OPENED + timedelta(hours=4))


def test_custom_interval_and_max_count():
    esc = _open(CONCERN, notify_count=1, last=OPENED)
    assert not renotification_due(esc, OPENED + timedelta(minutes=14), interval=timedelta(minutes=15))
    assert renotification_due(esc, OPENED + timedelta(minutes=15), interval=timedelta(minutes=15))
    assert not renotification_due(esc, OPENED + timedelta(hours=1), max_count=1)
    assert unanswered(esc, max_count=1)
    assert not unanswered(esc, max_count=2)
    assert not renotification_due(_open(CONCERN), OPENED + timedelta(days=1), max_count=0)
    assert unanswered(_open(CONCERN), max_count=0)


def test_other_time_zones_compare_by_instant():
    esc = _open(CONCERN, last=OPENED)
    new_york = OPENED.astimezone(ZoneInfo("America/New_York"))
    assert not renotification_due(esc, new_york + timedelta(minutes=29))
    assert renotification_due(esc, new_york + timedelta(minutes=30))


def test_naive_datetimes_are_rejected():
    naive = datetime(2025, 3, 4, 14, 0)
    with pytest.raises(ValueError):
        renotification_due(_open(CONCERN, last=OPENED), naive)
    with pytest.raises(ValueError):
        renotification_due(OpenEscalation(CONCERN, naive, None, 0), OPENED + timedelta(hours=1))
    with pytest.raises(ValueError):
        renotification_due(_open(CONCERN, last=naive), OPENED + timedelta(hours=1))


def test_bad_interval_or_max_count_is_rejected():
    with pytest.raises(ValueError):
        renotification_due(_open(CONCERN), OPENED, interval=timedelta(0))
    with pytest.raises(ValueError):
        renotification_due(_open(CONCERN), OPENED, max_count=-1)
    with pytest.raises(ValueError):
        unanswered(_open(CONCERN), max_count=-1)


# --- property: one client, any sequence of replies ------------------------------------------------------

_RANK = {CONCERN: 1, URGENT: 2}

replies = st.tuples(
    st.one_of(st.none(), st.sampled_from(["better", "same", "worse"])),
    st.one_of(st.none(), st.integers(0, 10)),
    st.lists(st.sampled_from(["numbness", "fever", "leg weakness"]), max_size=2).map(tuple),
    st.one_of(st.none(), st.integers(0, 10)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(replies, max_size=25))
def test_one_client_never_has_two_open_escalations_and_keeps_the_max_severity(sequence):
    open_escalations: list[OpenEscalation] = []  # the simulated client's open escalations
    highest = None
    pages = 0
    expected_pages = 0
    for answer, pain, flags, baseline in sequence:
        assessment = assess(answer, pain, flags, baseline)
        current = open_escalations[0] if open_escalations else None
        decision = on_assessment(current, assessment)
        if assessment.severity is None:
            assert decision is None
            continue
        assert decision is not None
        assert decision.reasons == assessment.reasons and decision.reasons
        assert not (decision.open_new and decision.upgrade)
        if highest is None or _RANK[assessment.severity] > _RANK[highest]:
            expected_pages += 1  # a page only when the worry is new or worse than before
        highest = assessment.severity if highest is None else max(highest, assessment.severity, key=_RANK.get)
        if decision.page_now:
            pages += 1
        if decision.open_new:
            assert current is None
            open_escalations.append(OpenEscalation(assessment.severity, OPENED, OPENED, 0))
        elif decision.upgrade:
            assert current is not None and current.severity == CONCERN and assessment.severity == URGENT
            open_escalations[0] = OpenEscalation(URGENT, current.opened_at, OPENED, current.notify_count)
        else:
            assert current is not None and not decision.page_now
        assert len(open_escalations) == 1
        assert open_escalations[0].severity == highest
    assert len(open_escalations) <= 1
    assert pages == expected_pages
    if highest is None:
        assert open_escalations == []
