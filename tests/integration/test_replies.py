"""A reply as a pal writes it, from intake to the pal's inbox: the writer's answers arrive
(inline, with the line each answers), the history they quoted does not, and an address of a
third party seen in that history never reaches the pal, even when a moderator's edit brings
it back."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

from relay.store.records import Letter
from tests.conftest import MODERATOR_A, Pals, Relay
from tests.support.waiting import wait_for

TEACHER = "ms.kowalski@school.example.org"


def _reply(pals: Pals) -> bytes:
    message = EmailMessage()
    message["From"] = f"Maya <{pals.maya.email}>"
    message["To"] = pals.tomas.masked
    message["Subject"] = "Re: Hola desde Madrid"
    message.set_content(
        "Hi Tomás!\n\n"
        f"On Mon, Mar 4, 2024 at 10:12 AM Tomás <{pals.tomas.masked}> wrote:\n"
        "> Do you have a pet?\n\n"
        "Yes, a cat called Luna.\n\n"
        "> What do you like to read?\n"
        "Comics! And books about space.\n\n"
        "> My teacher says hello.\n"
        f">> On Sun, Mar 3, 2024, Ms Kowalski <{TEACHER}> wrote:\n"
        ">> Class, remember your homework.\n\n"
        "Love,\nMaya\n",
        cte="quoted-printable",
    )
    message.add_alternative(
        "<div>Hi Tomás!</div>"
        '<div class="gmail_quote"><div class="gmail_attr">On Mon, Mar 4, 2024 at 10:12 AM '
        f"Tomás &lt;{pals.tomas.masked}&gt; wrote:</div>"
        '<blockquote class="gmail_quote">Do you have a pet?</blockquote></div>'
        "<div>Yes, a cat called Luna.</div>"
        '<blockquote class="gmail_quote">What do you like to read?</blockquote>'
        "<div>Comics! And books about space.</div>"
        '<blockquote class="gmail_quote">My teacher says hello.'
        f"<blockquote>Ms Kowalski &lt;{TEACHER}&gt; wrote: Class, remember your homework."
        "</blockquote></blockquote><div>Love,<br>Maya</div>",
        subtype="html",
        cte="quoted-printable",
    )
    return message.as_bytes(policy=email.policy.SMTP)


def _held_reply(relay: Relay, pals: Pals) -> int:
    relay.start()
    relay.send(pals.maya.email, [pals.tomas.masked], _reply(pals))
    store = relay.context().store
    held: list[Letter] = wait_for(lambda: store.queue(), 15, "the letter held")
    return held[0].id


def _text(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def test_a_third_partys_address_a_moderators_edit_brings_back_is_removed(
    relay: Relay, pals: Pals
) -> None:
    letter_id = _held_reply(relay, pals)
    shown = relay.cli("queue", "show", str(letter_id)).stdout
    assert "> What do you like to read?\nComics! And books about space." in shown

    edited = relay.root / "edited.txt"
    edited.write_text(f"Yes, a cat called Luna. Write to my teacher: {TEACHER}\n\nLove,\nMaya\n")
    relay.cli("queue", "approve", str(letter_id), "--by", MODERATOR_A, "--edit", str(edited))
    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="the letter")
    assert TEACHER not in delivered.as_string().lower()
    assert "Write to my teacher: [removed]" in _text(delivered, "plain")


def test_inline_answers_arrive_with_the_line_they_answer_and_no_history(
    relay: Relay, pals: Pals
) -> None:
    relay.cli("queue", "approve", str(_held_reply(relay, pals)), "--by", MODERATOR_A)
    (delivered,) = wait_for(lambda: relay.delivered(pals.tomas.email), what="the letter")
    text = _text(delivered, "plain")
    assert text.startswith(
        "Hi Tomás!\n\n> Do you have a pet?\nYes, a cat called Luna.\n\n"
        "> What do you like to read?\nComics! And books about space.\n\n"
        "> My teacher says hello.\nLove,\nMaya\n\n"
    )
    html = _text(delivered, "html")
    for words in ("Yes, a cat called Luna.", "Comics! And books about space.", "Love,"):
        assert words in html
    assert "<blockquote>What do you like to read?</blockquote>" in html
    for gone in ("homework", "Kowalski", "wrote", TEACHER):
        assert gone not in delivered.as_string()
