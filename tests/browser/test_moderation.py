"""A moderator signs in from the emailed link and works through the queue in a browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.browser.dashboard import Dashboard, output_folder
from tests.conftest import MODERATOR_A, Pals, letter_bytes, wait_for

PRIVATE = "Call me at 555-0142, I live at 12 Elm Street. "
KEPT = "Do you have a dog? I have two cats."


def _send(dashboard: Dashboard, pals: Pals, subject: str, body: str) -> None:
    relay = dashboard.relay
    message = letter_bytes(pals.maya.email, pals.tomas.masked, subject=subject, body=body)
    relay.send(pals.maya.email, [pals.tomas.masked], message)


def _screenshots(page: Page, tmp_path: Path) -> None:
    page.screenshot(path=tmp_path / "queue-desktop.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=tmp_path / "queue-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    for name in ("queue-desktop.png", "queue-phone.png"):
        shutil.copy(tmp_path / name, output_folder() / name)


def test_moderator_approves_rejects_and_edits_then_sees_it_in_the_history(
    page: Page, dashboard: Dashboard, pals: Pals, tmp_path: Path
) -> None:
    _send(dashboard, pals, "First", "Hi! What is school like for you?")
    _send(dashboard, pals, "Second", "This one will not be sent.")
    _send(dashboard, pals, "Third", PRIVATE + KEPT)
    dashboard.relay.wait_held(3)
    sign_in(page, dashboard, MODERATOR_A)
    expect(page.locator("article.letter")).to_have_count(3)
    _screenshots(page, tmp_path)

    page.click("#letter-1 button.approve")
    expect(page.locator("#done")).to_contain_text("Letter 1 approved")
    page.select_option("#letter-2 select[name=reason_choice]", index=1)
    page.click("#letter-2 button.reject")
    expect(page.locator("#done")).to_contain_text("Letter 2 rejected")

    page.wait_for_load_state("domcontentloaded")  # the shortcut script is in place by then
    page.keyboard.press("j")  # the shortcuts: select the only letter left, then edit it
    page.keyboard.press("e")
    page.wait_for_url("**/letters/3/edit")
    expect(page.locator("#edited_text")).to_have_value(
        re.compile(re.escape(PRIVATE + KEPT) + r"\s*")
    )
    page.fill("#edited_text", KEPT)
    page.click("#preview-edited")
    page.click("#approve-edited")
    expect(page.locator("#done")).to_contain_text("Letter 3 approved with your edits")
    expect(page.locator("article.letter")).to_have_count(0)

    def delivered_to_tomas() -> list[str] | None:
        bodies = {
            str(m["Subject"]): m.get_body(("plain",)).get_content()
            for m in dashboard.relay.delivered()
            if pals.tomas.email in str(m["To"])
        }
        return bodies if {"First", "Third"} <= set(bodies) else None

    bodies = wait_for(delivered_to_tomas, 15, "letters 1 and 3 delivered")
    assert KEPT in bodies["Third"] and "555-0142" not in bodies["Third"]
    assert "Elm Street" not in bodies["Third"]
    assert "Second" not in bodies

    page.goto(dashboard.url + "/history")
    rows = page.locator("#letters tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("tr[data-letter='2']")).to_contain_text("rejected")
    expect(page.locator("tr[data-letter='3']")).to_contain_text("with edits")
    page.goto(dashboard.url + "/history?status=delivered")
    expect(page.locator("tr[data-letter='1']")).to_contain_text("delivered")
    page.goto(dashboard.url + "/letters/2")
    expect(page.locator(".timeline")).to_contain_text("rejected")
    expect(page.locator(".timeline")).to_contain_text(MODERATOR_A)


def test_flags_are_marked_in_place_and_bulk_approval_leaves_flagged_letters(
    page: Page, dashboard: Dashboard, pals: Pals
) -> None:
    for subject in ("One", "Two", "Three"):
        body = "Call me at 555-0142 please." if subject == "Two" else "Hello from Maya."
        _send(dashboard, pals, subject, body)
    dashboard.relay.wait_held(3)
    store = dashboard.relay.context().store
    phone = {"kind": "phone", "text": "555-0142", "part": "text", "start": 11, "end": 19}
    store.update_letter(2, lambda letter: letter.but(flags=(phone,)))

    sign_in(page, dashboard, MODERATOR_A)
    expect(page.locator("#letter-2 pre.text mark.flag")).to_have_text("555-0142")
    page.wait_for_load_state("domcontentloaded")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts dl")).to_be_visible()
    page.click("text=Approve all letters without flags")
    expect(page.locator("input[name=letter]")).to_have_count(2)
    page.click("#confirm-bulk")
    expect(page.locator("#done")).to_contain_text("2 letters approved")
    expect(page.locator("article.letter")).to_have_count(1)
    expect(page.locator("article.letter")).to_have_id("letter-2")
    assert [e["letter"] for e in store.audit_log() if e["event"] == "approved"] == [1, 3]
