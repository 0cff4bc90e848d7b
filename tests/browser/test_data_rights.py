"""A coordinator downloads a patron's data and erases the patron from the dashboard; a
moderator may download but is not offered the erasure, nor allowed it."""

from __future__ import annotations

import json
import zipfile

from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.browser.dashboard import Dashboard
from tests.conftest import MODERATOR_A, MODERATOR_A2, MODERATOR_B, Pals
from tests.support.waiting import wait_for


def test_download_their_data_then_erase_after_confirming(
    page: Page, dashboard: Dashboard, pals: Pals
) -> None:
    store = dashboard.relay.context().store
    sign_in(page, dashboard, MODERATOR_A2)  # a moderator: downloads, cannot erase
    page.goto(f"{dashboard.url}/participants/{pals.maya.id}")
    expect(page.locator("#erase-participant")).to_have_count(0)
    assert page.request.get(f"{dashboard.url}/participants/{pals.maya.id}/erase").status == 403

    page.context.clear_cookies()
    sign_in(page, dashboard, MODERATOR_A)
    page.goto(f"{dashboard.url}/participants/{pals.maya.id}")
    with page.expect_download() as started:
        page.click("#export-data")
    download = started.value
    assert download.suggested_filename == f"{pals.maya.id}-data.zip"
    with zipfile.ZipFile(download.path()) as archive:
        record = json.loads(archive.read("participant.json"))
        assert "the data kept about Maya" in archive.read("README.txt").decode()
    assert record["email"] == pals.maya.email
    assert record["pals"] == [{"name": "Tomás", "masked": pals.tomas.masked}]

    page.click("#erase-participant")
    expect(page.locator("#erase")).to_contain_text("cannot be undone")
    expect(page.locator("#erase")).to_contain_text("moderators of both libraries are told")
    assert store.participant(pals.maya.id) is not None  # nothing happens before confirming
    page.click("#erase-confirm")
    expect(page.locator("#done")).to_contain_text(f"Participant {pals.maya.id} was erased")
    assert store.participant(pals.maya.id) is None
    assert store.participant(pals.tomas.id) is not None
    # Both libraries are told, by Maya's masked address only: Tomás's to find him a new pal.
    relay = dashboard.relay

    def told(to: str, subject: str) -> list[str]:
        found = [m for m in relay.delivered(to) if m["Subject"] == subject]
        return [str(m.get_content()) for m in found]

    (carmen,) = wait_for(
        lambda: told(MODERATOR_B, "Tomás necesita un nuevo amigo por correspondencia")
    )
    (ana,) = wait_for(lambda: told(MODERATOR_A, "A participant was erased by Ana"))
    assert pals.maya.masked in carmen and pals.maya.masked in ana
    assert "Maya" not in carmen + ana and pals.maya.email not in carmen + ana
    assert page.goto(f"{dashboard.url}/participants/{pals.maya.id}").status == 404  # type: ignore[union-attr]

    page.goto(dashboard.url + "/audit?event=erased")
    expect(page.locator("#audit tbody tr", has_text="Ana erased participant")).to_have_count(1)
    page.goto(dashboard.url + "/audit?event=exported")
    expect(page.locator("#audit tbody tr", has_text="Ana downloaded the data")).to_have_count(1)
