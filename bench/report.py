"""Markdown tables (and PNG charts) from result lines, written into docs/benchmarks.md.

Each part of the benchmark owns one block of the document between
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; a run rewrites only the blocks of the parts
it ran, with the command that produced them, and leaves the prose around them alone.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Results = list[dict[str, Any]]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _stamp(command: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}"
    return f"Command: `{command}` — {when}, {machine}.\n"


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def intake(results: Results, command: str, folder: Path) -> str:
    rounds = [r for r in results if r["bench"] == "intake"]
    names = list(dict.fromkeys(r["target"] for r in rounds))
    numbers = sorted({r["round"] for r in rounds})
    per_round = [
        [number]
        + [
            next((r["per_second"] for r in rounds if r["round"] == number and r["target"] == n), "")
            for n in names
        ]
        for number in numbers
    ]
    summary = [
        [r["target"], r["median_per_second"], f"{r['min']}–{r['max']}", r["rounds"]]
        for r in results
        if r["bench"] == "intake-summary"
    ]
    ratios = [
        [r["target"], r["relay_over_postfix"], f"{r['min']}–{r['max']}", r["rounds"]]
        for r in results
        if r["bench"] == "intake-ratio"
    ]
    letters = rounds[0]["letters"] if rounds else 0
    text = _stamp(command)
    text += f"\n{letters} letters of 20 KB per round, 10 concurrent sessions (`smtp-source`).\n\n"
    text += "Letters per second, each round:\n\n"
    text += _table(["round", *names], per_round) + "\n\n"
    text += _table(["target", "median letters/s", "spread (min–max)", "rounds"], summary)
    text += "\n\n" + _table(
        ["relay variant", "relay / Postfix (median)", "spread", "rounds"], ratios
    )
    held = [r for r in rounds if "held" in r and r["target"].startswith("relay")]
    if held:
        ok = all(r["held"] == r["letters"] for r in held)
        slowest = max(r.get("processing_after_seconds", 0) for r in held)
        text += (
            f"\n\nEvery relay round: {'all' if ok else 'NOT all'} accepted letters were found in"
            f" the hold queue (processing finished up to {slowest:.0f} s after the last 250).\n"
        )
    return text


def store(results: Results, command: str, folder: Path) -> str:
    rows = [r for r in results if r["bench"] == "store" and "median_ms" in r]
    sizes = sorted({r["participants"] for r in rows})
    operations = list(dict.fromkeys(r["operation"] for r in rows))
    ratio = {r["operation"]: r["ratio"] for r in results if r["bench"] == "store-ratio"}
    table = [
        [operation]
        + [
            next(
                r["median_ms"]
                for r in rows
                if r["operation"] == operation and r["participants"] == s
            )
            for s in sizes
        ]
        + [ratio.get(operation, "")]
        for operation in operations
    ]
    header = ["median ms", *[f"{s:,} participants" for s in sizes], "largest / smallest"]
    text = _stamp(command) + "\n" + _table(header, table) + "\n"
    for r in results:
        if r["bench"] == "store" and r["operation"] == "serve_ready":
            text += (
                f"\n`serve` ready (listening) at {r['participants']:,} participants and "
                f"{r['letters']:,} letters: **{r['seconds']} s**.\n"
            )
    chart = _chart(
        folder / "benchmarks-store.png",
        lambda axes: [
            axes.plot(
                sizes,
                [
                    next(
                        r["median_ms"]
                        for r in rows
                        if r["operation"] == op and r["participants"] == s
                    )
                    for s in sizes
                ],
                marker="o",
                label=op,
            )
            for op in operations
        ],
        "participants (10 letters each)",
        "median ms",
    )
    if chart:
        text += f"\n![store scaling]({chart})\n"
    return text


def scrub(results: Results, command: str, folder: Path) -> str:
    rows = [
        [
            r["shape"],
            f"{r['bytes']:,}",
            r["scrub_screen_per_second"],
            r["parse_serialize_per_second"],
            r["ratio"],
            f"{r['pillow_share']:.0%}" if "pillow_share" in r else "",
        ]
        for r in results
        if r["bench"] == "scrub" and "ratio" in r
    ]
    header = ["shape", "bytes", "scrub+screen /s", "parse+serialize /s", "ratio", "Pillow's share"]
    text = _stamp(command) + "\n" + _table(header, rows) + "\n"
    scale = [
        [r["shape"], f"{r['lines_per_second']:,}"]
        for r in results
        if r["bench"] == "scrub" and "lines_per_second" in r
    ]
    if scale:
        text += "\n" + _table(["reading replies", "lines /s"], scale) + "\n"
    return text


_RIGHTS = {
    "export": "export one participant (zip)",
    "erase": "erase one participant",
    "purge_nothing": "daily purge, nothing due",
    "plan_all_old": "what `config check` shows, all letters due",
}


def rights(results: Results, command: str, folder: Path) -> str:
    found = [r for r in results if r["bench"] == "rights"]
    sizes = sorted({r["participants"] for r in found if r["operation"] in _RIGHTS})
    cell = {(r["operation"], r["participants"]): r["ms"] for r in found}
    letters = {r["participants"]: r["letters"] for r in found}
    header = ["operation", *(f"{s:,} participants ({letters[s]:,} letters)" for s in sizes)]
    rows = [
        [words, *(f"{cell[(name, s)] / 1000:.2f} s" for s in sizes if (name, s) in cell)]
        for name, words in _RIGHTS.items()
    ]
    text = _stamp(command) + "\n" + _table(header, rows) + "\n"
    first = [r for r in found if r["operation"] == "purge_per_letter"]
    if first:
        text += (
            f"\nThe first purge of an old store (every letter due, {first[0]['letters']:,} "
            f"letters): {first[0]['ms']} ms per letter.\n"
        )
    return text


def program(results: Results, command: str, folder: Path) -> str:
    found = [r for r in results if r["bench"] == "program"]
    matches = [r for r in found if r["operation"] == "match"]
    built = [r for r in found if r["operation"] == "report"]
    text = _stamp(command) + "\n"
    if matches:
        rows = [
            [f"{r['participants']:,}", f"{r['pairs']:,}", f"{r['ms'] / 1000:.2f} s"]
            for r in matches
        ]
        text += _table(["participants waiting (both libraries)", "pairs proposed", "match"], rows)
        text += "\n\n"
    quiet = {r["participants"]: r["ms"] for r in found if r["operation"] == "quiet"}
    if built:
        rows = [
            [
                f"{r['participants']:,}",
                f"{r['letters']:,}",
                f"{r['ms'] / 1000:.2f} s",
                f"{quiet[r['participants']] / 1000:.2f} s" if r["participants"] in quiet else "",
            ]
            for r in built
        ]
        header = ["participants", "letters", "program report", "quiet pairs, every pair quiet"]
        text += _table(header, rows) + "\n"
    return text


def _chart(path: Path, draw: Callable[[Any], Any], xlabel: str, ylabel: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(6, 3.6))
    draw(axes)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name


PARTS = {
    "intake": intake,
    "store": store,
    "scrub": scrub,
    "rights": rights,
    "program": program,
}


def write(path: Path, results: Results, command: str) -> None:
    document = path.read_text() if path.exists() else "# Benchmarks\n"
    for name, render in PARTS.items():
        if not any(r["bench"].startswith(name) for r in results):
            continue
        block = (
            f"<!-- bench:{name} -->\n{render(results, command, path.parent)}<!-- /bench:{name} -->"
        )
        pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
        if pattern.search(document):
            document = pattern.sub(lambda _, block=block: block, document)
        else:
            document += f"\n{block}\n"
    path.write_text(document)
