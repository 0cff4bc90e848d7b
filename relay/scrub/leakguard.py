"""Leak guard: the last check on the exact bytes of an outgoing message.

Scrubbing cleans a letter when it arrives; composing then adds templates, headers and
threading. Before anything leaves, `check_outgoing` parses the final bytes and searches every
place a private value could be read: each header (raw, and with RFC 2047 encoded words
decoded), each part's body after its transfer encoding is undone (base64, quoted-printable,
including soft line breaks), text after HTML entity and percent-decoding, binary attachments,
and the raw bytes themselves (plain, quoted-printable-decoded, base64 runs), ignoring letter
case. It reports each hit with where it was found.

The guarantee is carried by a type: delivery accepts only a `CheckedMessage`, and the only
code that makes one is this module, after a search of those very bytes found nothing. A
caller therefore cannot deliver bytes that were not checked, nor check one message and
send another: the value holds the bytes it vouches for.

    report = check_outgoing(final_bytes, sender_private_values)
    if report.checked is None:          # hits: stop the letter, tell the moderator
        ...
    outbox.put(report.checked)          # CheckedMessage, its .data are the bytes to send

`redact_outgoing` is the gentler variant: when every hit sits where text can be replaced
(the Subject, text and HTML bodies, text attachments) it rebuilds the message with
"[removed]" in their place, checks the new bytes the same way, and returns them checked.
When a hit sits where it cannot be replaced (an address header, a picture's bytes, another
header that must stay) it returns no `CheckedMessage`, which means: stop this letter.

Pass the values that must not appear: the sending participant's real address, names and
phone, never the recipient's own address (which the To header rightly carries). Run the
guard on the bytes as they will be sent, before DKIM signing (signing only adds a header
and would not survive a rebuild).
"""

from __future__ import annotations

import base64
import email.policy
import html
import quopri
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from urllib.parse import unquote

from relay.scrub.mime import (
    Walk,
    decode_header_text,
    decode_header_value,
    part_bytes,
    read,
    walk,
)
from relay.scrub.private import (
    PrivateMatcher,
    contains_private,
    matcher_for,
    redact,
    values_found,
    values_in_bytes,
)

__all__ = ["CheckedMessage", "LeakHit", "LeakReport", "check_outgoing", "redact_outgoing"]

# Far above what a composed letter holds; the guard reads every part it is given.
_MAX_PARTS = 10_000
_MAX_DEPTH = 100
_REPLACEABLE_HEADERS = {"subject"}
_SEAL = object()


class CheckedMessage:
    """Bytes the leak guard searched and found clean; only this module makes them."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes, seal: object) -> None:
        if seal is not _SEAL:
            raise TypeError("a CheckedMessage comes only from check_outgoing or redact_outgoing")
        self._data = bytes(data)

    @property
    def data(self) -> bytes:
        """The exact bytes that were checked: send these, nothing rebuilt from them."""
        return self._data

    def __repr__(self) -> str:
        return f"<CheckedMessage {len(self._data)} bytes>"


@dataclass(frozen=True)
class LeakHit:
    """One private value found, and where (e.g. "header Subject", "part 2 text/html")."""

    value: str
    where: str
    replaceable: bool


@dataclass(frozen=True)
class LeakReport:
    """The outcome of a check. `checked` is None exactly when the letter must be stopped."""

    hits: tuple[LeakHit, ...]
    checked: CheckedMessage | None
    rebuilt: bool = False

    @property
    def must_stop(self) -> bool:
        return self.checked is None


def _views(text: str) -> tuple[str, ...]:
    """The text once more decoded, for values encoded twice (`&amp;#64;`, `%2540`)."""
    if "&" not in text and "%" not in text:
        return ()
    unescaped = html.unescape(text)
    views = (unescaped, unquote(text), unquote(unescaped))
    # A view equal to the text, or to another view, would only be searched again.
    return tuple(v for v in dict.fromkeys(views) if v != text)


def _found(text: str, matcher: PrivateMatcher, *, runs: bool = True) -> bool:
    # The patterns already read one level of entities and percent-encoding; the decoded
    # views catch a second level. Encoded words and base64 runs are decoded once, in the
    # text as written.
    if contains_private(text, matcher, markup=True, runs=runs):
        return True
    return any(contains_private(view, matcher, markup=True, runs=False) for view in _views(text))


def _hits_in(
    text: str, where: str, matcher: PrivateMatcher, replaceable: bool, *, runs: bool = True
) -> list[LeakHit]:
    if not _found(text, matcher, runs=runs):
        return []
    names = [value for value in matcher.values if _found(text, _single(value), runs=runs)]
    return [LeakHit(value, where, replaceable) for value in names or matcher.values[:1]]


def _single(value: str) -> PrivateMatcher:
    single = matcher_for([value])
    if single is None:  # matcher.values only holds values matcher_for accepted
        raise ValueError(value)
    return single


def _header_hits(part: Message, label: str, matcher: PrivateMatcher) -> list[LeakHit]:
    hits: list[LeakHit] = []
    for name, raw in part.raw_items():
        decoded = decode_header_value(str(raw), [])
        where = f"{label}header {name}"
        replaceable = not label and name.lower() in _REPLACEABLE_HEADERS
        hits += _hits_in(f"{raw}\n{decoded}", where, matcher, replaceable)
    return hits


def _body_hits(part: Message, label: str, matcher: PrivateMatcher) -> list[LeakHit]:
    data = part_bytes(part)
    content_type = part.get_content_type()
    where = f"{label}{content_type}"
    if part.get_content_maintype() == "text":
        charset = part.get_content_charset() or "utf-8"
        try:
            text = data.decode(charset, "replace")
        except LookupError:
            text = data.decode("utf-8", "replace")
        return _hits_in(text, where, matcher, replaceable=True)
    if part.get_content_maintype() == "message":
        return _attached_message_hits(part, where, matcher)
    return [LeakHit(value, where, False) for value in values_in_bytes(data, matcher)]


def _attached_message_hits(part: Message, where: str, matcher: PrivateMatcher) -> list[LeakHit]:
    """An attached email is read like the outer one, and nothing in it can be replaced."""
    inner = part.get_payload()
    hits: list[LeakHit] = []
    for message in inner if isinstance(inner, list) else []:
        if isinstance(message, Message):
            found = _all_hits(message.as_bytes(), matcher)
            hits += [LeakHit(hit.value, f"{where} > {hit.where}", False) for hit in found]
    return hits


# Body lines of base64 parts: decoded and searched part by part, so the raw search skips
# them (on a letter with a photo they are nearly all of the bytes).
_BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/]{40,}={0,2}\r?$\n?", re.MULTILINE)


def _raw_hits(message_bytes: bytes, matcher: PrivateMatcher) -> list[LeakHit]:
    """The backstop: the bytes as they are, and with quoted-printable undone throughout."""
    views = [message_bytes]
    unquoted = quopri.decodestring(message_bytes)
    if unquoted != message_bytes:  # the same bytes twice would be searched twice for nothing
        views.append(unquoted)
    for view in views:
        found = values_in_bytes(view, matcher)
        if found:
            return [LeakHit(value, "raw bytes", False) for value in found]
        lean = _BASE64_LINE.sub(b"", view)
        text = lean.decode("utf-8", "replace")
        if not lean.isascii():  # as Latin-1 too, where the two readings differ
            text += "\n" + lean.decode("latin-1")
        if contains_private(text, matcher, markup=True, runs=False):
            return [LeakHit(v, "raw bytes", False) for v in values_found(text, matcher)]
    return []


def _all_hits(message_bytes: bytes, matcher: PrivateMatcher) -> list[LeakHit]:
    message = read(message_bytes)
    walked: Walk = walk(message, max_parts=_MAX_PARTS, max_depth=_MAX_DEPTH)
    hits = _header_hits(message, "", matcher)
    for number, leaf in enumerate(walked.leaves, start=1):
        label = "body " if leaf.part is message else f"part {number} "
        if leaf.part is not message:
            hits += _header_hits(leaf.part, label, matcher)
        hits += _body_hits(leaf.part, label, matcher)
    raw = _raw_hits(message_bytes, matcher)
    seen = {hit.value for hit in hits}
    # The raw search is a backstop: it names only what the parsed view missed.
    hits += [hit for hit in raw if hit.value not in seen]
    if walked.notes:
        hits.append(LeakHit("", "the message has more parts than the guard reads", False))
    return list(dict.fromkeys(hits))


def check_outgoing(message_bytes: bytes, private_values: Sequence[str]) -> LeakReport:
    """Search the final bytes; a `CheckedMessage` comes back only when nothing was found."""
    matcher = matcher_for(private_values)
    if matcher is None:
        return LeakReport((), CheckedMessage(message_bytes, _SEAL))
    try:
        hits = _all_hits(message_bytes, matcher)
    except Exception:  # unreadable bytes are not known to be clean
        hits = [LeakHit("", "the message could not be read", False)]
    checked = None if hits else CheckedMessage(message_bytes, _SEAL)
    return LeakReport(tuple(hits), checked)


def _replace_in_part(part: Message, matcher: PrivateMatcher) -> None:
    data = part_bytes(part)
    try:
        text = data.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:
        text = data.decode("utf-8", "replace")
    new_text, count = redact(text, matcher, markup=part.get_content_subtype() == "html")
    if not count:
        return
    # Written by hand rather than with set_content: the compat32 part keeps its other
    # headers (disposition, file name, Content-ID) exactly as composed.
    del part["Content-Transfer-Encoding"]
    part.set_payload(base64.encodebytes(new_text.encode("utf-8")).decode("ascii"))
    part["Content-Transfer-Encoding"] = "base64"
    part.set_param("charset", "utf-8")


def _rebuild(message_bytes: bytes, matcher: PrivateMatcher) -> bytes:
    message = read(message_bytes)
    subject, count = redact(decode_header_text(message, "Subject", []), matcher)
    if count:
        encoded = subject if subject.isascii() else Header(subject, "utf-8").encode()
        message.replace_header("Subject", encoded)
    for part in message.walk():
        if not part.is_multipart() and part.get_content_maintype() == "text":
            _replace_in_part(part, matcher)
    # No ">From " mangling: untouched parts must come out as they went in.
    linesep = "\r\n" if b"\r\n" in message_bytes else "\n"
    return message.as_bytes(policy=email.policy.compat32.clone(linesep=linesep, mangle_from_=False))


def redact_outgoing(message_bytes: bytes, private_values: Sequence[str]) -> LeakReport:
    """Check, and where every hit can be replaced, rebuild the message and check it again.

    The report's `hits` are those of the original bytes; `checked` holds the rebuilt bytes
    (or the original ones when they were clean), or None when the letter must be stopped.
    """
    first = check_outgoing(message_bytes, private_values)
    matcher = matcher_for(private_values)
    if first.checked is not None or matcher is None:
        return first
    if not all(hit.replaceable for hit in first.hits):
        return first
    try:
        rebuilt = _rebuild(message_bytes, matcher)
    except Exception:  # a message we cannot rebuild is one we cannot vouch for
        return first
    second = check_outgoing(rebuilt, private_values)
    return LeakReport(first.hits + second.hits, second.checked, rebuilt=True)
