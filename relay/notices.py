"""Messages from the program to people: held-letter notices, writer notices, reminders.

Every notice is composed from templates in the reader's language and queued in the outbox
under a fixed name, so processing a letter again after a crash does not send its notices
twice. A held-letter notice comes from `moderate+<token>@<domain>`: a plain Reply from the
moderator's phone goes back with the token, and nothing else is needed to decide. Tokens are
128-bit values from `secrets`, one per letter and moderator, kept in the store with their
expiry. Notices to writers (patrons, often children) are rate limited per writer and day.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from relay import compose, guard
from relay import quiet as quiet_pairs
from relay.config import Library, Staff
from relay.consent import NO_CONSENT_NOTES
from relay.context import Context
from relay.outbox import Notice, door
from relay.screen import Flag
from relay.scrub import names
from relay.scrub.private import REDACTED
from relay.spool import new_id
from relay.store.records import Letter, Participant

if TYPE_CHECKING:  # the letter passes its files in; notices never make previews themselves
    from relay.letters.previews import DeliveredFile

log = logging.getLogger("relay")

REPLY_PREFIX = "moderate+"
_NOTICE_ID = re.compile(r"^<notice-(\d+)\.([0-9a-f]{12})@([^>]+)>$")


# --- held-letter notices to moderators -----------------------------------------------------


def _sign(ctx: Context, text: str) -> str:
    return hmac.new(ctx.secret, text.encode(), hashlib.sha256).hexdigest()[:12]


def notice_message_id(ctx: Context, letter_id: int, token: str) -> str:
    return f"<notice-{letter_id}.{_sign(ctx, token)}@{ctx.config.relay.domain}>"


def letter_of_notice_id(ctx: Context, message_id: str) -> int | None:
    match = _NOTICE_ID.match(message_id.strip())
    if not match or match.group(3).lower() != ctx.config.relay.domain:
        return None
    return int(match.group(1))


def moderators_to_notify(ctx: Context, letter: Letter) -> list[tuple[Library, Staff]]:
    libraries = [letter.sender_library]
    if ctx.config.moderation.notify_partner_moderators:
        libraries.append(letter.recipient_library)
    found = []
    for library_id in libraries:
        library = ctx.config.library(library_id)
        if library is not None:
            found += [(library, member) for member in library.moderators]
    return found


def _token_for(ctx: Context, letter: Letter, library: Library, member: Staff) -> str:
    """One token per letter and moderator; the same one when asked again (crash replay)."""
    return ctx.store.notice_token(
        letter.id,
        member.email,
        library=library.id,
        expires=time.time() + ctx.config.moderation.token_days * 86400,
        new_token=lambda: secrets.token_hex(16),  # 128 bits
    )


def _highlighted(text: str, flags: Iterable[Flag]) -> list[tuple[str, str | None]]:
    """Split the text into (piece, flag kind or None) so templates can mark flagged parts."""
    spans = sorted(
        (f.start, f.end, str(f.kind)) for f in flags if f.part == "text" and 0 <= f.start < f.end
    )
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for start, end, kind in spans:
        if start < position:
            continue  # overlapping flags: the first one marks the text
        pieces += [(text[position:start], None), (text[start:end], kind)]
        position = end
    pieces.append((text[position:], None))
    return [(piece, kind) for piece, kind in pieces if piece]


def notify_moderators(
    ctx: Context, letter: Letter, text: str, files: Sequence[DeliveredFile] = ()
) -> int:
    """Queue a notice to each moderator who may decide on `letter`; returns how many.

    `files` are the letter's files as delivered: each is listed, and the HTML part shows
    the previews among them as pictures of its own (`cid:`), never the files themselves.
    """
    sender = ctx.store.participant(letter.sender)
    recipient = ctx.store.participant(letter.recipient)
    pictures = _notice_pictures(ctx, letter, files)
    cids = {number: picture.cid for number, picture in pictures.items()}
    queued = 0
    for library, member in moderators_to_notify(ctx, letter):
        token = _token_for(ctx, letter, library, member)
        values = _notice_values(ctx, letter, text, member, sender, recipient)
        values |= {"files": list(files), "cids": cids}
        if library.id != letter.sender_library:
            values |= _without_surname(letter, text, sender)
        subject, body = ctx.templates.email(member.language, "held_notice", **values)
        html = ctx.templates.render("email", member.language, "held_notice.html", **values)
        message = door.program_message(
            ctx,
            Address(member.name, addr_spec=member.email),
            subject,
            body,
            sender=Address(
                ctx.config.relay.program_name,
                addr_spec=f"{REPLY_PREFIX}{token}@{ctx.config.relay.domain}",
            ),
            html=html,
            pictures=list(pictures.values()),
            message_id=notice_message_id(ctx, letter.id, token),
        )
        if door.queue(
            ctx,
            f"notice-{letter.id}-{_sign(ctx, member.email)}",
            message,
            Notice("held-notice", letter.id),
            to=member.email,
            private=_other_side(ctx, letter, library),
            what=f"the notice of letter {letter.id}",
        ):
            queued += 1
    return queued


def _notice_pictures(
    ctx: Context, letter: Letter, files: Sequence[DeliveredFile]
) -> dict[int, compose.InlinePicture]:
    """The previews to show in a notice, by file number."""
    pictures = {}
    for file in files:
        if file.preview is not None:
            extension = "png" if file.preview.content_type == "image/png" else "jpg"
            pictures[file.number] = compose.InlinePicture(
                cid=f"preview-{letter.id}-{file.number}@{ctx.config.relay.domain}",
                content_type=file.preview.content_type,
                data=file.preview.data,
                filename=f"preview-{file.number}.{extension}",
            )
    return pictures


def _notice_values(
    ctx: Context,
    letter: Letter,
    text: str,
    member: Staff,
    sender: Participant | None,
    recipient: Participant | None,
) -> dict[str, Any]:
    words = ctx.templates.decision_words()
    own = words.get(member.language.split("-")[0]) or words.get("en", {})
    return {
        "staff_name": member.name,
        "letter": letter,
        "sender_name": sender.name if sender else "?",
        "recipient_name": recipient.name if recipient else "?",
        "sender_library": _library_name(ctx, letter.sender_library),
        "recipient_library": _library_name(ctx, letter.recipient_library),
        "text": text,
        "pieces": _highlighted(text, letter.flags),
        "flags": list(letter.flags),
        "removed": list(letter.removed),
        "notes": [_note_in(ctx, member.language, note) for note in letter.notes],
        "approve_word": (own.get("approve") or ["approve"])[0],
        "reject_word": (own.get("reject") or ["reject"])[0],
        "hold_word": (own.get("hold") or ["hold"])[0],
        "redact_word": (own.get("redact") or ["redact"])[0],
        "token_days": int(ctx.config.moderation.token_days),
        "program_name": ctx.config.relay.program_name,
    }


def _note_in(ctx: Context, language: str, note: str) -> str:
    """A note kept with a letter, in the moderator's language where it has words there."""
    for role, text in NO_CONSENT_NOTES.items():
        if note == text:
            return ctx.templates.render("email", language, "consent_note.txt", role=role).strip()
    return note


def _without_surname(letter: Letter, text: str, sender: Participant | None) -> dict[str, Any]:
    """Notice values for the partner library's moderators, who must not learn the writer's
    surname before anyone approved the letter: it is replaced (learned, or flagged in this
    letter) in the subject, the text, the highlighted pieces and the flags."""
    surnames = {f.text for f in letter.flags if f.kind == "surname"}
    if sender is not None:
        learned = names.surname_values(sender.name, sender.known_names)
        surnames.update(names.typed_values(sender.name, learned))
    values = tuple(surnames)

    def masked(piece: str) -> str:
        return names.mask_names(piece, values, REDACTED) if values else piece

    flags = [
        replace(f, text=REDACTED if f.kind == "surname" else masked(f.text)) for f in letter.flags
    ]
    return {
        "letter": letter.but(subject=masked(letter.subject), flags=tuple(flags)),
        "text": masked(text),
        "pieces": [(masked(piece), kind) for piece, kind in _highlighted(text, letter.flags)],
        "flags": flags,
    }


def _other_side(ctx: Context, letter: Letter, library: Library) -> set[str]:
    """Addresses a moderator of `library` must not see: the other library's participants."""
    other = letter.recipient if library.id == letter.sender_library else letter.sender
    return guard.addresses_of([ctx.store.participant(other)])


def _library_name(ctx: Context, library_id: str) -> str:
    library = ctx.config.library(library_id)
    return library.name if library else library_id


# --- the privacy notice --------------------------------------------------------------------


def privacy_values(ctx: Context, language: str) -> dict[str, Any]:
    """What the privacy notice says, from the configuration: the page (`/privacy`) and the
    email (`privacy.txt`) are written from the same values. `words`: the first word of each
    command in the reader's language (`commands.toml`), as help@ reads them."""
    config = ctx.config
    domain = config.relay.domain
    every = ctx.templates.command_words()
    own = every.get(language.split("-")[0]) or every.get("en", {})
    words = {action: (own.get(action) or [action])[0] for action in PRIVACY_COMMANDS}
    return {
        "program_name": config.relay.program_name,
        "libraries": [library.name for library in config.libraries],
        "originals_days": config.retention.originals_days,
        "letters_months": config.retention.letters_months,
        "left_months": config.retention.left_months,
        "no_consent_months": config.retention.no_consent_months,
        "help_address": f"help@{domain}",
        "program_address": config.program_address,
        "example_address": f"quiet-heron-2841@{domain}",
        "privacy_url": config.privacy_url(language),
        "words": words,
    }


PRIVACY_COMMANDS = ("pause", "resume", "stop", "export", "erase")


def privacy_words(ctx: Context, language: str) -> tuple[str, str]:
    """The privacy notice as an email's (subject, text) in `language` (or English), for a
    message that sends or quotes it."""
    return ctx.templates.email(language, "privacy", **privacy_values(ctx, language))


def privacy_line(ctx: Context, language: str) -> str:
    """The line every patron email ends with: where the privacy notice is."""
    url = ctx.config.privacy_url(language)
    return ctx.templates.render("email", language, "privacy_footer.txt", privacy_url=url).strip()


# --- short answers to staff ----------------------------------------------------------------


def staff_words(ctx: Context, member: Staff, template: str, **values: Any) -> tuple[str, str]:
    """A template's subject and text for one staff member: in their language, addressed by
    name, signed by the program."""
    return ctx.templates.email(
        member.language,
        template,
        staff_name=member.name,
        program_name=ctx.config.relay.program_name,
        **values,
    )


def tell_staff(
    ctx: Context, member: Staff, template: str, *, in_reply_to: str | None, **values: Any
) -> None:
    """A confirmation or an explanation, in answer to a moderator's email."""
    subject, body = staff_words(ctx, member, template, **values)
    message = door.program_message(
        ctx,
        Address(member.name, addr_spec=member.email),
        subject,
        body,
        auto="auto-replied",
        in_reply_to=in_reply_to,
    )
    door.queue(
        ctx, f"staff-{template}-{secrets.token_hex(6)}", message, Notice(template), to=member.email
    )


def tell_coordinators(ctx: Context, item_id: str, template: str, **values: Any) -> int:
    """A notice to every coordinator of every library (the relay's own troubles, which
    belong to no one library); queued once per coordinator under `item_id`."""
    queued = 0
    for library in ctx.config.libraries:
        for index, member in enumerate(library.coordinators):
            subject, body = staff_words(ctx, member, template, **values)
            message = door.program_message(
                ctx, Address(member.name, addr_spec=member.email), subject, body
            )
            door.queue(
                ctx, f"{item_id}-{library.id}-{index}", message, Notice(template), to=member.email
            )
            queued += 1
    return queued


# --- notices to writers --------------------------------------------------------------------


def tell_writer(
    ctx: Context,
    writer: Participant,
    template: str,
    item_id: str,
    *,
    pal: Participant | None = None,
    **values: Any,
) -> bool:
    """A kind note to a patron about their own letter; False when the daily limit is reached.

    The pal's real addresses must not appear in it (the leak guard makes sure). Nothing
    goes to a writer whose guardian has not consented yet (False)."""
    if not writer.may_correspond:
        return False
    day = datetime.now(UTC).date()

    def send() -> bool:
        if ctx.spool.queued_or_sent(item_id):  # queued or sent already: not counted again
            return True
        count = ctx.store.writer_notices(writer.id, day)
        if count >= ctx.config.moderation.notices_per_writer_per_day:
            log.info(
                "writer notice not sent (daily limit) participant=%s kind=%s", writer.id, template
            )
            return False
        library = ctx.config.library(writer.library)
        subject, body = ctx.templates.email(
            writer.language,
            template,
            name=writer.name,
            library_name=library.name if library else writer.library,
            program_name=ctx.config.relay.program_name,
            **values,
        )
        body = f"{body.rstrip()}\n\n{privacy_line(ctx, writer.language)}\n"
        message = door.program_message(
            ctx, Address(writer.name, addr_spec=writer.email), subject, body, auto="auto-replied"
        )
        door.queue(
            ctx,
            item_id,
            message,
            Notice(template),
            to=writer.email,
            private=guard.addresses_of([pal]),
        )
        ctx.store.set_writer_notices(writer.id, day, count + 1)
        return True

    # Checking the outbox, counting and queueing must not interleave with another process.
    return ctx.store.exclusively(send)


def tell_refused_sender(ctx: Context, address: str, subject: str, reply: str) -> None:
    """What an SMTP sender would have read in a bounce, for mail taken from a mailbox."""
    enrolled = ctx.store.by_email(address)
    language = enrolled[0].language if enrolled else "en"
    title, body = ctx.templates.email(
        language,
        "refused",
        subject=subject,
        reply=reply,
        program_name=ctx.config.relay.program_name,
    )
    message = door.program_message(
        ctx,
        Address("", addr_spec=address),
        title,
        body,
        sender=Address("Mail Delivery", addr_spec=f"postmaster@{ctx.config.relay.domain}"),
        auto="auto-replied",
    )
    # The null sender: a bounce of this explanation must not come back to us.
    door.queue(
        ctx, f"refused-{secrets.token_hex(8)}", message, Notice("refusal"), to=address, sender=""
    )


# --- reminders -----------------------------------------------------------------------------


def _waiting(letters: list[Letter], older_than: datetime) -> list[Letter]:
    return [
        letter for letter in letters if datetime.fromisoformat(letter.received_at) <= older_than
    ]


QUIET_EVERY_DAYS = 7  # quiet pairs alone (no letter waiting) bring a reminder this seldom


def send_reminders(
    ctx: Context, now: datetime, *, force: bool = False, library_id: str | None = None
) -> dict[str, tuple[int, int]]:
    """Each library's moderators get one list a day of letters waiting too long, and of
    their library's quiet pairs (relay.quiet).

    Runs every minute inside `serve`; sends at `reminder_hour` local time once a day (and
    catches up later the same day if the relay was down at that hour). Quiet pairs are
    listed in every reminder that goes out; when no letter waits, they alone bring one at
    most every `QUIET_EVERY_DAYS` days (a pair stays quiet for weeks: daily mail about it
    would be noise). `force` sends now whatever there is to list.
    Returns {library id: (letters listed, quiet pairs listed)} for the libraries reminded.
    """
    settings = ctx.config.moderation
    reminded: dict[str, tuple[int, int]] = {}
    cutoff = now - timedelta(hours=settings.remind_after_hours)
    every_quiet: list[quiet_pairs.QuietPair] | None = None  # read once, when a library is due
    for library in ctx.config.libraries:
        if library_id not in (None, library.id):
            continue
        local = now.astimezone(ZoneInfo(library.timezone))
        if not force and (
            local.hour < settings.reminder_hour or ctx.store.reminded_on(library.id) == local.date()
        ):
            continue
        waiting = _waiting(ctx.store.queue(library.id), cutoff)
        ctx.store.set_reminded_on(library.id, local.date())
        if every_quiet is None:
            every_quiet = _quiet_pairs(ctx, now)
        quiet = [
            q.facing(library.id)
            for q in every_quiet
            if library.id in (q.first.library, q.second.library)
        ]
        listed = ctx.store.quiet_listed_on(library.id)
        quiet_due = force or listed is None or (local.date() - listed).days >= QUIET_EVERY_DAYS
        if not waiting and not (quiet and quiet_due):
            continue
        _remind(ctx, library, waiting, quiet, now, force=force)
        if quiet:
            ctx.store.set_quiet_listed_on(library.id, local.date())
        ctx.store.audit(
            "reminded", library=library.id, letters=[x.id for x in waiting], quiet=len(quiet)
        )
        log.info("reminded library=%s letters=%d quiet=%d", library.id, len(waiting), len(quiet))
        reminded[library.id] = (len(waiting), len(quiet))
    _tell_waiting_writers(ctx, now)
    return reminded


def _quiet_pairs(ctx: Context, now: datetime) -> list[quiet_pairs.QuietPair]:
    """Every quiet pair; none when they cannot be read: the letters waiting still go out."""
    try:
        return quiet_pairs.read(ctx, now)
    except Exception:
        log.exception("quiet pairs could not be read for the reminders; listing none")
        return []


def _quiet_lines(pairs: list[quiet_pairs.QuietPair], clock: ZoneInfo) -> list[dict[str, Any]]:
    """What a reminder says of each quiet pair: ids, first names and masked addresses only."""
    return [
        {
            "first_name": q.first.name,
            "first_id": q.first.id,
            "first_masked": q.first.masked,
            "second_name": q.second.name,
            "second_id": q.second.id,
            "second_masked": q.second.masked,
            "weeks": q.weeks,
            "owing": [p.name for p in q.owing],
            "nudged": q.nudged_at.astimezone(clock).date().isoformat() if q.nudged_at else "",
        }
        for q in pairs
    ]


def _remind(
    ctx: Context,
    library: Library,
    waiting: list[Letter],
    quiet: list[quiet_pairs.QuietPair],
    now: datetime,
    *,
    force: bool,
) -> None:
    local = now.astimezone(ZoneInfo(library.timezone))
    for member in library.moderators:
        subject, body = ctx.templates.email(
            member.language,
            "reminder",
            staff_name=member.name,
            letters=waiting,
            quiet=_quiet_lines(quiet, ZoneInfo(library.timezone)),
            quiet_weeks=ctx.config.matching.quiet_weeks,
            quiet_url=f"{ctx.config.public_url}/quiet",
            library_name=library.name,
            program_name=ctx.config.relay.program_name,
        )
        message = door.program_message(
            ctx, Address(member.name, addr_spec=member.email), subject, body, date=now
        )
        item = f"reminder-{library.id}-{local.date().isoformat()}-{_sign(ctx, member.email)}"
        if force:  # asked for now: a new message even if today's went out already
            item += f"-{new_id()}"
        # The other library's participants' real addresses must not appear (leak guard).
        private = guard.addresses_of(p for q in quiet for p in (q.first, q.second))
        door.queue(ctx, item, message, Notice("reminder"), to=member.email, private=private)


def _tell_waiting_writers(ctx: Context, now: datetime) -> None:
    hours = ctx.config.moderation.tell_writer_after_hours
    if hours <= 0:
        return
    for letter in _waiting(ctx.store.queue(), now - timedelta(hours=hours)):
        if ctx.store.told_writer_waiting(letter.id):
            continue
        writer = ctx.store.participant(letter.sender)
        pal = ctx.store.participant(letter.recipient)
        if writer is None or pal is None:
            continue
        if tell_writer(
            ctx,
            writer,
            "still_waiting",
            f"waiting-{letter.id}",
            pal=pal,
            pal_name=pal.name,
            subject=letter.subject,
        ):
            ctx.store.record_told_writer_waiting(letter.id)


# --- notices to one library's moderators ---------------------------------------------------


def tell_moderators(
    ctx: Context,
    library_id: str,
    template: str,
    item_id: str,
    *,
    private: Iterable[str] = (),
    letter: int | None = None,
    **values: Any,
) -> int:
    """One notice to each moderator of a library, each in their own language, queued once
    under `item_id-<n>`; `private` addresses must not appear in it (the leak guard checks).
    Returns how many were queued."""
    library = ctx.config.library(library_id)
    hidden = set(private)
    for index, moderator in enumerate(library.moderators if library else ()):
        subject, text = staff_words(
            ctx,
            moderator,
            template,
            library_name=library.name if library else library_id,
            **values,
        )
        to = Address(moderator.name, addr_spec=moderator.email)
        message = door.program_message(ctx, to, subject, text)
        door.queue(
            ctx,
            f"{item_id}-{index}",
            message,
            Notice(template, letter),
            to=moderator.email,
            private=hidden,
        )
    return len(library.moderators) if library else 0


# --- any notice ----------------------------------------------------------------------------


def send_notice(
    ctx: Context,
    item_id: str | None,
    to: Address,
    subject: str,
    text: str,
    *,
    kind: str,
    letter: int | None = None,
) -> None:
    """Queue a message from the program to one person (staff or a participant)."""
    message = door.program_message(ctx, to, subject, text)
    door.queue(ctx, item_id or f"notice-{new_id()}", message, Notice(kind, letter), to=to.addr_spec)
