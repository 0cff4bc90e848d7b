"""A command run as root on a data folder that belongs to the relay's own user becomes
that user before it opens anything in the folder.

Without this, `sudo penpal-relay queue approve 3` leaves root-owned, private store files
behind, and the service (running as `penpal-relay`) can no longer write its own store:
every later letter is answered 451. Root working on a root-owned (or missing) data folder,
as in a checkout, stays root. The configuration is read before (it may be readable by root
only); everything after is done as the folder's owner.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from relay.errors import UserError

PROG = "penpal-relay"


def become_data_owner(data_dir: Path) -> None:
    """As root, take the identity of `data_dir`'s owner when that is another user."""
    if os.geteuid() != 0:
        return
    try:
        status = data_dir.stat()
    except FileNotFoundError:
        return
    if status.st_uid == 0:
        return
    name, gid = _account(status.st_uid, status.st_gid)
    try:
        if name is not None:
            os.initgroups(name, gid)
        else:
            os.setgroups([])
        os.setgid(gid)
        os.setuid(status.st_uid)
    except OSError:
        owner = name or f"uid {status.st_uid}"
        raise UserError(
            f"data folder {data_dir} belongs to {owner}; run as that user "
            f"(sudo -u {owner if name else '#' + str(status.st_uid)} {PROG} ...)"
        ) from None


def _account(uid: int, folder_gid: int) -> tuple[str | None, int]:
    """The owner's name and primary group; without a passwd entry, the folder's group."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return None, folder_gid
    return entry.pw_name, entry.pw_gid
