"""Reading the parts of an incoming message that every reply handler needs.

Pure, no I/O. Moderators' replies (`by_email`), guardians' answers (`guardians`), program@
(`own_mail`) and participants' commands (`participant_mail`) read a message's writer, its
envelope sender, its text and its Message-ID the same way, so an address compares equal
to the one the store or the config keeps: both went through `relay.addresses.normalize`
(lower case, Unicode domain, NFC), whatever form the writer's mail program used
(`Ana@XN--BCHER-KVA.example` is `ana@bücher.example`).
"""

from __future__ import annotations

import hashlib
import hmac
from email.message import EmailMessage

from relay.addresses import normalize
from relay.compose import html_to_text


def from_address(message: EmailMessage) -> str:
    """The From line's one address, normalized; "" when there is none, more than one, or
    it is not an address."""
    try:
        found = list(message["From"].addresses) if message["From"] else []
    except (AttributeError, IndexError, ValueError):
        return ""
    if len(found) != 1:
        return ""
    return envelope(str(found[0].addr_spec))


def envelope(mail_from: str) -> str:
    """An envelope sender (`MAIL FROM`), normalized; "" for the null sender or a bad one."""
    try:
        return normalize(mail_from.strip("<> ")) if mail_from.strip("<> ") else ""
    except ValueError:
        return ""


def body_text(message: EmailMessage) -> str:
    """What the writer wrote: the plain text part, or the HTML part read as text."""
    try:
        part = message.get_body(("plain", "html"))
        content = part.get_content() if part is not None else ""
    except (LookupError, ValueError, AttributeError):
        return ""
    if part is None or not isinstance(content, str):
        return ""
    return html_to_text(content) if part.get_content_type() == "text/html" else content


def message_id(message: EmailMessage) -> str | None:
    """The message's own Message-ID, to thread an answer under it; None when it has none."""
    value = message.get("Message-ID")
    return str(value).strip() or None if value else None


def address_digest(secret: bytes, address: str) -> str:
    """A name for an address in store keys, file names and logs that does not reveal it
    (keyed: without the relay's secret nobody can test a guess)."""
    return hmac.new(secret, address.lower().encode(), hashlib.sha256).hexdigest()[:16]
