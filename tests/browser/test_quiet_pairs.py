"""Two classes of 30 and 27 matched, most pairs writing and three gone quiet: the moderators'
reminder lists the quiet pairs in each moderator's language, `penpal-relay quiet` shows who
owes a letter, and on the dashboard a moderator nudges one pair (a kind email in the pal's
language to the masked address, once; only its own library's patron) and re-matches
another after confirming."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from playwright.sync_api import Page, expect

from relay import matching, participants
from relay.context import Context
from relay.store.records import Participant
from tests.browser.conftest import sign_in
from tests.browser.dashboard import start_dashboard
from tests.conftest import MODERATOR_A, MODERATOR_B, Relay
from tests.support.classes import enrol_two_classes
from tests.support.past_letters import record_letter
from tests.support.waiting import wait_for


def letter_weeks_ago(ctx: Context, writer: Participant, pal: Participant, weeks: float) -> None:
    record_letter(ctx, writer, pal, datetime.now(UTC) - timedelta(weeks=weeks))


def arrived(relay: Relay, to: str, subject: str) -> list[EmailMessage]:
    """Messages in the Maildir with this subject (to `to`, when given); only the files that
    may be one are parsed (the Maildir holds every consent request of the two classes)."""
    found = []
    for path in sorted([*relay.maildir.glob("new/*"), *relay.maildir.glob("cur/*")]):
        raw = path.read_bytes()
        if to and f"Delivered-To: {to}".encode() not in raw:
            continue
        message = email.message_from_bytes(raw, policy=email.policy.default)
        if isinstance(message, EmailMessage) and message["Subject"] == subject:
            found.append(message)
    return found


def test_quiet_pairs_reminded_listed_nudged_and_rematched(page: Page, relay: Relay) -> None:
    ctx = relay.context()  # the program is made before the relay starts: quicker, same store
    children = enrol_two_classes(ctx)
    (partnership,) = ctx.config.partnerships
    today = datetime.now(UTC).date()
    proposal = matching.propose(partnership, ctx.store.participants(), ctx.config.matching, today)
    participants.accept_matches(ctx, proposal, by=MODERATOR_A)  # as `penpal-relay match` does
    people = {p.id: p for p in ctx.store.participants()}
    pairs = [
        (people[p.id], people[pal])
        for p in children
        if p.library == "riverside"
        for pal in people[p.id].pals
    ]
    assert len(pairs) == 30
    # Six pairings as if made ten weeks ago (the audit entry says when a pair counts from);
    # the others are new. Three of the six kept writing, three went quiet.
    paired = (datetime.now(UTC) - timedelta(weeks=10)).isoformat(timespec="seconds")
    earlier = [sorted((ours.id, theirs.id)) for ours, theirs in pairs[:6]]
    # Consent was given before that (a pair counts from when both may write).
    ctx.store.rewrite_audit(
        lambda e: (
            e | {"at": paired}
            if sorted(e.get("participants", ())) in earlier or e["event"] == "consent-given"
            else e
        )
    )
    (maya, tomas), (leo, sofia), (ava, mateo) = pairs[:3]  # by name, pals by the match
    letter_weeks_ago(ctx, tomas, maya, 8)  # Maya owes a letter
    letter_weeks_ago(ctx, ava, mateo, 7)  # Mateo owes one; Leo and Sofía never wrote
    for ours, theirs in pairs[3:6]:
        letter_weeks_ago(ctx, theirs, ours, 1)

    # The morning reminder, each moderator in their language; no real address in it.
    assert "riverside: reminded its moderators of 0 waiting letter(s) and 3 quiet pair(s)" in (
        relay.cli("reminders", "send").stdout
    )
    dashboard = start_dashboard(relay)
    real = [c.email for c in children] + [c.guardian for c in children]
    for moderator, subject, says in (
        (MODERATOR_A, "3 quiet pairs at Riverside Public Library", "Maya owes a letter"),
        (MODERATOR_B, "3 parejas en silencio en Biblioteca Santiago Severín", "le toca escribir"),
    ):
        (reminder,) = wait_for(lambda m=moderator, s=subject: arrived(relay, m, s))
        text = reminder.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert says in text and "/quiet" in text
        assert f"Maya ({maya.id}, {maya.masked})" in text and tomas.masked in text
        assert not [address for address in real if address in text]

    sign_in(page, dashboard, MODERATOR_A)
    page.click("nav >> text=Quiet pairs")
    expect(page.locator("tr.quiet-pair")).to_have_count(3)
    row = page.locator(f"#pair-{leo.id}-{sofia.id}")
    expect(row.locator(".owing")).to_have_text("Both: nobody has written yet")
    expect(page.locator(f"#pair-{maya.id}-{tomas.id} .weeks")).to_contain_text("8 weeks")
    assert not [address for address in real if address in page.content()]

    # Each library nudges its own patrons: Mateo owes, and his library may nudge him.
    theirs = page.locator(f"#pair-{ava.id}-{mateo.id}")
    expect(theirs.locator(".theirs")).to_have_text("Biblioteca Santiago Severín may nudge them")
    expect(theirs.locator("button.nudge")).to_have_count(0)
    subject = f"{tomas.name} is waiting to hear from you"
    page.locator(f"#pair-{maya.id}-{tomas.id} button.nudge").click()
    expect(page.locator("#done")).to_have_text("A kind email is on its way to Maya.")
    nudges = wait_for(  # to Maya and a copy to her guardian, who gets copies of letters
        lambda: found if len(found := arrived(relay, "", subject)) == 2 else None
    )
    assert sorted(m["Delivered-To"] for m in nudges) == sorted([maya.email, maya.guardian])
    for nudge in nudges:
        text = nudge.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert nudge["Auto-Submitted"] == "auto-generated" and nudge["DKIM-Signature"]
        assert tomas.masked in text and "/privacy?lang=en" in text
        assert tomas.email not in nudge.as_string() and tomas.guardian not in nudge.as_string()
    page.locator(f"#pair-{maya.id}-{tomas.id} button.nudge").click()  # once is enough
    expect(page.locator("#done")).to_contain_text(f"Maya and {tomas.name} were already nudged")
    expect(page.locator(f"#pair-{maya.id}-{tomas.id} .nudged")).to_contain_text("Nudged")
    assert len(arrived(relay, "", subject)) == 2

    page.locator(f"#pair-{ava.id}-{mateo.id} a.rematch").click()
    expect(page.locator("#rematch h1")).to_have_text(f"End the pairing of Ava and {mateo.name}?")
    assert ctx.store.participant(ava.id).pals == (mateo.id,)  # type: ignore[union-attr]
    page.click("#rematch-confirm")
    expect(page.locator("#done")).to_contain_text(
        f"The pairing ended (Ava ({ava.id}), {mateo.name} ({mateo.id}))"
    )
    expect(page.locator("tr.quiet-pair")).to_have_count(2)
    assert ctx.store.participant(ava.id).pals == ()  # type: ignore[union-attr]
    page.goto(f"{dashboard.url}/quiet?rematched=All+letters+were+sent")  # a made-up message
    expect(page.locator("tr.quiet-pair")).to_have_count(2)
    expect(page.locator("#done")).to_have_count(0)
    page.click("nav >> text=Audit log")
    expect(page.locator("main")).to_contain_text(
        "Ana nudged the quiet pair Maya (Riverside Public Library) and"
    )
    entries = ctx.store.audit_log()
    (nudged,) = [e for e in entries if e["event"] == "nudged"]
    assert (nudged["by"], nudged["via"], nudged["owing"]) == (MODERATOR_A, "web", [maya.id])
    assert nudged["library"] == "riverside"
    assert (entries[-1]["event"], entries[-1]["via"], entries[-1]["by"]) == (
        "unpaired",
        "quiet",
        MODERATOR_A,
    )
