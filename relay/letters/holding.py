"""Holding a letter: read it once, scrub it once, screen it, record it, tell moderators.

A letter whose verdict (relay/authentication.py, kept on the spool marker) does not vouch
for the writer's enrolled address is held with `sender_check = "unverified"`, which staff
see first wherever a letter's flags are shown. A letter from or to someone whose guardian
has not consented yet is held with a note saying so (`consent_notes`).

A letter's header is parsed once (`LetterHeaders.read`) for everything the hold needs
(threading ids, the From line, automatic replies), its body once by scrubbing; the
scrubbed version is kept (`versions`) so approval never scrubs again. Recording is
idempotent per spool item and recipient, so processing an item again after a crash
repairs rather than duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from relay import compose, notices, participants
from relay.consent import NO_CONSENT_NOTES
from relay.context import Context
from relay.letters import lifecycle, previews, versions
from relay.route import LetterRoute, automatic_headers
from relay.screen import Flag, screen
from relay.scrub import ScrubbedLetter, names
from relay.spool import Incoming
from relay.store import now_iso
from relay.store.records import Letter, Participant, SenderCheck

log = logging.getLogger("relay")


@dataclass(frozen=True)
class LetterHeaders:
    """What the hold reads from a letter's header, parsed once."""

    message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    from_addresses: tuple[str, ...] | None = None  # None: no From line at all
    automatic: bool = False  # RFC 3834 or list headers (the envelope is judged apart)
    readable: bool = True
    # (address, display name) of From, Sender and Reply-To: the writer's own names.
    named: tuple[tuple[str, str], ...] = ()

    @classmethod
    def read(cls, raw: bytes) -> LetterHeaders:
        try:
            headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
            in_reply_to = str(headers.get("In-Reply-To", "") or "").split()
            return cls(
                message_id=str(headers.get("Message-ID", "") or "").strip(),
                in_reply_to=in_reply_to[0] if in_reply_to else "",
                references=tuple(str(headers.get("References", "") or "").split()),
                from_addresses=_from_addresses(headers),
                automatic=automatic_headers(headers),
                named=_named(headers),
            )
        except Exception:  # a garbled header must not lose the letter
            return cls(readable=False, from_addresses=())

    def names_of(self, address: str) -> tuple[str, ...]:
        """The display names given to `address` (the writer's enrolled one) in this header."""
        return tuple(dict.fromkeys(name for addr, name in self.named if addr == address and name))

    def notes(self, sender_email: str) -> tuple[str, ...]:
        """What staff should know about the From line: the relay never trusts or shows it."""
        if self.from_addresses is None:
            return ("The message had no From line.",)
        if not self.from_addresses:
            return ("The From line could not be read.",)
        if sender_email not in self.from_addresses:
            return ("The From line names another address than the enrolled one it came from.",)
        return ()


def _from_addresses(headers: Message) -> tuple[str, ...] | None:
    value = headers.get("From")
    if value is None:
        return None
    try:
        return tuple(a.addr_spec.lower() for a in getattr(value, "addresses", ()))
    except Exception:  # garbled beyond what the parser tolerates
        return ()


def _named(headers: Message) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for field in ("From", "Sender", "Reply-To"):
        found += _named_in(headers, field)
    return tuple(found)


def _named_in(headers: Message, field: str) -> list[tuple[str, str]]:
    try:
        addresses = getattr(headers.get(field), "addresses", ())
        return [(a.addr_spec.lower(), str(a.display_name or "")) for a in addresses]
    except Exception:  # a garbled line gives no names; the From notes say the rest
        return []


def flags_for(
    ctx: Context, clean: ScrubbedLetter, sender: Participant, surnames: Sequence[str] = ()
) -> tuple[Flag, ...]:
    """Screening flags for staff, with the writer's library country for phone numbers, and
    the writer's surname (`surnames`, from `versions.policy`) wherever they typed it."""
    library = ctx.config.library(sender.library)
    languages = sorted({lib.language.split("-")[0] for lib in ctx.config.libraries})
    return tuple(
        screen(
            clean,
            languages=[sender.language.split("-")[0], *languages],
            default_region=library.country if library else "US",
            keywords=ctx.config.screening.keywords,
            surnames=names.typed_values(sender.name, surnames),
        )
    )


def sender_check(incoming: Incoming, sender: Participant) -> SenderCheck:
    """Whether the message's verdict vouches for the writer's own enrolled address."""
    if incoming.verdict.checked_by == "unchecked":
        return "unchecked"
    return "verified" if incoming.verdict.vouches_for(sender.email) else "unverified"


def hold(
    ctx: Context,
    spool_id: str,
    incoming: Incoming,
    raw: bytes,
    route: LetterRoute,
    headers: LetterHeaders,
) -> Letter:
    """Record a held letter for one recipient of an accepted message, and tell moderators.

    The display names the letter gives the writer's own address are learned (kept with the
    participant, `participants.learn_names`) only when its verdict vouches for the writer:
    a forged letter must not fill someone's record with words that are then flagged in all
    their letters. Unverified, they still count for this letter alone, where they can only
    add flags and take a name out of a signature or a link.
    """
    check = sender_check(incoming, route.sender)
    names_here = participants.names_worth_keeping(
        ctx, route.sender, headers.names_of(route.sender.email)
    )
    sender = route.sender
    if check == "verified" and names_here:
        sender = participants.learn_names(ctx, sender, names_here)
    rules = versions.policy(ctx, sender, names_here)
    clean = versions.scrub(raw, rules)
    flags = flags_for(ctx, clean, sender, rules.surnames)
    # The version first: a recorded letter always has the text it will be delivered with.
    versions.keep(ctx, spool_id, route.recipient.id, clean)

    def build(letter_id: int) -> Letter:
        return Letter(
            id=letter_id,
            spool_id=spool_id,
            sender=route.sender.id,
            recipient=route.recipient.id,
            sender_masked=route.sender.masked,
            recipient_masked=route.recipient.masked,
            sender_library=route.sender.library,
            recipient_library=route.recipient.library,
            subject=clean.subject,
            received_at=incoming.received_at or now_iso(),
            flags=flags,
            notes=(*headers.notes(route.sender.email), *clean.notes, *consent_notes(route)),
            removed=clean.removed,
            message_id=headers.message_id,
            in_reply_to=headers.in_reply_to,
            references=headers.references,
            history=(lifecycle.first_step(),),
            sender_check=check,
            sender_results=incoming.verdict.results,
        )

    letter = ctx.store.hold_letter(
        build,
        spool_key=f"spool:{spool_id}:{route.recipient.id}",
        on_new=lambda new: lifecycle.recorded(ctx, new, spool=spool_id),
    )
    notices.notify_moderators(ctx, letter, text_of(clean), previews.delivered_files(clean))
    return letter


def consent_notes(route: LetterRoute) -> tuple[str, ...]:
    """A note for staff when the writer or the pal has no guardian's consent yet: the
    letter is held as any other, and approving it keeps it held until consent arrives."""
    waiting = (("writer", route.sender), ("pal", route.recipient))
    return tuple(NO_CONSENT_NOTES[role] for role, who in waiting if not who.may_correspond)


def text_of(clean: ScrubbedLetter) -> str:
    """The letter's text as moderators read it in a notice (HTML-only letters as text)."""
    return clean.text if clean.text is not None else compose.html_to_text(clean.html or "")
