"""Retention and the privacy notice, end to end on one relay: a delivered letter's footer
links to the notice, which the browser shows in the reader's language with the configured
retention; raw originals go soon after delivery, letters' contents after the configured
months (a dated record stays), expired links go; `config check` says what goes next."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from relay import letters
from relay.schedule.retention import months_after
from tests.browser.dashboard import Visitor, start_dashboard
from tests.conftest import MODERATOR_A, TOMAS, Relay, enroll_pals, letter_bytes, wait_for

# The first line belongs to [web], the last table of the test config: where pages are reached.
RETENTION = """
public_url = "https://pals.example.org"
[retention]
originals_days = 0
letters_months = 1
"""


def _files_with(folder: Path, text: str) -> list[Path]:
    found = (path for path in folder.rglob("*") if path.is_file())
    return [path for path in found if text.encode() in path.read_bytes()]


def _purges(store: Path) -> list[dict[str, Any]]:
    audit = [json.loads(line) for path in (store / "audit").glob("*.jsonl") for line in path.open()]
    return [entry for entry in audit if entry["event"] == "retention-purge"]


def test_the_privacy_notice_and_a_purge_of_originals_old_letters_and_expired_links(
    page: Page, relay_factory: Callable[..., Relay]
) -> None:
    relay = relay_factory(extra_sections=RETENTION)
    pals = enroll_pals(relay)
    dashboard = start_dashboard(relay)
    store, spool = relay.data_dir / "store", relay.data_dir / "spool"
    wait_for(lambda: _purges(store), 15, "the day's purge, done as serve starts")
    Visitor(dashboard).ask_for_link(MODERATOR_A)  # a sign-in link, valid for minutes

    maya = pals.maya.email
    relay.send(maya, [pals.tomas.masked], letter_bytes(maya, pals.tomas.masked))
    ctx = relay.context()
    wait_for(ctx.store.queue, 15, "the letter held")
    relay.cli("queue", "approve", "1", "--by", MODERATOR_A)
    delivered = wait_for(lambda: relay.delivered(TOMAS), 15, "the letter at Tomás's mailbox")
    body = delivered[0].get_body(("plain",))
    assert body is not None
    link = "https://pals.example.org/privacy?lang=es"
    assert f"Cómo cuidamos tus datos: {link}" in str(body.get_content())

    page.goto(dashboard.url + link.removeprefix("https://pals.example.org"))
    expect(page.locator("h1")).to_have_text("Cómo cuida Test Pen Pals tus datos")
    expect(page.locator("#privacy-who")).to_contain_text(
        "Riverside Public Library y Biblioteca Santiago Severín"
    )
    expect(page.locator("#privacy-originals")).to_contain_text("dentro del día siguiente")
    expect(page.locator("#privacy-letters")).to_contain_text("se elimina 1 mes después")
    expect(page.locator("#privacy-commands")).to_contain_text("«baja» a help@pals.example.org")
    expect(page.locator("#privacy-export")).to_contain_text("escribe «exportar»")
    expect(page.locator("#privacy-set-aside")).to_contain_text("se elimina 1 mes después")
    expect(page.locator("#privacy-links")).to_contain_text("enlaces de consentimiento")
    expect(page.locator("#privacy-links")).to_contain_text("se borra 12 meses después")
    expect(page.locator(".top nav")).to_have_count(0)  # nobody signed in: no staff menu
    page.goto(dashboard.url + "/privacy")  # the browser's own language: English
    expect(page.locator("h1")).to_have_text("How Test Pen Pals looks after your data")
    expect(page.locator("#privacy-letters")).to_contain_text("removed 1 month after")
    expect(page.locator("#privacy-pal")).to_contain_text("never your real email address")

    later = letter_bytes(maya, pals.tomas.masked, subject="Still waiting", body="Kept for now")
    relay.send(maya, [pals.tomas.masked], later)
    wait_for(lambda: len(list((spool / "messages").glob("*.eml"))) == 2, 15, "letter 2 kept")
    checked = relay.cli("config", "check").stdout
    next_month = months_after(datetime.now(UTC), 1).date().isoformat()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()  # serve purged today
    assert (
        f"1 raw original older than 0 days will be removed at the next purge (on {tomorrow})"
        in checked
    )
    assert f"1 letter reaches 1 month on {next_month}" in checked
    assert "0 participants who left more than 12 months ago will be erased" in checked
    dry = relay.cli("retention", "run", "--dry-run").stdout
    assert dry.startswith("would remove 1 raw original, 0 letters reduced")
    assert len(list((spool / "messages").glob("*.eml"))) == 2

    purged = relay.cli("retention", "run").stdout
    assert purged.startswith("removed 1 raw original, 0 letters reduced")
    assert _files_with(spool / "messages", "Kept for now")  # the held letter's original stays
    assert not _files_with(spool / "messages", "school like")
    assert _files_with(spool / "scrubbed", "school like")  # the delivered version stays

    weeks_later = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    purged = relay.cli("retention", "run", "--now", weeks_later).stdout
    assert "1 letter reduced to its dates" in purged
    # Letter 1's two reply links go with its keys; letter 2's two have expired.
    assert "2 expired reply links, 0 unconfirmed emailed commands" in purged
    assert "1 expired sign-in link" in purged
    kept = ctx.store.letter(1)
    assert kept is not None
    assert (kept.status, kept.sender_library, kept.subject, kept.sender_masked) == (
        "delivered",
        "riverside",
        "",
        "",
    )
    assert "were removed on" in letters.as_delivered(ctx, kept).notes[0]
    assert ctx.store.queue()[0].subject == "Still waiting"  # held: never touched
    for gone in ("school like", "Hello", pals.maya.masked, pals.tomas.masked):
        assert not _files_with(store / "archive", gone), gone
    assert not _files_with(spool / "scrubbed", "school like")
    assert not _files_with(store / "lookup", '"k":"token:')
    assert not _files_with(store / "lookup", '"k":"magic:')
    counts = [(p["originals"], p["letters"], p["grants"]) for p in _purges(store)]
    assert counts == [(0, 0, 0), (1, 0, 0), (0, 1, 2)]
    assert "retention purge originals=1 letters=0" in (relay.data_dir / "relay.log").read_text()
