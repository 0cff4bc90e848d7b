"""Run ffmpeg and ffprobe on one file, bounded: time, memory, output size, no network.

The input is written to a private temporary folder and the demuxer is named explicitly
(`-f mp3`, `-f mov`…), so a file cannot make ffmpeg read a playlist, another local file or
a URL; `-protocol_whitelist file` refuses every other protocol anyway. Each run has a wall
clock limit (`subprocess.run(timeout=...)` kills it) and, through util-linux's `prlimit`
(not `preexec_fn`, which is unsafe in a process with threads), a CPU-seconds, an
address-space and a file-size limit, so a hostile file costs at most that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.scrub.media import Uncleanable

__all__ = [
    "TIMEOUT_SECONDS",
    "Container",
    "duration",
    "have_ffmpeg",
    "limits",
    "personal_tags",
    "probe",
    "remux",
]


@dataclass(frozen=True)
class Container:
    """How ffmpeg reads (`demuxer`) and writes (`muxer`) one kind of file, what it is called
    when delivered, and any options its muxer needs (`extra`)."""

    demuxer: str
    muxer: str
    content_type: str
    extension: str
    extra: tuple[str, ...] = ()


TIMEOUT_SECONDS = 60.0
_MEMORY_BYTES = 1024 * 1024 * 1024
_OUTPUT_SLACK_BYTES = 1024 * 1024
_QUIET = ("-hide_banner", "-loglevel", "error")


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def limits(max_output: int, seconds: float = TIMEOUT_SECONDS) -> list[str]:
    """The `prlimit` prefix bounding one run of any program (CPU time, memory, size of the
    files it writes, no core file); empty where util-linux is missing (not Linux). The
    limits are set by prlimit before the program starts, so no `preexec_fn` is needed in a
    relay that runs threads."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return []
    cpu = int(seconds) + 1
    bounds = [f"--cpu={cpu}", f"--as={_MEMORY_BYTES}", f"--fsize={max_output}", "--core=0"]
    return [prlimit, *bounds, "--"]


def _run(program: str, arguments: Sequence[str], max_output: int) -> bytes:
    path = shutil.which(program)
    if path is None:
        raise Uncleanable(f"{program} is not installed on the relay's computer")
    try:
        done = subprocess.run(
            [*limits(max_output), path, *arguments],
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            env={"PATH": os.defpath},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise Uncleanable(f"it took longer than {TIMEOUT_SECONDS:.0f} seconds to read") from None
    except OSError as error:
        raise Uncleanable(f"{program} could not be started ({error.strerror})") from None
    if done.returncode != 0:
        raise Uncleanable("it could not be read as the kind of file it claims to be")
    return done.stdout


def remux(data: bytes, demuxer: str, arguments: Sequence[str], muxer: str) -> bytes:
    """Copy `data` through ffmpeg: `-f demuxer -i input`, then `arguments`, `-f muxer`."""
    with tempfile.TemporaryDirectory(prefix="relay-media-") as folder:
        source, target = Path(folder) / "input", Path(folder) / "output"
        source.write_bytes(data)
        command = ["-nostdin", *_QUIET, "-protocol_whitelist", "file", "-threads", "1"]
        command += ["-f", demuxer, "-i", str(source), *arguments, "-f", muxer, str(target)]
        _run("ffmpeg", command, 2 * len(data) + _OUTPUT_SLACK_BYTES)
        try:
            return target.read_bytes()
        except OSError:
            raise Uncleanable("it could not be read as the kind of file it claims to be") from None


def probe(data: bytes, demuxer: str) -> dict[str, Any]:
    """ffprobe's view of a file: `format` and `streams`, with every tag it finds."""
    with tempfile.TemporaryDirectory(prefix="relay-media-") as folder:
        source = Path(folder) / "input"
        source.write_bytes(data)
        command = [*_QUIET, "-protocol_whitelist", "file", "-show_format", "-show_streams"]
        command += ["-show_chapters", "-of", "json", "-f", demuxer, str(source)]
        output = _run("ffprobe", command, _OUTPUT_SLACK_BYTES)
    try:
        found = json.loads(output)
    except ValueError:
        raise Uncleanable("it could not be read back after cleaning") from None
    if not isinstance(found, dict):
        raise Uncleanable("it could not be read back after cleaning")
    return found


def duration(found: dict[str, Any]) -> float:
    try:
        return float(found.get("format", {}).get("duration", 0.0))
    except (TypeError, ValueError):
        return 0.0


# Tags a muxer writes about the file itself, never about a person. Their values are checked
# for private values along with the rest of the bytes.
TECHNICAL_TAGS = frozenset(
    {"major_brand", "minor_version", "compatible_brands", "handler_name", "vendor_id",
     "language", "encoder", "duration"}
)  # fmt: skip


def personal_tags(found: dict[str, Any]) -> list[str]:
    """Tag names left in a probed file beyond the technical ones, and any chapter."""
    left: list[str] = []
    holders = [found.get("format", {}), *found.get("streams", [])]
    for holder in holders:
        tags = holder.get("tags", {}) if isinstance(holder, dict) else {}
        left += [str(name) for name in tags if str(name).lower() not in TECHNICAL_TAGS]
    if found.get("chapters"):
        left.append("chapters")
    return left
