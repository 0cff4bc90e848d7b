"""What the relay does when the outbox reports: the handlers `serve` registers.

The outbox worker knows nothing of letters or prompts; it reports what became of each
entry, and this module passes it on: a letter's copy delivered or failed for good goes to
the letter's lifecycle (`relay.letters`), a prompt delivered is marked sent in the month's
journal, and a letter's copy whose writer or pal lost a guardian's consent, was paused or
left since the approval is held back (the letter held again); so are the copies for the
pal's teammate and the teammate's guardian when the teammate did. The worker calls
`delivered` under the store's write lock before it removes the entries, so none of this is
lost or repeated by a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from relay import letters
from relay.context import Context
from relay.errors import DeliveryError
from relay.outbox.entries import (
    GuardianCopy,
    LetterCopy,
    MonthlyPrompt,
    OutboxEntry,
    TeammateCopy,
)
from relay.outbox.worker import Outcomes
from relay.schedule import prompts
from relay.store.records import APPROVED, HELD


def for_relay(context: Callable[[], Context]) -> Outcomes:
    """The relay's reactions; `context` gives the current one (it changes on reload)."""
    return Outcomes(
        wanted=lambda entry: wanted(context(), entry),
        delivered=lambda done: delivered(context(), done),
        deferred=lambda entry, error: None,  # the worker's log line says all there is
        failed=lambda entry, error: failed(context(), entry, error),
        held_back=lambda entry: held_back(context(), entry),
    )


def wanted(ctx: Context, entry: OutboxEntry) -> bool:
    """A letter is sent only while approved: not when it was delivered before a crash let
    its entry be removed."""
    if isinstance(entry.purpose, LetterCopy):
        letter = ctx.store.letter(entry.purpose.letter)
        return letter is not None and letter.status == APPROVED
    return True


def held_back(ctx: Context, entry: OutboxEntry) -> bool:
    """A copy of a letter that is held (again): its writer or pal lost a guardian's consent,
    was paused or left after the approval (`letters.hold_again`). The worker drops it
    unsent, and forgets its name, so that approving the letter again queues it afresh."""
    if not isinstance(entry.purpose, LetterCopy | GuardianCopy | TeammateCopy):
        return False
    letter = ctx.store.letter(entry.purpose.letter)
    if letter is None or letter.status not in (APPROVED, HELD):
        return False
    if letters.hold_again(ctx, letter):
        return True
    # A teammate who left, was paused or lost consent since: only their copy and their
    # guardian's stay unsent.
    match entry.purpose:
        case TeammateCopy(teammate=teammate):
            return not letters.teammate_reads(ctx, letter, teammate)
        case GuardianCopy(participant=child) if child not in ("", letter.sender, letter.recipient):
            return not letters.teammate_reads(ctx, letter, child)
    return False


def delivered(ctx: Context, done: Sequence[OutboxEntry]) -> None:
    sent_prompts = []
    for entry in done:
        match entry.purpose:
            case LetterCopy(letter=letter_id):
                letters.delivered(ctx, letter_id)
            case MonthlyPrompt(month=month, participant=participant):
                sent_prompts.append((month, participant))
            case _:
                pass
    prompts.mark_sent_many(ctx, sent_prompts)


def failed(ctx: Context, entry: OutboxEntry, error: DeliveryError) -> None:
    if isinstance(entry.purpose, LetterCopy):
        letters.failed(ctx, entry.purpose.letter, str(error))
