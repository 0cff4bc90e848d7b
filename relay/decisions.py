"""Reading a moderator's emailed decision: the first line they wrote, in their language.

Pure. Phone mail apps put the answer on top and quote the notice below, often after an
attribution line ("On Mon, ... wrote:"), so the instruction is the first non-empty line that
is not quoted. Words are compared without letter case or accents ("Sí" is "si", "Approuvé"
is "approuve"); the word lists live in `templates/email/<lang>/decisions.toml`, so a new
language needs no code.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

APPROVE, REJECT, HOLD = "approve", "reject", "hold"
REDACT = "redact"  # approve with every identifying detail flagged in it removed
_SIGN_OFF = re.compile(r"^(--\s*|sent from my .*|enviado desde mi .*|envoyé de mon .*)$", re.I)


@dataclass(frozen=True)
class Command:
    action: str
    reason: str = ""


def fold(text: str) -> str:
    """Lower case without accents, for comparing words."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def first_instruction(body: str) -> str | None:
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">") or _SIGN_OFF.match(line):
            return None
        return line
    return None


def parse_command(line: str, words: dict[str, dict[str, list[str]]]) -> Command | None:
    folded = fold(line)
    best: tuple[int, str] | None = None
    for vocabulary in words.values():
        for action in (APPROVE, REDACT, REJECT, HOLD):
            for word in vocabulary.get(action, []):
                candidate = fold(word)
                matches = re.match(rf"{re.escape(candidate)}(?![\w])", folded)
                # The longest matching word wins ("ok" must not shadow "okay").
                if matches and (best is None or len(candidate) > best[0]):
                    best = (len(candidate), action)
    if best is None:
        return None
    length, action = best
    reason = line[length:].strip(" \t:;,.-—") if action == REJECT else ""
    return Command(action, reason)
