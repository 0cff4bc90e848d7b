"""What only the mail server in front may do: ask the recipient check (the policy service)
and pass on its client's address (XFORWARD). Spoken to directly, over real sockets, on a
running relay; the whole path through a real Postfix is in test_postfix_front.py."""

from __future__ import annotations

import json
import smtplib
import socket
from collections.abc import Callable

from relay import replies
from tests.conftest import DOMAIN, Pals, Relay, enroll_pals


def _policy_relay(relay_factory: Callable[..., Relay], **options: str) -> tuple[Relay, Pals, int]:
    relay = relay_factory(extra_smtp='policy_listen = "127.0.0.1:0"', **options)
    pals = enroll_pals(relay)
    relay.start()
    ready = json.loads((relay.data_dir / "run" / "serve.json").read_text())
    return relay, pals, int(ready["policy"].rsplit(":", 1)[1])


def _request(**attributes: str) -> bytes:
    base = {"request": "smtpd_access_policy", "protocol_state": "RCPT"}
    lines = [f"{name}={value}" for name, value in {**base, **attributes}.items()]
    return ("\n".join(lines) + "\n\n").encode()


def _ask(port: int, *requests: bytes) -> list[str]:
    """Send requests on one connection (as Postfix does); the actions answered."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        reader = connection.makefile("rb")
        for request in requests:
            connection.sendall(request)
            lines = []
            while (line := reader.readline()) not in (b"\n", b""):
                lines.append(line.decode().rstrip("\n"))
            answers.append("\n".join(lines))
    return answers


def test_the_policy_service_answers_postfix_with_the_relays_own_recipient_check(
    relay_factory: Callable[..., Relay],
) -> None:
    relay, pals, port = _policy_relay(relay_factory)
    answers = _ask(
        port,
        _request(sender=pals.maya.email, recipient=pals.tomas.masked, client_address="192.0.2.7"),
        _request(sender="stranger@example.net", recipient=pals.tomas.masked),
        _request(sender=pals.maya.email, recipient=f"no-such-pal@{DOMAIN}"),
        _request(sender=pals.maya.email, recipient="someone@other-domain.example.net"),
        _request(protocol_state="DATA", sender="x@example.net", recipient=f"x@{DOMAIN}"),
        _request(sender="", recipient=f"postmaster@{DOMAIN}"),
    )
    refused = f"action={replies.UNKNOWN_ADDRESS}"
    assert answers == [
        "action=DUNNO",  # paired: Postfix's other rules decide
        refused,  # not enrolled
        refused,  # no such pal
        "action=DUNNO",  # another domain of the same Postfix
        "action=DUNNO",  # not the RCPT stage
        "action=DUNNO",  # the relay's own address
    ]
    assert "refused reason=sender-not-enrolled" in relay.log()
    audit = [e for e in relay.context().store.audit_log() if e["event"] == "refused-recipient"]
    assert len(audit) == 2


def test_the_policy_service_slows_a_client_that_keeps_guessing(
    relay_factory: Callable[..., Relay],
) -> None:
    _relay, pals, port = _policy_relay(relay_factory)
    guesses = [
        _request(
            sender=pals.maya.email, recipient=f"guess-{n}@{DOMAIN}", client_address="192.0.2.9"
        )
        for n in range(21)
    ]
    answers = _ask(port, *guesses)
    assert answers[:20] == [f"action={replies.UNKNOWN_ADDRESS}"] * 20
    assert answers[20] == f"action={replies.RATE_LIMITED}"
    # Another client is not slowed by the first one's guesses.
    other = _request(
        sender=pals.maya.email, recipient=pals.tomas.masked, client_address="192.0.2.10"
    )
    assert _ask(port, other) == ["action=DUNNO"]


def _closed_unanswered(connection: socket.socket) -> bool:
    """The service closed the connection without a word: an orderly close, or a reset when
    it closed with the rest of an oversized request still unread (the kernel then resets)."""
    try:
        return connection.recv(100) == b""
    except ConnectionResetError:
        return True


def test_the_policy_service_closes_on_garbage_and_keeps_serving(
    relay_factory: Callable[..., Relay],
) -> None:
    relay, pals, port = _policy_relay(relay_factory)
    for garbage in (
        b"this is not a policy request\n\n",
        b"request=smtpd_access_policy\nname=" + b"x" * 100_000 + b"\n\n",
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(garbage)
            assert _closed_unanswered(connection)
    assert _ask(port, _request(sender=pals.maya.email, recipient=pals.tomas.masked)) == [
        "action=DUNNO"
    ]
    assert relay.process is not None and relay.process.poll() is None


def test_xforward_is_offered_to_front_servers_only(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory(authentication='front_servers = ["192.0.2.0/24"]')
    relay.start()
    with relay.smtp() as client:
        code, features = client.ehlo("client.example.net")
        assert code == 250 and b"XFORWARD" not in features
        code, text = client.docmd("XFORWARD", "ADDR=198.51.100.1 HELO=mail.example.net")
        assert (code, text.decode()) == (500, 'Error: command "XFORWARD" not recognized')

    front = relay_factory(authentication='front_servers = ["127.0.0.1"]')
    front.start()
    with front.smtp() as client:
        code, features = client.ehlo("mx.example.org")
        assert b"XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE" in features
        assert client.docmd("XFORWARD", "ADDR=IPV6:2001:db8::1 HELO=mail.example.net")[0] == 250
        assert client.docmd("XFORWARD", "ADDR")[0] == 501
        client.mail("someone@example.net")
        code, _ = client.docmd("XFORWARD", "ADDR=198.51.100.1")
        assert code == 503


def test_mail_from_a_front_server_without_xforward_in_relay_mode_is_warned_about_once(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory(
        authentication='mode = "relay"\nresolvers = ["127.0.0.1:9"]\nfront_servers = ["127.0.0.1"]'
    )
    pals = enroll_pals(relay)
    relay.start()
    for _ in range(2):
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=20) as client:
            client.sendmail(pals.maya.email, [pals.tomas.masked], b"Subject: hi\r\n\r\nhello\r\n")
    assert relay.log().count("came without XFORWARD") == 1
