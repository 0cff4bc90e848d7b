"""The relay behind a real Postfix, configured by deploy/postfix/install.sh.

Every test runs the whole deployment on loopback: Debian's Postfix (a private instance, see
tests/support/postfix.py) in front, the relay in mode "relay" checking SPF, DKIM and DMARC
against a real DNS server, and a real SMTP sink standing for the rest of the internet, where
Postfix delivers what the relay sends through it. The writers connect from 127.0.0.2, Postfix
from 127.0.0.1: an SPF pass for 127.0.0.2 can only come from the address Postfix forwarded
(XFORWARD), never from Postfix's own.
"""

from __future__ import annotations

import json
import smtplib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import dkim
import pytest

from relay import replies
from tests.conftest import (
    DOMAIN,
    MODERATOR_A,
    Pals,
    Relay,
    Smarthost,
    enroll_pals,
    letter_bytes,
    moderator_reply,
    wait_for,
)
from tests.support.dkim_keys import Signer
from tests.support.dns import dns_server
from tests.support.dovecot import free_port
from tests.support.postfix import PostfixFront, postfix_front, postfix_instance

FAMILY = "family-mail.example.net"  # Maya's provider
RIVERSIDE = "riverside-library.example.org"  # the moderators' domain
WRITER_IP = "127.0.0.2"  # where the writers' servers connect from


@dataclass
class Deployment:
    relay: Relay
    postfix: PostfixFront
    sink: Smarthost  # the internet beyond Postfix
    pals: Pals
    keys: dict[str, Signer]

    def send(self, envelope_from: str, to: str, raw: bytes) -> None:
        """As the writer's own mail server: to Postfix's public port, from 127.0.0.2."""
        with smtplib.SMTP(
            "127.0.0.1", self.postfix.port, timeout=20, source_address=(WRITER_IP, 0)
        ) as client:
            client.sendmail(envelope_from, [to], raw)

    def received(self, to: str) -> list[EmailMessage]:
        return [r.message for r in self.sink.received if r.to(to)]

    def notice(self, letter_id: int) -> EmailMessage:
        def found() -> list[EmailMessage]:
            return [
                m
                for m in self.received(MODERATOR_A)
                if str(m["Message-ID"]).startswith(f"<notice-{letter_id}.")
            ]

        return wait_for(found, 30, f"the notice of letter {letter_id}")[0]

    def held(self, subject: str) -> dict[str, Any]:
        found = wait_for(
            lambda: [q for q in self.relay.queue() if q["subject"] == subject],
            30,
            f"the letter {subject!r} held",
        )
        return self.relay.letter(int(found[0]["id"]))

    def refused_replies(self) -> list[dict[str, Any]]:
        audit = self.relay.context().store.audit_log()
        return [e for e in audit if e["event"] == "reply-refused"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Signer]:
    folder = tmp_path_factory.mktemp("keys")
    return {domain: Signer(folder, domain) for domain in (FAMILY, RIVERSIDE)}


@pytest.fixture
def deployment(
    relay_factory: Callable[..., Relay], keys: dict[str, Signer]
) -> Iterator[Deployment]:
    zone = {signer.name: [signer.record] for signer in keys.values()}
    zone.update(
        {
            FAMILY: [f"v=spf1 ip4:{WRITER_IP} -all"],
            f"_dmarc.{FAMILY}": ["v=DMARC1; p=reject"],
            RIVERSIDE: ["v=spf1 ip4:192.0.2.1 -all"],  # its own servers, not this machine
            f"_dmarc.{RIVERSIDE}": ["v=DMARC1; p=reject"],
        }
    )
    outbound_port = free_port()
    with dns_server(zone, zones=["example.org", "example.net"]) as resolver:
        sink = Smarthost([])
        try:
            relay = relay_factory(
                transport="smtp",
                smarthost=f"127.0.0.1:{outbound_port}",
                extra_smtp='policy_listen = "127.0.0.1:0"',
                authentication=(
                    f'mode = "relay"\nresolvers = ["{resolver}"]\nfront_servers = ["127.0.0.1"]'
                ),
            )
            pals = enroll_pals(relay)
            relay.start()
            ready = json.loads((relay.data_dir / "run" / "serve.json").read_text())
            with postfix_front(
                DOMAIN,
                relay=f"127.0.0.1:{relay.port}",
                policy=ready["policy"],
                outbound_port=outbound_port,
                onward=f"127.0.0.1:{sink.port}",
            ) as postfix:
                yield Deployment(relay, postfix, sink, pals, keys)
                if relay.process is not None:
                    relay.stop()
        finally:
            sink.close()


def _relay_record(relay: Relay) -> Callable[..., bytes | None]:
    """A DNS lookup for dkimpy answering the record `penpal-relay dkim record` prints."""
    out = relay.cli("dkim", "record").stdout
    name = next(line for line in out.splitlines() if line.strip().startswith("name:"))
    value = next(line for line in out.splitlines() if line.strip().startswith("value:"))
    published = {name.split(":", 1)[1].strip().rstrip("."): value.split(":", 1)[1].strip()}

    def txt(query: bytes, timeout: float = 5) -> bytes | None:
        found = published.get(query.decode().rstrip("."))
        return found.encode() if found else None

    return txt


def _notice_address(notice: EmailMessage) -> str:
    return str(notice["From"].addresses[0].addr_spec)


def test_a_signed_letter_goes_through_postfix_is_held_approved_and_leaves_signed(
    deployment: Deployment,
) -> None:
    d = deployment
    raw = letter_bytes(d.pals.maya.email, d.pals.tomas.masked, subject="Hello", verified=False)
    d.send(d.pals.maya.email, d.pals.tomas.masked, d.keys[FAMILY].sign(raw))

    letter = d.held("Hello")
    assert letter["sender_check"] == "verified"
    results = letter["sender_results"]
    # SPF passed for 127.0.0.2: the writer's address as Postfix forwarded it.
    assert f"spf=pass smtp.mailfrom={FAMILY}" in results
    assert f"dkim=pass header.d={FAMILY}" in results and "dmarc=pass" in results

    d.relay.cli("queue", "approve", str(letter["id"]), "--by", MODERATOR_A)
    delivered = wait_for(lambda: d.received(d.pals.tomas.email), 30, "the letter delivered")[0]
    # It went out through Postfix (its Received line) and arrives signed by the relay.
    assert "by mx.test.example.org (Postfix)" in str(delivered["Received"])
    assert delivered["DKIM-Signature"] is not None and f"d={DOMAIN}" in str(
        delivered["DKIM-Signature"]
    )
    assert dkim.verify(delivered.as_bytes(policy=SMTP), dnsfunc=_relay_record(d.relay))
    assert d.pals.maya.email not in delivered.as_string()
    assert d.postfix.queued() == []


def test_postfix_refuses_unknown_and_unpaired_recipients_at_rcpt_without_a_bounce(
    deployment: Deployment,
) -> None:
    d = deployment
    raw = letter_bytes("stranger@elsewhere.example.net", "nobody@" + DOMAIN, verified=False)
    for sender, to in (
        ("stranger@elsewhere.example.net", "nobody@" + DOMAIN),
        ("stranger@elsewhere.example.net", d.pals.tomas.masked),  # not enrolled
        (d.pals.maya.email, "made-up-fox-42@" + DOMAIN),
    ):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            d.send(sender, to, raw)
        code, text = refused.value.recipients[to]
        # Postfix's words around the relay's own: "5.1.1 <to>: Recipient address rejected: ..."
        status, _, words = replies.UNKNOWN_ADDRESS.partition(" ")
        assert code == int(status) and text.decode().endswith(words.partition(" ")[2])
    # Refused by Postfix itself, during the writer's session: nothing queued, no bounce.
    assert d.postfix.queued() == []
    assert d.postfix.log().count("NOQUEUE: reject: RCPT") == 3
    assert d.sink.received == []
    refusals = [e for e in d.relay.context().store.audit_log() if e["event"] == "refused-recipient"]
    assert len(refusals) == 3 and {e["peer"] for e in refusals} == {WRITER_IP}
    assert "via=postfix" in d.relay.log()


def test_while_the_relay_is_down_postfix_asks_writers_to_try_again_later(
    deployment: Deployment,
) -> None:
    d = deployment
    d.relay.stop()
    raw = letter_bytes(d.pals.maya.email, d.pals.tomas.masked, verified=False)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        d.send(d.pals.maya.email, d.pals.tomas.masked, raw)
    code, text = refused.value.recipients[d.pals.tomas.masked]
    assert code == 451 and "try again later" in text.decode()
    assert d.postfix.queued() == []
    # Mail this Postfix relays for its own network to other domains is not held up.
    d.send("clerk@library.example.org", "friend@elsewhere.example.net", raw)
    wait_for(lambda: d.received("friend@elsewhere.example.net"), 30, "other mail relayed")


def test_a_forged_authentication_results_is_removed_and_the_forged_approval_refused(
    deployment: Deployment,
) -> None:
    d = deployment
    claim = f"{DOMAIN}; spf=pass smtp.mailfrom={RIVERSIDE}; dmarc=pass header.from={RIVERSIDE}"
    forged_letter = letter_bytes(
        d.pals.maya.email,
        d.pals.tomas.masked,
        subject="Forged header",
        headers={"Authentication-Results": f"mx.{claim}"},
        verified=False,
    )
    d.send(d.pals.maya.email, d.pals.tomas.masked, d.keys[FAMILY].sign(forged_letter))
    letter = d.held("Forged header")
    record = d.relay.context().store.letter(letter["id"])
    assert record is not None
    original = d.relay.context().spool.original(record.spool_id)
    assert b"Subject: Forged header" in original
    assert b"Authentication-Results" not in original  # Postfix removed it on the way in

    # Someone else replies "Approve" as Ana, with a pass claimed in our name.
    notice = d.notice(letter["id"])
    forged = moderator_reply(notice, results=[claim]).as_bytes()
    d.send("attacker@evil.example.net", _notice_address(notice), forged)
    wait_for(lambda: d.refused_replies(), 30, "the forged approval refused")
    assert d.relay.letter(letter["id"])["status"] == "held"

    # Ana's own reply, signed by her library's server, approves.
    genuine = d.keys[RIVERSIDE].sign(moderator_reply(notice).as_bytes())
    d.send(MODERATOR_A, _notice_address(notice), genuine)
    wait_for(
        lambda: d.relay.letter(letter["id"])["status"] in ("approved", "delivered"),
        30,
        "the genuine approval",
    )
    assert len(d.refused_replies()) == 1


def test_install_sh_run_again_changes_nothing(deployment: Deployment) -> None:
    postfix = deployment.postfix
    main_cf = (postfix.config_dir / "main.cf").read_text()
    settings = postfix.postconf("-n")
    said = postfix.install()
    assert f"Postfix configured in {postfix.config_dir} for {DOMAIN}" in said
    assert (postfix.config_dir / "main.cf").read_text() == main_cf
    assert postfix.postconf("-n") == settings
    master = (postfix.config_dir / "master.cf").read_text()
    assert master.count("# penpal-relay begin") == 1 and master.count("penpal    unix") == 1


HEADERS_REMOVED = [
    ("Authentication-Results: letters.library-pals.example; dmarc=pass", True),
    ("Authentication-Results: (forged) MX.Letters.Library-Pals.Example; spf=pass", True),
    ("Authentication-Results:\tmx.letters.library-pals.example 1; dkim=pass", True),
    ("Authentication-Results:\n\tmx.letters.library-pals.example; dkim=pass", True),
    ("Authentication-Results: letters.library-pals.example.evil.example; dkim=pass", False),
    ("Authentication-Results: notletters.library-pals.example; dkim=pass", False),
    ("Authentication-Results: lettersXlibrary-pals.example; dkim=pass", False),
    ("Authentication-Results: mx.google.com; dkim=pass header.d=example.net", False),
]


def test_install_sh_writes_header_checks_for_the_programs_own_domain() -> None:
    """Another domain than the shipped one (its dots must stay literal in the pattern),
    each header judged by Postfix's own table lookup with header semantics."""
    with postfix_instance() as postfix:
        postfix.install_args = ("letters.library-pals.example", "--no-start")
        postfix.install()
        table = postfix.config_dir / "penpal-header-checks"
        assert postfix.postconf("-h", "header_checks").strip() == f"regexp:{table}"
        for header, removed in HEADERS_REMOVED:
            looked_up = subprocess.run(
                ["postmap", "-h", "-q", "-", f"regexp:{table}"],
                input=header + "\n",
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert ("IGNORE" in looked_up.stdout) is removed, header
        transport = (postfix.config_dir / "penpal-transport").read_text()
        assert "letters.library-pals.example    penpal:[127.0.0.1]:2525" in transport


def test_install_sh_refuses_what_is_not_a_domain() -> None:
    with postfix_instance() as postfix:
        for bad in ("", "pals example org", "-x", "pals.example.org."):
            postfix.install_args = (bad, "--no-start") if bad else ("--no-start",)
            with pytest.raises(subprocess.CalledProcessError) as failed:
                postfix.install()
            assert failed.value.returncode == 2


def test_install_sh_takes_the_programs_domain_out_of_local_delivery() -> None:
    """Debian's installer lists the "system mail name" in mydestination: were that the
    program's domain, Postfix would deliver pals' letters to local mailboxes."""
    with postfix_instance() as postfix:
        postfix.postconf("-e", f"mydestination = $myhostname, {DOMAIN.upper()}, localhost")
        postfix.install_args = (DOMAIN, "--no-start")
        said = postfix.install()
        assert f"{DOMAIN} removed from mydestination" in said
        assert postfix.postconf("-h", "mydestination").strip() == "$myhostname, localhost"

        # Named through a variable, it cannot be taken out safely: a clear refusal.
        postfix.postconf("-e", f"myhostname = mx.{DOMAIN}", "mydestination = $mydomain")
        with pytest.raises(subprocess.CalledProcessError) as failed:
            postfix.install()
        assert failed.value.returncode == 1
        assert f"mydestination still names {DOMAIN}" in failed.value.stderr
