"""Named fault points, for proving that the worst moment loses nothing.

`crash_point("imap-after-spool")` kills the process with SIGKILL when the environment
variable PENPAL_RELAY_CRASH_AT names that point; otherwise it does nothing. Tests use it to
stop the relay exactly between two durable steps, as a power cut would.

`pause_point("imap-after-search")` holds the calling thread when PENPAL_RELAY_PAUSE_AT names
that point: it creates `<name>.paused` in the folder PENPAL_RELAY_PAUSE_DIR names and waits
until the test creates `<name>.resume` there. Once resumed the point lets everyone through,
so a test can do something (append a message, drop a connection) exactly at that moment.

Named pause points, for proving what happens while one step falls behind:
`paused("hold")` is true while PENPAL_RELAY_PAUSE_AT names that point and the file named by
PENPAL_RELAY_PAUSE_WHILE exists; the step waits, and a test releases it by removing the file.
Points: "hold" (serve stops holding letters that intake accepted), "reconcile" (serve does not
yet queue the approved letters it finds unqueued at start).

In-process tests can instead run their own step at a crash point (`at_point`), e.g.
another process's start-up clean-up.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ENV_VAR = "PENPAL_RELAY_CRASH_AT"
PAUSE_AT = "PENPAL_RELAY_PAUSE_AT"
PAUSE_DIR = "PENPAL_RELAY_PAUSE_DIR"
PAUSE_WHILE = "PENPAL_RELAY_PAUSE_WHILE"
_steps: dict[str, Callable[[], None]] = {}


@contextmanager
def at_point(name: str, step: Callable[[], None]) -> Iterator[None]:
    """Run `step` whenever this process reaches the crash point `name` (tests only)."""
    _steps[name] = step
    try:
        yield
    finally:
        del _steps[name]


def crash_point(name: str) -> None:
    step = _steps.get(name)
    if step is not None:
        step()
    if os.environ.get(ENV_VAR) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def pause_point(name: str) -> None:
    if os.environ.get(PAUSE_AT) != name:
        return
    folder = Path(os.environ.get(PAUSE_DIR, "."))
    resume = folder / f"{name}.resume"
    if resume.exists():
        return
    (folder / f"{name}.paused").touch()
    while not resume.exists():
        time.sleep(0.02)  # a test hook: the test decides when, and ends the process if not


def paused(name: str) -> bool:
    if os.environ.get(PAUSE_AT) != name:
        return False
    return os.path.exists(os.environ.get(PAUSE_WHILE, ""))
