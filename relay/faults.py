"""Named crash points, for proving that a kill -9 at the worst moment loses nothing.

`crash_point("imap-after-spool")` kills the process with SIGKILL when the environment
variable PENPAL_RELAY_CRASH_AT names that point; otherwise it does nothing. Tests use it to
stop the relay exactly between two durable steps, as a power cut would.

Named pause points, for proving what happens while one step falls behind:
`paused("hold")` is true while PENPAL_RELAY_PAUSE_AT names that point and the file named by
PENPAL_RELAY_PAUSE_WHILE exists; the step waits, and a test releases it by removing the file.
Points: "hold" (serve stops holding letters that intake accepted), "reconcile" (serve does not
yet queue the approved letters it finds unqueued at start).
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "PENPAL_RELAY_CRASH_AT"
PAUSE_AT = "PENPAL_RELAY_PAUSE_AT"
PAUSE_WHILE = "PENPAL_RELAY_PAUSE_WHILE"


def crash_point(name: str) -> None:
    if os.environ.get(ENV_VAR) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def paused(name: str) -> bool:
    if os.environ.get(PAUSE_AT) != name:
        return False
    return os.path.exists(os.environ.get(PAUSE_WHILE, ""))
