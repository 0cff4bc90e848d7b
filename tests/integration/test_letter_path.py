"""A letter's whole path through a running relay: held, decided, delivered, threaded."""

from __future__ import annotations

import json
import re
import smtplib

import pytest

from relay import replies
from tests.conftest import (
    DOMAIN,
    MODERATOR_A,
    MODERATOR_A2,
    MODERATOR_B,
    Pals,
    Relay,
    letter_bytes,
    wait_for,
)

IDENTIFYING = {
    "Received": "from mail.family-mail.example.net (203.0.113.9) by mx.example.net",
    "Return-Path": "<maya.smith@family-mail.example.net>",
    "Sender": "Maya Smith <maya.smith@family-mail.example.net>",
    "Reply-To": "Maya Smith <maya.smith@family-mail.example.net>",
    "Cc": "Grandma <grandma.smith@family-mail.example.net>",
    "X-Originating-IP": "[203.0.113.9]",
    "DKIM-Signature": "v=1; a=rsa-sha256; d=family-mail.example.net; s=k1; b=abc",
    "ARC-Seal": "i=1; a=rsa-sha256; d=family-mail.example.net; b=xyz",
    "Authentication-Results": "mx.example.net; spf=pass smtp.mailfrom=family-mail.example.net",
    "X-Mailer": "Smith Family Mailer 1.0",
    "Message-ID": "<maya-original-1@family-mail.example.net>",
}


def _reply_code(error: smtplib.SMTPRecipientsRefused) -> str:
    ((code, text),) = error.recipients.values()
    return f"{code} {text.decode()}"


def test_letter_held_approved_delivered_with_masked_from(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(pals.maya.email, pals.tomas.masked, headers=IDENTIFYING),
    )
    (held,) = relay.wait_held(1)
    assert held["status"] == "held"
    assert held["from"] == pals.maya.masked and held["to"] == pals.tomas.masked
    assert held["from_library"] == "riverside" and held["to_library"] == "valparaiso"
    assert relay.delivered(pals.tomas.email) == []  # nothing leaves before a decision

    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="delivery")

    assert delivered["From"].addresses[0].addr_spec == pals.maya.masked
    assert delivered["From"].addresses[0].display_name == "Maya (Riverside Public Library)"
    assert delivered["To"].addresses[0].addr_spec == pals.tomas.email
    assert delivered["Delivered-To"] == pals.tomas.email
    assert delivered["Message-ID"].endswith(f"@{DOMAIN}>")
    assert delivered["Subject"] == "Hello"
    assert delivered["Date"] and delivered["MIME-Version"] == "1.0"
    for name in IDENTIFYING:
        if name not in ("Message-ID", "Return-Path", "DKIM-Signature"):
            assert name not in delivered, name
    # The writer's signature is gone; the one there is the relay's own.
    (signature,) = delivered.get_all("DKIM-Signature")
    assert f"d={DOMAIN};" in signature and "family-mail" not in signature
    assert delivered["Return-Path"] != IDENTIFYING["Return-Path"]
    raw = delivered.as_bytes().lower()
    assert b"family-mail" not in raw and b"smith" not in raw and b"203.0.113.9" not in raw
    body = delivered.get_body(("plain",))
    assert body is not None and "What is school like for you?" in body.get_content()
    # The footer is in the reader's language (Tomás's library speaks Spanish).
    assert "Una carta de Maya" in body.get_content()
    history = relay.letter(held["id"])
    assert history["status"] == "delivered"
    audit = [e for e in relay.context().store.audit_log() if e.get("letter") == held["id"]]
    assert [e["event"] for e in audit] == ["held", "approved", "delivered"]
    assert audit[1]["by"] == MODERATOR_A and audit[1]["via"] == "cli"


def test_reply_threads_in_both_mail_clients(relay: Relay, pals: Pals) -> None:
    relay.start()
    original_id = "<maya-original-1@family-mail.example.net>"
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(pals.maya.email, pals.tomas.masked, headers={"Message-ID": original_id}),
    )
    (first,) = relay.wait_held(1)
    relay.cli("queue", "approve", str(first["id"]), "--by", MODERATOR_A)
    (to_tomas,) = wait_for(lambda: relay.delivered(pals.tomas.email))
    relay_id = to_tomas["Message-ID"]
    assert relay_id != original_id

    # Tomás answers from his mail client: a reply to the masked address, threaded on our id.
    tomas_reply_id = "<tomas-reply-7@correo.example.net>"
    relay.send(
        pals.tomas.email,
        [pals.maya.masked],
        letter_bytes(
            pals.tomas.email,
            pals.maya.masked,
            subject="Re: Hello",
            body="Hola Maya!",
            headers={
                "Message-ID": tomas_reply_id,
                "In-Reply-To": relay_id,
                "References": f"<unknown@elsewhere.example.net> {relay_id}",
            },
        ),
    )
    reply = wait_for(lambda: [q for q in relay.queue() if q["from"] == pals.tomas.masked])[0]
    relay.cli("queue", "approve", str(reply["id"]), "--by", MODERATOR_B)
    (to_maya,) = wait_for(lambda: relay.delivered(pals.maya.email))

    # Maya's client knows the first letter by the id it generated itself.
    assert to_maya["In-Reply-To"] == original_id
    assert to_maya["References"] == original_id  # the unknown foreign id is dropped
    assert to_maya["From"].addresses[0].addr_spec == pals.tomas.masked
    assert "correo.example.net" not in to_maya.as_string()

    # Maya answers Tomás's reply: Tomás's client must see his own id again.
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(
            pals.maya.email,
            pals.tomas.masked,
            subject="Re: Re: Hello",
            headers={
                "In-Reply-To": to_maya["Message-ID"],
                "References": f"{original_id} {to_maya['Message-ID']}",
            },
        ),
    )
    third = wait_for(lambda: [q for q in relay.queue() if q["subject"] == "Re: Re: Hello"])[0]
    relay.cli("queue", "approve", str(third["id"]), "--by", MODERATOR_A2)
    messages = wait_for(lambda: m if len(m := relay.delivered(pals.tomas.email)) == 2 else None)
    last = next(m for m in messages if m["Subject"] == "Re: Re: Hello")
    assert last["In-Reply-To"] == tomas_reply_id
    assert last["References"].split() == [relay_id, tomas_reply_id]


def test_refusals_at_rcpt_do_not_tell_which_check_failed(relay: Relay, pals: Pals) -> None:
    relay.start()
    cases = [
        (pals.maya.email, f"nobody-here-0000@{DOMAIN}", replies.UNKNOWN_ADDRESS),
        ("stranger@elsewhere.example.net", pals.tomas.masked, replies.UNKNOWN_ADDRESS),
        (pals.leo.email, pals.tomas.masked, replies.UNKNOWN_ADDRESS),
        (pals.maya.email, "someone@elsewhere.example.net", replies.RELAY_DENIED),
    ]
    for sender, recipient, expected in cases:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            relay.send(sender, [recipient], letter_bytes(sender, recipient))
        assert _reply_code(refused.value) == expected
    assert relay.queue() == []
    # A refusal reply never echoes an address.
    for _, _, reply in cases:
        assert "@" not in reply


def test_one_good_recipient_among_refused_ones_is_held(relay: Relay, pals: Pals) -> None:
    relay.start()
    refused = relay.send(
        pals.maya.email,
        [pals.tomas.masked, f"nobody-here-0000@{DOMAIN}"],
        letter_bytes(pals.maya.email, pals.tomas.masked),
    )
    assert list(refused) == [f"nobody-here-0000@{DOMAIN}"]
    (held,) = relay.wait_held(1)
    assert held["to"] == pals.tomas.masked


def test_reject_tells_the_writer_kindly_and_the_pal_nothing(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(pals.maya.email, pals.tomas.masked, subject="My phone number"),
    )
    (held,) = relay.wait_held(1)
    reason = "Please don't share your phone number in letters."
    relay.cli("queue", "reject", str(held["id"]), "--by", MODERATOR_A, "--reason", reason)
    (note,) = wait_for(lambda: relay.delivered(pals.maya.email), what="rejection note")
    assert note["To"].addresses[0].addr_spec == pals.maya.email
    assert note["Auto-Submitted"] == "auto-replied"
    text = note.get_body(("plain",)).get_content()
    assert reason in text and "My phone number" in text and "Tomás" in text
    assert pals.tomas.email not in note.as_string()
    assert relay.letter(held["id"])["status"] == "rejected"
    entry = next(e for e in relay.context().store.audit_log() if e["event"] == "rejected")
    assert entry["by"] == MODERATOR_A and entry["reason"] == reason


def test_only_a_moderator_of_the_writers_library_decides(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    (held,) = relay.wait_held(1)
    for outsider in (MODERATOR_B, "someone@elsewhere.example.net", pals.maya.email):
        result = relay.cli("queue", "approve", str(held["id"]), "--by", outsider, check=False)
        assert result.returncode == 1
        assert "not a moderator of library 'riverside'" in result.stderr
        assert "Traceback" not in result.stderr
    assert relay.queue()[0]["status"] == "held"
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    again = relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A2, check=False)
    assert again.returncode == 1 and re.search(r"letter \d+ is (approved|delivered)", again.stderr)
    wait_for(lambda: relay.delivered(pals.tomas.email))
    assert len(relay.delivered(pals.tomas.email)) == 1


def test_logs_at_info_carry_no_real_address(relay: Relay, pals: Pals) -> None:
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        relay.send(pals.leo.email, [pals.tomas.masked], b"Subject: x\r\n\r\nhi\r\n")
    (held,) = relay.wait_held(1)
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    wait_for(lambda: "delivered letter=" in relay.log())
    relay.stop()
    log = relay.log()
    assert f"held letter={held['id']} from={pals.maya.masked} to={pals.tomas.masked}" in log
    assert "refused reason=not-paired" in log
    # The log file has serve's lines and the CLI's decision: the letter's whole story.
    story = [
        line.split(" ", 3)[3]
        for line in (relay.data_dir / "relay.log").read_text().splitlines()
        if f"letter={held['id']} " in line
    ]
    assert [line.split()[0] for line in story] == ["held", "approved", "delivered"]
    assert "by='Ana' library=riverside via=cli" in story[1]
    for person in (pals.maya, pals.tomas, pals.leo):
        assert person.email not in log
        assert person.email not in (relay.data_dir / "relay.log").read_text()


def test_guardian_gets_a_copy_of_every_letter_to_and_from_the_child(relay: Relay) -> None:
    guardian = "parent.smith@family-mail.example.net"
    added = relay.cli(
        "participants",
        "add",
        "--library",
        "riverside",
        "--name",
        "Maya",
        "--json",
        "--email",
        "maya.smith@family-mail.example.net",
        "--guardian",
        guardian,
    )
    maya_masked = json.loads(added.stdout)["masked"]
    tomas = relay.enroll("valparaiso", "Tomás", "tomas.perez@correo.example.net")
    relay.cli("pair", maya_masked, tomas.masked)
    relay.start()
    relay.send(
        "maya.smith@family-mail.example.net",
        [tomas.masked],
        letter_bytes("maya.smith@family-mail.example.net", tomas.masked, subject="Hi"),
    )
    (held,) = relay.wait_held(1)
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    (copy,) = wait_for(lambda: relay.delivered(guardian), what="the guardian's copy")
    (delivered,) = wait_for(lambda: relay.delivered(tomas.email))
    assert copy["From"].addresses[0].addr_spec == maya_masked
    assert copy["To"].addresses[0].addr_spec == guardian
    assert copy["Message-ID"] != delivered["Message-ID"]
    text = copy.get_body(("plain",)).get_content()
    assert "What is school like" in text and "copy for Maya's guardian" in text
    assert tomas.email not in copy.as_string()
    assert guardian not in delivered.as_string()  # the pal never sees the guardian

    relay.send(
        tomas.email,
        [maya_masked],
        letter_bytes(tomas.email, maya_masked, subject="Re: Hi", body="¡Hola Maya!"),
    )
    reply = wait_for(lambda: [q for q in relay.queue() if q["subject"] == "Re: Hi"])[0]
    relay.cli("queue", "approve", str(reply["id"]), "--by", MODERATOR_B)
    copies = wait_for(lambda: c if len(c := relay.delivered(guardian)) == 2 else None)
    answer = next(c for c in copies if c["Subject"] == "Re: Hi")
    assert answer["From"].addresses[0].addr_spec == tomas.masked
    assert "¡Hola Maya!" in answer.get_body(("plain",)).get_content()
    assert tomas.email not in answer.as_string()
