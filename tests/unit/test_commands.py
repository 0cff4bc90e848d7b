"""Reading a participant's one-word command, in every shipped language."""

from __future__ import annotations

import pytest

from relay import replies
from relay.commands import ACTIONS, Asked, first_own_line, read_command, read_line
from relay.route import OwnAddress, Refusal, check_token, own_address
from relay.store.records import PendingCommand
from relay.wording import Templates

WORDS = Templates().command_words()


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
        return PendingCommand("a" * 32, "stop", ("p1",), "x@example.net", "participant",
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
