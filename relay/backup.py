"""Backup and restore of the data folder, while `serve` keeps running.

A backup is a folder: `DEST/data/` (a copy of the data folder) and `DEST/manifest.json`,
written last, so a backup without its manifest is unfinished and `restore` refuses it. The
copy is made in `DEST/.partial/`, every file fsynced, and renamed to `DEST/data/` at the end.

Consistency without stopping the relay. Intake keeps accepting mail during a backup; only
the store is frozen, and only while its own files are copied:

1. The spool is copied first, queue by queue in the direction messages move (`incoming`
   before `messages` and `unprocessed`, `outbox` before `failed` and `sent`), so a message
   moving between two queues while they are copied is found in the first or the second.
   In `incoming/` and `outbox/` a body is copied only with its marker (the marker after
   the body): an unmarked body was never acknowledged to anyone. Temporary files (names
   starting with a dot: SMTP drafts, atomic writes in progress) are never copied.
2. The secret key, the DKIM keys and the Maildir (without `tmp/`) follow.
3. Under the store's exclusive lock (`store/store.lock`), the store and the journals written
   under it (`newsletter/`, `prompts/`) are copied: no store write lands mid-copy.
4. The spool is copied a second time, adding what arrived or changed meanwhile: a letter
   the store copy knows of has its message in the copy, in `incoming/` or `messages/`.
5. An outbox entry whose `sent/` name is also in the copy was delivered: it is dropped.

A message can so be in the copy twice, in `incoming/` and held in the store: restoring
processes it again, which is harmless because a letter is recorded once per spool item and
recipient (the lookup key `spool:<item>:<recipient>`). What the copy cannot know is what
the relay did after it was made: restoring goes back to that moment (see `restore`).

Not copied: the log file, `run/` (the running relay's ready file and lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from filelock import Timeout

from relay.config import Config
from relay.errors import UserError
from relay.faults import pause_point
from relay.store import Store, version
from relay.store.files import fsync_dir, write_atomic

MANIFEST = "manifest.json"
DATA = "data"
PARTIAL = ".partial"
SERVE_LOCK = Path("run") / "serve.lock"
# Queues of the spool in the order messages move through them (see the module's text).
SPOOL_ORDER = (
    "incoming",
    "unprocessed",
    "attempts",
    "messages",
    "scrubbed",
    "edits",
    "outbox",
    "failed",
    "sent",
)
MARKED_QUEUES = ("incoming", "outbox")  # a body counts only with its marker
UNDER_STORE_LOCK = ("store", "newsletter", "prompts")
NOT_COPIED = ("run", "spool", *UNDER_STORE_LOCK)  # run: never; the others in their step
FSYNC_THREADS = 8


@dataclass(frozen=True)
class Made:
    """What `backup` wrote, for the person who ran it."""

    folder: Path
    files: int
    bytes: int
    seconds: float
    store_seconds: float  # how long the store was locked


# --- is a relay running on this data folder? ------------------------------------------------


def hold_serve_lock(data_dir: Path) -> int:
    """Taken by `serve` for its whole life (released by the kernel when it ends, even when
    killed); `restore` refuses a data folder whose lock is held. Returns the open file."""
    path = data_dir / SERVE_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"a relay is already running on {data_dir}") from None
    return fd


def relay_running(data_dir: Path) -> bool:
    """Whether a `serve` holds the data folder's lock right now."""
    try:
        fd = os.open(data_dir / SERVE_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# --- copying -------------------------------------------------------------------------------


def _temporary(name: str) -> bool:
    return name.startswith(".")


@dataclass
class _Copy:
    """Copies files from `source` to `target` once, again only when they changed."""

    source: Path
    target: Path
    skip: frozenset[Path]
    copied: dict[Path, tuple[int, int]] = field(default_factory=dict)
    folders: set[Path] = field(default_factory=set)

    def file(self, relative: Path) -> bool:
        """Copy one file (mode and times kept, fsynced); False if it is gone meanwhile."""
        source = self.source / relative
        if source in self.skip:
            return False
        try:
            status = source.stat()
        except FileNotFoundError:
            return False
        stamp = (status.st_size, status.st_mtime_ns)
        if self.copied.get(relative) == stamp:
            return True
        self.folder(relative.parent)
        target = self.target / relative
        try:
            shutil.copy2(source, target)
        except FileNotFoundError:
            return False
        self.copied[relative] = stamp  # fsynced in `sync`, after the store's lock is let go
        return True

    def folder(self, relative: Path) -> None:
        target = self.target / relative
        if relative in self.folders or target == self.target:
            return
        self.folder(relative.parent)
        target.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            shutil.copymode(self.source / relative, target)
        self.folders.add(relative)

    def tree(self, relative: Path) -> None:
        """Every file under `relative`, temporary files and Maildir `tmp/` left out."""
        root = self.source / relative
        if root.is_file():
            self.file(relative)
            return
        for folder, names, files in os.walk(root):
            here = Path(folder).relative_to(self.source)
            names[:] = [n for n in names if not _temporary(n) and n != "tmp"]
            self.folder(here)
            for name in sorted(files):
                path = here / name
                if not _temporary(name):
                    self.file(path)

    def queue(self, relative: Path) -> None:
        """A spool queue whose bodies count only with their markers: body, then marker."""
        try:
            names = sorted(os.listdir(self.source / relative))
        except FileNotFoundError:
            return
        self.folder(relative)
        for name in names:
            if name.endswith(".json") and not _temporary(name):
                body = relative / (name.removesuffix(".json") + ".eml")
                if self.file(body):
                    self.file(relative / name)

    def spool(self) -> None:
        for queue in SPOOL_ORDER:
            where = Path("spool") / queue
            if queue in MARKED_QUEUES:
                self.queue(where)
            else:
                self.tree(where)

    def sync(self) -> None:
        """Make the copy durable: every file, then every folder. Done at the end, not while
        copying: an fsync per file under the store's lock would make serve wait on the disk
        (10,000 files: seconds), and fsyncs in flight together cost little more than one."""
        files = [self.target / relative for relative in self.copied]
        with ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="fsync") as pool:
            list(pool.map(_fsync_file, (p for p in files if p.exists())))
        for relative in sorted(self.folders, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(self.target / relative)
        fsync_dir(self.target)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _drop_delivered(copy: Path) -> None:
    """Outbox entries delivered while the spool was copied: their `sent/` name is there."""
    outbox, sent = copy / "spool" / "outbox", copy / "spool" / "sent"
    if not outbox.is_dir() or not sent.is_dir():
        return
    for marker in list(outbox.glob("*.json")):
        if (sent / marker.stem).exists():
            marker.unlink()
            marker.with_suffix(".eml").unlink(missing_ok=True)


def _log_files(config: Config) -> frozenset[Path]:
    """The log file and what logrotate made of it (relay.log.1, relay.log.2.gz, ...)."""
    log_file = config.relay.log_file
    if log_file is None or not log_file.parent.is_dir():
        return frozenset()
    return frozenset(p for p in log_file.parent.iterdir() if p.name.startswith(log_file.name))


def _empty_or_missing(folder: Path) -> bool:
    try:
        return not any(folder.iterdir())
    except FileNotFoundError:
        return True


def _check_destination(data_dir: Path, dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise UserError(f"DEST {dest}: exists and is not a folder")
    if not _empty_or_missing(dest):
        raise UserError(f"DEST {dest}: exists and is not empty; give a new folder")
    if dest.resolve().is_relative_to(data_dir.resolve()):
        raise UserError(f"DEST {dest}: is inside the data folder {data_dir}")
    if not (data_dir / "store").is_dir():
        raise UserError(f"no data to back up in {data_dir} (no store/ in it)")


def _copy_store(store: Store, copy: _Copy) -> None:
    """The store and the journals written under its lock, with no write of theirs half-done."""

    def copy_all() -> None:
        for name in UNDER_STORE_LOCK:
            if (copy.source / name).exists():
                copy.tree(Path(name))

    try:
        store.exclusively(copy_all)
    except Timeout:
        raise UserError(
            f"the store in {store.root} stayed locked for 60 s (a long command running?); try again"
        ) from None


def _counted(folder: Path) -> tuple[int, int]:
    """Files under `folder` and their bytes, in one walk."""
    sizes = [p.stat().st_size for p in folder.rglob("*") if p.is_file()]
    return len(sizes), sum(sizes)


def backup(config: Config, dest: Path) -> Made:
    """Copy the data folder into `dest` (see the module's text for why in this order)."""
    data_dir = config.relay.data_dir
    _check_destination(data_dir, dest)
    store = Store(data_dir / "store")  # a store of a newer relay is refused here
    started = time.monotonic()
    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / PARTIAL
    copy = _Copy(data_dir, partial, _log_files(config))
    partial.mkdir(mode=0o700, exist_ok=True)
    shutil.copymode(data_dir, partial)
    copy.spool()
    for entry in sorted(data_dir.iterdir()):
        if entry.name not in NOT_COPIED and not _temporary(entry.name):
            copy.tree(Path(entry.name))
    pause_point("backup-before-store")
    locked_at = time.monotonic()
    _copy_store(store, copy)
    store_seconds = time.monotonic() - locked_at
    copy.spool()
    _drop_delivered(partial)
    (partial / "store" / "store.lock").unlink(missing_ok=True)
    copy.sync()
    os.rename(partial, dest / DATA)
    fsync_dir(dest)
    files, size = _counted(dest / DATA)
    seconds = time.monotonic() - started
    manifest = {
        "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_dir": str(data_dir.absolute()),
        "store_format": version.read_format(dest / DATA / "store") or version.FORMAT,
        "penpal_relay": version.package_version(),
        "files": files,
        "bytes": size,
        "seconds": round(seconds, 3),
    }
    write_atomic(dest / MANIFEST, json.dumps(manifest, indent=2).encode())
    return Made(dest, files, size, seconds, store_seconds)


# --- restoring -----------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, object]:
    try:
        manifest = json.loads((source / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise UserError(
            f"SRC {source}: not a finished penpal-relay backup (no {MANIFEST} in it)"
        ) from None
    except (OSError, ValueError) as error:
        raise UserError(f"SRC {source}: {MANIFEST} cannot be read ({error})") from None
    if not isinstance(manifest, dict) or not (source / DATA / "store").is_dir():
        raise UserError(f"SRC {source}: not a penpal-relay backup (no {DATA}/store in it)")
    return manifest


@dataclass(frozen=True)
class Restored:
    data_dir: Path
    moved_aside: Path | None
    manifest: dict[str, object]


def restore(config: Config, source: Path, *, force: bool) -> Restored:
    """Make `data_dir` a copy of the backup in `source`; the old folder is moved aside."""
    data_dir = config.relay.data_dir
    manifest = read_manifest(source)
    version.refuse_newer(source / DATA / "store")
    if relay_running(data_dir):
        raise UserError(
            f"a relay is running on {data_dir}; stop it first (systemctl stop penpal-relay)"
        )
    owner = _owner(data_dir)
    aside = None
    if not _empty_or_missing(data_dir):
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = data_dir.with_name(f"{data_dir.name}.before-restore-{stamp}")
        if not force:
            raise UserError(
                f"{data_dir} is not empty; pass --force to move it aside (to {aside.name})"
            )
    incoming = data_dir.with_name(f".{data_dir.name}.restoring")
    if incoming.exists():
        shutil.rmtree(incoming)  # left by a restore that was interrupted
    copy = _Copy(source / DATA, incoming, frozenset())
    incoming.mkdir(mode=0o700)
    shutil.copymode(source / DATA, incoming)
    copy.tree(Path("."))
    copy.sync()
    if owner is not None:
        _give_to(incoming, *owner)
    if aside is not None:
        os.rename(data_dir, aside)
    os.replace(incoming, data_dir)  # over an empty folder, or where the old one was
    fsync_dir(data_dir.parent)
    return Restored(data_dir, aside, manifest)


def _owner(data_dir: Path) -> tuple[int, int] | None:
    """Whose the restored files become: the data folder's owner, when root restores."""
    if os.geteuid() != 0:
        return None
    try:
        status = data_dir.stat()
    except FileNotFoundError:
        return None
    return status.st_uid, status.st_gid


def _give_to(folder: Path, uid: int, gid: int) -> None:
    os.chown(folder, uid, gid)
    for root, names, files in os.walk(folder):
        for name in [*names, *files]:
            os.chown(Path(root) / name, uid, gid, follow_symlinks=False)
