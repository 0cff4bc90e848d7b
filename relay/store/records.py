"""The records the relay keeps: participants and letters, as plain frozen values.

A letter's states and the events of its life are declared here as `Literal` types, once;
which event may happen in which state is declared beside the code that applies it
(`relay.letters.lifecycle`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Final, Literal, NamedTuple, Self, get_args

from relay.screen import Flag
from relay.scrub.model import Removal

# A participant's status: only an active participant may write or receive letters.
ParticipantStatus = Literal["active", "paused", "left"]
PARTICIPANT_STATUSES: tuple[ParticipantStatus, ...] = get_args(ParticipantStatus)
ACTIVE: ParticipantStatus = "active"
PAUSED: ParticipantStatus = "paused"
LEFT: ParticipantStatus = "left"  # no longer in the program; the record stays

# A guardian's consent for a participant under their library's consent age (relay.consent):
# "" not needed (no age known under it, or records written before consent was asked);
# "pending" asked, not yet given: nothing is sent to or from them; "given"; "withdrawn"
# (they are paused at once).
ConsentState = Literal["", "pending", "given", "withdrawn"]
CONSENT_STATES: tuple[ConsentState, ...] = get_args(ConsentState)
# How consent was given: the link in the request, a reply to it, or on paper at the library.
ConsentMethod = Literal["", "link", "reply", "paper"]

# What a participant is: one person ("", as records written before say, or "person"), or a
# group (a class or a club) writing together, whose real address is its leader's.
ParticipantKind = Literal["", "person", "group"]
PARTICIPANT_KINDS: tuple[ParticipantKind, ...] = get_args(ParticipantKind)
GROUP: Final = "group"

LetterStatus = Literal["held", "approved", "delivered", "rejected", "failed", "bounced"]
HELD: Final = "held"
APPROVED: Final = "approved"  # in the outbox, not yet confirmed by the transport
DELIVERED: Final = "delivered"
REJECTED: Final = "rejected"
FAILED: Final = "failed"
BOUNCED: Final = "bounced"  # delivered, then returned by the pal's mail server
FINAL_STATES: tuple[LetterStatus, ...] = (DELIVERED, REJECTED, FAILED, BOUNCED)

# Whether the letter verifiably came from its writer's own mailbox (relay/authentication.py);
# "unchecked" for letters held before the relay checked.
SenderCheck = Literal["verified", "unverified", "unchecked"]

# What can happen to a letter; the same word in its history, the audit log and the log file.
LetterEvent = Literal[
    "held",
    "file-removed",
    "approved",
    "rejected",
    "kept-on-hold",
    "held-again",
    "delivered",
    "failed",
    "bounced",
]


@dataclass(frozen=True)
class Step:
    """One event in a letter's history; `by` is the moderator's display name, if any."""

    at: str
    event: LetterEvent
    by: str = ""

    @classmethod
    def of(cls, data: Step | dict[str, Any]) -> Step:
        if isinstance(data, Step):
            return data
        event = str(data.get("event", ""))
        # Before one vocabulary, a moderator's "not yet" was written with spaces.
        event = "kept-on-hold" if event == "kept on hold" else event
        return cls(at=str(data.get("at", "")), event=event, by=str(data.get("by", "")))  # type: ignore[arg-type]


def _removal(data: Removal | dict[str, Any]) -> Removal:
    if isinstance(data, Removal):
        return data
    return Removal(kind=str(data.get("kind", "")), detail=str(data.get("detail", "")))


def _flag(data: Flag | dict[str, Any]) -> Flag:
    if isinstance(data, Flag):
        return data
    return Flag(
        kind=data.get("kind", "keyword"),
        text=str(data.get("text", "")),
        part=data.get("part", "text"),
        start=int(data.get("start", 0)),
        end=int(data.get("end", 0)),
    )


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    return names


class _Record:
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**cls._values(data))

    @classmethod
    def _values(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Known fields only (a newer record read by an older relay), JSON lists as tuples."""
        known = _field_names(cls)
        return {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]

    def but(self, **changes: Any) -> Self:
        return replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class Participant(_Record):
    id: str
    library: str
    name: str
    email: str
    language: str
    masked: str
    status: ParticipantStatus = ACTIVE
    pals: tuple[str, ...] = ()
    # The participant of the same library they write together with to their one pal
    # (`[matching] uneven = "together"`): the pal's letters to either reach both. "" for
    # none, as records written before read.
    writes_with: str = ""
    created_at: str = ""
    guardian: str = ""  # optional: gets a copy of every letter to and from this participant
    prompts_paused: bool = False  # unsubscribed from the monthly topic emails only
    # Letters to this participant returned for good by their mail server, one after another;
    # back to 0 when their mail is seen to work again (see relay.bounces).
    bounces: int = 0
    # Display names the participant's own mail has used ("Maya Castellanos"), most recent
    # first (relay.scrub.names): private, shown only to their own library's staff, never
    # delivered. Records written before have none, which reads as ().
    known_names: tuple[str, ...] = ()
    # Enrolment details (all optional): the year of birth, or an age band such as "9-11"
    # when the library records only that; interests for matching pals; the guardian's name
    # and whether they get a copy of every letter (when `guardian` is set).
    birth_year: int = 0
    age_band: str = ""
    interests: tuple[str, ...] = ()
    guardian_name: str = ""
    guardian_copies: bool = True
    consent: ConsentState = ""
    consent_at: str = ""  # ISO time consent was given or withdrawn
    consent_method: ConsentMethod = ""
    # Why they are paused: "asked" (by them or their guardian, so they may resume by email),
    # "staff", "mailbox-failing", "consent-withdrawn"; "" for records paused before.
    pause_reason: str = ""
    # When they left the program (ISO; `participants.leave`): retention erases them
    # `[retention] left_months` later. Records of people who left before have "" (the audit
    # log's `left` entry says when).
    left_at: str = ""
    # A group (`kind` "group": a class or a club) is named by its own name ("Class 4B"),
    # writes from its teacher's or leader's address and needs no guardian's consent (its
    # leader is an adult; the library keeps the members' consent on paper). `members`: the
    # first names of its members, for its own library's staff only, never delivered.
    kind: ParticipantKind = ""
    members: tuple[str, ...] = ()
    # The pals this participant was sent a welcome email about (`relay.welcomes`): once each.
    welcomed: tuple[str, ...] = ()
    # Pals whose welcome waits until both may correspond (consent, resume): `welcomes.pending`.
    welcome_owed: tuple[str, ...] = ()

    @property
    def is_group(self) -> bool:
        return self.kind == GROUP

    @property
    def guardian_for_copies(self) -> str:
        """The guardian's address when they get copies of letters and program mail, "" when
        there is no guardian or they asked for none."""
        return self.guardian if self.guardian_copies else ""

    @property
    def number(self) -> int:
        return int(self.id.removeprefix("p"))

    @property
    def may_correspond(self) -> bool:
        """Consent, where it is needed, is given: letters may go to and from them."""
        return self.consent in ("", "given")


@dataclass(frozen=True)
class Letter(_Record):
    id: int
    spool_id: str
    sender: str
    recipient: str
    sender_masked: str
    recipient_masked: str
    sender_library: str
    recipient_library: str
    subject: str
    received_at: str
    status: LetterStatus = HELD
    flags: tuple[Flag, ...] = ()
    notes: tuple[str, ...] = ()
    removed: tuple[Removal, ...] = ()
    message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    out_message_id: str = ""
    decided_by: str = ""
    decided_at: str = ""
    reason: str = ""
    delivered_at: str = ""
    last_error: str = ""
    edited_by: str = ""  # set when a moderator edited or redacted the letter as they approved
    history: tuple[Step, ...] = field(default=())
    sender_check: SenderCheck = "unchecked"
    sender_results: str = ""  # the Authentication-Results the check read (no address in it)
    # When retention removed the letter's contents ("" while they are kept): what is left is
    # its number, libraries, status and dates (`reduced`).
    reduced_at: str = ""

    @property
    def sender_unverified(self) -> bool:
        return self.sender_check == "unverified"

    @property
    def final_at(self) -> str:
        """When the letter reached the state it is in (ISO); "" while it is not final."""
        if self.status not in FINAL_STATES:
            return ""
        steps = [step.at for step in self.history if step.event == self.status and step.at]
        return steps[-1] if steps else self.delivered_at or self.decided_at or self.received_at

    def reduced(self, at: str) -> Letter:
        """What retention keeps of a letter: number, libraries, status, dates and the history
        of events without names; nothing of the writer, the pal or what was written."""
        return Letter(
            id=self.id,
            spool_id="",
            sender="",
            recipient="",
            sender_masked="",
            recipient_masked="",
            sender_library=self.sender_library,
            recipient_library=self.recipient_library,
            subject="",
            received_at=self.received_at,
            status=self.status,
            decided_at=self.decided_at,
            delivered_at=self.delivered_at,
            history=tuple(Step(at=step.at, event=step.event) for step in self.history),
            sender_check=self.sender_check,
            reduced_at=at,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        values = cls._values(data)
        # Lists stay empty for most letters: convert only what is there.
        if flags := values.get("flags"):
            values["flags"] = tuple(map(_flag, flags))
        if removed := values.get("removed"):
            values["removed"] = tuple(map(_removal, removed))
        if history := values.get("history"):
            values["history"] = tuple(map(Step.of, history))
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        """The fields `queue list` shows: no real address is in a letter record at all."""
        return {
            "id": self.id,
            "status": self.status,
            "from": self.sender_masked,
            "to": self.recipient_masked,
            "from_library": self.sender_library,
            "to_library": self.recipient_library,
            "subject": self.subject,
            "received_at": self.received_at,
            "flags": [
                {"kind": f.kind, "text": f.text, "part": f.part, "start": f.start, "end": f.end}
                for f in self.flags
            ],
            "notes": list(self.notes),
            "sender_check": self.sender_check,
            "sender_results": self.sender_results,
        }


class LetterParties(NamedTuple):
    """Who wrote a letter to whom, and when it came: all a pass over every letter needs
    (relay.quiet), read without building the whole `Letter`. Empty ids: reduced."""

    id: int
    sender: str
    recipient: str
    received_at: str


# --- records kept under lookup keys ------------------------------------------------------
# Each maps one stored JSON value, field for field; the store reads and writes them.


@dataclass(frozen=True)
class ModerationGrant:
    """What a held-letter notice's token allows: one moderator deciding one letter."""

    token: str
    letter: int
    moderator: str
    library: str
    expires: float  # seconds since the epoch
    used: bool = False
    used_at: str = ""  # ISO time of the decision that used it


@dataclass(frozen=True)
class ConsentRequest:
    """A guardian's consent request, recorded under the hash of its token: the link in the
    request and the `consent+<token>@` address a reply goes to. Good once, until `expires`;
    after consent it still lets the guardian withdraw it. It speaks only for the guardian it
    was sent to (`guardian`, a SHA-256 of their address): a guardian replaced since holds a
    link that leads nowhere."""

    participant: str
    expires: float  # seconds since the epoch
    used: bool = False
    used_at: str = ""  # ISO time it was answered
    answer: str = ""  # "given" or "declined" once used
    guardian: str = ""  # `address_digest` of the guardian's address it was sent to

    def usable(self, at: float) -> bool:
        return not self.used and self.expires >= at

    def for_guardian(self, address: str) -> bool:
        """Whether it was sent to `address` (the participant's guardian now)."""
        return bool(address) and self.guardian == address_digest(address)


def address_digest(address: str) -> str:
    """A SHA-256 of an address (compared without case): kept where the address is not."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class PendingCommand:
    """A participant's emailed command (pause, resume, stop, export or erase) that must be
    confirmed (the authentication verdict did not vouch for it, or it is an erasure, always
    confirmed): carried out only when the enrolled address answers its
    `confirm+<token>@` request. `asked_by` says whose address that is ("participant" or
    "guardian"). Removed by the daily purge once expired."""

    token: str
    action: str  # "pause", "resume", "stop", "export" or "erase" (relay.commands.ACTIONS)
    participant: str
    address: str  # the enrolled address the request went to, which alone may confirm
    asked_by: str
    expires: float  # seconds since the epoch
    used: bool = False
    used_at: str = ""


@dataclass(frozen=True)
class SignInLink:
    """A staff sign-in link, recorded under the hash of its secret part."""

    email: str
    library: str
    expires: float  # seconds since the epoch
    used: bool = False
    used_at: float | None = None

    def usable(self, at: float) -> bool:
        return not self.used and self.expires >= at


@dataclass(frozen=True)
class ImapState:
    """How far catch-up got in one mailbox folder, valid while its UIDVALIDITY holds."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class DigestState:
    """The last newsletter digest a library got from its partnership (defaults: none yet)."""

    last_post: int = 0
    volume: int = 0
    issue: int = 0
    year: int | None = None
    sent_at: str | None = None  # ISO time; None: never sent
