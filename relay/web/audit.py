"""Audit entries in plain words: "Ana approved letter 8", "Letter 8 bounced".

The sentences live in the words files as one table per language (`audit_sentences`), keyed
by event, with `str.format` fields filled from the entry: {by} (the staff member's name),
{letter}, {reason}, {file}, {parts} (flagged parts removed), {participant}, {first} and
{second} (a pairing), {count}, {waiting}, {what} (the event's short name). A new event is one
line in each table. An entry may match several keys, tried in order — a variant
("approved-redacted", "approved-edited", "consent-given-paper" by the method recorded,
"paused-by-email" for a participant's emailed command, "paused-auto" for a change nobody
signed), then the
event itself, then the generic sentences — and the first whose fields the entry has wins,
so an entry missing a detail never shows a gap, a raw record or a spool id.

Only fields named here reach a sentence: mail servers' error texts (which may quote a pal's
real address), spool ids and tokens are never shown.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GENERIC = ("other-by-letter", "other-by", "other-letter", "other")


@dataclass(frozen=True)
class Names:
    """Who is who, for sentences: staff by address, participants by id, libraries by id."""

    staff: Mapping[str, str] = field(default_factory=dict)
    participants: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name, library
    libraries: Mapping[str, str] = field(default_factory=dict)

    def participant(self, pid: object) -> str:
        found = self.participants.get(str(pid))
        if found is None:
            return str(pid)
        name, library = found
        return f"{name} ({self.libraries.get(library, library)})"


@dataclass(frozen=True)
class AuditLine:
    at: str
    event: str
    sentence: str
    letter: int | None


def _parts(redacted: object) -> int:
    if isinstance(redacted, Mapping):
        return sum(v for v in redacted.values() if isinstance(v, int))
    return redacted if isinstance(redacted, int) and not isinstance(redacted, bool) else 0


def fields_of(entry: Mapping[str, Any], names: Names, events: Mapping[str, str]) -> dict[str, str]:
    """The values a sentence may use; a detail the entry lacks is absent, never empty."""
    event = str(entry.get("event", ""))
    values = {"what": events.get(event) or event.replace("-", " ")}
    by = entry.get("by")
    if isinstance(by, str) and by:
        values["by"] = names.staff.get(by.lower(), by)
    letter = entry.get("letter")
    if isinstance(letter, int):
        values["letter"] = str(letter)
    for key in ("reason", "file"):
        text = entry.get(key)
        if isinstance(text, str) and text:
            values[key] = text
    if parts := _parts(entry.get("redacted")):
        values["parts"] = str(parts)
    if entry.get("participant"):
        values["participant"] = names.participant(entry["participant"])
    pair = entry.get("participants")
    if isinstance(pair, list) and len(pair) == 2:
        values["first"], values["second"] = (names.participant(p) for p in pair)
    count = entry.get("count")
    if isinstance(count, int):
        values["count"] = str(count)
    waiting = entry.get("letters")
    if isinstance(waiting, list):
        values["waiting"] = str(len(waiting))
    return values


def _keys(entry: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    event = str(entry.get("event", ""))
    keys = []
    if "parts" in values:
        keys += [f"{event}-redacted-one"] if values["parts"] == "1" else []
        keys.append(f"{event}-redacted")
    if entry.get("edited") is True:
        keys.append(f"{event}-edited")
    method = entry.get("method")
    if isinstance(method, str) and method:
        keys.append(f"{event}-{method}")
    if event == "paused" and isinstance(entry.get("reason"), str) and entry["reason"]:
        keys.append(f"paused-{entry['reason']}")  # "paused-program-closed"
    if "by" not in values and entry.get("via") == "email":
        keys.append(f"{event}-by-email")  # a participant's own command (participant_mail)
    if "by" not in values:
        keys.append(f"{event}-auto")
    return [*keys, event, *GENERIC]


def _needs(sentence: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(sentence) if name}


def sentence(
    entry: Mapping[str, Any],
    sentences: Mapping[str, str],
    names: Names,
    events: Mapping[str, str],
) -> str:
    """The entry as one sentence in the language of `sentences` (its `audit_sentences`)."""
    values = fields_of(entry, names, events)
    for key in _keys(entry, values):
        wording = sentences.get(key)
        if isinstance(wording, str) and _needs(wording) <= values.keys():
            return _capitalized(wording.format_map(values))
    return _capitalized(values["what"])  # a words file without the generic sentences


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def lines(entries: list[dict[str, Any]], words: Mapping[str, Any], names: Names) -> list[AuditLine]:
    sentences = words.get("audit_sentences") or {}
    events = words.get("events") or {}
    return [
        AuditLine(
            at=str(entry.get("at", "")),
            event=str(entry.get("event", "")),
            sentence=sentence(entry, sentences, names, events),
            letter=entry["letter"] if isinstance(entry.get("letter"), int) else None,
        )
        for entry in entries
    ]
