"""A moderator's changes to a held letter, kept apart from the scrubbed version.

Three actions change what a pal receives, and they compose: removing one file (the letter
stays held), an edit of the text, and "remove what is flagged" (a redaction). All of them
live in one small record per letter, written atomically to the spool
(`spool/edits/letter-<n>.json`) before any decision that depends on it is recorded:

    {"revision": 3,
     "removed_files": ["drawing-1.jpg"],
     "bodies": {"subject": "Hi", "text": "...", "html": "<p>...</p>" or null,
                "edited": true, "redacted": {"phone": 1, "email": 1}} or null}

`removed_files` apply as soon as they are written. `bodies` replace the subject, text and
HTML only once the letter record says a moderator changed it (`Letter.edited_by`, written
with the approval), so an approval that failed after its bodies were written leaves the
held letter as the moderators saw it. `revision` grows with every write: an approval
records only if the record is still the one it composed from (see `deciding.approve`).
The scrubbed version is never rewritten, so the audit can always show what was taken out.
"""

from __future__ import annotations

import html as html_module
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from relay.context import Context
from relay.scrub import Attachment, ScrubbedLetter
from relay.scrub.markup import sanitize


@dataclass(frozen=True)
class Bodies:
    """What a moderator made of the letter's subject and bodies (an edit, a redaction)."""

    subject: str | None
    text: str | None
    html: str | None
    edited: bool = False
    redacted: dict[str, int] = field(default_factory=dict)  # kinds and counts, no values


@dataclass(frozen=True)
class Changes:
    revision: int = 0
    removed_files: tuple[str, ...] = ()
    bodies: Bodies | None = None


def encode(changes: Changes) -> bytes:
    bodies = changes.bodies
    return json.dumps(
        {
            "revision": changes.revision,
            "removed_files": list(changes.removed_files),
            "bodies": None
            if bodies is None
            else {
                "subject": bodies.subject,
                "text": bodies.text,
                "html": bodies.html,
                "edited": bodies.edited,
                "redacted": dict(bodies.redacted),
            },
        },
        ensure_ascii=False,
    ).encode("utf-8")


def decode(data: bytes) -> Changes:
    value: dict[str, Any] = json.loads(data)
    stored = value.get("bodies")
    bodies = (
        None
        if stored is None
        else Bodies(
            subject=stored.get("subject"),
            text=stored.get("text"),
            html=stored.get("html"),
            edited=bool(stored.get("edited")),
            redacted={str(k): int(v) for k, v in (stored.get("redacted") or {}).items()},
        )
    )
    return Changes(
        revision=int(value.get("revision", 0)),
        removed_files=tuple(str(name) for name in value.get("removed_files", ())),
        bodies=bodies,
    )


def load(ctx: Context, letter_id: int) -> Changes:
    data = ctx.spool.changes(letter_id)
    if data is not None:
        return decode(data)
    edited = ctx.spool.edit(letter_id)  # an edit kept before this record existed
    if edited is not None:
        return Changes(bodies=Bodies(subject=None, text=edited, html=None, edited=True))
    return Changes()


def save(ctx: Context, letter_id: int, changes: Changes) -> Changes:
    """Write the next revision of a letter's changes (synced before this returns)."""
    saved = replace(changes, revision=changes.revision + 1)
    ctx.spool.save_changes(letter_id, encode(saved))
    return saved


def applied(clean: ScrubbedLetter, changes: Changes, *, with_bodies: bool) -> ScrubbedLetter:
    """The scrubbed version with the moderator's changes on top: bodies first, then files."""
    bodies = changes.bodies
    if with_bodies and bodies is not None:
        clean = replace(
            clean,
            subject=bodies.subject if bodies.subject is not None else clean.subject,
            text=bodies.text,
            html=bodies.html,
        )
    if changes.removed_files:
        clean = without_files(clean, frozenset(changes.removed_files))
    return clean


def without_files(clean: ScrubbedLetter, names: frozenset[str]) -> ScrubbedLetter:
    """The letter without the named files, and without any picture in its HTML showing one."""
    gone = [a for a in clean.attachments if a.filename in names]
    if not gone:
        return clean
    cids = {a.content_id.lower() for a in gone if a.content_id}
    html = clean.html
    if html and cids:
        html = without_pictures(html, cids)
    kept = tuple(a for a in clean.attachments if a.filename not in names)
    return replace(clean, attachments=kept, html=html)


_PICTURE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SOURCE = re.compile(r"""\bsrc\s*=\s*["']?cid:([^"'\s>]+)""", re.IGNORECASE)


def without_pictures(markup: str, cids: set[str]) -> str:
    """Take out every `<img>` showing one of `cids` (the markup is already sanitized)."""

    def keep_or_drop(found: re.Match[str]) -> str:
        source = _SOURCE.search(found.group())
        return "" if source and source.group(1).lower() in cids else found.group()

    return sanitize(_PICTURE.sub(keep_or_drop, markup))


# --- an edited text, with an HTML part built from it --------------------------------------

_PLACEHOLDER = re.compile(r"\[([\w.-]+)\]")


def html_from_text(text: str, attachments: tuple[Attachment, ...]) -> str:
    """The HTML part of an edited letter: its paragraphs and line breaks, escaped, with the
    letter's inline pictures where the text names them (`[drawing-1]` or
    `[drawing-1.jpg]`) and the others after the text, so no picture is lost by editing."""
    pictures = {
        name: a
        for a in attachments
        if a.inline and a.content_id and a.kind == "picture"
        for name in (a.filename, a.filename.rsplit(".", 1)[0])
    }
    placed: set[str] = set()

    def picture(found: re.Match[str]) -> str:
        shown = pictures.get(found.group(1))
        if shown is None:
            return found.group()
        placed.add(shown.filename)
        return _img(shown)

    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [_PLACEHOLDER.sub(picture, html_module.escape(line)) for line in block.split("\n")]
        paragraphs.append(f"<p>{'<br>'.join(lines)}</p>")
    rest = {a.filename: a for a in pictures.values() if a.filename not in placed}
    paragraphs += [f"<p>{_img(a)}</p>" for a in rest.values()]
    return sanitize("\n".join(paragraphs))


def _img(attachment: Attachment) -> str:
    alt = html_module.escape(attachment.filename.rsplit(".", 1)[0])
    return f'<img src="cid:{html_module.escape(attachment.content_id or "")}" alt="{alt}">'
