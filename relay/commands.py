"""Reading a participant's emailed command: one word, perhaps a first name, in any language.

Pure. A participant (or their guardian) writes `help`, `pause`, `resume`, `stop`, `export`
(a copy of everything held about them) or `erase` (everything about them removed) to help@,
or replies to a program mail with it. Only the writer's own words count: the first line of
the text they wrote (quoted history and a "-- " signature are dropped with
`relay.scrub.quotes`), or else the subject when it is their own (not "Re: ..."). Words are
compared without letter case, accents or punctuation ("STOP", "Stop.", "¡Pausa!" and
"Arreter" all count); the words live in `templates/email/<lang>/commands.toml`, and those of
every language are understood whatever the writer's language. A first name may follow the
word ("pause Maya") for an address several participants share; a longer sentence is not a
command (its writer gets the help text), nor is a short one whose words after the command
word name nobody the address speaks for ("Stop it please": `participant_mail` checks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from relay.decisions import fold
from relay.scrub.quotes import remove_signature, reply_text

Action = Literal["help", "pause", "resume", "stop", "export", "erase"]
ACTIONS: tuple[Action, ...] = ("help", "pause", "resume", "stop", "export", "erase")
# A first name of up to this many words may follow the command word.
NAME_WORDS = 3
_PUNCTUATION = " \t:;,.!?¡¿-—–\"'«»()[]"
# A subject the writer's mail program wrote for a reply or a forward, not the writer.
_NOT_THEIR_SUBJECT = re.compile(r"^\s*(re|fwd?|aw|wg|rv|tr|sv|vs|ref|réf)\s*(\[\d+\])?\s*:", re.I)
_SIGN_OFF = re.compile(r"^(sent from my .*|enviado desde mi .*|envoyé de mon .*)$", re.I)


@dataclass(frozen=True)
class Asked:
    """A command as read: what is asked, and for whom when a first name followed (folded)."""

    action: Action
    name: str = ""


def action_named(word: str) -> Action | None:
    """The action a stored word names (a confirmation waiting in the store); None if none."""
    return next((action for action in ACTIONS if action == word), None)


def first_own_line(text: str) -> str:
    """The first non-empty line the writer typed, without what they quoted or signed."""
    own, _ = remove_signature(reply_text(text.replace("\r\n", "\n")).text)
    for raw in own.splitlines():
        line = raw.strip()
        if line and not line.startswith(">") and not _SIGN_OFF.match(line):
            return line
    return ""


def read_line(line: str, words: dict[str, dict[str, list[str]]]) -> Asked | None:
    """The command one line asks for; None when it starts with no command word or goes on
    longer than a first name."""
    folded = fold(line).strip(_PUNCTUATION)
    best: tuple[int, Action] | None = None
    for vocabulary in words.values():
        for action in ACTIONS:
            for word in vocabulary.get(action, []):
                candidate = fold(word)
                found = re.match(rf"{re.escape(candidate)}(?![\w])", folded)
                # The longest matching words win ("darme de baja" over "dar").
                if found and (best is None or len(candidate) > best[0]):
                    best = (len(candidate), action)
    if best is None:
        return None
    length, action = best
    rest = folded[length:].strip(_PUNCTUATION)
    name = " ".join(rest.split())
    if len(name.split()) > NAME_WORDS:
        return None
    return Asked(action, name)


def read_command(subject: str, text: str, words: dict[str, dict[str, list[str]]]) -> Asked | None:
    """The command of a message: its first own line, or else its subject when the writer
    wrote it; None when neither is one (the writer then gets the help text)."""
    line = first_own_line(text)
    asked = read_line(line, words) if line else None
    if asked is None and subject.strip() and not _NOT_THEIR_SUBJECT.match(subject):
        asked = read_line(subject, words)
    return asked
