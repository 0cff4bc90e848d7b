"""Named crash points, for proving that a kill -9 at the worst moment loses nothing.

`crash_point("imap-after-spool")` kills the process with SIGKILL when the environment
variable PENPAL_RELAY_CRASH_AT names that point; otherwise it does nothing. Tests use it to
stop the relay exactly between two durable steps, as a power cut would.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "PENPAL_RELAY_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV_VAR) == name:
        os.kill(os.getpid(), signal.SIGKILL)
