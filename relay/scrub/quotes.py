"""Quoted replies and signatures: find where a participant's own words end.

A reply quotes the pal's letter, and the attribution line above the quote ("On Monday, Jane
<jane@…> wrote:") often names a real address. Everything from the first attribution or
separator is cut, and so is any remaining line quoted with ">". The rules cover Gmail,
Outlook desktop and web, Apple Mail, Thunderbird and Yahoo in English, Spanish, French,
German, Portuguese, Italian and Japanese; quotequail is asked as a second opinion and adds
patterns for other languages and forwards. Attributions are matched over up to three joined
lines, because clients wrap long ones.

mail-parser-reply was considered and not used: it strips every line, treats any "- item"
line as the start of a signature (children write lists), and its patterns run `(.|\\s)*`
over whole bodies.

The same `find_cut` works on the lines of an HTML body (see `relay.scrub.markup`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import quotequail

__all__ = ["find_cut", "remove_quotes", "remove_signature"]

_JOINED_LINES = 3
_EMAIL_IN_BRACKETS = r"<[^<>\s@]+@[^<>\s]+>"

# One alternative per client and language: the line starts with the first words and ends
# with the verb (Japanese clients end the line with の…: or a bare colon after the address).
_ATTRIBUTION = re.compile(
    r"""^\s*(?:
        on\s.{4,300}\swrote\s?:
      | el\s.{4,300}\sescribi[óo]\s?:
      | le\s.{4,300}\sa\s[ée]crit\s?:
      | am\s.{4,300}\sschrieb\s.{0,300}:
      | em\s.{4,300}\sescreveu\s?:
      | il\s(?:giorno\s)?.{4,300}\sha\sscritto\s?:
      | .{2,300}(?:のメッセージ|のメール|さんは書きました)\s?[:：]
      | \d{4}年.{2,200}"""
    + _EMAIL_IN_BRACKETS
    + r""".{0,20}[:：]
      | .{0,200}"""
    + _EMAIL_IN_BRACKETS
    + r"""\s*(?:wrote|escribió|a\s[ée]crit|schrieb|
            escreveu|ha\sscritto)\s?:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)

_SEPARATOR = re.compile(
    r"""^\s*[-_=*\s]{2,}\s*(?:
        original\smessage | forwarded\smessage | mensaje\soriginal | mensaje\sreenviado
      | message\sd'origine | message\stransf[ée]r[ée] | ursprüngliche\snachricht
      | weitergeleitete\snachricht | messaggio\soriginale | messaggio\sinoltrato
      | mensagem\soriginal | mensagem\sencaminhada | 元のメッセージ | 転送メッセージ
    )\s*[-_=*\s]{2,}\s*$""",
    re.IGNORECASE | re.VERBOSE,
)

_RULE = re.compile(r"^\s*(?:_{20,}|-{20,})\s*$")

# Outlook's header block: a "From:" line followed closely by a "Sent:"/"Date:" line.
_FROM_LINE = re.compile(r"^\s*\*?(?:from|de|von|da|差出人|送信者)\s*\*?\s*[:：]", re.IGNORECASE)
_SENT_LINE = re.compile(
    r"^\s*\*?(?:sent|date|enviado(?:\sel)?|fecha|envoy[ée]|date\sd'envoi|gesendet|datum|"
    r"inviato|data|enviada\sem|enviado\sem|送信日時|日付|日時)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_QUOTED_LINE = re.compile(r"^\s*>")
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")


def _attribution_lines(lines: Sequence[str], index: int) -> int:
    """How many lines from `index` form an attribution (0 when they do not)."""
    for count in range(1, _JOINED_LINES + 1):
        if index + count > len(lines) or not lines[index + count - 1].strip():
            break
        if not lines[index + count - 1].rstrip().endswith((":", "：")):
            continue  # every attribution pattern ends with a colon: no need to try it
        joined = " ".join(line.strip() for line in lines[index : index + count])
        if len(joined) <= 600 and _ATTRIBUTION.match(joined):
            return count
    return 0


def _is_attribution(lines: Sequence[str], index: int) -> bool:
    count = _attribution_lines(lines, index)
    # A wrapped attribution joined with the line above it also matches; keep that line.
    return count == 1 or (count > 1 and not _attribution_lines(lines, index + 1))


def _is_header_block(lines: Sequence[str], index: int) -> bool:
    if not _FROM_LINE.match(lines[index]):
        return False
    return any(_SENT_LINE.match(line) for line in lines[index + 1 : index + 5])


def _own_cut(lines: Sequence[str]) -> int | None:
    for index, line in enumerate(lines):
        if _SEPARATOR.match(line) or _is_attribution(lines, index):
            return index
        if _is_header_block(lines, index):
            ruled = index > 0 and _RULE.match(lines[index - 1])
            return index - 1 if ruled else index
    return None


# Every reply and forward pattern quotequail knows ends in one of these characters (a test
# reads its pattern table to keep this true), and it looks at most `_WRAP` lines ahead, so
# only a line that ends in one of them, or is followed by one that does, can start its quote.
# Asking it about every other line was two thirds of the cost of scrubbing a long letter.
_PATTERN_ENDINGS = (":", "-", "_", ">")
_WRAP = 2


def _may_start_quote(lines: Sequence[str], index: int) -> bool:
    return any(line.rstrip().endswith(_PATTERN_ENDINGS) for line in lines[index : index + _WRAP])


def _quotequail_cut(lines: Sequence[str]) -> int | None:
    for index in range(len(lines)):
        if not _may_start_quote(lines, index):
            continue
        window = [line.replace("\n", " ") for line in lines[index : index + _WRAP]]
        try:
            parts = quotequail.quote("\n".join(window), limit=_WRAP + 1, quote_intro_line=True)
        except Exception:  # a second opinion must never lose the letter
            return None
        if len(parts) < 2:
            continue
        shown = parts[0][1]
        # The quote starts at the window's first line unless that line is shown: a blank first
        # line never starts a pattern, so "" shown means the quote starts right there.
        starts_here = shown == "" and window[0] != ""
        return index if starts_here else index + shown.count("\n") + 1
    return None


def find_cut(lines: Sequence[str]) -> int | None:
    """Index of the first line of quoted history (attribution or separator), or None."""
    cuts = [cut for cut in (_own_cut(lines), _quotequail_cut(lines)) if cut is not None]
    return min(cuts) if cuts else None


def remove_quotes(text: str) -> tuple[str, bool]:
    """The text without quoted history; and whether anything was removed."""
    lines = text.split("\n")
    cut = find_cut(lines)
    kept = lines if cut is None else lines[:cut]
    unquoted = [line for line in kept if not _QUOTED_LINE.match(line)]
    removed = cut is not None or len(unquoted) != len(kept)
    return "\n".join(unquoted).rstrip(), removed


def remove_signature(text: str) -> tuple[str, bool]:
    """The text without a trailing "-- " signature block; and whether there was one."""
    lines = text.split("\n")
    for index in range(len(lines) - 1, -1, -1):
        if _SIGNATURE_DELIMITER.match(lines[index]):
            return "\n".join(lines[:index]).rstrip(), True
    return text, False
