"""A library rewords one template without copying them all; a broken one never half-approves."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import MODERATOR_A, Relay, enroll_pals, letter_bytes, wait_for


def test_one_overridden_template_wins_and_the_rest_stay_shipped(
    relay_factory: Callable[..., Relay],
) -> None:
    relay = relay_factory(extra_relay='templates_dir = "my-templates"')
    override = relay.root / "my-templates" / "email" / "en" / "rejected.txt"
    override.parent.mkdir(parents=True)
    override.write_text(
        "Subject: About your letter to {{ pal_name }}\n\nDear {{ name }}: {{ reason }}\n"
    )
    pals = enroll_pals(relay)
    relay.start()
    for subject in ("One", "Two"):
        relay.send(
            pals.maya.email,
            [pals.tomas.masked],
            letter_bytes(pals.maya.email, pals.tomas.masked, subject=subject),
        )
    first, second = relay.wait_held(2)
    relay.cli("queue", "reject", str(first["id"]), "--by", MODERATOR_A, "--reason", "Too short.")
    relay.cli("queue", "approve", str(second["id"]), "--by", MODERATOR_A)
    (note,) = wait_for(lambda: relay.delivered(pals.maya.email))
    assert note["Subject"] == "About your letter to Tomás"
    text = note.get_body(("plain",)).get_content()
    assert text.startswith("Dear Maya: Too short.\n")  # the override wins...
    assert "How we look after your data: " in text  # ...then the shipped privacy footer
    (letter,) = wait_for(lambda: relay.delivered(pals.tomas.email))
    assert "Una carta de Maya" in letter.get_body(("plain",)).get_content()  # shipped footer


def test_a_letter_that_cannot_be_composed_stays_held(relay_factory: Callable[..., Relay]) -> None:
    relay = relay_factory(extra_relay='templates_dir = "my-templates"')
    broken = relay.root / "my-templates" / "email" / "es" / "letter_footer.txt"
    broken.parent.mkdir(parents=True)
    broken.write_text("{{ no_such_value }}\n")
    pals = enroll_pals(relay)
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    (held,) = relay.wait_held(1)
    result = relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A, check=False)
    assert result.returncode == 1
    assert "no_such_value" in result.stderr and "Traceback" not in result.stderr
    assert relay.queue()[0]["status"] == "held"
    assert not any(e["event"] == "approved" for e in relay.context().store.audit_log())
    broken.unlink()
    relay.cli("queue", "approve", str(held["id"]), "--by", MODERATOR_A)
    wait_for(lambda: relay.delivered(pals.tomas.email))
