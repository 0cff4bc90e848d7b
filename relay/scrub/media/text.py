"""Text files: plain text with private values replaced, HTML sanitized like a letter's.

Text is the one kind of file whose every byte a moderator can read, so it is cleaned, not
refused. Plain text, CSV, TSV and Markdown keep their type, decoded to UTF-8 with the
writer's private values replaced. HTML is run through the same two passes as a letter's
HTML body (`relay.scrub.markup.clean_html`): no scripts, event handlers, forms, frames,
styles or remote pictures survive, so opening it cannot run code or tell anyone it was
opened. Every other text type (XML, RTF, source code…) is delivered as plain text: shown
as written, nothing in it can run or hide. Each text file is flagged for staff to read,
since a moderator approving a letter may not open its files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relay.scrub.markup import clean_html, sanitize
from relay.scrub.media import Cleaned
from relay.scrub.model import Removal
from relay.scrub.private import PrivateMatcher, redact

__all__ = ["HAS_TEXT", "CleanedText", "clean_text"]

HAS_TEXT = "the file has text in it; read it before approving"

_KEPT_TYPES = {
    "text/plain": "txt",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "text/markdown": "md",
    "text/x-markdown": "md",
}
_PAGE = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{}\n</body></html>\n'


@dataclass(frozen=True)
class CleanedText:
    """A cleaned text file, how many private values were replaced, and what else was cut."""

    file: Cleaned
    private_values: int
    removed: list[Removal] = field(default_factory=list)


def _html(text: str, matcher: PrivateMatcher | None) -> CleanedText:
    cleaned = clean_html(text, {})
    markup, replaced = redact(cleaned.html, matcher, markup=True)
    if replaced:
        markup = sanitize(markup)  # a replaced span may have held half of a tag pair
    hidden = bool(cleaned.removed)
    data = _PAGE.format(markup).encode("utf-8")
    return CleanedText(Cleaned(data, "text/html", "html", hidden, (HAS_TEXT,)), replaced,
                       cleaned.removed)  # fmt: skip


def clean_text(text: str, content_type: str, matcher: PrivateMatcher | None) -> CleanedText:
    """Clean decoded text of a `text/*` attachment (see the module docstring)."""
    if content_type == "text/html":
        return _html(text, matcher)
    text, replaced = redact(text, matcher)
    extension = _KEPT_TYPES.get(content_type, "txt")
    kept_type = content_type if content_type in _KEPT_TYPES else "text/plain"
    return CleanedText(Cleaned(text.encode("utf-8"), kept_type, extension, False, (HAS_TEXT,)),
                       replaced)  # fmt: skip
