"""Two children writing together to one pal (`[matching] uneven = "together"`), end to end:
the proposal on the command line, accepted, then the pal's letter to one of a team approved
by a moderator and delivered to both children at the SMTP sink, from the pal's masked
address, each copy to one child's own address only."""

from __future__ import annotations

import email
import email.policy
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage

from relay import compose, guardians, participants, rights
from relay.store.records import Participant
from tests.conftest import (
    DOMAIN,
    MODERATOR_A,
    MODERATOR_B,
    Received,
    Relay,
    Smarthost,
    letter_bytes,
)
from tests.support.waiting import wait_for

PARTNERSHIP = "riverside+valparaiso"


def _enrol(relay: Relay) -> dict[str, Participant]:
    """Maya and Leo at riverside, Tomás at valparaiso: children of 10 with guardians who
    consented on paper; Maya and Tomás both like football."""
    ctx, year = relay.context(), datetime.now(UTC).year
    found = {}
    for library, name, likes in (
        ("riverside", "Maya", "football, drawing"),
        ("riverside", "Leo", "chess"),
        ("valparaiso", "Tomás", "football"),
    ):
        local = name.lower().replace("á", "a")
        child = participants.enroll(
            ctx,
            library,
            name,
            f"{local}.child@family-mail.example.net",
            language="en" if library == "riverside" else "es",
            guardian=f"{local}.parent@family-mail.example.net",
            details=participants.Details(birth_year=year - 11, interests=likes),
        )
        found[name] = guardians.give(ctx, child, method="paper", by=MODERATOR_A)
    return found


def _from_program(received: Received) -> bool:
    return bool(received.message["From"].addresses[0].addr_spec == f"program@{DOMAIN}")


def test_a_team_of_two_gets_their_pals_letter(
    relay_factory: Callable[..., Relay], smarthost: Smarthost
) -> None:
    relay = relay_factory(
        transport="smtp",
        smarthost=f"127.0.0.1:{smarthost.port}",
        extra_sections="[matching]\nuneven = 'together'\n",
    )
    maya, leo, tomas = _enrol(relay).values()
    shown = relay.cli("match", "--partnership", PARTNERSHIP, "--yes", "--by", MODERATOR_A)
    assert shown.stdout.splitlines() == [
        f"{PARTNERSHIP}: 2 pairs proposed, 0 without a pal (max_age_gap 2, uneven together)",
        f"  {maya.id} Maya <{maya.masked}>  +  {tomas.id} Tomás <{tomas.masked}>",
        "      both 10; both like football",
        f"  {leo.id} Leo <{leo.masked}> with {maya.id} Maya  +  {tomas.id} Tomás <{tomas.masked}>",
        "      Leo and Maya write together to Tomás; both 10; no shared interests",
        "paired 2 pairs",
        f"  paired      {maya.id} Maya <{maya.masked}>  +  {tomas.id} Tomás <{tomas.masked}>",
        f"  paired      {leo.id} Leo <{leo.masked}> with {maya.id} Maya  +  "
        f"{tomas.id} Tomás <{tomas.masked}>",
    ]
    now = {p.name: p for p in relay.context().store.participants()}
    assert (now["Maya"].writes_with, now["Leo"].writes_with) == (leo.id, maya.id)
    assert now["Tomás"].pals == (maya.id, leo.id)

    relay.start()
    letter = letter_bytes(tomas.email, maya.masked, subject="¡Hola!", body="¿Te gusta el fútbol?")
    relay.send(tomas.email, [maya.masked], letter)
    store = relay.context().store
    (held,) = wait_for(lambda: store.hot_letters() or None, what="the letter held")
    relay.cli("queue", "approve", str(held.id), "--by", MODERATOR_B)

    def received(address: str) -> Received | None:  # a letter, not the match's welcome email
        letters = (r for r in smarthost.received if r.to(address) and not _from_program(r))
        return next(letters, None)

    for reader, other in ((maya, leo), (leo, maya)):
        copy = wait_for(lambda reader=reader: received(reader.email), what=reader.name)
        message = copy.message
        assert copy.rcpt_tos == [reader.email]
        assert message["From"].addresses[0].addr_spec == tomas.masked
        assert [a.addr_spec for a in message["To"].addresses] == [reader.email]
        assert message["Subject"] == "¡Hola!"
        assert "¿Te gusta el fútbol?" in message.get_body(("plain",)).get_content()
        # Nothing of the other child's (or the pal's) real addresses.
        for private in (other.email, other.guardian, tomas.email, tomas.guardian):
            assert private.encode() not in copy.data.lower()
    maya_words = received(maya.email).message.get_body(("plain",)).get_content()
    assert "You and Leo write together to Tomás: Leo gets this letter too." in maya_words
    leo_words = received(leo.email).message.get_body(("plain",)).get_content()
    assert (
        "You and Maya write together to Tomás: this letter was written to Maya, and it "
        "reaches you both." in leo_words
    )
    # Leo's guardian gets a copy as of any letter Leo receives; with no address of Maya's.
    guardian_copy = wait_for(lambda: received(leo.guardian), what="Leo's guardian's copy")
    assert maya.email.encode() not in guardian_copy.data.lower()

    def status() -> str | None:
        letter = store.letter(held.id)
        return letter.status if letter and letter.status == "delivered" else None

    wait_for(status, what="the letter delivered")

    # Leo's data export carries the letter he got as Maya's teammate, between masked addresses.
    ctx = relay.context()
    wait_for(lambda: ctx.spool.was_sent(f"letter-{held.id}-teammate-{leo.id}"), what="Leo's copy")
    exported = zipfile.ZipFile(io.BytesIO(rights.export(ctx, leo, via="test", handed=False)))
    listing = json.loads(exported.read("letters.json"))
    assert [(x["id"], x["direction"], x.get("copy_as_teammate")) for x in listing] == [
        (held.id, "received", True)
    ]
    eml = exported.read(listing[0]["file"])
    kept = email.message_from_bytes(eml, policy=email.policy.default)
    assert isinstance(kept, EmailMessage)
    assert "¿Te gusta el fútbol?" in kept.get_body(("plain",)).get_content()
    for private in (maya.email, maya.guardian, tomas.email, tomas.guardian):
        assert private.encode() not in eml.lower()

    # Leo answers his copy: a letter to Tomás like any pal's, threaded under Tomás's letter.
    copy_id = received(leo.email).message["Message-ID"]
    answer = letter_bytes(leo.email, tomas.masked, "Re: ¡Hola!", headers={"In-Reply-To": copy_id})
    relay.send(leo.email, [tomas.masked], answer)
    held_answer = wait_for(lambda: [x for x in store.hot_letters() if x.sender == leo.id])[0]
    assert (held_answer.recipient, held_answer.status) == (tomas.id, "held")
    assert compose.letter_of_message_id(relay.context().secret, copy_id, DOMAIN) == held.id
    assert "maya.child" not in relay.log() and "leo.child" not in relay.log()
