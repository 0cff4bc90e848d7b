"""Is this message really from the address in its From line? Read from RFC 8601 headers.

Only `Authentication-Results` headers whose authserv-id is one we trust count: the mail server
in front of the relay (or the hosted mailbox provider) writes its own, and anyone can write
one claiming anything, so the others are ignored. A message is authenticated for an address
when a trusted header says `dmarc=pass` for that address's domain, or `dkim=pass` with a
signing domain (`header.d`, or the domain of `header.i`) equal to it or a parent of it, or
`spf=pass` for that address (or its domain). Pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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


def _domain_of(value: str) -> str:
    return value.rpartition("@")[2].lower()


def _aligned(signer: str, domain: str) -> bool:
    return bool(signer) and (domain == signer or domain.endswith("." + signer))


def passes(result: Result, address: str) -> bool:
    domain = _domain_of(address)
    props = result.properties
    if result.result != "pass":
        return False
    if result.method == "dmarc":
        return props.get("header.from", domain) == domain
    if result.method == "dkim":
        signer = props.get("header.d") or _domain_of(props.get("header.i", ""))
        return _aligned(signer, domain)
    if result.method == "spf":
        checked = props.get("smtp.mailfrom", "")
        return checked == address.lower() or checked == domain
    return False


def authenticated(headers: list[str], address: str, trusted: tuple[str, ...]) -> bool:
    """True when a header from a trusted authserv-id vouches for `address`."""
    for header in headers:
        parsed = parse(header)
        if parsed is None or parsed.authserv_id not in trusted:
            continue
        if any(passes(result, address) for result in parsed.results):
            return True
    return False
