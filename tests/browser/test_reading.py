"""The dashboard as a librarian reads it, in Chromium on a desk screen and on a phone: times in
the library's own zone, the audit log in sentences, the program's name on every page, a
participants table that keeps headings and masked addresses whole, a returned letter called
bounced, a flagged phone number marked with its "(", and not one console error or failed
request along the way.

One relay and one browser serve the whole module: letters are written, decided, delivered
and bounced once (a real bounce, sent back over SMTP to the letter's VERP address), then each
test reads the pages at both sizes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import (
    BrowserContext,
    Page,
    Response,
    ViewportSize,
    expect,
    sync_playwright,
)

from relay import letters
from tests.browser.conftest import sign_in
from tests.browser.dashboard import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Dashboard,
    output_folder,
    start_dashboard,
)
from tests.conftest import (
    MODERATOR_A,
    TOMAS,
    Pals,
    Relay,
    config_text,
    enroll_pals,
    letter_bytes,
    read_maildir,
)
from tests.support.system import ensure_package
from tests.support.waiting import wait_for

RETURNED = Path(__file__).resolve().parents[1] / "messages" / "returned" / "postfix-dsn-failed.eml"
ZONE = ZoneInfo("America/New_York")  # Riverside's zone in the test configuration
PHONE = "(555) 201-3344"
SIZES: dict[str, ViewportSize] = {
    "desk": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
LONG_ADDRESS = "zoe.hernandez-whitfield.and.family@a-rather-long-family-mail.example.net"


@dataclass
class Scene:
    relay: Relay
    dashboard: Dashboard
    pals: Pals
    browser: BrowserContext
    bounced: int = 0
    rejected: int = 0
    flagged: int = 0


def _bounce_back(relay: Relay, return_path: str) -> None:
    raw = RETURNED.read_bytes().replace(b"@@RETURN_PATH@@", return_path.encode())
    relay.send("", [return_path], raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def _letters(relay: Relay, pals: Pals) -> tuple[int, int, int]:
    """Letter 1 approved, delivered and bounced; 2 rejected; 3 held with a phone number."""
    for subject, body in (
        ("Hello", "Hi! What is school like for you?"),
        ("Secrets", "My address is not for letters."),
        ("Call me", f"Call me at {PHONE} tonight, after dinner."),
    ):
        message = letter_bytes(pals.maya.email, pals.tomas.masked, subject=subject, body=body)
        relay.send(pals.maya.email, [pals.tomas.masked], message)
    bounced, rejected, flagged = (held["id"] for held in relay.wait_held(3))
    ctx = relay.context()
    letters.approve(ctx, bounced, MODERATOR_A, via="dashboard")
    letters.reject(ctx, rejected, MODERATOR_A, "too personal", via="dashboard")
    (copy,) = wait_for(lambda: relay.delivered(pals.tomas.email), 15, "the pal's copy")
    _bounce_back(relay, copy["Return-Path"].strip("<>"))
    wait_for(lambda: _status(relay, bounced) == "bounced", 15, "the bounce")
    return bounced, rejected, flagged


def _status(relay: Relay, letter_id: int) -> str:
    letter = relay.context().store.letter(letter_id)
    return letter.status if letter is not None else ""


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("reading")
    (root / "config.toml").write_text(config_text(root / "data"))
    relay = Relay(root, root / "config.toml")
    pals = enroll_pals(relay)
    executable = ensure_package(CHROMIUM, "chromium")
    try:
        dashboard = start_dashboard(relay)
        numbers = _letters(relay, pals)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                user_data_dir=root / "profile",
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport=SIZES["desk"],
            )
            try:
                browser.set_default_timeout(10_000)
                page = browser.pages[0] if browser.pages else browser.new_page()
                sign_in(page, dashboard, MODERATOR_A)
                _enroll_in_browser(page, dashboard)  # the page stays open: the session with it
                yield Scene(relay, dashboard, pals, browser, *numbers)
            finally:
                browser.close()
    finally:
        if relay.process is not None:
            relay.stop()


def _enroll_in_browser(page: Page, dashboard: Dashboard) -> None:
    page.goto(dashboard.url + "/participants")
    page.fill("#add-name", "Zoe")
    page.fill("#add-email", LONG_ADDRESS)
    page.click("section.add button[type=submit]")
    expect(page.locator("#done")).to_be_visible()


@dataclass
class Watched:
    """A page whose console errors, failed requests and error answers are collected."""

    page: Page
    size: str
    problems: list[str] = field(default_factory=list)

    def open(self, scene: Scene, path: str) -> Page:
        self.page.goto(scene.dashboard.url + path)
        self.page.wait_for_load_state("load")
        return self.page

    def shot(self, name: str) -> None:
        path = output_folder() / f"reading-{name}-{self.size}.png"
        self.page.screenshot(path=path, full_page=True)

    def assert_clean(self) -> None:
        assert self.problems == [], self.problems


@pytest.fixture(params=list(SIZES))
def watched(request: pytest.FixtureRequest, scene: Scene) -> Iterator[Watched]:
    page = scene.browser.new_page()
    page.set_viewport_size(SIZES[request.param])
    seen = Watched(page, request.param)

    def answered(response: Response) -> None:
        if response.status >= 400:
            seen.problems.append(f"{response.status} {response.url}")

    def console(message: Any) -> None:
        if message.type == "error":
            seen.problems.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: seen.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda failed: seen.problems.append(f"failed: {failed.url}"))
    page.on("response", answered)
    yield seen
    page.close()


def _local(at: str) -> datetime:
    return datetime.fromisoformat(at).astimezone(ZONE)


def test_times_are_local_and_the_header_names_the_program_and_zone(
    scene: Scene, watched: Watched
) -> None:
    page = watched.open(scene, "/queue")
    expect(page.locator("#program-name")).to_have_text("Test Pen Pals")
    assert "Test Pen Pals" in page.title()
    zone = datetime.now(ZONE).tzname()
    expect(page.locator("#time-zone")).to_have_text(f"Times in New York ({zone})")

    received = scene.relay.context().store.letter(scene.flagged).received_at  # type: ignore[union-attr]
    stamp = page.locator(f"#letter-{scene.flagged} .meta time")
    utc = datetime.fromisoformat(received).astimezone(UTC)
    assert stamp.get_attribute("datetime") == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    shown = stamp.inner_text()
    local = _local(received)
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2}, \d\d:\d\d", shown), shown
    assert shown.endswith(local.strftime("%H:%M")) and f" {local.day} " in shown, shown
    assert utc.strftime("%H:%M") != local.strftime("%H:%M")  # the zone really moved the hour
    assert "UTC" not in page.locator("main").inner_text()

    day = local.date().isoformat()  # the date filters read the library's days too
    page = watched.open(scene, f"/history?since={day}&until={day}")
    expect(page.locator("#letters tbody tr[data-letter]")).to_have_count(3)

    page = watched.open(scene, "/program")
    expect(page.locator("#program-name")).to_have_text("Test Pen Pals")
    expect(page.locator("#next-digest time")).to_have_attribute("datetime", re.compile(r"Z$"))
    watched.shot("queue")
    watched.assert_clean()


def test_the_flagged_phone_number_is_marked_with_its_opening_parenthesis(
    scene: Scene, watched: Watched
) -> None:
    page = watched.open(scene, "/queue")
    expect(page.locator(f"#letter-{scene.flagged} pre.text mark.flag")).to_have_text(PHONE)
    masked: list[dict[str, Any]] = page.locator(".letter .meta .address").evaluate_all(_ONE_LINE)
    assert masked and all(m["rects"] == 1 for m in masked), masked
    page = watched.open(scene, f"/letters/{scene.flagged}")
    expect(page.locator("pre.text mark.flag")).to_have_text(PHONE)
    watched.assert_clean()


def test_a_bounced_letter_reads_bounced_everywhere(scene: Scene, watched: Watched) -> None:
    page = watched.open(scene, f"/letters/{scene.bounced}")
    status = page.locator(f"#letter-{scene.bounced} .meta .status")
    expect(status).to_have_text("bounced")
    expect(page.locator(".timeline")).to_contain_text("bounced")
    expect(page.locator(".timeline")).to_contain_text("the pal's mailbox returned it")
    for step in page.locator(".timeline time").all():
        assert step.get_attribute("datetime", timeout=1000)
    watched.shot("letter")
    page = watched.open(scene, "/history")
    expect(page.locator(f"tr[data-letter='{scene.bounced}'] .status")).to_have_text("bounced")
    expect(page.locator(f"tr[data-letter='{scene.rejected}'] .status")).to_have_text("rejected")
    page = watched.open(scene, "/history?status=bounced")
    expect(page.locator("#letters tbody tr")).to_have_count(1)
    watched.assert_clean()


def test_the_audit_log_reads_as_sentences(scene: Scene, watched: Watched) -> None:
    page = watched.open(scene, "/audit")
    log = page.locator("#audit tbody")
    for said in (
        f"Ana approved letter {scene.bounced}",
        f"Ana rejected letter {scene.rejected}: too personal",
        f"Letter {scene.bounced} was delivered",
        f"Letter {scene.bounced} bounced",
        f"Letter {scene.flagged} arrived and waits for a moderator",
        "Ana enrolled Zoe (Riverside Public Library)",
        "Maya (Riverside Public Library) and Tomás (Biblioteca Santiago Severín) were paired",
        "Ana signed in",
    ):
        expect(log).to_contain_text(said)
    text = log.inner_text()
    for raw in ("spool", "edited:", "{", "'", "True", "False", TOMAS, "Letter 1spool"):
        assert raw not in text, raw
    first = page.locator("#audit tbody tr time").first
    assert first.get_attribute("datetime", timeout=1000)
    page = watched.open(scene, "/audit?by=Ana")  # the name the sentences show
    expect(page.locator("#audit tbody")).to_contain_text(f"Ana approved letter {scene.bounced}")
    expect(page.locator("#audit tbody")).not_to_contain_text("was delivered")
    watched.shot("audit")
    watched.assert_clean()


_ONE_LINE = """(elements) => elements.map((element) => {
  const style = getComputedStyle(element);
  const line = parseFloat(style.lineHeight);
  const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
  const box = element.getBoundingClientRect();
  return {text: element.textContent, height: box.height - padding, line: line,
          rects: element.getClientRects().length, visible: box.width > 0};
})"""


def test_participants_keep_headings_and_masked_addresses_on_one_line(
    scene: Scene, watched: Watched
) -> None:
    page = watched.open(scene, "/participants")
    expect(page.locator("tr.participant")).to_have_count(3)
    headings: list[dict[str, Any]] = page.locator("#participants th").evaluate_all(_ONE_LINE)
    for heading in (h for h in headings if h["visible"]):
        assert heading["height"] < 1.5 * heading["line"], heading
    addresses: list[dict[str, Any]] = page.locator("#participants .address").evaluate_all(_ONE_LINE)
    assert len(addresses) == 3
    for address in addresses:
        assert address["rects"] == 1 and address["height"] < 1.5 * address["line"], address
    # A table wider than the phone scrolls in its own box; the page itself does not.
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, wide
    watched.shot("participants")

    page = watched.open(scene, f"/participants/{scene.pals.maya.id}")
    masked: list[dict[str, Any]] = page.locator(".address").evaluate_all(_ONE_LINE)
    assert masked and all(m["rects"] == 1 for m in masked), masked
    watched.assert_clean()


def test_the_favicon_is_served_by_the_relay(scene: Scene, watched: Watched) -> None:
    page = watched.open(scene, "/queue")
    icon = page.locator("link[rel=icon]").get_attribute("href", timeout=1000)
    assert icon is not None and icon.startswith("/")
    for path in (icon, "/favicon.ico"):
        answer = page.request.get(scene.dashboard.url + path)
        assert answer.status == 200 and answer.headers["content-type"].startswith("image/")
    watched.assert_clean()


def test_the_command_line_shows_the_letter_bounced(scene: Scene) -> None:
    assert scene.relay.letter(scene.bounced)["status"] == "bounced"
    shown = scene.relay.cli("queue", "show", str(scene.bounced)).stdout
    assert shown.startswith(f"letter {scene.bounced}: bounced")


def test_the_held_notice_marks_the_phone_number_whole(scene: Scene) -> None:
    def notice() -> str | None:
        for message in read_maildir(scene.relay.maildir):
            subject = str(message["Subject"])
            if MODERATOR_A in str(message["To"]) and subject.startswith(f"Letter {scene.flagged} "):
                html = message.get_body(("html",))
                return str(html.get_content()) if html is not None else None
        return None

    html = wait_for(notice, 15, "the held notice")
    assert re.search(r"<mark[^>]*>" + re.escape(PHONE) + "</mark>", html.replace("&#34;", '"'))
