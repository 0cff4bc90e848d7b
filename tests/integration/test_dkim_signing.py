"""Every message the relay sends carries a DKIM signature that verifies against the record
`penpal-relay dkim record` prints, published by a real DNS server on loopback; a message
changed after signing does not verify."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dkim
import dns.resolver
import pytest

from tests.conftest import (
    DOMAIN,
    JANUARY,
    MODERATOR_A,
    TOMAS,
    Pals,
    Relay,
    Smarthost,
    enroll_pals,
    letter_bytes,
)
from tests.support.dns import dns_server
from tests.support.waiting import wait_for

GUARDIAN = "parent.smith@family-mail.example.net"


@dataclass(frozen=True)
class Published:
    """The record as `dkim record` printed it, and a DNS lookup for dkimpy that asks the
    loopback server publishing it."""

    name: str
    value: str
    resolver: dns.resolver.Resolver

    def txt(self, name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = self.resolver.resolve(name.decode().rstrip("."), "TXT")
        except dns.resolver.NXDOMAIN:
            return None
        return b"".join(b"".join(rdata.strings) for rdata in answer)

    def verifies(self, message: bytes) -> bool:
        return bool(dkim.verify(message, dnsfunc=self.txt))


def printed_record(relay: Relay) -> tuple[str, str]:
    """Name and value from the zone-file line of `penpal-relay dkim record`."""
    out = relay.cli("dkim", "record").stdout
    line = next(line for line in out.splitlines() if " IN TXT " in line)
    name = line.split()[0].rstrip(".")
    strings = re.findall(r'"([^"]*)"', line)
    assert strings and all(len(s) <= 255 for s in strings)
    value = "".join(strings)
    assert f"  value: {value}" in out and f"  name:  {name}" in out
    return name, value


@pytest.fixture
def publish() -> Iterator[Callable[[Relay], Published]]:
    servers = []

    def start(relay: Relay) -> Published:
        name, value = printed_record(relay)
        server = dns_server({name: [value]}, zones=[DOMAIN])
        host, port = server.__enter__().split(":")
        servers.append(server)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port, resolver.lifetime = [host], int(port), 5
        return Published(name, value, resolver)

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def delivered_bytes(maildir: Path, to: str) -> list[bytes]:
    """The Maildir files delivered to `to`, byte for byte as they lie on disk."""
    found = []
    for path in sorted((maildir / "new").glob("*")):
        raw = path.read_bytes()
        if email.message_from_bytes(raw, policy=email.policy.default)["Delivered-To"] == to:
            found.append(raw)
    return found


def signed_headers(raw: bytes) -> list[str]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    (signature,) = message.get_all("DKIM-Signature")
    tags = dict(
        tag.strip().split("=", 1) for tag in re.sub(r"\s+", "", signature).split(";") if tag
    )
    assert tags["d"] == DOMAIN and tags["s"] == "penpal1"
    assert tags["a"] == "rsa-sha256" and tags["c"] == "relaxed/relaxed"
    return tags["h"].split(":")


def approve_one_letter(relay: Relay, pals: Pals) -> None:
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    (held,) = relay.wait_held(1)
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)


def test_letters_notices_and_prompts_verify_as_delivered(
    relay_factory: Callable[..., Relay], publish: Callable[[Relay], Published]
) -> None:
    relay = relay_factory(extra_sections=JANUARY)
    pals = enroll_pals(relay)
    relay.cli("participants", "guardian", pals.maya.masked, GUARDIAN)
    relay.start()
    published = publish(relay)
    assert published.name == f"penpal1._domainkey.{DOMAIN}"
    assert f"publish the TXT record {published.name}" in relay.log()

    approve_one_letter(relay, pals)
    relay.cli("prompts", "send", "--month", "2027-01")
    kinds = {
        "letter": lambda: delivered_bytes(relay.maildir, pals.tomas.email),
        "guardian's copy": lambda: delivered_bytes(relay.maildir, GUARDIAN),
        "held-letter notice": lambda: delivered_bytes(relay.maildir, MODERATOR_A),
        "prompt": lambda: delivered_bytes(relay.maildir, pals.maya.email),
    }
    for what, found in kinds.items():
        for raw in wait_for(found, what=what):
            assert b"\r\n" not in raw  # the Maildir copy has LF line ends: still verifies
            assert published.verifies(raw), what
            headers = signed_headers(raw)
            assert headers.count("from") == 2, what  # over-signed: no From can be added
            assert {"to", "subject", "date", "message-id", "mime-version"} <= set(headers)
    (prompt,) = delivered_bytes(relay.maildir, pals.maya.email)
    assert {"list-unsubscribe", "list-unsubscribe-post", "auto-submitted"} <= set(
        signed_headers(prompt)
    )


def test_a_message_changed_after_signing_fails(
    relay: Relay, pals: Pals, publish: Callable[[Relay], Published]
) -> None:
    relay.start()
    published = publish(relay)
    approve_one_letter(relay, pals)
    (raw,) = wait_for(lambda: delivered_bytes(relay.maildir, pals.tomas.email), what="letter")
    assert published.verifies(raw)
    head, _, body = raw.partition(b"\n\n")
    changed = {
        "subject changed": raw.replace(b"Subject: Hello", b"Subject: Urgent"),
        "second From": head + b"\nFrom: Ana <ana@elsewhere.example.net>\n\n" + body,
        "Reply-To added": head + b"\nReply-To: someone@elsewhere.example.net\n\n" + body,
        "body changed": raw.replace(b"school", b"schol"),
    }
    for what, message in changed.items():
        assert message != raw, what
        assert not published.verifies(message), what


def test_smtp_copy_verifies_and_a_retry_is_signed_again(
    relay_factory: Callable[..., Relay], publish: Callable[[Relay], Published]
) -> None:
    smarthost = Smarthost(["451 4.3.0 try again later"], for_rcpt=TOMAS)
    try:
        relay = relay_factory(transport="smtp", smarthost=f"127.0.0.1:{smarthost.port}")
        pals = enroll_pals(relay)
        relay.start()
        published = publish(relay)
        approve_one_letter(relay, pals)
        (received,) = wait_for(
            lambda: [r for r in smarthost.received if r.to(pals.tomas.email)], what="letter"
        )
        assert smarthost.attempts == 2  # refused once, then sent again, signed again
        assert b"\r\n" in received.data and received.data.count(b"\n") == received.data.count(
            b"\r\n"
        )
        assert published.verifies(received.data)
        assert signed_headers(received.data).count("from") == 2
    finally:
        smarthost.close()


def test_signing_off_sends_unsigned_and_makes_no_key(relay_factory: Callable[..., Relay]) -> None:
    relay = relay_factory(extra_sections="[dkim]\nsign = false\n")
    pals = enroll_pals(relay)
    relay.start()
    approve_one_letter(relay, pals)
    (raw,) = wait_for(lambda: delivered_bytes(relay.maildir, pals.tomas.email), what="letter")
    assert b"DKIM-Signature" not in raw
    assert not (relay.data_dir / "dkim").exists()
    assert "signing is off" in relay.log()
    refused = relay.cli("dkim", "record", check=False)
    assert refused.returncode == 1 and "sign = false" in refused.stderr
