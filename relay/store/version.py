"""The store's format number, `<data_dir>/store/format.json`, checked before anything else.

A relay reads only the formats it knows: data written by a newer relay (after an upgrade
rolled back, or a backup restored on an older machine) is refused before a single file is
written, with one line saying which version wrote it. A store from before the number was
kept is format 1, the first numbered one; its file is written on first open.

A future change to the store's layout adds one step to `MIGRATIONS` (format n to n+1) and
raises `FORMAT`: every older store is brought forward at its first open, under the store
lock, one step at a time, the number written after each step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from relay.errors import UserError
from relay.store.files import write_atomic

FORMAT = 1
FILE = "format.json"
# format n -> the step that turns a store of format n into format n + 1 (none yet).
MIGRATIONS: dict[int, Callable[[Path], None]] = {}


class NewerStore(UserError):
    """The store was written by a newer relay than this one."""

    def __init__(self, root: Path, found: int) -> None:
        self.found = found
        super().__init__(
            f"the data in {root} was written by a newer penpal-relay (store format {found}; "
            f"this version reads format {FORMAT}); install that version or restore a backup"
        )


def package_version() -> str:
    try:
        return metadata.version("penpal-relay")
    except metadata.PackageNotFoundError:
        return "unknown"


def read_format(root: Path) -> int | None:
    """The store's format number; None when the file is missing (a store made earlier, or
    no store yet)."""
    try:
        data = json.loads((root / FILE).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise UserError(f"{root / FILE}: cannot be read ({error})") from None
    found = data.get("format") if isinstance(data, dict) else None
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise UserError(f"{root / FILE}: no store format number in it")
    return found


def refuse_newer(root: Path) -> int | None:
    """The store's format number (None: not numbered yet); `NewerStore` when this code
    cannot read it. Writes nothing."""
    found = read_format(root)
    if found is not None and found > FORMAT:
        raise NewerStore(root, found)
    return found


def write_format(root: Path, number: int = FORMAT) -> None:
    record = {"format": number, "written_by": package_version()}
    write_atomic(root / FILE, json.dumps(record).encode())


def bring_up_to_date(root: Path) -> None:
    """Run under the store lock: number an unnumbered store, migrate an older one."""
    found = read_format(root)
    if found is None:
        write_format(root)
        return
    refuse_newer(root)  # written meanwhile by a newer relay beside us
    while found < FORMAT:
        MIGRATIONS[found](root)
        found += 1
        write_format(root, found)
