"""Outbox entries, typed: what a queued message is, to whom it goes, how its tries went.

Each kind of outgoing message has its own frozen record (`LetterCopy`, `GuardianCopy`,
`TeammateCopy`, `Notice`, `MonthlyPrompt`, `DigestIssue`, `ListPost`), so code reacting to
an outcome matches on the type instead of reading keys. The spool keeps an entry as its JSON marker:
`to_meta` writes it, `from_meta` reads it back. Markers written before entries were typed
named a notice by its topic alone (`"kind": "held-notice"`); `from_meta` still reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

Kind = Literal[
    "letter", "guardian-copy", "teammate-copy", "notice", "prompt", "digest", "staff-list"
]
Json = str | int | float | bool | None | list[str]
Meta = dict[str, Json]


@dataclass(frozen=True)
class LetterCopy:
    """The pal's copy of an approved letter."""

    letter: int
    kind: ClassVar[Kind] = "letter"


@dataclass(frozen=True)
class GuardianCopy:
    """A guardian's copy of an approved letter (of the writer's, the pal's or the pal's
    teammate's guardian)."""

    letter: int
    participant: str = ""  # whose guardian ("" in entries queued before it was recorded)
    kind: ClassVar[Kind] = "guardian-copy"


@dataclass(frozen=True)
class TeammateCopy:
    """The copy of an approved letter for the pal's teammate: the two write together to the
    letter's writer, and a letter to one reaches both (`Participant.writes_with`)."""

    letter: int
    teammate: str  # their participant id
    kind: ClassVar[Kind] = "teammate-copy"


@dataclass(frozen=True)
class Notice:
    """A message from the program to one person; `topic` names which (its template)."""

    topic: str
    letter: int | None = None
    kind: ClassVar[Kind] = "notice"


@dataclass(frozen=True)
class MonthlyPrompt:
    month: str
    participant: str
    kind: ClassVar[Kind] = "prompt"


@dataclass(frozen=True)
class DigestIssue:
    kind: ClassVar[Kind] = "digest"


@dataclass(frozen=True)
class ListPost:
    """A staff message to the program's staff list."""

    kind: ClassVar[Kind] = "staff-list"


Purpose = LetterCopy | GuardianCopy | TeammateCopy | Notice | MonthlyPrompt | DigestIssue | ListPost


@dataclass(frozen=True)
class Tries:
    """Delivery attempts so far; `next_at` is when the worker may try again (epoch seconds)."""

    count: int = 0
    first_failure_at: float | None = None
    next_at: float = 0.0
    last_error: str = ""


@dataclass(frozen=True)
class OutboxEntry:
    id: str
    purpose: Purpose
    sender: str  # the envelope sender: the VERP bounce address, bounces@, or "" (null)
    to: tuple[str, ...]
    queued_at: str
    tries: Tries = field(default_factory=Tries)

    @property
    def letter(self) -> int | None:
        """The letter this message is about, if any."""
        purpose = self.purpose
        if isinstance(purpose, LetterCopy | GuardianCopy | TeammateCopy | Notice):
            return purpose.letter
        return None

    @property
    def label(self) -> str:
        """How logs name it: letters by number (never an address), the rest by entry id."""
        if isinstance(self.purpose, LetterCopy):
            return f"letter={self.purpose.letter}"
        return f"item={self.id}"

    def but(self, tries: Tries) -> OutboxEntry:
        return replace(self, tries=tries)

    def to_meta(self) -> Meta:
        meta: Meta = {
            "kind": self.purpose.kind,
            "from": self.sender,
            "to": list(self.to),
            "queued_at": self.queued_at,
            "attempts": self.tries.count,
            "next_attempt_at": self.tries.next_at,
            "first_failure_at": self.tries.first_failure_at,
            "last_error": self.tries.last_error,
        }
        match self.purpose:
            case LetterCopy(letter=letter):
                meta["letter"] = letter
            case GuardianCopy(letter=letter, participant=participant):
                meta["letter"], meta["participant"] = letter, participant
            case TeammateCopy(letter=letter, teammate=teammate):
                meta["letter"], meta["participant"] = letter, teammate
            case Notice(topic=topic, letter=letter):
                meta["topic"], meta["letter"] = topic, letter
            case MonthlyPrompt(month=month, participant=participant):
                meta["month"], meta["participant"] = month, participant
            case DigestIssue() | ListPost():
                pass
        return meta

    @classmethod
    def from_meta(cls, item_id: str, meta: Meta) -> OutboxEntry:
        to = meta.get("to")
        return cls(
            id=item_id,
            purpose=_purpose(meta),
            sender=_text(meta, "from"),
            to=tuple(to) if isinstance(to, list) else (),
            queued_at=_text(meta, "queued_at"),
            tries=Tries(
                count=int(_number(meta, "attempts") or 0),
                first_failure_at=_number(meta, "first_failure_at"),
                next_at=_number(meta, "next_attempt_at") or 0.0,
                last_error=_text(meta, "last_error"),
            ),
        )


def _purpose(meta: Meta) -> Purpose:
    kind = _text(meta, "kind")
    letter = meta.get("letter")
    number = letter if isinstance(letter, int) and not isinstance(letter, bool) else None
    if kind == "letter" and number is not None:
        return LetterCopy(number)
    if kind == "guardian-copy" and number is not None:
        return GuardianCopy(number, _text(meta, "participant"))
    if kind == "teammate-copy" and number is not None:
        return TeammateCopy(number, _text(meta, "participant"))
    if kind == "prompt":
        return MonthlyPrompt(_text(meta, "month"), _text(meta, "participant"))
    if kind == "digest":
        return DigestIssue()
    if kind == "staff-list":
        return ListPost()
    # "notice", or a marker from before typed entries, whose kind was the notice's topic.
    return Notice(_text(meta, "topic") or kind, number)


def _text(meta: Meta, key: str) -> str:
    value = meta.get(key)
    return value if isinstance(value, str) else ""


def _number(meta: Meta, key: str) -> float | None:
    value = meta.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
