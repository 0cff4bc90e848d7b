"""The values scrubbing deals in: the policy it obeys and the cleaned letter it returns.

They live apart from `relay.scrub` itself so that every scrubbing module can use them
without importing the package that wires those modules together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = [
    "ATTACHMENT_KINDS",
    "Attachment",
    "AttachmentKind",
    "Removal",
    "ScrubPolicy",
    "ScrubbedLetter",
    "kind_of",
]


@dataclass(frozen=True)
class Attachment:
    """An attachment that may be delivered, already cleaned and renamed.

    `content_id` is given without angle brackets, as it is written after `cid:` in HTML.
    `content_type` has no parameters; text attachments are always UTF-8. `flags` are what
    staff should look at before approving (text found in a document, the writer's surname
    in a file), shown beside the file wherever it is listed.
    """

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False
    flags: tuple[str, ...] = ()

    @property
    def kind(self) -> AttachmentKind:
        """What a person would call the file: picture, recording, video, document or text."""
        return kind_of(self.content_type)


AttachmentKind = Literal["picture", "audio", "video", "document", "text", "file"]
ATTACHMENT_KINDS: tuple[AttachmentKind, ...] = get_args(AttachmentKind)


def kind_of(content_type: str) -> AttachmentKind:
    major = content_type.split("/", 1)[0].lower()
    if major == "image":
        return "picture"
    if major in {"audio", "video", "text"}:
        return major  # type: ignore[return-value]
    if content_type.lower() == "application/pdf":
        return "document"
    return "file"


@dataclass(frozen=True)
class Removal:
    """Something taken out of the letter, described for staff."""

    kind: str
    detail: str


@dataclass(frozen=True)
class ScrubPolicy:
    """What a letter may carry; values come from configuration.

    A file may be as large as `max_bytes_by_kind` says for its kind, or
    `max_attachment_bytes` for a kind not listed there; all files of a letter together at
    most `max_total_bytes` (0: bounded by the count alone). `uncleanable_files` is "remove"
    for letters: a file that cannot be proven clean is never delivered as sent. Only staff
    posts, written by staff as themselves, use "keep".

    The last four fields bound the work done on one letter, so that a hostile or broken
    message costs no more than an ordinary one; what lies beyond them is left out and noted.
    """

    private_values: tuple[str, ...] = ()
    # The writer's enrolled first name and surname values (relay.scrub.names): removed where
    # mail programs put them, left for screening to flag where the writer typed them.
    first_name: str = ""
    surnames: tuple[str, ...] = ()
    max_attachment_bytes: int = 5 * 1024 * 1024
    max_attachments: int = 5
    allowed_types: tuple[str, ...] = ("image/*",)
    max_bytes_by_kind: tuple[tuple[AttachmentKind, int], ...] = ()
    max_total_bytes: int = 0
    uncleanable_files: Literal["remove", "keep"] = "remove"
    max_parts: int = 200
    max_depth: int = 8
    max_text_chars: int = 200_000
    max_image_pixels: int = 40_000_000
    # The relay's own domains: masked addresses there may stay where a reply quotes them;
    # every other address seen in quoted history is removed wherever it survives.
    own_domains: tuple[str, ...] = ()

    def max_bytes_for(self, kind: AttachmentKind) -> int:
        """The largest file of this kind a letter may carry."""
        return dict(self.max_bytes_by_kind).get(kind, self.max_attachment_bytes)


@dataclass(frozen=True)
class ScrubbedLetter:
    """What may be delivered of one letter, and what staff should know about it.

    `text` and `html` are None when the letter had no body of that kind; `html` is a
    sanitized fragment (no <html>/<body>), pictures inside it point at `cid:` values of
    `attachments`.
    """

    subject: str
    text: str | None
    html: str | None
    attachments: tuple[Attachment, ...] = ()
    removed: tuple[Removal, ...] = ()
    notes: tuple[str, ...] = field(default=())
    # Addresses that were in the quoted history (not the relay's): the leak guard removes
    # them from whatever is sent, should any survive an edit or a later change.
    history_addresses: tuple[str, ...] = ()
