"""The store: participants, letters, lookup keys and the audit log, on TinyDB files.

Layout under `<data_dir>/store/`:

    format.json                  the store's format number (see `version`), checked first
    counters.json                next participant and letter numbers
    participants/NNN.json        256 shards, participant p<n> lives in shard n % 256
    lookup/NNNNN.json            16384 shards of lookup keys (masked address, real email,
                                 Message-ID, spool item, tokens), shard = hash(key) % 16384
    keys/NNN.json                the 256 key shards of stores made before `lookup/`: read
                                 when a key is not in `lookup/`, never written again
    letters/NN.json              64 shards of *hot* letters (held, approved, in the outbox)
    archive/letters-NNNNN.jsonl  append-only final records, 10,000 letter ids per file
    audit/YYYY-MM.jsonl          append-only audit log

Cost model. Every write rewrites one shard atomically (temp file, fsync, rename, fsync the
folder); no operation on one letter or one participant rewrites more than one or two
shards. At 100,000 participants a participant shard holds about 400 records (~120 KB).
Lookup keys are the bulk of the store (about four per letter: spool item, Message-ID,
each moderator's notice and its token), so they have 16384 shards: with a
million letters a lookup shard holds about 320 entries (~40 KB), and the keys a hold or an
approval reads and writes stay that small. (With 256 shards a key shard grew to 20,000
entries, ~2 MB, parsed on every lookup.) Letters leave the hot shards when they reach a
final state (delivered, rejected, failed) and are appended to the archive, so the hot
shards hold only the queue, and a million letters never make a hold or an approval slower.
Looking up an archived letter reads one archive file (10,000 letters).

Named operations. Callers never see a lookup key: each record kept under one (a moderation
grant, a sign-in link, an IMAP mailbox's progress, a digest's state, reminder and notice
counts) has its typed value in `records` and its operations here, which own the key's
prefix and its JSON shape (unchanged from the raw keys earlier relays wrote) and do any
read-modify-write under the lock. Each reads and writes the one lookup shard of its key.

Concurrency. Reads take no lock: every file is replaced atomically. Writes take one
exclusive file lock (`store.lock`) for the whole read-modify-write, so `serve` and CLI
commands running beside it never lose each other's updates. Inside `serve` all writes go
through one worker thread (see `relay.app`), so the lock is only ever contended by a CLI.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock
from tinydb import TinyDB
from tinydb.table import Document, Table

from relay.errors import NotFound, UserError
from relay.store import version
from relay.store.files import AtomicJSONStorage, append_line, read_lines, write_atomic
from relay.store.records import (
    APPROVED,
    FINAL_STATES,
    HELD,
    ConsentRequest,
    DigestState,
    ImapState,
    Letter,
    LetterParties,
    ModerationGrant,
    Participant,
    ParticipantStatus,
    PendingCommand,
    SignInLink,
)

PARTICIPANT_SHARDS = 256
KEY_SHARDS = 16384
LEGACY_KEY_SHARDS = 256
LETTER_SHARDS = 64
ARCHIVE_SPAN = 10_000

T = TypeVar("T")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _key_doc_id(key: str) -> int:
    """64-bit hash of a lookup key: its TinyDB doc id; the shard is derived from it."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") + 1


def _key_shard(key: str) -> int:
    return _key_doc_id(key) % KEY_SHARDS


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        found = version.refuse_newer(root)  # before anything is written
        for folder in ("participants", "lookup", "letters", "archive", "audit"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(root / "store.lock"), timeout=60)
        if found != version.FORMAT:
            with self._lock:
                version.bring_up_to_date(root)
        # A store made before `lookup/` still has its keys in `keys/`; looked up as a fallback.
        self._legacy_keys = any((root / "keys").glob("*.json"))

    # --- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the store's write lock (re-entrant within one thread)."""
        with self._lock:
            yield

    def exclusively(self, step: Callable[[], T]) -> T:
        """Run `step` while no other writer of this store runs, in this process or another.

        For work that must not interleave with another process and reaches beyond the
        store's own records: checking the outbox before queueing a notice, numbering the
        newsletter's posts, re-reading a prompt journal before enqueueing, copying the
        store's files for a backup. Re-entrant; waits up to 60 s for the lock (then
        `filelock.Timeout`).
        """
        with self._writing():
            return step()

    def _table(self, path: Path) -> Table:
        # cache_size=0: another process may have replaced the file since our last read.
        return TinyDB(path, storage=AtomicJSONStorage).table("records", cache_size=0)

    def _participant_table(self, number: int) -> Table:
        return self._table(self.root / "participants" / f"{number % PARTICIPANT_SHARDS:03d}.json")

    def _letter_table(self, letter_id: int) -> Table:
        return self._table(self.root / "letters" / f"{letter_id % LETTER_SHARDS:02d}.json")

    def _key_table(self, key: str) -> Table:
        return self._table(self.root / "lookup" / f"{_key_shard(key):05d}.json")

    def _legacy_key_table(self, key: str) -> Table:
        shard = _key_doc_id(key) % LEGACY_KEY_SHARDS
        return self._table(self.root / "keys" / f"{shard:03d}.json")

    def _next(self, counter: str) -> int:
        table = self._table(self.root / "counters.json")
        doc = table.get(doc_id=1)
        values: dict[str, int] = dict(doc) if isinstance(doc, dict) else {}
        value = values.get(counter, 0) + 1
        values[counter] = value
        table.upsert(Document(values, doc_id=1))
        return value

    # --- lookup keys ---------------------------------------------------------------------

    def _key(self, key: str) -> Any:
        found = self._key_in(self._key_table(key), key)
        if found is None and self._legacy_keys:
            return self._key_in(self._legacy_key_table(key), key)
        return found

    @staticmethod
    def _key_in(table: Table, key: str) -> Any:
        doc = table.get(doc_id=_key_doc_id(key))
        if not isinstance(doc, dict):
            # An empty first slot means no collision slot holds the key either: `_remove_key`
            # moves a colliding key into the first slot when it empties it.
            return None
        if doc.get("k") == key:
            return doc.get("v")
        for other in table.all():  # two keys with one 64-bit hash: see `_set_key`
            if other.get("k") == key:
                return other.get("v")
        return None

    def _put(self, key: str, value: Any) -> None:
        """Write one key under the lock (a write that reads nothing first)."""
        with self._writing():
            self._set_key(key, value)

    def _set_key(self, key: str, value: Any) -> None:
        table = self._key_table(key)
        doc_id = _key_doc_id(key)
        existing = table.get(doc_id=doc_id)
        if isinstance(existing, dict) and existing.get("k") not in (None, key):
            # Two keys with one 64-bit hash: keep both; `_key()` falls back to a scan.
            for doc in table.all():
                if doc.get("k") == key:
                    table.upsert(Document({"k": key, "v": value}, doc_id=doc.doc_id))
                    return
            spare = max([2**64, *(doc.doc_id for doc in table.all())]) + 1
            table.insert(Document({"k": key, "v": value}, doc_id=spare))
            return
        table.upsert(Document({"k": key, "v": value}, doc_id=doc_id))

    def _remove_key(self, key: str) -> None:
        """Remove one key (from `lookup/`, and from `keys/` in a store made before it).

        A key in its first slot that another key with the same 64-bit hash collided with
        (kept in a slot past 2**64, see `_set_key`) gives that slot to the colliding key, so
        that `_key_in` still finds it at the first place it looks."""
        tables = [self._key_table(key)]
        if self._legacy_keys:
            tables.append(self._legacy_key_table(key))
        doc_id = _key_doc_id(key)
        for table in tables:
            found = [doc for doc in table.all() if doc.get("k") == key]
            if not found:
                continue
            table.remove(doc_ids=[doc.doc_id for doc in found])
            if all(doc.doc_id != doc_id for doc in found):
                continue
            heir = next((d for d in table.all() if _key_doc_id(str(d.get("k"))) == doc_id), None)
            if heir is not None:
                table.remove(doc_ids=[heir.doc_id])
                table.insert(Document(dict(heir), doc_id=doc_id))

    # --- moderation by email: notice tokens, reminders, writer notices ------------------
    # Stored as `notice:<letter>:<moderator>` -> token and `token:<token>` -> its grant.

    def notice_token(
        self,
        letter_id: int,
        moderator: str,
        *,
        library: str,
        expires: float,
        new_token: Callable[[], str],
    ) -> str:
        """The token of a letter's notice to one moderator, granted the first time asked and
        the same one ever after (a notice composed again after a crash carries it too)."""
        notice = f"notice:{letter_id}:{moderator}"
        with self._writing():
            existing = self._key(notice)
            if isinstance(existing, str):
                return existing
            token = new_token()
            grant = {
                "letter": letter_id,
                "moderator": moderator,
                "library": library,
                "expires": expires,
                "used": False,
            }
            self._set_key(f"token:{token}", grant)  # the grant first: a token never dangles
            self._set_key(notice, token)
            return token

    def grant(self, token: str) -> ModerationGrant | None:
        return _grant(token, self._key(f"token:{token}"))

    def use_grant(self, token: str, at: str) -> ModerationGrant | None:
        """Mark a grant used at `at` (ISO time); None, and nothing written, when the token is
        unknown or was used already (two replies racing decide once)."""
        with self._writing():
            value = self._key(f"token:{token}")
            grant = _grant(token, value)
            if grant is None or grant.used:
                return None
            self._set_key(f"token:{token}", value | {"used": True, "used_at": at})
            return replace(grant, used=True, used_at=at)

    def reminded_on(self, library_id: str) -> date | None:
        """The local day a library's moderators were last reminded of waiting letters."""
        value = self._key(f"reminded:{library_id}")
        return date.fromisoformat(value) if isinstance(value, str) else None

    def set_reminded_on(self, library_id: str, day: date) -> None:
        self._put(f"reminded:{library_id}", day.isoformat())

    def quiet_listed_on(self, library_id: str) -> date | None:
        """The local day a reminder last listed a library's quiet pairs (relay.quiet)."""
        value = self._key(f"quiet-listed:{library_id}")
        return date.fromisoformat(value) if isinstance(value, str) else None

    def set_quiet_listed_on(self, library_id: str, day: date) -> None:
        self._put(f"quiet-listed:{library_id}", day.isoformat())

    def writer_notices(self, writer_id: str, day: date) -> int:
        """How many notices a writer got on `day` (UTC), for the daily limit."""
        value = self._key(f"writer-notices:{writer_id}:{day.isoformat()}")
        return value if isinstance(value, int) else 0

    def set_writer_notices(self, writer_id: str, day: date, count: int) -> None:
        self._put(f"writer-notices:{writer_id}:{day.isoformat()}", count)

    def told_writer_waiting(self, letter_id: int) -> bool:
        """Whether the writer of a long-held letter was told it is still waiting."""
        return bool(self._key(f"told-waiting:{letter_id}"))

    def record_told_writer_waiting(self, letter_id: int) -> None:
        self._put(f"told-waiting:{letter_id}", True)

    # --- participants' commands by email (`command:<sha256 of the token>`,
    # `command-tokens:<participant>`, `command-answers:<who>:<day>`) ---------------------

    def record_pending_command(self, pending: PendingCommand) -> None:
        """Keep a command waiting for its confirmation under the hash of its token: a copy of
        the store confirms nothing."""
        value = {
            "action": pending.action,
            "participant": pending.participant,
            "address": pending.address,
            "asked_by": pending.asked_by,
            "expires": pending.expires,
            "used": pending.used,
        }
        key = _command_key(pending.token)
        listed = f"command-tokens:{pending.participant}"
        with self._writing():
            self._set_key(key, value)
            # Each participant's commands, so that erasing them finds these keys.
            known = self._key(listed)
            keys = [str(k) for k in known] if isinstance(known, list) else []
            if key not in keys:
                self._set_key(listed, [*keys, key])

    def pending_command(self, token: str) -> PendingCommand | None:
        return _pending_command(token, self._key(_command_key(token)))

    def use_pending_command(self, token: str, at: str) -> PendingCommand | None:
        """Mark a pending command carried out; None, and nothing written, when the token is
        unknown or was used already (two replies racing carry it out once)."""
        key = _command_key(token)
        with self._writing():
            value = self._key(key)
            pending = _pending_command(token, value)
            if pending is None or pending.used:
                return None
            self._set_key(key, value | {"used": True, "used_at": at})
            return replace(pending, used=True, used_at=at)

    def command_answers(self, who: str, day: date) -> int:
        """How many answers to commands an address (`who`: its keyed digest) got on `day`."""
        value = self._key(f"command-answers:{who}:{day.isoformat()}")
        return value if isinstance(value, int) else 0

    def set_command_answers(self, who: str, day: date, count: int) -> None:
        self._put(f"command-answers:{who}:{day.isoformat()}", count)

    # --- staff sign-in links (`magic:<sha256 of the link's secret>`) ---------------------

    def record_sign_in_link(self, secret: str, link: SignInLink) -> None:
        """Keep a link under the hash of its secret: a copy of the store signs nobody in."""
        value: dict[str, object] = {
            "email": link.email,
            "library": link.library,
            "expires": link.expires,
            "used": link.used,
        }
        if link.used_at is not None:
            value["used_at"] = link.used_at
        self._put(_sign_in_key(secret), value)

    def sign_in_link(self, secret: str) -> SignInLink | None:
        return _sign_in_link(self._key(_sign_in_key(secret)))

    def use_sign_in_link(self, secret: str, at: float) -> SignInLink | None:
        """The link as found (None if unknown); marked used at `at` if it was usable then.

        Check and mark happen under the lock, so two clicks racing each other sign in once:
        the second finds it used."""
        key = _sign_in_key(secret)
        with self._writing():
            value = self._key(key)
            link = _sign_in_link(value)
            if link is not None and link.usable(at):
                self._set_key(key, value | {"used": True, "used_at": at})
            return link

    # --- guardians' consent requests (`consent:<sha256 of the token>`) ----------------

    def record_consent_request(self, token: str, request: ConsentRequest) -> None:
        """Keep a request under the hash of its token: a copy of the store consents for
        nobody."""
        value = {
            "participant": request.participant,
            "expires": request.expires,
            "used": request.used,
            "guardian": request.guardian,
        }
        key = _consent_key(token)
        listed = f"consent-requests:{request.participant}"
        with self._writing():
            self._set_key(key, value)
            # Each participant's requests, so that erasing them finds these keys.
            known = self._key(listed)
            keys = [str(k) for k in known] if isinstance(known, list) else []
            self._set_key(listed, [*keys, key])

    def forget_consent_requests(self, participant_id: str) -> None:
        """Remove a participant's consent requests, as `record_consent_request` listed them:
        their links and reply addresses then lead nowhere."""
        listed = f"consent-requests:{participant_id}"
        with self._writing():
            keys = self._key(listed)
            for key in keys if isinstance(keys, list) else ():
                self._remove_key(str(key))
            self._remove_key(listed)

    def consent_request(self, token: str) -> ConsentRequest | None:
        return _consent_request(self._key(_consent_key(token)))

    def answer_consent_request(self, token: str, answer: str, at: float) -> ConsentRequest | None:
        """The request as found (None if unknown); marked used with `answer` if it was usable
        at `at`. Check and mark happen under the lock: two answers racing count once."""
        key = _consent_key(token)
        with self._writing():
            value = self._key(key)
            request = _consent_request(value)
            if request is not None and request.usable(at):
                stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
                self._set_key(key, value | {"used": True, "used_at": stamp, "answer": answer})
            return request

    # --- IMAP intake (`imap:<mailbox>`, `imap-msgid:<Message-ID>`) -----------------------

    def imap_state(self, mailbox: str) -> ImapState | None:
        """How far catch-up got in `mailbox` (`user@host/folder`)."""
        value = self._key(f"imap:{mailbox}")
        if not isinstance(value, dict) or "uidvalidity" not in value:
            return None
        return ImapState(uidvalidity=int(value["uidvalidity"]), last_uid=int(value["last_uid"]))

    def set_imap_state(self, mailbox: str, state: ImapState) -> None:
        value = {"uidvalidity": state.uidvalidity, "last_uid": state.last_uid}
        self._put(f"imap:{mailbox}", value)

    def spooled_imap_message(self, message_id: str) -> str | None:
        """The spool item a message taken from a mailbox went to, by its Message-ID."""
        value = self._key(f"imap-msgid:{message_id}")
        return value if isinstance(value, str) else None

    def record_spooled_imap_message(self, message_id: str, item_id: str) -> None:
        self._put(f"imap-msgid:{message_id}", item_id)

    # --- newsletter digests (`digest:<partnership>:<library>`) ---------------------------

    def digest_state(self, partnership_id: str, library_id: str) -> DigestState:
        value = self._key(f"digest:{partnership_id}:{library_id}")
        if not isinstance(value, dict):
            return DigestState()
        return DigestState(
            last_post=int(value.get("last_post", 0)),
            volume=int(value.get("volume", 0)),
            issue=int(value.get("issue", 0)),
            year=value.get("year"),
            sent_at=value.get("sent_at"),
        )

    def set_digest_state(self, partnership_id: str, library_id: str, state: DigestState) -> None:
        value = {
            "last_post": state.last_post,
            "volume": state.volume,
            "issue": state.issue,
            "year": state.year,
            "sent_at": state.sent_at,
        }
        self._put(f"digest:{partnership_id}:{library_id}", value)

    # --- participants --------------------------------------------------------------------

    def add_participant(
        self,
        *,
        library: str,
        name: str,
        email: str,
        language: str,
        new_masked: Callable[[], str],
        guardian: str = "",
        more: dict[str, Any] | None = None,
    ) -> Participant:
        """A new participant; `more` holds the optional `Participant` fields by name."""
        with self._writing():
            masked = new_masked()
            while self._key(f"masked:{masked}") is not None:
                masked = new_masked()
            number = self._next("participant")
            participant = Participant(
                id=f"p{number}",
                library=library,
                name=name,
                email=email,
                language=language,
                masked=masked,
                created_at=now_iso(),
                guardian=guardian,
                **(more or {}),
            )
            # Keys first: a crash before the record leaves an orphan key, never a
            # participant that cannot be found.
            self._set_key(f"masked:{masked}", participant.id)
            self._set_key(f"email:{email}", [*self._email_ids(email), participant.id])
            self._participant_table(number).upsert(Document(participant.to_dict(), doc_id=number))
            return participant

    def _email_ids(self, email: str) -> list[str]:
        value = self._key(f"email:{email}")
        return [str(v) for v in value] if isinstance(value, list) else []

    def participant(self, participant_id: str) -> Participant | None:
        number = _participant_number(participant_id)
        if number is None:
            return None
        doc = self._participant_table(number).get(doc_id=number)
        return Participant.from_dict(dict(doc)) if isinstance(doc, dict) else None

    def by_masked(self, address: str) -> Participant | None:
        value = self._key(f"masked:{address.lower()}")
        return self.participant(value) if isinstance(value, str) else None

    def by_email(self, email: str) -> list[Participant]:
        found = (self.participant(pid) for pid in self._email_ids(email.lower()))
        return [p for p in found if p is not None and p.email == email.lower()]

    def participants(self) -> list[Participant]:
        found = []
        for shard in sorted((self.root / "participants").glob("*.json")):
            found += [Participant.from_dict(dict(doc)) for doc in self._table(shard).all()]
        return sorted(found, key=lambda p: p.number)

    def _save_participant(self, participant: Participant) -> None:
        with self._writing():
            number = participant.number
            self._participant_table(number).upsert(Document(participant.to_dict(), doc_id=number))

    def update_participant(
        self, participant_id: str, change: Callable[[Participant], Participant]
    ) -> tuple[Participant, Participant]:
        """Read-modify-write one participant under the lock; `change` may raise to refuse.

        Returns the record before and after; nothing is written when `change` changed nothing.
        """
        with self._writing():
            before = self.participant(participant_id)
            if before is None:
                raise NotFound(f"participant {participant_id} not found")
            after = change(before)
            if after != before:
                self._save_participant(after)
            return before, after

    def set_status(
        self, participant_id: str, status: ParticipantStatus
    ) -> tuple[Participant, Participant]:
        return self.update_participant(participant_id, lambda p: p.but(status=status))

    def set_guardian(self, participant_id: str, guardian: str) -> tuple[Participant, Participant]:
        """`guardian` is a normalized real address, or "" for none."""
        return self.update_participant(participant_id, lambda p: p.but(guardian=guardian))

    def count_bounce(self, participant_id: str) -> tuple[Participant, Participant]:
        """One more letter to this participant returned for good by their mail server."""
        return self.update_participant(participant_id, lambda p: p.but(bounces=p.bounces + 1))

    def clear_bounces(self, participant_id: str) -> tuple[Participant, Participant]:
        """Their mail works again: the count of returned letters starts over."""
        return self.update_participant(participant_id, lambda p: p.but(bounces=0))

    def pair(self, first: Participant, second: Participant) -> None:
        with self._writing():
            for one, other in ((first, second), (second, first)):
                fresh = self.participant(one.id)
                if fresh is None:
                    raise NotFound(f"participant {one.id} not found")
                if other.id not in fresh.pals:
                    self._save_participant(fresh.but(pals=(*fresh.pals, other.id)))

    def unpair(self, first: Participant, second: Participant) -> list[tuple[str, str]]:
        """End a pairing; a team writing together to that pal ends with it (the other keeps
        the pal), a team writing to another pal does not. Returns the teams ended: (id,
        teammate's id)."""
        ended = []
        with self._writing():
            for one, other in ((first, second), (second, first)):
                fresh = self.participant(one.id)
                if fresh is not None and other.id in fresh.pals:
                    pals = tuple(p for p in fresh.pals if p != other.id)
                    self._save_participant(fresh.but(pals=pals))
                    if self._writes_with_to(fresh, other.id) and (
                        teammate := self.end_team(one.id)
                    ):
                        ended.append((one.id, teammate))
        return ended

    def _writes_with_to(self, participant: Participant, pal_id: str) -> bool:
        """Whether `participant` writes together with a teammate to this pal (the teammate
        has the pal too)."""
        mate = self.participant(participant.writes_with) if participant.writes_with else None
        return mate is not None and pal_id in mate.pals

    def team(self, first: Participant, second: Participant) -> None:
        """Two participants of one library write together to their pal (`writes_with`)."""
        with self._writing():
            for one, other in ((first, second), (second, first)):
                fresh = self.participant(one.id)
                if fresh is None:
                    raise NotFound(f"participant {one.id} not found")
                self._save_participant(fresh.but(writes_with=other.id))

    def end_team(self, participant_id: str) -> str:
        """They and their teammate no longer write together; the teammate's id, or ""."""
        with self._writing():
            fresh = self.participant(participant_id)
            if fresh is None or not fresh.writes_with:
                return ""
            self._save_participant(fresh.but(writes_with=""))
            teammate = self.participant(fresh.writes_with)
            if teammate is not None and teammate.writes_with == participant_id:
                self._save_participant(teammate.but(writes_with=""))
            return fresh.writes_with

    # --- a participant's data, found and forgotten (relay.rights) ------------------------

    def remove_participant(self, participant_id: str, notice_days: Iterable[date]) -> None:
        """Forget a participant: their record, their masked and real address keys, their
        pals' links to them and the counts of notices they got (`notice_days`: the days to
        look at, each one key)."""
        with self._writing():
            participant = self.participant(participant_id)
            if participant is None:
                raise NotFound(f"participant {participant_id} not found")
            self.end_team(participant_id)
            # A team writing together to them has no pal left to write to: it ends.
            for pal_id in participant.pals:
                pal = self.participant(pal_id)
                if pal is not None and self._writes_with_to(pal, participant.id):
                    self.end_team(pal_id)
            for pal_id in participant.pals:
                pal = self.participant(pal_id)
                if pal is not None and participant.id in pal.pals:
                    self._save_participant(
                        pal.but(pals=tuple(p for p in pal.pals if p != participant.id))
                    )
            self._remove_key(f"masked:{participant.masked}")
            others = [pid for pid in self._email_ids(participant.email) if pid != participant.id]
            if others:
                self._set_key(f"email:{participant.email}", others)
            else:
                self._remove_key(f"email:{participant.email}")
            for day in notice_days:
                self._remove_key(f"writer-notices:{participant.id}:{day.isoformat()}")
            self._participant_table(participant.number).remove(doc_ids=[participant.number])

    def forget_pending_commands(self, participant_id: str) -> None:
        """Remove the emailed commands waiting for a participant's confirmation (they name
        the address asked), as recorded by `record_pending_command`."""
        listed = f"command-tokens:{participant_id}"
        with self._writing():
            keys = self._key(listed)
            for key in keys if isinstance(keys, list) else ():
                self._remove_key(str(key))
            self._remove_key(listed)

    def forget_letter_keys(self, letter: Letter, moderators: Iterable[str]) -> None:
        """Remove the keys naming a letter's spool item, its Message-ID and its notices'
        tokens (each moderator's), so nothing leads from them to the letter any more."""
        with self._writing():
            self._remove_key(f"spool:{letter.spool_id}:{letter.recipient}")
            if letter.message_id:
                self._remove_key(f"msgid:{letter.message_id}")
                self._remove_key(f"imap-msgid:{letter.message_id}")
            self._remove_key(f"told-waiting:{letter.id}")
            for moderator in moderators:
                token = self._key(f"notice:{letter.id}:{moderator}")
                if isinstance(token, str):
                    self._remove_key(f"token:{token}")
                self._remove_key(f"notice:{letter.id}:{moderator}")

    def letters_of(self, participant_id: str, *, archived_since: float = 0.0) -> list[Letter]:
        """Every letter a participant wrote or received, as last recorded, oldest first.

        Reads the hot shards and every archive file (at a million letters, 100 files of
        10,000 lines): for data-rights requests, which are rare. `archived_since` (a Unix
        time) reads only archive files appended to since then."""

        def theirs(record: dict[str, Any]) -> bool:
            return participant_id in (record.get("sender"), record.get("recipient"))

        return self._letters_where(theirs, archived_since)

    def letters_from_items(self, spool_ids: Collection[str]) -> list[Letter]:
        """Every letter made from these spool items (a message to several pals is one item,
        a letter to each), as last recorded, oldest first: one pass like `letters_of`."""
        if not spool_ids:
            return []
        return self._letters_where(lambda record: record.get("spool_id") in spool_ids)

    def _letters_where(
        self, wanted: Callable[[dict[str, Any]], bool], archived_since: float = 0.0
    ) -> list[Letter]:
        found = {letter.id: letter for letter in self._hot(wanted)}
        for path in sorted((self.root / "archive").glob("letters-*.jsonl")):
            if archived_since and path.stat().st_mtime < archived_since:
                continue
            for record in read_lines(path):
                if wanted(record):  # a later line of a letter is its newer record
                    found[int(record["id"])] = Letter.from_dict(record)
        return sorted(found.values(), key=lambda letter: letter.id)

    def replace_letters(self, reduced: Iterable[Letter]) -> None:
        """Put these records in place of every record kept of the same letters, the archive's
        earlier lines included (each archive file rewritten atomically): erasing a letter's
        contents (relay.rights). A letter in a final state leaves the hot shards."""
        by_file: dict[Path, dict[int, Letter]] = {}
        with self._writing():
            for letter in reduced:
                by_file.setdefault(self._archive_path(letter.id), {})[letter.id] = letter
            for path, letters in by_file.items():
                kept = [r for r in read_lines(path) if r.get("id") not in letters]
                kept += [x.to_dict() for x in letters.values() if x.status in FINAL_STATES]
                if kept or path.exists():
                    write_atomic(path, _lines(kept))
                for letter in letters.values():
                    table = self._letter_table(letter.id)
                    if letter.status not in FINAL_STATES:
                        table.upsert(Document(letter.to_dict(), doc_id=letter.id))
                    elif table.get(doc_id=letter.id) is not None:
                        table.remove(doc_ids=[letter.id])

    # --- letters -------------------------------------------------------------------------

    def hold_letter(
        self,
        build: Callable[[int], Letter],
        *,
        spool_key: str,
        on_new: Callable[[Letter], None] | None = None,
    ) -> Letter:
        """Record a new held letter once per spool item and recipient (idempotent).

        `on_new` runs under the lock right after a letter is first recorded, never on a
        replay of the same spool item: the place for what must happen once (log, audit).
        """
        with self._writing():
            existing = self._key(spool_key)
            if isinstance(existing, int):
                letter = self.letter(existing)
                if letter is not None:
                    return letter
            letter_id = self._next("letter")
            letter = build(letter_id)
            self._set_key(spool_key, letter_id)
            if letter.message_id:
                self._set_key(f"msgid:{letter.message_id}", letter_id)
            self._letter_table(letter_id).upsert(Document(letter.to_dict(), doc_id=letter_id))
            if on_new is not None:
                on_new(letter)
            return letter

    def letter(self, letter_id: int) -> Letter | None:
        doc = self._letter_table(letter_id).get(doc_id=letter_id)
        if isinstance(doc, dict):
            return Letter.from_dict(dict(doc))
        records = [r for r in read_lines(self._archive_path(letter_id)) if r.get("id") == letter_id]
        return Letter.from_dict(records[-1]) if records else None

    def letter_id_for_spool(self, spool_id: str, recipient: str) -> int | None:
        """The id of the letter a spooled message made for this recipient, if it made one."""
        value = self._key(f"spool:{spool_id}:{recipient}")
        return value if isinstance(value, int) else None

    def letter_by_message_id(self, message_id: str) -> Letter | None:
        value = self._key(f"msgid:{message_id}")
        return self.letter(value) if isinstance(value, int) else None

    def save_letter(self, letter: Letter) -> None:
        """Write a letter's new state; a final state moves it from the hot shards to the archive."""
        with self._writing():
            table = self._letter_table(letter.id)
            if letter.status in FINAL_STATES:
                append_line(self._archive_path(letter.id), letter.to_dict())
                if table.get(doc_id=letter.id) is not None:
                    table.remove(doc_ids=[letter.id])
            else:
                table.upsert(Document(letter.to_dict(), doc_id=letter.id))

    def update_letter(
        self,
        letter_id: int,
        change: Callable[[Letter], Letter],
        *,
        then: Callable[[Letter], None] | None = None,
    ) -> Letter:
        """Read-modify-write one letter under the lock; `change` may raise to refuse.

        `then` runs under the same lock once the new state is written: the place for what
        must be recorded with it (the audit entry), so no other writer comes in between.
        """
        with self._writing():
            letter = self.letter(letter_id)
            if letter is None:
                raise NotFound(f"letter {letter_id} not found")
            updated = change(letter)
            self.save_letter(updated)
            if then is not None:
                then(updated)
            return updated

    def hot_letters(self) -> list[Letter]:
        return self._hot(lambda record: True)

    def queue(self, library: str | None = None) -> list[Letter]:
        return self._hot(
            lambda r: r.get("status") == HELD and library in (None, r.get("sender_library"))
        )

    def approved_letters(self) -> list[Letter]:
        return self._hot(lambda record: record.get("status") == APPROVED)

    def _hot(self, wanted: Callable[[dict[str, Any]], bool]) -> list[Letter]:
        """Hot letters whose stored record is `wanted`, oldest first. The shards are read as
        the JSON they are (TinyDB's documents would copy every record twice) and only the
        wanted records become `Letter`s: the reconcile loop asks for approved ones often."""
        found = []
        for shard in sorted((self.root / "letters").glob("*.json")):
            records = (AtomicJSONStorage(shard).read() or {}).get("records", {})
            found += [Letter.from_dict(r) for r in records.values() if wanted(r)]
        return sorted(found, key=lambda letter: letter.id)

    def _archive_path(self, letter_id: int) -> Path:
        return self.root / "archive" / f"letters-{letter_id // ARCHIVE_SPAN:05d}.jsonl"

    # --- retention: removing what is kept no longer -------------------------------------
    # Called by relay/schedule/retention.py, once a day. Built on the removals that erasing
    # a participant uses (`replace_letters`, `forget_letter_keys`, `rewrite_audit`,
    # `_remove_key`).

    def retention_ran_on(self) -> date | None:
        """The day (UTC) the scheduled purge last ran."""
        value = self._key("retention:last-run")
        return date.fromisoformat(value) if isinstance(value, str) else None

    def set_retention_ran_on(self, day: date) -> None:
        self._put("retention:last-run", day.isoformat())

    def all_letters(self) -> list[Letter]:
        """Every letter in its latest state, hot or archived, by id: one read of every
        archive file and hot shard (for the program report and the letters' history)."""
        found = {letter.id: letter for letter in self.archived_letters()}
        for letter in self.hot_letters():
            found.setdefault(letter.id, letter)
        return sorted(found.values(), key=lambda letter: letter.id)

    def archived_letters(self) -> Iterator[Letter]:
        """Every archived letter in its latest state, file by file (10,000 letters each)."""
        for path in sorted((self.root / "archive").glob("letters-*.jsonl")):
            latest = {record.get("id"): record for record in read_lines(path)}
            yield from (Letter.from_dict(r) for r in latest.values() if isinstance(r, dict))

    def letter_parties(self) -> Iterator[LetterParties]:
        """Every letter's writer, pal and arrival, from its latest record (the archive, then
        the hot shards), without building `Letter`s: a pass over a million letters reads
        each archive file once and keeps one file's records in memory at a time."""
        for path in sorted((self.root / "archive").glob("letters-*.jsonl")):
            latest = {record.get("id"): record for record in read_lines(path)}
            yield from (_parties(record) for record in latest.values())
        for shard in sorted((self.root / "letters").glob("*.json")):
            records = (AtomicJSONStorage(shard).read() or {}).get("records", {})
            yield from (_parties(record) for record in records.values())

    def reduce_letters(self, letter_ids: Collection[int], at: str) -> list[Letter]:
        """Replace archived letters (every earlier line of each too) by what retention keeps
        of them (`Letter.reduced`). Returns the letters as they were, whose files and keys
        the caller removes; a letter reduced already is left as it is."""
        wanted = set(letter_ids)
        before: list[Letter] = []
        with self._writing():  # read and replaced under one lock: a bounce waits
            for path in sorted({self._archive_path(letter_id) for letter_id in wanted}):
                latest = {r.get("id"): r for r in read_lines(path) if r.get("id") in wanted}
                found = (Letter.from_dict(record) for record in latest.values())
                before += [x for x in found if not x.reduced_at and x.status in FINAL_STATES]
            self.replace_letters(letter.reduced(at) for letter in before)
        return sorted(before, key=lambda letter: letter.id)

    def forget_expired(self, now: float, counters_before: date, *, dry_run: bool) -> Expired:
        """Remove moderators' reply tokens, participants' commands waiting for confirmation,
        guardians' consent requests (but the one consent was given with: it withdraws
        consent until the participant is erased) and sign-in links expired at `now` (seconds
        since the epoch), and daily counters (notices to a writer, answers to commands) of
        days before `counters_before`; with `dry_run`, only count them. Reads every lookup
        shard: meant for a daily run."""
        expired: list[str] = []
        counts = dict.fromkeys(
            ("grants", "commands", "consent_requests", "sign_in_links", "counters"), 0
        )
        upcoming: list[float] = []
        for key, value in self._all_keys():
            kind, ends = _expiry(key, value)
            if kind == "counters":
                if key.rsplit(":", 1)[1] < counters_before.isoformat():
                    counts[kind] += 1
                    expired.append(key)
            elif kind:
                if ends < now:
                    counts[kind] += 1
                    expired.append(key)
                    if key.startswith("token:"):  # the letter's notice names it: gone too
                        expired.append(f"notice:{value.get('letter')}:{value.get('moderator')}")
                else:
                    upcoming.append(ends)
        if not dry_run and expired:
            with self._writing():
                for key in expired:
                    self._remove_key(key)
        return Expired(**counts, next_expiry=min(upcoming) if upcoming else None)

    def reduce_audit(self, before_month: str, *, dry_run: bool) -> int:
        """Take the free text moderators and mail servers wrote (a rejection's reason, a
        delivery error) out of audit entries of months before `before_month` ("YYYY-MM");
        the decision, its time and who made it stay. Returns how many entries had some."""

        def reduced(entry: dict[str, Any]) -> dict[str, Any]:
            old = str(entry.get("at", ""))[:7] < before_month
            return _without_free_text(entry) if old else entry

        if not dry_run:
            return self.rewrite_audit(reduced)
        return sum(1 for entry in self.audit_log() if reduced(entry) != entry)

    def _all_keys(self) -> Iterator[tuple[str, Any]]:
        folders = ["lookup", "keys"] if self._legacy_keys else ["lookup"]
        for folder in folders:
            for shard in sorted((self.root / folder).glob("*.json")):
                records = (AtomicJSONStorage(shard).read() or {}).get("records", {})
                for record in records.values():
                    if isinstance(record, dict) and isinstance(record.get("k"), str):
                        yield record["k"], record.get("v")

    # --- audit ---------------------------------------------------------------------------

    def audit(self, event: str, **details: Any) -> None:
        record = {"at": now_iso(), "event": event, **details}
        with self._writing():
            append_line(self.root / "audit" / f"{record['at'][:7]}.jsonl", record)

    def rewrite_audit(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Pass every audit entry through `change`; each month's file where an entry changed
        is rewritten atomically, under the lock (appends wait). Returns how many changed:
        for erasing a participant (relay.rights), whose entries keep only their ids."""
        changed = 0
        with self._writing():
            for path in sorted((self.root / "audit").glob("*.jsonl")):
                entries = read_lines(path)
                rewritten = [change(entry) for entry in entries]
                differ = sum(a != b for a, b in zip(entries, rewritten, strict=True))
                if differ:
                    write_atomic(path, _lines(rewritten))
                    changed += differ
        return changed

    def audit_log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for path in sorted((self.root / "audit").glob("*.jsonl")):
            entries += read_lines(path)
        return entries


@dataclass(frozen=True)
class Expired:
    """What `forget_expired` removed (or would): counts by kind, and when the next token or
    sign-in link still kept expires (seconds since the epoch; None: none kept).

    `grants`: moderators' reply tokens; `commands`: participants' emailed commands waiting
    for confirmation; `consent_requests`: guardians' consent links."""

    grants: int
    commands: int
    consent_requests: int
    sign_in_links: int
    counters: int
    next_expiry: float | None


# Keys that expire, by prefix, and the kind `Expired` counts them as: a moderator's reply
# token; a participant's emailed command waiting for its confirmation (it names the enrolled
# address); a guardian's consent request (the participant's consent and how it was given
# stay with the participant); a staff sign-in link.
_EXPIRING = {
    "token:": "grants",
    "command:": "commands",
    "consent:": "consent_requests",
    "magic:": "sign_in_links",
}


def _expiry(key: str, value: Any) -> tuple[str, float]:
    """The kind of an expiring key, and when it expires; ("", 0) for keys kept."""
    if key.startswith("consent:") and isinstance(value, dict) and value.get("answer") == "given":
        # The request a guardian consented with: its link withdraws consent, as the request
        # promised, until the participant is erased (or their guardian changes).
        return "", 0.0
    kind = _EXPIRING.get(key[: key.find(":") + 1])
    if kind and isinstance(value, dict):
        return kind, float(value.get("expires", 0))
    if key.startswith(("writer-notices:", "command-answers:")):
        return "counters", 0.0
    return "", 0.0


# Audit entries whose free text retention takes out (a reason written to the writer, the
# error text a mail server answered); every other entry carries only words and counts.
_FREE_TEXT = {"rejected": "reason", "failed": "error", "bounced": "error"}


def _without_free_text(entry: dict[str, Any]) -> dict[str, Any]:
    field_name = _FREE_TEXT.get(str(entry.get("event")))
    if field_name is None or field_name not in entry:
        return entry
    return {k: v for k, v in entry.items() if k != field_name} | {"reduced": True}


def _parties(record: dict[str, Any]) -> LetterParties:
    return LetterParties(
        int(record.get("id", 0)),
        str(record.get("sender", "")),
        str(record.get("recipient", "")),
        str(record.get("received_at", "")),
    )


def _grant(token: str, value: object) -> ModerationGrant | None:
    if not isinstance(value, dict):
        return None
    return ModerationGrant(
        token=token,
        letter=int(value["letter"]),
        moderator=str(value.get("moderator", "")),
        library=str(value.get("library", "")),
        expires=float(value.get("expires", 0)),
        used=bool(value.get("used")),
        used_at=str(value.get("used_at", "")),
    )


def _consent_key(token: str) -> str:
    return "consent:" + hashlib.sha256(token.encode()).hexdigest()


def _consent_request(value: object) -> ConsentRequest | None:
    if not isinstance(value, dict):
        return None
    return ConsentRequest(
        participant=str(value["participant"]),
        expires=float(value.get("expires", 0)),
        used=bool(value.get("used")),
        used_at=str(value.get("used_at", "")),
        answer=str(value.get("answer", "")),
        guardian=str(value.get("guardian", "")),
    )


def _command_key(token: str) -> str:
    return "command:" + hashlib.sha256(token.encode()).hexdigest()


def _pending_command(token: str, value: object) -> PendingCommand | None:
    if not isinstance(value, dict):
        return None
    return PendingCommand(
        token=token,
        action=str(value.get("action", "")),
        participant=str(value.get("participant", "")),
        address=str(value.get("address", "")),
        asked_by=str(value.get("asked_by", "")),
        expires=float(value.get("expires", 0)),
        used=bool(value.get("used", False)),
        used_at=str(value.get("used_at", "")),
    )


def _sign_in_key(secret: str) -> str:
    return "magic:" + hashlib.sha256(secret.encode()).hexdigest()


def _sign_in_link(value: object) -> SignInLink | None:
    if not isinstance(value, dict):
        return None
    used_at = value.get("used_at")
    return SignInLink(
        email=str(value["email"]),
        library=str(value["library"]),
        expires=float(value.get("expires", 0)),
        used=bool(value.get("used")),
        used_at=float(used_at) if used_at is not None else None,
    )


def _participant_number(participant_id: str) -> int | None:
    digits = participant_id.removeprefix("p")
    return int(digits) if digits.isdigit() else None


def _lines(records: list[dict[str, Any]]) -> bytes:
    """JSON lines as `append_line` writes them."""
    encoded = (json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
    return "".join(encoded).encode("utf-8")


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


__all__ = ["Letter", "Participant", "Store", "UserError", "dump", "now_iso"]
