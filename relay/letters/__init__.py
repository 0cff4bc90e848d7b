"""Letters: the one home of a letter's life, from held to delivered (or not).

    holding     read once, scrub once, screen, record, tell moderators
    deciding    approve (perhaps edited or redacted), reject, keep on hold, remove a file
    changes     a moderator's changes (files removed, edit, redaction), kept apart
    redacting   what is flagged replaced by a neutral mark (text, HTML text, subject)
    delivering  the copies to deliver, reconcile, and the outcomes: delivered, failed, bounced
    lifecycle   the states, the events allowed in each, and `apply`, which alone changes them
    versions    the scrubbed version kept at hold, so approval never scrubs again

To change what happens when a letter is approved, read `deciding.approve`; delivered,
failed or bounced: `delivering`; what may happen in which state: `lifecycle.RULES`.
"""

from relay.letters.deciding import (
    Changed,
    PalAway,
    approve,
    edited_version,
    keep_holding,
    reject,
    remove_file,
)
from relay.letters.delivering import (
    as_delivered,
    bounced,
    deliverable,
    delivered,
    failed,
    hold_again,
    reconcile,
    teammate_of,
    teammate_reads,
)
from relay.letters.holding import LetterHeaders, hold
from relay.letters.lifecycle import NotNow

__all__ = [
    "Changed",
    "LetterHeaders",
    "NotNow",
    "PalAway",
    "approve",
    "as_delivered",
    "bounced",
    "deliverable",
    "delivered",
    "edited_version",
    "failed",
    "hold",
    "hold_again",
    "keep_holding",
    "reconcile",
    "reject",
    "remove_file",
    "teammate_of",
    "teammate_reads",
]
