"""Trust at the edges: who vouches that a message comes from the address it claims.

Every test runs the real relay and speaks real SMTP to it. In mode "front" the test client
plays the front server (it connects from 127.0.0.1, listed in `front_servers`, and writes
the Authentication-Results a front server would). In mode "relay" the relay checks SPF, DKIM
and DMARC itself against a real DNS server on loopback, on messages signed here with keys
made for the test and published as TXT records.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from relay import replies
from tests.conftest import (
    FRONT_AUTHSERV_ID,
    MODERATOR_A,
    Pals,
    Relay,
    enroll_pals,
    letter_bytes,
    moderator_reply,
    wait_for,
)
from tests.support.dkim_keys import Signer
from tests.support.dns import dns_server

TRUSTED = FRONT_AUTHSERV_ID
RIVERSIDE = "riverside-library.example.org"  # the moderators' domain
FAMILY = "family-mail.example.net"  # Maya's domain
ZONES = ["example.org", "example.net"]


# --- helpers -------------------------------------------------------------------------------


def _notice(relay: Relay, letter_id: int) -> EmailMessage:
    def found() -> list[EmailMessage]:
        return [
            m
            for m in relay.delivered(MODERATOR_A)
            if m["Message-ID"].startswith(f"<notice-{letter_id}.")
        ]

    return wait_for(found, what=f"notice of letter {letter_id}")[0]


def _hold_one(relay: Relay, pals: Pals, subject: str, headers: dict[str, str] | None = None) -> int:
    """A letter from Maya carrying only the Authentication-Results in `headers`."""
    raw = letter_bytes(
        pals.maya.email, pals.tomas.masked, subject=subject, headers=headers, verified=False
    )
    relay.send(pals.maya.email, [pals.tomas.masked], raw)
    held = wait_for(lambda: [q for q in relay.queue() if q["subject"] == subject])[0]
    return int(held["id"])


def _send(relay: Relay, envelope_from: str, message: EmailMessage | bytes, to: str) -> None:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    relay.send(envelope_from, [to], raw)


def _to(notice: EmailMessage) -> str:
    return str(notice["From"].addresses[0].addr_spec)


def _refused(relay: Relay, reason: str = "unauthenticated") -> list[dict[str, Any]]:
    return [
        e
        for e in relay.context().store.audit_log()
        if e["event"] == "reply-refused" and e.get("reason") == reason
    ]


def _assert_not_approved(relay: Relay, letter_id: int, refusals: int = 1) -> None:
    wait_for(lambda: len(_refused(relay)) >= refusals, what="the reply refused")
    assert relay.letter(letter_id)["status"] == "held"
    assert not [e for e in relay.context().store.audit_log() if e["event"] == "approved"]


def _approved(relay: Relay, letter_id: int) -> None:
    wait_for(
        lambda: relay.letter(letter_id)["status"] in ("approved", "delivered"),
        what=f"letter {letter_id} approved",
    )


def _results(domain: str, **results: str) -> str:
    """A front server's header: results for `domain` (spf, dkim, dmarc)."""
    parts = [TRUSTED]
    for method, outcome in results.items():
        prop = {"spf": "smtp.mailfrom", "dkim": "header.d", "dmarc": "header.from"}[method]
        parts.append(f"{method}={outcome} {prop}={domain}")
    return "; ".join(parts)


def _a_letter_held_and_its_notice(relay: Relay) -> tuple[int, EmailMessage]:
    """Start the relay with the pals enrolled; Maya's letter is held; its notice to Ana."""
    pals = enroll_pals(relay)
    relay.start()
    letter_id = _hold_one(relay, pals, "Hello")
    return letter_id, _notice(relay, letter_id)


# --- mode "front": the attacks seen, replayed end to end -----------------------------------


@pytest.fixture
def front(relay_factory: Callable[..., Relay]) -> Relay:
    return relay_factory()


def test_a_trusted_header_written_by_a_client_not_the_front_server_counts_for_nothing(
    relay_factory: Callable[..., Relay],
) -> None:
    """Attack a: a direct connection (the peer is not a front server) brings its own
    trusted-looking header; the envelope is the attacker's."""
    relay = relay_factory(authentication='front_servers = ["192.0.2.0/24"]')
    pals = enroll_pals(relay)
    relay.start()
    # the letter itself comes in unverified on this relay: it is held with the flag
    letter_id = _hold_one(relay, pals, "Hello")
    notice = _notice(relay, letter_id)
    forged = moderator_reply(
        notice, results=[_results(RIVERSIDE, spf="pass", dkim="pass", dmarc="pass")]
    )
    _send(relay, "attacker@evil.example.net", forged, _to(notice))
    _assert_not_approved(relay, letter_id)
    assert "ignored 1 Authentication-Results not written by a front server" in relay.log()
    assert "evil.example.net" not in relay.log()


def test_b_only_the_topmost_trusted_header_counts(front: Relay) -> None:
    """Attack b: the front server's own header (on top) says fail; one below says pass."""
    letter_id, notice = _a_letter_held_and_its_notice(front)
    reply = moderator_reply(
        notice,
        results=[
            _results(RIVERSIDE, spf="fail", dmarc="fail"),
            _results(RIVERSIDE, spf="pass", dkim="pass", dmarc="pass"),
        ],
    )
    _send(front, MODERATOR_A, reply, _to(notice))
    _assert_not_approved(front, letter_id)
    assert "ignored 1 Authentication-Results below the front server's own" in front.log()


def test_c_a_parent_domains_signature_does_not_vouch_for_the_moderator(front: Relay) -> None:
    """Attack c: `dkim=pass header.d=example.org` for ana@riverside-library.example.org."""
    letter_id, notice = _a_letter_held_and_its_notice(front)
    reply = moderator_reply(notice, results=[f"{TRUSTED}; dkim=pass header.d=example.org"])
    _send(front, MODERATOR_A, reply, _to(notice))
    _assert_not_approved(front, letter_id)


def test_d_a_dmarc_pass_without_header_from_does_not_vouch(front: Relay) -> None:
    """Attack d: `dmarc=pass` naming no From domain."""
    letter_id, notice = _a_letter_held_and_its_notice(front)
    _send(
        front, MODERATOR_A, moderator_reply(notice, results=[f"{TRUSTED}; dmarc=pass"]), _to(notice)
    )
    _assert_not_approved(front, letter_id)


def test_the_front_servers_own_pass_on_top_approves_whatever_is_below(front: Relay) -> None:
    letter_id, notice = _a_letter_held_and_its_notice(front)
    reply = moderator_reply(
        notice,
        results=[
            _results(RIVERSIDE, spf="pass", dkim="pass", dmarc="pass"),
            _results(RIVERSIDE, dmarc="fail"),  # forged below: ignored
        ],
    )
    _send(front, MODERATOR_A, reply, _to(notice))
    _approved(front, letter_id)


def test_e_a_patrons_unverified_letter_is_held_with_a_flag_staff_see(front: Relay) -> None:
    """Attack e: a letter claiming Maya's address that her domain's DMARC fails."""
    pals = enroll_pals(front)
    front.start()
    forged = {"Authentication-Results": _results(FAMILY, spf="fail", dmarc="fail")}
    letter_id = _hold_one(front, pals, "Forged", headers=forged)
    genuine = {"Authentication-Results": _results(FAMILY, spf="pass", dkim="pass", dmarc="pass")}
    good_id = _hold_one(front, pals, "Genuine", headers=genuine)

    assert front.letter(letter_id)["sender_check"] == "unverified"
    assert front.letter(good_id)["sender_check"] == "verified"
    shown = front.cli("queue", "show", str(letter_id)).stdout
    assert "SENDER NOT VERIFIED" in shown and "check with the family" in shown
    assert "SENDER NOT VERIFIED" not in front.cli("queue", "show", str(good_id)).stdout
    assert "SENDER-NOT-VERIFIED" in front.cli("queue", "list").stdout

    notice = _notice(front, letter_id)
    assert "sender not verified" in notice["Subject"]
    text = notice.get_body(("plain",)).get_content()
    assert "we could not confirm this letter really comes from\nMaya's email account" in text
    html = notice.get_body(("html",)).get_content()
    assert "Sender not verified." in html
    assert "not verified" not in _notice(front, good_id)["Subject"]


def test_e_the_dashboard_shows_the_flag_on_the_queue_card_and_the_letter_page(
    front: Relay,
) -> None:
    from tests.browser.dashboard import Visitor, start_dashboard

    pals = enroll_pals(front)
    dashboard = start_dashboard(front)
    forged = {"Authentication-Results": _results(FAMILY, spf="fail", dmarc="fail")}
    letter_id = _hold_one(front, pals, "Forged", headers=forged)
    good = {"Authentication-Results": _results(FAMILY, dmarc="pass")}
    good_id = _hold_one(front, pals, "Genuine", headers=good)
    visitor = Visitor(dashboard)
    visitor.sign_in(MODERATOR_A)
    explanation = (
        "We could not confirm this letter really comes from Maya's email account. "
        "Check with the family before approving."
    )
    queue = visitor.request("/queue").text
    card = queue.split(f'id="letter-{letter_id}"')[1].split("</article>")[0]
    assert "Sender not verified" in card and explanation in card
    good_card = queue.split(f'id="letter-{good_id}"')[1].split("</article>")[0]
    assert "Sender not verified" not in good_card
    page = visitor.request(f"/letters/{letter_id}").text
    assert "Sender not verified" in page and explanation in page


def test_e_under_refuse_an_unverified_letter_is_refused_at_data_and_not_spooled(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory(authentication='front_servers = ["127.0.0.1"]\npatron_policy = "refuse"')
    pals = enroll_pals(relay)
    relay.start()
    forged = {"Authentication-Results": _results(FAMILY, spf="fail", dmarc="fail")}
    raw = letter_bytes(
        pals.maya.email, pals.tomas.masked, subject="Forged", headers=forged, verified=False
    )
    with pytest.raises(smtplib.SMTPDataError) as refused:
        relay.send(pals.maya.email, [pals.tomas.masked], raw)
    code, text = refused.value.smtp_code, refused.value.smtp_error.decode()
    assert f"{code} {text}" == replies.SENDER_UNVERIFIED
    assert "refused reason=sender-unverified peer=127.0.0.1" in relay.log()
    assert list((relay.data_dir / "spool" / "incoming").glob("*.eml")) == []
    genuine = {"Authentication-Results": _results(FAMILY, dmarc="pass")}
    _hold_one(relay, pals, "Genuine", headers=genuine)
    assert [q["subject"] for q in relay.queue()] == ["Genuine"]


# --- mode "relay": the relay's own SPF, DKIM and DMARC against real DNS --------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Signer]:
    folder = tmp_path_factory.mktemp("keys")
    return {d: Signer(folder, d) for d in (RIVERSIDE, "example.org", FAMILY)}


def _zone(keys: dict[str, Signer], **records: list[str]) -> dict[str, list[str]]:
    zone = {signer.name: [signer.record] for signer in keys.values()}
    zone.update(records)
    return zone


@pytest.fixture
def relay_mode(relay_factory: Callable[..., Relay]) -> Callable[[str], Relay]:
    def make(resolver: str, policy: str = "flag") -> Relay:
        return relay_factory(
            authentication=f'mode = "relay"\nresolvers = ["{resolver}"]\npatron_policy = "{policy}"'
        )

    return make


SPF_HERE = "v=spf1 ip4:127.0.0.1 -all"
SPF_ELSEWHERE = "v=spf1 ip4:192.0.2.1 -all"
DMARC_REJECT = "v=DMARC1; p=reject"


def _signed_reply(notice: EmailMessage, signer: Signer, **options: Any) -> bytes:
    return signer.sign(moderator_reply(notice, **options).as_bytes())


@pytest.fixture
def served_zone(keys: dict[str, Signer]) -> Iterator[Callable[..., str]]:
    """Start one DNS server for the test's records; yields "127.0.0.1:<port>"."""
    stack: list[Any] = []

    def start(**records: list[str]) -> str:
        server = dns_server(_zone(keys, **records), zones=ZONES)
        stack.append(server)
        return server.__enter__()

    yield start
    for server in stack:
        server.__exit__(None, None, None)


def test_relay_mode_a_signed_reply_from_the_moderators_server_approves(
    relay_mode: Callable[..., Relay], served_zone: Callable[..., str], keys: dict[str, Signer]
) -> None:
    relay = relay_mode(
        served_zone(**{RIVERSIDE: [SPF_HERE], f"_dmarc.{RIVERSIDE}": [DMARC_REJECT]})
    )
    letter_id, notice = _a_letter_held_and_its_notice(relay)
    _send(relay, MODERATOR_A, _signed_reply(notice, keys[RIVERSIDE]), _to(notice))
    _approved(relay, letter_id)


def test_relay_mode_a_tampered_body_fails_dkim_and_forged_headers_are_ignored(
    relay_mode: Callable[..., Relay], served_zone: Callable[..., str], keys: dict[str, Signer]
) -> None:
    relay = relay_mode(
        served_zone(**{RIVERSIDE: [SPF_ELSEWHERE], f"_dmarc.{RIVERSIDE}": [DMARC_REJECT]})
    )
    letter_id, notice = _a_letter_held_and_its_notice(relay)
    # A front server's and the relay's own names, forged: in mode "relay" no header counts.
    forged = [
        _results(RIVERSIDE, spf="pass", dkim="pass", dmarc="pass"),
        "pals.example.org; " + _results(RIVERSIDE, dmarc="pass").partition("; ")[2],
    ]
    signed = _signed_reply(notice, keys[RIVERSIDE], results=forged)
    tampered = signed.replace(b"Approve", b"approve")
    _send(relay, MODERATOR_A, tampered, _to(notice))
    _assert_not_approved(relay, letter_id)


def test_relay_mode_no_signature_and_no_records_vouches_for_nobody(
    relay_mode: Callable[..., Relay], served_zone: Callable[..., str]
) -> None:
    relay = relay_mode(served_zone())
    pals = enroll_pals(relay)
    relay.start()
    letter_id = _hold_one(relay, pals, "Hello")
    assert relay.letter(letter_id)["sender_check"] == "unverified"
    notice = _notice(relay, letter_id)
    _send(relay, MODERATOR_A, moderator_reply(notice), _to(notice))
    _assert_not_approved(relay, letter_id)


def test_relay_mode_spf_fail_from_a_wrong_ip_refuses_the_letter_under_refuse(
    relay_mode: Callable[..., Relay], served_zone: Callable[..., str], keys: dict[str, Signer]
) -> None:
    relay = relay_mode(served_zone(**{FAMILY: [SPF_ELSEWHERE]}), "refuse")
    pals = enroll_pals(relay)
    relay.start()
    raw = letter_bytes(pals.maya.email, pals.tomas.masked, subject="From elsewhere", verified=False)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        relay.send(pals.maya.email, [pals.tomas.masked], raw)
    assert f"{refused.value.smtp_code} {refused.value.smtp_error.decode()}" == (
        replies.SENDER_UNVERIFIED
    )
    # Signed by Maya's provider (no DMARC record there): an exact DKIM pass is enough.
    signed = keys[FAMILY].sign(
        letter_bytes(pals.maya.email, pals.tomas.masked, subject="Signed", verified=False)
    )
    relay.send(pals.maya.email, [pals.tomas.masked], signed)
    assert [q["subject"] for q in relay.wait_held(1)] == ["Signed"]
    assert relay.letter(relay.queue()[0]["id"])["sender_check"] == "verified"


@pytest.mark.parametrize(("adkim", "approves"), [("r", True), ("s", False)])
def test_relay_mode_dmarc_alignment_of_a_parent_domains_signature(
    relay_mode: Callable[..., Relay],
    served_zone: Callable[..., str],
    keys: dict[str, Signer],
    adkim: str,
    approves: bool,
) -> None:
    """DMARC p=reject published at the organizational domain, SPF failing, only a DKIM
    signature of example.org: relaxed alignment (RFC 7489 3.1.1) makes that a DMARC pass for
    riverside-library.example.org, strict does not."""
    relay = relay_mode(
        served_zone(
            **{
                RIVERSIDE: [SPF_ELSEWHERE],
                "_dmarc.example.org": [f"v=DMARC1; p=reject; adkim={adkim}"],
            }
        )
    )
    letter_id, notice = _a_letter_held_and_its_notice(relay)
    _send(relay, MODERATOR_A, _signed_reply(notice, keys["example.org"]), _to(notice))
    if approves:
        _approved(relay, letter_id)
    else:
        _assert_not_approved(relay, letter_id)


def test_relay_mode_a_dns_failure_asks_the_sender_to_try_later_under_refuse(
    relay_mode: Callable[..., Relay],
) -> None:
    from tests.support.dns import _free_port

    relay = relay_mode(f"127.0.0.1:{_free_port()}", "refuse")  # nothing answers there
    pals = enroll_pals(relay)
    relay.start()
    raw = letter_bytes(pals.maya.email, pals.tomas.masked, subject="Later", verified=False)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        relay.send(pals.maya.email, [pals.tomas.masked], raw)
    assert f"{refused.value.smtp_code} {refused.value.smtp_error.decode()}" == (
        replies.SENDER_UNVERIFIED_TRY_LATER
    )
