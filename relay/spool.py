"""The spool: message bytes on disk, in queue folders, written durably.

    spool/incoming/<id>.eml + <id>.json   accepted by intake, not yet processed
    spool/messages/<id>.eml               originals as received, kept for staff and audit
    spool/outbox/<id>.eml + <id>.json     composed messages waiting for the transport
    spool/failed/<id>.eml + <id>.json     messages the transport refused for good
    spool/attempts/<id>                   how often processing an incoming message failed
    spool/unprocessed/<id>.eml + .json    incoming messages set aside after failing too often
    spool/scrubbed/<id>.<pN>.json         a letter as it will be delivered, scrubbed once
    spool/sent/<id>                       an empty file: the outbox entry <id> was delivered
    spool/edits/letter-<n>.json           a moderator's changes: files removed, edit, redaction

In each queue the `.json` file is the commit marker: it is written (atomically, fsynced,
folder fsynced) only after the `.eml` beside it is fsynced. An `.eml` without its `.json`
was never acknowledged to anyone. SMTP intake writes a body while it arrives, as a
temporary file (`Draft`), and answers 250 only after `accept_drafts` (IMAP: `accept`)
returned; the outbox is emptied only after the transport confirmed delivery.

Several processes write the spool at once (`serve`, intake processes, CLI commands such as
an approval), so clean-up at start removes only leftovers older than `STALE_SECONDS`: a
younger temporary file or unmarked body may belong to a writer that is committing it right
now. Outbox bodies are written under a temporary name and renamed into place just before
their marker, and an outbox marker whose body is missing is dropped at start with a warning
(for a letter, the relay's reconcile queues it again).

Cost model. `accept` costs two file fsyncs and one folder fsync per message. SMTP intake uses
`accept_drafts` instead (group commit): the bodies of every session waiting at that moment,
already written while they arrived, and their markers are fsynced together (the file system
merges concurrent fsyncs into few journal commits), bodies and markers are renamed into
place, and one folder fsync makes the whole batch durable. No session is answered before its
batch is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.authresults import UNCHECKED, Verdict
from relay.faults import crash_point
from relay.scrub.leakguard import CheckedMessage
from relay.store.files import fsync_dir, write_atomic

log = logging.getLogger("relay")

QUEUES = (
    "incoming",
    "messages",
    "outbox",
    "failed",
    "edits",
    "scrubbed",
    "sent",
    "attempts",
    "unprocessed",
)
FSYNC_THREADS = 8  # fsyncs of one batch in flight together (they wait on the disk, not the GIL)
# A temporary file or an unmarked body older than this belongs to no writer still running
# (a write takes milliseconds); younger ones may be another process's commit in progress.
STALE_SECONDS = 600.0


def _create(path: Path, data: bytes, mode: int) -> int:
    """Write a new file and return its still open descriptor (to be fsynced by the caller)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    return fd


_NEW_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{8}$")


def new_id() -> str:
    """Sortable by arrival, unique without coordination."""
    return f"{time.time_ns():x}-{secrets.token_hex(4)}"


class Draft:
    """A message body written to the spool while it is received; not yet acknowledged.

    The file is `incoming/.<id>.eml.tmp` until `Spool.accept_drafts` renames it into place;
    `discard` removes it (a refused or aborted transaction leaves nothing behind, and the
    start-up clean-up removes a temporary file a crash left)."""

    def __init__(self, folder: Path) -> None:
        self.id = new_id()
        self.folder = folder
        self.path = folder / f".{self.id}.eml.tmp"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.size = 0
        self.committed = False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.size += len(data)

    def head(self, limit: int = 256 * 1024) -> bytes:
        """The message's header block (at most `limit` bytes): enough to read its fields
        without reading a large body into memory."""
        with open(self.path, "rb") as handle:
            data = handle.read(limit)
        ends = [at for at in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if at >= 0]
        return data[: min(ends) + 2] if ends else data

    def read(self) -> bytes:
        """The whole message as received so far."""
        return self.path.read_bytes()

    def commit(self) -> None:
        """Give the body its final name (its marker follows); the descriptor is closed."""
        os.replace(self.path, self.folder / f"{self.id}.eml")
        self.committed = True
        self._close()

    def discard(self) -> None:
        """Remove the body unless it was committed; safe to call more than once."""
        self._close()
        if not self.committed:
            self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass(frozen=True)
class Waiting:
    """Letters accepted but not yet held: committed items in `spool/incoming/`."""

    letters: int = 0
    bytes: int = 0

    def plus(self, letters: int, size: int) -> Waiting:
        return Waiting(self.letters + letters, self.bytes + size)


@dataclass(frozen=True)
class FoundRoute:
    """A letter's route as intake found it at RCPT: the writer and the pal, by id. Processing
    checks it again against the records (`route.recheck`) instead of looking both up anew."""

    rcpt: str
    sender: str
    recipient: str


@dataclass(frozen=True)
class Incoming:
    """What intake knew of an accepted message, the same for SMTP and IMAP: the commit marker
    of an incoming spool item. `peer` and `helo` are empty for IMAP (a mailbox has neither).
    `client` and `client_helo` are the front server's own client, when it said (XFORWARD)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: str
    via: str  # "smtp" or "imap"
    peer: str = ""
    helo: str = ""
    routes: tuple[FoundRoute, ...] = ()
    verdict: Verdict = UNCHECKED  # who vouches for the sender (relay/authentication.py)
    client: str = ""
    client_helo: str = ""

    def route_for(self, rcpt: str) -> FoundRoute | None:
        return next((r for r in self.routes if r.rcpt == rcpt), None)

    def to_meta(self) -> dict[str, Any]:
        return {
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            "received_at": self.received_at,
            "via": self.via,
            "peer": self.peer,
            "helo": self.helo,
            "routes": [[r.rcpt, r.sender, r.recipient] for r in self.routes],
            "verdict": self.verdict.to_meta(),
            "client": self.client,
            "client_helo": self.client_helo,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Incoming:
        """Markers written before routes were kept have none: they are routed anew; those
        written before verdicts were kept read as not checked."""
        return cls(
            mail_from=str(meta.get("mail_from") or ""),
            rcpt_tos=tuple(str(r) for r in meta.get("rcpt_tos") or ()),
            received_at=str(meta.get("received_at") or ""),
            via=str(meta.get("via") or "smtp"),
            peer=str(meta.get("peer") or ""),
            helo=str(meta.get("helo") or ""),
            routes=tuple(FoundRoute(*map(str, r)) for r in meta.get("routes") or ()),
            verdict=Verdict.from_meta(meta.get("verdict")),
            client=str(meta.get("client") or ""),
            client_helo=str(meta.get("client_helo") or ""),
        )


@dataclass(frozen=True)
class Item:
    id: str
    queue: str
    meta: dict[str, Any]


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        for queue in QUEUES:
            (root / queue).mkdir(parents=True, exist_ok=True)
        self._markers: dict[Path, tuple[int, int, dict[str, Any]]] = {}
        self._fsyncs: ThreadPoolExecutor | None = None

    def path(self, queue: str, item_id: str, suffix: str = ".eml") -> Path:
        return self.root / queue / f"{item_id}{suffix}"

    def _write(self, queue: str, item_id: str, raw: bytes, meta: dict[str, Any]) -> None:
        with open(self.path(queue, item_id), "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        # The marker's rename and the folder fsync also make the .eml's name durable.
        write_atomic(self.path(queue, item_id, ".json"), json.dumps(meta).encode())

    # --- incoming ------------------------------------------------------------------------

    def accept(self, raw: bytes, incoming: Incoming, item_id: str | None = None) -> str:
        """Durably store a message as received; returns its spool id.

        With `item_id` (derived from the message by the caller) a message already in the
        spool is not stored again: the call returns "" instead of the id.
        """
        if item_id is not None and self.has(item_id):
            return ""
        chosen = item_id or new_id()
        self._write("incoming", chosen, raw, incoming.to_meta())
        return chosen

    def draft(self) -> Draft:
        """A new message body being received, written as it arrives (`incoming/.<id>.eml.tmp`)
        so that intake never holds a whole message in memory."""
        return Draft(self.root / "incoming")

    def accept_drafts(self, messages: list[tuple[Draft, Incoming]]) -> list[str]:
        """Durably store several received bodies at once (group commit); returns their ids.

        Same guarantee as `accept` for every message once this returns: bodies and markers
        fsynced, bodies renamed into place, then markers, then one folder fsync. If it
        raises, none of the batch may be acknowledged (a marker already in place is
        processed anyway: harmless, the sender will retry and SMTP allows duplicates of
        unacknowledged mail); the bodies not yet renamed are removed by their sessions.
        """
        folder = self.root / "incoming"
        markers: list[tuple[Path, bytes, int]] = []
        for draft, incoming in messages:
            meta = json.dumps(incoming.to_meta()).encode()
            markers.append((folder / f".{draft.id}.json.tmp", meta, 0o600))
        self._write_synced(markers, also=tuple(draft.fd for draft, _ in messages))
        for draft, _ in messages:
            draft.commit()
            os.replace(folder / f".{draft.id}.json.tmp", folder / f"{draft.id}.json")
        fsync_dir(folder)
        return [draft.id for draft, _ in messages]

    def _write_synced(
        self, files: list[tuple[Path, bytes, int]], also: tuple[int, ...] = ()
    ) -> None:
        """Create every (path, data, mode) and fsync them together with the open files
        `also`; on failure none of the created files remain."""
        written: list[tuple[int, Path]] = []
        try:
            for path, data, mode in files:
                written.append((_create(path, data, mode), path))
            self._fsync_all([*also, *(fd for fd, _ in written)])
        except BaseException:
            for _, path in written:
                path.unlink(missing_ok=True)
            raise
        finally:
            for fd, _ in written:
                os.close(fd)

    def _fsync_all(self, fds: list[int]) -> None:
        """Fsync files together: the file system merges concurrent fsyncs into few commits."""
        if len(fds) > 2:
            if self._fsyncs is None:
                self._fsyncs = ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="fsync")
            list(self._fsyncs.map(os.fsync, fds))
        else:
            for fd in fds:
                os.fsync(fd)

    def has(self, item_id: str) -> bool:
        return (
            self.path("incoming", item_id, ".json").exists()
            or self.path("messages", item_id).exists()
        )

    def waiting(self) -> Waiting:
        """Letters accepted but not yet held, and their bytes: one listing of `incoming/`
        and one `stat` per committed message body (intake's back-pressure reads it)."""
        letters = size = 0
        with os.scandir(self.root / "incoming") as entries:
            names = {entry.name: entry for entry in entries}
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                letters += 1
                body = names.get(name.removesuffix(".json") + ".eml")
                if body is not None:
                    with contextlib.suppress(OSError):  # held and moved away meanwhile
                        size += body.stat().st_size
        return Waiting(letters, size)

    def pending_ids(self) -> list[str]:
        """Ids of committed incoming messages, oldest first, without reading their markers."""
        names = os.listdir(self.root / "incoming")
        return sorted(n.removesuffix(".json") for n in names if n.endswith(".json"))

    def incoming(self, item_id: str) -> Incoming | None:
        """What intake recorded of a committed incoming message; None once it is processed."""
        try:
            meta = json.loads(self.path("incoming", item_id, ".json").read_bytes())
        except (OSError, ValueError):
            return None
        return Incoming.from_meta(meta)

    def original(self, item_id: str) -> bytes:
        for queue in ("incoming", "messages"):
            path = self.path(queue, item_id)
            if path.exists():
                return path.read_bytes()
        raise FileNotFoundError(item_id)

    def processed(self, item_id: str, *, keep: bool = True) -> None:
        """Move an incoming message to the kept originals (or, when nothing refers to it
        any more, remove it: `keep=False`), then drop its marker."""
        source = self.path("incoming", item_id)
        if source.exists() and keep:
            os.replace(source, self.path("messages", item_id))
            fsync_dir(self.root / "messages")
        elif source.exists():
            source.unlink()
        self.path("incoming", item_id, ".json").unlink(missing_ok=True)
        fsync_dir(self.root / "incoming")
        (self.root / "attempts" / item_id).unlink(missing_ok=True)

    def failed_attempt(self, item_id: str) -> int:
        """Count one more failed attempt at processing an incoming message; returns the count
        (kept on disk, so a message that crashes `serve` is counted across restarts)."""
        path = self.root / "attempts" / item_id
        try:
            count = int(path.read_text() or 0)
        except (OSError, ValueError):
            count = 0
        write_atomic(path, str(count + 1).encode())
        return count + 1

    def set_aside(self, item_id: str) -> None:
        """Move an incoming message that cannot be processed to `unprocessed/`, where staff
        can look at it; it is never tried again."""
        for suffix in (".eml", ".json"):
            source = self.path("incoming", item_id, suffix)
            if source.exists():
                os.replace(source, self.path("unprocessed", item_id, suffix))
        fsync_dir(self.root / "unprocessed")
        fsync_dir(self.root / "incoming")
        (self.root / "attempts" / item_id).unlink(missing_ok=True)

    def received_at(self, item_id: str) -> str:
        """When an incoming message was accepted, read from its marker ("" if unreadable)."""
        try:
            meta = json.loads(self.path("incoming", item_id, ".json").read_bytes())
            return str(meta.get("received_at") or "")
        except (OSError, ValueError, AttributeError):
            return ""

    def set_aside_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "unprocessed").glob("*.json"))

    # --- moderators' changes -------------------------------------------------------------

    def save_changes(self, letter_id: int, data: bytes) -> None:
        """A moderator's changes to a letter (files removed, an edit, a redaction), written
        atomically and synced before any decision that depends on them is recorded; the
        original stays in `messages/` and the scrubbed version in `scrubbed/`, for the audit."""
        write_atomic(self.path("edits", f"letter-{letter_id}", ".json"), data)

    def changes(self, letter_id: int) -> bytes | None:
        try:
            return self.path("edits", f"letter-{letter_id}", ".json").read_bytes()
        except FileNotFoundError:
            return None

    def edit(self, letter_id: int) -> str | None:
        """A text edit written before changes were kept as one record (read, never written)."""
        path = self.path("edits", f"letter-{letter_id}", ".txt")
        return path.read_text("utf-8") if path.exists() else None

    # --- scrubbed versions ----------------------------------------------------------------

    def save_scrubbed(self, item_id: str, recipient: str, data: bytes) -> None:
        write_atomic(self.path("scrubbed", f"{item_id}.{recipient}", ".json"), data)

    def scrubbed(self, item_id: str, recipient: str) -> bytes | None:
        try:
            return self.path("scrubbed", f"{item_id}.{recipient}", ".json").read_bytes()
        except FileNotFoundError:
            return None

    # --- outbox --------------------------------------------------------------------------

    def enqueue(self, item_id: str, message: CheckedMessage, meta: dict[str, Any]) -> bool:
        """Put a composed message in the outbox once; False if it is already there.

        Only a `CheckedMessage` is taken: the leak guard searched exactly these bytes.
        """
        return self.enqueue_batch([(item_id, message, meta)])[0]

    def enqueue_batch(
        self, entries: Sequence[tuple[str, CheckedMessage, dict[str, Any]]]
    ) -> list[bool]:
        """Put several messages in the outbox with one group commit; for each, False if it
        was already there.

        Bodies and markers are written under temporary names and fsynced together; then each
        body is renamed into place just before its marker, and one folder fsync makes the
        batch durable. If it raises, an entry whose marker is in place is committed anyway
        (its body is too); the others leave only temporary files behind.
        """
        folder = self.root / "outbox"
        queued, wanted, fresh = [], set(), []
        for item_id, message, meta in entries:
            new = item_id not in wanted and not self.queued_or_sent(item_id)
            wanted.add(item_id)
            queued.append(new)
            if new:
                fresh.append((item_id, message, meta))
        if not fresh:
            return queued
        files: list[tuple[Path, bytes, int]] = []
        renames: list[tuple[Path, Path, Path, Path]] = []
        for item_id, message, meta in fresh:
            token = secrets.token_hex(4)
            body = folder / f".{item_id}.{token}.eml.tmp"
            marker = folder / f".{item_id}.{token}.json.tmp"
            files += [(body, message.data, 0o666), (marker, json.dumps(meta).encode(), 0o600)]
            final = (self.path("outbox", item_id), self.path("outbox", item_id, ".json"))
            renames.append((body, final[0], marker, final[1]))
        self._write_synced(files)
        for body, body_final, marker, marker_final in renames:
            os.replace(body, body_final)
            crash_point("outbox-between-body-and-marker")
            os.replace(marker, marker_final)
        fsync_dir(folder)
        return queued

    def was_sent(self, item_id: str) -> bool:
        return (self.root / "sent" / item_id).exists()

    def queued_or_sent(self, item_id: str) -> bool:
        """Whether an outbox entry of this name is waiting, or was delivered already: entries
        have fixed names, so queueing again after a crash never sends a copy twice."""
        return self.path("outbox", item_id, ".json").exists() or self.was_sent(item_id)

    def outbox(self) -> list[Item]:
        return self._items("outbox")

    def message(self, queue: str, item_id: str) -> bytes:
        return self.path(queue, item_id).read_bytes()

    def update(self, queue: str, item_id: str, meta: dict[str, Any]) -> None:
        write_atomic(self.path(queue, item_id, ".json"), json.dumps(meta).encode())

    def drop(self, item_id: str) -> None:
        """Remove an entry that was never sent (its message is gone); its name is not kept."""
        self._remove([item_id])

    def sent(self, item_id: str) -> None:
        self.sent_many([item_id])

    def sent_many(self, item_ids: Sequence[str]) -> None:
        """Remove delivered entries (marker first, then body) with one folder fsync; their
        names stay in `sent/`, so queueing the same entry again is refused."""
        if not item_ids:
            return
        for item_id in item_ids:
            (self.root / "sent" / item_id).touch()
        fsync_dir(self.root / "sent")
        self._remove(item_ids)

    def _remove(self, item_ids: Sequence[str]) -> None:
        for item_id in item_ids:
            self.path("outbox", item_id, ".json").unlink(missing_ok=True)
            self.path("outbox", item_id).unlink(missing_ok=True)
        fsync_dir(self.root / "outbox")

    def forget_sent(self, before: float) -> int:
        """Drop the names of entries delivered before `before` (a Unix time)."""
        forgotten = 0
        for name in os.listdir(self.root / "sent"):
            path = self.root / "sent" / name
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < before:
                    path.unlink()
                    forgotten += 1
        return forgotten

    def give_up(self, item_id: str, meta: dict[str, Any]) -> None:
        os.replace(self.path("outbox", item_id), self.path("failed", item_id))
        write_atomic(self.path("failed", item_id, ".json"), json.dumps(meta).encode())
        self.path("outbox", item_id, ".json").unlink(missing_ok=True)
        fsync_dir(self.root / "outbox")

    # --- retention -----------------------------------------------------------------------
    # relay/schedule/retention.py decides what goes; these only list and remove.

    def kept_originals(self) -> list[tuple[str, float]]:
        """Every original in `messages/`, with when it arrived (seconds since the epoch)."""
        found = []
        for body in (self.root / "messages").glob("*.eml"):
            with contextlib.suppress(FileNotFoundError):
                found.append((body.stem, _arrived(body)))
        return sorted(found)

    def failed_entries(self) -> list[tuple[str, float]]:
        """Every message the transport refused for good (`failed/`), with when it was."""
        return self._marked("failed")

    def set_aside_entries(self) -> list[tuple[str, float]]:
        """Every message set aside after failing processing (`unprocessed/`), with when it
        arrived (its marker's time)."""
        return self._marked("unprocessed")

    def remove_set_aside(self, item_ids: Sequence[str]) -> None:
        self._remove_marked("unprocessed", item_ids)

    def _marked(self, folder: str) -> list[tuple[str, float]]:
        """The messages of a folder that keeps a `.json` marker beside each, with the
        marker's time."""
        found = []
        for marker in (self.root / folder).glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                found.append((marker.stem, marker.stat().st_mtime))
        return sorted(found)

    def _remove_marked(self, folder: str, item_ids: Sequence[str]) -> None:
        """The messages and then their markers: one left by a crash is listed again."""
        for item_id in item_ids:
            self.path(folder, item_id).unlink(missing_ok=True)
            self.path(folder, item_id, ".json").unlink(missing_ok=True)
        fsync_dir(self.root / folder)

    def remove_originals(self, item_ids: Sequence[str]) -> None:
        for item_id in item_ids:
            self.path("messages", item_id).unlink(missing_ok=True)
        fsync_dir(self.root / "messages")

    def remove_failed(self, item_ids: Sequence[str]) -> None:
        self._remove_marked("failed", item_ids)

    def remove_letter_versions(self, item_id: str, recipient: str, letter_id: int) -> None:
        """A letter's scrubbed version and a moderator's changes to it."""
        self.path("scrubbed", f"{item_id}.{recipient}", ".json").unlink(missing_ok=True)
        for suffix in (".json", ".txt"):
            self.path("edits", f"letter-{letter_id}", suffix).unlink(missing_ok=True)

    # --- recovery ------------------------------------------------------------------------

    def _items(self, queue: str) -> list[Item]:
        """Every committed item of a queue. The delivery loop asks for the outbox each second,
        so a marker is parsed again only when it was replaced (markers are never edited in
        place: a new one has a new inode)."""
        items = []
        seen: dict[Path, tuple[int, int, dict[str, Any]]] = {}
        for marker in sorted((self.root / queue).glob("*.json")):
            try:
                status = marker.stat()
                cached = self._markers.get(marker)
                if cached and cached[:2] == (status.st_ino, status.st_mtime_ns):
                    meta = cached[2]
                else:
                    meta = json.loads(marker.read_bytes())
            except (OSError, ValueError):
                continue
            seen[marker] = (status.st_ino, status.st_mtime_ns, meta)
            items.append(Item(marker.stem, queue, meta))
        self._markers = {p: v for p, v in self._markers.items() if p.parent != self.root / queue}
        self._markers.update(seen)
        return items

    def remove_unacknowledged(self, now: float | None = None) -> int:
        """At start: drop what crashed writers left, and outbox markers without a body.

        Only files older than `STALE_SECONDS` are removed: a CLI command running beside
        `serve` may be between writing a body and its marker right now. Returns how many
        unacknowledged bodies were removed.
        """
        cutoff = (time.time() if now is None else now) - STALE_SECONDS
        removed = 0
        for queue in ("incoming", "outbox"):
            folder = self.root / queue
            for body in folder.glob("*.eml"):
                if not body.with_suffix(".json").exists() and _older(body, cutoff):
                    body.unlink(missing_ok=True)
                    removed += 1
            for temp in folder.glob(".*.tmp"):
                if _older(temp, cutoff):
                    temp.unlink(missing_ok=True)
        for marker in (self.root / "outbox").glob("*.json"):
            if not marker.with_suffix(".eml").exists():
                log.warning("outbox entry without its message dropped item=%s", marker.stem)
                marker.unlink(missing_ok=True)
        fsync_dir(self.root / "outbox")
        return removed


def _arrived(body: Path) -> float:
    """When a spooled message arrived: its id starts with the time in nanoseconds (`new_id`);
    an id chosen otherwise (IMAP) falls back to the file's time."""
    if _NEW_ID.match(body.stem):
        return int(body.stem[:16], 16) / 1e9
    return body.stat().st_mtime


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:  # its writer renamed or removed it meanwhile
        return False
