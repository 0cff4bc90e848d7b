"""A program year from two classes to the board's report, end to end: two classes of 30
and 27 children matched and paired, a letter and its answer written, approved and delivered
through a real SMTP sink; the coordinator reads the report page in Chromium (exact figures,
the charts loaded, the same report to download), then `penpal-relay program close` sends
each child a goodbye in their language (and their guardian a copy), pauses everyone, writes
the final report; `resume` by email does not lift the pause. (Closing twice sends one
goodbye: tests/unit/test_closing.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Page

from relay import letters, matching, participants
from relay.context import Context
from relay.store.records import Participant
from tests.browser.dashboard import output_folder, sign_in_at_smarthost
from tests.conftest import (
    DOMAIN,
    MODERATOR_A,
    MODERATOR_B,
    Received,
    Relay,
    Smarthost,
    letter_bytes,
)
from tests.support.classes import enrol_two_classes
from tests.support.serving import serving
from tests.support.waiting import wait_for

PARTNERSHIP = "riverside+valparaiso"
STAY = """
[program]
stay_in_touch = true
"""


def _to(smarthost: Smarthost, address: str) -> list[str]:
    return [r.message["Subject"] for r in smarthost.received if r.to(address)]


def _letter(
    ctx: Context, relay: Relay, smarthost: Smarthost, writer: Participant, pal: Participant
) -> None:
    """The writer writes, their moderator approves, the pal receives it."""
    relay.send(writer.email, [pal.masked], letter_bytes(writer.email, pal.masked))
    held = wait_for(lambda: ctx.store.queue(writer.library), 15, "the letter held")
    moderator = MODERATOR_A if writer.library == "riverside" else MODERATOR_B
    letters.approve(ctx, held[0].id, moderator)
    wait_for(lambda: _to(smarthost, pal.email), 15, "the letter at the pal's address")

    def recorded() -> bool:  # the relay records the delivery once the sink said 250
        letter = ctx.store.letter(held[0].id)
        return letter is not None and letter.status == "delivered"

    wait_for(recorded, 15, "the letter recorded as delivered")


def _text(received: Received) -> str:
    body = received.message.get_body(("plain",))
    return str(body.get_content()).replace("\r\n", "\n") if body is not None else ""


def test_a_program_year_from_two_classes_to_the_final_report(
    relay_factory: Callable[..., Relay], smarthost: Smarthost, page: Page, tmp_path: Path
) -> None:
    relay = relay_factory(
        transport="smtp", smarthost=f"127.0.0.1:{smarthost.port}", extra_sections=STAY
    )
    ctx = relay.context()
    children = enrol_two_classes(ctx)
    partnership = next(p for p in ctx.config.partnerships if p.id == PARTNERSHIP)
    today = datetime.now(UTC).date()
    proposal = matching.propose(partnership, ctx.store.participants(), ctx.config.matching, today)
    made, _ = participants.accept_matches(ctx, proposal)
    a, b = made[0].first, made[0].second
    month = f"{today.year:04d}-{today.month:02d}"

    with serving(relay) as web:
        # A riverside child writes; their pal answers.
        _letter(ctx, relay, smarthost, a, b)
        _letter(ctx, relay, smarthost, b, a)

        # The coordinator reads the report page, in English.
        sign_in_at_smarthost(page, f"http://{web}", smarthost, MODERATOR_A)
        page.click("nav >> text=Report")
        page.wait_for_url("**/report")
        row = page.locator(f'#report-letters tr[data-month="{month}"][data-library="riverside"]')
        events = ["held", "approved", "rejected", "delivered", "bounced", "failed"]
        cells = [row.locator(f'td[data-event="{e}"]').inner_text() for e in events]
        assert cells == ["1", "1", "0", "1", "0", "0"]
        row = page.locator(f'#report-letters tr[data-month="{month}"][data-library="valparaiso"]')
        assert [row.locator(f'td[data-event="{e}"]').inner_text() for e in events] == [
            "1", "1", "0", "1", "0", "0"
        ]  # fmt: skip
        assert page.locator("#report-letters tbody tr").count() == 12 * 2
        assert page.inner_text("#active-pairs") == "1"
        assert page.inner_text("#reply-rate") == "50% (1 of 2)"
        assert page.inner_text("#median-hours") == "0"
        ages = page.locator("#report-ages tbody tr")
        assert dict(zip(ages.locator("td:first-child").all_inner_texts(),
                        ages.locator("td:last-child").all_inner_texts(), strict=True)) == {
            "0-8": "0", "9-11": "43", "12-14": "14", "15-17": "0", "18+": "0", "not recorded": "0"
        }  # fmt: skip
        assert page.inner_text('#report-languages tr[data-language="en"] td:last-child') == "30"
        assert page.inner_text('#report-languages tr[data-language="es"] td:last-child') == "27"
        widths = page.eval_on_selector_all(
            "figure.chart img", "images => images.map(i => i.complete ? i.naturalWidth : 0)"
        )
        assert len(widths) == 2 and all(width > 0 for width in widths)
        page.screenshot(path=output_folder() / "report-page.png", full_page=True)
        links = [page.get_attribute(f"#download-{form}", "href") for form in ("csv", "md", "html")]
        assert [str(link).split("?")[0] for link in links] == [
            "/report/csv",
            "/report/md",
            "/report/html",
        ]
        content = page.content()
        assert not any(x in content for x in ("family-mail", "Isabella", "Maximiliano"))
        # One partnership chosen; the same report as CSV.
        page.select_option("select[name=partnership]", PARTNERSHIP)
        page.click("#report-form button[type=submit]")
        page.wait_for_url(f"**partnership={PARTNERSHIP.replace('+', '%2B')}")
        csv_text = page.request.get(
            f"http://{web}{page.get_attribute('#download-csv', 'href')}"
        ).text()
        assert f"letters,{month},valparaiso,delivered,1\n" in csv_text
        assert "active_pairs,,,,1\n" in csv_text and "family-mail" not in csv_text

        final = tmp_path / "final.html"
        closed = relay.cli(
            "program", "close", "--partnership", PARTNERSHIP, "--yes", "--by", MODERATOR_A,
            "--output", str(final),
        )  # fmt: skip
        assert "sent 57 goodbyes and 57 copies to guardians; paused 57" in closed.stdout

        def goodbyes() -> list[tuple[str, str, str]]:
            return [
                (r.rcpt_tos[0], r.message["Subject"], _text(r))
                for r in smarthost.received
                if r.message["Message-ID"].startswith("<goodbye-")
            ]

        found = wait_for(lambda: len(goodbyes()) == 114 and goodbyes(), 30, "114 goodbyes")
        by_address = {to: (subject, text) for to, subject, text in found}
        for child in children:
            subject, text = by_address[child.email]
            copy_subject, copy = by_address[child.guardian]  # the guardian's copy says so
            assert copy_subject == subject and "copy for" not in text and "copia para" not in text
            if child.library == "riverside":
                assert f"This is a copy for {child.name}'s guardian" in copy
                assert subject == f"Thank you for writing, {child.name}!"
                assert "will write\nto you before the next program year" in text
            else:
                assert subject == f"¡Gracias por escribir, {child.name}!"
                assert "te\nescribirán antes de que empiece el próximo año" in text
                assert f"Esta es una copia para la persona responsable de {child.name}" in copy
        _, to_a = by_address[a.email]
        assert f"writing to {b.name}" in to_a and "You sent one letter this year." in to_a
        assert b.email not in to_a and b.guardian not in to_a
        sent = next(
            r.message
            for r in smarthost.received
            if r.rcpt_tos == [a.email] and r.message["Message-ID"].startswith("<goodbye-")
        )
        assert sent["From"].addresses[0].addr_spec == f"program@{DOMAIN}"
        assert sent["Auto-Submitted"] == "auto-generated" and sent["DKIM-Signature"]
        everyone = [ctx.store.participant(child.id) for child in children]
        assert {(p.status, p.pause_reason) for p in everyone if p} == {("paused", "program-closed")}

        report = final.read_text()
        assert report.count('<img src="data:image/png;base64,') == 2
        row = f"<tr><td>{month}</td><td>Riverside Public Library</td><td>1</td><td>1</td>"
        assert row in report and '<html lang="en">' in report  # the first library's language
        assert "family-mail" not in report

        audit = [e for e in ctx.store.audit_log() if e["event"] == "program-closed"]
        assert [(e["goodbyes"], e["paused"], e["by"]) for e in audit] == [(57, 57, MODERATOR_A)]
        assert "family-mail" not in json.dumps(audit)

        # "resume" by email: the library's pause stays.
        relay.send(
            a.email,
            [f"help@{DOMAIN}"],
            letter_bytes(a.email, f"help@{DOMAIN}", "resume", "resume\n"),
        )
        wait_for(
            lambda: any("about the letters of" in s for s in _to(smarthost, a.email)),
            15,
            "the answer to resume",
        )
        assert ctx.store.participant(a.id).status == "paused"  # type: ignore[union-attr]
    assert len(goodbyes()) == 114
