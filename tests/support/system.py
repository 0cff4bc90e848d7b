"""The machine under the tests: Debian packages installed when missing (never a reason to
skip), and the processes a relay started."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from filelock import FileLock

# One apt-get at a time across the test processes (the tests run in two workers): a second
# one would fail on dpkg's lock instead of waiting for the first to install the package.
PACKAGES_LOCK = Path(tempfile.gettempdir()) / "penpal-relay-tests-apt.lock"


def ensure_package(binary: str, package: str) -> str:
    """The path of `binary`, installing Debian's `package` first when it is missing."""
    # Looked for under the lock too: a binary that another process's apt-get has unpacked
    # but not yet configured is not ready.
    with FileLock(str(PACKAGES_LOCK), timeout=1800):
        found = _found(binary)
        if found:
            return found
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", package], check=True, timeout=1200, env=env
        )
    installed = shutil.which(binary) or binary
    if not Path(installed).exists():
        raise RuntimeError(f"{package} was installed but {binary} is still missing")
    return installed


def _found(binary: str) -> str | None:
    return shutil.which(binary) or (binary if Path(binary).exists() else None)


def children(parent: int, module: str) -> list[int]:
    """Pids of the child processes of `parent` running `python -m <module>` (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
            cmdline = (status.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(parent) and module.encode() in cmdline:
            found.append(int(status.parent.name))
    return found


def require_root() -> None:
    """Tests of what root does to another user's files run as root, as `.ci/run` does; run
    otherwise, they fail with this reason rather than pass unseen."""
    if os.geteuid() != 0:
        raise AssertionError("this test runs as root (as .ci/run does): it acts as other users")
