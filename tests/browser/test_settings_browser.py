"""Issue 16 items 7 and 8 on a phone (390x844): the settings page's section links, a section
saved without touching another, a placeholder chip, and the CSV import from upload to confirm."""

from datetime import time

from playwright.sync_api import expect
from sqlmodel import select

from service.models import AuditEvent, Client, Clinic
from tests.browser.conftest import log_in, no_horizontal_scroll, shot

CSV = (b"name,phone,email,language\n"
       b"Ana Ruiz,(202) 555-0181,,es\n"
       b"No Contact,,,en\n"
       b"Bo Chen,,bo@example.com,en\n")


def test_settings_in_sections_and_a_csv_import(page, live, owner, db):
    base, _ = live
    clinic = db.get(Clinic, owner.clinic_id)
    clinic.plan_overrides = {"disabled_kinds": ["heat"]}
    db.add(clinic)
    db.commit()
    log_in(page, base, owner.email)
    page.goto(f"{base}/settings")
    assert no_horizontal_scroll(page)
    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"settings page at 390x844, sections folded: {height} px")  # 11,479 px unfolded
    assert height < 4 * 844
    page.click("[data-testid=sections] >> text=Security")
    expect(page.locator("[name=require_totp]")).to_be_visible()
    expect(page.locator("#security")).to_be_in_viewport()

    page.click("#clinic > summary")  # a section opens where it is, without a script
    section = page.locator("[data-testid=section-clinic]")
    section.locator("#clinic_name").fill("Sunrise Back Walking Downtown")
    section.locator("#clinic_phone").fill("(202) 555-0190")
    section.locator("#clinic_address").fill("12 Mill Lane")
    section.locator("#quiet_off").check()
    section.locator("text=Save clinic").click()
    expect(page.locator("text=Clinic saved.")).to_be_visible()
    db.expire_all()
    saved = db.get(Clinic, owner.clinic_id)
    assert (saved.name, saved.phone, saved.address) == ("Sunrise Back Walking Downtown",
                                                        "+12025550190", "12 Mill Lane")
    assert saved.quiet_start == saved.quiet_end == time(0, 0)
    assert saved.plan_overrides["disabled_kinds"] == ["heat"]  # the plan section kept as saved
    expect(page.locator("#quiet_off")).to_be_checked()  # the section saved is open again
    page.click("#plan > summary")
    expect(page.locator("input[name=kind_heat]")).not_to_be_checked()

    page.click("#wording > summary")
    area = page.locator("#wording_hydration")
    area.fill("Hi ")
    page.locator("[data-testid=placeholders-hydration] >> text={first_name}").click()
    expect(area).to_have_value("Hi {first_name}")
    page.click("[data-testid=reset-hydration]")
    expect(area).to_have_value(area.get_attribute("data-ours"))
    shot(page, "settings-sections")

    page.click("[data-testid=sections] >> text=Import clients")
    page.set_input_files("#import_file", {"name": "clients.csv", "mimeType": "text/csv",
                                          "buffer": CSV})
    page.click("text=Check the file")
    report = page.locator("[data-testid=import-report]")
    expect(report).to_contain_text("line 3: phone: a phone or an email is required")
    expect(report).to_contain_text("2 row(s) can be imported")
    assert not db.exec(select(Client)).all()  # a dry run
    assert no_horizontal_scroll(page)
    shot(page, "import-dry-run")
    page.click("text=Import 2 client(s), skipping the lines above")
    expect(page.locator("text=Imported 2 client(s), skipped 1 bad row(s).")).to_be_visible()
    db.expire_all()
    assert sorted(c.name for c in db.exec(select(Client)).all()) == ["Ana Ruiz", "Bo Chen"]
    assert db.exec(select(AuditEvent).where(AuditEvent.action == "clients_imported")).one()
