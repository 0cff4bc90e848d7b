"""Data rights and retention at scale: what one export, one erasure and one daily purge cost.

The store is the one `bench store` builds (each participant paired, 10 letters each, 1 in
100 held, the rest delivered and archived; every key the relay writes for a letter). Measured
in-process through the relay's own functions: (a) `rights.export` of one participant (their
10 letters and more as their pal's), (b) `rights.erase` of one participant, (c) the daily
purge on a day it finds nothing to do (`retention.purge`: the scan it always makes, inside
`serve`'s writer), (d) `retention.plan`, what `config check` shows, on a day every archived
letter is past `letters_months`, and (e) the purge of that day, which reduces them all: the
first purge after retention is turned on for an old store (measured on a store of
`FIRST_PURGE_PARTICIPANTS` only; it costs the same per letter at any size, since each letter's
keys are removed from their own lookup shards). A day's purge in a running program reduces
the letters of one day, so its cost is that per-letter figure times a day's letters.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.common import Installation, emit, note
from bench.store import STAMP, build
from relay import rights
from relay.schedule import retention

FIRST_PURGE_PARTICIPANTS = 100
# A day on which nothing of the generated store is old, and one on which all of it is.
_FRESH = datetime.fromisoformat(STAMP) + timedelta(days=1)
_OLD = datetime.fromisoformat(STAMP) + timedelta(days=800)


def _seconds(fn: object) -> float:
    begin = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - begin


def measure(participants: int, repeat: int, *, first_purge: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-rights-") as temp:
        installation = Installation(Path(temp)).write_config()
        built = build(installation.root, participants)
        if participants >= 10_000:
            os.sync()
        note(f"rights {participants}: {built['letters']} letters")
        ctx = installation.context()
        samples = [3 + 2 * index for index in range(repeat)]  # odd numbers: riverside writers

        def one(number: int, action: str) -> float:
            person = ctx.store.participant(f"p{number}")
            if person is None:
                raise RuntimeError(f"generated store has no p{number}")
            if action == "export":
                return _seconds(lambda: rights.export(ctx, person, via="bench"))
            return _seconds(lambda: rights.erase(ctx, person, via="bench"))

        if first_purge:
            purge = _seconds(lambda: retention.purge(ctx, _OLD))
            figures = {
                "purge_all_old_ms": round(purge * 1000, 1),
                "purge_per_letter_ms": round(purge * 1000 / built["letters"], 2),
            }
        else:
            exports = sorted(one(n, "export") for n in samples)
            erasures = sorted(one(n, "erase") for n in samples)
            figures = {
                "export_ms": round(exports[len(exports) // 2] * 1000, 1),
                "erase_ms": round(erasures[len(erasures) // 2] * 1000, 1),
                "purge_nothing_ms": round(_seconds(lambda: retention.purge(ctx, _FRESH)) * 1000, 1),
                "plan_all_old_ms": round(_seconds(lambda: retention.plan(ctx, _OLD)) * 1000, 1),
            }
        for operation, ms in figures.items():
            emit(
                "rights",
                operation=operation.removesuffix("_ms"),
                participants=participants,
                letters=built["letters"],
                ms=ms,
            )
        return figures


def run(sizes: list[int], repeat: int) -> None:
    for size in sizes:
        measure(size, max(1, min(repeat, 5)))
    measure(FIRST_PURGE_PARTICIPANTS, 1, first_purge=True)
