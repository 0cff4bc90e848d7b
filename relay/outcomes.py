"""What the relay does when the outbox reports: the handlers `serve` registers.

A letter delivered is recorded in its history and the audit log; a letter that failed for
good is marked failed and its writer and their moderators are told; a prompt delivered is
marked sent in the month's journal. The worker calls `delivered` under the store's write
lock before it removes the entries, so none of this is lost or repeated by a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from email.headerregistry import Address

from relay.context import Context
from relay.errors import DeliveryError
from relay.moderation import send_notice
from relay.notices import tell_writer
from relay.outbox.entries import LetterCopy, MonthlyPrompt, OutboxEntry
from relay.outbox.worker import Outcomes
from relay.schedule import prompts
from relay.store import now_iso
from relay.store.records import APPROVED, DELIVERED, FAILED, Letter

log = logging.getLogger("relay")


def for_relay(context: Callable[[], Context]) -> Outcomes:
    """The relay's reactions; `context` gives the current one (it changes on reload)."""
    return Outcomes(
        wanted=lambda entry: wanted(context(), entry),
        delivered=lambda done: delivered(context(), done),
        deferred=lambda entry, error: None,  # the worker's log line says all there is
        failed=lambda entry, error: failed(context(), entry, error),
    )


def wanted(ctx: Context, entry: OutboxEntry) -> bool:
    """A letter is sent only while approved: not when it was delivered before a crash let
    its entry be removed."""
    if isinstance(entry.purpose, LetterCopy):
        letter = ctx.store.letter(entry.purpose.letter)
        return letter is not None and letter.status == APPROVED
    return True


def delivered(ctx: Context, done: Sequence[OutboxEntry]) -> None:
    sent_prompts = []
    for entry in done:
        match entry.purpose:
            case LetterCopy(letter=letter_id):
                _letter_delivered(ctx, letter_id)
            case MonthlyPrompt(month=month, participant=participant):
                sent_prompts.append((month, participant))
            case _:
                pass
    prompts.mark_sent_many(ctx, sent_prompts)


def _letter_delivered(ctx: Context, letter_id: int) -> None:
    stamp = now_iso()

    def record(letter: Letter) -> Letter:
        event = {"at": stamp, "event": "delivered"}
        return letter.but(status=DELIVERED, delivered_at=stamp, history=(*letter.history, event))

    letter = ctx.store.update_letter(letter_id, record)
    ctx.store.audit("delivered", letter=letter_id)
    log.info(
        "delivered letter=%d from=%s to=%s",
        letter_id,
        letter.sender_masked,
        letter.recipient_masked,
    )


def failed(ctx: Context, entry: OutboxEntry, error: DeliveryError) -> None:
    if isinstance(entry.purpose, LetterCopy):
        _letter_failed(ctx, entry.purpose.letter, str(error))


def _letter_failed(ctx: Context, letter_id: int, reason: str) -> None:
    stamp = now_iso()

    def record(letter: Letter) -> Letter:
        event = {"at": stamp, "event": "failed"}
        return letter.but(status=FAILED, last_error=reason, history=(*letter.history, event))

    letter = ctx.store.update_letter(letter_id, record)
    ctx.store.audit("failed", letter=letter_id, error=reason)
    tell_about_failure(ctx, letter, reason)


def tell_about_failure(ctx: Context, letter: Letter, reason: str) -> None:
    """The writer's moderators get the details; the writer a kind note in their language."""
    writer = ctx.store.participant(letter.sender)
    pal = ctx.store.participant(letter.recipient)
    if writer is not None and pal is not None:
        tell_writer(
            ctx,
            writer,
            "not_delivered",
            f"not-delivered-{letter.id}",
            pal=pal,
            pal_name=pal.name,
            subject=letter.subject,
        )
    library = ctx.config.library(letter.sender_library)
    for index, moderator in enumerate(library.moderators if library else ()):
        subject, text = ctx.templates.email(
            moderator.language,
            "delivery_failed",
            staff_name=moderator.name,
            letter_id=letter.id,
            subject=letter.subject,
            sender_masked=letter.sender_masked,
            recipient_masked=letter.recipient_masked,
            reason=reason,
            program_name=ctx.config.relay.program_name,
        )
        send_notice(
            ctx,
            f"failed-{letter.id}-{index}",
            Address(moderator.name, addr_spec=moderator.email),
            subject,
            text,
            kind="failure-notice",
            letter=letter.id,
        )
