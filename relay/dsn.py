"""What a message sent back to one of our envelope senders says (pure: bytes in, a value out).

In order: an RFC 3464 report (`multipart/report; report-type=delivery-status`) is read field
by field (Action, Status, Final-Recipient); a bounce in an older, non-standard format (Exim,
qmail, Postfix's text, Microsoft, Yahoo...) is recognised by `flufl.bounce`'s detectors; an
automatic answer (RFC 3834 `Auto-Submitted`, `X-Autoreply`, `Precedence: auto_reply`, an
"out of office" subject) that is none of those is an auto-reply. Anything else is unknown:
a person writing to a return path, which is no evidence that a letter was not delivered.

Order matters: a real DSN carries `Auto-Submitted: auto-replied` too.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from typing import Literal

from flufl.bounce import all_failures

Outcome = Literal["failed", "delayed", "delivered", "auto-reply", "unknown"]

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_OUT_OF_OFFICE = re.compile(
    r"(?i)\b(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|autoreply|"
    r"vacation|on holiday|away from (my|the) (desk|office)|abwesenheit|"
    r"r[ée]ponse automatique|absence|respuesta autom[áa]tica|fuera de la oficina)\b"
)
_AUTO_PRECEDENCE = ("auto_reply", "bulk", "junk")


@dataclass(frozen=True)
class Returned:
    """What came back. `recipients` are the addresses the report names (real addresses of
    the readers we wrote to: never logged or shown to the other side)."""

    outcome: Outcome
    recipients: tuple[str, ...] = ()
    status: str = ""  # RFC 3463 code such as "5.1.1", when the report gives one
    source: str = ""  # "rfc3464", a flufl.bounce detection, or the auto-reply marker seen


def read(raw: bytes) -> Returned:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    return _report(message) or _heuristic(message) or _auto_reply(message) or Returned("unknown")


# --- RFC 3464 ------------------------------------------------------------------------------


def _address(field: str) -> str:
    """`rfc822; someone@example.org` → the address."""
    _, _, address = field.partition(";")
    return (address or field).strip().strip("<>").strip().lower()


def _report(message: Message) -> Returned | None:
    blocks = [
        block
        for part in message.walk()
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status")
        for block in _status_blocks(part)
    ]
    per_recipient = [b for b in blocks if b.get("Final-Recipient") or b.get("Original-Recipient")]
    if not per_recipient:
        return None
    found: dict[str, list[tuple[str, str]]] = {}
    for block in per_recipient:
        action = str(block.get("Action", "")).strip().lower()
        status_match = _STATUS.search(str(block.get("Status", "")))
        status = ".".join(status_match.groups()) if status_match else ""
        if action not in ("failed", "delayed", "delivered", "relayed", "expanded"):
            action = {"5": "failed", "4": "delayed", "2": "delivered"}.get(status[:1], "")
        recipient = _address(str(block.get("Final-Recipient") or block.get("Original-Recipient")))
        found.setdefault(action, []).append((recipient, status))
    for action, outcome in (
        ("failed", "failed"),
        ("delayed", "delayed"),
        ("delivered", "delivered"),
        ("relayed", "delivered"),
        ("expanded", "delivered"),
    ):
        if action in found:
            recipients = tuple(r for r, _ in found[action])
            status = next((s for _, s in found[action] if s), "")
            fallback = "5.0.0" if outcome == "failed" else "4.0.0" if outcome == "delayed" else ""
            return Returned(outcome, recipients, status or fallback, "rfc3464")  # type: ignore[arg-type]
    return None


def _status_blocks(part: Message) -> list[Message]:
    """The per-message and per-recipient field blocks of a delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    # A report whose body was not parsed into blocks (a transfer encoding, say).
    text = part.get_payload(decode=True)
    if not isinstance(text, bytes):
        return []
    chunks = re.split(r"\r?\n\s*\r?\n", text.decode("utf-8", "replace"))
    return [email.message_from_string(chunk.strip() + "\n") for chunk in chunks if chunk.strip()]


# --- other bounce formats ------------------------------------------------------------------


def _heuristic(message: Message) -> Returned | None:
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripped over odd input: no evidence either way
        return None
    if not temporary and not permanent:
        return None
    outcome: Outcome = "failed" if permanent else "delayed"
    recipients = tuple(
        sorted(_decoded(r) for r in (permanent if permanent else temporary) if _decoded(r))
    )
    codes = [".".join(m.groups()) for m in _STATUS.finditer(_text_of(message))]
    wanted = "5" if permanent else "4"
    status = next((c for c in codes if c.startswith(wanted)), f"{wanted}.0.0")
    return Returned(outcome, recipients, status, "flufl.bounce")


def _decoded(recipient: bytes | str) -> str:
    text = recipient.decode("utf-8", "replace") if isinstance(recipient, bytes) else recipient
    return text.strip().strip("<>").lower()


def _text_of(message: Message) -> str:
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            body = part.get_payload(decode=True)
            if isinstance(body, bytes):
                texts.append(body.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(texts)


# --- RFC 3834 ------------------------------------------------------------------------------


def _auto_reply(message: Message) -> Returned | None:
    auto = str(message.get("Auto-Submitted", "no") or "no").strip().lower()
    if not auto.startswith("no"):
        return Returned("auto-reply", source=f"auto-submitted: {auto.split(';')[0]}")
    for name in ("X-Autoreply", "X-Autorespond"):
        if message.get(name):
            return Returned("auto-reply", source=name.lower())
    precedence = str(message.get("Precedence", "") or "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return Returned("auto-reply", source=f"precedence: {precedence}")
    if _OUT_OF_OFFICE.search(str(message.get("Subject", "") or "")):
        return Returned("auto-reply", source="subject")
    return None
