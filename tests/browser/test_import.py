"""A coordinator enrols a class: a spreadsheet with guardians previewed line by line, then
created; one more child added by the form; their details and consent state shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.browser.dashboard import Dashboard
from tests.conftest import MODERATOR_A, Pals

YEAR = datetime.now(UTC).year
WAITING = "waiting for the guardian's consent since"


def _class_sheet(folder: Path, pals: Pals) -> Path:
    """As Excel saves "CSV UTF-8" where the decimal mark is a comma: a BOM and semicolons."""
    sheet = folder / "class.csv"
    rows = [
        "Name;Email;Language;Year of birth;Interests;Parent name;Parent email;Guardian copies;Pal",
        f"Ava;ava.green@family-mail.example.net;en;{YEAR - 9};Football, drawing;Helen Green;"
        f"helen.green@family-mail.example.net;yes;{pals.tomas.masked}",
        f"Noah;noah.brown@family-mail.example.net;;{YEAR - 10};chess;Olivia Brown;"
        "olivia.brown-at-family-mail;;",
        f"Zoé;zoe.martin@family-mail.example.net;fr;{YEAR - 16};music;;;;",
        f"Liam;liam.white@family-mail.example.net;en;{YEAR - 10};;Jack White;"
        "jack.white@family-mail.example.net;no;",
        f"Emma;emma.stone@family-mail.example.net;;{YEAR - 30};;;;;",
        "Mia;mia.gray@family-mail.example.net;;;;;;;",
    ]
    sheet.write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    return sheet


def test_a_class_is_imported_with_guardians_then_one_more_child_is_added_by_the_form(
    page: Page, dashboard: Dashboard, pals: Pals, tmp_path: Path
) -> None:
    store = dashboard.relay.context().store
    before = len(store.participants())
    sign_in(page, dashboard, MODERATOR_A)
    page.goto(dashboard.url + "/participants/import")
    expect(page.locator("#columns")).to_contain_text("guardian_email")
    page.set_input_files("#file", str(_class_sheet(tmp_path, pals)))
    page.click("#preview")

    expect(page.locator("#import-problems li[data-line='3']")).to_have_text(
        "Line 3, guardian_email: this is not a usable email address for the guardian "
        "(An email address must have an @-sign.)"
    )
    expect(page.locator("#to-create tbody tr")).to_have_count(5)
    ava = page.locator("#to-create tr[data-line='2']")
    expect(ava.locator(".age")).to_have_text(f"8–9 (born {YEAR - 9})")
    expect(ava.locator(".consent")).to_have_text("the guardian will be asked for consent")
    expect(ava).to_contain_text("Helen Green helen.green@family-mail.example.net")
    expect(page.locator("#to-create tr[data-line='4'] .consent")).to_have_text("—")
    assert len(store.participants()) == before  # nothing written before confirming

    page.click("#confirm-import")
    expect(page.locator("#created li")).to_have_count(5)
    created = {p.name: p for p in store.participants()[before:]}
    assert set(created) == {"Ava", "Zoé", "Liam", "Emma", "Mia"}
    assert [created[n].consent for n in ("Ava", "Liam", "Zoé", "Emma", "Mia")] == [
        "pending", "pending", "", "", "",
    ]  # fmt: skip
    assert (created["Liam"].guardian_copies, created["Ava"].guardian_copies) == (False, True)
    assert created["Zoé"].language == "fr"
    assert pals.tomas.id in created["Ava"].pals

    # Noah's parent's address, corrected, by the form.
    page.goto(dashboard.url + "/participants")
    page.fill("#add-name", "Noah")
    page.fill("#add-email", "noah.brown@family-mail.example.net")
    page.fill("#add-birth-year", str(YEAR - 10))
    page.fill("#add-interests", "chess, robots")
    page.fill("#add-guardian-name", "Olivia Brown")
    page.fill("#add-guardian-email", "olivia.brown@family-mail.example.net")
    page.uncheck("#add-guardian-copies")
    page.click("section.add button[type=submit]")
    expect(page.locator("#done")).to_contain_text("Enrolled.")
    expect(page.locator("#age")).to_have_text(f"9–10 (born {YEAR - 10})")
    expect(page.locator("#interests")).to_have_text("chess, robots")
    expect(page.locator("#guardian")).to_have_text(
        "Olivia Brown olivia.brown@family-mail.example.net · no copies of letters"
    )
    expect(page.locator("#consent")).to_contain_text(WAITING)
    page.click(".edit-details summary")
    page.fill("#edit-interests", "chess, robots, space")
    page.fill("#edit-birth-year", "1850")
    page.click("#details-form button[type=submit]")
    error = page.locator(".edit-details .error")
    expect(error).to_contain_text("Year of birth: '1850' is not a year of birth")
    page.fill("#edit-birth-year", str(YEAR - 11))
    page.click("#details-form button[type=submit]")
    expect(page.locator("#done")).to_have_text("Details saved.")
    expect(page.locator("#interests")).to_have_text("chess, robots, space")

    page.goto(dashboard.url + "/participants")
    liam = page.locator("tr.participant", has_text="Liam")
    expect(liam.locator(".age")).to_have_text(f"9–10 (born {YEAR - 10})")
    expect(liam.locator(".guardian")).to_have_text("Jack White jack.white@family-mail.example.net")
    expect(liam.locator(".consent")).to_contain_text(WAITING)
    expect(page.locator("tr.participant", has_text="Ava").locator(".interests")).to_have_text(
        "football, drawing"
    )
    expect(page.locator("tr.participant .consent")).to_have_count(3)
    expect(page.locator("tr.participant", has_text="Ava")).to_contain_text("Tomás")

    page.goto(dashboard.url + "/audit")
    # Six by the coordinator; Maya, Tomás and Leo were enrolled (and audited) by the fixture.
    expect(page.locator("#audit tbody tr", has_text="Ana enrolled")).to_have_count(6)
    expect(page.locator("#audit tbody tr", has_text="Ana changed the details of")).to_have_count(1)
