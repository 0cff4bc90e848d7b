"""What comes back to a delivered letter's VERP address, sent over SMTP to a running relay:
real failures in each common format, delays and out-of-office replies that are not failures,
a pal paused after repeated failures with both libraries told, forged and expired addresses
refused at RCPT, and bounces of notices to `bounces@`."""

from __future__ import annotations

import hashlib
import hmac
import smtplib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from relay import replies, verp
from relay.store.records import PAUSED
from tests.conftest import (
    DOMAIN,
    MAYA,
    MODERATOR_A,
    MODERATOR_A2,
    MODERATOR_B,
    Pals,
    Relay,
    letter_bytes,
    wait_for,
)

RETURNED = Path(__file__).resolve().parents[1] / "messages" / "returned"
FAILURES = [
    "postfix-dsn-failed.eml",
    "postfix-text-failed.eml",
    "exim-text-failed.eml",
    "qmail-text-failed.eml",
    "gmail-dsn-failed.eml",
    "microsoft-ndr-failed.eml",
]
NOT_FAILURES = ["postfix-dsn-delayed.eml", "outlook-out-of-office.eml", "vacation-reply.eml"]


def returned(name: str, return_path: str) -> bytes:
    """A sample as the pal's mail system wrote it, sent back to this letter's address."""
    raw = (RETURNED / name).read_bytes().replace(b"@@RETURN_PATH@@", return_path.encode())
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def deliver(relay: Relay, pals: Pals, subject: str) -> tuple[int, str]:
    """A letter from Maya to Tomás, approved and delivered; its number and return path."""
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(pals.maya.email, pals.tomas.masked, subject=subject),
    )
    (held,) = relay.wait_held(1)
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    (delivered,) = wait_for(
        lambda: [m for m in relay.delivered(pals.tomas.email) if m["Subject"] == subject],
        what="delivery",
    )
    return held["id"], delivered["Return-Path"].strip("<>")


def status(relay: Relay, letter_id: int) -> str:
    letter = relay.context().store.letter(letter_id)
    assert letter is not None
    return letter.status


def audited(relay: Relay, event: str, **details: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in relay.context().store.audit_log()
        if e["event"] == event and all(e.get(k) == v for k, v in details.items())
    ]


def told_writer(relay: Relay) -> list[EmailMessage]:
    return [m for m in relay.delivered(MAYA) if "did not arrive" in str(m["Subject"])]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_delays_and_out_of_office_replies_tell_nobody(relay: Relay, pals: Pals) -> None:
    relay.start()
    letter_id, return_path = deliver(relay, pals, "Hello")
    for name in NOT_FAILURES:
        sender = "" if "dsn" in name else pals.tomas.email
        relay.send(sender, [return_path], returned(name, return_path))
    wait_for(lambda: audited(relay, "delivery-delayed", letter=letter_id), what="delay audited")
    wait_for(
        lambda: len(audited(relay, "bounce-ignored", letter=letter_id, reason="auto-reply")) == 2,
        what="both automatic replies dropped",
    )
    assert status(relay, letter_id) == "delivered"
    assert not told_writer(relay)
    assert not [m for m in relay.delivered(MODERATOR_A) if "could not be delivered" in m["Subject"]]
    assert f"delivery delayed letter={letter_id}" in relay.log()
    assert relay.context().store.participant(pals.tomas.id).bounces == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("name", FAILURES)
def test_a_returned_letter_is_bounced_and_its_writer_told_kindly(
    relay: Relay, pals: Pals, name: str
) -> None:
    relay.start()
    letter_id, return_path = deliver(relay, pals, "Hello")
    relay.send("", [return_path], returned(name, return_path))
    wait_for(lambda: status(relay, letter_id) == "bounced", what="the bounce")
    (note,) = wait_for(lambda: told_writer(relay), what="the writer told")
    assert note["Subject"] == "Your letter to Tomás did not arrive"
    assert "nothing you did wrong" in text_of(note)
    tomas = relay.context().store.participant(pals.tomas.id)
    assert tomas is not None and tomas.bounces == 1 and tomas.status == "active"
    # Tomás's own library learns that their patron's mailbox is failing, in Spanish.
    (carmen,) = wait_for(lambda: relay.delivered(MODERATOR_B), what="the pal's library told")
    assert carmen["Subject"] == "El buzón de Tomás está devolviendo cartas"
    assert pals.tomas.email in text_of(carmen) and "5.1." in text_of(carmen)
    # What Maya's library gets names the letter and the code, never Tomás's real address.
    (ana,) = wait_for(
        lambda: [
            m for m in relay.delivered(MODERATOR_A) if "could not be delivered" in m["Subject"]
        ],
        what="the writer's moderators told",
    )
    assert "5.1." in text_of(ana) and pals.tomas.email not in ana.as_string()


def test_a_pal_whose_mailbox_is_gone_is_paused_and_both_libraries_told(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    for number in range(1, 4):
        letter_id, return_path = deliver(relay, pals, f"Letter {number}")
        relay.send("", [return_path], returned("postfix-dsn-failed.eml", return_path))
        wait_for(lambda: status(relay, letter_id) == "bounced", what=f"bounce {number}")  # noqa: B023

    tomas = wait_for(
        lambda: (
            (p := relay.context().store.participant(pals.tomas.id)) and p.status == PAUSED and p
        ),
        what="Tomás paused",
    )
    assert tomas.bounces == 3
    (paused,) = audited(relay, "paused", participant=pals.tomas.id)
    assert paused["reason"] == "mailbox-failing" and paused["via"] == "bounces"

    # Tomás's library: one notice per returned letter, the last saying letters are paused.
    to_carmen = wait_for(
        lambda: len(relay.delivered(MODERATOR_B)) == 3 and relay.delivered(MODERATOR_B),
        what="three notices to the pal's library",
    )
    assert "quedan en pausa" in text_of(to_carmen[-1])

    # Maya's library: told the pal is paused, in English, without Tomás's real address.
    def paused_notes(moderator: str) -> list[EmailMessage]:
        return [
            m for m in relay.delivered(moderator) if m["Subject"] == "Letters to Tomás are paused"
        ]

    for moderator in (MODERATOR_A, MODERATOR_A2):
        wait_for(lambda: len(paused_notes(moderator)) == 1, what="the pause told")  # noqa: B023
    for message in relay.delivered(MODERATOR_A) + relay.delivered(MODERATOR_A2):
        assert pals.tomas.email not in message.as_string()
    for message in relay.delivered(MAYA):
        assert pals.tomas.email not in message.as_string()

    # No fourth letter goes astray: Maya is told at once that her pal is not receiving.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        relay.send(pals.maya.email, [pals.tomas.masked], letter_bytes(MAYA, pals.tomas.masked))
    code, text = refused.value.recipients[pals.tomas.masked]
    assert f"{code} {text.decode()}" == replies.PARTICIPANT_PAUSED

    # Resuming Tomás (his library fixed the address) starts the count again.
    relay.cli("participants", "resume", pals.tomas.masked)
    resumed = relay.context().store.participant(pals.tomas.id)
    assert resumed is not None and resumed.status == "active" and resumed.bounces == 0


def _rcpt(relay: Relay, address: str) -> str:
    with relay.smtp() as client:
        client.ehlo()
        client.mail("")
        code, text = client.rcpt(address)
        return f"{code} {text.decode()}"


def test_forged_and_expired_bounce_addresses_are_refused_at_rcpt(relay: Relay, pals: Pals) -> None:
    relay.start()
    letter_id, return_path = deliver(relay, pals, "Hello")
    local = return_path.partition("@")[0]
    assert _rcpt(relay, return_path) == replies.RECIPIENT_OK

    forged = local[:-4] + ("0000" if not local.endswith("0000") else "1111")
    assert _rcpt(relay, f"{forged}@{DOMAIN}") == replies.UNKNOWN_ADDRESS
    other_letter = local.replace(f"bounce+{letter_id}-", f"bounce+{letter_id + 1}-")
    assert _rcpt(relay, f"{other_letter}@{DOMAIN}") == replies.UNKNOWN_ADDRESS

    secret = relay.context().secret
    long_ago = datetime.now(UTC).date() - timedelta(days=verp.VALID_DAYS + 1)
    expired = verp.bounce_address(secret, letter_id, DOMAIN, long_ago)
    assert _rcpt(relay, expired) == replies.UNKNOWN_ADDRESS

    # The older, undated form: taken for a letter approved within the same window only.
    signature = hmac.new(secret, f"bounce-{letter_id}".encode(), hashlib.sha256).hexdigest()[:12]
    assert _rcpt(relay, f"bounce+{letter_id}-{signature}@{DOMAIN}") == replies.RECIPIENT_OK
    assert _rcpt(relay, f"bounce+{letter_id}-{'0' * 12}@{DOMAIN}") == replies.UNKNOWN_ADDRESS
    assert "refused reason=bad-bounce-address" in relay.log()
    assert status(relay, letter_id) == "delivered"


def test_a_returned_notice_is_logged_with_the_readers_role_and_never_answered(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    bounces = f"bounces@{DOMAIN}"
    for reader in (MODERATOR_B, pals.tomas.email):
        sample = returned("postfix-dsn-failed.eml", bounces).replace(
            pals.tomas.email.encode(), reader.encode()
        )
        relay.send("", [bounces], sample)
    wait_for(lambda: len(audited(relay, "notice-not-delivered")) == 2, what="both returned notices")
    readers = sorted(e["to"] for e in audited(relay, "notice-not-delivered"))
    assert readers == sorted(["moderator:valparaiso", pals.tomas.masked])
    assert "notice not delivered to=moderator:valparaiso status=5.1.1" in relay.log()
    assert pals.tomas.email not in relay.log() and MODERATOR_B not in relay.log()
    assert relay.delivered() == []  # nothing answered, nobody told
