"""Screening: point the moderator at what may let two pals meet outside the program.

Pure and advisory: `screen` never changes a letter, it returns flags, each naming the kind
of thing found (phone, email, link, social, address, postcode, keyword, surname), the
matched text and its place (`part` and offsets into that part's string), so the moderation
page can highlight it and a redaction can remove exactly it. Phone numbers come from
`phonenumbers` with the library's country as the default region; street addresses and
postal codes from heuristics for English, Spanish, French, German, Portuguese, Italian and
Japanese (all always applied, since a pal may write in any of them); keywords from the
configured lists of the given languages, matched as whole words, ignoring case and accents
("cafe" finds "Café"); the writer's surname, learned from their own mail, likewise
(`relay.scrub.names`). Where two non-keyword flags overlap, the more specific one wins (an
email address is not also a link and a handle). Flags are ordered by (part, start).

Cost: a handful of regular-expression scans and one phonenumbers pass per part.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import phonenumbers

from relay.scrub import ScrubbedLetter
from relay.scrub.names import find_names, folded_with_origin

__all__ = ["Flag", "FlagKind", "LetterPart", "screen"]

FlagKind = Literal["phone", "email", "link", "social", "address", "postcode", "keyword", "surname"]
LetterPart = Literal["subject", "text", "html"]


@dataclass(frozen=True)
class Flag:
    """Something in a letter the moderator should look at."""

    kind: FlagKind
    text: str
    part: LetterPart
    start: int
    end: int


_WORD = r"[^\W\d_][\w'’.-]*"
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SPELLED_EMAIL = re.compile(
    r"\b[\w.+-]+\s*(?:\(at\)|\[at\]|\{at\}|\sat\s|\(arroba\)|\sarroba\s)\s*[\w-]+"
    r"\s*(?:\(dot\)|\[dot\]|\.|\sdot\s|\s?punto\s|\s?point\s)\s*(?:com|org|net|[a-z]{2})\b",
    re.IGNORECASE,
)
_TLDS = (
    "com|org|net|info|biz|io|co|me|app|dev|tv|gg|ly|xyz|online|site|club|edu|gov|live|"
    "uk|us|es|fr|de|pt|it|jp|br|mx|ar|cl|ca|au|ch|at|be|nl|ie|nz|in|eu"
)
_LINK = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)]"
    rf"|\b(?:[a-z0-9-]+\.)+(?:{_TLDS})\b(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)])?",
    re.IGNORECASE,
)
_PLATFORMS = (
    "instagram|insta|snapchat|tiktok|tik tok|discord|whatsapp|whats app|telegram|facebook|"
    "messenger|twitter|youtube|twitch|kik|wechat|roblox|threads|bereal|signal app|line id"
)
_SOCIAL = re.compile(
    rf"\b(?:{_PLATFORMS})\b"
    # A handle after "is" must look like one ("luna.k", "pony_12"), not a word ("fun").
    r"(?:(?:\s*[:=]\s*@?|\s+@)[\w.]{0,29}\w"
    r"|\s+(?:is|es|est|ist|é|è)\s+(?:@[\w.]{0,29}\w|[\w.]{0,28}[\d_.][\w.]{0,28}\w))?"
    r"|(?<![\w@.])@[A-Za-z0-9_.]{2,30}\b",
    re.IGNORECASE,
)

_ADDRESS_PATTERNS = (
    # en: "123 Main Street", "4B Elm Rd."
    rf"\b\d{{1,5}}[a-z]?\s+(?:{_WORD}\s+){{0,3}}(?:street|st\.?|road|rd\.?|avenue|ave\.?|"
    r"lane|ln\.?|drive|dr\.?|boulevard|blvd\.?|court|ct\.?|close|way|place|pl\.?|terrace|"
    r"crescent|square|gardens|grove|parkway|circle|highway)(?!\w)",
    # es, pt, it: "Calle Mayor 5", "Rua das Flores, 12", "Via Roma 10"
    r"\b(?:calle|c/|avenida|avda\.?|av\.|paseo|plaza|camino|carrera|ronda|travesía|"
    r"carretera|rua|travessa|praça|largo|alameda|estrada|viale|piazza|corso|vicolo|"
    r"piazzale)\s+(?:" + _WORD + r",?\s+){1,5}?(?:n[º°o]\.?\s*)?\d{1,5}\b",
    # "via" is also English ("via the park"): the street name must be capitalized.
    r"\bvia\s+(?-i:[A-Z])[\w'’.-]*(?:,?\s+[\w'’.-]+){0,4}?,?\s+\d{1,4}\b",
    # fr: "12 rue de la Paix", "3 bis avenue Foch"
    r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|place|chemin|allée|"
    r"impasse|quai|route|cours|passage)\s+[\w'’-]+(?:\s+[\w'’-]+){0,4}",
    # de: "Hauptstraße 5", "Berliner Straße 12a"
    r"\b[\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|allee|platz|damm|ufer|chaussee)"
    r"\s+\d{1,4}\s?[a-z]?\b",
    # ja: "東京都千代田区千代田1-1", "1丁目2番3号"
    # Place names are kanji or katakana; hiragana (particles like は) ends them.
    r"(?:[\u4e00-\u9fff]{1,4}[都道府県])?[\u4e00-\u9fff\u30a0-\u30ff]{1,10}[市区町村郡]"
    r"[\u4e00-\u9fff\u3040-\u30ff]{0,10}\d{1,4}(?:丁目|[-－ー])\d{1,4}(?:[-－ー番]\d{1,4}号?|番地?)?",
    r"\d{1,4}丁目\d{1,4}番(?:地|\d{1,4}号)?",
)
_ADDRESS = re.compile("|".join(f"(?:{p})" for p in _ADDRESS_PATTERNS), re.IGNORECASE)
# Every address pattern needs one of these words (or a Japanese place suffix), and every
# social pattern a platform's name or an "@": a text holding none of them is not scanned by
# the long alternations. Substring tests on the case-folded text (a test checks that each
# match holds a clue); a regular expression of the clues would cost as much as the patterns.
_ADDRESS_CLUES = tuple(
    clue.casefold()
    for clue in (
        "st", "road", "rd", "ave", "lane", "ln", "drive", "dr", "boulevard", "blvd", "court",
        "ct", "close", "way", "place", "pl", "terrace", "crescent", "square", "gardens",
        "grove", "parkway", "circle", "highway", "calle", "c/", "avenida", "avda", "av.",
        "paseo", "plaza", "camino", "carrera", "ronda", "travesía", "carretera", "rua",
        "travessa", "praça", "largo", "alameda", "estrada", "viale", "piazza", "corso",
        "vicolo", "via", "rue", "bd", "chemin", "allée", "impasse", "quai", "route", "cours",
        "passage", "straße", "weg", "gasse", "allee", "platz", "damm", "ufer", "chaussee",
        "市", "区", "町", "村", "郡", "丁目",
    )
)  # fmt: skip
_SOCIAL_CLUES = (*(p.casefold() for p in _PLATFORMS.split("|")), "@")


def _has_clue(text: str, clues: tuple[str, ...]) -> bool:
    folded = text.casefold()
    return any(clue in folded for clue in clues)


_POSTCODE_PATTERNS = (
    r"〒\s?\d{3}[-－]?\d{4}",
    # US ZIP after a state abbreviation: "Springfield, IL 62704"
    r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b",
    # UK: "SW1A 1AA"
    r"\b[A-Za-z]{1,2}\d[A-Za-z\d]?\s+\d[A-Za-z]{2}\b",
    # 5-digit codes before a city name: "75002 Paris", "28013 Madrid", "00184 Roma"
    r"\b\d{5}\s+[A-ZÀ-Ý][\w'’-]+",
    # Portugal "1100-148 Lisboa", Brazil CEP "01310-100"
    r"\b\d{4}-\d{3}\s+[A-ZÀ-Ý][\w'’-]+|\b\d{5}-\d{3}\b",
    # A code after the word for it: "PLZ 10115", "CP 28013", "CAP 00184", "zip 90210"
    r"\b(?:zip(?:\s?code)?|postcode|post\s?code|plz|cp|c\.p\.|cap|cep|code postal|"
    r"código postal|codice postale|郵便番号)\s*[:：]?\s*\d{4,5}(?:-\d{3,4})?",
)
_POSTCODE = re.compile("|".join(f"(?:{p})" for p in _POSTCODE_PATTERNS))
_POSTCODE_WORDS = re.compile(_POSTCODE_PATTERNS[-1], re.IGNORECASE)
_CID_REFERENCE = re.compile(r"cid:[^\s\"'<>]*", re.IGNORECASE)
# Digit runs phonenumbers rejects for the library's region may still be a number: a pal's
# abroad, or a local one written without its area code (seven digits, "555-0142").
_DIGIT_RUN = re.compile(r"(?<![\w+])\+?\d(?:[\s().\-/]{0,2}\d){6,14}(?!\w)")
_DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
_UNSPACED_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")


def _pattern_flags(
    kind: FlagKind, pattern: re.Pattern[str], text: str, part: LetterPart
) -> Iterator[Flag]:
    for found in pattern.finditer(text):
        yield Flag(kind, found.group(), part, found.start(), found.end())


# Where a phone number can be: at least three digits close together (no valid number anywhere
# is shorter), with the context phonenumbers looks at around a candidate. The matcher parses
# every digit it meets, so a long letter of lists and dates costs it dearly; asking it only
# about these regions finds the same numbers (tests compare both ways) at a fraction of it.
_PHONE_REGION = re.compile(r"\d(?:[^\S\n]{0,3}[-.()/\\\u2010-\u2015\uff0d]{0,3}[^\S\n]{0,3}\d){2,}")
_PHONE_CONTEXT = 40


def _phone_regions(text: str) -> Iterator[tuple[int, int]]:
    """Merged (start, end) spans around every run of three or more nearby digits."""
    start = end = -1
    for found in _PHONE_REGION.finditer(text):
        low = max(0, found.start() - _PHONE_CONTEXT)
        high = min(len(text), found.end() + _PHONE_CONTEXT)
        if low <= end:
            end = max(end, high)
            continue
        if end >= 0:
            yield start, end
        start, end = low, high
    if end >= 0:
        yield start, end


def _clued_flags(
    kind: FlagKind, pattern: re.Pattern[str], clues: tuple[str, ...], text: str, part: LetterPart
) -> list[Flag]:
    return list(_pattern_flags(kind, pattern, text, part)) if _has_clue(text, clues) else []


def _phone_flags(text: str, part: LetterPart, region: str) -> Iterator[Flag]:
    region_code = region.upper() if region else None
    seen: set[tuple[int, int]] = set()
    for low, high in _phone_regions(text):
        try:
            matches = list(
                phonenumbers.PhoneNumberMatcher(
                    text[low:high], region_code, phonenumbers.Leniency.VALID
                )
            )
        except Exception:  # an unknown region or odd input must not stop screening
            matches = []
        for match in matches:
            span = (low + match.start, low + match.end)
            if span not in seen:
                seen.add(span)
                yield _phone(text, part, *span)


def _digit_run_flags(text: str, part: LetterPart) -> Iterator[Flag]:
    for found in _DIGIT_RUN.finditer(text):
        if not _DATE_LIKE.match(found.group()):
            yield _phone(text, part, found.start(), found.end())


def _phone(text: str, part: LetterPart, start: int, end: int) -> Flag:
    """A phone flag over the whole number as written: a run read from its first digit, as
    in "(555) 201-3344", gets back the "(" its ")" closes (and a "+" before it), so staff
    see, and a redaction takes out, the number whole."""
    closing, opening = text.find(")", start, end), text.find("(", start, end)
    if start > 0 and text[start - 1] == "(" and closing >= 0 and not 0 <= opening < closing:
        start -= 1
        if start > 0 and text[start - 1] == "+":
            start -= 1
    return Flag("phone", text[start:end], part, start, end)


def _keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    alternatives: list[str] = []
    for keyword in sorted({k.strip() for k in keywords if k.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(folded_with_origin(word)[0]) for word in keyword.split())
        # Japanese and Chinese do not put spaces between words; a substring is a word.
        alternatives.append(body if _UNSPACED_SCRIPT.search(keyword) else rf"(?<!\w){body}(?!\w)")
    return re.compile("|".join(alternatives)) if alternatives else None


def _keyword_flags(text: str, part: LetterPart, pattern: re.Pattern[str]) -> Iterator[Flag]:
    folded, origin = folded_with_origin(text)
    for found in pattern.finditer(folded):
        if found.end() > found.start():
            start, end = origin[found.start()], origin[found.end() - 1] + 1
            yield Flag("keyword", text[start:end], part, start, end)


def _detail_flags(text: str, part: LetterPart, region: str) -> list[list[Flag]]:
    """Candidate flags in order of precedence: the first kind to claim a span keeps it."""
    return [
        [
            *_pattern_flags("email", _EMAIL, text, part),
            *_pattern_flags("email", _SPELLED_EMAIL, text, part),
        ],
        list(_pattern_flags("link", _LINK, text, part)),
        list(_phone_flags(text, part, region)),
        _clued_flags("social", _SOCIAL, _SOCIAL_CLUES, text, part),
        _clued_flags("address", _ADDRESS, _ADDRESS_CLUES, text, part),
        [
            *_pattern_flags("postcode", _POSTCODE, text, part),
            *_pattern_flags("postcode", _POSTCODE_WORDS, text, part),
        ],
        list(_digit_run_flags(text, part)),
    ]


def _without_overlaps(candidates: list[list[Flag]]) -> list[Flag]:
    """Keep each candidate unless an earlier-ranked kept flag overlaps it.

    Kept spans never overlap, so sorted by start only the two neighbours of a new span
    need checking: linear-logarithmic even for a letter with thousands of addresses.
    """
    kept: list[Flag] = []
    spans: list[tuple[int, int]] = []
    for group in candidates:
        for flag in sorted(group, key=lambda f: (f.start, -f.end)):
            at = bisect.bisect_left(spans, (flag.start, flag.end))
            before = at > 0 and spans[at - 1][1] > flag.start
            after = at < len(spans) and spans[at][0] < flag.end
            if not (before or after):
                spans.insert(at, (flag.start, flag.end))
                kept.append(flag)
    return kept


def _screen_part(
    text: str, part: LetterPart, region: str, keywords: re.Pattern[str] | None
) -> list[Flag]:
    if part == "html":
        # Pictures are referenced as cid:name@host; that is no email address to flag.
        text = _CID_REFERENCE.sub(lambda m: " " * len(m.group()), text)
    flags = _without_overlaps(_detail_flags(text, part, region))
    if keywords is not None:
        flags.extend(_keyword_flags(text, part, keywords))
    return flags


def _surname_flags(text: str, part: LetterPart, surnames: Sequence[str]) -> Iterator[Flag]:
    for start, end in find_names(text, surnames, markup=part == "html"):
        yield Flag("surname", text[start:end], part, start, end)


def screen(
    letter: ScrubbedLetter,
    *,
    languages: Sequence[str],
    default_region: str,
    keywords: Mapping[str, Sequence[str]],
    surnames: Sequence[str] = (),
) -> tuple[Flag, ...]:
    """Flags for staff on the subject, text and HTML of a scrubbed letter.

    `languages` chooses which keyword lists apply (a list under "*" always does);
    `default_region` is the library's country (ISO 3166 code) for reading phone numbers;
    `surnames` are the writer's (`relay.scrub.names.typed_values`), flagged wherever they
    appear, like keywords beside whatever else is flagged there.
    """
    chosen = [word for lang in (*languages, "*") for word in keywords.get(lang, ())]
    keyword_pattern = _keyword_pattern(chosen)
    parts: list[tuple[LetterPart, str | None]] = [
        ("subject", letter.subject),
        ("text", letter.text),
        ("html", letter.html),
    ]
    flags: list[Flag] = []
    for part, text in parts:
        if text:
            flags.extend(_screen_part(text, part, default_region, keyword_pattern))
            flags.extend(_surname_flags(text, part, surnames))
    unique = dict.fromkeys(flags)
    return tuple(sorted(unique, key=lambda f: (f.part, f.start, f.end, f.kind)))
