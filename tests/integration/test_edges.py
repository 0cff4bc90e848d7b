"""Trust at the edges: bounded input, no enumeration, the relay's own addresses.

Each test speaks real SMTP to a real relay and checks what a sender is told, what staff
receive and what stays in the spool.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from relay import replies
from relay.participants import leave
from relay.schedule.prompts import unsubscribe_token
from tests.conftest import (
    MODERATOR_A,
    MODERATOR_B,
    Pals,
    Relay,
    enroll_pals,
    letter_bytes,
    wait_for,
)

STRANGER = "someone@elsewhere.example.net"


def _rcpt(relay: Relay, sender: str, rcpt: str) -> str:
    with relay.smtp() as client:
        client.ehlo()
        client.mail(sender)
        code, text = client.rcpt(rcpt)
    return f"{code} {text.decode()}"


def _audit(relay: Relay, event: str) -> list[dict[str, object]]:
    return [e for e in relay.context().store.audit_log() if e["event"] == event]


def _spool_files(relay: Relay, queue: str = "incoming") -> list[Path]:
    return sorted((relay.data_dir / "spool" / queue).iterdir())


def _deep(sender: str, to: str, depth: int = 1000) -> bytes:
    """A message nested `depth` multipart levels deep (about 60 bytes a level)."""
    head = f"From: <{sender}>\r\nTo: {to}\r\nSubject: Deep\r\nMIME-Version: 1.0\r\n".encode()
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\r\n\r\napprove\r\n" + closing


def _notice_sender(relay: Relay, moderator: str) -> str:
    def found() -> list[EmailMessage]:
        return [m for m in relay.delivered(moderator) if m["Message-ID"].startswith("<notice-")]

    notice = wait_for(found, what="a held-letter notice")[0]
    return str(notice["From"].addresses[0].addr_spec)


# --- 1. token addresses are checked at RCPT --------------------------------------------------


def test_unknown_tokens_are_refused_at_rcpt_with_one_reply(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    valid = _notice_sender(relay, MODERATOR_A)
    assert _rcpt(relay, MODERATOR_A, valid) == replies.RECIPIENT_OK
    good_unsubscribe = (
        f"unsubscribe+{unsubscribe_token(relay.context(), pals.maya.id)}@pals.example.org"
    )
    assert _rcpt(relay, STRANGER, good_unsubscribe) == replies.RECIPIENT_OK
    for address in (
        "moderate+" + "0" * 32 + "@pals.example.org",
        f"unsubscribe+{pals.maya.id}-{'0' * 20}@pals.example.org",
    ):
        assert _rcpt(relay, MODERATOR_A, address) == replies.UNKNOWN_ADDRESS


def test_only_letters_keep_their_originals(relay: Relay, pals: Pals) -> None:
    """Control mail (here an unsubscribe) is removed once handled; a letter's original stays
    for its moderators. Nothing a stranger sends to the relay's own addresses piles up."""
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    wait_for(lambda: len(_spool_files(relay, "messages")) == 1, what="the letter held")
    address = f"unsubscribe+{unsubscribe_token(relay.context(), pals.maya.id)}@pals.example.org"
    relay.send(STRANGER, [address], letter_bytes(STRANGER, address, body="stop\n" * 2000))
    wait_for(lambda: _audit(relay, "prompts-paused"), what="the unsubscribe handled")
    wait_for(lambda: _spool_files(relay) == [], what="the incoming folder emptied")
    assert len(_spool_files(relay, "messages")) == 1


# --- 2. control mail is bounded far below letters --------------------------------------------


def test_control_mail_beyond_its_limit_is_refused(relay: Relay, pals: Pals) -> None:
    relay.start()
    address = f"unsubscribe+{unsubscribe_token(relay.context(), pals.maya.id)}@pals.example.org"
    big = letter_bytes(STRANGER, address, body=("y" * 76 + "\n") * 30_000)  # 2.3 MB
    with relay.smtp() as client:
        client.ehlo()
        client.mail(STRANGER)
        client.rcpt(address)
        code, text = client.data(big)
    assert f"{code} {text.decode()}" == replies.TOO_BIG
    # The same size is a fine letter.
    relay.send(pals.maya.email, [pals.tomas.masked], big.replace(address.encode(), b"x@y"))
    relay.wait_held(1)


# --- 3. DATA streams to disk -----------------------------------------------------------------


def test_a_large_letter_arrives_byte_for_byte(relay_factory: Callable[..., Relay]) -> None:
    relay = relay_factory()
    relay.config_path.write_text(
        relay.config_path.read_text().replace(
            "max_message_bytes = 10485760", "max_message_bytes = 26214400"
        )
    )
    pals = enroll_pals(relay)
    relay.start()
    head = (
        letter_bytes(pals.maya.email, pals.tomas.masked)
        .replace(b"\n", b"\r\n")
        .replace(b"\r\r\n", b"\r\n")
    )
    body = b"".join(
        b".dot %07d and some text to fill the line up to width...\r\n" % i for i in range(400_000)
    )
    raw = head + body
    assert len(raw) > 24_000_000
    relay.send(pals.maya.email, [pals.tomas.masked], raw)  # smtplib dot-stuffs every line
    relay.wait_held(1)
    (kept,) = wait_for(lambda: _spool_files(relay, "messages"), what="the original kept")
    assert kept.read_bytes() == raw
    assert _spool_files(relay) == []


def test_an_aborted_data_leaves_nothing_in_the_spool(relay: Relay, pals: Pals) -> None:
    relay.start()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        for line in (
            b"HELO test",
            f"MAIL FROM:<{pals.maya.email}>".encode(),
            f"RCPT TO:<{pals.tomas.masked}>".encode(),
            b"DATA",
        ):
            raw.sendall(line + b"\r\n")
            reader.readline()
        raw.sendall(b"Subject: half\r\n\r\n" + b"z" * 70 + b"\r\n" * 1000)
        wait_for(
            lambda: any(p.name.endswith(".tmp") for p in _spool_files(relay)), what="a temp file"
        )
        raw.shutdown(socket.SHUT_RDWR)  # the client goes away in the middle of DATA
    wait_for(lambda: _spool_files(relay) == [], what="the partial message gone")
    assert relay.queue() == []


# --- 4. hostile structure --------------------------------------------------------------------


def test_a_thousand_levels_deep_letter_is_held_with_a_note(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send(pals.maya.email, [pals.tomas.masked], _deep(pals.maya.email, pals.tomas.masked))
    (held,) = relay.wait_held(1)
    assert any("nested more than" in n for n in held["notes"]), held["notes"]
    wait_for(lambda: _spool_files(relay) == [], what="the spool item processed")


def test_deep_control_mail_is_dropped_and_audited(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    token_address = _notice_sender(relay, MODERATOR_A)
    relay.send(MODERATOR_A, [token_address], _deep(MODERATOR_A, token_address))
    (dropped,) = wait_for(lambda: _audit(relay, "control-dropped"), what="the drop audited")
    assert dropped["reason"] == "too-complex"
    wait_for(lambda: _spool_files(relay) == [], what="the spool item gone")
    assert relay.queue()[0]["status"] == "held"


def test_a_message_that_keeps_failing_is_set_aside_and_coordinators_told(
    relay: Relay, pals: Pals
) -> None:
    incoming = relay.data_dir / "spool" / "incoming"
    (incoming / "0-corrupt.eml").write_bytes(b"Subject: x\r\n\r\ny\r\n")
    # A marker no version of the relay could have written: processing it fails every time.
    (incoming / "0-corrupt.json").write_text(
        '{"rcpt_tos": ["x@pals.example.org"], "routes": [[1]]}'
    )
    for attempt in (1, 2):
        relay.start()
        wait_for(
            lambda n=attempt: relay.log().count("processing failed spool=0-corrupt") == n,
            what=f"failed attempt {attempt}",
        )
        relay.stop()
    relay.start()
    for coordinator in (MODERATOR_A, MODERATOR_B):
        wait_for(lambda c=coordinator: relay.delivered(c), what=f"{coordinator} told")
    assert "ERROR set aside spool=0-corrupt attempts=3" in relay.log()
    assert _audit(relay, "set-aside")[0]["spool"] == "0-corrupt"
    assert _spool_files(relay) == []
    assert [p.name for p in _spool_files(relay, "unprocessed")] == [
        "0-corrupt.eml",
        "0-corrupt.json",
    ]


# --- 5. an over-long command line ------------------------------------------------------------


def test_a_two_megabyte_command_line_is_answered_and_the_connection_closed(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(b"HELO " + b"x" * 2_000_000 + b"\r\n")
        assert reader.readline().decode().rstrip("\r\n") == replies.LINE_TOO_LONG
        assert reader.readline() == b""  # closed


# --- 6. no enumeration -----------------------------------------------------------------------


def test_refusals_do_not_tell_who_is_enrolled(relay: Relay, pals: Pals) -> None:
    relay.start()
    made_up = "brave-otter-1234@pals.example.org"
    answers = {
        _rcpt(relay, STRANGER, pals.tomas.masked),  # real pal, stranger
        _rcpt(relay, STRANGER, made_up),  # no such pal
        _rcpt(relay, pals.leo.email, pals.tomas.masked),  # enrolled, not paired
        _rcpt(relay, pals.maya.email, made_up),  # enrolled, no such pal
    }
    assert answers == {replies.UNKNOWN_ADDRESS}
    assert pals.tomas.email not in relay.log() and STRANGER not in relay.log()
    reasons = [e["reason"] for e in _audit(relay, "refused-recipient")]
    unknown = "unknown-recipient"
    assert sorted(reasons) == ["not-paired", "sender-not-enrolled", unknown, unknown]


def test_a_pal_who_left_is_explained_only_to_their_paired_writer(relay: Relay, pals: Pals) -> None:
    relay.start()
    leave(relay.context(), pals.tomas)
    assert _rcpt(relay, STRANGER, pals.tomas.masked) == replies.UNKNOWN_ADDRESS
    assert _rcpt(relay, pals.maya.email, pals.tomas.masked) == replies.PARTICIPANT_PAUSED


# --- 7. refused recipients are rate limited per client ----------------------------------------


def test_a_client_refused_too_often_is_slowed_then_disconnected(
    relay_factory: Callable[..., Relay],
) -> None:
    # This client is not a front server (those are never limited: they carry everyone's mail).
    relay = relay_factory(authentication="front_servers = []")
    relay.config_path.write_text(
        relay.config_path.read_text().replace(
            "shutdown_grace_seconds = 10",
            "shutdown_grace_seconds = 10\nmax_refused_recipients = 3\nrefused_window_seconds = 600",
        )
    )
    pals = enroll_pals(relay)
    relay.start()
    answers = []
    with relay.smtp() as client:
        client.ehlo()
        client.mail(STRANGER)
        for n in range(40):
            try:
                code, text = client.rcpt(f"made-up-{n}@pals.example.org")
            except smtplib.SMTPServerDisconnected:
                break
            answers.append(f"{code} {text.decode()}")
    assert answers[:3] == [replies.UNKNOWN_ADDRESS] * 3
    assert answers[3] == replies.RATE_LIMITED
    assert answers[-1] == replies.TOO_MANY_REFUSALS
    assert len(answers) < 40
    # A letter from the same client is turned away for now too.
    assert _rcpt(relay, pals.maya.email, pals.tomas.masked) == replies.RATE_LIMITED
    assert relay.log().count("client limited peer=127.0.0.1") == 1


def test_a_front_server_is_never_limited(relay_factory: Callable[..., Relay]) -> None:
    relay = relay_factory()  # front_servers = ["127.0.0.1"]
    relay.config_path.write_text(
        relay.config_path.read_text().replace(
            "shutdown_grace_seconds = 10",
            "shutdown_grace_seconds = 10\nmax_refused_recipients = 3\nrefused_window_seconds = 600",
        )
    )
    relay.start()
    with relay.smtp() as client:
        client.ehlo()
        client.mail(STRANGER)
        answers = [client.rcpt(f"made-up-{n}@pals.example.org")[0] for n in range(8)]
    assert answers == [550] * 8
    assert "client limited" not in relay.log()


# --- 8. the relay's own addresses ------------------------------------------------------------


def test_postmaster_and_abuse_reach_every_coordinator(relay: Relay, pals: Pals) -> None:
    relay.start()
    for local in ("postmaster", "abuse"):
        report = EmailMessage()
        report["From"] = STRANGER
        report["To"] = f"{local}@pals.example.org"
        report["Subject"] = f"Report to {local}"
        report.set_content("Your server sent us something odd.")
        relay.send(STRANGER, [f"{local}@pals.example.org"], report.as_bytes())
    for coordinator in (MODERATOR_A, MODERATOR_B):
        forwarded = wait_for(
            lambda c=coordinator: (
                [m for m in relay.delivered(c) if "Report to" in str(m["Subject"])]
                if len(relay.delivered(c)) >= 2
                else None
            ),
            what=f"forwards to {coordinator}",
        )
        assert len(forwarded) == 2
        for message in forwarded:
            (attached,) = [p for p in message.walk() if p.get_content_type() == "message/rfc822"]
            assert "Your server sent us something odd." in attached.as_string()
    assert relay.delivered(STRANGER) == []  # nothing goes back to the reporter


def test_program_address_answers_people_once_a_day_and_never_machines(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    question = letter_bytes(STRANGER, "program@pals.example.org", subject="What is this?")
    relay.send(STRANGER, ["program@pals.example.org"], question)
    relay.send(STRANGER, ["program@pals.example.org"], question)
    automatic = letter_bytes(
        "robot@elsewhere.example.net",
        "program@pals.example.org",
        headers={"Auto-Submitted": "auto-replied"},
    )
    relay.send("robot@elsewhere.example.net", ["program@pals.example.org"], automatic)
    relay.send("", ["program@pals.example.org"], question)
    wait_for(lambda: len(_audit(relay, "program-mail")) == 4, what="four messages seen")
    answers = wait_for(lambda: relay.delivered(STRANGER), what="the help text")
    assert len(answers) == 1
    assert answers[0]["Auto-Submitted"] == "auto-replied"
    assert relay.delivered("robot@elsewhere.example.net") == []


def test_bounces_address_is_accepted_and_audited(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send("", ["bounces@pals.example.org"], b"Subject: Undelivered\r\n\r\nsorry\r\n")
    # Not a delivery report: read by bounces.handle_notice_bounce, noted, never answered.
    wait_for(lambda: _audit(relay, "notice-bounce-ignored"), what="the bounce audited")
    wait_for(lambda: _spool_files(relay) == [])
