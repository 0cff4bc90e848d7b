"""Who is writing to whom: the decision made for each recipient of an incoming message.

Pure apart from the two lookups passed in. The decision is taken at RCPT time (to refuse
early with a precise reply); intake keeps a letter's route with the message, and processing
only checks it again against the current records (`recheck`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from relay import replies
from relay.addresses import normalize, split
from relay.config import Config
from relay.store.records import (
    ACTIVE,
    ConsentRequest,
    ModerationGrant,
    Participant,
    PendingCommand,
)


@dataclass(frozen=True)
class LetterRoute:
    sender: Participant
    recipient: Participant


@dataclass(frozen=True)
class OwnAddress:
    """One of the relay's own addresses: a moderator's reply, a bounce of a letter, a
    participant's command or its confirmation, a list, a role address."""

    kind: str  # one of OWN_KINDS
    local: str


@dataclass(frozen=True)
class Refusal:
    reply: str
    reason: str  # for the log: never an address


Route = LetterRoute | OwnAddress | Refusal

_TOKEN = re.compile(r"^moderate\+[0-9a-f]{32}$")
# A letter's VERP address, dated and signed (`relay.verp`), or its older undated form.
_BOUNCE = re.compile(r"^bounce\+\d+-(?:[0-9a-z]+-[0-9a-f]{16}|[0-9a-f]{12})$")
_UNSUBSCRIBE = re.compile(r"^unsubscribe\+p\d+-[0-9a-f]{20}$")
# Where a guardian replies "yes" to a consent request (relay.guardians): one request's token.
_CONSENT = re.compile(r"^consent\+[0-9a-f]{32}$")
# The single-use address that confirms a participant's emailed command (relay.commands).
_CONFIRM = re.compile(r"^confirm\+[0-9a-f]{32}$")
# Lists of the relay: staff news collected into digests, and the staff discussion list.
LIST_ADDRESSES = ("newsletter", "staff")
# Addresses every mail domain answers (RFC 5321 4.5.1, RFC 2142): forwarded to coordinators.
ROLE_ADDRESSES = ("postmaster", "abuse")
# The From of notices (a person may answer it) and their envelope sender (bounces come back).
PROGRAM_ADDRESS = "program"
BOUNCES_ADDRESS = "bounces"
# Where participants (and guardians) write one-word commands: help, pause, resume, stop,
# export, erase.
HELP_ADDRESS = "help"
OWN_KINDS = (
    "moderation",
    "bounce",
    "unsubscribe",
    "consent",
    "confirm",
    HELP_ADDRESS,
    *LIST_ADDRESSES,
    *ROLE_ADDRESSES,
    PROGRAM_ADDRESS,
    BOUNCES_ADDRESS,
)


def own_address(local: str) -> OwnAddress | None:
    if _TOKEN.match(local):
        return OwnAddress("moderation", local)
    if _BOUNCE.match(local):
        return OwnAddress("bounce", local)
    if _UNSUBSCRIBE.match(local):
        return OwnAddress("unsubscribe", local)
    if _CONSENT.match(local):
        return OwnAddress("consent", local)
    if _CONFIRM.match(local):
        return OwnAddress("confirm", local)
    if local in LIST_ADDRESSES or local in ROLE_ADDRESSES:
        return OwnAddress(local, local)
    if local in (PROGRAM_ADDRESS, BOUNCES_ADDRESS, HELP_ADDRESS):
        return OwnAddress(local, local)
    return None


def check_token(
    own: OwnAddress,
    *,
    grant: Callable[[str], ModerationGrant | None],
    unsubscribe_signed: Callable[[str], bool],
    now: float,
    pending: Callable[[str], PendingCommand | None] = lambda _token: None,
    consent_request: Callable[[str], ConsentRequest | None] = lambda _token: None,
) -> OwnAddress | Refusal:
    """A token address is accepted only while it can still do something: a moderation token,
    a command's confirmation or a consent request that exists, is unused and unexpired; an
    unsubscribe address with a good signature. All refusals say the same (`UNKNOWN_ADDRESS`),
    so a sender learns nothing from trying."""
    lookups: dict[str, Callable[[str], ConsentRequest | PendingCommand | ModerationGrant | None]]
    lookups = {"consent": consent_request, "confirm": pending, "moderation": grant}
    if own.kind in lookups:
        found = lookups[own.kind](own.local.partition("+")[2])
        if found is None:
            return Refusal(replies.UNKNOWN_ADDRESS, "unknown-token")
        if found.used:
            return Refusal(replies.UNKNOWN_ADDRESS, "used-token")
        if found.expires < now:
            return Refusal(replies.UNKNOWN_ADDRESS, "expired-token")
    elif own.kind == "unsubscribe" and not unsubscribe_signed(
        own.local.removeprefix("unsubscribe+")
    ):
        return Refusal(replies.UNKNOWN_ADDRESS, "bad-unsubscribe-signature")
    return own


def _check_list_sender(config: Config, own: OwnAddress, mail_from: str) -> Route:
    """Staff lists take mail from listed staff only (authentication is checked later)."""
    if own.kind not in LIST_ADDRESSES:
        return own
    members = [member for _, member in config.staff_libraries(mail_from)] if mail_from else []
    allowed = [m for m in members if own.kind == "staff" or m.may_post_news]
    return own if allowed else Refusal(replies.NOT_STAFF, f"{own.kind}-not-staff")


def is_automatic(headers: Message, envelope_from: str) -> bool:
    """RFC 3834: never answer automatic mail, so two autoresponders cannot loop through us."""
    return null_sender(envelope_from) or automatic_headers(headers)


def null_sender(envelope_from: str) -> bool:
    """The empty return path of bounces and other automatic mail (RFC 5321 4.5.5)."""
    return envelope_from.strip("<> ") == ""


def automatic_headers(headers: Message) -> bool:
    """The header half of `is_automatic`: RFC 3834 and list or autoresponder markers."""
    auto = str(headers.get("Auto-Submitted", "no") or "no").strip().lower()
    precedence = str(headers.get("Precedence", "") or "").strip().lower()
    return (
        not auto.startswith("no")
        or precedence in ("bulk", "list", "junk", "auto_reply")
        or any(headers.get(name) for name in ("X-Autoreply", "X-Autorespond", "List-Id"))
    )


def route_letter(
    config: Config,
    mail_from: str,
    rcpt: str,
    *,
    by_masked: Callable[[str], Participant | None],
    by_email: Callable[[str], list[Participant]],
) -> Route:
    local, domain = split(rcpt)
    if domain != config.relay.domain:
        return Refusal(replies.RELAY_DENIED, "foreign-domain")
    own = own_address(local)
    if own is not None:
        return _check_list_sender(config, own, mail_from)
    recipient = by_masked(f"{local}@{domain}")
    if recipient is None or config.library(recipient.library) is None:
        return Refusal(replies.UNKNOWN_ADDRESS, "unknown-recipient")
    try:
        sender_email = normalize(mail_from) if mail_from else ""
    except ValueError:
        return Refusal(replies.UNKNOWN_ADDRESS, "sender-not-enrolled")
    candidates = (
        [p for p in by_email(sender_email) if config.library(p.library)] if sender_email else []
    )
    if not candidates:
        return Refusal(replies.UNKNOWN_ADDRESS, "sender-not-enrolled")
    paired = [
        p
        for p in candidates
        if recipient.id in p.pals and recipient.library in config.partners_of(p.library)
    ]
    if not paired:
        return Refusal(replies.UNKNOWN_ADDRESS, "not-paired")
    # Siblings may share one family address; any of them paired with this pal is the writer.
    active = [p for p in paired if p.status == ACTIVE]
    if not active:
        return Refusal(replies.SENDER_PAUSED, "sender-paused")
    if recipient.status != ACTIVE:
        return Refusal(replies.PARTICIPANT_PAUSED, "recipient-paused")
    return LetterRoute(sender=active[0], recipient=recipient)


def recheck(
    config: Config, sender: Participant | None, recipient: Participant | None
) -> LetterRoute | Refusal:
    """A route found at RCPT, checked again with the records as they are now: the pairing
    may have ended, or either pal been paused, between the 250 and the hold."""
    if sender is None or recipient is None or config.library(recipient.library) is None:
        return Refusal(replies.UNKNOWN_ADDRESS, "unknown-recipient")
    if config.library(sender.library) is None:
        return Refusal(replies.UNKNOWN_ADDRESS, "sender-not-enrolled")
    if recipient.id not in sender.pals or recipient.library not in config.partners_of(
        sender.library
    ):
        return Refusal(replies.UNKNOWN_ADDRESS, "not-paired")
    if sender.status != ACTIVE:
        return Refusal(replies.SENDER_PAUSED, "sender-paused")
    if recipient.status != ACTIVE:
        return Refusal(replies.PARTICIPANT_PAUSED, "recipient-paused")
    return LetterRoute(sender=sender, recipient=recipient)
