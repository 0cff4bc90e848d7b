"""HTML bodies: cut quoted history, drop what spies or hides, then sanitize with nh3.

Two passes. The first walks the markup with the standard library's tolerant parser and
decides on whole elements, which an attribute allow-list cannot do: it drops quoted-reply
containers (Gmail `gmail_quote`, Apple Mail and Thunderbird `blockquote type=cite`,
`moz-cite-prefix`, Yahoo `yahoo_quoted`) and everything from Outlook's reply header
(`divRplyFwdMsg`, the `border-top` separator) on; drops signatures, scripts, forms, frames,
remote and embedded images (tracking pixels among them) and unwraps `mailto:` links (a link
text holding the writer's surname becomes their first name); points `cid:` images at their
new names; and cuts at attribution lines found in the text, using the same rules as plain
text, and at a "-- " signature line. The second pass is nh3 (Ammonia) with a small
allow-list: no `style`, `class` or colour attributes survive, so text cannot be hidden from
the moderator and shown to the pal, or the other way round.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser

import nh3

from relay.scrub.model import Removal
from relay.scrub.names import find_names
from relay.scrub.quotes import introduces_forward, is_attribution, quote_depth, read_reply

__all__ = ["CleanHtml", "WriterNames", "clean_html", "sanitize"]

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "dd", "del", "div",
    "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
    "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "*": {"dir", "lang"},
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
}
_URL_SCHEMES = {"http", "https", "cid"}

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}  # fmt: skip
_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
          "pre", "table", "hr", "ul", "ol", "dl", "dt", "dd", "center"}  # fmt: skip
# Dropped with their content; only the dangerous ones are worth telling staff about.
_SILENT_DROP = {"head", "title", "style", "meta", "link", "base", "template", "noscript"}
_REPORTED_DROP = {
    "script": "a script",
    "form": "a form",
    "input": "a form field",
    "button": "a form button",
    "select": "a form field",
    "textarea": "a form field",
    "iframe": "an embedded web page",
    "frame": "an embedded web page",
    "object": "an embedded object",
    "embed": "an embedded object",
    "applet": "an embedded object",
    "svg": "a drawing in code (SVG)",
    "math": "formula markup",
    "audio": "an embedded sound",
    "video": "an embedded video",
}
# Quote containers by class (a class containing one of these: Outlook prefixes "x_"), and by
# other attributes; a plain <blockquote> counts when the line above it is an attribution.
_QUOTE_CLASSES = (
    "gmail_quote", "gmail_extra", "yahoo_quoted", "moz-cite-prefix", "moz-forward-container",
    "protonmail_quote", "zmail_extra", "tutanota_quote", "mail-quote", "reply-quote",
    "quoted-text", "ms-outlook-mobile-reference", "qt-quote",
)  # fmt: skip
# A wrapper (not a blockquote) of these classes holds the attribution and the blockquotes;
# a writer answering inline types between them, inside it. It is read through: its lines
# are the writer's where they stand between its blockquotes, and all quoted when it has none
# (Gmail's forwards put the earlier letter there without one).
_WRAPPER_CLASSES = ("gmail_quote", "gmail_extra", "zmail_extra", "protonmail_quote")
# The attribution line of these programs, in an element of its own: never the writer's.
_ATTRIBUTION_CLASSES = ("gmail_attr", "moz-cite-prefix")
_QUOTE_NAMES = ("quote",)  # GMX and WEB.DE: <div name="quote">
_SIGNATURE_CLASSES = ("gmail_signature", "moz-signature", "elementtoproof-signature")
_SIGNATURE_IDS = ("signature", "x_signature", "signature_bookmark")
_CUT_IDS = (
    "divrplyfwdmsg", "x_divrplyfwdmsg", "appendonsend", "x_appendonsend", "outlookmessageheader",
    "mail-editor-reference-message-container", "x_mail-editor-reference-message-container",
    "zwchr",  # Zimbra's rule above the quoted letter
)  # fmt: skip
_OUTLOOK_SEPARATOR = re.compile(r"border-top:\s*solid", re.IGNORECASE)


@dataclass
class CleanHtml:
    """A sanitized HTML fragment and what was taken out of it."""

    html: str
    removed: list[Removal] = field(default_factory=list)
    # The text of the quoted history that was dropped (searched for third parties' addresses).
    history: tuple[str, ...] = ()
    unsure: bool = False  # see `relay.scrub.quotes.Reading.unsure`


class _Walker(HTMLParser):
    """The first pass: re-emits the markup element by element, leaving out whole subtrees.

    `tokens` is the output so far; `lines` records where each visual line starts in it, its
    text and its quote depth, so the reply is read with the plain-text rules afterwards
    (`relay.scrub.quotes.read_reply`). A dropped quote container leaves one line of depth 1
    whose text is the last line it quoted at its first level (the context an inline answer
    may keep); the text of everything dropped as history is kept in `history`.
    """

    def __init__(self, cids: Mapping[str, str], writer: WriterNames | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.cids = cids
        self.writer = writer or WriterNames()
        self.tokens: list[str] = []
        self.lines: list[_Line] = [_Line(0)]
        self.removed: list[Removal] = []
        self.skip_tag: str | None = None
        self.skip_level = 0
        self.cut = False
        self.mailto: tuple[int, str] | None = None
        self.history: list[str] = []
        # While a quote container is skipped: its lines as (blockquote level, text).
        self.quote: list[tuple[int, list[str]]] | None = None
        self.quote_level = 0
        # Every emitted element still open, with its role when it has one; how many of each
        # tag and role are open; how many quote containers were dropped so far.
        self.stack: list[tuple[str, _Open | None]] = []
        self.open_tags: Counter[str] = Counter()
        self.open_roles: Counter[str] = Counter()
        self.quotes_dropped = 0
        self.last_written: _Line | None = None
        self.marks: list[tuple[int, int, str]] = []  # (first line, end, role) to mark
        self.plain_quotes = False
        self.unsure = False  # nothing was the writer's but cut history: it was kept

    # -- element decisions ---------------------------------------------------------------
    def _drop_reason(self, tag: str, attrs: dict[str, str]) -> Removal | None:
        classes = attrs.get("class", "").lower()
        ident = attrs.get("id", "").lower()
        if self._is_quote(tag, attrs, classes):
            return Removal("quoted-reply", "the quoted earlier letter")
        if any(name in classes for name in _SIGNATURE_CLASSES) or ident in _SIGNATURE_IDS:
            return Removal("signature", "the sender's signature block")
        if tag in _REPORTED_DROP:
            return Removal("html", f"{_REPORTED_DROP[tag]} was removed from the letter")
        if tag in _SILENT_DROP:
            return Removal("", "")
        return None

    def _role(self, tag: str, classes: str) -> str | None:
        if any(name in classes for name in _ATTRIBUTION_CLASSES):
            return "attribution"
        if tag != "blockquote" and any(name in classes for name in _WRAPPER_CLASSES):
            return "wrapper"
        if tag == "blockquote":
            return "blockquote"  # the writer's, unless it opens like quoted history
        return None

    def _opened(self, tag: str, role: str | None) -> None:
        entry = None
        if role is not None:
            self._new_line()
            entry = _Open(role, len(self.lines) - 1, self.quotes_dropped)
            self.open_roles[role] += 1
        self.stack.append((tag, entry))
        self.open_tags[tag] += 1

    def _closed(self, tag: str) -> None:
        """Close `tag` and whatever was left open inside it (each element is closed once,
        so this stays linear however the markup nests or fails to)."""
        if not self.open_tags[tag]:
            return  # a stray end tag
        while self.stack:
            open_tag, entry = self.stack.pop()
            self.open_tags[open_tag] -= 1
            if entry is not None:
                self._end(entry)
            if open_tag == tag:
                return

    def end_all(self) -> None:
        """Elements never closed end with the markup."""
        while self.stack:
            _, entry = self.stack.pop()
            if entry is not None:
                self._end(entry)

    def _end(self, entry: _Open) -> None:
        self.open_roles[entry.role] -= 1
        self._new_line()
        self._ended(entry.role, entry.first, self.quotes_dropped - entry.quotes_before)

    def _ended(self, role: str, first: int, quotes: int) -> None:
        """An attribution element's lines, a wrapper's without a blockquote, and a plain
        blockquote's that opens like quoted history (an attribution, a separator, header
        fields, or `>` marks: Orange, Lotus Notes) are history. Ranges are noted here and
        marked once at the end (`_apply_marks`), so nesting costs nothing per line."""
        if role == "wrapper" and quotes:
            return
        self.marks.append((first, len(self.lines) - 1, role))

    def _is_quote(self, tag: str, attrs: dict[str, str], classes: str) -> bool:
        if self._role(tag, classes) in ("attribution", "wrapper"):
            return False
        if any(name in classes for name in _QUOTE_CLASSES):
            return True
        if attrs.get("name", "").lower() in _QUOTE_NAMES:
            return True
        if tag != "blockquote":
            return False
        if attrs.get("type", "").lower() == "cite":
            return True
        # mail.ru, Yandex and others: a plain blockquote right below an attribution line, and
        # every plain blockquote after one (the writer answered between them).
        if not self.plain_quotes and self.last_written is not None:
            self.plain_quotes = is_attribution(self.last_written.text())
        return self.plain_quotes

    def _starts_cut(self, tag: str, attrs: dict[str, str]) -> bool:
        if attrs.get("id", "").lower() in _CUT_IDS:
            return True
        style = attrs.get("style", "")
        return tag == "div" and bool(_OUTLOOK_SEPARATOR.search(style)) and "padding" in style

    # -- parser hooks --------------------------------------------------------------------
    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = {name: value or "" for name, value in attr_list}
        if self.cut:
            self._history_link(attrs)
            return
        if self.skip_tag is not None:
            self.skip_level += tag == self.skip_tag and tag not in _VOID
            self._quoted_start(tag, attrs)
            return
        if self._starts_cut(tag, attrs):
            self.cut = True
            self.removed.append(Removal("quoted-reply", "the quoted earlier letter"))
            return
        reason = self._drop_reason(tag, attrs)
        if reason is not None:
            if reason.kind:
                self.removed.append(reason)
            if tag not in _VOID:
                self.skip_tag, self.skip_level = tag, 1
                if reason.kind == "quoted-reply":
                    self.quote, self.quote_level = [(0, [])], 0
                    self._quoted_start(tag, attrs)
                    self.quotes_dropped += 1
            return
        if tag not in _VOID:
            self._opened(tag, self._role(tag, attrs.get("class", "").lower()))
        self._emit_start(tag, attrs)

    def handle_startendtag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attr_list)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.cut:
            return
        if self.skip_tag is not None:
            if self.quote is not None and tag in _BLOCK:
                self.quote_level -= tag == "blockquote"
                self.quote.append((self.quote_level, []))
            if tag == self.skip_tag:
                self.skip_level -= 1
                if self.skip_level == 0:
                    self.skip_tag = None
                    self._quote_ended()
            return
        if tag == "a" and self.mailto is not None:
            self.close_mailto()
            return
        if tag in _VOID:
            return
        self.tokens.append(f"</{tag}>")
        if tag in _BLOCK:
            self._new_line()
        self._closed(tag)

    def handle_data(self, data: str) -> None:
        if self.cut:
            self.history.append(data)
            return
        if self.skip_tag is not None:
            if self.quote is not None:
                self.quote[-1][1].append(data)
                self.history.append(data)
            return
        if self.open_tags["pre"] and "\n" in data:
            # Preformatted text keeps its line breaks: each is a line of its own, so "> "
            # marks and attributions there are read as in a text body.
            first, *rest = data.split("\n")
            self._text(first)
            for piece in rest:
                self._new_line()
                self._text("\n" + piece)
            return
        self._text(data)

    def _text(self, data: str) -> None:
        self.tokens.append(html.escape(data, quote=False))
        self.lines[-1].parts.append(data)
        if data.strip():
            self.last_written = self.lines[-1]

    # -- quoted history ------------------------------------------------------------------
    def _history_link(self, attrs: dict[str, str]) -> None:
        href = attrs.get("href", "")
        if href.lower().startswith("mailto:"):
            self.history.append(href[7:])

    def _quoted_start(self, tag: str, attrs: dict[str, str]) -> None:
        if self.quote is None:
            return
        self._history_link(attrs)
        if tag in _BLOCK:
            self.quote_level += tag == "blockquote"
            self.quote.append((self.quote_level, []))

    def _quote_ended(self) -> None:
        """A quote container was dropped: one line of depth 1 stands for it."""
        quoted = self.quote or []
        self.quote = None
        first_level = [" ".join("".join(parts).split()) for level, parts in quoted if level <= 1]
        context = next((text for text in reversed(first_level) if text), "")
        self._new_line()
        self.lines[-1] = _Line(len(self.tokens), [context], depth=1)
        self._new_line()

    # -- output --------------------------------------------------------------------------
    def _new_line(self) -> None:
        self.lines.append(_Line(len(self.tokens)))

    def _emit_start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag in _BLOCK:
            self._new_line()
        if tag == "img":
            attrs = self._image_attrs(attrs)
            if not attrs:
                return
        if tag == "a" and attrs.get("href", "").strip().lower().startswith("mailto:"):
            self.mailto = (len(self.tokens), attrs["href"].strip()[7:].split("?")[0])
            if not (self.open_roles["attribution"] or self.open_roles["wrapper"]):
                # (in an attribution or a quote wrapper it is history, not the writer's link)
                self.removed.append(Removal("html", "a link to an email address was unlinked"))
            return
        rendered = "".join(f' {name}="{html.escape(value)}"' for name, value in attrs.items())
        self.tokens.append(f"<{tag}{rendered}>")

    def _image_attrs(self, attrs: dict[str, str]) -> dict[str, str]:
        source = attrs.get("src", "").strip()
        if source.lower().startswith("cid:"):
            new = self.cids.get(_cid_key(source[4:]))
            if new is not None:
                # The original alt text is usually the file name, which may name a person.
                return {"src": f"cid:{new}", "alt": new.split("@")[0]}
            self.removed.append(Removal("html", "a picture that was not attached"))
            return {}
        tiny = attrs.get("width", "").strip() in {"0", "1"} or attrs.get("height", "") in {"0", "1"}
        what = "a tracking pixel" if tiny else "a picture loaded from the web"
        self.removed.append(Removal("html", f"{what} was removed"))
        return {}

    def close_mailto(self) -> None:
        """End an unwrapped mailto link; drop its text when it is just the address, and put
        the writer's first name in place of a text that holds their surname (mail programs
        write a link with the full name when an address is picked from the address book)."""
        if self.mailto is None:
            return
        start, address = self.mailto
        self.mailto = None
        inner = html.unescape(re.sub(r"<[^>]*>", "", "".join(self.tokens[start:]))).strip()
        if inner.lower() == address.lower():
            del self.tokens[start:]
        elif find_names(inner, self.writer.surnames):
            del self.tokens[start:]
            self.tokens.append(html.escape(self.writer.first_name, quote=False))
            self.removed.append(
                Removal("html", "the sender's full name in an email link became the first name")
            )


def _cid_key(cid: str) -> str:
    from urllib.parse import unquote

    return unquote(cid.strip().strip("<>")).lower()


@dataclass(frozen=True)
class _Open:
    """An open element with a role: where its lines start, how many quotes were dropped
    before it (so the number inside it is known when it closes)."""

    role: str
    first: int
    quotes_before: int


@dataclass
class _Line:
    """One visual line of the walked markup: where its tokens start, its text, its depth."""

    start: int
    parts: list[str] = field(default_factory=list)
    depth: int = 0
    attribution: bool = False  # in an attribution element (never kept, never context)

    def text(self) -> str:
        return " ".join("".join(self.parts).split())


def _read_reply(walker: _Walker) -> list[str]:
    """The tokens of the writer's own lines, read with the plain-text rules (an inline
    answer keeps the line it answers as a blockquote), without a "-- " signature."""
    walker.end_all()
    lines = walker.lines
    shown = [line.text() for line in lines]  # each line's text, read once
    _apply_marks(lines, shown, walker.marks)
    _cut_after_forwarding_attribution(lines, shown)
    written = [i for i, line in enumerate(lines) if shown[i] and not line.attribution]
    texts = [shown[index] for index in written]
    # Text quoted with ">" inside HTML (Lotus Notes, Orange) is quoted too.
    depths = [max(lines[index].depth, quote_depth(texts[n])) for n, index in enumerate(written)]
    reading = read_reply(texts, depths)
    walker.history.extend(shown[i] for i, line in enumerate(lines) if line.attribution)
    if reading.removed or any(line.attribution for line in lines):
        walker.removed.append(Removal("quoted-reply", "the quoted earlier letter"))
    walker.unsure = reading.unsure
    walker.history.extend(reading.history)
    keep = [not line.attribution for line in walker.lines]
    context: dict[int, str] = {}
    prefixes: dict[int, str] = {}
    for position, index in enumerate(written):
        verdict = reading.keep[position] and depths[position] == 0
        keep[index] = verdict
        # The blank lines after a line (markup only) share its fate.
        following = written[position + 1] if position + 1 < len(written) else len(walker.lines)
        for blank in range(index + 1, following):
            keep[blank] = verdict and not lines[blank].attribution
        if position in reading.context:
            context[index] = reading.context[position]
        if position in reading.prefixes:
            prefixes[index] = reading.prefixes[position]
    # A "-- " line starts a signature in HTML as in text (where a client marks it with no
    # class, or a person typed it): the same block the text part loses.
    signed = [index for index in written if keep[index] and shown[index] == "--"]
    if signed:
        for index in range(signed[-1], len(walker.lines)):
            keep[index] = False
        walker.removed.append(Removal("signature", "the sender's signature block"))
    tokens: list[str] = []
    bounds = [line.start for line in walker.lines] + [len(walker.tokens)]
    for index in range(len(walker.lines)):
        if index in context:
            tokens.append(f"<blockquote>{html.escape(context[index], quote=False)}</blockquote>")
        if index in prefixes:
            tokens.append(f"<div>{html.escape(prefixes[index], quote=False)}</div>")
        elif keep[index]:
            tokens.extend(walker.tokens[bounds[index] : bounds[index + 1]])
    return tokens


def _apply_marks(lines: list[_Line], shown: list[str], marks: list[tuple[int, int, str]]) -> None:
    """Mark the noted ranges in one pass (see `_Walker._ended`)."""
    texted = [len(lines)] * (len(lines) + 1)
    for index in range(len(lines) - 1, -1, -1):
        texted[index] = index if shown[index] else texted[index + 1]
    quoted = [0] * (len(lines) + 1)
    attributed = [0] * (len(lines) + 1)
    for first, end, role in marks:
        if role == "blockquote":
            opening = shown[texted[first]] if texted[first] < end else ""
            if not (
                quote_depth(opening) or is_attribution(opening) or introduces_forward([opening])
            ):
                continue
        quoted[first] += 1
        quoted[end] -= 1
        if role == "attribution":
            attributed[first] += 1
            attributed[end] -= 1
    depth = attribution = 0
    for index, line in enumerate(lines):
        depth += quoted[index]
        attribution += attributed[index]
        if depth:
            line.depth = max(line.depth, 1)
        if attribution:
            line.attribution = True


def _cut_after_forwarding_attribution(lines: list[_Line], shown: list[str]) -> None:
    """An attribution element that holds a separator or header fields (Gmail writes
    "Forwarded message", From: and Date: there) and is followed by the writer's level rather
    than a quote introduces a forwarded letter: it and everything after it are history. A
    plain "On … wrote:" left above the writer's words (the quote deleted) goes alone."""
    index = 0
    while index < len(lines):
        if not lines[index].attribution:
            index += 1
            continue
        end = index
        while end < len(lines) and lines[end].attribution:
            end += 1
        element = shown[index:end]
        following = next((lines[i] for i in range(end, len(lines)) if shown[i]), None)
        if following is not None and following.depth == 0 and introduces_forward(element):
            for later in lines[index:]:
                later.depth = max(later.depth, 1)
                later.attribution = True
            return
        index = end


UNSURE = (
    "The relay could not tell the writer's reply from the history it quotes, so it kept the "
    "text below a header or attribution line: read all of it before approving."
)


def sanitize(markup: str) -> str:
    """The allow-list pass alone (also used again after private values are replaced)."""
    return nh3.clean(
        markup,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        clean_content_tags={"script", "style"},
        strip_comments=True,
        link_rel="noopener noreferrer",
    ).strip()


@dataclass(frozen=True)
class WriterNames:
    """The writer's enrolled first name and surname values (see `relay.scrub.names`)."""

    first_name: str = ""
    surnames: tuple[str, ...] = ()


def clean_html(
    markup: str, cids: Mapping[str, str], writer: WriterNames | None = None
) -> CleanHtml:
    """Clean one HTML body; `cids` maps original Content-IDs (lower case) to new ones."""
    walker = _Walker({_cid_key(old): new for old, new in cids.items()}, writer)
    try:
        walker.feed(markup)
        walker.close()
    except Exception:  # the stdlib parser is tolerant, but keep what was read so far
        walker.removed.append(Removal("html", "the end of the HTML could not be read"))
    if walker.mailto is not None:
        walker.close_mailto()
    tokens = _read_reply(walker)
    return CleanHtml(
        sanitize("".join(tokens)), _dedupe(walker.removed), tuple(walker.history), walker.unsure
    )


def _dedupe(removed: list[Removal]) -> list[Removal]:
    return list(dict.fromkeys(removed))
