"""Reading a moderator's one-word reply, in every shipped language."""

from __future__ import annotations

import email
import email.policy

import pytest

from relay.decisions import Command, first_instruction, parse_command
from relay.route import is_automatic
from relay.wording import Templates

WORDS = Templates().decision_words()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("approve", Command("approve")),
        ("Approve.", Command("approve")),
        ("OK", Command("approve")),
        ("okay thanks", Command("approve")),
        ("reject too personal", Command("reject", "too personal")),
        ("Reject: shares a phone number", Command("reject", "shares a phone number")),
        ("hold", Command("hold")),
        ("Aprobar", Command("approve")),
        ("Sí", Command("approve")),
        ("rechazar demasiado personal", Command("reject", "demasiado personal")),
        ("Rechazar: demasiado personal", Command("reject", "demasiado personal")),
        ("esperar", Command("hold")),
        ("Approuvé", Command("approve")),
        ("rejeter trop personnel", Command("reject", "trop personnel")),
        ("plus tard", Command("hold")),
        ("reject", Command("reject", "")),
    ],
)
def test_words_in_each_language(line: str, expected: Command) -> None:
    assert parse_command(line, WORDS) == expected


@pytest.mark.parametrize("line", ["No problem", "okapi", "approval pending?", "thanks!", ""])
def test_other_lines_are_not_decisions(line: str) -> None:
    assert parse_command(line, WORDS) is None


def test_first_instruction_skips_blank_lines_and_stops_at_quotes() -> None:
    assert first_instruction("\n\n  approve  \n\nSent from my iPhone\n> quoted") == "approve"
    assert first_instruction("> approve\nreject") is None
    assert first_instruction("Sent from my iPhone\n\napprove") is None
    assert first_instruction("") is None


@pytest.mark.parametrize(
    ("headers", "envelope_from", "automatic"),
    [
        ("Auto-Submitted: auto-replied\r\n", "ana@x.org", True),
        ("Auto-Submitted: auto-generated\r\n", "ana@x.org", True),
        ("Auto-Submitted: no\r\n", "ana@x.org", False),
        ("Precedence: bulk\r\n", "ana@x.org", True),
        ("Precedence: junk\r\n", "ana@x.org", True),
        ("List-Id: <staff.lists.example.org>\r\n", "ana@x.org", True),
        ("X-Autoreply: yes\r\n", "ana@x.org", True),
        ("", "", True),  # a bounce: empty return path
        ("", "ana@x.org", False),
    ],
)
def test_automatic_mail_is_recognized(headers: str, envelope_from: str, automatic: bool) -> None:
    message = email.message_from_string(
        f"{headers}Subject: x\r\n\r\nbody", policy=email.policy.default
    )
    assert is_automatic(message, envelope_from) is automatic
