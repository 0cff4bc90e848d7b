"""Groups (a class or a club) as participants: the record, enrolment and its refusals, the
members kept for staff only, matching that never mixes groups and people, and the command
line's one-line errors."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path

import pytest

from relay import cli, matching, participants, rights
from relay import config as config_module
from relay.config import MatchingSettings, Partnership
from relay.context import Context, open_context
from relay.errors import InvalidField, UserError
from relay.store.records import Participant
from relay.web import importing
from tests.conftest import MODERATOR_A, config_text

TODAY = date(2026, 11, 30)
PARTNERSHIP = Partnership("riverside+valparaiso", ("riverside", "valparaiso"))
TEACHER = "laura.jones@riverside-school.example.net"
PROFESORA = "ines.mora@colegio-severin.example.net"
GROUP = participants.Details(kind="group", age_band="9-10", members="Ana, Luis; Maya\nLuis")


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    return open_context(config_module.load(path))


def test_a_group_record_reads_back_and_an_old_record_is_a_person() -> None:
    group = Participant(
        id="p1",
        library="riverside",
        name="Class 4B",
        email=TEACHER,
        language="en",
        masked="m1@pals.example.org",
        kind="group",
        members=("Ana", "Luis"),
    )
    assert Participant.from_dict(json.loads(json.dumps(group.to_dict()))) == group
    assert group.is_group
    old = group.to_dict()
    del old["kind"], old["members"]
    read = Participant.from_dict(old)
    assert (read.kind, read.members, read.is_group) == ("", (), False)


def test_a_group_is_enrolled_without_consent_and_its_members_stay_out_of_the_audit(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="relay")
    group = participants.enroll(ctx, "riverside", "Class 4B", TEACHER, details=GROUP, by="x")
    assert (group.kind, group.members, group.consent) == ("group", ("Ana", "Luis", "Maya"), "")
    assert group.may_correspond  # 9 years old, but its leader is an adult: no guardian
    person = participants.enroll(ctx, "riverside", "Leo", "leo@example.net")
    assert (person.kind, person.is_group) == ("person", False)

    edited = participants.edit(ctx, group, participants.Details(members="Ana, Nora"))
    assert edited.members == ("Ana", "Nora")
    changed = [e for e in ctx.store.audit_log() if e["event"] == "details-changed"]
    assert changed[-1]["fields"] == "members"
    written = json.dumps(ctx.store.audit_log()) + caplog.text
    assert "Nora" not in written and "Luis" not in written
    assert TEACHER not in caplog.text


@pytest.mark.parametrize(
    ("details", "guardian", "field"),
    [
        (participants.Details(kind="group", birth_year=2016), None, "birth_year"),
        (participants.Details(kind="group"), "mum@example.net", "guardian"),
        (participants.Details(members="Ana"), None, "members"),
        (participants.Details(kind="club"), None, "kind"),
        (participants.Details(kind="group", members="x" * 61), None, "members"),
    ],
)
def test_what_a_group_may_not_have_names_the_field(
    ctx: Context, details: participants.Details, guardian: str | None, field: str
) -> None:
    with pytest.raises(InvalidField) as raised:
        participants.enroll(ctx, "riverside", "Class", TEACHER, guardian=guardian, details=details)
    assert raised.value.field == field
    assert ctx.store.participants() == []


def test_a_group_and_a_person_are_never_pals(ctx: Context) -> None:
    group = participants.enroll(ctx, "riverside", "Class 4B", TEACHER, details=GROUP)
    person = participants.enroll(ctx, "valparaiso", "Tomás", "tomas@example.net")
    with pytest.raises(UserError, match="is a group and p2 a person"):
        participants.pair(ctx, person, group)
    with pytest.raises(InvalidField, match="kind is chosen at enrolment"):
        participants.edit(ctx, group, participants.Details(kind="person"))


def _one(number: int, library: str, *, group: bool, band: str = "9-10") -> Participant:
    return Participant(
        id=f"p{number}",
        library=library,
        name=f"Class {number}" if group else f"Child{number}",
        email=f"x{number}@example.net",
        language="en" if library == "riverside" else "es",
        masked=f"m{number}@pals.example.org",
        age_band=band,
        interests=("books",),
        kind="group" if group else "person",
    )


def test_matching_pairs_groups_with_groups_and_people_with_people() -> None:
    everyone = [
        _one(1, "riverside", group=True),
        _one(2, "riverside", group=False),
        _one(3, "riverside", group=False),
        _one(4, "valparaiso", group=False),
        _one(5, "valparaiso", group=True, band="10-11"),
        _one(6, "riverside", group=True),  # a second class; the other side has one
        _one(7, "valparaiso", group=False),
    ]
    for uneven in ("two-pals", "together", "leave-out"):
        proposal = matching.propose(
            PARTNERSHIP,
            everyone,
            MatchingSettings(uneven=uneven),  # type: ignore[arg-type]
            TODAY,
        )
        assert all(p.first.is_group == p.second.is_group for p in proposal.pairs)
        groups = [p for p in proposal.pairs if p.first.is_group]
        assert (groups[0].first.id, groups[0].second.id) == ("p1", "p5")
        assert matching.explain(groups[0]).startswith(
            "two classes or clubs: Class 1 and Class 5; ages 9 and 10; "
        )
    # Under "leave-out" the second class waits, for a group, never for a person.
    alone = {left.participant.id: matching.why_not(left, 2) for left in proposal.unmatched}
    assert alone == {
        "p6": "every group at valparaiso within the age gap already has a pal; "
        "waits for the next match"
    }


def test_the_command_line_enrols_shows_and_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    run = ["--config", str(path), "participants"]
    add = [*run, "add", "--library", "riverside", "--email", TEACHER, "--name"]
    group = ["--group", "--members", "Ana, Luis", "--age-band", "9-10"]
    assert cli.main([*add, "Class 4B", *group]) == 0
    assert capsys.readouterr().out.endswith("a group of 2 members\n")
    assert cli.main([*run, "show", "p1"]) == 0
    shown = capsys.readouterr().out
    assert "kind:      group of 2\nmembers:   Ana, Luis\n" in shown
    assert cli.main([*run, "edit", "p1", "--members", "Ana, Luis, Nora"]) == 0
    assert cli.main([*run, "list"]) == 0
    assert "group of 3" in capsys.readouterr().out
    for argv, error in (
        ([*add, "Leo", "--members", "Ana"], "--members: only a group (a class or a club) has"),
        ([*add, "Club", "--group", "--birth-year", "2016"], "--birth-year: a group has an age"),
        ([*add, "Club", "--group", "--guardian", "m@example.net"], "--guardian: a group has no"),
        (["--config", str(path), "pair", "p1", "p9"], "p9: no participant"),
    ):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"penpal-relay: {error}") and err.count("\n") == 1, err
    tomas = [*run, "add", "--library", "valparaiso", "--name", "Tomás", "--email", PROFESORA]
    assert cli.main(tomas) == 0
    capsys.readouterr()
    assert cli.main(["--config", str(path), "pair", "p1", "p2"]) == 1
    assert capsys.readouterr().err == (
        "penpal-relay: p1 (Class 4B) is a group and p2 a person; a group's pal is another group\n"
    )


def test_an_import_reads_kind_and_members_and_an_export_leaves_members_out(ctx: Context) -> None:
    text = (
        "name,email,kind,age_band,members,birth_year\n"
        f'Class 4B,{TEACHER},clase,9-10,"Ana, Luis",\n'
        f"Leo,leo@example.net,,,Ana,\n"
        f"Club,club@example.net,group,,,2015\n"
    )
    plan = importing.plan(ctx, "riverside", text, today=TODAY)
    assert [(r.enrolment.kind, r.enrolment.members) for r in plan.rows] == [
        ("group", ("Ana", "Luis"))
    ]
    assert [(p.line, p.kind) for p in plan.problems] == [
        (3, "members-person"),
        (4, "group-birth_year"),
    ]
    created, _ = importing.create(ctx, "riverside", text, MODERATOR_A)
    exported = rights.export(ctx, created[0], by=MODERATOR_A)
    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"Class 4B" in everything and b"Luis" not in everything


def test_an_import_pairs_alike_only_and_welcomes_the_pairs_it_makes(ctx: Context) -> None:
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", "tomas@correo.example.cl")
    clase = participants.enroll(ctx, "valparaiso", "Clase 5A", PROFESORA, details=GROUP)
    text = (
        "name,email,kind,age_band,pal\n"
        f"Class 4B,{TEACHER},group,9-10,{tomas.masked}\n"
        f"Leo,leo@example.net,,,{tomas.id}\n"
        f"Dragon Readers,club@example.net,club,9-10,{clase.id}\n"
    )
    plan = importing.plan(ctx, "riverside", text, today=TODAY)
    assert [(p.line, p.kind, p.column) for p in plan.problems] == [(2, "pal-kind", "pal")]
    created, done = importing.create(ctx, "riverside", text, MODERATOR_A)
    assert [p.name for p in created] == ["Leo", "Dragon Readers"] and len(done.problems) == 1
    welcomed = sorted(item.meta["to"][0] for item in ctx.spool.outbox() if "welcome" in item.id)
    assert welcomed == sorted(["leo@example.net", tomas.email, "club@example.net", PROFESORA])
