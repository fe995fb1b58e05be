import pytest

from service.domain.contraindications import CONTRAINDICATIONS, screen


def test_nothing_ticked_is_allowed():
    assert screen([], None, may_override=False).allowed


@pytest.mark.parametrize("key", sorted(set(CONTRAINDICATIONS) - {"pregnancy"}))
def test_a_ticked_box_blocks_unless_an_owner_records_a_reason(key):
    assert not screen([key], None, may_override=True).allowed
    assert not screen([key], "   ", may_override=True).allowed
    assert not screen([key], "GP cleared her", may_override=False).allowed
    granted = screen([key], "GP cleared her", may_override=True)
    assert granted.allowed and granted.overridden == (key,)


def test_pregnancy_can_never_be_overridden():
    result = screen(["pregnancy", "osteoporosis"], "client insists", may_override=True)
    assert not result.allowed
    assert "Pregnancy cannot be overridden" in result.warning
    assert "Osteoporosis" in result.warning


def test_unknown_boxes_are_ignored():
    assert screen(["made_up"], None, may_override=False).allowed
