"""A letter as it will be delivered, scrubbed once when it is held and kept for approval.

Scrubbing is pure and repeatable, but it is the costly step (MIME walk, quotes, HTML,
pictures re-encoded): doing it once at hold and storing the result means an approval only
composes. The version is written to the spool before the letter record, so a record always
has one; should the file be missing anyway (a store older than this, a lost disk block), it
is rebuilt from the original, which the spool keeps. A moderator's changes (files removed,
an edit, a redaction) are stored apart (`changes`) and applied on top; the scrubbed version
stays as it was, for the audit.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from typing import Any

from relay.context import Context
from relay.letters import changes
from relay.scrub import Attachment, Removal, ScrubbedLetter, ScrubPolicy, names, scrub_letter
from relay.scrub.model import ATTACHMENT_KINDS
from relay.store.records import Letter, Participant

log = logging.getLogger("relay")


def policy(ctx: Context, sender: Participant, names_here: Sequence[str] = ()) -> ScrubPolicy:
    """What a letter of `sender` may carry. Their addresses are private values (removed
    everywhere); their surname (`names.surname_values` of the names their mail has used, and
    of `names_here`, the display names of this very letter) is removed where mail programs
    put it and flagged where they typed it."""
    attachments = ctx.config.attachments
    private = (sender.email, sender.guardian) if sender.guardian else (sender.email,)
    return ScrubPolicy(
        private_values=private,
        first_name=sender.name,
        surnames=names.surname_values(sender.name, (*names_here, *sender.known_names)),
        max_attachment_bytes=attachments.max_bytes_for("file"),
        max_attachments=attachments.max_count,
        allowed_types=attachments.allowed_types,
        max_bytes_by_kind=tuple(
            (kind, attachments.max_bytes_for(kind)) for kind in ATTACHMENT_KINDS
        ),
        max_total_bytes=attachments.max_total_bytes,
        own_domains=(ctx.config.relay.domain,),
    )


def scrub(raw: bytes, rules: ScrubPolicy) -> ScrubbedLetter:
    """Scrubbing never raises by design; should it ever, the letter is held, not lost."""
    try:
        return scrub_letter(raw, rules)
    except Exception as error:
        log.exception("scrubbing failed")
        note = f"The letter could not be read ({type(error).__name__}); nothing will be delivered."
        return ScrubbedLetter(subject="", text=None, html=None, notes=(note,))


def encode(clean: ScrubbedLetter) -> bytes:
    return json.dumps(
        {
            "subject": clean.subject,
            "text": clean.text,
            "html": clean.html,
            "attachments": [
                {
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "data": base64.b64encode(a.data).decode("ascii"),
                    "content_id": a.content_id,
                    "inline": a.inline,
                    "flags": list(a.flags),
                }
                for a in clean.attachments
            ],
            "removed": [[r.kind, r.detail] for r in clean.removed],
            "notes": list(clean.notes),
            "history_addresses": list(clean.history_addresses),
        },
        ensure_ascii=False,
    ).encode("utf-8")


def decode(data: bytes) -> ScrubbedLetter:
    value: dict[str, Any] = json.loads(data)
    return ScrubbedLetter(
        subject=str(value["subject"]),
        text=value["text"],
        html=value["html"],
        attachments=tuple(
            Attachment(
                filename=str(a["filename"]),
                content_type=str(a["content_type"]),
                data=base64.b64decode(a["data"]),
                content_id=a["content_id"],
                inline=bool(a["inline"]),
                flags=tuple(a.get("flags", ())),
            )
            for a in value["attachments"]
        ),
        removed=tuple(Removal(kind, detail) for kind, detail in value["removed"]),
        notes=tuple(value["notes"]),
        history_addresses=tuple(value.get("history_addresses", ())),
    )


def keep(ctx: Context, spool_id: str, recipient: str, clean: ScrubbedLetter) -> None:
    ctx.spool.save_scrubbed(spool_id, recipient, encode(clean))


def scrubbed(ctx: Context, letter: Letter, sender: Participant) -> ScrubbedLetter:
    """The version kept at hold (rebuilt from the original should its file be missing)."""
    stored = ctx.spool.scrubbed(letter.spool_id, letter.recipient)
    if stored is not None:
        return decode(stored)
    clean = scrub(ctx.spool.original(letter.spool_id), policy(ctx, sender))
    keep(ctx, letter.spool_id, letter.recipient, clean)
    return clean


def removed(letter: Letter) -> ScrubbedLetter:
    """What is shown of a letter whose contents retention removed: a note for staff."""
    day = letter.reduced_at[:10]
    note = f"The contents of this letter were removed on {day}, as [retention] says."
    return ScrubbedLetter(subject="", text=None, html=None, notes=(note,))


def content(ctx: Context, letter: Letter, sender: Participant) -> ScrubbedLetter:
    """The letter exactly as it will be delivered: the stored version with the moderator's
    changes on top (`changes`): files removed, and, once the record says a moderator
    changed it, their edited or redacted subject and bodies in place of the scrubbed ones.
    """
    recorded = changes.load(ctx, letter.id)
    return changes.applied(
        scrubbed(ctx, letter, sender), recorded, with_bodies=bool(letter.edited_by)
    )
