"""Data rights without a running relay: keys removed beside colliding ones, records reduced
to figures, audit entries without their words, messages searched decoded, and the
`participants export|erase` commands' answers to mistakes."""

from __future__ import annotations

import email
import email.policy
import io
import json
import zipfile
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from unittest.mock import ANY

import pytest

import relay.store
from relay import cli, participants, rights
from relay import config as config_module
from relay.context import Context, open_context
from relay.letters import versions
from relay.outbox import Notice, door
from relay.rights.erase import _reduced, _without_details, readable_text
from relay.scrub.model import ScrubbedLetter
from relay.store import Store
from relay.store.records import (
    DELIVERED,
    HELD,
    REJECTED,
    Flag,
    Letter,
    Participant,
    PendingCommand,
    Step,
)
from tests.conftest import MODERATOR_A, MODERATOR_A2, MODERATOR_B, config_text


def _letter(letter_id: int, status: str = DELIVERED, **more: object) -> Letter:
    values: dict[str, object] = {
        "id": letter_id,
        "spool_id": "18a-ff",
        "sender": "p1",
        "recipient": "p2",
        "sender_masked": "quiet-heron-2841@pals.example.org",
        "recipient_masked": "jolly-tiger-5811@pals.example.org",
        "sender_library": "riverside",
        "recipient_library": "valparaiso",
        "subject": "My dog Pepper",
        "received_at": "2026-11-02T10:00:00+00:00",
        "status": status,
    }
    return Letter.from_dict(values | more)


def test_a_key_removed_from_its_first_slot_leaves_a_colliding_key_findable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)
    real = relay.store._key_doc_id
    # Three keys with one 64-bit hash, as `_set_key` keeps them: one first slot, two more.
    monkeypatch.setattr(
        relay.store, "_key_doc_id", lambda key: 7 if key.startswith("same:") else real(key)
    )
    for name in ("a", "b", "c"):
        store._put(f"same:{name}", name.upper())
    store._remove_key("same:a")
    assert [store._key(f"same:{n}") for n in ("a", "b", "c")] == [None, "B", "C"]
    store._put("same:d", "D")  # a new slot number, never one still taken
    store._remove_key("same:c")
    store._remove_key("same:b")
    assert [store._key(f"same:{n}") for n in ("b", "c", "d")] == [None, None, "D"]
    store._remove_key("same:unknown")  # nothing to remove: nothing happens
    assert store._key("same:d") == "D"


def test_letters_are_replaced_in_the_archive_and_the_hot_shards(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save_letter(_letter(1, HELD))
    store.save_letter(_letter(1))  # delivered: appended to the archive
    store.save_letter(_letter(1, "bounced"))  # and again
    store.save_letter(_letter(2, HELD, sender="p3", recipient="p1"))
    store.save_letter(_letter(3, sender="p9", recipient="p8"))
    assert [x.id for x in store.letters_of("p1")] == [1, 2]
    store.replace_letters([_reduced(store.letter(1) or _letter(1)), _reduced(_letter(2, HELD))])
    archived = (tmp_path / "archive" / "letters-00000.jsonl").read_text()
    assert "Pepper" in archived  # letter 3, someone else's, is untouched
    assert archived.count('"id":1,') == 1 and archived.count('"id":3,') == 1
    assert store.hot_letters() == []
    assert store.letters_of("p1") == []
    first, second = store.letter(1), store.letter(2)
    assert first is not None and second is not None
    assert (first.status, second.status) == ("bounced", REJECTED)
    assert first.subject == first.sender == first.sender_masked == first.spool_id == ""
    assert (first.sender_library, first.received_at) == ("riverside", "2026-11-02T10:00:00+00:00")


def test_a_reduced_letter_keeps_figures_only() -> None:
    full = _letter(
        5,
        HELD,
        flags=[Flag(kind="phone", text="555-0100", part="text", start=0, end=8)],
        notes=["Maya's phone number"],
        reason="no phone numbers",
        history=[Step(at="2026-11-02T10:00:00+00:00", event="held", by="Ana")],
        message_id="<abc@family-mail.example.net>",
        decided_by="ana.lopez@riverside-library.example.org",
    )
    reduced = _reduced(full).to_dict()
    kept = {k: v for k, v in reduced.items() if v not in ("", (), None)}
    assert set(kept) == {
        "id",
        "sender_library",
        "recipient_library",
        "received_at",
        "status",
        "history",
        "sender_check",
        "reduced_at",  # when: a reduced letter is shown with a note, never read again
    }
    assert kept["status"] == REJECTED
    assert [s["event"] for s in reduced["history"]] == ["held", "rejected"]
    assert all(s["by"] == "" for s in reduced["history"])


def test_audit_entries_about_them_keep_ids_and_who_acted_only() -> None:
    maya = Participant(
        id="p1",
        library="riverside",
        name="Maya",
        email="maya@family-mail.example.net",
        language="en",
        masked="quiet-heron-2841@pals.example.org",
    )
    rejected = {
        "at": "t",
        "event": "rejected",
        "letter": 5,
        "by": MODERATOR_A,
        "via": "cli",
        "reason": "Please don't write your street, Maya",
    }
    enrolled = {"at": "t", "event": "enrolled", "participant": "p1", "masked": maya.masked}
    bounced = {"at": "t", "event": "notice-not-delivered", "to": maya.masked.upper()}
    other = {"at": "t", "event": "rejected", "letter": 6, "reason": "about someone else"}
    assert _without_details(rejected, maya, {5}) == {k: rejected[k] for k in list(rejected)[:5]}
    assert _without_details(enrolled, maya, {5}) == {
        "at": "t",
        "event": "enrolled",
        "participant": "p1",
    }
    assert _without_details(bounced, maya, {5}) == {"at": "t", "event": "notice-not-delivered"}
    assert _without_details(other, maya, {5}) == other


def test_an_address_is_found_in_a_message_however_it_is_encoded() -> None:
    message = EmailMessage()
    message["From"] = "=?utf-8?q?Zo=C3=A9?= <zoe@example.net>"
    message["Subject"] = "hello"
    message.set_content("écrit à ZOE.B@example.net, ça va ?", cte="base64")
    message.add_attachment(b"kid@example.org", maintype="text", subtype="plain", cte="base64")
    text = readable_text(message.as_bytes(policy=SMTP))
    assert "zoé" in text and "zoe.b@example.net" in text and "kid@example.org" in text


# --- the commands ----------------------------------------------------------------------------


@pytest.fixture
def configured(tmp_path: Path) -> tuple[Path, Context]:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    return path, open_context(config_module.load(path))


def test_erase_asks_first_and_mistakes_get_one_line(
    configured: tuple[Path, Context],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, ctx = configured
    maya = participants.enroll(ctx, "riverside", "Maya", "maya@family-mail.example.net")
    run = ["--config", str(path), "participants"]

    monkeypatch.setattr("sys.stdin", io.StringIO("no\n"))
    assert cli.main([*run, "erase", maya.id, "--by", MODERATOR_A]) == 1
    out, err = capsys.readouterr()
    assert "Erase p1 (Maya" in out and "cannot be undone" in out
    assert err == "penpal-relay: nothing erased (answer yes, or pass --yes)\n"
    assert ctx.store.participant(maya.id) is not None

    assert cli.main([*run, "erase", maya.id, "--yes", "--by", MODERATOR_A2]) == 1
    assert capsys.readouterr().err == (
        f"penpal-relay: --by: {MODERATOR_A2} is not a coordinator of riverside in the config\n"
    )
    assert cli.main([*run, "export", maya.id, "--by", MODERATOR_B]) == 1
    assert "--by: " in capsys.readouterr().err
    # Who asked is named in the audit log (and an erasure's notice to moderators).
    for asking, role, more in (("export", "staff", []), ("erase", "a coordinator", ["--yes"])):
        assert cli.main([*run, asking, maya.id, *more]) == 1
        assert capsys.readouterr().err == (
            f"penpal-relay: --by: say who asks for this ({role} of riverside)\n"
        )
    by = ["--by", MODERATOR_A]
    assert cli.main([*run, "export", "p99", *by]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert cli.main([*run, "export", maya.id, *by, "--output", "/nonexistent/x.zip"]) == 1
    assert capsys.readouterr().err == "penpal-relay: --output: no folder /nonexistent\n"
    folder = path.parent  # a folder, not a file: nothing written, nothing audited
    assert cli.main([*run, "export", maya.id, *by, "--output", str(folder)]) == 1
    assert capsys.readouterr().err == (
        f"penpal-relay: --output: {folder} is a folder; give a file name ending in .zip\n"
    )
    assert not [e for e in ctx.store.audit_log() if e["event"] == "exported"]

    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    assert cli.main([*run, "erase", maya.masked, *by]) == 0
    assert "erased p1: 0 letters" in capsys.readouterr().out
    assert ctx.store.participants() == []
    assert cli.main([*run, "erase", maya.id, "--yes", *by]) == 1
    assert capsys.readouterr().err.startswith("penpal-relay: p1: no participant")


def test_mail_to_a_family_address_a_sibling_still_uses_stays(
    configured: tuple[Path, Context],
) -> None:
    _, ctx = configured
    family = "the.smiths@family-mail.example.net"
    maya = participants.enroll(ctx, "riverside", "Maya", family)
    participants.enroll(ctx, "riverside", "Leo", family)
    own = participants.enroll(ctx, "riverside", "Ivy", "ivy@family-mail.example.net")
    to = {"family": family, "maya": maya.masked, "ivy": own.email}
    for item, address in to.items():
        message = door.program_message(ctx, Address("", addr_spec=address), "Hello", "Hi")
        door.queue(ctx, f"notice-{item}", message, Notice("test"), to=address)
    maildir = ctx.config.delivery.maildir / "new"
    maildir.mkdir(parents=True)
    (maildir / "1.notice-family-0.host").write_text(f"Delivered-To: {family}\n\nHi Leo\n")
    (maildir / "1.notice-maya-0.host").write_text(f"To: {maya.masked}\n\nHi\n")

    rights.erase(ctx, maya, via="test")
    left = [item.id for item in ctx.spool.outbox() if not item.id.startswith("erased-")]
    assert left == ["notice-family", "notice-ivy"]  # and the moderators' notices of it
    assert sorted(p.name for p in maildir.iterdir()) == ["1.notice-family-0.host"]
    assert ctx.store.by_email(family)[0].name == "Leo"


def test_commands_waiting_for_confirmation_go_with_the_participant(tmp_path: Path) -> None:
    store = Store(tmp_path)
    family = "the.smiths@family-mail.example.net"
    for token, asked_for in (("t1", "p1"), ("t2", "p1"), ("t3", "p2")):
        store.record_pending_command(
            PendingCommand(token, "pause", asked_for, family, "guardian", expires=9e9)
        )
    store.forget_pending_commands("p1")
    assert store.pending_command("t1") is None and store.pending_command("t2") is None
    sibling = store.pending_command("t3")  # the sibling's stays
    assert sibling is not None and sibling.participant == "p2"


def test_the_export_holds_only_what_reached_them_and_no_staff_or_server_words(
    configured: tuple[Path, Context],
) -> None:
    _, ctx = configured
    maya = participants.enroll(ctx, "riverside", "Maya", "maya@family-mail.example.net")
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", "tomas.perez@correo.example.net")
    participants.pair(ctx, maya, tomas)
    sent = {"sender": tomas.id, "recipient": maya.id, "sender_masked": tomas.masked}
    sent |= {"recipient_masked": maya.masked, "sender_library": "valparaiso"}
    sent |= {"recipient_library": "riverside"}
    subjects = {1: "Hola Maya", 2: "Calle Olmo 12", 3: "Mi teléfono"}
    for letter_id, status in ((1, DELIVERED), (2, REJECTED), (3, HELD)):
        item = f"18a-{letter_id}"
        letter = _letter(letter_id, status, spool_id=item, subject=subjects[letter_id], **sent)
        ctx.store.save_letter(letter)
        text = f"{subjects[letter_id]}: hello from Valparaíso"
        versions.keep(ctx, item, maya.id, ScrubbedLetter(subjects[letter_id], text, None))
    ctx.store.audit("rejected", letter=2, by=MODERATOR_B, via="web", reason="his street")
    bounce = f"550 5.1.1 <{tomas.email}>: no such user"
    ctx.store.audit("notice-failed", letter=1, to=tomas.email, error=bounce, attempts=3)

    with zipfile.ZipFile(io.BytesIO(rights.export(ctx, maya, by=MODERATOR_A))) as archive:
        names = set(archive.namelist())
        listed = {x["id"]: x for x in json.loads(archive.read("letters.json"))}
        audit = archive.read("audit.json").decode()
        readme = " ".join(archive.read("README.txt").decode().split())
        eml = archive.read("letters/received/001.eml")
    parsed = email.message_from_bytes(eml, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(("plain",))
    received = str(body.get_content()) if body is not None else ""
    # The rejected and the held letter are listed without their subject, and not given.
    assert sorted(n for n in names if n.startswith("letters/")) == ["letters/received/001.eml"]
    assert [(listed[i]["status"], listed[i]["subject"], listed[i]["file"]) for i in (2, 3)] == [
        (REJECTED, None, None),
        (HELD, None, None),
    ]
    assert "or one a librarian did not send, is only listed in letters.json" in readme
    assert listed[1]["subject"] == "Hola Maya" and "Hola Maya" in parsed["Subject"]
    # No staff address, no mail server's words quoting the pal's address, no reason.
    assert json.loads(audit)[-2:] == [
        {"at": ANY, "event": "rejected", "letter": 2, "via": "web"},
        {"at": ANY, "event": "notice-failed", "letter": 1, "attempts": 3},
    ]
    assert MODERATOR_B not in audit and tomas.email not in audit and "street" not in audit
    # The footer links to the privacy notice in her language, as the delivered letter did.
    assert f"How we look after your data: {ctx.config.privacy_url('en')}" in received


def test_both_libraries_learn_of_an_erasure_by_masked_address_whoever_erased(
    configured: tuple[Path, Context],
) -> None:
    _, ctx = configured
    maya = participants.enroll(
        ctx, "riverside", "Maya", "maya@family-mail.example.net", guardian="mum@example.net"
    )
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", "tomas.perez@correo.example.net")
    leo = participants.enroll(ctx, "riverside", "Leo", "leo@family-mail.example.net")
    participants.pair(ctx, maya, tomas)

    def notices() -> dict[str, EmailMessage]:
        found = {}
        for item in ctx.spool.outbox():
            parsed = email.message_from_bytes(
                ctx.spool.message("outbox", item.id), policy=email.policy.default
            )
            assert isinstance(parsed, EmailMessage)
            found[item.id] = parsed
        return found

    rights.erase(ctx, maya, by=MODERATOR_A, via="web")  # the dashboard and the command line
    sent = notices()
    assert sorted(sent) == ["erased-p1-own-0", "erased-p1-own-1", "erased-p1-pal-p2-0"]
    own, pal = sent["erased-p1-own-1"], sent["erased-p1-pal-p2-0"]
    assert own["To"].addresses[0].addr_spec == MODERATOR_A2
    assert own["Subject"] == "A participant was erased by Ana"
    own_text = " ".join(str(own.get_content()).split())
    assert "At the request of the participant or their guardian, Ana erased everything" in own_text
    assert f"(p1, {maya.masked})" in own_text and "(Tomás)" in own_text
    assert pal["To"].addresses[0].addr_spec == MODERATOR_B
    assert pal["Subject"] == "Tomás necesita un nuevo amigo por correspondencia"
    assert maya.masked in str(pal.get_content())
    for message in sent.values():
        text = message.as_string()
        assert "Maya" not in text and maya.email not in text and "mum@" not in text

    rights.erase(ctx, leo, via="email", asked_by="guardian")  # no pal: their library only
    assert sorted(set(notices()) - set(sent)) == ["erased-p3-own-0", "erased-p3-own-1"]
    by_email = notices()["erased-p3-own-0"]
    assert by_email["Subject"] == "A participant was erased at their request"
    assert "At their guardian's request, by email" in str(by_email.get_content())


def test_a_message_to_two_pals_stays_for_the_one_not_erased(
    configured: tuple[Path, Context],
) -> None:
    _, ctx = configured
    maya = participants.enroll(ctx, "riverside", "Maya", "maya@family-mail.example.net")
    leo = participants.enroll(ctx, "riverside", "Leo", "leo@family-mail.example.net")
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", "tomas.perez@correo.example.net")
    spool = ctx.spool
    raw = f"From: {tomas.email}\nTo: {maya.masked}, {leo.masked}\n\nHola a los dos\n".encode()
    both = {"sender": tomas.id, "sender_masked": tomas.masked, "spool_id": "18b-both"}
    for letter_id, reader in ((1, maya), (2, leo)):
        ctx.store.save_letter(_letter(letter_id, HELD, recipient=reader.id, **both))
        versions.keep(ctx, "18b-both", reader.id, ScrubbedLetter("Hola", "Hola a los dos", None))
    spool.path("messages", "18b-both").write_bytes(raw)
    # Not processed yet: one to both of them, one to her only.
    for item, readers in (("18c-both", [maya, leo]), ("18c-hers", [maya])):
        spool.path("incoming", item).write_bytes(raw)
        meta = {
            "mail_from": tomas.email,
            "rcpt_tos": [p.masked for p in readers],
            "routes": [[p.masked, tomas.id, p.id] for p in readers],
        }
        spool.path("incoming", item, ".json").write_text(json.dumps(meta))

    rights.erase(ctx, maya, via="test")
    assert spool.original("18b-both") == raw  # Leo's letter is still delivered from it
    assert versions.content(ctx, _letter(2, spool_id="18b-both", recipient=leo.id), tomas)
    assert spool.scrubbed("18b-both", maya.id) is None
    assert spool.pending_ids() == ["18c-both"]
    waiting = spool.incoming("18c-both")
    assert waiting is not None and waiting.rcpt_tos == (leo.masked,)
    assert [(r.rcpt, r.recipient) for r in waiting.routes] == [(leo.masked, leo.id)]
