"""Participants and guardians pause, resume, stop, export and erase by email, in their own
language.

One relay and one SMTP sink for the whole story (the CI budget): what each person receives
at the sink, what the records and the audit log say afterwards.
"""

from __future__ import annotations

import io
import itertools
import json
import smtplib
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from relay import replies
from relay.participants import enroll, pair, pause, resume
from tests.conftest import (
    FRONT_AUTHSERV_ID,
    MAYA,
    MODERATOR_A,
    MODERATOR_A2,
    MODERATOR_B,
    TOMAS,
    Relay,
    Smarthost,
    wait_for,
)

DOMAIN = "pals.example.org"
HELP = f"help@{DOMAIN}"
PROGRAM = f"program@{DOMAIN}"
GUARDIAN = "parent.smith@family-mail.example.net"
LEO = "leo.smith@family-mail.example.net"
FORGER = "someone@elsewhere.example.net"
NINA = "nina.w@kids-mail.example.net"
_NUMBERS = itertools.count(1)


def _command(
    relay: Relay,
    sender: str,
    body: str,
    *,
    to: str = HELP,
    subject: str = "",
    verified: bool = True,
    envelope: str | None = None,
    headers: dict[str, str] | None = None,
    also: tuple[str, ...] = (),
) -> str:
    """A one-line message as a person writes it; returns its Message-ID."""
    message = EmailMessage(policy=SMTP)
    domain = sender.rpartition("@")[2]
    if verified:
        message["Authentication-Results"] = f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from={domain}"
    message["From"] = f"Someone <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<command-{next(_NUMBERS)}@{domain}>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    relay.send(envelope if envelope is not None else sender, [to, *also], message.as_bytes())
    return str(message["Message-ID"])


def _to(sink: Smarthost, address: str) -> list[EmailMessage]:
    return [r.message for r in sink.received if r.to(address)]


def _answer(sink: Smarthost, address: str, count: int) -> EmailMessage:
    """The `count`-th message to `address`, waited for."""
    found = wait_for(lambda: len(_to(sink, address)) >= count, what=f"{count} to {address}")
    assert found
    return _to(sink, address)[count - 1]


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def _status(relay: Relay, participant_id: str) -> str:
    found = relay.context().store.participant(participant_id)
    assert found is not None
    return found.status


def test_commands_by_email_from_participants_and_guardians(
    relay_factory: Callable[..., Relay], smarthost: Smarthost
) -> None:
    relay = relay_factory(
        transport="smtp",
        smarthost=f"127.0.0.1:{smarthost.port}",
        extra_sections="[commands]\nanswers_per_day = 3\n",
    )
    ctx = relay.context()
    maya = enroll(ctx, "riverside", "Maya", MAYA, guardian=GUARDIAN)
    leo = enroll(ctx, "riverside", "Leo", LEO, guardian=GUARDIAN)
    tomas = enroll(ctx, "valparaiso", "Tomás", TOMAS)
    nina = enroll(ctx, "riverside", "Nina", NINA)
    pair(ctx, maya, tomas)
    pair(ctx, nina, tomas)
    relay.start()

    # Someone not enrolled gets the program's general help, as from program@; no command.
    _command(relay, FORGER, "stop")
    assert "About Test Pen Pals" in _answer(smarthost, FORGER, 1)["Subject"]

    # A verified participant pauses in Spanish: paused at once, answered in Spanish, threaded.
    asked = _command(relay, TOMAS, "¡Pausa!", also=(PROGRAM,))  # one command, read once
    answer = _answer(smarthost, TOMAS, 1)
    assert answer["Subject"] == "Test Pen Pals: cartas de Tomás en pausa"
    assert answer["In-Reply-To"] == asked
    assert answer["From"].addresses[0].addr_spec == PROGRAM
    assert answer["Auto-Submitted"] == "auto-replied"
    assert "reanudar" in _text(answer)
    assert next(r for r in smarthost.received if r.to(TOMAS)).mail_from in ("", "<>")
    found = relay.context().store.participant(tomas.id)
    assert found is not None and found.status == "paused" and found.pause_reason == "asked"

    # A reply to that answer (to program@), the word on top of the quoted history, resumes.
    quoted = "\n".join("> " + line for line in _text(answer).splitlines())
    _command(
        relay,
        TOMAS,
        f"Reanudar\n\nEl lun, 30 nov 2026, Test Pen Pals escribió:\n{quoted}",
        to=PROGRAM,
        subject=f"Re: {answer['Subject']}",
    )
    assert "vuelven a estar activas" in _answer(smarthost, TOMAS, 2)["Subject"]
    assert _status(relay, tomas.id) == "active"

    # A pause by staff is theirs to lift: "reanudar" is answered, nothing changes.
    pause(relay.context(), tomas, by=MODERATOR_B, via="web")
    _command(relay, TOMAS, "reanudar")
    assert "no a tu pedido" in _text(_answer(smarthost, TOMAS, 3))
    assert _status(relay, tomas.id) == "paused"

    # Over the day's answers the command still acts, silently.
    resume(relay.context(), tomas, by=MODERATOR_B, via="web")
    _command(relay, TOMAS, "pausar")
    wait_for(lambda: "command not answered (daily limit)" in relay.log(), what="limit")
    assert _status(relay, tomas.id) == "paused"

    # An out-of-office reply from a guardian is never a command and never answered.
    _command(relay, GUARDIAN, "stop Leo", headers={"Auto-Submitted": "auto-replied"})
    wait_for(
        lambda: any(
            e["event"] == "program-mail" and e["reason"] == "automatic"
            for e in relay.context().store.audit_log()
        ),
        what="the automatic message seen",
    )
    assert _status(relay, leo.id) == "active"

    # A guardian of two: without a first name they are asked which; nothing changes.
    _command(relay, GUARDIAN, "STOP")
    which = _answer(smarthost, GUARDIAN, 1)
    assert which["Subject"] == "Test Pen Pals: which pen pal?"
    assert "- Maya\n- Leo" in _text(which)
    assert _status(relay, maya.id) == _status(relay, leo.id) == "active"

    # "Stop Maya.": she leaves; both libraries' moderators are told, the pal is not.
    _command(relay, GUARDIAN, "Stop Maya.")
    assert _answer(smarthost, GUARDIAN, 2)["Subject"] == "Test Pen Pals: Maya has left the program"
    assert _status(relay, maya.id) == "left" and _status(relay, leo.id) == "active"
    told = _answer(smarthost, MODERATOR_B, 1)
    assert told["Subject"] == (
        "Tomás necesita un nuevo amigo por correspondencia: Maya dejó el programa"
    )
    assert maya.masked in _text(told) and tomas.masked in _text(told)
    for own in (MODERATOR_A, MODERATOR_A2):
        assert _answer(smarthost, own, 1)["Subject"] == "Maya left the program by email"
    everything = b"".join(r.data for r in smarthost.received if not r.to(GUARDIAN)).lower()
    assert MAYA.encode() not in everything and GUARDIAN.encode() not in everything
    assert len(_to(smarthost, TOMAS)) == 3  # the pal hears nothing of it
    assert _to(smarthost, MAYA) == []
    # Stop after stop: a kind answer, nothing more.
    _command(relay, GUARDIAN, "stop maya")
    assert "already left" in _text(_answer(smarthost, GUARDIAN, 3))
    assert len(_to(smarthost, MODERATOR_B)) == 1

    # Unverified, and forged (another envelope): the enrolled address is asked to confirm;
    # the forger gets nothing; nothing changes until the confirmation comes back.
    _command(relay, LEO, "stop", verified=False)
    _command(relay, LEO, "stop", verified=False, envelope=FORGER)
    confirm = _answer(smarthost, LEO, 1)
    _answer(smarthost, LEO, 2)
    assert confirm["Subject"] == 'Test Pen Pals: please confirm "stop" for Leo'
    token_address = confirm["From"].addresses[0].addr_spec
    assert token_address.startswith("confirm+")
    assert len(_to(smarthost, FORGER)) == 1  # only the general help of before
    assert _status(relay, leo.id) == "active"
    # An auto-reply to the request confirms nothing.
    _command(relay, LEO, "I am away", to=token_address, verified=False,
             headers={"Auto-Submitted": "auto-replied"})  # fmt: skip
    wait_for(
        lambda: any(
            e["event"] == "command-not-confirmed" for e in relay.context().store.audit_log()
        ),
        what="the auto-reply refused",
    )
    assert _status(relay, leo.id) == "active"
    _command(relay, LEO, "yes", to=token_address, subject=f"Re: {confirm['Subject']}",
             verified=False)  # fmt: skip
    assert "Leo has left" in _text(_answer(smarthost, LEO, 3))
    assert _status(relay, leo.id) == "left"
    # Single use: the confirmation address takes no more mail.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _command(relay, LEO, "yes", to=token_address, verified=False)
    code, text = refused.value.recipients[token_address]
    assert f"{code} {text.decode()}" == replies.UNKNOWN_ADDRESS

    # The audit says who asked what, with ids only.
    log = relay.context().store.audit_log()
    commands = [e for e in log if e["event"] == "command"]
    outcomes = [(e.get("participant"), e["outcome"]) for e in commands]
    # The first, sent to help@ and program@ at once, was read once; the other over the limit.
    assert outcomes.count((tomas.id, "paused")) == 2
    assert (tomas.id, "already-paused") not in outcomes
    assert set(outcomes) >= {
        (tomas.id, "paused"),
        (tomas.id, "resumed"),
        (tomas.id, "paused-by-library"),
        (maya.id, "left"),
        (maya.id, "already-left"),
        (leo.id, "confirmation-asked"),
        (leo.id, "left"),
    }
    assert next(e for e in log if e["event"] == "left" and e["participant"] == maya.id)["via"] == (
        "email"
    )
    for address in (MAYA, LEO, GUARDIAN, TOMAS):
        assert address not in str(commands) and address not in relay.log()

    # "My data": a verified participant gets everything held about her as a zip, at once.
    _command(relay, NINA, "My data")
    exported = _answer(smarthost, NINA, 1)
    assert exported["Subject"] == "Test Pen Pals: what we keep about Nina"
    (zipped,) = [part for part in exported.iter_attachments()]
    assert zipped.get_content_type() == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.get_content())) as archive:
        assert "README.txt" in archive.namelist()
        record = json.loads(archive.read("participant.json"))
    assert record["email"] == NINA and TOMAS not in json.dumps(record)

    # "Erase", even from a verified sender, waits for a confirmation (it cannot be undone).
    _command(relay, NINA, "erase")
    request = _answer(smarthost, NINA, 2)
    assert request["Subject"] == 'Test Pen Pals: please confirm "erase" for Nina'
    assert "cannot be undone" in _text(request)
    assert relay.context().store.participant(nina.id) is not None
    _command(relay, NINA, "yes", to=request["From"].addresses[0].addr_spec, verified=False)
    wait_for(lambda: relay.context().store.participant(nina.id) is None, what="Nina erased")
    assert relay.context().store.by_email(NINA) == []
    # Both libraries are told, by masked address only; Nina gets nothing more.
    erased = _answer(smarthost, MODERATOR_B, 2)
    assert erased["Subject"] == "Tomás necesita un nuevo amigo por correspondencia"
    assert nina.masked in _text(erased) and "Nina" not in erased.as_string()
    own = _answer(smarthost, MODERATOR_A, 3)
    assert own["Subject"] == "A participant was erased at their request"
    assert nina.id in _text(own) and "Nina" not in own.as_string()
    assert len(_to(smarthost, NINA)) == 2
    assert any(
        e["event"] == "erased" and e["via"] == "email" for e in relay.context().store.audit_log()
    )
