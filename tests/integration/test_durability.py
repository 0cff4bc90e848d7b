"""Never lose a letter, never send one twice: smarthost failures, restarts, kill -9, SIGTERM."""

from __future__ import annotations

import signal
import smtplib
import socket
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from relay import replies
from tests.conftest import (
    MAYA,
    MODERATOR_A,
    MODERATOR_A2,
    TOMAS,
    Pals,
    Received,
    Relay,
    Smarthost,
    enroll_pals,
    letter_bytes,
    wait_for,
)
from tests.support.system import children


def smtp_relay(relay_factory: Callable[..., Relay], smarthost: Smarthost) -> Relay:
    return relay_factory(transport="smtp", smarthost=f"127.0.0.1:{smarthost.port}")


def _one_approved_letter(
    relay_factory: Callable[..., Relay], smarthost: Smarthost
) -> tuple[Relay, Pals, dict[str, Any]]:
    """A running relay with the smarthost as transport, and Maya's letter just approved."""
    relay = smtp_relay(relay_factory, smarthost)
    pals = enroll_pals(relay)
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    (held,) = relay.wait_held(1)
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    return relay, pals, held


@pytest.mark.smarthost(
    replies=["451 4.3.0 Try again later", "451 4.3.0 Try again later"], for_rcpt=TOMAS
)
def test_smarthost_451_then_250_is_retried_and_delivered_once(
    relay_factory: Callable[..., Relay], smarthost: Smarthost
) -> None:
    relay, pals, held = _one_approved_letter(relay_factory, smarthost)
    wait_for(lambda: relay.letter(held["id"])["status"] == "delivered", what="retries")
    assert smarthost.attempts == 3
    (received,) = [r for r in smarthost.received if r.to(TOMAS)]
    assert received.rcpt_tos == [pals.tomas.email]
    assert received.mail_from.startswith(f"bounce+{held['id']}-")
    assert received.message["From"].addresses[0].addr_spec == pals.maya.masked
    assert relay.log().count(f"deferred letter={held['id']}") == 2


@pytest.mark.smarthost(
    replies=["550 5.1.1 <tomas.perez@correo.example.net>: mailbox unknown"], for_rcpt=TOMAS
)
def test_smarthost_550_fails_the_letter_and_tells_moderators(
    relay_factory: Callable[..., Relay], smarthost: Smarthost
) -> None:
    relay, pals, held = _one_approved_letter(relay_factory, smarthost)
    wait_for(lambda: relay.letter(held["id"])["status"] == "failed", what="failed letter")

    def failure_notices() -> list[Received]:
        found = [
            r
            for r in smarthost.received
            if r.message["Subject"].startswith("Letter ")
            and "could not be delivered" in r.message["Subject"]
        ]
        return found if len(found) == 2 else []

    notices = wait_for(failure_notices, what="one notice per moderator of the writer's library")
    assert sorted(n.rcpt_tos[0] for n in notices) == sorted([MODERATOR_A, MODERATOR_A2])
    text = notices[0].message.get_body(("plain",)).get_content()
    assert f"Letter {held['id']}" in text and "550" in text
    assert pals.tomas.email not in text  # the smarthost's reply text is not passed on
    assert f"failed letter={held['id']}" in relay.log()
    assert pals.tomas.email not in relay.log()
    # Maya hears, kindly and in her language, that her letter did not arrive.
    (note,) = wait_for(lambda: [r for r in smarthost.received if r.to(MAYA)])
    assert note.message["Subject"] == "Your letter to Tomás did not arrive"


@pytest.mark.smarthost(replies=["451 4.3.0 busy"] * 1000, for_rcpt=TOMAS)
def test_restart_with_letters_held_and_in_the_outbox_loses_and_repeats_nothing(
    relay_factory: Callable[..., Relay], smarthost: Smarthost
) -> None:
    relay = smtp_relay(relay_factory, smarthost)
    pals = enroll_pals(relay)
    relay.start()
    for number in range(3):
        relay.send(
            pals.maya.email,
            [pals.tomas.masked],
            letter_bytes(pals.maya.email, pals.tomas.masked, subject=f"Letter {number}"),
        )
    held = relay.wait_held(3)
    relay.cli("queue", "approve", str(held[0]["id"]), "--by", MODERATOR_A)
    relay.cli("queue", "approve", str(held[1]["id"]), "--by", MODERATOR_A)
    wait_for(lambda: smarthost.attempts >= 2, what="first delivery attempts")
    relay.kill()  # kill -9: no chance to tidy up

    smarthost.replies.clear()  # the smarthost is healthy again
    relay.start()
    wait_for(lambda: relay.letter(held[1]["id"])["status"] == "delivered", what="restart")
    wait_for(lambda: relay.letter(held[0]["id"])["status"] == "delivered")
    assert [q["id"] for q in relay.queue()] == [held[2]["id"]]  # still held, not sent
    relay.stop()
    relay.start()  # a clean restart sends nothing again
    relay.cli("queue", "approve", str(held[2]["id"]), "--by", MODERATOR_A)
    wait_for(lambda: relay.letter(held[2]["id"])["status"] == "delivered")
    subjects = Counter(r.message["Subject"] for r in smarthost.received if r.to(TOMAS))
    assert subjects == {"Letter 0": 1, "Letter 1": 1, "Letter 2": 1}
    # Held-letter notices (two moderators, three letters) were not sent twice either.
    notices = Counter(
        (r.rcpt_tos[0], r.message["Subject"])
        for r in smarthost.received
        if "is waiting" in r.message["Subject"]
    )
    assert len(notices) == 6 and set(notices.values()) == {1}


def test_kill_9_right_after_250_keeps_every_accepted_letter(relay: Relay) -> None:
    pals = enroll_pals(relay)
    relay.start()
    for number in range(20):
        relay.send(
            pals.maya.email,
            [pals.tomas.masked],
            letter_bytes(pals.maya.email, pals.tomas.masked, subject=f"Letter {number}"),
        )
    relay.kill()  # some of the twenty may not have been processed into the queue yet
    relay.start()
    queue = relay.wait_held(20)
    assert sorted(q["subject"] for q in queue) == sorted(f"Letter {n}" for n in range(20))
    assert len({q["id"] for q in queue}) == 20


def test_sigterm_lets_a_transaction_in_flight_finish(relay: Relay) -> None:
    pals = enroll_pals(relay)
    relay.start()
    with relay.smtp() as client:
        client.ehlo()
        client.mail(pals.maya.email)
        client.rcpt(pals.tomas.masked)
        code, _ = client.docmd("DATA")
        assert code == 354
        assert relay.process is not None
        relay.process.send_signal(signal.SIGTERM)
        # New connections are refused while the one in flight may finish.
        wait_for(lambda: _refused(relay.port), what="listener closed")
        client.send(
            letter_bytes(pals.maya.email, pals.tomas.masked, subject="In flight") + b".\r\n"
        )
        code, text = client.getreply()
        assert f"{code} {text.decode()}" == replies.QUEUED
    assert relay.process.wait(20) == 0
    relay.process = None
    relay.start()
    (held,) = relay.wait_held(1)
    assert held["subject"] == "In flight"


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_with_an_intake_process_every_letter_is_held_and_stop_is_clean(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory()
    relay.config_path.write_text(
        relay.config_path.read_text().replace("[smtp]\n", "[smtp]\nintake_processes = 1\n", 1)
    )
    pals = enroll_pals(relay)
    relay.start()
    assert relay.process is not None
    assert len(children(relay.process.pid, "relay.intake.smtp")) == 1
    for number in range(10):
        relay.send(
            pals.maya.email,
            [pals.tomas.masked],
            letter_bytes(pals.maya.email, pals.tomas.masked, subject=f"Letter {number}"),
        )
    with pytest.raises(smtplib.SMTPRecipientsRefused):  # the intake process routes too
        relay.send(pals.leo.email, [pals.tomas.masked], b"Subject: x\r\n\r\nx\r\n")
    queue = relay.wait_held(10)
    assert sorted(q["subject"] for q in queue) == sorted(f"Letter {n}" for n in range(10))
    assert relay.stop() == 0
    relay.start()  # and again: nothing processed twice
    assert len(relay.wait_held(10)) == 10
