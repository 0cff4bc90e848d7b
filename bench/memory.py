"""Peak memory of `serve` while ten sessions each send a 24 MB letter at once.

`serve` runs as an administrator runs it, with `[smtp] max_message_bytes` at 25 MiB and
holding paused (`PENPAL_RELAY_PAUSE_AT=hold`), so the figure is intake's alone: receiving
and spooling. The peak resident set (`VmHWM` in /proc/<pid>/status) is read once every
letter was answered, then holding is released and the peak read again (the hold scrubs
each letter, one at a time). `--relay-root` runs another checkout's `relay` package (an
older commit unpacked with `git archive`), to measure before and after a change.
"""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Installation, emit, note, wait_for

SESSIONS = 10
LETTER_BYTES = 24_000_000


def _letter(sender: str, to: str) -> bytes:
    head = f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: Big drawing\r\n\r\n".encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * (LETTER_BYTES // len(line))


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def _send_all(port: int, sender: str, to: str, letter: bytes) -> list[Any]:
    answers: list[Any] = [None] * SESSIONS

    def send(index: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
            answers[index] = client.sendmail(sender, [to], letter)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def run(relay_root: Path | None = None) -> dict[str, Any]:
    root = relay_root or ROOT
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as temp:
        installation = Installation(Path(temp)).write_config()
        text = installation.config_path.read_text()
        installation.config_path.write_text(
            text.replace("max_message_bytes = 10485760", "max_message_bytes = 26214400")
        )
        sender, recipient = installation.enroll_pals()
        paused = Path(temp) / "hold.paused"
        paused.touch()
        env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "PENPAL_RELAY_PAUSE_AT": "hold",
            "PENPAL_RELAY_PAUSE_WHILE": str(paused),
        }
        ready = installation.data_dir / "run" / "serve.json"
        command = [sys.executable, "-m", "relay", "--config", str(installation.config_path)]
        with open(Path(temp) / "serve.log", "ab") as log:
            process = subprocess.Popen(
                [*command, "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=temp,
                env=env,
                start_new_session=True,
            )
        try:
            info = wait_for(lambda: ready.exists() and ready.read_text(), 60, "serve")
            port = int(info.split('"smtp": "')[1].split('"')[0].rsplit(":", 1)[1])
            idle = _peak_kib(process.pid)
            letter = _letter(sender, recipient)
            begin = time.perf_counter()
            _send_all(port, sender, recipient, letter)
            elapsed = time.perf_counter() - begin
            intake = _peak_kib(process.pid)
            del letter
            paused.unlink()
            held = installation.data_dir / "spool" / "incoming"
            wait_for(lambda: not any(held.glob("*.json")), 600, "every letter held")
            total = _peak_kib(process.pid)
        finally:
            process.terminate()
            process.wait(60)
    note(f"relay from {root}")
    return emit(
        "memory",
        sessions=SESSIONS,
        letter_bytes=LETTER_BYTES,
        idle_peak_mib=round(idle / 1024, 1),
        intake_peak_mib=round(intake / 1024, 1),
        after_hold_peak_mib=round(total / 1024, 1),
        send_seconds=round(elapsed, 2),
    )
