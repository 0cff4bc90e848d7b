"""An outbox entry whose message went missing is dropped, and its letter is queued again."""

from __future__ import annotations

from collections.abc import Callable

from relay import letters
from tests.conftest import MODERATOR_A, Relay, enroll_pals, letter_bytes, wait_for


def test_a_marker_without_its_message_is_dropped_and_the_letter_delivered_once(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory()
    pals = enroll_pals(relay)
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    (held,) = relay.wait_held(1)
    relay.stop()
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    outbox = relay.data_dir / "spool" / "outbox"
    letter = f"letter-{held['id']}"
    # What a `serve` starting in the middle of the approval left before the fix.
    (outbox / f"{letter}.eml").unlink()
    assert (outbox / f"{letter}.json").exists()

    ctx = relay.context()
    ctx.spool.remove_unacknowledged()  # serve's start-up clean-up, then its reconcile
    assert not (outbox / f"{letter}.json").exists()
    assert letters.reconcile(ctx) == 1
    assert (outbox / f"{letter}.eml").exists() and (outbox / f"{letter}.json").exists()

    relay.start()
    wait_for(lambda: relay.letter(held["id"])["status"] == "delivered", what="delivery")
    relay.stop()
    assert len(relay.delivered(pals.tomas.email)) == 1
