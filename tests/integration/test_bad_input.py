"""Bad input gets a clear answer and nothing is lost; the server keeps serving."""

from __future__ import annotations

import smtplib

import pytest

from relay import replies
from tests.conftest import Pals, Relay, letter_bytes, wait_for

BOUNDARY_BROKEN = (
    b"From: Maya <{sender}>\r\nTo: {to}\r\nSubject: Broken parts\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n'
    b"--never-closed\r\nContent-Type: text/plain\r\n\r\nHello through broken MIME\r\n"
    b"--wrong-boundary--\r\n"
)
NO_FROM = b"To: {to}\r\nSubject: No from line\r\n\r\nI forgot who I am\r\n"
GARBLED_FROM = b"From: <<<@@@>>>\r\nTo: {to}\r\nSubject: Garbled from\r\n\r\nWho am I\r\n"
EIGHT_BIT = "From: Maya <{sender}>\r\nTo: {to}\r\nSubject: Olá ñandú über\r\n\r\nbody\r\n"
NUL_BYTE = b"From: Maya <{sender}>\r\nTo: {to}\r\nSubject: Null\r\n\r\nbefore\x00after\r\n"
NO_TEXT = (
    b"From: Maya <{sender}>\r\nTo: {to}\r\nSubject: Only a picture\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwQF\r\n"
)


def _fill(template: bytes | str, pals: Pals) -> bytes:
    raw = template if isinstance(template, bytes) else template.encode("utf-8")
    return raw.replace(b"{sender}", pals.maya.email.encode()).replace(
        b"{to}", pals.tomas.masked.encode()
    )


@pytest.mark.parametrize(
    ("template", "subject", "note"),
    [
        (BOUNDARY_BROKEN, "Broken parts", "not well-formed MIME"),
        (NO_FROM, "No from line", "no From line"),
        (GARBLED_FROM, "Garbled from", "From line"),
        (EIGHT_BIT, "Olá ñandú über", None),
        (NUL_BYTE, "Null", "NUL bytes"),
        (NO_TEXT, "Only a picture", "no text"),
    ],
)
def test_odd_messages_are_held_with_a_note(
    relay: Relay, pals: Pals, template: bytes | str, subject: str, note: str | None
) -> None:
    relay.start()
    relay.send(pals.maya.email, [pals.tomas.masked], _fill(template, pals))
    (held,) = relay.wait_held(1)
    assert held["subject"] == subject
    if note is not None:
        assert any(note in n for n in held["notes"]), held["notes"]
    # Held letters can be looked at and decided like any other.
    shown = relay.letter(held["id"])
    assert shown["id"] == held["id"]
    # ... and the server is still there for the next letter.
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    relay.wait_held(2)


def test_forty_megabytes_is_refused_with_552_and_nothing_is_kept(relay: Relay, pals: Pals) -> None:
    relay.start()
    big = letter_bytes(pals.maya.email, pals.tomas.masked, body=("x" * 76 + "\n") * 540_000)
    assert len(big) > 40_000_000
    with relay.smtp() as client:
        client.ehlo()
        client.mail(pals.maya.email)  # no SIZE= given, so the limit is found during DATA
        client.rcpt(pals.tomas.masked)
        code, text = client.data(big)
    assert f"{code} {text.decode()}" == replies.TOO_BIG
    spool = relay.data_dir / "spool"
    assert not any((spool / "incoming").iterdir())
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    relay.wait_held(1)


def test_size_declared_in_mail_from_is_refused_early(relay: Relay, pals: Pals) -> None:
    relay.start()
    with relay.smtp() as client:
        client.ehlo()
        code, text = client.docmd("MAIL", f"FROM:<{pals.maya.email}> SIZE=40000000")
    assert f"{code} {text.decode()}" == replies.TOO_BIG


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("<not an address@@>", replies.MALFORMED_ADDRESS),
        ("<two..dots@family-mail.example.net>", replies.BAD_SENDER_SYNTAX),
    ],
)
def test_invalid_sender_syntax_is_answered_553(
    relay: Relay, pals: Pals, address: str, expected: str
) -> None:
    relay.start()
    with relay.smtp() as client:
        client.ehlo()
        code, text = client.docmd("MAIL", f"FROM:{address}")
    assert f"{code} {text.decode()}" == expected


def test_smtputf8_letter_is_accepted(relay: Relay, pals: Pals) -> None:
    relay.start()
    raw = _fill(EIGHT_BIT, pals)
    with relay.smtp() as client:
        client.ehlo()
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
        client.sendmail(
            pals.maya.email, [pals.tomas.masked], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
    (held,) = relay.wait_held(1)
    assert held["subject"] == "Olá ñandú über"


def test_garbage_commands_get_answers_not_a_crash(relay: Relay, pals: Pals) -> None:
    relay.start()
    with relay.smtp() as client:
        for line in ("HELO", "MAIL FROM:", "RCPT TO:<x>", "DATA", "\x00\x01\x02"):
            code, _ = client.docmd(line)
            assert 500 <= code < 600
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        relay.send("", [pals.tomas.masked], b"Subject: bounce?\r\n\r\nx\r\n")
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    wait_for(lambda: relay.queue())
    assert relay.process is not None and relay.process.poll() is None
