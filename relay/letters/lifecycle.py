"""The life of a letter: which event may happen in which state, and the one function that
applies an event.

    held ──approved──► approved ──delivered──► delivered ──bounced──► bounced
     │ ▲  ▲                │  │
     │ │  └──held-again────┘  └──failed──► failed
     │ ├─kept-on-hold
     │ └─file-removed
     └──rejected──► rejected

"held-again": a guardian's consent went (withdrawn, or a new guardian not asked yet), or the
writer or pal was paused or left, before the approved letter was handed to the transport
(`delivering.hold_again`).

Nothing else in the relay assigns a letter's status. `apply` checks the event is allowed in
the letter's current state, appends a history step, writes the record and, under the same
store lock, the audit entry — all three with the same word — and then logs one INFO line
with the letter number and masked addresses (never a real address). An event that is not
allowed now raises `NotNow`, whose message says the state the letter is in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

from relay.addresses import without_addresses
from relay.config import Staff
from relay.context import Context
from relay.errors import UserError
from relay.store import now_iso
from relay.store.records import Letter, LetterEvent, LetterStatus, Step

log = logging.getLogger("relay")

# What an audit entry may say beside the event: words, yes/no, counts by kind (never a
# patron's detail itself), names of files.
Detail: TypeAlias = str | bool | int | Mapping[str, int] | tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """The states an event may happen in, and the state it leaves (None: unchanged)."""

    before: frozenset[LetterStatus]
    after: LetterStatus | None


RULES: Final[Mapping[LetterEvent, Rule]] = {
    "file-removed": Rule(frozenset({"held"}), None),
    "approved": Rule(frozenset({"held"}), "approved"),
    "rejected": Rule(frozenset({"held"}), "rejected"),
    "kept-on-hold": Rule(frozenset({"held"}), None),
    "held-again": Rule(frozenset({"approved"}), "held"),
    "delivered": Rule(frozenset({"approved"}), "delivered"),
    "failed": Rule(frozenset({"approved"}), "failed"),
    # A bounce may outrun our record of the smarthost's 250 (see the README's guarantees).
    "bounced": Rule(frozenset({"approved", "delivered"}), "bounced"),
}


class NotNow(UserError):
    """The event cannot happen to the letter in the state it is in."""

    def __init__(self, letter: Letter, event: LetterEvent) -> None:
        wanted = " or ".join(sorted(RULES[event].before))
        super().__init__(f"letter {letter.id} is {letter.status}, not {wanted}")
        self.letter = letter
        self.event = event


def allowed(letter: Letter, event: LetterEvent) -> bool:
    return letter.status in RULES[event].before


def first_step() -> Step:
    """The history of every letter starts here; the record is made by `holding.hold`."""
    return Step(at=now_iso(), event="held")


def recorded(ctx: Context, letter: Letter, *, spool: str) -> None:
    """The audit entry and log line of a newly held letter (run once, under the lock)."""
    ctx.store.audit("held", letter=letter.id, spool=spool)
    log.info(
        "held letter=%d from=%s to=%s flags=%d notes=%d",
        letter.id,
        letter.sender_masked,
        letter.recipient_masked,
        len(letter.flags),
        len(letter.notes),
    )


def apply(
    ctx: Context,
    letter_id: int,
    event: LetterEvent,
    *,
    moderator: Staff | None = None,
    via: str = "",
    details: Mapping[str, Detail] | None = None,
    change: Callable[[Letter], Letter] | None = None,
) -> Letter:
    """Apply `event` to a letter: check, history, record, audit, log. Returns the new record.

    `change` sets the fields that come with the event (who decided, the reason, the error);
    `details` are added to the audit entry and the log line.
    """
    rule = RULES[event]
    stamp = now_iso()
    extra = dict(details or {})

    def step(current: Letter) -> Letter:
        if current.status not in rule.before:
            raise NotNow(current, event)
        moved = change(current) if change is not None else current
        by = moderator.name if moderator is not None else ""
        return moved.but(
            status=rule.after or current.status,
            history=(*current.history, Step(at=stamp, event=event, by=by)),
        )

    def audit(letter: Letter) -> None:
        who = {"by": moderator.email} if moderator is not None else {}
        how = {"via": via} if via else {}
        ctx.store.audit(event, letter=letter.id, **who, **how, **extra)

    letter = ctx.store.update_letter(letter_id, step, then=audit)
    _log(letter, event, moderator, via, extra)
    return letter


def _log(
    letter: Letter,
    event: LetterEvent,
    moderator: Staff | None,
    via: str,
    extra: Mapping[str, Detail],
) -> None:
    line = f"{event} letter={letter.id} from={letter.sender_masked} to={letter.recipient_masked}"
    if moderator is not None:
        line += f" by={moderator.name!r} library={letter.sender_library}"
    if via:
        line += f" via={via}"
    if "error" in extra:  # a mail server's words may quote the pal's real address
        line += f" error={without_addresses(str(extra['error']))!r}"
    level = logging.WARNING if event in ("failed", "bounced") else logging.INFO
    log.log(level, "%s", line)
