"""Intake against Postfix: the same load from Postfix's own `smtp-source`, same machine.

Each round loads, in turn, (a) `penpal-relay serve` with the writer enrolled and paired so
that every letter is accepted and held, (b) Postfix set up by `postfix-peer` (virtual alias
and HOLD, fsync before 250), (c) a bare aiosmtpd sink that writes nothing. Rounds alternate
so that a slow moment of the machine hits every contender. After each relay round the bench
waits for processing to finish and checks that every accepted letter is in the hold queue.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    DOMAIN,
    ROOT,
    Installation,
    Serve,
    emit,
    free_port,
    median_spread,
    note,
    wait_for,
)

POSTFIX_PEER = Path("/work/shared/bench/postfix-peer")
SIZE = 20_000
SESSIONS = 10


def smtp_source(port: int, count: int, sender: str, recipient: str) -> float:
    """Send `count` letters over SESSIONS sessions; returns elapsed seconds."""
    command = [
        "smtp-source",
        *("-s", str(SESSIONS), "-m", str(count), "-l", str(SIZE)),
        *("-f", sender, "-t", recipient, f"127.0.0.1:{port}"),
    ]
    begin = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - begin


def relay_round(count: int, env: dict[str, str], workers: int = 0) -> dict[str, Any]:
    """Workers > 0: that many intake processes beside serve; negative: serve itself does not
    accept SMTP, -workers intake processes do (see bench.variant)."""
    if workers < 0:
        env = {**env, "BENCH_SERVE_LISTENS": "0"}
        workers = -workers
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as temp:
        installation = Installation(Path(temp)).write_config()
        sender, recipient = installation.enroll_pals()
        serve = Serve(installation, env, workers)
        serve.start()
        try:
            elapsed = smtp_source(serve.port, count, sender, recipient)
            store = installation.context().store
            begin = time.perf_counter()
            wait_for(lambda: len(store.queue()) >= count, 600, "letters to be held")
            processing = time.perf_counter() - begin
            held = len(store.queue())
        finally:
            serve.stop()
    if held != count:
        raise RuntimeError(f"relay held {held} letters of {count} sent")
    return {"seconds": elapsed, "held": held, "processing_after_seconds": processing}


def postfix_round(count: int) -> dict[str, Any]:
    port = free_port()
    subprocess.run([str(POSTFIX_PEER), "start", str(port), DOMAIN], check=True)
    try:
        elapsed = smtp_source(port, count, "a@example.net", f"pal@{DOMAIN}")

        def held() -> int:
            out = subprocess.run([str(POSTFIX_PEER), "held"], capture_output=True, text=True)
            return int(out.stdout.strip() or 0)

        wait_for(lambda: held() >= count, 60, "Postfix hold queue")
        found = held()
    finally:
        subprocess.run([str(POSTFIX_PEER), "stop"], check=False)
    if found != count:
        raise RuntimeError(f"Postfix held {found} of {count}")
    return {"seconds": elapsed, "held": found}


def sink_round(count: int) -> dict[str, Any]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.sink"], stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        elapsed = smtp_source(port, count, "a@example.net", f"pal@{DOMAIN}")
    finally:
        process.terminate()
        process.wait()
    return {"seconds": elapsed}


def run(
    count: int,
    rounds: int,
    *,
    postfix: bool = True,
    workers: tuple[int, ...] = (0, 1),
    env: dict[str, str] | None = None,
) -> None:
    if shutil.which("smtp-source") is None:
        raise SystemExit("smtp-source is missing: apt-get install postfix")
    names = [_relay_name(n) for n in workers]
    rates: dict[str, list[float]] = {name: [] for name in [*names, "postfix", "sink"]}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for number in range(1, rounds + 1):
        contenders: list[tuple[str, Any]] = [
            (_relay_name(n), lambda n=n: relay_round(count, env or {}, n)) for n in workers
        ]
        if postfix:
            contenders.append(("postfix", lambda: postfix_round(count)))
        contenders.append(("sink", lambda: sink_round(count)))
        if number % 2 == 0:
            contenders.reverse()  # alternate who goes first
        per_round: dict[str, float] = {}
        for name, go in contenders:
            note(f"intake round {number}: {name}")
            outcome = go()
            rate = count / outcome["seconds"]
            rates[name].append(rate)
            per_round[name] = rate
            emit(
                "intake",
                target=name,
                round=number,
                letters=count,
                per_second=round(rate, 1),
                **{k: round(v, 3) if isinstance(v, float) else v for k, v in outcome.items()},
            )
        if postfix:
            for name in names:
                ratios[name].append(per_round[name] / per_round["postfix"])
    for name, values in rates.items():
        if values:
            mid, low, high = median_spread(values)
            emit(
                "intake-summary",
                target=name,
                median_per_second=round(mid, 1),
                min=round(low, 1),
                max=round(high, 1),
                rounds=len(values),
                letters=count,
            )
    for name, values in ratios.items():
        if values:
            mid, low, high = median_spread(values)
            emit(
                "intake-ratio",
                target=name,
                relay_over_postfix=round(mid, 3),
                min=round(low, 3),
                max=round(high, 3),
                rounds=len(values),
            )


def _relay_name(workers: int) -> str:
    if workers < 0:
        return f"relay, {-workers} intake process(es) only"
    return "relay" if workers == 0 else f"relay+{workers}-intake-process"
