"""Data rights through a running relay: a participant's data exported as a zip, then the
participant erased beside `serve`, after which no file of the data folder, decoded, says
anything about them, and the program goes on for everyone else."""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import gzip
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest

from relay import cli, letters, participants
from relay.context import Context
from relay.errors import NotFound
from tests.conftest import FRONT_AUTHSERV_ID, MODERATOR_A, MODERATOR_B, Relay, letter_bytes
from tests.support.waiting import wait_for

ZINNIA = "zinnia.writes@family-mail.example.net"
GUARDIAN = "parent.of.z@family-mail.example.net"
TOMAS = "tomas.perez@correo.example.net"
WRITTEN = "I fold platypus origami and fly marmalade kites on Sundays."
RECEIVED = "Dear Zinnia, my hamster Bartholomew says hola to your platypus."
HELD = "Secret plan: a velociraptor costume for the library parade."
# Her address, her guardian's, her first name, the surname learned from her mail, and
# words of letters she wrote, received, had rejected and has waiting.
NEEDLES = [ZINNIA, GUARDIAN, "zinnia", "quillfeather", "marmalade", "bartholomew", "velociraptor"]


def _letter(sender: str, to: str, subject: str, body: str, display: str) -> bytes:
    message = EmailMessage()
    message["Authentication-Results"] = (
        f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from={sender.rpartition('@')[2]}"
    )
    message["From"] = f'"{display}" <{sender}>'
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


def _held(ctx: Context, subject: str) -> int:
    found = wait_for(lambda: [x for x in ctx.store.queue() if x.subject == subject], 15, subject)
    return found[0].id


# --- reading every file as a person could: decoded however it is stored -------------------


def readings(data: bytes, depth: int = 0) -> Iterator[str]:
    """Every text a file's bytes can be read as: raw, gzip, zip members, JSON (its \\u
    escapes undone, long strings tried as base64), and MIME (headers' encoded words, each
    part's base64 or quoted-printable body)."""
    yield data.decode("utf-8", "replace")
    if depth > 4:
        return
    if data[:2] == b"\x1f\x8b":
        yield from readings(gzip.decompress(data), depth + 1)
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                yield name
                yield from readings(archive.read(name), depth + 1)
    for value in _json_values(data):
        yield json.dumps(value, ensure_ascii=False)
        for text in _strings(value):
            decoded = _base64(text)
            if decoded is not None:
                yield from readings(decoded, depth + 1)
    if b":" in data[:200]:
        yield from _mime(data, depth)


def _base64(text: str) -> bytes | None:
    """A long JSON string that is base64 (a picture, a file) decoded; None otherwise."""
    if len(text) < 16:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _json_values(data: bytes) -> list[Any]:
    try:
        return [json.loads(data)]
    except ValueError:
        pass
    values = []
    for line in data.splitlines():
        try:
            values.append(json.loads(line))
        except ValueError:
            return []
    return values


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _mime(data: bytes, depth: int) -> Iterator[str]:
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    for part in message.walk():
        for name, value in part.items():
            try:
                yield f"{name}: {make_header(decode_header(str(value)))}"
            except (UnicodeError, LookupError, binascii.Error):
                yield f"{name}: {value}"
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            yield payload.decode(part.get_content_charset() or "utf-8", "replace")
            yield from readings(payload, depth + 1)


def found_in_data_folder(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        texts = [t.lower() for t in readings(path.read_bytes())]
        hits += [f"{needle!r} in {path}" for needle in needles if any(needle in t for t in texts)]
    return hits


# --- the test ---------------------------------------------------------------------------------


def test_export_then_erase_leaves_nothing_about_the_participant(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory()
    # Decisions and commands are run here as the CLI runs them, without a process for each:
    # beside `serve`, in a process of their own all the same.
    ctx = relay.context()
    zinnia = participants.enroll(
        ctx, "riverside", "Zinnia", ZINNIA, guardian=GUARDIAN, language="fr"
    )
    tomas = relay.enroll("valparaiso", "Tomás", TOMAS)
    leo = relay.enroll("riverside", "Leo", "leo.jones@family-mail.example.net")
    sofia = relay.enroll("valparaiso", "Sofía", "sofia.rios@correo.example.net")
    relay.pair(zinnia, tomas)
    relay.pair(leo, sofia)
    relay.start()

    # Zinnia writes (her mail says her surname), Tomás answers, one is rejected, one waits.
    display = "Zinnia Quillfeather"
    relay.send(ZINNIA, [tomas.masked], _letter(ZINNIA, tomas.masked, "Kites", WRITTEN, display))
    letters.approve(ctx, _held(ctx, "Kites"), MODERATOR_A)
    relay.send(TOMAS, [zinnia.masked], _letter(TOMAS, zinnia.masked, "Hamster", RECEIVED, "Tomás"))
    letters.approve(ctx, _held(ctx, "Hamster"), MODERATOR_B)
    street = "I live on Quillfeather Lane 12."
    relay.send(ZINNIA, [tomas.masked], _letter(ZINNIA, tomas.masked, "Street", street, display))
    reason = "Please keep Quillfeather Lane out of letters, Zinnia."
    letters.reject(ctx, _held(ctx, "Street"), MODERATOR_A, reason)
    relay.send(ZINNIA, [tomas.masked], _letter(ZINNIA, tomas.masked, "Parade", HELD, display))
    _held(ctx, "Parade")
    wait_for(lambda: len(relay.delivered(GUARDIAN)) == 2, 15, "both copies for her guardian")
    wait_for(lambda: len(relay.delivered(ZINNIA)) >= 2, 15, "Tomás's letter and a note to her")
    assert relay.delivered(TOMAS)

    # The export: a zip in her language, her letters between masked addresses only.
    out = relay.root / "zinnia.zip"
    command = ["--config", str(relay.config_path), "participants"]
    assert (
        cli.main([*command, "export", zinnia.masked, "--output", str(out), "--by", MODERATOR_A])
        == 0
    )
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        readme = archive.read("README.txt").decode()
        record = json.loads(archive.read("participant.json"))
        listed = json.loads(archive.read("letters.json"))
        audit = json.loads(archive.read("audit.json"))
        written = _parsed(archive.read("letters/written/001.eml"))
        received = _parsed(archive.read("letters/received/001.eml"))
    assert "les données conservées sur Zinnia" in readme
    assert record["email"] == ZINNIA and record["guardian"] == GUARDIAN
    assert display in record["learned_names"]
    assert record["pals"] == [{"name": "Tomás", "masked": tomas.masked}]
    assert sorted((x["direction"], x["status"]) for x in listed) == [
        ("received", "delivered"),
        ("written", "delivered"),
        ("written", "held"),
        ("written", "rejected"),
    ]
    assert {"letters/written/003.eml", "letters/received/001.eml"} <= names
    assert {e["event"] for e in audit} >= {"enrolled", "paired", "held", "approved", "rejected"}
    assert written["To"].addresses[0].addr_spec == tomas.masked
    assert written["From"].addresses[0].addr_spec == zinnia.masked
    assert "platypus origami" in _text(written)
    assert "Bartholomew" in _text(received)
    assert all(TOMAS not in text.lower() for text in readings(out.read_bytes()))

    # Erasing, with the relay running: before, the search finds each of her details.
    before = found_in_data_folder(relay.data_dir, NEEDLES)
    assert {hit.split(" in ")[0] for hit in before} == {repr(n) for n in NEEDLES}
    assert cli.main([*command, "erase", zinnia.id, "--yes", "--by", MODERATOR_A]) == 0
    assert found_in_data_folder(relay.data_dir, NEEDLES) == []

    # The audit log keeps one line of the erasure and the events without their words.
    entries = ctx.store.audit_log()
    (erased,) = [e for e in entries if e["event"] == "erased"]
    assert erased == {
        "at": erased["at"],
        "event": "erased",
        "participant": zinnia.id,
        "library": "riverside",
        "via": "cli",
        "by": MODERATOR_A,
        "letters": 4,
    }
    (rejected,) = [e for e in entries if e["event"] == "rejected"]
    assert set(rejected) == {"at", "event", "letter", "by", "via"}

    # Tomás is still enrolled, without her; the relay keeps delivering between other pals.
    assert [p.id for p in ctx.store.participants()] == [tomas.id, leo.id, sofia.id]
    assert ctx.store.participants()[0].pals == ()
    with pytest.raises(NotFound):
        participants.find(ctx, ZINNIA)
    relay.send(leo.email, [sofia.masked], letter_bytes(leo.email, sofia.masked, subject="After"))
    letters.approve(ctx, _held(ctx, "After"), MODERATOR_A)
    wait_for(lambda: relay.delivered(sofia.email), 15, "Sofía's letter")
    assert "Traceback" not in relay.log() and " ERROR " not in relay.log()


def _parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())
