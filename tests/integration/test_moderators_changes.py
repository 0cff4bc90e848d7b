"""Moderators change a held letter before it goes: a file out, the flagged details out, the
text edited; and a letter to a pal who is away is not sent."""

from __future__ import annotations

import email.policy
import json
import os
import signal
import subprocess
import sys
from email.message import EmailMessage

from relay import faults, participants
from relay.store.records import Letter
from tests.conftest import FRONT_AUTHSERV_ID, MODERATOR_A, MODERATOR_B, Pals, Relay
from tests.support.letters import html_letter
from tests.support.waiting import wait_for


def _held(relay: Relay, pals: Pals, raw: bytes, *, from_tomas: bool = False) -> int:
    sender, to = (pals.tomas, pals.maya) if from_tomas else (pals.maya, pals.tomas)
    relay.send(sender.email, [to.masked], raw)
    store = relay.context().store
    held: list[Letter] = wait_for(lambda: store.queue(), 15, "the letter held")
    return held[0].id


def _status(relay: Relay, letter_id: int) -> str:
    letter = relay.context().store.letter(letter_id)
    assert letter is not None
    return letter.status


def _audit(relay: Relay, event: str, letter_id: int) -> list[dict[str, object]]:
    return [
        e
        for e in relay.context().store.audit_log()
        if e["event"] == event and e.get("letter") == letter_id
    ]


def _html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_removed_picture_is_not_delivered_and_leaves_no_picture_frame(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    raw = html_letter(
        pals.maya.email,
        pals.tomas.masked,
        "My cat and my house",
        '<p>My cat <img src="cid:pic-0@mail.example.net"> and my house '
        '<img src="cid:pic-1@mail.example.net"></p>',
        pictures=("orange", "blue"),
    )
    letter_id = _held(relay, pals, raw)

    wrong = relay.cli("queue", "remove-file", str(letter_id), "7", "--by", MODERATOR_A, check=False)
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("penpal-relay: FILE: ") and wrong.stderr.count("\n") == 1
    assert "Traceback" not in wrong.stderr

    done = relay.cli("queue", "remove-file", str(letter_id), "1", "--by", MODERATOR_A)
    removed = done.stdout.split()[0]
    assert removed.startswith("drawing-1.")
    assert _status(relay, letter_id) == "held"  # still waiting for a decision
    (entry,) = _audit(relay, "file-removed", letter_id)
    assert entry["file"] == removed and entry["by"] == MODERATOR_A and entry["via"] == "cli"

    relay.cli("queue", "approve", str(letter_id), "--by", MODERATOR_A)
    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="the letter")
    files = [part.get_filename() for part in delivered.iter_attachments()]
    assert files == [removed.replace("drawing-1", "drawing-2")]
    html = _html_of(delivered)
    assert "cid:drawing-1@" not in html and "cid:drawing-2@" in html


def test_redact_flags_removes_the_phone_and_address_and_audits_counts_only(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    raw = html_letter(
        pals.maya.email,
        pals.tomas.masked,
        "Call me at (555) 201-3344 or write to sunny.cat@example.com!\nSee you.",
        "<p>Call me at <b>(555) 201-3344</b> or write to "
        '<a href="mailto:sunny.cat@example.com">sunny.cat@example.com</a>!</p><p>See you.</p>',
    )
    letter_id = _held(relay, pals, raw)
    approved = relay.cli("queue", "approve", str(letter_id), "--by", MODERATOR_A, "--redact-flags")
    assert "flagged details removed" in approved.stdout

    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="the letter")
    whole = delivered.as_string()
    for detail in ("201-3344", "sunny.cat"):
        assert detail not in whole
    text, html = _text_of(delivered), _html_of(delivered)
    assert "Call me at [borrado] or write to [borrado]!" in text  # in the pal's language
    assert "See you." in text and "<p>See you.</p>" in html
    assert "Call me at <b>[borrado]</b>" in html
    (entry,) = _audit(relay, "approved", letter_id)
    assert entry["redacted"] == {"email": 1, "phone": 1}
    audit_file = json.dumps(relay.context().store.audit_log())
    assert "201-3344" not in audit_file and "sunny.cat" not in audit_file


def test_edit_then_approve_keeps_an_html_part_with_the_picture(relay: Relay, pals: Pals) -> None:
    relay.start()
    raw = html_letter(
        pals.maya.email,
        pals.tomas.masked,
        "Here is my dog. My street is Elm Road.",
        '<p>Here is my dog <img src="cid:pic-0@mail.example.net">. My street is Elm Road.</p>',
        pictures=("green",),
    )
    letter_id = _held(relay, pals, raw)
    edited = relay.root / "edited.txt"
    edited.write_text("Here is my dog:\n[drawing-1]\n\nWrite soon & tell me about yours!\n")
    relay.cli("queue", "approve", str(letter_id), "--by", MODERATOR_A, "--edit", str(edited))

    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="the letter")
    assert "Elm Road" not in delivered.as_string()
    assert "Write soon & tell me about yours!" in _text_of(delivered)
    html = _html_of(delivered)
    assert "<p>Write soon &amp; tell me about yours!</p>" in html
    assert '<img src="cid:drawing-1@letter.invalid"' in html  # where the text showed it
    assert [p.get_filename() for p in delivered.iter_attachments()] == ["drawing-1.png"]
    (entry,) = _audit(relay, "approved", letter_id)
    assert entry["edited"] is True


def test_a_letter_to_a_paused_pal_stays_held_and_its_writer_is_told_kindly(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    raw = html_letter(pals.tomas.email, pals.maya.masked, "¡Hola Maya!", "<p>¡Hola Maya!</p>")
    letter_id = _held(relay, pals, raw, from_tomas=True)
    participants.pause(relay.context(), pals.maya, by=MODERATOR_A)

    refused = relay.cli("queue", "approve", str(letter_id), "--by", MODERATOR_B, check=False)
    assert refused.returncode == 1
    assert "was not sent: the pal, Maya, is paused; it stays held" in refused.stderr
    (note,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="the writer's notice")
    assert note["Subject"] == "Tu carta para Maya está esperando"
    assert "descanso" in _text_of(note)
    assert _status(relay, letter_id) == "held"
    assert not relay.context().spool.queued_or_sent(f"letter-{letter_id}")
    (entry,) = _audit(relay, "kept-on-hold", letter_id)
    assert entry["not_sent"] == "pal-paused" and entry["by"] == MODERATOR_B

    _reply(relay, _notice(relay, MODERATOR_B, letter_id), MODERATOR_B, "Aprobar")  # by email
    told = wait_for(
        lambda: [m for m in relay.delivered(MODERATOR_B) if "no se usó" in str(m["Subject"])],
        what="the answer to Carmen's reply",
    )[0]
    assert "Maya, está en pausa" in _text_of(told)
    assert len(relay.delivered(pals.tomas.email)) == 1  # the writer is told once

    participants.resume(relay.context(), pals.maya, by=MODERATOR_A)  # back: the letter goes
    relay.cli("queue", "approve", str(letter_id), "--by", MODERATOR_B)
    wait_for(lambda: relay.delivered(pals.maya.email), what="the letter once Maya is back")


def _notice(relay: Relay, moderator: str, letter_id: int) -> EmailMessage:
    def found() -> list[EmailMessage]:
        return [m for m in relay.delivered(moderator) if f"<notice-{letter_id}." in m["Message-ID"]]

    notices: list[EmailMessage] = wait_for(found, what=f"the notice to {moderator}")
    return notices[0]


def _reply(relay: Relay, notice: EmailMessage, sender: str, first_line: str) -> None:
    """A moderator's reply from their phone: the word on top, the notice quoted below."""
    reply = EmailMessage(policy=email.policy.SMTP)
    domain = sender.rpartition("@")[2]
    reply["Authentication-Results"] = f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from={domain}"
    reply["From"] = sender
    reply["To"] = notice["From"]
    reply["Subject"] = f"Re: {notice['Subject']}"
    reply["In-Reply-To"] = notice["Message-ID"]
    quoted = "\n".join("> " + line for line in _text_of(notice).splitlines())
    reply.set_content(f"{first_line}\n\nEnviado desde mi teléfono\n\n{quoted}")
    relay.send(sender, [notice["From"].addresses[0].addr_spec], reply.as_bytes())


def test_a_spanish_moderator_replies_tachar_and_the_flagged_details_go(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    raw = html_letter(
        pals.tomas.email,
        pals.maya.masked,
        "¡Hola Maya! Mi número es +1 (555) 201-3344. Mira www.tomas-fotos.example.com",
        "<p>¡Hola Maya! Mi número es +1 (555) 201-3344. "
        '<a href="https://www.tomas-fotos.example.com">Mira</a></p>',
    )
    letter_id = _held(relay, pals, raw, from_tomas=True)
    notice = _notice(relay, MODERATOR_B, letter_id)
    assert "tachar  - enviarla quitando" in _text_of(notice)  # the word, in her language
    _reply(relay, notice, MODERATOR_B, "Tachar")

    (delivered,) = wait_for(lambda: relay.delivered(pals.maya.email), what="the letter")
    whole = delivered.as_string()
    assert "201-3344" not in whole and "tomas-fotos" not in whole
    assert "Mi número es [removed]." in _text_of(delivered)  # the mark in Maya's language
    assert "Mira" in _html_of(delivered)  # the link's words stay, its address goes
    confirmation = wait_for(
        lambda: [m for m in relay.delivered(MODERATOR_B) if "aprobada" in str(m["Subject"])]
    )[0]
    assert confirmation["Subject"] == f"Carta {letter_id}: aprobada, sin los datos señalados"
    (entry,) = _audit(relay, "approved", letter_id)
    assert entry["via"] == "email" and entry["redacted"] == {"link": 1, "phone": 1}


def test_a_redacted_approval_whose_cli_died_is_delivered_redacted_once(
    relay: Relay, pals: Pals
) -> None:
    relay.start()
    raw = html_letter(
        pals.maya.email, pals.tomas.masked, "Call (555) 201-3344!", "<p>Call (555) 201-3344!</p>"
    )
    letter_id = _held(relay, pals, raw)
    command = [sys.executable, "-m", "relay", "--config", str(relay.config_path), "queue"]
    died = subprocess.run(
        [*command, "approve", str(letter_id), "--by", MODERATOR_A, "--redact-flags"],
        capture_output=True,
        timeout=60,
        cwd=relay.root,
        env={**os.environ, faults.ENV_VAR: "approve-after-decision"},
    )
    assert died.returncode == -signal.SIGKILL  # approved on disk, nothing queued yet
    assert _status(relay, letter_id) == "approved"

    # `serve` finds the approval unqueued and sends what the moderator approved, once.
    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), 30, "the letter")
    assert "201-3344" not in delivered.as_string() and "[borrado]" in _text_of(delivered)
    wait_for(lambda: _status(relay, letter_id) == "delivered", what="the delivery recorded")
    assert len(relay.delivered(pals.tomas.email)) == 1
