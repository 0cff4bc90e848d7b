"""Scrubbing: turn the raw bytes of a letter into the parts we are willing to deliver.

Pure functions, no I/O, with one bounded exception: recordings and videos are copied by
ffmpeg, run on a temporary file (`media.runner`). The original message is never edited: a
new, small value (`ScrubbedLetter`) is built from an allow-list of what a letter may carry
(subject, text and HTML bodies, allowed attachments). Everything that was left out is
listed in `removed` and everything odd about the input in `notes`, so that a moderator
approves exactly what will be delivered and knows what was taken away. `scrub_letter` never
raises: work is bounded by the policy (parts, depth, characters, pixels, file sizes), and
input it cannot read becomes a note.

The steps live in their own modules: `mime` (bounded walk, tolerant decoding), `quotes`
(quoted replies and signatures), `markup` (HTML), `attachments` (which files may travel;
pictures), `media` (recordings, videos, PDFs and text files, one module each), `private`
(private values in every encoded form) and `names` (the writer's surname: removed where mail
programs put it, flagged by screening where typed). `leakguard` checks the final outgoing
bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from email.message import Message

from relay.scrub import names
from relay.scrub.attachments import take_attachments
from relay.scrub.markup import UNSURE, WriterNames, clean_html, sanitize
from relay.scrub.media.documents import document_text
from relay.scrub.mime import (
    Leaf,
    bound_parts,
    decode_header_text,
    is_attachment,
    iter_text_leaves,
    parse,
    part_text,
    read,
    walk,
)
from relay.scrub.model import Attachment, Removal, ScrubbedLetter, ScrubPolicy
from relay.scrub.names import find_names
from relay.scrub.private import REDACTED, PrivateMatcher, matcher_for, redact
from relay.scrub.quotes import remove_signature, reply_text

__all__ = [
    "Attachment",
    "Removal",
    "ScrubPolicy",
    "ScrubbedLetter",
    "names",
    "parse",
    "scrub_letter",
]


@dataclass
class _Draft:
    """What has been kept and taken away so far; frozen into a ScrubbedLetter at the end."""

    policy: ScrubPolicy
    matcher: PrivateMatcher | None
    removed: list[Removal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)

    def remove(self, kind: str, detail: str) -> None:
        removal = Removal(kind, detail)
        if removal not in self.removed:
            self.removed.append(removal)

    def private_gone(self, text: str, where: str, *, markup: bool = False) -> str:
        text, count = redact(text, self.matcher, markup=markup)
        if count:
            self.remove(
                "private-detail", f"a private detail of the sender was removed from {where}"
            )
        return text


ONLY_HISTORY = "The letter held only the history it quoted: the writer wrote nothing of their own."

_PICTURE_PLACEHOLDER = re.compile(r"\[(?:cid:([^\]\s]{1,200})|image:[^\]\n]{0,200})\]", re.I)


def _neutral_placeholders(text: str, cids: dict[str, str]) -> str:
    """Clients write "[cid:…]" or "[image: IMG_4521.jpeg]" where a picture sits; the
    original names can carry a person's name, so only the new neutral one is shown."""
    by_key = {old.lower(): new for old, new in cids.items()}

    def neutral(found: re.Match[str]) -> str:
        new = by_key.get((found.group(1) or "").lower())
        return f"[{new.split('@')[0]}]" if new else "[picture]"

    return _PICTURE_PLACEHOLDER.sub(neutral, text)


def _body_text(draft: _Draft, leaves: list[Leaf], cids: dict[str, str]) -> str | None:
    pieces = [
        part_text(leaf.part, draft.notes, draft.policy.max_text_chars)
        for leaf in iter_text_leaves(leaves, "plain")
    ]
    if not pieces:
        return None
    # Signature first as well as last: bottom-posted replies sign below the quote.
    text, signed_below = remove_signature("\n".join(pieces))
    reply = reply_text(text)
    text = reply.text
    draft.history.extend(reply.history)
    if reply.removed:
        draft.remove("quoted-reply", "the quoted earlier letter (text)")
    if reply.unsure:
        draft.notes.append(UNSURE)
    elif reply.removed and not reply.text.strip():
        draft.notes.append(ONLY_HISTORY)
    text, signed = remove_signature(text)
    if signed or signed_below:
        draft.remove("signature", "the sender's signature block (text)")
    text = _neutral_placeholders(text, cids)
    return draft.private_gone(text.strip("\n"), "the text")


def _html_source(draft: _Draft, leaves: list[Leaf]) -> str | None:
    """The HTML bodies as received, decoded; None when the letter has none."""
    pieces = [
        part_text(leaf.part, draft.notes, draft.policy.max_text_chars)
        for leaf in iter_text_leaves(leaves, "html")
    ]
    return "\n".join(pieces) if pieces else None


def _body_html(draft: _Draft, source: str, cids: dict[str, str]) -> str:
    writer = WriterNames(draft.policy.first_name, draft.policy.surnames)
    cleaned = clean_html(source, cids, writer)
    draft.history.extend(cleaned.history)
    if cleaned.unsure:
        draft.notes.append(UNSURE)
    for removal in cleaned.removed:
        draft.remove(removal.kind, removal.detail)
    html, count = redact(cleaned.html, draft.matcher, markup=True)
    if count:
        # A replaced span may have held half of a tag pair; sanitize again to rebalance.
        html = sanitize(html)
        draft.remove("private-detail", "a private detail of the sender was removed from the HTML")
    return html


SURNAME_IN_FILE = "the writer's surname appears in this file"


def _surname_flagged(attachment: Attachment, surnames: tuple[str, ...]) -> Attachment:
    """A text file or a document is the writer's typing too: their surname in it is
    flagged, not removed (a document's metadata, where programs put it, is already gone)."""
    if not surnames or SURNAME_IN_FILE in attachment.flags:
        return attachment
    if attachment.kind == "text":
        typed = attachment.data.decode("utf-8", "replace")
    elif attachment.kind == "document":
        typed = document_text(attachment.data)
    else:
        return attachment
    if not find_names(typed, surnames):
        return attachment
    return replace(attachment, flags=(*attachment.flags, SURNAME_IN_FILE))


def _is_body(leaf: Leaf) -> bool:
    return not is_attachment(leaf.part) and leaf.part.get_content_type() in {
        "text/plain",
        "text/html",
    }


def _read_bounded(draft: _Draft, raw: bytes) -> Message:
    if b"\x00" in raw:
        draft.notes.append("The message contained NUL bytes; they were removed.")
        raw = raw.replace(b"\x00", b"")
    raw, cut = bound_parts(raw, draft.policy.max_parts + 1)
    if cut:
        draft.notes.append(
            f"The message had more than {draft.policy.max_parts} parts; only the first were read."
        )
    message = read(raw)
    if message.defects and not cut:
        draft.notes.append("The message was not well-formed MIME; it was read as best we could.")
    return message


def _scrub(raw: bytes, policy: ScrubPolicy) -> ScrubbedLetter:
    draft = _Draft(policy, matcher_for(policy.private_values))
    message = _read_bounded(draft, raw)
    subject = draft.private_gone(decode_header_text(message, "Subject", draft.notes), "the subject")
    walked = walk(message, max_parts=policy.max_parts, max_depth=policy.max_depth)
    draft.notes.extend(walked.notes)
    source = _html_source(draft, walked.leaves)
    others: list[Message] = [leaf.part for leaf in walked.leaves if not _is_body(leaf)]
    taken = take_attachments(others, policy, draft.matcher, source or "")
    draft.removed.extend(taken.removed)
    draft.notes.extend(taken.notes)
    attachments = [_surname_flagged(a, policy.surnames) for a in taken.attachments]
    text = _body_text(draft, walked.leaves, taken.cids)
    html = None if source is None else _body_html(draft, source, taken.cids)
    if text is None and html is None:
        draft.notes.append("The message had no text; there is nothing to deliver but the subject.")
    strangers = history_addresses(draft.history, policy)
    if strangers:
        subject, text, html = _strangers_gone(draft, strangers, subject, text, html)
    return ScrubbedLetter(
        subject=subject,
        text=text,
        html=html,
        attachments=tuple(attachments),
        removed=tuple(draft.removed),
        notes=tuple(dict.fromkeys(draft.notes)),
        history_addresses=strangers,
    )


_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")


def history_addresses(history: list[str], policy: ScrubPolicy) -> tuple[str, ...]:
    """Every address in the quoted history that is not on the relay's own domains."""
    own = tuple(f"@{domain.lower()}" for domain in policy.own_domains if domain)
    found: dict[str, None] = {}
    for line in history:
        if "@" not in line:
            continue
        for address in _ADDRESS.findall(line):
            address = address.strip(".").lower()
            if not address.endswith(own):
                found[address] = None
    return tuple(found)


def _strangers_gone(
    draft: _Draft, strangers: tuple[str, ...], subject: str, text: str | None, html: str | None
) -> tuple[str, str | None, str | None]:
    """An address from the quoted history never reaches the pal, wherever it survived. The
    parts are decoded text here, so the addresses are looked for as written (the leak guard
    looks again at delivery, in every encoded form)."""
    pattern = re.compile("|".join(re.escape(address) for address in strangers), re.IGNORECASE)
    subject, count = pattern.subn(REDACTED, subject)
    if text:
        text, found = pattern.subn(REDACTED, text)
        count += found
    if html:
        html, found = pattern.subn(REDACTED, html)
        html = sanitize(html) if found else html
        count += found
    if count:
        draft.remove("quoted-reply", "an address from the quoted history was removed")
    return subject, text, html


def scrub_letter(raw: bytes, policy: ScrubPolicy) -> ScrubbedLetter:
    """Rebuild a letter from what it may carry; never raises (see the module docstring)."""
    try:
        return _scrub(raw, policy)
    except Exception:  # the last line of "never raise" (RecursionError, MemoryError too)
        return ScrubbedLetter(
            subject="",
            text=None,
            html=None,
            removed=(Removal("letter", "the whole message: it could not be read safely"),),
            notes=("The message could not be read at all; nothing of it will be delivered.",),
        )
