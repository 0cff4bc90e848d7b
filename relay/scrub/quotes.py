"""Replies as people write them: tell the writer's own words from the history they quoted.

A reply is read as a sequence of lines, each the writer's own or part of quoted history:

- **quoted lines** (`> …` in text; a dropped quote container in HTML, see `relay.scrub.markup`);
- an **attribution** ("On Mon, Mar 4, 2024 at 10:12 AM Jane <jane@…> wrote:"), one line or
  wrapped over up to three, or written at the end of the writer's last sentence;
- a **separator** ("-----Original Message-----", "Begin forwarded message:");
- a **header block** (Outlook's "From: … Sent: … To: … Subject: …", in any order).

An attribution, separator or header block followed by quoted lines is removed with them, and
the writer's words after the quote (a bottom-posted answer, a sign-off) are kept. Followed by
unquoted text, it starts history that runs to the end of the letter (Outlook copies the
earlier letter below without marks), but only when it is unmistakable: an attribution must
end with its colon and name an address (or be framed by the dashes Zoho writes), so
a child's "On Monday at 10:30 my teacher wrote:" above their own words stays theirs. When
the writer answered between quoted lines (an inline reply), each answer keeps, for
context, the last line of the quote it follows. When nothing of the writer's would be left
but unquoted text was cut, that text is kept and the reading is marked unsure, so staff read
it rather than a letter arriving empty.

The words of every language and mail program are data (`relay/scrub/history/*.toml`); the
shapes are compiled once into a few alternations. Each line is tried at most a bounded number
of times against patterns with bounded repetition over at most `_MAX_JOINED` characters, so
reading a letter costs O(lines).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

__all__ = [
    "Reading",
    "TextReply",
    "data_files",
    "introduces_forward",
    "is_attribution",
    "quote_depth",
    "read_reply",
    "remove_quotes",
    "remove_signature",
    "reply_text",
]

_JOINED_LINES = 3
_MAX_JOINED = 600
_HEADER_WINDOW = 6
_HEADER_BLOCK_MAX = 16
_SENTENCE_SPLITS = 8

_PLACEHOLDERS = {
    "{address}": r"<[^<>\s@]{1,64}@[^<>\s]{1,255}>",
    "{time}": r"\d{1,2}[:.h]\d{2}",
    "{name}": r"(?:[^\n<>]{1,120}?)",
}
_EDGE = r"[\s\-–—_=*]*"
# An attribution is closed by its colon, or by the dashes Zoho writes around it.
_COLON = r"(?P<colon>[:：]|-{2,})?"
_QUOTE_PREFIX = re.compile(r"^(?:[ \t]*>)+")
_RULE = re.compile(r"^\s*(?:_{10,}|-{10,}|={10,}|—{5,})\s*$")
# A title between dashes right above a header block ("--- Оригінальний лист ---"): the
# separator of a program or language no data file knows yet.
_TITLE = re.compile(r"^\s*[-=*]{2,12}\s?[^\s\-=*].{0,60}?[^\s\-=*]\s?[-=*]{2,12}\s*$")
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_STRONG = re.compile(r"\d|@|^\s*--")  # what a free shape that may cut needs
_SENTENCE_END = re.compile(r"[.!?…。！？]\s+")
_WRAPS_AFTER = 50  # characters: no program wraps a line shorter than this at a full stop


@dataclass(frozen=True)
class _Shapes:
    attribution: re.Pattern[str]
    free: tuple[tuple[str, re.Pattern[str]], ...]  # (characters a line needs, shapes)
    above_quote: re.Pattern[str]
    separator: re.Pattern[str]
    header_role: dict[str, re.Pattern[str]]
    header_any: re.Pattern[str]
    date_inline: re.Pattern[str]

    def free_match(self, joined: str) -> re.Match[str] | None:
        """A free shape, trying only the group whose characters the line has: most shapes
        need an address (`<` and `@`), and trying them all on every line would cost most
        of the reading time."""
        for needs, pattern in self.free:
            if all(char in joined for char in needs):
                found = pattern.match(joined)
                if found:
                    return found
        return None


def _fill(pattern: str) -> str:
    for placeholder, regex in _PLACEHOLDERS.items():
        pattern = pattern.replace(placeholder, regex)
    return pattern


def _whole_line(patterns: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(f"(?:{_fill(p)})" for p in patterns) or r"(?!)"
    return re.compile(rf"^{_EDGE}(?:{alternatives})\s*{_COLON}{_EDGE}$", re.IGNORECASE)


def _by_needs(patterns: list[str]) -> dict[str, list[str]]:
    """Shapes grouped by the characters any line they match must have."""
    groups: dict[str, list[str]] = {"<@": [], "": []}
    for pattern in patterns:
        groups["<@" if "{address}" in pattern else ""].append(pattern)
    return groups


def data_files() -> dict[str, dict[str, object]]:
    """Each file of `relay/scrub/history` by name, read."""
    folder = resources.files("relay.scrub").joinpath("history")
    return {
        entry.name: tomllib.loads(entry.read_text("utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".toml")
    }


def _strings(table: dict[str, object], key: str) -> list[str]:
    value = table.get(key, [])
    return [str(item) for item in value] if isinstance(value, list) else []


@cache
def shapes() -> _Shapes:
    """Every language's shapes, compiled together (a letter's language is not known)."""
    data = list(data_files().values())
    attributions = [p for table in data for p in _strings(table, "attributions")]
    free = [p for table in data for p in _strings(table, "free_attributions")]
    above = [p for table in data for p in _strings(table, "attributions_above_quotes")]
    separators = [p for table in data for p in _strings(table, "separators")]
    roles: dict[str, list[str]] = {}
    for table in data:
        headers = table.get("headers", {})
        if isinstance(headers, dict):
            for role in ("from", "date", "to", "cc", "subject"):
                roles.setdefault(role, []).extend(_strings(headers, role))

    def field_line(words: list[str]) -> re.Pattern[str]:
        alternatives = "|".join(words) or r"(?!)"
        return re.compile(rf"^\s*\*?\s*(?:{alternatives})\s*\*?\s*[:：]", re.IGNORECASE)

    every = [word for words in roles.values() for word in words]
    return _Shapes(
        attribution=_whole_line(attributions),
        free=tuple(
            (needs, _whole_line(group)) for needs, group in _by_needs(free).items() if group
        ),
        above_quote=_whole_line(above),
        separator=re.compile(
            rf"^{_EDGE}(?:{'|'.join(separators)})\s*{_EDGE}[:：]?{_EDGE}$", re.IGNORECASE
        ),
        header_role={role: field_line(words) for role, words in roles.items()},
        header_any=field_line(every),
        date_inline=re.compile(
            rf"\s\*?(?:{'|'.join(roles['date'])})\s*\*?\s*[:：].{{0,80}}\d", re.IGNORECASE
        ),
    )


def quote_depth(line: str) -> int:
    """How many `>` quote the line (`> > x` and `>> x` are both 2)."""
    found = _QUOTE_PREFIX.match(line)
    return found.group(0).count(">") if found else 0


def _unquoted(line: str) -> str:
    return _QUOTE_PREFIX.sub("", line, count=1).strip()


@dataclass(frozen=True)
class _Found:
    """History introduced on lines `start`..`end`: an attribution, a separator or a header
    block; `cuts` when it may start history that runs to the end of the letter."""

    start: int
    end: int
    cuts: bool
    prefix: str | None = None  # the writer's words before it on its first line
    block: bool = False  # a header block


def _as_attribution(found: re.Match[str], start: int, end: int, joined: str) -> _Found:
    # Unmistakable enough to cut what follows: it names an address, or it is framed by the
    # dashes Zoho writes ("---- Jane wrote ----"). "On Monday at 10:30 my teacher wrote:" is
    # a child's own line introducing their own words.
    closing = found.group("colon") or ""
    strong = "@" in joined or (closing.startswith("-") and joined.lstrip().startswith("-"))
    return _Found(start, end, cuts=bool(closing) and strong)


def _may_wrap(line: str) -> bool:
    """Whether a line may be the first part of a wrapped attribution: a mail program wraps
    a long line; the writer's "Hi!" or "We went to the zoo." ends a sentence instead."""
    text = line.strip()
    if re.search(r"[!?…。！？]$", text):
        return False
    return not (text.endswith(".") and len(text) < _WRAPS_AFTER)


def _attribution_ending(
    lines: Sequence[str], end: int, floor: int, *, above: bool
) -> _Found | None:
    """The attribution whose last line is `end` (its first line not before `floor`).

    A shape that starts with its fixed words ("On …") is taken with as few lines as read as
    one, so a sentence of the writer's above it stays. A free shape (a name or a date first)
    reaches up to the start of its paragraph when the longer join still reads as one, so a
    name wrapped onto the line above goes with it; otherwise it is the fewest lines. A free
    shape without a digit or an address counts only above a quote (`above`), so it is not
    tried elsewhere: that is where most of the reading time would go.
    """
    kinds = shapes()
    joins: list[tuple[int, str]] = []
    for count in range(1, _JOINED_LINES + 1):
        start = end - count + 1
        if start < floor or not lines[start].strip() or quote_depth(lines[start]):
            break
        if start < end and not _may_wrap(lines[start]):
            break  # the writer's sentence above an attribution is never part of it
        joined = " ".join(line.strip() for line in lines[start : end + 1])
        if len(joined) > _MAX_JOINED:
            break
        joins.append((start, joined))
    for start, joined in joins:
        found = kinds.attribution.match(joined)
        if found:
            return _as_attribution(found, start, end, joined)
    after = _after_sentence(lines[end], end, above=above)
    if after is not None:
        return after
    joins = [(start, joined) for start, joined in joins if above or _STRONG.search(joined)]
    free = [(start, joined, kinds.free_match(joined)) for start, joined in joins]
    matched = [(start, joined, found) for start, joined, found in free if found]
    if matched:
        paragraph = [
            entry for entry in matched if entry[0] == floor or not lines[entry[0] - 1].strip()
        ]
        start, joined, found = paragraph[-1] if paragraph else matched[0]
        assert found is not None
        return _as_attribution(found, start, end, joined)
    for start, joined in joins if above else []:  # above a quote only: never starts a cut
        if kinds.above_quote.match(joined):
            return _Found(start, end, cuts=False)
    return None


def _after_sentence(line: str, index: int, *, above: bool) -> _Found | None:
    """ "Thanks! On Mon, … wrote:": an attribution written after the writer's last sentence,
    naming an address or right above a quote (else it is the writer's own line)."""
    text = line.strip()
    if len(text) > 4 * _MAX_JOINED or not text.endswith((":", "：")):
        return None
    for count, split in enumerate(_SENTENCE_END.finditer(text)):
        if count >= _SENTENCE_SPLITS:
            break
        rest = text[split.end() :]
        if len(rest) > _MAX_JOINED or not ("@" in rest or above):
            continue
        # After a sentence, a shape that starts with its fixed words; or a free one when what
        # comes before has no digit (so "пн, 4 мар. 2024 г. в 10:12, Jane <…>:" is one).
        prefix = text[: split.end()]
        found = shapes().attribution.match(rest) or (
            shapes().free_match(rest) if not re.search(r"\d", prefix) else None
        )
        if found:
            prefix = text[: split.end()].rstrip()
            return _Found(index, index, cuts=True, prefix=prefix)
    return None


def introduces_forward(texts: Sequence[str]) -> bool:
    """Whether lines hold a separator or a header field ("Forwarded message", "From: …")."""
    kinds = shapes()
    return any(kinds.separator.match(text) or kinds.header_any.match(text) for text in texts)


def is_attribution(text: str) -> bool:
    """Whether one rendered line reads as an attribution (used before HTML quotes)."""
    joined = " ".join(text.split())
    if len(joined) > _MAX_JOINED:
        return False
    kinds = shapes()
    return bool(kinds.attribution.match(joined) or kinds.free_match(joined))


def _header_block(lines: Sequence[str], index: int) -> tuple[int, set[str]] | None:
    """A header block starting at `index`: its last line and the roles of its fields, or
    None. It needs a `from` field and a `date` field with a digit in its first lines (or
    both on one line, as Outlook.com renders them)."""
    kinds = shapes()
    line = lines[index]
    if not kinds.header_any.match(line):
        return None
    end = index
    limit = min(len(lines), index + _HEADER_BLOCK_MAX)
    while end + 1 < limit and lines[end + 1].strip() and not quote_depth(lines[end + 1]):
        end += 1
    block = lines[index : end + 1]
    fields = [{r for r, pattern in kinds.header_role.items() if pattern.match(t)} for t in block]
    first = list(zip(fields, block, strict=True))[:_HEADER_WINDOW]
    one_line = "from" in fields[0] and kinds.date_inline.search(line)
    sender = any("from" in roles for roles, _ in first)
    dated = any("date" in roles and re.search(r"\d", text) for roles, text in first)
    if not (one_line or (sender and dated)):
        return None
    return end, set().union(*fields)


@dataclass
class Reading:
    """Which lines of a reply are the writer's, and what is kept for context."""

    keep: list[bool]
    # Before line i, the quoted line the writer's answer at i follows (inline replies).
    context: dict[int, str] = field(default_factory=dict)
    # The first line, when the writer's words end in the middle of it (same-line attribution).
    prefixes: dict[int, str] = field(default_factory=dict)
    # Lines of history that were removed (their text is searched for third parties' addresses).
    history: list[str] = field(default_factory=list)
    removed: bool = False
    unsure: bool = False


def _next_written(lines: Sequence[str], index: int) -> int | None:
    for following in range(index, len(lines)):
        if lines[following].strip():
            return following
    return None


def _quote_follows(lines: Sequence[str], depths: Sequence[int], index: int) -> bool:
    following = _next_written(lines, index)
    return following is not None and depths[following] > 0


@dataclass
class _Marks:
    """Per line: 'own', 'quote' (quoted or an attribution/header above a quote), 'cut'."""

    kinds: list[str]
    attribution_lines: set[int] = field(default_factory=set)
    prefixes: dict[int, str] = field(default_factory=dict)


def _history_at(
    lines: Sequence[str], depths: Sequence[int], index: int, floor: int
) -> _Found | None:
    """History introduced at `index`: a separator, a header block, or an attribution ending
    on this line (which may have started up to two lines above, not before `floor`).

    Only what could match is tried: a header block starts with a field name and its colon;
    every attribution ends with a colon, a dash or `=`, or stands right above a quote."""
    kinds = shapes()
    line = lines[index]
    if kinds.separator.match(line):
        header = _next_written(lines, index + 1)
        block = _header_block(lines, header) if header is not None and header <= index + 2 else None
        return _Found(index, block[0] if block else index, True)
    block = _header_block(lines, index) if ":" in line[:60] or "：" in line[:60] else None
    if block is not None:
        end, roles = block
        # It cuts what follows when it names an address, sits under a rule or a title, or
        # has every field a program writes (from, date, to, subject); "From: Ana / Sent:
        # 4 March 2024 / To: Tom" a child typed into their letter does none of these.
        ruled = index > floor and bool(
            _RULE.match(lines[index - 1]) or _TITLE.match(lines[index - 1])
        )
        named = any("@" in text for text in lines[index : end + 1])
        whole = {"from", "date", "to", "subject"} <= roles
        return _Found(index, end, named or ruled or whole, block=True)
    above = _quote_follows(lines, depths, index + 1)
    if not above and not line.rstrip().endswith((":", "：", "-", "=", "—")):
        return None
    return _attribution_ending(lines, index, floor, above=above)


def _mark(lines: Sequence[str], depths: Sequence[int]) -> _Marks:
    marks = _Marks(["quote" if depth else "own" for depth in depths])
    floor = 0  # an attribution never reaches back over a quote or a block already found
    index = 0
    while index < len(lines):
        if depths[index]:
            floor = index + 1
        if depths[index] or not lines[index].strip():
            index += 1
            continue
        found = _history_at(lines, depths, index, floor)
        quoted = found is not None and _quote_follows(lines, depths, found.end + 1)
        if found is None or not (quoted or found.cuts):
            index += 1
            continue
        start = found.start
        if found.prefix is not None:
            marks.prefixes[start] = found.prefix
        if start > floor and (
            _RULE.match(lines[start - 1]) or (found.block and _TITLE.match(lines[start - 1]))
        ):
            start -= 1
        marks.attribution_lines.update(range(start, found.end + 1))
        if quoted:
            for covered in range(start, found.end + 1):
                marks.kinds[covered] = "quote"
            floor = index = found.end + 1
            continue
        for covered in range(start, len(lines)):
            marks.kinds[covered] = "cut"
        break
    return marks


def _segments(kinds: Sequence[str], lines: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Runs of written lines by kind ('own' or 'quote'); blank lines join their neighbours."""
    runs: list[tuple[str, list[int]]] = []
    for index, kind in enumerate(kinds):
        if kind == "cut" or not lines[index].strip():
            continue
        if runs and runs[-1][0] == kind:
            runs[-1][1].append(index)
        else:
            runs.append((kind, [index]))
    return runs


def _context_line(
    lines: Sequence[str], depths: Sequence[int], run: list[int], marks: _Marks
) -> str | None:
    for index in reversed(run):
        if depths[index] == 1 and index not in marks.attribution_lines:
            text = _unquoted(lines[index])
            if text and not is_attribution(text):
                return text
    return None


def _rewrapped(depths: list[int], lines: Sequence[str]) -> list[int]:
    """A mail program that wraps a long quoted line may leave its end without `>`: a short
    line starting in small letters, squeezed between two quoted lines of one depth right
    after a long one, is that end, not an answer (answers start a sentence)."""
    for index in range(1, len(lines) - 1):
        above, below = depths[index - 1], depths[index + 1]
        line = lines[index].strip()
        if (
            depths[index] == 0
            and above
            and above == below
            and len(lines[index - 1]) >= 60
            and 0 < len(line) <= 40
            and line[0].islower()
        ):
            depths[index] = above
    return depths


def read_reply(lines: Sequence[str], depths: Sequence[int] | None = None) -> Reading:
    """Read a reply line by line (see the module docstring); `depths` default to `>` marks."""
    if depths is None:
        depths = _rewrapped([quote_depth(line) for line in lines], lines)
    marks = _mark(lines, depths)
    keep = [kind == "own" for kind in marks.kinds]
    reading = Reading(keep, prefixes=dict(marks.prefixes))
    for start in marks.prefixes:
        keep[start] = True  # its writer's part is kept, the attribution after it is not
    runs = _segments(marks.kinds, lines)
    quotes = [position for position, (kind, _) in enumerate(runs) if kind == "quote"]
    inline = len(quotes) >= 2 and any(
        runs[position][0] == "own" and quotes[0] < position < quotes[-1]
        for position in range(len(runs))
    )
    if inline:
        for position in range(1, len(runs)):
            kind, run = runs[position]
            if kind == "own" and runs[position - 1][0] == "quote":
                context = _context_line(lines, depths, runs[position - 1][1], marks)
                if context:
                    reading.context[run[0]] = context
    reading.history = [line for line, kind in zip(lines, marks.kinds, strict=True) if kind != "own"]
    reading.removed = any(kind != "own" for kind in marks.kinds) or bool(marks.prefixes)
    written = any(keep[i] and lines[i].strip() for i in range(len(lines)))
    if not written:
        _keep_when_unsure(lines, marks, reading)
    return reading


def _keep_when_unsure(lines: Sequence[str], marks: _Marks, reading: Reading) -> None:
    """Nothing of the writer's is left but unquoted text was cut: keep that text (without the
    attribution or header lines), so staff read it and decide."""
    candidates = [
        index
        for index, kind in enumerate(marks.kinds)
        if kind == "cut" and index not in marks.attribution_lines and lines[index].strip()
    ]
    if not candidates:
        return
    for index in range(candidates[0], len(lines)):
        if marks.kinds[index] == "cut" and index not in marks.attribution_lines:
            reading.keep[index] = True
    reading.unsure = True


def _written(reading: Reading, lines: Sequence[str]) -> list[str]:
    out: list[str] = []
    for index, line in enumerate(lines):
        if index in reading.context:
            if out and out[-1].strip():
                out.append("")
            out.append(f"> {reading.context[index]}")
        if index in reading.prefixes:
            out.append(reading.prefixes[index])
        elif reading.keep[index]:
            out.append(line)
    return out


def _tidy(lines: Iterable[str]) -> str:
    """Blank runs left where history was become one blank line."""
    out: list[str] = []
    for line in lines:
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


@dataclass(frozen=True)
class TextReply:
    text: str
    removed: bool
    unsure: bool
    history: tuple[str, ...]


def reply_text(text: str) -> TextReply:
    """The writer's words of a text body (see `read_reply`)."""
    lines = text.split("\n")
    reading = read_reply(lines)
    return TextReply(
        _tidy(_written(reading, lines)), reading.removed, reading.unsure, tuple(reading.history)
    )


def remove_quotes(text: str) -> tuple[str, bool]:
    """The text without quoted history; and whether anything was removed."""
    reply = reply_text(text)
    return reply.text, reply.removed


def remove_signature(text: str) -> tuple[str, bool]:
    """The text without a trailing "-- " signature block; and whether there was one."""
    lines = text.split("\n")
    for index in range(len(lines) - 1, -1, -1):
        if _SIGNATURE_DELIMITER.match(lines[index]):
            return "\n".join(lines[:index]).rstrip(), True
    return text, False
