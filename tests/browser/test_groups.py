"""Two classes writing as groups, end to end: the issue's two classes of 30 and 27 children
are enrolled as groups (their teachers' addresses, their children as members; one by the
command line), beside a few children enrolled one by one; `match` pairs the two classes
together and never a class with a child; a letter from one teacher to the other class's
masked address is held, approved on the command line and arrives at the SMTP sink from the
class's name and masked address, without its teacher's address or its list of members;
then, in Chromium, the class's page shows its members to its library's staff, who change
them, and a club is enrolled on the add form.

One relay, one sink, one browser for the whole story.
"""

from __future__ import annotations

import email.policy
import json
import re
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from playwright.sync_api import Page, expect

from relay import cli, guardians, participants
from tests.browser.dashboard import output_folder, sign_in_at_smarthost
from tests.conftest import FRONT_AUTHSERV_ID, MODERATOR_A, Relay, Smarthost
from tests.support.classes import RIVERSIDE_NAMES, VALPARAISO_NAMES
from tests.support.serving import serving
from tests.support.waiting import wait_for

TEACHER = "laura.jones@riverside-school.example.net"
PROFESORA = "ines.mora@colegio-severin.example.net"
PARTNERSHIP = "riverside+valparaiso"


def _letter(to: str) -> bytes:
    message = EmailMessage()
    message["Authentication-Results"] = (
        f"{FRONT_AUTHSERV_ID}; dmarc=pass header.from={TEACHER.rpartition('@')[2]}"
    )
    message["From"] = f"Class 4B <{TEACHER}>"
    message["To"] = to
    message["Subject"] = "Hello from Class 4B"
    message.set_content(
        "Hola Clase 5A!\n\nThis week we planted beans in the school garden. "
        "What grows near your school?\n\nMaya, Leo and Ava\n"
    )
    return message.as_bytes(policy=email.policy.SMTP)


def _subject(data: bytes) -> str:
    return str(email.message_from_bytes(data, policy=email.policy.default)["Subject"])


def test_two_classes_match_write_as_their_names_and_show_members_to_staff(
    relay_factory: Callable[..., Relay],
    smarthost: Smarthost,
    page: Page,
    capsys: pytest.CaptureFixture[str],
) -> None:
    relay = relay_factory(transport="smtp", smarthost=f"127.0.0.1:{smarthost.port}")
    ctx = relay.context()
    children = set()
    for library, name, local in (
        ("riverside", "Maya", "maya"),
        ("riverside", "Leo", "leo"),
        ("valparaiso", "Tomás", "tomas"),
    ):
        child = participants.enroll(
            ctx,
            library,
            name,
            f"{local}@family-mail.example.net",
            guardian=f"parent.of.{local}@family-mail.example.net",
            details=participants.Details(age_band="9-10", interests="football"),
        )
        children.add(guardians.give(ctx, child, method="paper", by=MODERATOR_A).id)
    members = ", ".join(RIVERSIDE_NAMES)
    run = ["--config", str(relay.config_path)]
    assert cli.main([
        *run, "participants", "add", "--library", "riverside", "--name", "Class 4B",
        "--email", TEACHER, "--group", "--members", members, "--age-band", "9-10", "--json",
    ]) == 0  # fmt: skip
    class_4b = json.loads(capsys.readouterr().out)
    assert (class_4b["kind"], len(class_4b["members"]), class_4b["consent"]) == ("group", 30, "")
    clase_5a = participants.enroll(
        ctx,
        "valparaiso",
        "Clase 5A",
        PROFESORA,
        details=participants.Details(kind="group", age_band="10-11", members=VALPARAISO_NAMES),
    )

    assert cli.main([*run, "match", "--partnership", PARTNERSHIP, "--yes", "--json"]) == 0
    proposal = json.loads(capsys.readouterr().out)
    classes = (class_4b["id"], clase_5a.id)
    pairs = {tuple(pair["participants"]): pair for pair in proposal["pairs"]}
    assert pairs[classes]["explanation"].startswith(
        "two classes or clubs: Class 4B and Clase 5A; ages 9 and 10"
    )
    assert len(pairs) == 3  # the classes; Tomás with Maya, and with Leo as a second pal
    assert all(set(both) <= children for both in pairs if both != classes)

    with serving(relay) as web:
        relay.send(TEACHER, [clase_5a.masked], _letter(clase_5a.masked))
        held = wait_for(lambda: relay.context().store.queue(None), 15, "the letter held")
        assert cli.main([*run, "queue", "approve", str(held[0].id), "--by", MODERATOR_A]) == 0

        def delivered() -> bytes | None:  # the letter, after the welcome email of the match
            found = [r.data for r in smarthost.received if r.to(PROFESORA)]
            letters = [data for data in found if not _subject(data).startswith("Les presentamos")]
            return letters[0] if letters else None

        data = wait_for(delivered, 15, "the letter at the other class's teacher")
        letter = email.message_from_bytes(data, policy=email.policy.default)
        assert letter["From"].addresses[0].display_name == "Class 4B (Riverside Public Library)"
        assert letter["From"].addresses[0].addr_spec == class_4b["masked"]
        text = data.decode("utf-8", errors="replace")
        assert "Maya, Leo and Ava" in text  # children sign with first names: kept
        assert TEACHER not in text and "laura.jones" not in text
        assert members not in text and "Olivia" not in text  # the member list travels nowhere
        log = (relay.data_dir / "relay.log").read_text()
        assert TEACHER not in log and "Olivia" not in log

        sign_in_at_smarthost(page, f"http://{web}", smarthost, MODERATOR_A)
        page.goto(f"http://{web}/participants")
        row = page.locator(f"tr[data-participant='{class_4b['id']}']")
        expect(row.locator(".kind")).to_have_text("Group of 30")
        page.goto(f"http://{web}/participants/{class_4b['id']}")
        expect(page.locator("#kind")).to_have_text("Group of 30")
        expect(page.locator("#members li")).to_have_count(30)
        expect(page.locator("#members")).to_contain_text("Olivia")
        page.screenshot(path=output_folder() / "group-participant.png", full_page=True)
        page.click("details.edit-details summary")
        page.fill("#edit-members", "Maya, Leo, Nora")
        page.click("#details-form button[type=submit]")
        expect(page.locator("#done")).to_be_visible()
        expect(page.locator("#members li")).to_have_text(["Maya", "Leo", "Nora"])
        expect(page.locator("#kind")).to_have_text("Group of 3")
        assert re.search(r"/participants/p\d+\?done=details$", page.url)

        page.goto(f"http://{web}/participants")  # a club, enrolled on the add form
        page.check("#add-kind-group")
        page.locator("section.add").screenshot(path=output_folder() / "group-add-form.png")
        page.fill("#add-name", "Dragon Readers")
        page.fill("#add-email", "club.leader@riverside-library.example.org")
        page.fill("#add-age-band", "10-12")
        page.fill("#add-members", "Maya, Zoe")
        page.click("section.add button[type=submit]")
        expect(page.locator("#kind")).to_have_text("Group of 2")
        expect(page.locator("#consent")).to_have_text("not needed")
    changed = [e for e in ctx.store.audit_log() if e["event"] == "details-changed"]
    assert (changed[-1]["fields"], changed[-1]["by"], changed[-1]["via"]) == (
        "members",
        MODERATOR_A,
        "web",
    )
    assert "Nora" not in json.dumps(ctx.store.audit_log())
