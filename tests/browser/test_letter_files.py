"""A moderator sees, hears and opens every file a letter will deliver, on a desktop and a phone."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, Response, expect

from tests.browser.conftest import sign_in
from tests.browser.dashboard import Dashboard, Visitor, output_folder
from tests.conftest import MODERATOR_A, MODERATOR_B, Pals, Relay
from tests.support.letter_files import ALLOW_FILES, letter_with_files

VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
LOADED = "img => img.complete && img.naturalWidth > 0"
FETCH = """async url => {
  const answer = await fetch(url);
  const body = await answer.arrayBuffer();
  return {status: answer.status, type: answer.headers.get("content-type"),
          disposition: answer.headers.get("content-disposition"), size: body.byteLength};
}"""


@pytest.fixture
def relay(relay_factory: Callable[..., Relay]) -> Relay:
    """A relay that delivers recordings, videos and PDFs besides pictures."""
    return relay_factory(extra_sections=ALLOW_FILES)


def _watch(page: Page) -> list[str]:
    """Console errors, page errors and failed answers, as a person would see them in devtools."""
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        where = str(message.location.get("url", ""))
        if message.type == "error":
            problems.append(f"console: {message.text} ({where})")

    def answered(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("response", answered)
    return problems


def test_letter_page_shows_pictures_plays_the_recording_and_previews_the_pdf(
    page: Page, dashboard: Dashboard, pals: Pals, tmp_path: Path
) -> None:
    relay = dashboard.relay
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_with_files(pals.maya.email, pals.tomas.masked, tmp_path),
    )
    letter_id = relay.wait_held(1)[0]["id"]
    problems = _watch(page)
    sign_in(page, dashboard, MODERATOR_A)

    strip = page.locator(f"#letter-{letter_id} .file-strip")
    expect(strip).to_contain_text("3 files")
    expect(strip.locator("img.thumb")).to_have_count(2)  # the drawing and the PDF's page
    for thumb in strip.locator("img.thumb").element_handles():
        page.wait_for_function(LOADED, arg=thumb)
    page.screenshot(path=tmp_path / "queue-files.png")
    shutil.copy(tmp_path / "queue-files.png", output_folder())

    for name, (width, height) in VIEWPORTS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{dashboard.url}/letters/{letter_id}")
        files = page.locator("#files li.file")
        expect(files).to_have_count(3)

        picture = page.locator("li.file-picture img")
        page.wait_for_function(LOADED, arg=picture.element_handle())
        link = picture.locator("xpath=..").get_attribute("href")
        assert link is not None
        shown = page.evaluate(FETCH, link)
        assert shown["status"] == 200 and shown["type"].startswith("image/")
        assert shown["disposition"].startswith("inline")

        audio = page.locator("li.file-audio audio[controls]")
        source = audio.get_attribute("src")
        assert source is not None
        played = page.evaluate(FETCH, source)
        assert played["status"] == 200 and played["type"].startswith("audio/")
        assert played["size"] > 0
        page.wait_for_function("audio => audio.readyState >= 1", arg=audio.element_handle())

        page_one = page.locator("li.file-document img")
        page.wait_for_function(LOADED, arg=page_one.element_handle())
        download = page_one.locator("xpath=..").get_attribute("href")
        assert download is not None
        fetched = page.evaluate(FETCH, download)
        assert fetched["status"] == 200 and fetched["type"] == "application/pdf"
        assert fetched["disposition"].startswith("attachment")  # never rendered by our origin

        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, f"the letter page is wider than the {name} screen"
        page.screenshot(path=tmp_path / f"letter-files-{name}.png", full_page=True)
        shutil.copy(tmp_path / f"letter-files-{name}.png", output_folder())

    assert problems == []
    _only_for_staff_of_the_writers_library(dashboard, letter_id)


def _only_for_staff_of_the_writers_library(dashboard: Dashboard, letter_id: int) -> None:
    paths = [f"/letters/{letter_id}/files/1", f"/letters/{letter_id}/files/1/preview"]

    stranger = Visitor(dashboard)
    for path in paths:
        answer = stranger.request(path)
        assert answer.status == 303 and answer.headers["location"].endswith("/login")

    partner = Visitor(dashboard)  # staff of the pal's library: the letter page is not theirs
    partner.sign_in(MODERATOR_B)
    for path in [*paths, f"/letters/{letter_id}"]:
        assert partner.request(path).status == 404
