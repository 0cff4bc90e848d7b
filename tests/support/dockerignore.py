"""The build context `docker build` and `podman build` send, computed from an ignore file.

The rules are those of Docker's `.dockerignore` (moby's patternmatcher, shared by podman's
buildah): patterns are anchored at the context's top folder; `*` and `?` never cross a `/`,
`**` crosses any number of folders; a pattern also excludes everything below a folder it
matches; a `!` line brings back what earlier lines excluded; the last matching line wins.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    exclusion: bool  # a `!` line: brings files back


def read_patterns(text: str) -> list[Pattern]:
    patterns = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        line = raw.strip()
        if not line:
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = posixpath.normpath(line)
        if len(line) > 1 and line.startswith("/"):
            line = line[1:]
        patterns.append(Pattern(re.compile(_regex(line)), exclusion))
    return patterns


def _regex(pattern: str) -> str:
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out.append(".*" if i >= len(pattern) else "(.*/)?")
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            out.append(pattern[i : end + 1] if end > i else re.escape(ch))
            i = end if end > i else i
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return "".join(out)


def ignored(path: str, patterns: list[Pattern]) -> bool:
    """Whether `path` (relative, with `/`) is left out of the context."""
    parents = path.split("/")[:-1]
    candidates = [path] + ["/".join(parents[: n + 1]) for n in range(len(parents))]
    matched = False
    for pattern in patterns:
        if pattern.exclusion != matched:
            continue  # only an exclusion can undo a match, only a pattern can make one
        if any(pattern.regex.match(candidate) for candidate in candidates):
            matched = not pattern.exclusion
    return matched


def build_context(root: Path, ignore_file: str = ".dockerignore") -> set[str]:
    """The files (relative paths with `/`) a build of `root` sends."""
    patterns = read_patterns((root / ignore_file).read_text())
    sent = set()
    for folder, folders, files in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        prefix = "" if base == "." else f"{base}/"
        for name in files:
            if not ignored(prefix + name, patterns):
                sent.add(prefix + name)
        folders.sort()
    return sent
