"""The writer's own names: learned from their mail, the surname derived, found in text.

A participant is enrolled by first name only, but their mail program writes their full name
in every `From:` line ("Maya Castellanos"), and often again in a signature or as the text of
a `mailto:` link. The display names of a participant's own mail are kept with their record
(`Participant.known_names`, most recent first, bounded) and from them the surname is derived:
every part of a known name that is not part of the enrolled first name, compared without
case or accents, plus runs of such parts and the whole display name. Where the mail program
put it on its own, scrubbing removes it (signatures, `mailto:` link text); where the writer
typed it, screening flags it and staff decide.

Finding ignores case and accents ("garcia" finds "García" and the other way round), matches
whole words (substrings in scripts written without spaces, such as Japanese), and also finds
every encoded form `relay.scrub.private` knows (character references, percent-encoding,
markup between the letters), so a flag's span is exactly what a redaction has to remove.

Pure: no I/O. Cost: one pass over the case-folded text and one compiled private-value
pattern (cached per set of names) per text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from email.header import decode_header, make_header

from relay.scrub.private import matcher_for

__all__ = [
    "MAX_KNOWN_NAMES",
    "MAX_NAME_CHARS",
    "display_name",
    "find_names",
    "fold",
    "folded_with_origin",
    "learnable",
    "mask_names",
    "remember",
    "surname_values",
    "typed_values",
]

MAX_KNOWN_NAMES = 10  # the most recent display names kept per participant
MAX_NAME_CHARS = 80  # a longer "display name" is a sentence or an attack, not a name

# Words that join the parts of a surname ("de la Cruz", "van der Berg"): kept inside a run of
# parts, never flagged alone, since they are ordinary words in the letters' languages.
_PARTICLES = frozenset(
    (
        "de", "del", "della", "der", "den", "di", "da", "das", "do", "dos", "du", "des", "la",
        "las", "le", "les", "lo", "los", "van", "von", "y", "e", "et", "und", "bin", "ibn",
        "al", "el", "ben", "ter", "ten", "zu",
    )
)  # fmt: skip
# Words display names carry that are not a person's name ("Castellanos Family", "Mom"),
# written as `fold` leaves them.
_NOT_NAMES = frozenset(
    (
        "family", "familia", "famille", "famiglia", "familie", "home", "casa", "maison",
        "mom", "mum", "mama", "dad", "papa", "mother", "father", "mother's", "the", "and",
        "my", "mi", "ma", "mon",
    )
)  # fmt: skip
_UNSPACED_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
_PARENTHESES = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_PART_EDGES = "\"'“”‘’«»,;:.!?()[]<>"


def fold(text: str) -> str:
    """Case and accents away: "GARCÍA" and "garcia" fold alike."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def display_name(raw: str) -> str:
    """A header's display name as a person reads it: RFC 2047 words decoded, quotes and
    extra whitespace gone."""
    text = raw
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (LookupError, ValueError, UnicodeDecodeError):
            return ""
    text = " ".join(text.split())
    return text.strip(" \"'")


def learnable(
    display: str, *, address: str, masked: str, first_name: str, own_words: Iterable[str] = ()
) -> str | None:
    """The display name worth keeping for a participant, or None: not an address (theirs,
    their masked one, any), not one of the relay's own words (the program's or a library's
    name), and holding a part that the enrolled first name does not."""
    name = display_name(display)
    if not name or len(name) > MAX_NAME_CHARS or "@" in name:
        return None
    folded = fold(name)
    addresses = (address, masked)
    if folded in {fold(text) for a in addresses for text in (a, a.split("@")[0])}:
        return None
    if any(word and fold(word) in folded for word in own_words):
        return None
    return name if surname_values(first_name, [name]) else None


def remember(known: Sequence[str], name: str) -> tuple[str, ...]:
    """The known names with `name` first (most recent), bounded to `MAX_KNOWN_NAMES`."""
    others = [old for old in known if fold(old) != fold(name)]
    return (name, *others)[:MAX_KNOWN_NAMES]


def _letters(part: str) -> int:
    return sum(1 for c in part if c.isalpha())


def _parts(name: str) -> list[str]:
    """The words of a name, without parentheses, punctuation or one-letter initials."""
    words = (w.strip(_PART_EDGES) for w in _PARENTHESES.sub(" ", name).split())
    return [w for w in words if _letters(w) >= 2]


def _first_name_parts(first_name: str) -> set[str]:
    parts: set[str] = set()
    for word in _parts(first_name):
        parts.add(fold(word))
        parts.update(fold(piece) for piece in word.split("-") if piece)
    return parts


def _without_first_name(part: str, first: set[str]) -> str:
    """In a script written without spaces ("山田花子"), the part minus the first name."""
    if not _UNSPACED_SCRIPT.search(part):
        return part
    for given in sorted(first, key=len, reverse=True):
        if given and given in part and part != given:
            rest = part.replace(given, "", 1)
            return rest if _letters(rest) >= 2 else ""
    return part


def _is_name(word: str) -> bool:
    return fold(word) not in _PARTICLES and fold(word) not in _NOT_NAMES


def _values_of_word(word: str, first: set[str]) -> list[str]:
    """The word itself and, when hyphenated ("García-López"), each of its pieces."""
    pieces = [word, *(p for p in word.split("-") if p)] if "-" in word else [word]
    return [p for p in pieces if _is_name(p) and fold(p) not in first and _letters(p) >= 2]


def surname_values(first_name: str, known_names: Iterable[str]) -> tuple[str, ...]:
    """What to look for as the writer's surname: each part of a known name that is not part
    of the enrolled first name (nor a particle such as "de"), each run of such parts
    ("García López", "de la Cruz"), and the whole display name when it has one."""
    first = _first_name_parts(first_name)
    found: list[str] = []
    for name in known_names:
        runs: list[list[str]] = [[]]
        for word in _parts(name):
            if fold(word) in first:
                runs.append([])
                continue
            rest = _without_first_name(word, first)
            if rest:
                runs[-1].append(rest)
                found += _values_of_word(rest, first)
        found += [" ".join(run) for run in runs if len(run) > 1 and any(map(_is_name, run))]
        if any(_is_name(word) for run in runs for word in run):
            found.append(display_name(name))
    unique: dict[str, str] = {}
    for value in found:
        unique.setdefault(fold(value), value)
    return tuple(unique.values())


def typed_values(first_name: str, values: Iterable[str]) -> tuple[str, ...]:
    """The values to flag in what the writer typed: those without the enrolled first name in
    them, so a flag (and its removal) takes the surname and leaves the first name."""
    first = _first_name_parts(first_name)

    def has_first(value: str) -> bool:
        folded = fold(value)
        words = set(folded.replace("-", " ").split())
        unspaced = _UNSPACED_SCRIPT.search(folded) is not None
        return bool(words & first) or (unspaced and any(given in folded for given in first))

    return tuple(value for value in values if not has_first(value))


# --- finding them in text -------------------------------------------------------------------


def folded_with_origin(text: str) -> tuple[str, list[int]]:
    """Text without accents, case-folded; and, per folded character, its index in `text`."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for base in unicodedata.normalize("NFKD", char):
            if unicodedata.combining(base):
                continue
            for folded in base.casefold():
                chars.append(folded)
                origin.append(index)
    return "".join(chars), origin


def _pattern(values: Sequence[str]) -> re.Pattern[str] | None:
    alternatives: list[str] = []
    for value in sorted({fold(v) for v in values if v.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(word) for word in value.split())
        alternatives.append(body if _UNSPACED_SCRIPT.search(value) else rf"(?<!\w){body}(?!\w)")
    return re.compile("|".join(alternatives)) if alternatives else None


def _whole_word(text: str, start: int, end: int) -> bool:
    if _UNSPACED_SCRIPT.search(text[start:end]):
        return True
    before = start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")
    after = end < len(text) and (text[end].isalnum() or text[end] == "_")
    return not (before or after)


def find_names(text: str, values: Sequence[str], *, markup: bool = False) -> list[tuple[int, int]]:
    """(start, end) of every place a value appears in `text`, in order, never overlapping."""
    if not text or not values:
        return []
    spans: list[tuple[int, int]] = []
    pattern = _pattern(values)
    if pattern is not None:
        folded, origin = folded_with_origin(text)
        for found in pattern.finditer(folded):
            if found.end() > found.start():
                spans.append((origin[found.start()], origin[found.end() - 1] + 1))
    # Encoded forms ("Castellan&#111;s", "Cas<b>tel</b>lanos"), accents dropped or not.
    matcher = matcher_for([*values, *(_unaccented(v) for v in values)])
    if matcher is not None:
        encoded = matcher.html_pattern if markup else matcher.text_pattern
        spans += [
            (m.start(), m.end())
            for m in encoded.finditer(text)
            if m.end() > m.start() and _whole_word(text, m.start(), m.end())
        ]
    return _non_overlapping(spans)


def _unaccented(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _non_overlapping(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    for start, end in sorted(set(spans), key=lambda s: (s[0], -s[1])):
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end))
    return kept


def mask_names(text: str, values: Sequence[str], replacement: str) -> str:
    """`text` with every place a value appears replaced."""
    pieces: list[str] = []
    position = 0
    for start, end in find_names(text, values):
        pieces += [text[position:start], replacement]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
