"""Running a program of hundreds: what proposing pals and building the program report cost.

(a) `matching.propose` for two libraries of N and 0.9·N participants waiting for a pal (ages
9 to 14, two interests each, English and Spanish), in memory: the assignment is cubic in N,
so this says how large a single match may be before it is slow. (b) `reports.build` over the
store `bench store` builds (each participant paired, 10 letters each, most delivered and
archived), for the whole period the letters cover: what `penpal-relay report` and the
dashboard's report page cost. (c) `quiet.read` over the same store, on a day every pair has
been quiet for months: what the morning reminder and the Quiet pairs page cost.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from bench.common import Installation, emit, note
from bench.store import STAMP, build
from relay import matching, quiet, reports
from relay.config import MatchingSettings, Partnership
from relay.store.records import Participant

INTERESTS = ("football", "drawing", "music", "animals", "space", "books", "dance", "chess")
TODAY = date(2026, 11, 30)


def waiting(library: str, count: int, language: str, first: int) -> list[Participant]:
    """`count` participants without a pal, ages 9 to 14, in a fixed pattern."""
    return [
        Participant(
            id=f"p{first + index}",
            library=library,
            name=f"Pal {index}",
            email=f"pal{first + index}@example.net",
            language=language,
            masked=f"pal{first + index}@pals.example.org",
            birth_year=TODAY.year - 10 - (index * 7) % 6,
            interests=(INTERESTS[index % 8], INTERESTS[(index * 3) % 8]),
        )
        for index in range(count)
    ]


def measure_match(size: int) -> float:
    other = size * 9 // 10
    everyone = waiting("riverside", size, "en", 1) + waiting("valparaiso", other, "es", 10**6)
    partnership = Partnership("riverside+valparaiso", ("riverside", "valparaiso"))
    begin = time.perf_counter()
    proposal = matching.propose(partnership, everyone, MatchingSettings(), TODAY)
    seconds = time.perf_counter() - begin
    emit(
        "program",
        operation="match",
        participants=size + other,
        pairs=len(proposal.pairs),
        ms=round(seconds * 1000, 1),
    )
    return seconds


def measure_report(participants: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-program-") as temp:
        installation = Installation(Path(temp)).write_config()
        built = build(installation.root, participants)
        note(f"program {participants}: {built['letters']} letters")
        ctx = installation.context()
        month = datetime.fromisoformat(STAMP).strftime("%Y-%m")
        begin = time.perf_counter()
        reports.build(ctx.config, ctx.store, month, month)
        seconds = time.perf_counter() - begin
        emit(
            "program",
            operation="report",
            participants=participants,
            letters=built["letters"],
            ms=round(seconds * 1000, 1),
        )
        later = datetime.fromisoformat(STAMP) + timedelta(days=120)
        begin = time.perf_counter()
        found = quiet.read(ctx, later)
        emit(
            "program",
            operation="quiet",
            participants=participants,
            letters=built["letters"],
            quiet=len(found),
            ms=round((time.perf_counter() - begin) * 1000, 1),
        )
        return seconds


def run(sizes: list[int], match_sizes: list[int]) -> None:
    for size in match_sizes:
        measure_match(size)
    for size in sizes:
        measure_report(size)
