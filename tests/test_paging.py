"""One paging rule for every list staff page through (the clients list, the dashboard's
escalations, the inbox): `?page=` is read the same way, a bad one is answered 400 with the same
words naming `page`, and a page past the end is the last page."""

import pytest

from service.domain.paging import clamp, page_count
from service.models import Client, Escalation, InboundMessage
from tests.web_helpers import log_in, make_staff

LISTS = ["/clients", "/", "/inbox"]  # 25, 20 and 25 a page: ROWS make two pages of each
ROWS = 30


@pytest.fixture
def web(client, session, clinic):
    """An owner logged in at a clinic whose ROWS clients each have an open escalation and a text."""
    here = clinic[0]
    for i in range(ROWS):
        person = Client(clinic_id=here.id, name=f"Client {i:02}", time_zone="America/New_York",
                        phone=f"+1202555{1000 + i}")
        session.add(person)
        session.flush()
        session.add_all([
            Escalation(clinic_id=here.id, client_id=person.id, severity="concern", status="open",
                       reasons=["said worse"]),
            InboundMessage(provider_sid=f"SMpaging{i}", clinic_id=here.id, client_id=person.id,
                           from_number=person.phone, to_number=here.phone, body="2", intent="pain"),
        ])
    session.commit()
    log_in(client, make_staff(session, here, "owner@clinic.example").email)
    return client


@pytest.mark.parametrize("path", LISTS)
def test_a_bad_page_is_400_with_the_same_words_on_every_list(web, path):
    for given in ("0", "-1", "x", "1.5", "²", "99999999"):
        response = web.get(path, query_string={"page": given})
        assert response.status_code == 400, given
        assert "page: a whole number from 1." in response.get_data(as_text=True), given


@pytest.mark.parametrize("path", LISTS)
def test_a_page_past_the_end_is_the_last_page_on_every_list(web, path):
    last = web.get(path, query_string={"page": "2"}).get_data(as_text=True)
    past = web.get(path, query_string={"page": "9"})
    assert past.status_code == 200
    assert "page 2 of 2" in past.get_data(as_text=True).lower() and "page 2 of 2" in last.lower()


def test_the_rule():
    assert [page_count(total, 25) for total in (0, 1, 25, 26)] == [1, 1, 1, 2]
    assert [clamp(number, 30, 25) for number in (-3, 0, 1, 2, 9)] == [1, 1, 1, 2, 2]
