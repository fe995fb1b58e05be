"""Numbers as people read and tap them."""

import pytest

from service.messaging import phones


@pytest.mark.parametrize("number, region, shown", [
    ("+12025550100", "US", "(202) 555-0100"),  # a US reader sees the national form
    ("+34912345678", "ES", "912 34 56 78"),
    ("+34912345678", "US", "+34 912 34 56 78"),  # a number from abroad keeps its country code
    ("+12025550100", None, "(202) 555-0100"),  # no reader region: the number's own
    ("not a number", "US", "not a number"),  # shown as it was, never an error
    ("", "US", ""),
])
def test_display(number, region, shown):
    assert phones.display(number, region) == shown


def test_tel_links_dial_e164():
    assert phones.tel_href("+12025550100") == "tel:+12025550100"
    assert phones.tel_href("911") == "tel:911"


@pytest.mark.parametrize("region, number", [("US", "911"), ("CA", "911"), ("ES", "112"), ("GB", "999")])
def test_emergency_number_by_region(region, number):
    assert phones.emergency_number(region) == number


def test_region_of_a_number():
    assert phones.region_of("+34912345678") == "ES"
    assert phones.region_of(None) == "US"
