"""Moderators decide from their mailbox: notices, one-word replies, refusals, reminders."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest

from relay import replies
from tests.conftest import (
    MODERATOR_A,
    MODERATOR_A2,
    MODERATOR_B,
    Pals,
    Relay,
    enroll_pals,
    letter_bytes,
    wait_for,
)

TRUSTED = "mx.test.example.org"


def _notices(relay: Relay, moderator: str) -> list[EmailMessage]:
    return [m for m in relay.delivered(moderator) if m["Message-ID"].startswith("<notice-")]


def _notice(relay: Relay, moderator: str, letter_id: int) -> EmailMessage:
    def found() -> list[EmailMessage]:
        return [m for m in _notices(relay, moderator) if f"<notice-{letter_id}." in m["Message-ID"]]

    return wait_for(found, what=f"notice of letter {letter_id} to {moderator}")[0]


def _reply(
    relay: Relay,
    notice: EmailMessage,
    sender: str,
    first_line: str,
    *,
    authenticated_by: str | None = TRUSTED,
    headers: dict[str, str] | None = None,
) -> None:
    """A reply as a phone mail app writes it: answer on top, the notice quoted below."""
    reply = EmailMessage(policy=SMTP)
    reply["From"] = sender
    reply["To"] = notice["From"]
    reply["Subject"] = f"Re: {notice['Subject']}"
    reply["In-Reply-To"] = notice["Message-ID"]
    reply["References"] = notice["Message-ID"]
    if authenticated_by:
        domain = sender.rpartition("@")[2]
        reply["Authentication-Results"] = (
            f"{authenticated_by}; spf=pass smtp.mailfrom={sender}; "
            f"dkim=pass (good signature) header.d={domain}; dmarc=pass header.from={domain}"
        )
    for name, value in (headers or {}).items():
        reply[name] = value
    body = notice.get_body(("plain",))
    original = body.get_content() if body is not None else ""
    quoted = "\n".join("> " + line for line in original.splitlines())
    reply.set_content(
        f"{first_line}\n\nSent from my phone\n\nOn Monday, the relay wrote:\n{quoted}"
    )
    to = notice["From"].addresses[0].addr_spec
    relay.send(sender, [to], reply.as_bytes())


def _refusals(relay: Relay) -> list[dict[str, Any]]:
    return [e for e in relay.context().store.audit_log() if e["event"] == "reply-refused"]


def _hold_one(relay: Relay, pals: Pals, subject: str = "Hello") -> int:
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(pals.maya.email, pals.tomas.masked, subject=subject),
    )
    held = wait_for(lambda: [q for q in relay.queue() if q["subject"] == subject])[0]
    return int(held["id"])


def test_notice_goes_to_the_writers_moderators_only_and_approve_delivers_once(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    letter_id = _hold_one(relay, pals)
    notice = _notice(relay, MODERATOR_A, letter_id)
    _notice(relay, MODERATOR_A2, letter_id)
    assert relay.delivered(MODERATOR_B) == []  # the pal's library is not asked
    sender = notice["From"].addresses[0].addr_spec
    assert sender.startswith("moderate+") and len(sender.split("@")[0]) == len("moderate+") + 32
    text = notice.get_body(("plain",)).get_content()
    assert "Hi! What is school like for you?" in text  # the letter as it will be delivered
    assert pals.maya.masked in text and pals.tomas.masked in text
    assert pals.tomas.email not in notice.as_string()  # never the other side's real address
    assert notice.get_body(("html",)) is not None

    _reply(relay, notice, MODERATOR_A, "Approve")
    wait_for(lambda: relay.delivered(pals.tomas.email), what="delivery after the reply")
    confirmation = wait_for(
        lambda: [m for m in relay.delivered(MODERATOR_A) if "approved" in m["Subject"]]
    )[0]
    assert confirmation["Subject"] == f"Letter {letter_id}: approved"
    assert confirmation["Auto-Submitted"] == "auto-replied"
    entry = next(e for e in relay.context().store.audit_log() if e["event"] == "approved")
    assert entry["via"] == "email" and entry["by"] == MODERATOR_A

    # The same token, replayed: its address takes no more mail.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _reply(relay, notice, MODERATOR_A, "approve")
    (code, text) = refused.value.recipients[notice["From"].addresses[0].addr_spec]
    assert f"{code} {text.decode()}" == replies.UNKNOWN_ADDRESS
    assert "refused reason=used-token" in relay.log()
    assert len(relay.delivered(pals.tomas.email)) == 1


def test_replies_that_must_not_count_are_refused_and_logged(relay: Relay, pals: Pals) -> None:
    relay.start()
    first = _hold_one(relay, pals, "First")
    second = _hold_one(relay, pals, "Second")
    notice = _notice(relay, MODERATOR_A, first)
    other = _notice(relay, MODERATOR_A, second)
    sam_notice = _notice(relay, MODERATOR_A2, first)

    attempts = [
        (pals.maya.email, notice, {}, "not-a-moderator"),  # the writer herself
        (MODERATOR_B, notice, {}, "not-a-moderator"),  # a moderator of the other library
        (MODERATOR_A, notice, {"authenticated_by": None}, "unauthenticated"),
        (MODERATOR_A, notice, {"authenticated_by": "evil.example.net"}, "unauthenticated"),
        (MODERATOR_A, sam_notice, {}, "token-of-another-moderator"),
    ]
    for sender, answered, options, _ in attempts:
        _reply(relay, answered, sender, "approve", **options)
    # A reply that answers the second letter's notice but uses the first letter's address.
    mixed = EmailMessage()
    mixed["From"] = notice["From"]
    mixed["Subject"] = notice["Subject"]
    mixed["Message-ID"] = other["Message-ID"]
    mixed.set_content("(the second letter's notice)")
    _reply(relay, mixed, MODERATOR_A, "approve")

    expected = [reason for *_, reason in attempts] + ["token-for-another-letter"]
    wait_for(lambda: len(_refusals(relay)) == len(expected), what="every refusal in the audit")
    assert sorted(r["reason"] for r in _refusals(relay)) == sorted(expected)
    assert {q["id"] for q in relay.queue()} == {first, second}  # still held
    assert relay.delivered(pals.tomas.email) == []
    assert relay.delivered(pals.maya.email) == []  # no answer to someone who is not staff
    assert "moderation reply refused reason=unauthenticated" in relay.log()
    # Carmen, staff of the other library, is told why, in her own language.
    explanations = wait_for(
        lambda: [m for m in relay.delivered(MODERATOR_B) if "no se usó" in m["Subject"]]
    )
    assert "no figura como moderadora" in explanations[0].get_body(("plain",)).get_content()


def test_expired_token_is_refused(relay_factory: Callable[..., Relay]) -> None:
    relay = relay_factory(extra_moderation="token_days = 0.000001")  # expires in 0.09 s
    pals = enroll_pals(relay)
    relay.start()
    letter_id = _hold_one(relay, pals)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _reply(relay, _notice(relay, MODERATOR_A, letter_id), MODERATOR_A, "approve")
    assert "refused reason=expired-token" in relay.log()
    assert relay.queue()[0]["status"] == "held"


def test_reject_with_reason_reaches_the_writer_in_their_language(relay: Relay, pals: Pals) -> None:
    relay.start()
    letter_id = _hold_one(relay, pals)
    _reply(relay, _notice(relay, MODERATOR_A, letter_id), MODERATOR_A, "reject too personal")
    (note,) = wait_for(lambda: relay.delivered(pals.maya.email))
    assert "too personal" in note.get_body(("plain",)).get_content()
    assert relay.letter(letter_id)["status"] == "rejected"

    # Tomás writes back; Carmen (Spanish) turns it down in Spanish; Tomás reads Spanish.
    relay.send(
        pals.tomas.email,
        [pals.maya.masked],
        letter_bytes(pals.tomas.email, pals.maya.masked, subject="Hola"),
    )
    reply_id = wait_for(lambda: [q for q in relay.queue() if q["subject"] == "Hola"])[0]["id"]
    notice = _notice(relay, MODERATOR_B, reply_id)
    assert "Para decidir" in notice.get_body(("plain",)).get_content()
    _reply(relay, notice, MODERATOR_B, "Rechazar: demasiado personal")
    (nota,) = wait_for(lambda: relay.delivered(pals.tomas.email))
    assert nota["Subject"] == "Tu carta para Maya no se envió"
    assert "demasiado personal" in nota.get_body(("plain",)).get_content()


def test_hold_keeps_the_letter_and_the_token(relay: Relay, pals: Pals) -> None:
    relay.start()
    letter_id = _hold_one(relay, pals)
    notice = _notice(relay, MODERATOR_A, letter_id)
    _reply(relay, notice, MODERATOR_A, "hold")
    wait_for(lambda: [m for m in relay.delivered(MODERATOR_A) if "kept on hold" in m["Subject"]])
    assert relay.queue()[0]["id"] == letter_id
    _reply(relay, notice, MODERATOR_A, "approve")
    wait_for(lambda: relay.delivered(pals.tomas.email))


def test_out_of_office_reply_to_a_notice_is_ignored(relay: Relay, pals: Pals) -> None:
    relay.start()
    letter_id = _hold_one(relay, pals)
    notice = _notice(relay, MODERATOR_A, letter_id)
    _reply(
        relay,
        notice,
        MODERATOR_A,
        "I am out of the office until Monday.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    ignored = wait_for(
        lambda: [e for e in relay.context().store.audit_log() if e["event"] == "reply-ignored"]
    )
    assert ignored[0]["reason"] == "automatic"
    assert _refusals(relay) == []
    answers = [
        m for m in relay.delivered(MODERATOR_A) if not m["Message-ID"].startswith("<notice-")
    ]
    assert answers == []  # an autoreply gets no answer
    # An autoreply from a patron's mailbox to a pal's masked address is not held either.
    relay.send(
        pals.tomas.email,
        [pals.maya.masked],
        letter_bytes(
            pals.tomas.email,
            pals.maya.masked,
            subject="Out of office",
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    wait_for(lambda: "ignored automatic message" in relay.log())
    assert [q["subject"] for q in relay.queue()] == ["Hello"]


def test_daily_reminder_lists_exactly_the_waiting_letters(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory(extra_moderation="remind_after_hours = 0")
    pals = enroll_pals(relay)
    relay.start()
    waiting = _hold_one(relay, pals, "Still waiting")
    decided = _hold_one(relay, pals, "Decided")
    relay.cli("queue", "approve", str(decided), "--by", MODERATOR_A)
    result = relay.cli("reminders", "send", "--library", "riverside")
    assert "riverside: reminded its moderators of 1 waiting letter(s)" in result.stdout
    for moderator in (MODERATOR_A, MODERATOR_A2):
        reminder = wait_for(
            lambda m=moderator: [x for x in relay.delivered(m) if "waiting at" in x["Subject"]]
        )[0]
        assert reminder["Subject"] == "1 letter waiting at Riverside Public Library"
        body = reminder.get_body(("plain",)).get_content()
        assert f"  {waiting}  " in body and "Still waiting" in body
        assert "Decided" not in body
    assert relay.delivered(MODERATOR_B) == []

    # Asked for again the same day, after the first went out: sent again, not swallowed.
    relay.cli("reminders", "send", "--library", "riverside")
    wait_for(
        lambda: len([x for x in relay.delivered(MODERATOR_A) if "waiting at" in x["Subject"]]) == 2,
        what="the second reminder asked for",
    )
