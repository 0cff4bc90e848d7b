"""Scrubbing: turn the raw bytes of a letter into the parts we are willing to deliver.

Pure functions, no I/O. The original message is never edited: a new, small value
(`ScrubbedLetter`) is built from an allow-list of what a letter may carry (subject, text and
HTML bodies, allowed attachments). Everything that was left out is listed in `removed` and
everything odd about the input in `notes`, so that a moderator approves exactly what will be
delivered and knows what was taken away.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser

__all__ = [
    "Attachment",
    "Removal",
    "ScrubPolicy",
    "ScrubbedLetter",
    "scrub_letter",
]


@dataclass(frozen=True)
class Attachment:
    """An attachment that may be delivered, already cleaned and renamed."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class Removal:
    """Something taken out of the letter, described for staff."""

    kind: str
    detail: str


@dataclass(frozen=True)
class ScrubPolicy:
    """What a letter may carry; values come from configuration."""

    private_values: tuple[str, ...] = ()
    max_attachment_bytes: int = 5 * 1024 * 1024
    max_attachments: int = 5
    allowed_types: tuple[str, ...] = ("image/*",)


@dataclass(frozen=True)
class ScrubbedLetter:
    subject: str
    text: str | None
    html: str | None
    attachments: tuple[Attachment, ...] = ()
    removed: tuple[Removal, ...] = ()
    notes: tuple[str, ...] = field(default=())


def parse(raw: bytes) -> EmailMessage:
    """Parse bytes as received; never raises for malformed input (defects are recorded)."""
    return BytesParser(EmailMessage, policy=email.policy.default).parsebytes(raw)


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # unknown charset name
        return payload.decode("utf-8", errors="replace")


def scrub_letter(raw: bytes, policy: ScrubPolicy) -> ScrubbedLetter:
    """Keep the subject and the first text and HTML bodies; note everything else."""
    notes: list[str] = []
    removed: list[Removal] = []
    if b"\x00" in raw:
        notes.append("The message contained NUL bytes; they were removed.")
        raw = raw.replace(b"\x00", b"")
    message = parse(raw)
    if message.defects:
        notes.append("The message was not well-formed MIME; it was read as best we could.")
    try:
        subject = str(message.get("Subject", "") or "")
    except Exception:  # a garbled encoded word must not lose the letter
        subject = ""
        notes.append("The subject could not be decoded.")
    text: str | None = None
    html: str | None = None
    for part in message.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        if ctype == "text/plain" and disposition != "attachment" and text is None:
            text = _text_of(part)
        elif ctype == "text/html" and disposition != "attachment" and html is None:
            html = _text_of(part)
        else:
            removed.append(Removal("attachment", ctype))
    if text is None and html is None:
        notes.append("The message had no text; there is nothing to deliver but the subject.")
    return ScrubbedLetter(
        subject=" ".join(subject.split()),
        text=text,
        html=html,
        removed=tuple(removed),
        notes=tuple(notes),
    )
