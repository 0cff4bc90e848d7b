"""The life of a letter: every event allowed only where the state machine says, one word for
each event in the history, the audit log and the dashboard's timeline; bounces through the
same door; approval composes from the version kept at hold."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import get_args

import pytest

from relay import letters, participants
from relay.context import Context
from relay.letters.lifecycle import RULES, NotNow, apply
from relay.store.records import Letter, LetterEvent, LetterStatus
from relay.web.history import timeline
from tests.conftest import MODERATOR_A, Pals, Relay, letter_bytes, wait_for

RETURNED = Path(__file__).resolve().parents[1] / "messages" / "returned"
STATES: tuple[LetterStatus, ...] = get_args(LetterStatus)
EVENTS: tuple[LetterEvent, ...] = tuple(RULES)


def _letter_in(ctx: Context, pals: Pals, status: LetterStatus) -> Letter:
    def build(letter_id: int) -> Letter:
        return Letter(
            id=letter_id,
            spool_id=f"spool-{letter_id}",
            sender=pals.maya.id,
            recipient=pals.tomas.id,
            sender_masked=pals.maya.masked,
            recipient_masked=pals.tomas.masked,
            sender_library="riverside",
            recipient_library="valparaiso",
            subject="Hello",
            received_at="2026-11-01T10:00:00+00:00",
        )

    letter = ctx.store.hold_letter(build, spool_key=f"spool:{status}:{len(ctx.store.audit_log())}")
    ctx.store.save_letter(letter.but(status=status))
    return letter.but(status=status)


@pytest.mark.parametrize(("status", "event"), list(itertools.product(STATES, EVENTS)))
def test_each_event_happens_only_in_its_states(
    relay: Relay, pals: Pals, status: LetterStatus, event: LetterEvent
) -> None:
    ctx = relay.context()
    letter = _letter_in(ctx, pals, status)
    audit_before = len(ctx.store.audit_log())
    rule = RULES[event]
    if status not in rule.before:
        with pytest.raises(NotNow, match=f"letter {letter.id} is {status}, not "):
            apply(ctx, letter.id, event)
        assert ctx.store.letter(letter.id) == letter  # nothing written
        assert len(ctx.store.audit_log()) == audit_before
        return
    after = apply(ctx, letter.id, event)
    assert after.status == (rule.after or status)
    assert ctx.store.letter(letter.id) == after
    assert after.history[-1].event == event
    (entry,) = ctx.store.audit_log()[audit_before:]
    assert entry["event"] == event and entry["letter"] == letter.id


def test_a_letter_ends_only_in_a_final_state(relay: Relay, pals: Pals) -> None:
    """Every state is reachable from held, and final states allow no event but a bounce."""
    reachable, frontier = {"held"}, ["held"]
    while frontier:
        state = frontier.pop()
        for rule in RULES.values():
            if state in rule.before and rule.after and rule.after not in reachable:
                reachable.add(rule.after)
                frontier.append(rule.after)
    assert reachable == set(STATES)
    for final in ("rejected", "failed", "bounced"):
        assert not [event for event, rule in RULES.items() if final in rule.before]


def test_timeline_shows_each_event_once_with_its_details(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    (held,) = relay.wait_held(1)
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    wait_for(lambda: relay.letter(held["id"])["status"] == "delivered", what="delivery")

    ctx = relay.context()
    letter = ctx.store.letter(held["id"])
    assert letter is not None
    steps = timeline(ctx, letter)
    assert [step.event for step in steps] == ["held", "approved", "delivered"]
    approved = steps[1]
    assert approved.by == "Ana" and approved.via == "cli"
    shown = relay.letter(held["id"])
    assert [step["event"] for step in shown["history"]] == ["held", "approved", "delivered"]


def test_a_record_from_before_one_vocabulary_reads_kept_on_hold(relay: Relay, pals: Pals) -> None:
    ctx = relay.context()
    letter = _letter_in(ctx, pals, "held")
    older = Letter.from_dict(
        letter.to_dict()
        | {"history": [{"at": "2026-01-01T00:00:00+00:00", "event": "kept on hold"}]}
    )
    ctx.store.save_letter(older)
    stored = ctx.store.letter(letter.id)
    assert stored is not None and [s.event for s in stored.history] == ["kept-on-hold"]


def _dsn(bounce_address: str, pal_email: str) -> bytes:
    """Postfix's RFC 3464 report for a mailbox that does not exist (tests/messages/returned)."""
    raw = (RETURNED / "postfix-dsn-failed.eml").read_bytes()
    raw = raw.replace(b"@@RETURN_PATH@@", bounce_address.encode())
    raw = raw.replace(b"tomas.perez@correo.example.net", pal_email.encode())
    return raw.replace(b"\n", b"\r\n")


def test_a_bounce_marks_the_letter_and_tells_its_moderators_once(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    (held,) = relay.wait_held(1)
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="delivery")
    bounce_address = delivered["Return-Path"].strip("<>")
    assert bounce_address.startswith(f"bounce+{held['id']}-")

    relay.send("", [bounce_address], _dsn(bounce_address, pals.tomas.email))
    wait_for(lambda: relay.letter(held["id"])["status"] == "bounced", what="the bounce")
    told = wait_for(
        lambda: [
            m
            for m in relay.delivered(MODERATOR_A)
            if m["Subject"] == f"Letter {held['id']} could not be delivered"
        ],
        what="the moderators told",
    )
    assert len(told) == 1

    # A second bounce of the same letter changes nothing and tells nobody again.
    relay.send("", [bounce_address], _dsn(bounce_address, pals.tomas.email))
    wait_for(
        lambda: [e for e in relay.context().store.audit_log() if e["event"] == "bounce-ignored"],
        what="the second bounce ignored",
    )
    assert relay.letter(held["id"])["status"] == "bounced"
    told_again = [
        m
        for m in relay.delivered(MODERATOR_A)
        if m["Subject"] == f"Letter {held['id']} could not be delivered"
    ]
    assert len(told_again) == 1
    events = [
        e["event"] for e in relay.context().store.audit_log() if e.get("letter") == held["id"]
    ]
    assert events.count("bounced") == 1
    assert "bounced letter=" in relay.log() and pals.tomas.email not in relay.log()


def test_approval_composes_from_the_version_kept_at_hold(relay: Relay, pals: Pals) -> None:
    """The letter is scrubbed once: approving it does not read the original again."""
    relay.start()
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(pals.maya.email, pals.tomas.masked, body="Kept once, delivered as kept."),
    )
    (held,) = relay.wait_held(1)
    ctx = relay.context()
    letter = ctx.store.letter(held["id"])
    assert letter is not None
    original = ctx.spool.path("messages", letter.spool_id)
    wait_for(original.exists, what="the original kept in the spool")
    original.unlink()  # approval must not need it

    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="delivery")
    body = delivered.get_body(("plain",))
    assert body is not None and "Kept once, delivered as kept." in body.get_content()
    assert letters.as_delivered(ctx, letter).text == "Kept once, delivered as kept."


def test_reconcile_queues_only_the_copies_neither_waiting_nor_sent(
    relay: Relay, pals: Pals
) -> None:
    """A guardian's copy delivered while the pal's copy waits is never queued again; a copy
    lost from the outbox (a CLI killed before queueing) is queued once."""
    ctx = relay.context()
    participants.set_guardian(ctx, pals.maya, "parent.smith@family-mail.example.net")
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    (held,) = relay.wait_held(1)
    relay.stop()  # nothing delivers while the outbox is examined

    letters.approve(ctx, held["id"], MODERATOR_A)
    pal_copy, guardian_copy = f"letter-{held['id']}", f"letter-{held['id']}-guardian-{pals.maya.id}"
    assert ctx.spool.queued_or_sent(pal_copy) and ctx.spool.queued_or_sent(guardian_copy)
    assert letters.reconcile(ctx) == 0

    ctx.spool.sent(guardian_copy)  # the guardian's copy went out
    ctx.spool.path("outbox", pal_copy, ".json").unlink()  # the pal's copy was lost
    ctx.spool.path("outbox", pal_copy).unlink()
    assert letters.reconcile(ctx) == 1
    assert [i.id for i in ctx.spool.outbox() if i.id.startswith("letter-")] == [pal_copy]
    assert letters.reconcile(ctx) == 0

    relay.start()
    wait_for(lambda: relay.letter(held["id"])["status"] == "delivered", what="delivery")
    assert len(relay.delivered("parent.smith@family-mail.example.net")) == 0  # not sent again
    assert len(relay.delivered(pals.tomas.email)) == 1
