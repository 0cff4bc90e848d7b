"""Holding a letter: read it once, scrub it once, screen it, record it, tell moderators.

A letter whose verdict (relay/authentication.py, kept on the spool marker) does not vouch
for the writer's enrolled address is held with `sender_check = "unverified"`, which staff
see first wherever a letter's flags are shown.

A letter's header is parsed once (`LetterHeaders.read`) for everything the hold needs
(threading ids, the From line, automatic replies), its body once by scrubbing; the
scrubbed version is kept (`versions`) so approval never scrubs again. Recording is
idempotent per spool item and recipient, so processing an item again after a crash
repairs rather than duplicates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from relay import compose, notices
from relay.context import Context
from relay.letters import lifecycle, previews, versions
from relay.route import LetterRoute, automatic_headers
from relay.screen import Flag, screen
from relay.scrub import ScrubbedLetter
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
            )
        except Exception:  # a garbled header must not lose the letter
            return cls(readable=False, from_addresses=())

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


def flags_for(ctx: Context, clean: ScrubbedLetter, sender: Participant) -> tuple[Flag, ...]:
    """Screening flags for staff, with the writer's library country for phone numbers."""
    library = ctx.config.library(sender.library)
    languages = sorted({lib.language.split("-")[0] for lib in ctx.config.libraries})
    return tuple(
        screen(
            clean,
            languages=[sender.language.split("-")[0], *languages],
            default_region=library.country if library else "US",
            keywords=ctx.config.screening.keywords,
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
    """Record a held letter for one recipient of an accepted message, and tell moderators."""
    clean = versions.scrub(raw, versions.policy(ctx, route.sender))
    flags = flags_for(ctx, clean, route.sender)
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
            notes=(*headers.notes(route.sender.email), *clean.notes),
            removed=clean.removed,
            message_id=headers.message_id,
            in_reply_to=headers.in_reply_to,
            references=headers.references,
            history=(lifecycle.first_step(),),
            sender_check=sender_check(incoming, route.sender),
            sender_results=incoming.verdict.results,
        )

    letter = ctx.store.hold_letter(
        build,
        spool_key=f"spool:{spool_id}:{route.recipient.id}",
        on_new=lambda new: lifecycle.recorded(ctx, new, spool=spool_id),
    )
    notices.notify_moderators(ctx, letter, text_of(clean), previews.delivered_files(clean))
    return letter


def text_of(clean: ScrubbedLetter) -> str:
    """The letter's text as moderators read it in a notice (HTML-only letters as text)."""
    return clean.text if clean.text is not None else compose.html_to_text(clean.html or "")
