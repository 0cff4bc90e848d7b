"""Erasing a participant: nothing about them stays but records the program counts with.

What goes, all under the store's lock (`store.exclusively`), so a running `serve` and
other commands wait rather than interleave:

- spool files of every letter they wrote or received: the original as received, the
  scrubbed version, the moderators' changes; incoming, set-aside, outbox and refused
  (`failed/`) messages from or to them, or about their letters; copies in the local
  delivery Maildir that were to, from or about them (a letter's copies and notices are
  known by their outbox names; anything else by an address of theirs in its decoded text).
  A message from someone else to them and to other pals (one spool item for all its
  letters) stays for the others: its original and the others' versions are kept, and an
  incoming or set-aside one only loses them from its envelope (`rcpt_tos`, routes);
- audit entries naming them or their letters keep only their event, time, ids and who
  acted (no reasons, errors, addresses or names);
- the lookup keys of their letters (spool item, Message-ID, notice tokens) and their own
  (masked and real address, daily notice counts, emailed commands waiting for their
  confirmation, their guardian's consent requests);
- each letter record becomes a line with its id, libraries, status and dates only; a letter
  still held or approved is rejected (nothing more is sent of it);
- their record (with their guardian and the names learned from their mail), and their
  pals' links to them.

The record goes last, so an erasure interrupted by a crash is finished by running it again.
One audit entry `erased` is written with the participant's id, library and who asked.
Then both libraries' moderators are told, whichever way the erasure was asked for (command
line, dashboard, email): their own library by id and masked address (`erased_own`), each
pal's library so it finds its patron a new pal (`erased_pal`); never by name, which would
keep what was just erased.

What stays: the names of delivered outbox entries in `spool/sent/` (ids only), the daily
counts of answers to emailed commands (kept under a keyed digest of an address, which says
nothing without the relay's secret), and the log file, whose INFO
lines carry ids and masked addresses only.

A message the outbox worker of a running `serve` read just before the erasure may still
be handed to the transport (and so reach the Maildir) after it.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

from relay import guard, notices
from relay.context import Context
from relay.errors import NotFound
from relay.rights.export import about
from relay.store.files import fsync_dir, write_atomic
from relay.store.records import FINAL_STATES, REJECTED, Letter, Participant, Step

log = logging.getLogger("relay")

# What an audit entry about an erased participant keeps: ids, times, who acted, how.
AUDIT_KEPT = frozenset(
    {"at", "event", "participant", "participants", "letter", "letters", "library"}
    | {"by", "via", "spool", "count", "attempts"}
)

# Outbox names of a letter's copies and of notices about it (relay.letters, relay.notices,
# relay.bounces): `<kind>-<letter>` or `<kind>-<letter>-<more>`.
_LETTER_ITEM = re.compile(
    r"^(?:letter|notice|waiting|mail-returned|pal-paused|pal-away|rejected|not-delivered|failed)"
    r"-(\d+)(?:-|$)"
)
# A Maildir file's name: `<time>.<outbox item>-<recipient number>.<host>`.
_MAILDIR_NAME = re.compile(r"^\d+\.([^.]+)-\d+\.")


@dataclass(frozen=True)
class Erased:
    participant: str
    library: str
    letters: int  # letter records reduced to their figures
    files: int  # files removed from the spool and the Maildir


@dataclass(frozen=True)
class Preview:
    """What an erasure would remove, for the confirmation a person is asked for."""

    participant: Participant
    written: int
    received: int
    waiting: int  # held or approved: they will not be sent


def erasure_preview(ctx: Context, participant: Participant) -> Preview:
    letters = ctx.store.letters_of(participant.id)
    written = sum(1 for letter in letters if letter.sender == participant.id)
    waiting = sum(1 for letter in letters if letter.status not in FINAL_STATES)
    return Preview(participant, written, len(letters) - written, waiting)


def erase(
    ctx: Context, participant: Participant, *, by: str = "", via: str = "cli", asked_by: str = ""
) -> Erased:
    """Blocking: remove the participant and everything about them (see the module's text).
    `by` is the staff member who erased them; `asked_by` ("participant" or "guardian") who
    asked by email. Both libraries' moderators are told, except when the retention rule
    erases someone who left the program `[retention] left_months` ago, or whose guardian's
    consent never came (`no_consent_months`; via "retention")."""
    started = time.time()
    found = {letter.id: letter for letter in ctx.store.letters_of(participant.id)}
    before: list[Participant] = []

    def step() -> Erased:
        current = ctx.store.participant(participant.id)
        if current is None:
            raise NotFound(f"participant {participant.id} not found")
        before.append(current)
        before.extend(p for p in map(ctx.store.participant, current.pals) if p is not None)
        # Letters held or archived since the search above began, and the newest records.
        for letter in ctx.store.letters_of(current.id, archived_since=started - 1):
            found[letter.id] = letter
        letters = [
            found[i] for i in sorted(found) if current.id in (found[i].sender, found[i].recipient)
        ]
        removed = _remove_files(ctx, current, letters)
        ids = {letter.id for letter in letters}
        ctx.store.rewrite_audit(lambda entry: _without_details(entry, current, ids))
        staff = [member.email for library in ctx.config.libraries for member in library.staff]
        for letter in letters:
            ctx.store.forget_letter_keys(letter, staff)
        ctx.store.replace_letters(_reduced(letter) for letter in letters)
        ctx.store.forget_pending_commands(current.id)
        ctx.store.forget_consent_requests(current.id)
        ctx.store.remove_participant(current.id, _days_since(current.created_at))
        details = {"participant": current.id, "library": current.library, "via": via}
        ctx.store.audit("erased", **details, **({"by": by} if by else {}), letters=len(letters))
        return Erased(current.id, current.library, len(letters), removed)

    erased = ctx.store.exclusively(step)
    if via != "retention":  # they left long ago (their pal's library knew), or never took part
        _tell_libraries(ctx, before[0], before[1:], by=by, asked_by=asked_by)
    log.info(
        "erased participant=%s library=%s letters=%d files=%d via=%s",
        erased.participant,
        erased.library,
        erased.letters,
        erased.files,
        via,
    )
    return erased


def _tell_libraries(
    ctx: Context, person: Participant, pals: list[Participant], *, by: str, asked_by: str
) -> None:
    """Both libraries' moderators learn of the erasure: by the person's id and masked
    address only, and who erased them (a staff member's name) or asked (by email)."""
    own = ctx.config.library(person.library)
    member = own.staff_member(by) if own and by else None
    hidden = guard.addresses_of([person, *pals])
    notices.tell_moderators(
        ctx,
        person.library,
        "erased_own",
        f"erased-{person.id}-own",
        private=hidden,
        participant=person.id,
        masked=person.masked,
        asked_by=asked_by,
        erased_by=member.name if member else "",
        pal_names=[p.name for p in pals],
    )
    for pal in pals:
        notices.tell_moderators(
            ctx,
            pal.library,
            "erased_pal",
            f"erased-{person.id}-pal-{pal.id}",
            private=hidden,
            masked=person.masked,
            from_library=own.name if own else person.library,
            pal_name=pal.name,
            pal_masked=pal.masked,
        )


# --- records -------------------------------------------------------------------------------


def _reduced(letter: Letter) -> Letter:
    """The letter as a line of the program's figures: id, libraries, status and dates (as
    retention keeps an old one: `Letter.reduced`)."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    kept = letter.reduced(at)
    if letter.status not in FINAL_STATES:  # held or approved: it will not be sent now
        kept = kept.but(status=REJECTED, history=(*kept.history, Step(at=at, event="rejected")))
    return kept


def _without_details(
    entry: dict[str, Any], participant: Participant, letters: set[int]
) -> dict[str, Any]:
    """An entry naming the participant, one of their letters or one of their addresses
    (a notice's `to`), reduced to `AUDIT_KEPT`; any other entry as it is."""
    addresses = {participant.email, participant.masked, participant.guardian} - {""}
    text = json.dumps(entry, ensure_ascii=False).lower()
    if not about(entry, participant.id, letters) and not any(a in text for a in addresses):
        return entry
    return {key: value for key, value in entry.items() if key in AUDIT_KEPT}


def _days_since(created_at: str) -> Iterable[date]:
    """Every day from enrolment to today (UTC): the days a notice count may be kept for."""
    today = datetime.now(UTC).date()
    try:
        first = datetime.fromisoformat(created_at).date() if created_at else today
    except ValueError:
        first = today
    return (first + timedelta(days=n) for n in range((today - first).days + 1))


# --- files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    """How the files name a participant: their id, addresses and letters."""

    id: str
    addresses: frozenset[str]  # real, guardian's and masked, lower-case
    letters: frozenset[int]

    def item_is_theirs(self, item_id: str) -> bool:
        found = _LETTER_ITEM.match(item_id)
        if found is not None and int(found.group(1)) in self.letters:
            return True
        if item_id.startswith("consent-"):  # consent-<what>-<participant>-<digest>
            return f"-{self.id}-" in item_id
        return item_id.startswith("prompt-") and item_id.endswith(f"-{self.id}")

    def meta_is_theirs(self, meta: dict[str, Any]) -> bool:
        """An incoming, set-aside, outbox or failed marker from, to or about them."""
        to = [str(a).lower() for a in (*(meta.get("to") or ()), *(meta.get("rcpt_tos") or ()))]
        routes = [str(part) for route in meta.get("routes") or () for part in route]
        return (
            meta.get("letter") in self.letters
            or meta.get("participant") == self.id
            or str(meta.get("mail_from") or "").lower() in self.addresses
            or any(address in self.addresses for address in to)
            or self.id in routes
        )

    def named_in(self, raw: bytes) -> bool:
        text = readable_text(raw)
        return any(address in text for address in self.addresses)


def _remove_files(ctx: Context, participant: Participant, letters: list[Letter]) -> int:
    # An address a sibling or their guardian still uses (a family address) does not tell
    # whose a message is: such messages are known by their letters and the masked address.
    shared = {
        address
        for other in ctx.store.participants()
        if other.id != participant.id
        for address in (other.email, other.guardian)
    }
    addresses = {participant.email, participant.masked, participant.guardian} - shared - {""}
    person = _Person(
        participant.id,
        frozenset(a.lower() for a in addresses),
        frozenset(letter.id for letter in letters),
    )
    spool = ctx.spool
    doomed: set[Path] = set()
    kept = _shared_items(ctx, participant, letters)
    for letter in letters:
        item = letter.spool_id
        if item and item not in kept:
            doomed |= {spool.path("messages", item), spool.path("attempts", item, "")}
            for queue in ("incoming", "unprocessed"):
                doomed |= {spool.path(queue, item), spool.path(queue, item, ".json")}
        if item:
            doomed.add(spool.path("scrubbed", f"{item}.{letter.recipient}", ".json"))
        for suffix in (".json", ".txt"):
            doomed.add(spool.path("edits", f"letter-{letter.id}", suffix))
    for queue in ("incoming", "unprocessed", "outbox", "failed"):
        doomed |= _queue_items(spool.root / queue, person)
    doomed |= _maildir_files(ctx.config.delivery.maildir, person)
    removed = 0
    for path in sorted(doomed):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    for folder in {path.parent for path in doomed if path.parent.is_dir()}:
        fsync_dir(folder)  # the removals survive a power cut
    return removed


def _shared_items(ctx: Context, participant: Participant, letters: list[Letter]) -> set[str]:
    """Spool items of letters to the participant that also carry a letter of the same
    message to someone else (a message to two pals is one item): they stay for that letter."""
    ids = {letter.id for letter in letters}
    received = {
        letter.spool_id for letter in letters if letter.spool_id and letter.sender != participant.id
    }
    return {
        other.spool_id
        for other in ctx.store.letters_from_items(received)
        if other.id not in ids and other.recipient != participant.id
    }


def _queue_items(folder: Path, person: _Person) -> set[Path]:
    """A queue's items (message and marker) from, to or about the person. An incoming or
    set-aside message from someone else to them and to others stays, for the others: only
    its envelope forgets them (`_without_recipient`)."""
    found: set[Path] = set()
    for marker in folder.glob("*.json"):
        body = marker.with_suffix(".eml")
        try:
            meta = json.loads(marker.read_bytes())
            theirs = (
                person.item_is_theirs(marker.stem)
                or (isinstance(meta, dict) and person.meta_is_theirs(meta))
                or (body.exists() and person.named_in(body.read_bytes()))
            )
            if theirs and folder.name in ("incoming", "unprocessed"):
                theirs = not _without_recipient(marker, meta, person)
        except (OSError, ValueError):
            continue
        if theirs:
            found |= {marker, body, folder.parent / "attempts" / marker.stem}
    return found


def _without_recipient(marker: Path, meta: Any, person: _Person) -> bool:
    """Take the person out of an incoming message's envelope when it is from someone else
    and also for others; False (nothing changed) when the message is wholly theirs."""
    if not isinstance(meta, dict):
        return False
    if str(meta.get("mail_from") or "").lower() in person.addresses:
        return False
    rcpts = [str(r) for r in meta.get("rcpt_tos") or ()]
    others = [r for r in rcpts if r.lower() not in person.addresses]
    if not others:
        return False
    if len(others) < len(rcpts):
        routes = [
            route
            for route in meta.get("routes") or ()
            if isinstance(route, list)
            and len(route) == 3
            and str(route[0]).lower() not in person.addresses
            and route[2] != person.id
        ]
        write_atomic(marker, json.dumps(meta | {"rcpt_tos": others, "routes": routes}).encode())
    return True


def _maildir_files(root: Path | None, person: _Person) -> set[Path]:
    """Delivered copies in the local Maildir that were to, from or about the person."""
    found: set[Path] = set()
    if root is None:
        return found
    for sub in ("new", "cur", "tmp"):
        for path in sorted((root / sub).glob("*")):
            named = _MAILDIR_NAME.match(path.name)
            try:
                if (named and person.item_is_theirs(named.group(1))) or person.named_in(
                    path.read_bytes()
                ):
                    found.add(path)
            except OSError:
                continue
    return found


# --- reading a message as a person would ---------------------------------------------------


def readable_text(raw: bytes) -> str:
    """A message's headers and parts decoded (encoded words, base64, quoted-printable,
    character sets), lower-case: what is searched for a person's addresses."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:  # a message too odd to parse is searched as it is
        return raw.decode("utf-8", "replace").lower()
    pieces = [raw.decode("utf-8", "replace")]
    for part in message.walk():
        pieces += [str(value) for value in part.values()]
        pieces.append(_payload(part))
    return "\n".join(pieces).lower()


def _payload(part: Message) -> str:
    if part.is_multipart():
        return ""
    try:
        if isinstance(part, EmailMessage) and part.get_content_maintype() == "text":
            return str(part.get_content())
        data = part.get_payload(decode=True)
    except Exception:  # an unknown charset or a broken encoding: the raw text was searched
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
