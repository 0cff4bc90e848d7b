"""A letter as it will be delivered, scrubbed once when it is held and kept for approval.

Scrubbing is pure and repeatable, but it is the costly step (MIME walk, quotes, HTML,
pictures re-encoded): doing it once at hold and storing the result means an approval only
composes. The version is written to the spool before the letter record, so a record always
has one; should the file be missing anyway (a store older than this, a lost disk block), it
is rebuilt from the original, which the spool keeps. A moderator's edit is stored apart
(`Spool.save_edit`) and replaces both bodies; the scrubbed version stays as it was, for the
audit.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from typing import Any

from relay.context import Context
from relay.scrub import Attachment, Removal, ScrubbedLetter, ScrubPolicy, scrub_letter
from relay.scrub.model import ATTACHMENT_KINDS
from relay.store.records import Letter, Participant

log = logging.getLogger("relay")


def policy(ctx: Context, sender: Participant) -> ScrubPolicy:
    attachments = ctx.config.attachments
    private = (sender.email, sender.guardian) if sender.guardian else (sender.email,)
    return ScrubPolicy(
        private_values=private,
        max_attachment_bytes=attachments.max_bytes_for("file"),
        max_attachments=attachments.max_count,
        allowed_types=attachments.allowed_types,
        max_bytes_by_kind=tuple(
            (kind, attachments.max_bytes_for(kind)) for kind in ATTACHMENT_KINDS
        ),
        max_total_bytes=attachments.max_total_bytes,
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
    )


def keep(ctx: Context, spool_id: str, recipient: str, clean: ScrubbedLetter) -> None:
    ctx.spool.save_scrubbed(spool_id, recipient, encode(clean))


def content(ctx: Context, letter: Letter, sender: Participant) -> ScrubbedLetter:
    """The letter exactly as it will be delivered: the stored version, with a moderator's
    edit in place of both bodies (a redaction in the text must not survive in an HTML twin).
    """
    stored = ctx.spool.scrubbed(letter.spool_id, letter.recipient)
    if stored is not None:
        clean = decode(stored)
    else:
        clean = scrub(ctx.spool.original(letter.spool_id), policy(ctx, sender))
        keep(ctx, letter.spool_id, letter.recipient, clean)
    edited = ctx.spool.edit(letter.id) if letter.edited_by else None
    if edited is not None:
        return replace(clean, text=edited, html=None)
    return clean
