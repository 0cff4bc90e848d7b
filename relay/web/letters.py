"""Letters as staff see them: the text to be delivered with flags marked in place.

Flags carry offsets into the delivered text (`part` = "text"); they are cut into segments
so the page template marks them without any HTML built in code. A letter's HTML body is
sanitized again here, more strictly than for delivery (no links, no remote anything), and
shown only inside a sandboxed frame whose own policy forbids scripts and remote loads.
"""

from __future__ import annotations

import base64
import html as html_module
from dataclasses import dataclass, field

import nh3

from relay import letters
from relay.context import Context
from relay.letters.previews import DeliveredFile, delivered_files
from relay.letters.redacting import IDENTIFYING
from relay.screen import Flag
from relay.scrub import Attachment
from relay.store.records import Letter

_TAGS = {
    "p", "br", "div", "span", "b", "i", "u", "em", "strong", "small", "ul", "ol", "li",
    "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "pre", "code",
    "table", "thead", "tbody", "tr", "td", "th", "img", "a",
}  # fmt: skip
_ATTRIBUTES = {"img": {"alt", "src", "width", "height"}, "td": {"colspan", "rowspan"}}
# The frame's own policy, on top of the page's: nothing runs, nothing remote loads.
_FRAME_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class TimelineStep:
    """One line of a letter's timeline: its history step with the audit entry's details."""

    at: str
    event: str
    by: str = ""  # the moderator's name
    by_address: str = ""  # and staff address, from the audit entry
    via: str = ""
    reason: str = ""
    edited: bool = False
    file: str = ""  # the file a moderator removed
    redacted: tuple[tuple[str, int], ...] = ()  # flagged details removed: kinds and counts
    not_sent: str = ""  # why an approval did not send the letter ("pal-paused", ...)


@dataclass(frozen=True)
class Segment:
    text: str
    flag: Flag | None = None


@dataclass(frozen=True)
class LetterView:
    letter: Letter
    writer: str
    pal: str
    pal_library: str
    text: str
    segments: tuple[Segment, ...]
    other_flags: tuple[Flag, ...]  # flags not placed in the text (subject, HTML)
    frame: str | None = None  # the sanitized HTML body, as a complete document for srcdoc
    files: tuple[DeliveredFile, ...] = ()  # what will be delivered with it, with previews
    timeline: tuple[TimelineStep, ...] = field(default=())

    @property
    def has_flags(self) -> bool:
        return bool(self.letter.flags) or self.letter.sender_unverified

    @property
    def can_redact(self) -> bool:
        """Whether "remove flagged parts" would remove anything (keywords stay)."""
        return any(flag.kind in IDENTIFYING for flag in self.letter.flags)


def _placeable(flag: Flag, length: int) -> bool:
    return flag.part == "text" and 0 <= flag.start < flag.end <= length


def segments(text: str, flags: tuple[Flag, ...]) -> tuple[tuple[Segment, ...], tuple[Flag, ...]]:
    """Cut `text` at the flags' offsets; flags that overlap or do not fit are returned apart."""
    placed: list[Segment] = []
    elsewhere: list[Flag] = []
    cursor = 0
    for flag in sorted(flags, key=lambda f: (f.start, f.end)):
        if not _placeable(flag, len(text)) or flag.start < cursor:
            elsewhere.append(flag)
            continue
        if flag.start > cursor:
            placed.append(Segment(text[cursor : flag.start]))
        placed.append(Segment(text[flag.start : flag.end], flag))
        cursor = flag.end
    if cursor < len(text) or not placed:
        placed.append(Segment(text[cursor:]))
    return tuple(placed), tuple(elsewhere)


def _image_source_only(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        # Inline raster images only: a remote image is a read receipt for its sender.
        raster = value.startswith("data:image/") and not value.startswith("data:image/svg")
        return value if raster else None
    return value


def sanitized_frame(letter_html: str) -> str:
    """A whole document for `<iframe sandbox srcdoc>`: no script, handler, link or remote load."""
    body = nh3.clean(
        letter_html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"data"},
        attribute_filter=_image_source_only,
        link_rel=None,
        strip_comments=True,
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_FRAME_POLICY}">'
        f"</head><body>{body}</body></html>"
    )


def plain_text_of(letter_html: str) -> str:
    return html_module.unescape(nh3.clean(letter_html, tags=set()))


def _name(ctx: Context, participant_id: str) -> str:
    participant = ctx.store.participant(participant_id)
    return participant.name if participant else participant_id


def view(ctx: Context, letter: Letter) -> LetterView:
    """Blocking: reads the original from the spool and scrubs it as delivery will."""
    clean = letters.as_delivered(ctx, letter)
    text = clean.text if clean.text is not None else plain_text_of(clean.html or "")
    placed, elsewhere = segments(text, letter.flags)
    library = ctx.config.library(letter.recipient_library)
    return LetterView(
        letter=letter,
        writer=_name(ctx, letter.sender),
        pal=_name(ctx, letter.recipient),
        pal_library=library.name if library else letter.recipient_library,
        text=text,
        segments=placed,
        other_flags=elsewhere,
        frame=sanitized_frame(clean.html) if clean.html else None,
        files=tuple(delivered_files(clean)),
    )


@dataclass(frozen=True)
class EditPreview:
    """An edited letter as it would be delivered: its text, and its HTML part with the
    pictures shown in place (as data: addresses, the only pictures the frame loads)."""

    letter: LetterView
    edited_text: str
    text: str
    frame: str | None


def edit_preview(ctx: Context, letter: Letter, by: str, edited_text: str) -> EditPreview:
    """Blocking: what approving with `edited_text` would deliver; nothing is written."""
    shown = letters.edited_version(ctx, letter.id, by, edited_text)
    frame = None
    if shown.html is not None:
        frame = sanitized_frame(_pictures_inline(shown.html, shown.attachments))
    return EditPreview(view(ctx, letter), edited_text, shown.text or "", frame)


def _pictures_inline(markup: str, files: tuple[Attachment, ...]) -> str:
    for attachment in files:
        if attachment.content_id and attachment.kind == "picture":
            data = base64.b64encode(attachment.data).decode("ascii")
            source = f"data:{attachment.content_type};base64,{data}"
            markup = markup.replace(f'src="cid:{attachment.content_id}"', f'src="{source}"')
    return markup


def waiting(ctx: Context, library_id: str) -> list[LetterView]:
    """The queue of one library, oldest first."""
    held = sorted(ctx.store.queue(library_id), key=lambda x: (x.received_at, x.id))
    return [view(ctx, letter) for letter in held]


def of_library(ctx: Context, library_id: str, letter_id: int) -> Letter | None:
    """A letter written by a patron of this library; None for any other (answered 404), and
    for a letter whose writer or pal was erased: only its figures are left (relay.rights)."""
    letter = ctx.store.letter(letter_id)
    if letter is None or letter.sender_library != library_id or not letter.sender:
        return None
    return letter
