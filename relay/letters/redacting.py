"""Remove what is flagged: each identifying detail replaced by a neutral mark.

Only the kinds that let two pals find each other outside the program are taken out: phone
numbers, email addresses, links, social media handles, street addresses, postal codes and
surnames. Keywords ("secret", "whatsapp" alone) are only worth a look; crossing out the
word "secret" would spoil a letter and protect nobody, so they stay.

Pure. The subject and text are cut at the flags' offsets. In HTML only text is changed,
never markup: the text nodes are joined (a block element starts a new line), screened as
one string, and each flagged span is replaced in the nodes it covers; every link is
unwrapped (its words stay, its address goes), and the result is sanitized again. The
flags are found again on the letter as it is now, so a redaction after a removed file or
an edit covers what will really be sent.
"""

from __future__ import annotations

import html as html_module
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from html.parser import HTMLParser

from relay.screen import Flag
from relay.scrub import ScrubbedLetter
from relay.scrub.markup import sanitize

IDENTIFYING = frozenset({"phone", "email", "link", "social", "address", "postcode", "surname"})
_BLOCK = frozenset(
    {"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
     "blockquote", "pre", "table", "hr", "ul", "ol", "dl", "dt", "dd", "center", "caption"}
)  # fmt: skip


@dataclass(frozen=True)
class Redacted:
    letter: ScrubbedLetter
    counts: dict[str, int]  # kinds and how many different details of each; never the values


class _Nodes(HTMLParser):
    """Markup as tokens: ("tag", raw markup) or ("text", unescaped text, offset in `joined`)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple[str, str, int]] = []
        self.joined = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        self._tag(tag, f"</{tag}>")

    def _tag(self, tag: str, raw: str) -> None:
        if tag in _BLOCK:
            self.joined += "\n"
        self.tokens.append(("tag" if tag != "a" else "link", raw, len(self.joined)))

    def handle_data(self, data: str) -> None:
        self.tokens.append(("text", data, len(self.joined)))
        self.joined += data


def html_text(markup: str) -> str:
    """The text of sanitized HTML as one string, the one the HTML's flags are offsets into."""
    nodes = _Nodes()
    nodes.feed(markup)
    nodes.close()
    return nodes.joined


def _spans(flags: Iterable[Flag], part: str, text: str) -> list[tuple[int, int]]:
    """The part's identifying spans in order, overlapping ones merged."""
    merged: list[tuple[int, int]] = []
    wanted = (f for f in flags if f.part == part and f.kind in IDENTIFYING)
    for flag in sorted(wanted, key=lambda f: (f.start, f.end)):
        if not 0 <= flag.start < flag.end <= len(text):
            continue
        if merged and flag.start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], flag.end))
        else:
            merged.append((flag.start, flag.end))
    return merged


def redact_string(text: str, spans: list[tuple[int, int]], mark: str) -> str:
    for start, end in reversed(spans):
        text = text[:start] + mark + text[end:]
    return text


def redact_html(markup: str, spans: list[tuple[int, int]], mark: str) -> str:
    nodes = _Nodes()
    nodes.feed(markup)
    nodes.close()
    out: list[str] = []
    for kind, value, offset in nodes.tokens:
        if kind == "tag":
            out.append(value)
        elif kind == "text":
            out.append(html_module.escape(_node_text(value, offset, spans, mark), quote=False))
    return sanitize("".join(out))


def _node_text(text: str, offset: int, spans: list[tuple[int, int]], mark: str) -> str:
    """One text node with the spans that cover it taken out; the mark goes where a span
    starts, so a detail split over several nodes (`<b>555</b> 201-3344`) is marked once."""
    end_of_node = offset + len(text)
    local: list[tuple[int, int, str]] = []
    for start, end in spans:
        if end <= offset or start >= end_of_node:
            continue
        local.append(
            (max(start, offset) - offset, min(end, end_of_node) - offset, mark * (start >= offset))
        )
    for start, end, replacement in reversed(local):
        text = text[:start] + replacement + text[end:]
    return text


def redact(
    clean: ScrubbedLetter,
    find_flags: Callable[[ScrubbedLetter], tuple[Flag, ...]],
    mark: str,
) -> Redacted:
    """The letter with every identifying detail replaced by `mark`, and what was removed.

    `find_flags` screens a letter (the relay's own screening, with its configuration); it
    is given the HTML part as its text, so the offsets it returns are offsets into text."""
    as_text = html_text(clean.html) if clean.html else None
    flags = find_flags(replace(clean, html=as_text))
    subject = redact_string(clean.subject, _spans(flags, "subject", clean.subject), mark)
    text = clean.text
    if text is not None:
        text = redact_string(text, _spans(flags, "text", text), mark)
    markup = clean.html
    if markup is not None and as_text is not None:
        markup = redact_html(markup, _spans(flags, "html", as_text), mark)
    found: dict[str, set[str]] = {}
    for flag in flags:
        if flag.kind in IDENTIFYING:
            found.setdefault(flag.kind, set()).add(" ".join(flag.text.lower().split()))
    counts = {kind: len(values) for kind, values in sorted(found.items())}
    return Redacted(replace(clean, subject=subject, text=text, html=markup), counts)
