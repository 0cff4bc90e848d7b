"""Every outgoing message passes the leak guard: who must not be seen in what one reads.

The spool's outbox takes only a `CheckedMessage`, and only the leak guard makes one, so no
code path can queue bytes that were not searched. This module decides, per reader, which
real addresses must not appear: every real address of the participants, guardians and staff
involved, except the reader's own (it is rightly in `To`).
"""

from __future__ import annotations

from collections.abc import Iterable

from relay.context import Context
from relay.errors import UserError
from relay.scrub.leakguard import CheckedMessage, redact_outgoing
from relay.store.records import Letter, Participant


class LeakStopped(UserError):
    """The final bytes carry a private detail where it cannot be cut out."""

    def __init__(self, what: str, places: list[str]) -> None:
        super().__init__(
            f"{what} was stopped by the leak guard: a private detail is in "
            f"{', '.join(sorted(set(places)))}; nothing was sent"
        )
        self.places = places


def checked(message: bytes, private: Iterable[str], *, what: str) -> CheckedMessage:
    """The message as it may leave: text hits redacted, or LeakStopped."""
    values = sorted({value.lower() for value in private if value})
    report = redact_outgoing(message, values)
    if report.checked is None:
        raise LeakStopped(what, [hit.where for hit in report.hits])
    return report.checked


def addresses_of(participants: Iterable[Participant | None]) -> set[str]:
    found: set[str] = set()
    for participant in participants:
        if participant is not None:
            found.add(participant.email)
            if participant.guardian:
                found.add(participant.guardian)
    return found


def private_for_letter(ctx: Context, letter: Letter) -> set[str]:
    """All real addresses around a letter: both participants, guardians, both staffs."""
    people = addresses_of(
        [ctx.store.participant(letter.sender), ctx.store.participant(letter.recipient)]
    )
    for library_id in (letter.sender_library, letter.recipient_library):
        library = ctx.config.library(library_id)
        if library is not None:
            people |= {member.email for member in library.staff}
    return people


def for_reader(private: set[str], reader: str) -> set[str]:
    return private - {reader.lower()}
