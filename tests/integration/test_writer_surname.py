"""The writer's surname through a running relay: learned from their own mail, taken out of
the signature and the mailto link their mail program wrote, flagged where they typed it,
and never shown to the partner library before anyone approved it."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP

from tests.conftest import (
    FRONT_AUTHSERV_ID,
    MODERATOR_A,
    MODERATOR_B,
    Relay,
    enroll_pals,
)
from tests.support.waiting import wait_for

TYPED = "My name is Maya Castellanos and I like drawing horses."


def _letter(
    sender: str, to: str, *, display: str, text: str, html: str, verified: bool = True
) -> bytes:
    message = EmailMessage()
    if verified:
        message["Authentication-Results"] = (
            f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from={sender.rpartition('@')[2]}"
        )
    message["From"] = f'"{display}" <{sender}>' if display else sender
    message["To"] = to
    message["Subject"] = "Hello from Maya"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message.as_bytes(policy=SMTP)


def _body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def _known_names(relay: Relay, participant_id: str) -> list[str]:
    listed = relay.cli("participants", "list", "--library", "riverside", "--json").stdout
    (shown,) = [p for p in json.loads(listed) if p["id"] == participant_id]
    return list(shown["known_names"])


def test_surname_learned_removed_where_the_mail_program_put_it_flagged_where_typed(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory(extra_moderation="notify_partner_moderators = true")
    pals = enroll_pals(relay)
    relay.start()
    maya = pals.maya.email

    # A letter the verdict does not vouch for: its name counts for itself, is never kept.
    relay.send(
        maya,
        [pals.tomas.masked],
        _letter(
            maya,
            pals.tomas.masked,
            display="Maya Impostor",
            text="Hi from Maya Impostor",
            html="<p>Hi from Maya Impostor</p>",
            verified=False,
        ),
    )
    (forged,) = relay.wait_held(1)
    assert {f["text"] for f in forged["flags"] if f["kind"] == "surname"} == {"Impostor"}
    relay.cli("queue", "reject", str(forged["id"]), "--by", MODERATOR_A, "--reason", "not hers")
    assert _known_names(relay, pals.maya.id) == []

    signed = (
        f"<div>{TYPED}</div>"
        f'<div>Write to me: <a href="mailto:{maya}">Maya Castellanos</a></div>'
        "<div>-- <br>Maya Castellanos</div>"
    )
    relay.send(
        maya,
        [pals.tomas.masked],
        _letter(
            maya,
            pals.tomas.masked,
            display="Maya Castellanos",
            text=f"{TYPED}\n\n-- \nMaya Castellanos\n",
            html=signed,
        ),
    )
    (held,) = wait_for(lambda: relay.queue(), what="the letter held")

    # Flagged where she typed it, in the text and the HTML, with exact places; nothing else.
    letter = relay.letter(held["id"])
    surnames = [f for f in letter["flags"] if f["kind"] == "surname"]
    assert {(f["part"], f["text"]) for f in surnames} == {
        ("text", "Castellanos"),
        ("html", "Castellanos"),
    }
    text_flag = next(f for f in surnames if f["part"] == "text")
    assert TYPED[text_flag["start"] : text_flag["end"]] == "Castellanos"

    # Her own library's moderator is told in plain words; the partner library sees no surname.
    def notice_to(moderator: str) -> list[EmailMessage]:
        found = relay.delivered(moderator)
        return [n for n in found if str(n["Message-ID"]).startswith(f"<notice-{held['id']}.")]

    (own,) = wait_for(lambda: notice_to(MODERATOR_A), what="the notice to Maya's library")
    assert 'the writer\'s surname: "Castellanos"' in _body(own, "plain")
    (partner,) = wait_for(lambda: notice_to(MODERATOR_B), what="the partner library's notice")
    assert b"castellanos" not in partner.as_bytes().lower()
    assert "My name is Maya [removed] and I like" in _body(partner, "plain")

    # Kept as hers, shown to her library's staff by `participants list`.
    assert _known_names(relay, pals.maya.id) == ["Maya Castellanos"]

    # Approved as it is: staff's choice keeps what she typed; signature and link lose it.
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="delivery")
    text, html = _body(delivered, "plain"), _body(delivered, "html")
    assert TYPED in text and text.count("Castellanos") == 1
    assert TYPED in html and html.count("Castellanos") == 1
    assert "Write to me: Maya" in html and maya not in html

    # A later letter from a mail program that sends no name: the learned surname still
    # leaves the signature and the link, is flagged where she typed it, and "remove what is
    # flagged" takes that out too, so the pal's copy holds none of it.
    relay.send(
        maya,
        [pals.tomas.masked],
        _letter(
            maya,
            pals.tomas.masked,
            display="",
            text="Hi again! The Castellanos family says hello.\n\n-- \nMaya Castellanos\n",
            html=f'<p>Hi again! <a href="mailto:{maya}">Maya Castellanos</a></p>',
        ),
    )
    (second,) = wait_for(lambda: relay.queue(), what="the second letter held")
    assert [f["text"] for f in second["flags"] if f["kind"] == "surname"] == ["Castellanos"]
    relay.cli("queue", "approve", str(second["id"]), "--by", MODERATOR_A, "--redact-flags")
    delivered_both = wait_for(
        lambda: found if len(found := relay.delivered(pals.tomas.email)) == 2 else None,
        what="the second delivery",
    )
    later = next(m for m in delivered_both if "Hi again" in _body(m, "plain"))
    assert b"castellanos" not in later.as_bytes().lower()

    # Nothing sent to the partner library's moderator, and no log line, names her.
    for notice in relay.delivered(MODERATOR_B):
        assert b"castellanos" not in notice.as_bytes().lower()
    log = relay.log() + (relay.data_dir / "relay.log").read_text(errors="replace")
    assert "castellanos" not in log.lower()
