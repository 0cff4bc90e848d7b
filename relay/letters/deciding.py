"""A moderator's decision on a held letter: approve (perhaps edited or with what is flagged
removed), reject, not yet; and, before deciding, taking one file out of it.

The same functions serve the command line, email replies and the dashboard (`via` says
which). Only a moderator of the writer's library decides. An approval is composed and
leak-guarded *before* it is recorded, so a letter that cannot be built is never reported
as approved; the decision is on disk before the outbox entries are written, and
`delivering.reconcile` (run continuously by `serve`) queues any approved letter whose
entries a crash lost.
"""

from __future__ import annotations

from dataclasses import replace

from relay import compose, notices
from relay.config import Library, Staff
from relay.context import Context
from relay.errors import InvalidField, NotAllowed, NotFound, UserError
from relay.faults import crash_point
from relay.letters import changes, delivering, holding, lifecycle, redacting, versions
from relay.scrub import ScrubbedLetter
from relay.store import now_iso
from relay.store.records import ACTIVE, LEFT, Letter, Participant


def _letter(ctx: Context, letter_id: int) -> Letter:
    letter = ctx.store.letter(letter_id)
    if letter is None:
        raise NotFound(f"letter {letter_id} not found")
    return letter


def moderator_of(ctx: Context, letter: Letter, by: str) -> tuple[Library, Staff]:
    """The writer's library and the moderator deciding for it, or NotAllowed."""
    library = ctx.config.library(letter.sender_library)
    member = library.staff_member(by) if library else None
    if library is None or member is None or not member.is_moderator:
        raise NotAllowed(
            f"{by} is not a moderator of library {letter.sender_library!r}, "
            f"which decides on letter {letter.id}"
        )
    return library, member


class PalAway(UserError):
    """An approval not carried out: the pal (or the writer) is paused, has left, or has no
    guardian's consent yet (`why`: "paused", "left" or "no-consent").

    The letter stays held, which serves staff best: nothing is lost, the moderator can
    approve it again once the participant is resumed (`participants resume`) or their
    guardian has consented, or reject it; the reason is in the letter's timeline
    ("kept-on-hold", `not_sent`)."""

    def __init__(self, letter: Letter, away: Participant, role: str, why: str = "") -> None:
        why = why or away.status
        state, until = _AWAY_WORDS[why]
        super().__init__(
            f"letter {letter.id} was not sent: the {role}, {away.name}, {state}; it stays "
            f"held (approve it again once {until.format(name=away.name)}, or reject it)"
        )
        self.letter = letter
        self.away = away
        self.role = role
        self.why = why


# Why a participant keeps a letter from going, and when it can go.
_AWAY_WORDS = {
    "paused": ("is paused", "{name} is resumed"),
    "left": ("has left the program", "{name} is resumed"),
    "no-consent": (
        "has no guardian's consent yet",
        "the guardian of {name} has consented",
    ),
}


class Changed(UserError):
    """The letter's changes were rewritten while an approval was being prepared."""

    def __init__(self, letter_id: int) -> None:
        super().__init__(
            f"letter {letter_id} was changed while you were approving it; look at it again"
        )


def approve(
    ctx: Context,
    letter_id: int,
    by: str,
    *,
    via: str = "cli",
    edited_text: str | None = None,
    redact: bool = False,
) -> Letter:
    """Approve a held letter; with `edited_text`, deliver that text (and an HTML part built
    from it) instead; with `redact`, with every identifying detail flagged in it removed.

    Not carried out (`PalAway`, the letter stays held) when the pal or the writer is no
    longer active or has no guardian's consent yet; the moderator, and a writer whose pal
    is away, are told why.
    """
    letter = _letter(ctx, letter_id)
    _library, member = moderator_of(ctx, letter, by)
    if not lifecycle.allowed(letter, "approved"):
        raise lifecycle.NotNow(letter, "approved")
    _stop_if_away(ctx, letter, member, via)
    bodies = _changed_bodies(ctx, letter, edited_text, redact=redact)
    recorded = changes.load(ctx, letter_id)
    if bodies is not None or recorded.bodies is not None:
        recorded = _keep_bodies(ctx, letter_id, bodies)  # on disk before the approval
    decision = {
        "edited_by": member.email if bodies is not None else "",
        "decided_by": member.email,
        "decided_at": now_iso(),
        "out_message_id": compose.letter_message_id(ctx.secret, letter_id, ctx.config.relay.domain),
    }
    # Built and guarded before the decision is recorded.
    entries = delivering.deliverable(ctx, letter.but(**decision))

    def decided(current: Letter) -> Letter:
        if changes.load(ctx, letter_id).revision != recorded.revision:
            raise Changed(letter_id)  # a file removed meanwhile: what was built is stale
        return current.but(**decision)

    details: dict[str, lifecycle.Detail] = {"edited": edited_text is not None}
    if redact and bodies is not None:
        details["redacted"] = bodies.redacted
    approved = lifecycle.apply(
        ctx, letter_id, "approved", moderator=member, via=via, details=details, change=decided
    )
    crash_point("approve-after-decision")
    delivering.queue(ctx, entries)
    return approved


def _keep_bodies(ctx: Context, letter_id: int, bodies: changes.Bodies | None) -> changes.Changes:
    """Write the bodies an approval will deliver, under the store's lock and only while the
    letter is held, so a second moderator's edit cannot replace what was approved."""
    kept: list[changes.Changes] = []

    def keep(current: Letter) -> Letter:
        if not lifecycle.allowed(current, "approved"):
            raise lifecycle.NotNow(current, "approved")
        recorded = changes.load(ctx, letter_id)
        kept.append(changes.save(ctx, letter_id, replace(recorded, bodies=bodies)))
        return current

    ctx.store.update_letter(letter_id, keep)
    return kept[0]


def edited_version(ctx: Context, letter_id: int, by: str, edited_text: str) -> ScrubbedLetter:
    """What approving with `edited_text` would deliver (its HTML part rebuilt from the
    text, pictures kept), for the moderator to look at first; nothing is written."""
    letter = _letter(ctx, letter_id)
    moderator_of(ctx, letter, by)
    sender = _participant(ctx, letter.sender)
    bodies = _changed_bodies(ctx, letter, edited_text, redact=False)
    current = versions.content(ctx, letter.but(edited_by=""), sender)
    return changes.applied(current, changes.Changes(bodies=bodies), with_bodies=True)


def _changed_bodies(
    ctx: Context, letter: Letter, edited_text: str | None, *, redact: bool
) -> changes.Bodies | None:
    """The subject and bodies a moderator's edit or redaction makes; None for neither."""
    if edited_text is None and not redact:
        return None
    sender = _participant(ctx, letter.sender)
    current = versions.content(ctx, letter.but(edited_by=""), sender)
    if edited_text is not None:
        rebuilt = (
            changes.html_from_text(edited_text, current.attachments)
            if current.html is not None
            else None
        )
        current = replace(current, text=edited_text, html=rebuilt)
    counts: dict[str, int] = {}
    if redact:
        # The surnames learned so far, and those this letter was flagged for at hold (its
        # own display name may have been the only source).
        surnames = (
            *versions.policy(ctx, sender).surnames,
            *{flag.text for flag in letter.flags if flag.kind == "surname"},
        )
        done = redacting.redact(
            current,
            lambda seen: holding.flags_for(ctx, seen, sender, surnames),
            _mark(ctx, letter),
        )
        current, counts = done.letter, done.counts
    return changes.Bodies(
        subject=current.subject,
        text=current.text,
        html=current.html,
        edited=edited_text is not None,
        redacted=counts,
    )


def _mark(ctx: Context, letter: Letter) -> str:
    """What stands where a detail was removed, in the pal's language."""
    pal = ctx.store.participant(letter.recipient)
    language = pal.language if pal else "en"
    return ctx.templates.render("email", language, "removed_mark.txt").strip() or "[removed]"


def _participant(ctx: Context, participant_id: str) -> Participant:
    participant = ctx.store.participant(participant_id)
    if participant is None:
        raise NotFound(f"participant {participant_id} not found")
    return participant


def _stop_if_away(ctx: Context, letter: Letter, member: Staff, via: str) -> None:
    """Keep the letter held, say so in its timeline and tell its writer, when a pal is away
    (or either has no guardian's consent yet: the writer is not told, the letter waits)."""
    writer = _participant(ctx, letter.sender)
    pal = _participant(ctx, letter.recipient)
    found = _kept_by(writer, pal)
    if found is None:
        return
    away, role, why = found
    lifecycle.apply(
        ctx,
        letter.id,
        "kept-on-hold",
        moderator=member,
        via=via,
        details={"not_sent": f"{role}-{why}"},
    )
    if role == "pal" and why != "no-consent" and writer.status == ACTIVE:
        notices.tell_writer(
            ctx,
            writer,
            "pal_away",
            f"pal-away-{letter.id}",
            pal=pal,
            pal_name=pal.name,
            subject=letter.subject,
            left=pal.status == LEFT,
        )
    raise PalAway(letter, away, role, why)


def _kept_by(writer: Participant, pal: Participant) -> tuple[Participant, str, str] | None:
    """Who keeps a letter from going, and why: a pal or writer away first, then a writer
    or pal whose guardian has not consented (`Participant.may_correspond`)."""
    for who, role in ((pal, "pal"), (writer, "writer")):
        if who.status != ACTIVE:
            return who, role, who.status
    for who, role in ((writer, "writer"), (pal, "pal")):
        if not who.may_correspond:
            return who, role, "no-consent"
    return None


def remove_file(ctx: Context, letter_id: int, by: str, which: str, *, via: str = "cli") -> str:
    """Take one file out of a held letter, by its name or its place in the list (from 1);
    the letter stays held. Returns the file's name, which the audit entry records."""
    letter = _letter(ctx, letter_id)
    _library, member = moderator_of(ctx, letter, by)
    if not lifecycle.allowed(letter, "file-removed"):
        raise lifecycle.NotNow(letter, "file-removed")
    files = versions.content(ctx, letter, _participant(ctx, letter.sender)).attachments
    name = _file_named(letter_id, [a.filename for a in files], which.strip())

    def removed(current: Letter) -> Letter:
        recorded = changes.load(ctx, letter_id)
        if name not in recorded.removed_files:
            names = (*recorded.removed_files, name)
            changes.save(ctx, letter_id, replace(recorded, removed_files=names))
        return current

    lifecycle.apply(
        ctx,
        letter_id,
        "file-removed",
        moderator=member,
        via=via,
        details={"file": name},
        change=removed,
    )
    return name


def _file_named(letter_id: int, names: list[str], which: str) -> str:
    listed = ", ".join(names) if names else "none"
    if which.isdigit():
        if 1 <= int(which) <= len(names):
            return names[int(which) - 1]
        problem = f"letter {letter_id} has {len(names)} files ({listed}); no file number {which}"
        raise InvalidField("file", problem)
    for name in names:
        if name.lower() == which.lower():
            return name
    raise InvalidField("file", f"letter {letter_id} has no file {which!r} (its files: {listed})")


def reject(ctx: Context, letter_id: int, by: str, reason: str, *, via: str = "cli") -> Letter:
    if not reason.strip():
        raise UserError("a rejection needs a reason; it is sent to the writer")
    _library, member = moderator_of(ctx, _letter(ctx, letter_id), by)
    stamp = now_iso()
    rejected = lifecycle.apply(
        ctx,
        letter_id,
        "rejected",
        moderator=member,
        via=via,
        details={"reason": reason},
        change=lambda current: current.but(
            decided_by=member.email, decided_at=stamp, reason=reason.strip()
        ),
    )
    _tell_writer_rejected(ctx, rejected)
    return rejected


def _tell_writer_rejected(ctx: Context, letter: Letter) -> None:
    sender = ctx.store.participant(letter.sender)
    recipient = ctx.store.participant(letter.recipient)
    if sender is None or recipient is None:
        return
    notices.tell_writer(
        ctx,
        sender,
        "rejected",
        f"rejected-{letter.id}",
        pal=recipient,
        pal_name=recipient.name,
        subject=letter.subject,
        reason=letter.reason,
    )


def keep_holding(ctx: Context, letter_id: int, by: str, *, via: str = "cli") -> Letter:
    """A moderator's "not yet": recorded, the letter stays in the queue, tokens stay valid."""
    _library, member = moderator_of(ctx, _letter(ctx, letter_id), by)
    return lifecycle.apply(ctx, letter_id, "kept-on-hold", moderator=member, via=via)
