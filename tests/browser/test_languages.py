"""Staff read the dashboard in their own language, and only their own library's letters."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.browser.dashboard import Dashboard
from tests.conftest import MODERATOR_B, Pals, letter_bytes


def test_a_chilean_moderator_sees_spanish_and_none_of_riverside_letters(
    page: Page, dashboard: Dashboard, pals: Pals
) -> None:
    relay = dashboard.relay
    message = letter_bytes(pals.maya.email, pals.tomas.masked, subject="Riverside letter")
    relay.send(pals.maya.email, [pals.tomas.masked], message)
    relay.wait_held(1)
    sign_in(page, dashboard, MODERATOR_B)
    expect(page.locator("h1")).to_have_text("Cartas en espera en Biblioteca Santiago Severín")
    expect(page.locator("article.letter")).to_have_count(0)
    page.goto(dashboard.url + f"/participants/{pals.tomas.id}?q=maya")
    expect(page.locator(".pairing")).to_contain_text("Emparejar con")
    expect(page.locator(".pals")).to_contain_text(pals.maya.masked)
    expect(page.locator("#consent")).to_have_text("no hace falta")
    expect(page.locator(".edit-details summary")).to_have_text("Cambiar edad, intereses o tutor")
    assert pals.maya.email not in page.content()
    page.goto(dashboard.url + "/program")
    expect(page.locator("#config-check")).to_contain_text("El archivo en disco es válido.")
    expect(page.locator("#next-prompt")).to_contain_text("no hay tema en la configuración")
    expect(page.locator("#time-zone")).to_contain_text("Horas de Santiago")
    expect(page.locator("#next-digest time")).to_contain_text(", 09:00")
    expect(page.locator("#retention-letters")).to_contain_text("se elimina 12 meses después")
    expect(page.locator("#retention-left")).to_contain_text("se borran 12 meses después")
    expect(page.locator("#privacy-link")).to_have_attribute("href", "/privacy?lang=es")
