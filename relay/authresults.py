"""Reading RFC 8601 Authentication-Results, and what a result vouches for. Pure functions.

`topmost_trusted` picks the one header that counts: the topmost with an authserv-id we trust
(the server nearest to us writes its header on top; anything below it, or written by the
sender, may claim anything). `vouches` says whether that header's results prove a message
comes from one address: its From line is that address, and `dmarc=pass` with `header.from`
equal to the address's domain, or, when there is no DMARC result (or `dmarc=none`: the
domain publishes no policy), `spf=pass` for a MAIL FROM in that domain or `dkim=pass` with
`header.d` equal to it. Never a parent domain: `example.org` signing is not
`library.example.org` vouching.

`Verdict` is what intake decided for one message (relay/authentication.py builds it), kept
on the spool marker so every later stage reads the same one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class Result:
    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthenticationResults:
    authserv_id: str
    results: tuple[Result, ...]


def _strip_comments(value: str) -> str:
    previous = None
    while previous != value:  # comments may nest
        previous, value = value, _COMMENT.sub(" ", value)
    return value


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse(header: str) -> AuthenticationResults | None:
    """One header's value; None when it has no authserv-id."""
    pieces = _split_outside_quotes(_strip_comments(" ".join(header.split())), ";")
    head = pieces[0].split()
    if not head:
        return None
    results = []
    for piece in pieces[1:]:
        words = piece.split()
        if not words or "=" not in words[0]:
            continue  # "none", or garbage
        method, _, result = words[0].partition("=")
        properties = {}
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if sep and "." in key:
                properties[key.lower()] = value.strip('"').lower()
        results.append(Result(method.split("/")[0].lower(), result.lower(), properties))
    return AuthenticationResults(head[0].lower(), tuple(results))


def domain_of(value: str) -> str:
    """The domain of an address (or a bare domain), lower case, without a final dot."""
    return value.rpartition("@")[2].lower().rstrip(".")


def _ascii_domain(domain: str) -> str:
    """A domain as DNS and most results headers write it: an internationalized one in its
    ASCII form (`bücher.example` is `xn--bcher-kva.example`)."""
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain


def _ascii_address(address: str) -> str:
    local, at, domain = address.lower().rpartition("@")
    return f"{local}{at}{_ascii_domain(domain)}"


def topmost_trusted(
    headers: list[str], trusted: tuple[str, ...]
) -> tuple[AuthenticationResults | None, int]:
    """The topmost header whose authserv-id is trusted, and how many others claimed one."""
    found: AuthenticationResults | None = None
    others = 0
    wanted = {t.lower() for t in trusted}
    for header in headers:
        parsed = parse(header)
        if parsed is None or parsed.authserv_id not in wanted:
            continue
        if found is None:
            found = parsed
        else:
            others += 1
    return found, others


def _passes_for(result: Result, domain: str) -> bool:
    props = result.properties
    if result.result != "pass":
        return False
    if result.method == "dmarc":
        return _ascii_domain(props.get("header.from", "")) == domain
    if result.method == "dkim":
        return _ascii_domain(props.get("header.d", "").rstrip(".")) == domain
    if result.method == "spf":
        return _ascii_domain(domain_of(props.get("smtp.mailfrom", ""))) == domain
    return False


def vouches(results: AuthenticationResults | None, from_address: str, address: str) -> bool:
    """True when `results` prove a message whose From line is `from_address` comes from
    `address` (both as stored: normalized, lower case). An internationalized domain is
    compared in its ASCII form, which a mail program may have written instead."""
    if results is None or not address or _ascii_address(from_address) != _ascii_address(address):
        return False
    domain = _ascii_domain(domain_of(address))
    dmarc = [r for r in results.results if r.method == "dmarc"]
    if any(_passes_for(r, domain) for r in dmarc):
        return True
    if any(r.result != "none" for r in dmarc):
        return False  # a DMARC failure, or a pass for another (or no) From domain
    return any(_passes_for(r, domain) for r in results.results if r.method in ("spf", "dkim"))


def written(authserv_id: str, results: list[Result]) -> str:
    """The value of an Authentication-Results header for `results` (read back by `parse`)."""
    parts = [authserv_id]
    for result in results:
        props = " ".join(f"{key}={value}" for key, value in result.properties.items())
        parts.append(f"{result.method}={result.result}" + (f" {props}" if props else ""))
    return "; ".join(parts) if results else f"{authserv_id}; none"


CheckedBy = Literal["front", "relay", "unchecked"]  # unchecked: spooled before verdicts


@dataclass(frozen=True)
class Verdict:
    """What is known of a message's sender: the From line's one address and the
    Authentication-Results that count ("" when none did). Kept on the spool marker."""

    checked_by: CheckedBy
    from_address: str = ""
    results: str = ""

    def vouches_for(self, address: str) -> bool:
        """Whether the message verifiably comes from `address` (a normalized address)."""
        parsed = parse(self.results) if self.results else None
        return vouches(parsed, self.from_address, address)

    @property
    def temporary(self) -> bool:
        """A DNS failure kept the relay from knowing: asking again later may succeed."""
        parsed = parse(self.results) if self.results else None
        return parsed is not None and any(r.result == "temperror" for r in parsed.results)

    def to_meta(self) -> dict[str, str]:
        return {"by": self.checked_by, "from": self.from_address, "results": self.results}

    @classmethod
    def from_meta(cls, meta: Any) -> Verdict:
        """Markers written before verdicts were kept read as not checked."""
        if not isinstance(meta, dict) or meta.get("by") not in ("front", "relay"):
            return UNCHECKED
        by: CheckedBy = "front" if meta["by"] == "front" else "relay"
        return cls(by, str(meta.get("from") or ""), str(meta.get("results") or ""))


UNCHECKED = Verdict("unchecked")
