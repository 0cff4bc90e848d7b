"""Reading a participant's one-word command, in every shipped language."""

from __future__ import annotations

import email
import itertools
import json
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from relay import config as config_module
from relay import participant_mail, participants, replies
from relay.authresults import UNCHECKED, Verdict
from relay.commands import ACTIONS, Asked, first_own_line, read_command, read_line
from relay.context import Context, open_context
from relay.route import OwnAddress, Refusal, check_token, own_address
from relay.spool import Incoming
from relay.store import now_iso
from relay.store.records import PendingCommand
from relay.wording import Templates
from tests.conftest import DOMAIN, FRONT_AUTHSERV_ID, MAYA, config_text

WORDS = Templates().command_words()
_NUMBERS = itertools.count(1)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # English
        ("help", Asked("help")),
        ("STOP", Asked("stop")),
        ("Stop.", Asked("stop")),
        ("pause Maya", Asked("pause", "maya")),
        ("Resume", Asked("resume")),
        ("stop Maya Rose!", Asked("stop", "maya rose")),
        # Spanish, accents and case optional
        ("ayuda", Asked("help")),
        ("¡Pausa!", Asked("pause")),
        ("pausar", Asked("pause")),
        ("reanudar Tomás", Asked("resume", "tomas")),
        ("Continuar", Asked("resume")),
        ("baja", Asked("stop")),
        ("PARAR", Asked("stop")),
        ("Darme de baja", Asked("stop")),
        # French
        ("aide", Asked("help")),
        ("Pause", Asked("pause")),
        ("reprendre", Asked("resume")),
        ("Arrêter", Asked("stop")),
        ("arreter", Asked("stop")),
        ("désinscrire Léa", Asked("stop", "lea")),
        ("me désinscrire", Asked("stop")),
        # Not commands: another word first, or a whole sentence
        ("Please stop", None),
        ("stop sending me these emails right now", None),
        ("Hello there", None),
        ("", None),
    ],
)
def test_words_in_each_language(line: str, expected: Asked | None) -> None:
    assert read_line(line, WORDS) == expected


def test_every_shipped_language_has_every_command() -> None:
    assert set(WORDS) == set(Templates().languages())
    for language, vocabulary in WORDS.items():
        for action in ACTIONS:
            assert vocabulary.get(action), f"{language} has no word for {action}"


def test_only_the_writers_own_words_count() -> None:
    quoted = "pausa\n\nEl lun, 30 nov 2026, Test Pen Pals escribió:\n> stop\n> reanudar\n"
    assert read_command("Re: Tus cartas", quoted, WORDS) == Asked("pause")
    # The first own line is not a command: the subject they wrote is read instead...
    assert read_command("Stop", "Hi,\nplease take me off\n", WORDS) == Asked("stop")
    # ...but not a subject their mail program wrote for a reply.
    assert read_command("Re: stop", "Thanks!\n", WORDS) is None
    assert read_command("RE: pausa", "Gracias\n", WORDS) is None
    # A signature or what they quoted is not theirs.
    assert first_own_line("\n-- \nstop\n") == ""
    assert first_own_line("> stop\n") == ""
    assert first_own_line("\r\n  resume  \r\n\r\nSent from my phone\r\n") == "resume"


def test_a_confirmation_address_is_good_only_while_its_command_waits() -> None:
    own = own_address("confirm+" + "a" * 32)
    assert own == OwnAddress("confirm", "confirm+" + "a" * 32)
    assert own_address("confirm+short") is None
    assert own_address("help") == OwnAddress("help", "help")

    def pending(used: bool = False, expires: float = 2000.0) -> PendingCommand:
        return PendingCommand("a" * 32, "stop", "p1", "x@example.net", "participant",
                              expires, used)  # fmt: skip

    def check(found: PendingCommand | None) -> OwnAddress | Refusal:
        return check_token(own, grant=lambda _t: None, unsubscribe_signed=lambda _t: False,
                           now=1000.0, pending=lambda _t: found)  # fmt: skip

    assert check(pending()) == own
    for found, reason in [
        (None, "unknown-token"),
        (pending(used=True), "used-token"),
        (pending(expires=10.0), "expired-token"),
    ]:
        assert check(found) == Refusal(replies.UNKNOWN_ADDRESS, reason)


# --- commands carried out, without a running relay ------------------------------------------

PARENT = "the.smiths@family-mail.example.net"
LEO = "leo.smith@family-mail.example.net"
NINA = "nina@family-mail.example.net"


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    return open_context(config_module.load(path))


def _mail(
    ctx: Context, sender: str, line: str, *, to: str = "help", verified: bool = True,
    envelope: str | None = None,
) -> str:  # fmt: skip
    """A one-line message to one of the relay's own addresses, handled as `process` does;
    returns its spool id."""
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Someone <{sender}>"
    message["To"] = f"{to}@{DOMAIN}"
    message["Subject"] = ""
    message["Message-ID"] = f"<{next(_NUMBERS)}@family-mail.example.net>"
    message.set_content(line)
    results = f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from=family-mail.example.net"
    verdict = Verdict("front", sender, results) if verified else UNCHECKED
    incoming = Incoming(envelope or sender, (f"{to}@{DOMAIN}",), now_iso(), "smtp", verdict=verdict)
    item_id = f"item-{next(_NUMBERS)}"
    if to.startswith("confirm+"):
        participant_mail.handle_confirmation(ctx, item_id, message.as_bytes(), incoming, to)
    else:
        assert participant_mail.handle_command_mail(ctx, item_id, message.as_bytes(), incoming)
    return item_id


def _outcome(ctx: Context, item_id: str) -> str:
    (entry,) = [e for e in ctx.store.audit_log() if e.get("spool") == item_id]
    return str(entry.get("outcome", entry.get("reason")))


def _answers(ctx: Context, address: str) -> list[str]:
    """The subjects of the answers queued for an address, oldest first."""
    subjects = []
    for item in ctx.spool.outbox():
        if item.meta.get("to") == [address]:
            parsed = email.message_from_bytes(ctx.spool.message("outbox", item.id), policy=SMTP)
            subjects.append(str(parsed["Subject"]))
    return subjects


def _statuses(ctx: Context) -> dict[str, str]:
    return {p.name: p.status for p in ctx.store.participants()}


def test_a_sentence_starting_with_a_command_word_changes_nothing(ctx: Context) -> None:
    participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=PARENT)
    participants.enroll(ctx, "riverside", "Leo", LEO, guardian=PARENT)
    # Replies to a monthly topic, or words after the command word that name nobody the
    # address speaks for: the help text, never an action, never a confirmation request.
    for line in ("Stop sending prompts", "Stop it please", "Erase that", "Pause for a bit",
                 "Help me", "pause Leo", "stop Tomás"):  # fmt: skip
        assert _outcome(ctx, _mail(ctx, MAYA, line)) == "help", line
        assert _statuses(ctx) == {"Maya": "active", "Leo": "active"}, line
    assert _outcome(ctx, _mail(ctx, PARENT, "Stop it please")) == "help"
    assert _outcome(ctx, _mail(ctx, PARENT, "pause Nina")) == "help"
    assert _statuses(ctx) == {"Maya": "active", "Leo": "active"}
    assert not any(e["outcome"] == "confirmation-asked" for e in ctx.store.audit_log()
                   if e["event"] == "command")  # fmt: skip
    assert set(_answers(ctx, MAYA)) == {"Test Pen Pals: what you can ask by email"}
    # A command, with or without one's own name, still acts; so does a guardian's "pause Leo".
    assert _outcome(ctx, _mail(ctx, MAYA, "Pause Maya!")) == "paused"
    assert _outcome(ctx, _mail(ctx, MAYA, "resume")) == "resumed"
    assert _outcome(ctx, _mail(ctx, PARENT, "pause Leo")) == "paused"
    assert _outcome(ctx, _mail(ctx, PARENT, "¡Pausa!")) == "which-one"
    assert _statuses(ctx) == {"Maya": "active", "Leo": "paused"}


def test_a_confirmation_is_kept_and_audited_by_the_hash_of_its_token(ctx: Context) -> None:
    leo = participants.enroll(ctx, "riverside", "Leo", LEO)
    assert _outcome(ctx, _mail(ctx, LEO, "stop", verified=False)) == "confirmation-asked"
    (request,) = [i for i in ctx.spool.outbox() if i.meta.get("to") == [LEO]]
    sent = email.message_from_bytes(ctx.spool.message("outbox", request.id), policy=SMTP)
    confirm = str(sent["From"].addresses[0].addr_spec).partition("@")[0]
    token = confirm.removeprefix("confirm+")
    stored = "".join(path.read_text() for path in (ctx.store.root / "lookup").glob("*.json"))
    assert token not in stored  # a copy of the store confirms nothing
    assert ctx.store.pending_command(token) is not None
    # The envelope alone is not the writer: refused, and audited without the token.
    refused = _mail(ctx, "someone@elsewhere.example.com", "yes", to=confirm, verified=False,
                    envelope=LEO)  # fmt: skip
    assert _outcome(ctx, refused) == "other-sender"
    assert token[:8] not in json.dumps(ctx.store.audit_log())
    assert _statuses(ctx) == {"Leo": "active"}
    assert _outcome(ctx, _mail(ctx, LEO, "yes", to=confirm, verified=False)) == "left"
    assert ctx.store.participant(leo.id) is not None and _statuses(ctx) == {"Leo": "left"}


def test_an_export_is_audited_only_when_it_is_sent(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    participants.enroll(ctx, "riverside", "Nina", NINA)

    def exported() -> int:
        return sum(e["event"] == "exported" for e in ctx.store.audit_log())

    monkeypatch.setattr(participant_mail, "EXPORT_MAIL_MAX_BYTES", 100)
    assert _outcome(ctx, _mail(ctx, NINA, "my data")) == "export-too-large"
    assert exported() == 0
    monkeypatch.undo()
    assert participant_mail.EXPORT_MAIL_MAX_BYTES * 1.37 < 10 * 1024 * 1024
    assert _outcome(ctx, _mail(ctx, NINA, "my data")) == "exported"
    assert exported() == 1
    # Once a day: a second ask is told so, and nothing is recorded as sent.
    assert _outcome(ctx, _mail(ctx, NINA, "export")) == "export-already-sent"
    assert exported() == 1
    assert _answers(ctx, NINA) == ["Test Pen Pals: what we keep about Nina"] * 3
    zipped = [i for i in ctx.spool.outbox() if i.id.startswith("export-")]
    assert len(zipped) == 1


def test_a_replaced_guardian_cannot_confirm_a_command_for_the_child(ctx: Context) -> None:
    """Staff corrected the guardian's address: the earlier one's pending command is gone, and
    one still waiting for an address that is no longer theirs is refused ("other-sender")."""
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=PARENT)
    assert _outcome(ctx, _mail(ctx, PARENT, "erase Maya")) == "confirmation-asked"
    (request,) = [i for i in ctx.spool.outbox() if i.meta.get("to") == [PARENT]]
    sent = email.message_from_bytes(ctx.spool.message("outbox", request.id), policy=SMTP)
    confirm = str(sent["From"].addresses[0].addr_spec).partition("@")[0]
    participants.set_guardian(ctx, maya, NINA)
    assert _outcome(ctx, _mail(ctx, PARENT, "yes", to=confirm)) == "token-not-usable"
    token = "e" * 32
    ctx.store.record_pending_command(
        PendingCommand(token, "export", maya.id, PARENT, "guardian", time.time() + 60)
    )
    assert _outcome(ctx, _mail(ctx, PARENT, "yes", to=f"confirm+{token}")) == "other-sender"
    assert not ctx.store.pending_command(token).used  # type: ignore[union-attr]
    assert _statuses(ctx) == {"Maya": "active"}
    assert not [e for e in ctx.store.audit_log() if e["event"] in ("exported", "erased")]
