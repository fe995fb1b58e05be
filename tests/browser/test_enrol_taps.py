"""Issue 16 item 5: enrolment in seconds, counted on a phone (390x844). The test performs every
tap and keystroke a person would, counts them, and counts a scroll whenever the next target is off
screen. Seconds are estimated with a stated model: 1.5 s a tap, 0.3 s a keystroke, 2 s a scroll."""

from sqlmodel import select

from service.models import Appointment, Client, Visit, utcnow
from tests.browser.conftest import log_in, no_horizontal_scroll, shot

TAP, KEY, SCROLL = 1.5, 0.3, 2.0  # seconds


class Counted:
    """Taps, keystrokes and scrolls, as a person would make them."""

    def __init__(self, page):
        self.page, self.taps, self.keys, self.scrolls = page, 0, 0, 0

    def tap(self, selector: str):
        target = self.page.locator(selector)
        on_screen = target.evaluate(
            "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight }")
        self.scrolls += not on_screen
        target.tap()
        self.taps += 1

    def type(self, selector: str, text: str):
        self.tap(selector)
        self.page.keyboard.type(text)
        self.keys += len(text)

    def seconds(self) -> float:
        return self.taps * TAP + self.keys * KEY + self.scrolls * SCROLL

    def report(self, who: str) -> str:
        line = (f"{who}: {self.taps} taps, {self.keys} keystrokes, {self.scrolls} scrolls "
                f"= {self.seconds():.1f} s")
        print(line)
        return line


def answer_screening(count: Counted):
    """The checklist's explicit "None of these apply" (issue 16 item 6), where the form has it."""
    if count.page.locator("#none_apply").count():
        count.tap("label:has(#none_apply)")


def test_a_returning_client_in_six_taps_and_a_new_one_under_30_seconds(page, live, owner, db):
    base, _ = live
    log_in(page, base, owner.email)

    # A new client: from the dashboard's nav link to the timeline.
    new = Counted(page)
    new.tap("a[href='/visits/new']:text-is('Enrol')")
    page.wait_for_selector("#enrol-form")
    assert no_horizontal_scroll(page)
    new.type("#name", "Maria Lopez")
    new.type("#phone", "2025550142")
    new.tap("label:has(#sms_consent)")
    new.tap("label[for=pain_before-6]")
    new.tap("label[for=pain_after-3]")
    answer_screening(new)
    new.tap("label:has(#first_visit)")
    new.tap("label[for=preset-2]")
    assert page.input_value("#next_appointment") == page.get_attribute("#preset-2", "value")
    shot(page, "enrol-new-client")
    new.tap("#enrol-form button[type=submit]")
    page.wait_for_selector("[data-testid=timeline]")
    new.report("new client")
    assert new.seconds() < 30

    maria = db.exec(select(Client)).one()
    first = db.exec(select(Visit)).one()
    assert (first.pain_before, first.pain_after, first.visit_number) == (6, 3, 1)
    assert db.exec(select(Appointment)).one().starts_at.replace(tzinfo=None) > utcnow().replace(
        tzinfo=None)

    # The same client back: from their page, only taps.
    page.goto(f"{base}/clients/{maria.id}")
    back = Counted(page)
    back.tap(f"a[href='/visits/new?client={maria.id}']")
    page.wait_for_selector("#enrol-form")
    assert page.input_value("#name") == "Maria Lopez" and page.is_checked("#sms_consent")
    back.tap("label[for=pain_before-4]")
    back.tap("label[for=pain_after-1]")
    answer_screening(back)
    back.tap("label[for=preset-3]")
    shot(page, "enrol-returning-client")
    back.tap("#enrol-form button[type=submit]")
    page.wait_for_selector("[data-testid=timeline]")
    back.report("returning client")
    assert back.taps <= 6 and back.keys == 0

    db.expire_all()
    assert db.exec(select(Client)).all() == [maria]
    again = db.exec(select(Visit).where(Visit.id != first.id)).one()
    assert (again.client_id, again.pain_before, again.pain_after) == (maria.id, 4, 1)

    # Not counted: a scale is one radio group, so the arrow keys move along it.
    page.goto(f"{base}/visits/new")
    page.focus("#pain_after-0")
    page.keyboard.press("ArrowRight")
    assert page.is_checked("#pain_after-1") and not page.is_checked("#pain_after-0")
