"""Every staff and client page, checked by axe-core (npm's, injected into the page) for serious or
critical problems, in light and dark; tap targets of at least 44 px; and no word broken in two on a
320 px phone with text at 200%, in English and Spanish."""

from datetime import timedelta

import pytest
from sqlmodel import select

from service.config import ROOT
from service.messaging.links import client_page_url
from service.models import CheckIn, Client, Escalation, InboundMessage, Visit, utcnow
from tests.browser.conftest import PHONE, log_in
from tests.conftest import auth, make_clinic
from tests.web_helpers import make_staff

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
NAME = "Maria Lopez"

# Serious or critical violations, each as "rule: the first offending element".
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')
      + (n.any[0] ? ' (' + n.any[0].message + ')' : '')).join(' | '));
}"""

# What a finger taps: links, buttons, a folded section's summary, and the labels of checkboxes and
# radios (the box alone is small; its label is the target). Links inside a sentence are exempt
# (WCAG 2.5.8).
SMALL_TARGETS = """() => {
  const targets = [...document.querySelectorAll('a[href], button, summary, label')].filter(e => {
    if (e.tagName === 'LABEL' && !e.querySelector('input[type=checkbox], input[type=radio]')
        && !(e.control && ['checkbox', 'radio'].includes(e.control.type))) return false;
    if (e.tagName === 'A' && e.closest('p, td, .muted, small')) return false;
    const box = e.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(e).visibility !== 'hidden';
  });
  return targets.filter(e => e.getBoundingClientRect().height < 43.5)
    .map(e => `${e.tagName.toLowerCase()} "${e.innerText.trim().slice(0, 30)}" `
         + `${Math.round(e.getBoundingClientRect().height)} px`);
}"""

# Words whose letters sit on more than one line: a word broken mid-word. A text message's preview
# (pre) is shown as it will be sent, its link with its token included: that may wrap anywhere.
BROKEN_WORDS = """() => {
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.getClientRects().length || node.parentElement.closest('pre')) continue;
    for (const match of node.data.matchAll(/[\\p{L}\\p{N}]+/gu)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(match[0]);
    }
  }
  return broken;
}"""


@pytest.fixture
def seeded(live, db):
    """A clinic on a real server with what every page shows: an owner, a client with a visit
    (by the API), open urgent and concern escalations, a text and a web check-in."""
    base, app = live
    clinic, key = make_clinic(db, name="Sunrise Back Walking")
    owner = make_staff(db, clinic, "owner@sunrise.example", role="owner")
    response = app.test_client().post("/api/v1/visits", headers=auth(key), json={
        "client": {"name": NAME, "phone": "+12025550142", "email": "maria@example.com",
                   "sms_consent": True, "time_zone": "America/New_York"}, "pain_before": 4})
    assert response.status_code == 201, response.get_json()
    client = db.get(Client, response.get_json()["client_id"])
    now = utcnow()
    db.add_all([
        Escalation(clinic_id=clinic.id, client_id=client.id, severity="urgent",
                   reasons=["red flag: leg weakness"], opened_at=now - timedelta(minutes=12)),
        Escalation(clinic_id=clinic.id, client_id=client.id, severity="concern",
                   reasons=["said worse"], opened_at=now - timedelta(hours=3)),
        InboundMessage(provider_sid="SMa11y", clinic_id=clinic.id, client_id=client.id,
                       from_number=client.phone, to_number=clinic.phone, intent="unknown",
                       body="Can I take a hot bath tonight?", received_at=now - timedelta(hours=1)),
        CheckIn(client_id=client.id, answer="worse", pain=6, source="web",
                created_at=now - timedelta(minutes=5)),
    ])
    db.commit()
    link = client_page_url(app.extensions["aftercare.config"], client.id, client.link_version)
    return base, owner, client, link


def listed(found: dict[str, list[str]]) -> str:
    """One line per problem, its page first: readable in a failure message."""
    return "\n".join(f"{url}: {problem}" for url, each in found.items() for problem in each)


def axe_page(browser, **options):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` runs npm ci")
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  bypass_csp=True, **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def problems(page, url: str) -> list[str]:
    page.goto(url)
    page.add_script_tag(path=str(AXE))
    return page.evaluate(AXE_RUN)


def staff_pages(db, client) -> list[str]:
    visit = db.exec(select(Visit).where(Visit.client_id == client.id)).one()
    return ["/", "/?show=urgent", "/clients", f"/clients/{client.id}",
            f"/clients/{client.id}/details", "/inbox", f"/clients/{client.id}/conversation",
            "/visits/new", f"/visits/{visit.id}", "/settings", "/account/password",
            "/account/two-factor", f"/clients/{client.id}/erase", "/clients/import",
            "/no/such/page"]


def test_every_page_has_no_serious_axe_violation_and_44px_targets(browser, seeded, db):
    base, owner, client, link = seeded
    page = axe_page(browser)
    found, small = {}, {}
    for url in ["/login", "/reset-password"]:
        found[url] = problems(page, base + url)
        small[url] = page.evaluate(SMALL_TARGETS)
    log_in(page, base, owner.email)
    for url in staff_pages(db, client):
        found[url] = problems(page, base + url)
        small[url] = page.evaluate(SMALL_TARGETS)
    page.context.clear_cookies()
    for url in [link, f"{link}/optout", f"{base}/c/not-a-token"]:
        found[url] = problems(page, url)
        small[url] = page.evaluate(SMALL_TARGETS)
    page.context.close()
    assert not listed(found), listed(found)
    assert not listed(small), listed(small)


def test_dark_mode_pages_have_no_serious_axe_violation(browser, seeded):
    base, owner, client, link = seeded
    page = axe_page(browser, color_scheme="dark")
    page.goto(f"{base}/login")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    found = {"/login": problems(page, f"{base}/login")}
    log_in(page, base, owner.email)
    found["/"] = problems(page, f"{base}/")
    found[f"/clients/{client.id}"] = problems(page, f"{base}/clients/{client.id}")
    page.context.clear_cookies()
    found["client page"] = problems(page, link)
    page.context.close()
    assert background != "rgb(243, 244, 246)"  # the dark scheme is on
    assert not listed(found), listed(found)


def wordy_staff_pages(db, client) -> list[str]:
    """The staff pages with the longest words and the narrowest cells (tables, chips, forms)."""
    pages = staff_pages(db, client)
    return [pages[0], pages[2], pages[3], pages[5], pages[7], pages[8], pages[9]]


@pytest.mark.parametrize("language", ["en", "es"])
def test_no_word_breaks_at_320px_with_text_at_200_percent(browser, seeded, db, language):
    """The client's pages in the client's language; staff pages in the browser's (locale)."""
    base, owner, client, link = seeded
    client.language = language
    db.add(client)
    db.commit()
    context = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True,
                                  bypass_csp=True, locale=language)
    page = context.new_page()
    page.goto(link)
    page.add_style_tag(content="html { font-size: 200%; } body { font-size: 1rem; }")
    broken = page.evaluate(BROKEN_WORDS)
    page.goto(f"{link}/optout")
    page.add_style_tag(content="html { font-size: 200%; } body { font-size: 1rem; }")
    broken += page.evaluate(BROKEN_WORDS)
    log_in(page, base, owner.email)
    assert page.get_attribute("html", "lang") == language
    for url in wordy_staff_pages(db, client):
        page.goto(base + url)
        page.add_style_tag(content="html { font-size: 200%; } body { font-size: 1rem; }")
        broken += [f"{url}: {word}" for word in page.evaluate(BROKEN_WORDS)]
    context.close()
    assert broken == [], broken
