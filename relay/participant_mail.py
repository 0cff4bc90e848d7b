"""Participants' commands by email: help, pause, resume, stop, export and erase, to help@ or
program@.

Who may ask: the message's From line is the enrolled address of a participant or the address
of a participant's guardian. Siblings at one family address, or a guardian of two, name one
by first name after the word ("pause Maya"); without it they are asked which. Words after
the command word that are no first name of theirs ("Stop sending prompts", a child's reply
to a monthly topic, or "pause Leo" from Maya's own address) make a sentence, not a command:
nothing changes, the writer gets the help text. Anyone else,
and automatic mail, is left to `own_mail` (program@'s once-a-day help): `handle_command_mail`
then returns False. Words are read by `relay.commands`; an unknown word gets the help text.

Trust: pause, resume, stop and export change a child's participation or send their data, so
they are carried out at once only when the message's authentication verdict vouches for its
From address (or on a closed test network, `[authentication] required = false`); erase cannot
be undone and always waits for a confirmation (`ALWAYS_CONFIRMED`). Otherwise the enrolled
address, and never another, gets a request to confirm from a single-use `confirm+<token>@`
address (128 random bits, kept in the store and named in the audit only by its SHA-256, valid
`[commands] confirm_days`, checked at RCPT); a reply to it whose From line is that address,
with any text, carries the command out, while that address is still the participant's or
their guardian's (a replaced guardian's pending commands are forgotten, and any left are
refused as "other-sender"). A From line that is neither vouched for nor the
envelope sender looks forged: its help and "which one?" questions are not answered.

What each does: pause → `participants.pause(reason="asked")`; resume undoes only a pause
asked for (`pause_reason == "asked"`), any other pause is the library's to lift; stop →
`participants.leave`, and the moderators of the pal's library (to find their patron a new
pal) and of the participant's own library are told; the pal and the pal's family are not.
erase → `relay.rights.erase`, which tells both libraries' moderators; nothing is sent to the
person.
export → the zip of `relay.rights.export` as the answer's attachment, at most
`EXPORT_MAIL_MAX_BYTES` (larger: the library hands it over) and once a day to one address
(a second ask is told so); it is audited `exported` only once the answer is queued.
A command that changes nothing (stop after stop) gets a kind answer.

Answers: in the participant's language, from program@, threaded (In-Reply-To), marked
`auto-replied`, with the null envelope sender; at most `[commands] answers_per_day` to one
address a day (counted under a keyed digest of the address; beyond it a command still acts,
silently). Each command is audited once (`command`, with ids, never an address) and logged
with ids and masked addresses only.

Cost: finding whose guardian an address is reads every participant shard, so it is done
only for a message whose first own line (or subject) is a command word; other mail from an
address no participant is enrolled with goes straight to `own_mail` (a guardian writing
something else gets program@'s general help, which names the words). A guardian index in the
store would make it one lookup.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

from relay import guard, notices, participants, rights
from relay.commands import ACTIONS, Action, Asked, action_named, read_command
from relay.context import Context
from relay.decisions import fold
from relay.errors import UserError
from relay.mail_reading import address_digest, body_text, envelope, from_address, message_id
from relay.outbox import Notice, door
from relay.route import is_automatic
from relay.scrub import parse
from relay.spool import Incoming
from relay.store import now_iso
from relay.store.records import ACTIVE, LEFT, PAUSED, Participant, PendingCommand

log = logging.getLogger("relay")

CONFIRM_PREFIX = "confirm+"
# Every command but help may wait for a confirmation; `erase` always does (it cannot be
# undone), however well the sender is known.
ALWAYS_CONFIRMED: frozenset[Action] = frozenset({"erase"})
# An export larger than this is not emailed: the library hands it over instead. Base64 makes
# it about 1.37 times larger in the mail, which then still fits a common 10 MiB limit.
EXPORT_MAIL_MAX_BYTES = 7_500_000
PARTICIPANT, GUARDIAN = "participant", "guardian"


@dataclass(frozen=True)
class Writer:
    """An address that wrote a command, and the participants it may speak for."""

    address: str
    participants: tuple[Participant, ...]

    def asked_by(self, participant: Participant) -> str:
        return PARTICIPANT if participant.email == self.address else GUARDIAN

    def chosen(self, name: str) -> list[Participant]:
        """The participants a command is for: all of them, or those a first name (or whole
        name) names, which may be none: a name is never read as someone else's."""
        if not name:
            return list(self.participants)
        return [p for p in self.participants if name in (fold(p.name), fold(p.name).split()[0])]


# --- reading the message -------------------------------------------------------------------


def _writer(ctx: Context, address: str, *, guardians: bool) -> Writer | None:
    """Whom an address speaks for: participants enrolled with it, and (`guardians`, which
    reads every participant) those it is the guardian of."""
    known = [p for p in ctx.store.by_email(address) if ctx.config.library(p.library)]
    everyone = ctx.store.participants() if guardians else []
    guarded = [
        p
        for p in everyone
        if p.guardian == address and ctx.config.library(p.library) and p not in known
    ]
    found = known + guarded
    return Writer(address, tuple(found)) if found else None


# --- commands to help@ and program@ --------------------------------------------------------


def handle_command_mail(ctx: Context, item_id: str, raw: bytes, incoming: Incoming) -> bool:
    """Read and carry out (or ask to confirm) a participant's command; False when the mail
    is not a participant's or guardian's (automatic, or from anyone else)."""
    message = parse(raw)
    if is_automatic(message, incoming.mail_from):
        return False
    address = from_address(message)
    asked = read_command(str(message.get("Subject", "") or ""), body_text(message), _words(ctx))
    # Guardians are looked for only when a command word was written (see "Cost" above).
    writer = _writer(ctx, address, guardians=asked is not None) if address else None
    if writer is None:
        return False
    if asked is not None and asked.name and not writer.chosen(asked.name):
        # "Stop sending prompts", "Pause it please": the words after the command word name
        # nobody this address speaks for, so this is a sentence, not a command.
        asked = None
    vouched = not ctx.config.authentication.required or incoming.verdict.vouches_for(address)
    forged = not vouched and envelope(incoming.mail_from) != address
    reply_to = message_id(message)
    chosen = writer.chosen(asked.name if asked else "")
    if asked is None or asked.action == "help" or len(chosen) != 1:
        outcome = "help" if asked is None or asked.action == "help" else "which-one"
        _audit(ctx, item_id, asked, writer, chosen, outcome, vouched)
        if not forged:
            _answer_question(ctx, item_id, writer, asked, reply_to)
        return True
    (participant,) = chosen
    if vouched and asked.action not in ALWAYS_CONFIRMED:
        asked_by = writer.asked_by(participant)
        done = _carry_out(ctx, item_id, asked.action, participant, asked_by, writer.address)
        _audit_and_answer(
            ctx,
            item_id,
            writer.address,
            participant,
            reply_to,
            asked.action,
            done,
            lambda outcome: _audit(ctx, item_id, asked, writer, chosen, outcome, vouched),
        )
        return True
    _audit(ctx, item_id, asked, writer, chosen, "confirmation-asked", vouched)
    _ask_to_confirm(ctx, item_id, writer, asked.action, participant, reply_to)
    return True


def _words(ctx: Context) -> dict[str, dict[str, list[str]]]:
    return ctx.templates.command_words()


def _own_words(ctx: Context, language: str) -> dict[str, str]:
    """The first word of each command in a language, as the answers suggest them."""
    words = _words(ctx)
    own = words.get(language.split("-")[0]) or words.get("en", {})
    return {action: (own.get(action) or [action])[0] for action in ACTIONS}


def _answer_question(
    ctx: Context, item_id: str, writer: Writer, asked: Asked | None, reply_to: str | None
) -> None:
    """The help text, or (several participants, none named) which one the command is for."""
    first = writer.participants[0]
    everyone = [
        {"name": p.name, "status": p.status, "pause_reason": p.pause_reason}
        for p in writer.participants
    ]
    if asked is None or asked.action == "help":
        _answer(ctx, item_id, writer.address, first, "command_help", reply_to, people=everyone)
    else:
        _answer(
            ctx,
            item_id,
            writer.address,
            first,
            "command_choose",
            reply_to,
            action=asked.action,
            people=everyone,
        )


def _audit(
    ctx: Context,
    item_id: str,
    asked: Asked | None,
    writer: Writer,
    chosen: Iterable[Participant],
    outcome: str,
    vouched: bool,
) -> None:
    chosen = list(chosen)
    ids = [p.id for p in chosen]
    details: dict[str, Any] = {
        "action": asked.action if asked else "unknown",
        "outcome": outcome,
        "verified": vouched,
        "spool": item_id,
    }
    if len(ids) == 1:
        details |= {"participant": ids[0], "asked_by": writer.asked_by(chosen[0])}
    else:
        details["participants"] = ids
    ctx.store.audit("command", **details)
    log.info(
        "command action=%s outcome=%s participants=%s verified=%s spool=%s",
        details["action"],
        outcome,
        ",".join(ids) or "-",
        vouched,
        item_id,
    )


# --- carrying a command out ----------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """What a command did: a word the answer's template explains, and for an export the zip."""

    outcome: str
    export: bytes = b""


def _carry_out(
    ctx: Context,
    item_id: str,
    action: Action,
    participant: Participant,
    asked_by: str,
    address: str,
) -> Done:
    """Do what was asked, with the record as it is now; `address` asked (or confirmed)."""
    current = ctx.store.participant(participant.id) or participant
    if action == "export":
        if ctx.spool.queued_or_sent(_export_name(ctx, current, address)):
            return Done("export-already-sent")
        # Audited as exported only once the answer carrying it is queued (`_answer_done`).
        data = rights.export(ctx, current, via="email", handed=False)
        too_large = len(data) > EXPORT_MAIL_MAX_BYTES
        return Done("export-too-large") if too_large else Done("exported", data)
    if action == "erase":
        _erase(ctx, item_id, current, asked_by)
        return Done("erased")
    return Done(_change(ctx, item_id, action, current, asked_by))


def _change(ctx: Context, item_id: str, action: Action, current: Participant, asked_by: str) -> str:
    """Pause, resume or stop; the outcome, a word the answer's template explains."""
    if action == "pause":
        if current.status == LEFT:
            return "has-left"
        if current.status == PAUSED:
            return "already-paused"
        participants.pause(ctx, current, via="email", reason="asked")
        return "paused"
    if action == "resume":
        if current.status == LEFT:
            return "has-left"
        if current.status == ACTIVE:
            return "not-paused"
        if current.pause_reason != "asked":
            return "paused-by-library"
        participants.resume(ctx, current, via="email")
        return "resumed"
    if current.status == LEFT:
        return "already-left"
    participants.leave(ctx, current, via="email")
    _tell_libraries(ctx, item_id, current, asked_by)
    return "left"


def _erase(ctx: Context, item_id: str, person: Participant, asked_by: str) -> None:
    """Erase everything about them; `relay.rights.erase` tells both libraries' moderators.
    Nothing is sent to the person: the confirmation request said so."""
    rights.erase(ctx, person, via="email", asked_by=asked_by)


def _tell_libraries(ctx: Context, item_id: str, leaver: Participant, asked_by: str) -> None:
    """Both libraries' moderators learn that a participant left: the pal's library to find
    their patron a new pal (never the pal or the pal's family), the participant's own."""
    pals = [p for p in (ctx.store.participant(i) for i in leaver.pals) if p is not None]
    own = ctx.config.library(leaver.library)
    notices.tell_moderators(
        ctx,
        leaver.library,
        "command_patron_left",
        f"left-{item_id}-{leaver.id}-own",
        private=guard.addresses_of(pals),
        name=leaver.name,
        masked=leaver.masked,
        asked_by=asked_by,
        pal_names=[p.name for p in pals],
    )
    for pal in pals:
        notices.tell_moderators(
            ctx,
            pal.library,
            "command_pal_left",
            f"left-{item_id}-{leaver.id}-pal-{pal.id}",
            private=guard.addresses_of([leaver]),
            name=leaver.name,
            masked=leaver.masked,
            from_library=own.name if own else leaver.library,
            pal_name=pal.name,
            pal_masked=pal.masked,
        )


# --- confirming a command the verdict did not vouch for -------------------------------------


def _ask_to_confirm(
    ctx: Context,
    item_id: str,
    writer: Writer,
    action: Action,
    participant: Participant,
    reply_to: str | None,
) -> None:
    token = secrets.token_hex(16)  # 128 bits
    days = ctx.config.commands.confirm_days
    ctx.store.record_pending_command(
        PendingCommand(
            token=token,
            action=action,
            participant=participant.id,
            address=writer.address,
            asked_by=writer.asked_by(participant),
            expires=time.time() + days * 86400,
        )
    )
    confirm = Address(
        ctx.config.relay.program_name,
        addr_spec=f"{CONFIRM_PREFIX}{token}@{ctx.config.relay.domain}",
    )
    _answer(
        ctx,
        item_id,
        writer.address,
        participant,
        "command_confirm",
        reply_to,
        sender=confirm,
        action=action,
        confirm_days=int(days),
    )


def handle_confirmation(
    ctx: Context, item_id: str, raw: bytes, incoming: Incoming, local: str
) -> None:
    """A reply to a request to confirm: the pending command is carried out once, when the
    reply comes from the address the request went to, that address is still the
    participant's or their guardian's, and the reply is not automatic."""
    message = parse(raw)
    token = local.lower().removeprefix(CONFIRM_PREFIX)
    pending = ctx.store.pending_command(token)
    participant = ctx.store.participant(pending.participant) if pending is not None else None
    reason = ""
    if is_automatic(message, incoming.mail_from):
        reason = "automatic"  # an out-of-office reply confirms nothing
    elif pending is None or pending.used or pending.expires < time.time():
        reason = "token-not-usable"
    elif from_address(message) != pending.address:
        # The From line the person's mail program wrote, as every other reply is read; an
        # envelope sender alone is what anyone may set.
        reason = "other-sender"
    elif participant is not None and pending.address not in (
        participant.email,
        participant.guardian,
    ):
        # Asked for by an address that is no longer theirs (a replaced guardian).
        reason = "other-sender"
    elif ctx.store.use_pending_command(token, now_iso()) is None:
        reason = "token-not-usable"
    action = action_named(pending.action) if pending is not None else None
    if reason or pending is None or action is None or participant is None:
        reason = reason or "token-not-usable"
        # The audit names the token as the store does, by its hash: a copy of the log
        # confirms nothing.
        hashed = hashlib.sha256(token.encode()).hexdigest()[:8]
        ctx.store.audit("command-not-confirmed", reason=reason, token=hashed, spool=item_id)
        log.info("command not confirmed reason=%s spool=%s", reason, item_id)
        return
    asked_by = pending.asked_by

    def audit(outcome: str) -> None:
        ctx.store.audit(
            "command",
            action=action,
            outcome=outcome,
            participant=participant.id,
            asked_by=asked_by,
            verified=False,
            confirmed=True,
            spool=item_id,
        )
        log.info(
            "command confirmed action=%s outcome=%s participant=%s spool=%s",
            action,
            outcome,
            participant.id,
            item_id,
        )

    done = _carry_out(ctx, item_id, action, participant, asked_by, pending.address)
    reply_to = message_id(message)
    _audit_and_answer(ctx, item_id, pending.address, participant, reply_to, action, done, audit)


# --- answers -------------------------------------------------------------------------------


def _audit_and_answer(
    ctx: Context,
    item_id: str,
    address: str,
    participant: Participant,
    reply_to: str | None,
    action: Action,
    done: Done,
    audit: Callable[[str], None],
) -> None:
    """Audit what a command did, then answer: the audit holds it before the writer reads
    the answer. An export is the answer itself, so it is audited once that is queued."""
    if done.export:
        audit(_answer_done(ctx, item_id, address, participant, reply_to, action, done).outcome)
        return
    audit(done.outcome)
    _answer_done(ctx, item_id, address, participant, reply_to, action, done)


def _answer_done(
    ctx: Context,
    item_id: str,
    address: str,
    participant: Participant,
    reply_to: str | None,
    action: Action,
    done: Done,
) -> Done:
    """What the command did, to the address that asked; an erasure is not answered. Returns
    what was done in the end: an export the answer could not carry was not exported."""
    if done.outcome == "erased":
        return done
    attachment = None
    if done.export:
        attachment = (f"{ctx.config.relay.domain}-{participant.name}-data.zip", done.export)
    sent = _answer(
        ctx,
        item_id,
        address,
        participant,
        "command_done",
        reply_to,
        attachment=attachment,
        action=action,
        outcome=done.outcome,
    )
    if not done.export:
        return done
    if not sent:
        return Done("export-not-sent")
    rights.export_handed_over(ctx, participant, via="email")
    return Done("exported")


def _export_name(ctx: Context, participant: Participant, address: str) -> str:
    """The outbox name of an export by email: one a day to one address for one participant
    (the outbox keeps the names of sent messages for two weeks)."""
    day = datetime.now(UTC).date().isoformat()
    return f"export-{participant.id}-{address_digest(ctx.secret, address)}-{day}"


def _answer(
    ctx: Context,
    item_id: str,
    address: str,
    participant: Participant,
    template: str,
    reply_to: str | None,
    *,
    sender: Address | None = None,
    attachment: tuple[str, bytes] | None = None,
    **values: Any,
) -> bool:
    """One answer to an enrolled or guardian address, in the participant's language; False
    when the address had its answers for the day (the command, if any, still acted)."""
    day = datetime.now(UTC).date()
    who = address_digest(ctx.secret, address)
    name = f"command-{item_id}-{who}-{participant.id}"  # fixed: a replay sends nothing twice
    if attachment is not None:
        # An export is the answer itself, so it is not held back by the day's limit; it goes
        # at most once a day to one address for one participant (`_carry_out` checks first).
        name = _export_name(ctx, participant, address)
    library = ctx.config.library(participant.library)
    pals = [ctx.store.participant(i) for i in participant.pals]

    def send() -> bool:
        if ctx.spool.queued_or_sent(name):
            return True
        count = ctx.store.command_answers(who, day)
        if count >= ctx.config.commands.answers_per_day and attachment is None:
            log.info("command not answered (daily limit) spool=%s kind=%s", item_id, template)
            return False
        subject, body = ctx.templates.email(
            participant.language,
            template,
            name=participant.name,
            library_name=library.name if library else participant.library,
            program_name=ctx.config.relay.program_name,
            help_address=f"help@{ctx.config.relay.domain}",
            words=_own_words(ctx, participant.language),
            **values,
        )
        body = f"{body.rstrip()}\n\n{notices.privacy_line(ctx, participant.language)}\n"
        message = door.program_message(
            ctx,
            Address("", addr_spec=address),
            subject,
            body,
            sender=sender,
            auto="auto-replied",
            in_reply_to=reply_to,
        )
        if attachment is not None:
            message = _with_zip(message, *attachment)
        try:
            door.queue(
                ctx,
                name,
                message,
                Notice(template),
                to=address,
                private=guard.addresses_of(pals),
                sender="",  # the null sender: a bounce of this answer must not come back
            )
        except UserError as error:  # the leak guard stopped it
            log.warning("command answer not sent spool=%s: %s", item_id, error)
            return False
        ctx.store.set_command_answers(who, day, count + 1)
        return True

    return ctx.store.exclusively(send)


def _with_zip(message: bytes, filename: str, data: bytes) -> bytes:
    """The answer with a zip file attached (an export: each letter in it was searched by the
    leak guard when it was made, as the guard cannot read inside a zip)."""
    composed = email.message_from_bytes(message, policy=email.policy.SMTP)
    assert isinstance(composed, EmailMessage)
    composed.add_attachment(data, maintype="application", subtype="zip", filename=filename)
    return composed.as_bytes()
