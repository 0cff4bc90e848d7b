"""A coordinator imports patrons from a spreadsheet: preview, line-by-line errors, then create."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.browser.dashboard import Dashboard
from tests.conftest import MODERATOR_A, Pals


def test_import_previews_reports_the_bad_line_then_creates_the_good_rows(
    page: Page, dashboard: Dashboard, pals: Pals, tmp_path: Path
) -> None:
    sheet = tmp_path / "patrons.csv"
    sheet.write_text(
        "name,email,language,pal\n"
        f"Ava,ava.green@family-mail.example.net,en,{pals.tomas.masked}\n"
        "Noah,not-an-address,,\n"
        "Zoé,zoe.martin@family-mail.example.net,fr,\n",
        encoding="utf-8",
    )
    store = dashboard.relay.context().store
    before = len(store.participants())
    sign_in(page, dashboard, MODERATOR_A)
    page.goto(dashboard.url + "/participants/import")
    page.set_input_files("#file", str(sheet))
    page.click("#preview")

    expect(page.locator("#import-problems li[data-line='3']")).to_contain_text("Line 3")
    expect(page.locator("#to-create tbody tr")).to_have_count(2)
    assert len(store.participants()) == before  # nothing written before confirming

    page.click("#confirm-import")
    expect(page.locator("#created li")).to_have_count(2)
    created = {p.name: p for p in store.participants()[before:]}
    assert set(created) == {"Ava", "Zoé"}
    assert created["Zoé"].language == "fr"
    assert pals.tomas.id in created["Ava"].pals

    page.goto(dashboard.url + "/audit?event=enrolled")
    # Two by the coordinator's import; Maya and Leo were enrolled (and audited) by the fixture.
    expect(page.locator("#audit tbody tr", has_text="Ana enrolled")).to_have_count(2)
    expect(page.locator("#audit tbody tr")).to_have_count(4)
    page.goto(dashboard.url + "/participants?q=ava")
    expect(page.locator("tr.participant")).to_contain_text("Tomás")
