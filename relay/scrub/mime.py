"""Reading MIME as received: a bounded walk over the parts and tolerant decoding of text.

Letters come from every kind of mail client and some are broken: wrong or unknown
charsets, 8-bit headers, bad base64, thousands of parts, messages nested in messages. This
module never raises on such input; it reads what it can, stops at the limits the policy
sets (number of parts, depth, characters of text) and says in `notes` what it did.
"""

from __future__ import annotations

import email.policy
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header
from email.message import EmailMessage, Message
from email.parser import BytesParser

__all__ = [
    "Leaf",
    "Walk",
    "decode_header_text",
    "decode_header_value",
    "parse",
    "part_bytes",
    "part_text",
    "read",
    "too_many_parts",
    "walk",
]

# Encodings tried, in order, when the declared charset is missing, unknown or wrong.
# windows-1252 last: it accepts almost any byte, so it is the "read as best we can" step.
_FALLBACK_CHARSETS = ("utf-8", "windows-1252")


_PART_HEADER = re.compile(rb"^content-type[ \t]*:", re.IGNORECASE | re.MULTILINE)


def bound_parts(raw: bytes, max_parts: int) -> tuple[bytes, bool]:
    """Cut the bytes before the part after `max_parts`, so that parsing costs no more.

    The standard parser's cost grows faster than the number of parts (5,000 parts take
    seconds); counting Content-Type lines is linear and lets us stop early. The cut leaves
    an unterminated multipart, which the parser reads as a defect, not an error.
    """
    for count, found in enumerate(_PART_HEADER.finditer(raw), start=1):
        if count > max_parts:
            return raw[: found.start()], True
    return raw, False


# The standard parser recurses once per nesting level and its header objects once more per
# part: a message nested about 1,000 levels deep (60 KB) raises RecursionError. Control
# mail (replies, list posts, reports) with more parts than this is not parsed at all;
# letters are cut to their first parts by `bound_parts` before parsing.
MAX_PARTS_TO_PARSE = 200


def too_many_parts(raw: bytes, max_parts: int = MAX_PARTS_TO_PARSE) -> bool:
    """Whether a whole message is beyond what `parse` may safely be given."""
    return bound_parts(raw, max_parts)[1]


def parse(raw: bytes) -> EmailMessage:
    """Parse bytes as received; never raises for malformed input (defects are recorded)."""
    return BytesParser(EmailMessage, policy=email.policy.default).parsebytes(raw)


def read(raw: bytes) -> Message:
    """Parse for reading only, with the compat32 policy.

    Scrubbing and the leak guard only read headers and bodies; the default policy parses
    every header into objects each time it is asked (Content-Type is asked often) and costs
    about twenty times more per message. Headers are decoded here by `decode_header_value`.
    """
    return BytesParser(Message, policy=email.policy.compat32).parsebytes(raw)


@dataclass(frozen=True)
class Leaf:
    """A part that is not multipart, with how deep it was found."""

    part: Message
    depth: int


@dataclass
class Walk:
    """The leaf parts found, and notes on what the limits left unread."""

    leaves: list[Leaf] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def walk(message: Message, *, max_parts: int, max_depth: int) -> Walk:
    """Collect the leaf parts depth-first, stopping at `max_parts` and `max_depth`.

    Messages attached to the letter (message/rfc822) are leaves here: their insides are
    another person's email and are never delivered, so there is no reason to read them.
    """
    result = Walk()
    stack: list[tuple[Message, int]] = [(message, 0)]
    visited = 0
    too_deep = False
    while stack:
        part, depth = stack.pop()
        visited += 1
        if visited > max_parts:
            result.notes.append(
                f"The message had more than {max_parts} parts; only the first were read."
            )
            break
        children = _children(part)
        if children is None:
            result.leaves.append(Leaf(part, depth))
        elif depth >= max_depth:
            too_deep = True
        else:
            stack.extend((child, depth + 1) for child in reversed(children))
    if too_deep:
        result.notes.append(f"Parts nested more than {max_depth} levels deep were not read.")
    return result


def _children(part: Message) -> list[Message] | None:
    if not part.is_multipart() or part.get_content_maintype() == "message":
        return None
    payload = part.get_payload()
    if isinstance(payload, list):
        return [child for child in payload if isinstance(child, Message)]
    return None


def part_bytes(part: Message) -> bytes:
    """The decoded body of a leaf part (empty when there is none)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding must not lose the letter
        return b""
    return payload if isinstance(payload, bytes) else b""


def part_text(part: Message, notes: list[str], max_chars: int) -> str:
    """Decode a text part: declared charset first, then fallbacks; NFC, LF line ends."""
    data = part_bytes(part)
    charset = _declared_charset(part)
    text = None
    for candidate in (charset, *_FALLBACK_CHARSETS):
        if candidate is None:
            continue
        try:
            text = data.decode(candidate)
            break
        except (LookupError, UnicodeDecodeError):
            continue
    if text is None:
        text = data.decode("utf-8", "replace")
    if charset is not None and text is not None and not _decoded_as(data, charset):
        notes.append("A text part was not in the character set it declared; it was guessed.")
    if len(text) > max_chars:
        notes.append(f"A text part was longer than {max_chars} characters and was cut.")
        text = text[:max_chars]
    return normalize(text)


def _declared_charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # non-ASCII bytes in a parameter
        return None


def _decoded_as(data: bytes, charset: str) -> bool:
    try:
        data.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return False
    return True


def normalize(text: str) -> str:
    """NFC, LF line ends, no NUL: the form every later step expects."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return unicodedata.normalize("NFC", text)


def repair(text: str) -> str:
    """Turn undecodable bytes kept as surrogates (8-bit headers) back into characters."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    for candidate in _FALLBACK_CHARSETS:
        try:
            return raw.decode(candidate)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace")


def decode_header_text(message: Message, name: str, notes: list[str]) -> str:
    """A header's text with encoded words decoded, whatever state it is in."""
    return decode_header_value(_raw_value(message, name), notes)


def decode_header_value(raw: str, notes: list[str]) -> str:
    """Unfold, turn 8-bit bytes back into characters, decode RFC 2047 encoded words."""
    text = repair(re.sub(r"\r?\n(?=[ \t])", "", raw))
    if "=?" in text:
        try:
            text = "".join(_chunk_text(chunk, charset) for chunk, charset in decode_header(text))
        except Exception:  # decode_header gives up on some broken encoded words
            notes.append("A header could not be fully decoded; it was read as best we could.")
    return normalize(" ".join(text.split()))


def _raw_value(message: Message, name: str) -> str:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _chunk_text(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    if charset is None:
        # decode_header hands back the text between encoded words in this codec.
        return chunk.decode("raw-unicode-escape")
    for candidate in (charset, *_FALLBACK_CHARSETS):
        try:
            return chunk.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return chunk.decode("utf-8", "replace")


def filename_of(part: Message) -> str:
    """The attachment's file name as declared, or empty; used only to classify it."""
    try:
        name = part.get_filename() or part.get_param("name", header="content-type") or ""
    except Exception:
        return ""
    return repair(str(name)) if isinstance(name, str) else ""


def content_type_of(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def is_attachment(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment"
    except Exception:
        return True


def iter_text_leaves(leaves: list[Leaf], subtype: str) -> Iterator[Leaf]:
    """Body parts of one text subtype: inline and not a named attachment."""
    for leaf in leaves:
        if content_type_of(leaf.part) == f"text/{subtype}" and not is_attachment(leaf.part):
            yield leaf
