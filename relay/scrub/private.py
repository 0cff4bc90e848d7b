"""Private details: find and replace a participant's private values in decoded text.

Scrubbing and the leak guard both work on text that has already been transfer-decoded, but a
value can still hide in what remains: another letter case, HTML character references
(`&#64;`, `&commat;`), percent-encoding (`%40`), a quoted-printable escape or soft line break
left in text by a mislabelled part, invisible characters, markup between its characters in
HTML, or fullwidth digits. The patterns built here match every one of those forms, so one
search finds them all. Phone numbers are matched by their digits, whatever the separators
and with or without the country or trunk prefix. RFC 2047 encoded words and base64 runs found
inside text are decoded and replaced whole when they hide a value.

Cost: one compiled pattern per set of values, one linear scan per text (plus a decode of each
encoded word and base64-looking run, capped in number). Compiling takes about 0.05 s per
value and pattern, more than the scan of a letter: each of the two patterns (text, and HTML
with markup between characters) is compiled when first used, so the leak guard, which
searches with the HTML one only, pays for one.
"""

from __future__ import annotations

import base64
import binascii
import html
import html.entities
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.header import decode_header
from functools import cached_property, lru_cache

__all__ = [
    "REDACTED",
    "PrivateMatcher",
    "contains_private",
    "matcher_for",
    "redact",
    "values_found",
    "values_in_bytes",
]

REDACTED = "[removed]"

# Values shorter than this would redact ordinary words; configuration should not list them.
_MIN_VALUE_CHARS = 2
_MAX_DECODED_RUNS = 500

# Characters a reader does not see, and soft line breaks a mislabelled quoted-printable part
# leaves behind; either may sit between the characters of a value.
_INVISIBLE = r"(?:[\u00ad\u034f\u180e\u200b-\u200f\u2060-\u2064\ufeff]|=\r?\n)"
_MARKUP = r"(?:<[^<>]{0,200}>)"
_SPACE_TEXT = r"(?:\s|&nbsp;|&#0*160;|&#x0*a0;|%20|=20|\+)+"
# Separators inside a phone number, also percent-, entity- or quoted-printable-encoded.
_PHONE_SEPARATOR = (
    r"(?:[\s.\-()/\u00a0\u2010-\u2015]|%(?:25)?2[0dD8-9]|=2[0dD8-9]|&(?:amp;)?nbsp;"
    r"|&(?:amp;)?#0*(?:32|40|41|45|46|160);|&(?:amp;)?#x0*(?:20|28|29|2d|2e|a0);){0,3}"
)
_PHONE_PLUS = r"(?:\+|%(?:25)?2[bB]|=2[bB]|&(?:amp;)?#0*43;|&(?:amp;)?#x0*2b;|&(?:amp;)?plus;)"
_ENCODED_WORD = re.compile(r"=\?[^?\s]{1,40}\?[bBqQ]\?[^?\s]{0,400}\?=")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{12,}={0,2}")


@dataclass(frozen=True)
class PrivateMatcher:
    """Compiled patterns for one set of private values (see `matcher_for`)."""

    values: tuple[str, ...]
    folded: tuple[str, ...]
    # Per value, byte strings to find in files and raw messages (see `values_in_bytes`).
    needles: tuple[tuple[bytes, ...], ...]

    @cached_property
    def text_pattern(self) -> re.Pattern[str]:
        return self._pattern(_INVISIBLE)

    @cached_property
    def html_pattern(self) -> re.Pattern[str]:
        """For HTML text, where markup may stand between a value's characters."""
        return self._pattern(f"(?:{_INVISIBLE}|{_MARKUP})")

    def _pattern(self, gap: str) -> re.Pattern[str]:
        ordered = sorted(self.values, key=len, reverse=True)
        return re.compile("|".join(_value_pattern(v, gap) for v in ordered), re.I)


@lru_cache(maxsize=1)
def _entity_names() -> dict[str, tuple[str, ...]]:
    names: dict[str, list[str]] = {}
    for name, char in html.entities.html5.items():
        if len(char) == 1:
            names.setdefault(char, []).append(re.escape(name))
    return {char: tuple(found) for char, found in names.items()}


@lru_cache(maxsize=4096)
def _char_forms(char: str) -> str:
    """Every way one character may be written once text has been decoded."""
    forms = {re.escape(char)}
    for variant in {char, char.lower(), char.upper()}:
        if len(variant) != 1:  # "ß".upper() is "SS", "İ".lower() is "i̇": written as such
            forms.add(re.escape(variant))
            continue
        code = ord(variant)
        # "&amp;" before a reference and "%25" before an escape: encoded twice, which a
        # reader decodes as easily as once.
        forms.add(f"&(?:amp;)?#0*{code};?")
        forms.add(f"&(?:amp;)?#x0*{code:x};?")
        forms.update(f"&(?:amp;)?{name}" for name in _entity_names().get(variant, ()))
        encoded = variant.encode("utf-8")
        forms.add("".join(f"%(?:25)?{byte:02x}" for byte in encoded))
        forms.add("".join(f"={byte:02x}" for byte in encoded))
    if char.isdigit() and char.isascii():
        forms.add(chr(ord("０") + int(char)))
    return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


def _digits_of_phone(value: str) -> str | None:
    """The digits to look for when a value is a phone number, else None."""
    stripped = value.strip()
    if not re.fullmatch(r"\+?[\d\s().\-/]{6,}", stripped):
        return None
    digits = re.sub(r"\D", "", stripped)
    if len(digits) < 6:
        return None
    if stripped.startswith("+") or stripped.startswith("00"):
        # Drop the country code: the number is often written without it. Codes are one to
        # three digits; dropping too little only makes the match stricter.
        return _national_digits(digits.removeprefix("00"))
    return digits.lstrip("0") or digits


def _national_digits(international: str) -> str:
    import phonenumbers

    try:
        number = phonenumbers.parse("+" + international, None)
    except phonenumbers.NumberParseException:
        return international
    national = str(phonenumbers.national_significant_number(number))
    return national if len(national) >= 6 else international


def _phone_pattern(digits: str, gap: str) -> str:
    prefix = rf"(?:(?:{_PHONE_PLUS}|00)\d{{1,3}}{_PHONE_SEPARATOR})?(?:\(?0\)?{_PHONE_SEPARATOR})?"
    body = f"(?:{_PHONE_SEPARATOR}|{gap})*".join(_char_forms(d) for d in digits)
    # No digit boundaries: a run of digits that contains the number still gives it away.
    return f"{prefix}{body}"


def _value_pattern(value: str, gap: str) -> str:
    phone_digits = _digits_of_phone(value)
    if phone_digits is not None:
        return _phone_pattern(phone_digits, gap)
    pieces: list[str] = []
    for word in value.split():
        pieces.append(f"{gap}*".join(_char_forms(char) for char in word))
    return f"(?:{_SPACE_TEXT}|{gap})+".join(pieces)


def matcher_for(values: Iterable[str]) -> PrivateMatcher | None:
    """Compile the patterns for `values`; None when there is nothing to look for."""
    kept = tuple(dict.fromkeys(v.strip() for v in values if len(v.strip()) >= _MIN_VALUE_CHARS))
    return _compiled(kept) if kept else None


# Letters from one participant share the same values; compiling once saves most of the cost.
@lru_cache(maxsize=256)
def _compiled(kept: tuple[str, ...]) -> PrivateMatcher:
    return PrivateMatcher(
        values=kept,
        folded=tuple(v.casefold() for v in kept),
        needles=tuple(_needles(v) for v in kept),
    )


def _needles(value: str) -> tuple[bytes, ...]:
    lowered = value.lower()
    found = [lowered.encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be")]
    digits = _digits_of_phone(value)
    if digits is not None:
        found.append(digits.encode("ascii"))
    return tuple(found)


def values_in_bytes(data: bytes, matcher: PrivateMatcher) -> list[str]:
    """Values written plainly in bytes (UTF-8 or UTF-16, any ASCII letter case).

    The check for pictures, other files and whole raw messages: a few substring searches,
    fast on megabytes, where the full patterns would take seconds.
    """
    lowered = data.lower()
    return [
        value
        for value, needles in zip(matcher.values, matcher.needles, strict=True)
        if any(needle in lowered for needle in needles)
    ]


def _decoded_encoded_word(run: str) -> str:
    try:
        return "".join(
            part.decode(charset or "latin-1", "replace") if isinstance(part, bytes) else part
            for part, charset in decode_header(run)
        )
    except (LookupError, ValueError, binascii.Error):
        return ""


def _decoded_base64(run: str) -> str:
    """The run decoded at each of the four alignments: letters glued before or after a
    base64 value shift it, and a reader who strips them reads the value again."""
    decoded: list[str] = []
    for start in range(4):
        chunk = run[start:].rstrip("=")
        if len(chunk) % 4 == 1:  # one character too many can never decode; drop it
            chunk = chunk[:-1]
        try:
            raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4))
        except (binascii.Error, ValueError):
            continue
        decoded += [raw.decode("utf-8", "replace"), raw.decode("utf-16-le", "ignore")]
    return "\n".join(decoded)


def _decoded_run_hides_value(run: str, matcher: PrivateMatcher) -> bool:
    word = _ENCODED_WORD.fullmatch(run)
    decoded = _decoded_encoded_word(run) if word else _decoded_base64(run)
    return matcher.text_pattern.search(decoded) is not None


def _redact_decodable_runs(text: str, matcher: PrivateMatcher) -> tuple[str, int]:
    count = 0

    def replace(found: re.Match[str]) -> str:
        nonlocal count
        if count >= _MAX_DECODED_RUNS or not _decoded_run_hides_value(found.group(), matcher):
            return found.group()
        count += 1
        return REDACTED

    text = _ENCODED_WORD.sub(replace, text)
    text = _BASE64_RUN.sub(replace, text)
    return text, count


def redact(text: str, matcher: PrivateMatcher | None, *, markup: bool = False) -> tuple[str, int]:
    """Replace every private value in `text`; return the new text and how many were replaced.

    With `markup`, tags between the characters of a value are part of the match; callers
    re-sanitize HTML afterwards, since a replaced span may have held half of a tag pair.
    """
    if matcher is None or not text:
        return text, 0
    text, count = _redact_decodable_runs(text, matcher)
    pattern = matcher.html_pattern if markup else matcher.text_pattern
    text, replaced = pattern.subn(REDACTED, text)
    return text, count + replaced


def contains_private(
    text: str, matcher: PrivateMatcher | None, *, markup: bool = False, runs: bool = True
) -> bool:
    """Whether any private value appears in `text` in any of the forms `redact` replaces.

    `runs=False` skips decoding encoded words and base64 runs: for raw message bytes and
    binary files, where base64 bodies are decoded part by part instead, and decoding every
    76-character line of a picture would cost seconds.
    """
    if matcher is None or not text:
        return False
    if (matcher.html_pattern if markup else matcher.text_pattern).search(text):
        return True
    return runs and _redact_decodable_runs(text, matcher)[1] > 0


def values_found(text: str, matcher: PrivateMatcher) -> Sequence[str]:
    """Which of the values appear in `text` (used to name hits in a leak report)."""
    found: list[str] = []
    for value in matcher.values:
        single = matcher_for([value])
        if single is not None and contains_private(text, single, markup=True, runs=False):
            found.append(value)
    return found
