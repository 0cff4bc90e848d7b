"""Masked addresses and the relay's own addresses.

A masked address is `<adjective>-<animal>-<4 digits>@<relay domain>`: random (from
`secrets`), never derived from the person, easy for a child to read aloud. Uniqueness is the
store's job (it retries on a clash). With ~90 x ~80 words and 10,000 numbers there are about
72 million addresses, so a clash is rare even at 100,000 participants.
"""

from __future__ import annotations

import re
import secrets
from functools import cache
from importlib import resources

from email_validator import EmailNotValidError, validate_email

_MASKED = re.compile(r"^[a-z]+-[a-z]+-\d{4}$")


@cache
def _words(name: str) -> tuple[str, ...]:
    text = resources.files("relay").joinpath("words", name).read_text("utf-8")
    return tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def new_masked_address(domain: str) -> str:
    adjective = secrets.choice(_words("adjectives.txt"))
    animal = secrets.choice(_words("animals.txt"))
    return f"{adjective}-{animal}-{secrets.randbelow(10_000):04d}@{domain}"


def looks_masked(local_part: str) -> bool:
    return bool(_MASKED.match(local_part))


def normalize(address: str) -> str:
    """A real address as we store and compare it; raises ValueError when it is not one."""
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None


def on_the_wire(address: str) -> str:
    """An address as a header or an SMTP command carries it: an internationalized domain in
    its ASCII (IDNA) form ("ana@bücher.example" -> "ana@xn--bcher-kva.example"). Unchanged
    when it is ASCII, or when its local part is not (only SMTPUTF8 carries that)."""
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address


def split(address: str) -> tuple[str, str]:
    local, _, domain = address.strip().strip("<>").rpartition("@")
    return local.lower(), domain.lower()


_ANY_ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+")


def without_addresses(text: str) -> str:
    """A mail server's words for the log: they often quote the recipient's real address."""
    return _ANY_ADDRESS.sub("<address>", text)
