"""The records the relay keeps: participants and letters, as plain frozen values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Self, get_args

# A participant's status: only an active participant may write or receive letters.
ParticipantStatus = Literal["active", "paused", "left"]
PARTICIPANT_STATUSES: tuple[ParticipantStatus, ...] = get_args(ParticipantStatus)
ACTIVE: ParticipantStatus = "active"
PAUSED: ParticipantStatus = "paused"
LEFT: ParticipantStatus = "left"  # no longer in the program; the record stays

HELD = "held"
APPROVED = "approved"  # in the outbox, not yet confirmed by the transport
DELIVERED = "delivered"
REJECTED = "rejected"
FAILED = "failed"
FINAL_STATES = (DELIVERED, REJECTED, FAILED)


class _Record:
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        values = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known
        }
        return cls(**values)

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
    created_at: str = ""
    guardian: str = ""  # optional: gets a copy of every letter to and from this participant
    prompts_paused: bool = False  # unsubscribed from the monthly topic emails only

    @property
    def number(self) -> int:
        return int(self.id.removeprefix("p"))


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
    status: str = HELD
    flags: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    removed: tuple[dict[str, str], ...] = ()
    message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    out_message_id: str = ""
    decided_by: str = ""
    decided_at: str = ""
    reason: str = ""
    delivered_at: str = ""
    last_error: str = ""
    edited_by: str = ""  # set when a moderator redacted the text before approving
    history: tuple[dict[str, str], ...] = field(default=())

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
            "flags": [dict(flag) for flag in self.flags],
            "notes": list(self.notes),
        }
