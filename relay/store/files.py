"""Durable files: atomic replace, fsynced appends, and TinyDB storage built on them.

TinyDB's own JSONStorage rewrites its file in place: a crash mid-write leaves half a file,
and two processes writing lose each other's updates. `AtomicJSONStorage` writes a temporary
file, fsyncs it, `os.replace`s it over the old one and fsyncs the folder, so a reader sees
either the old or the new file, never a mix, and the new one survives a power cut once
`write` returns. Serializing writers across processes is the store's job (one file lock).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tinydb.storages import Storage


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new content."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync it: the audit log and the letter archive use this."""
    append_lines(path, [record])


def append_lines(path: Path, records: list[dict[str, Any]]) -> None:
    """Append several JSON lines with one fsync: a batch is durable together."""
    if not records:
        return
    data = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
    new = not path.exists()
    with open(path, "ab") as handle:
        handle.write(data.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    if new:
        fsync_dir(path.parent)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of an append-only file; a torn last line is ignored."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for line in raw.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # only the last line can be torn by a crash mid-append
    return records


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw:
            return None
        data: dict[str, dict[str, Any]] = json.loads(raw)
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        write_atomic(self.path, encoded)

    def close(self) -> None:
        pass
