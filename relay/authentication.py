"""One verdict per incoming message: who vouches that it comes from the address it claims.

Two ways to know, one result. In mode "front" the mail server in front of the relay checked
SPF, DKIM and DMARC and wrote an Authentication-Results header: the topmost one with a
trusted authserv-id counts, and only on mail that came over SMTP from one of
`front_servers` (for IMAP intake the mailbox provider is the front). In mode "relay" the
relay checks them itself at the end of DATA (SPF with pyspf, every DKIM signature with
dkimpy, DMARC as RFC 7489 says) asking the configured resolvers, and writes its own
Authentication-Results (authserv-id: the relay's domain). Either way the verdict is a
`Verdict`, kept on the spool marker (`Incoming.verdict`) so every later stage (held letters,
emailed decisions, staff lists) reads the same one and staff can see it.

Cost: in mode "front" a header parse. In mode "relay" a few DNS queries per message (SPF
record and includes, one key per DKIM signature, one or two DMARC records) and one RSA
verification per signature; it runs in a worker thread, never on the event loop. A DNS
failure is `temperror`, never an exception.

DMARC alignment follows RFC 7489 3.1: relaxed (the default) when both domains have the same
organizational domain (public suffix list), strict when they are equal. So a DMARC record
at `example.org` with the default `adkim=r` lets an `example.org` signature vouch for
`library.example.org`: the domain's owner said so by publishing that policy. Without a DMARC
record nothing but an exact domain counts.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any

import dkim
import dns.exception
import dns.nameserver
import dns.resolver
import spf
from publicsuffixlist import PublicSuffixList

from relay import replies
from relay.addresses import normalize
from relay.authresults import (
    AuthenticationResults,
    Result,
    Verdict,
    domain_of,
    parse,
    topmost_trusted,
    written,
)
from relay.config import AuthenticationSettings, Config, HostPort
from relay.context import Context
from relay.spool import Incoming

log = logging.getLogger("relay")

DNS_TIMEOUT = 1.5  # seconds to wait for one server's answer
DNS_LIFETIME = 3.0  # seconds for one lookup, retries and every server included


# --- the verdict, at intake ---------------------------------------------------------------


def verdict(config: Config, raw: bytes, incoming: Incoming) -> Verdict:
    """The one verdict on a message accepted by SMTP or IMAP (blocking in mode "relay")."""
    settings = config.authentication
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)  # only two fields: cheap
    sender = from_address(headers.get_all("From", []))
    if settings.mode == "relay" and incoming.via == "smtp":
        results = checked_here(settings, config.relay.domain, raw, incoming, sender)
        return Verdict("relay", sender, results)
    if incoming.via == "smtp" and not settings.from_front(incoming.peer):
        claims = sum(1 for _ in _trusted_claims(headers, settings))
        if claims:
            log.info("ignored %d Authentication-Results not written by a front server", claims)
        return Verdict("front", sender, "")
    found, others = topmost_trusted(list(_trusted_claims(headers, settings)), _ids(settings))
    if others:
        log.info("ignored %d Authentication-Results below the front server's own", others)
    return Verdict("front", sender, _value(found) if found else "")


def verify_sender(ctx: Context, raw: bytes, incoming: Incoming) -> tuple[Incoming, str]:
    """At the end of DATA (blocking): the marker with its verdict, and the reply refusing
    a patron's letter under `patron_policy = "refuse"` ("" when it is accepted)."""
    found = verdict(ctx.config, bytes(raw), incoming)
    senders = [ctx.store.participant(route.sender) for route in incoming.routes]
    addresses = [p.email for p in senders if p is not None]
    return replace(incoming, verdict=found), refusal(ctx.config, found, addresses)


def refusal(config: Config, verdict: Verdict, senders: list[str]) -> str:
    """The reply refusing a patron's letter under `patron_policy = "refuse"`, or "".

    `senders` are the enrolled addresses of the letter's writers (one per found route)."""
    if config.authentication.patron_policy != "refuse" or not senders:
        return ""
    if all(verdict.vouches_for(address) for address in senders):
        return ""
    return replies.SENDER_UNVERIFIED_TRY_LATER if verdict.temporary else replies.SENDER_UNVERIFIED


def from_address(values: list[Any]) -> str:
    """The From line's one address, normalized; "" when there is none or more than one."""
    addresses = [a for _, a in getaddresses([str(v) for v in values]) if a]
    if len(addresses) != 1:
        return ""
    written_as = addresses[0]
    if written_as.isascii():  # what normalizing an ASCII address does, without its cost
        return written_as.lower()
    try:
        return normalize(written_as)
    except ValueError:
        return written_as.lower()


def _ids(settings: AuthenticationSettings) -> tuple[str, ...]:
    return tuple(i.lower() for i in settings.trusted_authserv_ids)


def _trusted_claims(headers: Any, settings: AuthenticationSettings) -> Iterator[str]:
    """Authentication-Results headers claiming a trusted authserv-id, topmost first."""
    ids = _ids(settings)
    for value in headers.get_all("Authentication-Results", []):
        parsed = parse(str(value))
        if parsed is not None and parsed.authserv_id in ids:
            yield str(value)


def _value(results: AuthenticationResults) -> str:
    """The header as kept: properties naming a person (smtp.mailfrom=ana@…) keep the domain."""
    kept = [
        Result(r.method, r.result, {k: v.rpartition("@")[2] for k, v in r.properties.items()})
        for r in results.results
    ]
    return written(results.authserv_id, kept)


# --- the relay's own checks (mode "relay") ------------------------------------------------


class DnsTrouble(Exception):
    """A lookup failed for a reason other than "no such record"."""


@functools.lru_cache(maxsize=8)
def _resolver(resolvers: tuple[HostPort, ...]) -> dns.resolver.Resolver:
    if resolvers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(r.host, r.port) for r in resolvers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = DNS_TIMEOUT
    resolver.lifetime = DNS_LIFETIME
    return resolver


class Dns:
    """The lookups of one message's checks. After one lookup failed (not "no such name":
    no answer at all) the others fail at once: the sender hears "try later" in seconds,
    not after every lookup's timeout."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver
        self.down = False

    def query(self, name: str, qtype: str) -> dns.resolver.Answer | None:
        """The answer; None when the name or the record does not exist."""
        if self.down:
            raise DnsTrouble("an earlier lookup failed")
        try:
            return self.resolver.resolve(name, qtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.DNSException as error:
            self.down = True
            raise DnsTrouble(type(error).__name__) from None

    def txt(self, name: str) -> list[bytes]:
        """The TXT records of `name` (each joined from its strings); [] when there are none."""
        answer = self.query(name, "TXT")
        return [b"".join(rdata.strings) for rdata in answer] if answer is not None else []


# pyspf looks names up through a module-level function that asks dnspython's default resolver
# with a call newer dnspython deprecates; the relay gives it one asking the configured
# resolvers instead. The lookups are per thread, as checks run in worker threads.
_spf_local = threading.local()


def _spf_lookup(name: str, qtype: str, strict: bool = True, timeout: float = 20) -> list[Any]:
    lookups: Dns = _spf_local.dns
    try:
        answer = lookups.query(name, qtype)
    except DnsTrouble as error:
        raise spf.TempError(f"DNS {error}") from None
    found: list[Any] = []
    if answer is None:
        return found
    for rdata in answer:
        if qtype in ("A", "AAAA"):
            found.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            found.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            found.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            found.append(((name, qtype), rdata.strings))
    return found


spf.DNSLookup = _spf_lookup


def check_spf(lookups: Dns, peer: str, helo: str, mail_from: str) -> Result:
    """RFC 7208 for the MAIL FROM identity (the HELO one for the null sender)."""
    sender = mail_from.strip("<>") or (f"postmaster@{helo}" if helo else "")
    domain = domain_of(sender)
    try:
        ipaddress.ip_address(peer)
    except ValueError:
        return Result("spf", "none", {"smtp.mailfrom": domain} if domain else {})
    if not domain:
        return Result("spf", "none", {})
    _spf_local.dns = lookups
    try:
        result, _code, _why = spf.query(peer, sender, helo, timeout=DNS_LIFETIME).check()
    except Exception:  # pyspf on garbage it did not expect: no answer, not a crash
        log.exception("SPF check failed")
        result = "temperror"
    return Result("spf", str(result), {"smtp.mailfrom": domain})


_DKIM_SIGNATURE = re.compile(rb"^dkim-signature\s*:", re.IGNORECASE | re.MULTILINE)


class _KeyLookup:
    """dkimpy's lookup of a public key, through our resolver; remembers a DNS failure."""

    def __init__(self, lookups: Dns) -> None:
        self.lookups = lookups
        self.failed = False

    def __call__(self, name: bytes, timeout: float = DNS_LIFETIME) -> bytes | None:
        try:
            found = self.lookups.txt(name.decode("ascii", "replace").rstrip("."))
        except DnsTrouble:
            self.failed = True
            return None
        return found[0] if found else None


def check_dkim(lookups: Dns, raw: bytes) -> list[Result]:
    """Every DKIM signature of the message, in order (RFC 6376)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    results: list[Result] = []
    count = len(_DKIM_SIGNATURE.findall(head))
    if not count:
        return [Result("dkim", "none", {})]
    checker = dkim.DKIM(raw, timeout=int(DNS_LIFETIME))  # parsed once for every signature
    for index in range(count):
        lookup = _KeyLookup(lookups)
        try:
            good = bool(checker.verify(idx=index, dnsfunc=lookup))
        except Exception:  # dkimpy raises on some malformed signatures
            good = False
        signer = _signing_domain(checker, index)
        outcome = "pass" if good else ("temperror" if lookup.failed else "fail")
        results.append(Result("dkim", outcome, {"header.d": signer} if signer else {}))
    return results


def _signing_domain(checker: dkim.DKIM, index: int) -> str:
    try:
        headers = [v for k, v in checker.headers if k.lower() == b"dkim-signature"]
        tags = dkim.util.parse_tag_value(headers[index])
        return bytes(tags.get(b"d", b"")).decode("ascii", "replace").strip().lower()
    except Exception:
        return ""


@functools.lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """RFC 7489 3.2: the registered domain (one label below the public suffix)."""
    return _public_suffixes().privatesuffix(domain) or domain


def _dmarc_record(lookups: Dns, domain: str) -> dict[str, str] | None:
    """RFC 7489 6.6.3: the From domain's policy, else its organizational domain's."""
    for name in dict.fromkeys((domain, organizational_domain(domain))):
        records = [r for r in lookups.txt(f"_dmarc.{name}") if _is_dmarc(r)]
        if len(records) == 1:
            text = records[0].decode("ascii", "replace")
            return {
                k.strip().lower(): v.strip().lower()
                for k, _, v in (part.partition("=") for part in text.split(";"))
                if k.strip()
            }
    return None


def _is_dmarc(record: bytes) -> bool:
    return record.replace(b" ", b"").lower().startswith(b"v=dmarc1;") or record.strip() in (
        b"v=DMARC1",
    )


def _aligned(domain: str, identifier: str, mode: str) -> bool:
    if not identifier:
        return False
    if mode == "s":
        return identifier == domain
    return organizational_domain(identifier) == organizational_domain(domain)


def check_dmarc(
    lookups: Dns, sender: str, spf_result: Result, dkim_results: list[Result]
) -> Result:
    """RFC 7489: pass when an SPF or DKIM pass is aligned with the From domain."""
    domain = domain_of(sender)
    if not domain:
        return Result("dmarc", "none", {})
    try:
        record = _dmarc_record(lookups, domain)
    except DnsTrouble:
        return Result("dmarc", "temperror", {"header.from": domain})
    if record is None:
        return Result("dmarc", "none", {"header.from": domain})
    spf_domain = spf_result.properties.get("smtp.mailfrom", "")
    aligned = spf_result.result == "pass" and _aligned(domain, spf_domain, record.get("aspf", "r"))
    aligned = aligned or any(
        r.result == "pass"
        and _aligned(domain, r.properties.get("header.d", ""), record.get("adkim", "r"))
        for r in dkim_results
    )
    return Result("dmarc", "pass" if aligned else "fail", {"header.from": domain})


def checked_here(
    settings: AuthenticationSettings, domain: str, raw: bytes, incoming: Incoming, sender: str
) -> str:
    """SPF, DKIM and DMARC checked by the relay: its own Authentication-Results value."""
    lookups = Dns(_resolver(settings.resolvers))
    # Behind a front server, the client it forwarded (XFORWARD) is the one SPF is about.
    forwarded = bool(incoming.client)
    client = incoming.client if forwarded else incoming.peer
    helo = incoming.client_helo if forwarded else incoming.helo
    spf_result = check_spf(lookups, client, helo, incoming.mail_from)
    dkim_results = check_dkim(lookups, raw)
    dmarc_result = check_dmarc(lookups, sender, spf_result, dkim_results)
    return written(domain, [spf_result, *dkim_results, dmarc_result])
