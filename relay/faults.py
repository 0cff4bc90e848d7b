"""Named crash points, for proving that a kill -9 at the worst moment loses nothing.

`crash_point("imap-after-spool")` kills the process with SIGKILL when the environment
variable PENPAL_RELAY_CRASH_AT names that point; otherwise it does nothing. Tests use it to
stop the relay exactly between two durable steps, as a power cut would. In-process tests can
instead run their own step there (`at_point`), e.g. another process's start-up clean-up.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ENV_VAR = "PENPAL_RELAY_CRASH_AT"
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
