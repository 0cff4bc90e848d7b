"""Quiet pairs: the weeks boundary, a new pair, who owes a letter, letters both ways; then on
a store: one reading of letters (archive and held) and pairings, a nudge once per quiet
period, re-matching, and the reminder that lists them at most weekly on its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay import cli, notices, participants, quiet
from relay import config as config_module
from relay.context import Context, open_context
from relay.errors import NotFound
from relay.store.records import LetterParties, Participant
from tests.conftest import MODERATOR_A, MODERATOR_A2, MODERATOR_B, config_text
from tests.support.past_letters import record_letter

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
WEEKS = 6


def person(pid: str, library: str, pals: tuple[str, ...], **more: object) -> Participant:
    return Participant(
        id=pid,
        library=library,
        name=pid.upper(),
        email=f"{pid}@family.example.net",
        language="en",
        masked=f"masked-{pid}@pals.example.org",
        pals=pals,
        created_at="2026-01-01T00:00:00+00:00",
        **more,  # type: ignore[arg-type]
    )


def written(number: int, writer: str, pal: str, at: datetime) -> LetterParties:
    return LetterParties(number, writer, pal, at.isoformat(timespec="seconds"))


def paired_at(at: datetime, *pairs: tuple[str, str]) -> list[dict[str, object]]:
    return [
        {"at": at.isoformat(timespec="seconds"), "event": "paired", "participants": list(p)}
        for p in pairs
    ]


PEOPLE = [person("p1", "riverside", ("p2",)), person("p2", "valparaiso", ("p1",))]


def test_quiet_from_exactly_quiet_weeks_after_the_pairing_and_both_owe() -> None:
    just = NOW - timedelta(weeks=WEEKS)
    (found,) = quiet.find(PEOPLE, quiet.activity([], paired_at(just, ("p1", "p2"))), NOW, WEEKS)
    assert (found.key, found.weeks, found.since, found.last_letter) == ("p1-p2", WEEKS, just, None)
    assert [p.id for p in found.owing] == ["p1", "p2"]  # nobody wrote: both owe a letter
    later = quiet.activity([], paired_at(just + timedelta(minutes=1), ("p2", "p1")))
    assert quiet.find(PEOPLE, later, NOW, WEEKS) == []


def test_a_new_pair_is_not_quiet_though_its_two_wrote_long_before() -> None:
    letters = [written(1, "p1", "p2", NOW - timedelta(weeks=30))]  # an earlier pairing
    seen = quiet.activity(letters, paired_at(NOW - timedelta(days=1), ("p1", "p2")))
    assert quiet.find(PEOPLE, seen, NOW, WEEKS) == []


def test_letters_both_ways_the_last_decides_who_owes() -> None:
    start = NOW - timedelta(weeks=20)
    letters = [
        written(1, "p1", "p2", start + timedelta(weeks=1)),
        written(3, "p1", "p2", start + timedelta(weeks=5)),
        written(2, "p2", "p1", start + timedelta(weeks=3)),
    ]
    (found,) = quiet.find(PEOPLE, quiet.activity(letters, paired_at(start, ("p1", "p2"))), NOW, 6)
    assert (found.last_letter, found.weeks, [p.id for p in found.owing]) == (3, 15, ["p2"])
    answered = [*letters, written(4, "p2", "p1", NOW - timedelta(weeks=6, days=1))]
    (found,) = quiet.find(PEOPLE, quiet.activity(answered, paired_at(start, ("p1", "p2"))), NOW, 6)
    assert (found.last_letter, found.weeks, [p.id for p in found.owing]) == (4, 6, ["p1"])
    assert found.facing("valparaiso").first.id == "p2"
    recent = [*letters, written(5, "p2", "p1", NOW - timedelta(weeks=5))]
    assert quiet.find(PEOPLE, quiet.activity(recent, paired_at(start, ("p1", "p2"))), NOW, 6) == []


def test_two_writing_together_share_their_letters_with_the_pal() -> None:
    """Leo (p3) writes together with Maya (p1) to Tomás (p2): his pair is not quiet when
    Maya wrote to Tomás, and when Tomás wrote to Maya, Leo owes the answer too."""
    team = [
        person("p1", "riverside", ("p2",), writes_with="p3"),
        person("p2", "valparaiso", ("p1", "p3")),
        person("p3", "riverside", ("p2",), writes_with="p1"),
    ]
    audit = paired_at(NOW - timedelta(weeks=20), ("p1", "p2"), ("p3", "p2"))
    seen = quiet.activity([written(1, "p1", "p2", NOW - timedelta(weeks=1))], audit)
    assert quiet.find(team, seen, NOW, WEEKS) == []
    seen = quiet.activity([written(2, "p2", "p1", NOW - timedelta(weeks=7))], audit)
    found = quiet.find(team, seen, NOW, WEEKS)
    assert [(q.key, q.last_letter, [p.id for p in q.owing]) for q in found] == [
        ("p1-p2", 2, ["p1"]),
        ("p2-p3", 2, ["p3"]),
    ]


def test_only_active_pals_who_may_write_and_a_nudge_of_this_quiet_period() -> None:
    start = NOW - timedelta(weeks=10)
    nudge = {"at": (start - timedelta(days=1)).isoformat(), "event": "nudged"}
    audit = [*paired_at(start, ("p1", "p2")), nudge | {"participants": ["p1", "p2"]}]
    (found,) = quiet.find(PEOPLE, quiet.activity([], audit), NOW, WEEKS)
    assert found.nudged_at is None  # nudged in an earlier quiet period, before the pairing
    audit.append(
        nudge | {"participants": ["p2", "p1"], "at": (NOW - timedelta(days=2)).isoformat()}
    )
    (found,) = quiet.find(PEOPLE, quiet.activity([], audit), NOW, WEEKS)
    assert found.nudged_at == NOW - timedelta(days=2)
    paused = [PEOPLE[0].but(status="paused"), PEOPLE[1]]
    waiting = [PEOPLE[0], PEOPLE[1].but(consent="pending")]
    for people in (paused, waiting):
        assert quiet.find(people, quiet.activity([], audit), NOW, WEEKS) == []


def test_a_resumed_pair_counts_from_the_resume_and_an_earlier_nudge_is_forgotten() -> None:
    """A program closed (both paused) and one of the two resumed, or a guardian's consent
    given: the pair counts from then, and a nudge from before does not count."""
    start = NOW - timedelta(weeks=30)
    audit = [
        *paired_at(start, ("p1", "p2")),
        {
            "at": (NOW - timedelta(weeks=20)).isoformat(),
            "event": "nudged",
            "participants": ["p1", "p2"],
            "owing": ["p1", "p2"],
        },
    ]
    letters = [written(1, "p1", "p2", NOW - timedelta(weeks=25))]
    for event in ("resumed", "consent-given"):
        back = {"event": event, "participant": "p2", "library": "valparaiso"}
        recent = [*audit, back | {"at": (NOW - timedelta(weeks=2)).isoformat()}]
        assert quiet.find(PEOPLE, quiet.activity(letters, recent), NOW, WEEKS) == []
        longer = [*audit, back | {"at": (NOW - timedelta(weeks=7)).isoformat()}]
        (found,) = quiet.find(PEOPLE, quiet.activity(letters, longer), NOW, WEEKS)
        assert (found.since, found.weeks, found.nudged_at) == (NOW - timedelta(weeks=7), 7, None)
        assert (found.last_letter, [p.id for p in found.owing]) == (None, ["p1", "p2"])


# --- on a store ----------------------------------------------------------------------------


@pytest.fixture
def program(tmp_path: Path) -> tuple[Context, list[Participant]]:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    people = [
        participants.enroll(ctx, library, name, f"{local}@family.example.net")
        for library, name, local in (
            ("riverside", "Maya", "maya"),
            ("valparaiso", "Tomás", "tomas"),
            ("riverside", "Leo", "leo"),
            ("valparaiso", "Sofía", "sofia"),
        )
    ]
    participants.pair(ctx, people[0], people[1])
    participants.pair(ctx, people[2], people[3])
    return ctx, people


def weeks_ago(weeks: float) -> datetime:
    return datetime.now(UTC) - timedelta(weeks=weeks)


def pairings_made(ctx: Context, when: datetime) -> None:
    """The pairings as if made at `when`: their audit entries say when a pair counts from."""
    at = when.isoformat(timespec="seconds")
    ctx.store.rewrite_audit(lambda e: e | {"at": at} if e.get("event") == "paired" else e)


def test_read_nudge_once_rematch_and_the_reminder(
    program: tuple[Context, list[Participant]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, (maya, tomas, leo, sofia) = program
    pairings_made(ctx, weeks_ago(12))
    record_letter(ctx, maya, tomas, weeks_ago(10), "delivered")
    last = record_letter(ctx, tomas, maya, weeks_ago(8), "rejected")  # he wrote: it counts
    record_letter(ctx, sofia, leo, weeks_ago(1), "held")  # waiting at valparaiso: not quiet
    now = datetime.now(UTC)
    (found,) = quiet.read(ctx, now, library_id="valparaiso")
    assert (found.first.id, found.second.id, found.last_letter) == (tomas.id, maya.id, last)
    assert (found.weeks, [p.id for p in found.owing]) == (8, [maya.id])

    config = ["--config", str(tmp_path / "config.toml")]
    assert cli.main([*config, "quiet", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["pair"], listed["owing"], listed["weeks"]) == (found.key, [maya.id], 8)
    assert cli.main([*config, "quiet", "nudge", found.key, "--by", MODERATOR_A]) == 0
    assert f"nudged {found.key}: a kind email to {maya.id} Maya" in capsys.readouterr().out
    assert cli.main([*config, "quiet", "nudge", found.key, "--by", "someone@example.org"]) == 1
    assert "--by: someone@example.org is not listed as staff" in capsys.readouterr().err
    with pytest.raises(quiet.AlreadyNudged, match="was nudged on"):
        quiet.nudge(ctx, found.key, "riverside", by=MODERATOR_A, via="dashboard")
    with pytest.raises(quiet.NotOurs, match="only riverside may nudge"):  # Maya is theirs
        quiet.nudge(ctx, found.key, "valparaiso", by=MODERATOR_B, via="dashboard")
    (entry,) = [e for e in ctx.store.audit_log() if e["event"] == "nudged"]
    assert entry["participants"] == [maya.id, tomas.id] and entry["owing"] == [maya.id]
    assert (entry["by"], entry["via"], entry["library"]) == (MODERATOR_A, "cli", "riverside")
    assert maya.email not in str(entry)
    outbox = ctx.config.relay.data_dir / "spool" / "outbox"
    sent = [p.read_bytes() for p in outbox.rglob("*") if p.is_file() and b"Tom" in p.read_bytes()]
    assert any(tomas.masked.encode() in m and b"is waiting to hear from you" in m for m in sent)
    assert all(tomas.email.encode() not in m for m in sent)

    # Quiet pairs alone: a reminder at the morning hour, then not again for a week.
    morning = now.replace(hour=15, minute=0) + timedelta(days=1)  # 10:00 in New York
    assert notices.send_reminders(ctx, morning, library_id="riverside") == {"riverside": (0, 1)}
    for days in (1, 6):
        later = morning + timedelta(days=days)
        assert notices.send_reminders(ctx, later, library_id="riverside") == {}
    week = morning + timedelta(days=7)
    assert notices.send_reminders(ctx, week, library_id="riverside") == {"riverside": (0, 1)}

    assert quiet.ended(ctx, found.key, "riverside") == ()  # still pals: nothing ended
    quiet.rematch(ctx, found.key, "riverside", by=MODERATOR_A)
    assert ctx.store.participant(maya.id).pals == ()  # type: ignore[union-attr]
    ended = quiet.ended(ctx, found.key, "valparaiso")  # what the page names, theirs first
    assert [(p.id, p.name) for p in ended] == [(tomas.id, "Tomás"), (maya.id, "Maya")]
    for made_up in ("Everything is fine", f"{leo.id}-{sofia.id}", "p1-p999"):
        assert quiet.ended(ctx, made_up, "riverside") == ()
    assert ctx.store.audit_log()[-1]["via"] == "quiet"
    with pytest.raises(NotFound):
        quiet.rematch(ctx, found.key, "riverside", by=MODERATOR_A)


def test_staff_who_only_send_the_newsletter_may_not_nudge_from_the_command_line(
    program: tuple[Context, list[Participant]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, (_, _, leo, sofia) = program
    pairings_made(ctx, weeks_ago(12))
    sam = f'{{ email = "{MODERATOR_A2}", name = "Sam", roles = ["moderator"] }},'
    pat = '{ email = "pat@example.org", name = "Pat", roles = ["newsletter"] },'
    text = (tmp_path / "config.toml").read_text()
    (tmp_path / "news.toml").write_text(text.replace(sam, sam + pat))
    key = quiet.pair_key(leo.id, sofia.id)
    nudge = ["--config", str(tmp_path / "news.toml"), "quiet", "nudge", key, "--by"]
    assert cli.main([*nudge, "pat@example.org"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("--by: pat@example.org is neither a moderator nor a coordinator")
    assert "\n" not in err and not [e for e in ctx.store.audit_log() if e["event"] == "nudged"]
    assert cli.main([*nudge, MODERATOR_A2]) == 0


def test_each_library_nudges_its_own_patrons_and_a_team_is_nudged_once(
    program: tuple[Context, list[Participant]],
) -> None:
    """Leo and Sofía never wrote: each library nudges its own patron, once. Inés writes
    together with Maya to Tomás; Maya wrote last, so Tomás owes in both pairs and is nudged
    once. Either library may re-match."""
    ctx, (maya, tomas, leo, sofia) = program
    ines = participants.enroll(ctx, "riverside", "Inés", "ines@family.example.net")
    participants.pair(ctx, ines, tomas)
    ctx.store.team(maya, ines)
    pairings_made(ctx, weeks_ago(12))
    record_letter(ctx, maya, tomas, weeks_ago(9))
    both = quiet.pair_key(leo.id, sofia.id)

    nudged = quiet.nudge(ctx, both, "riverside", by=MODERATOR_A, via="web")
    assert [p.id for p in nudged.owing] == [leo.id]  # not Sofía: valparaiso speaks to her
    with pytest.raises(quiet.AlreadyNudged):
        quiet.nudge(ctx, both, "riverside", by=MODERATOR_A, via="web")
    (page,) = [
        q for q in quiet.read(ctx, datetime.now(UTC), library_id="valparaiso") if q.key == both
    ]
    assert page.nudged == {leo.id} and [p.id for p in page.owing_at("valparaiso")] == [sofia.id]
    nudged = quiet.nudge(ctx, both, "valparaiso", by=MODERATOR_B, via="web")
    assert [p.id for p in nudged.owing] == [sofia.id]
    with pytest.raises(quiet.NotOurs):  # only Tomás owes: riverside may not email him
        quiet.nudge(ctx, quiet.pair_key(maya.id, tomas.id), "riverside", by=MODERATOR_A, via="web")

    quiet.nudge(ctx, quiet.pair_key(maya.id, tomas.id), "valparaiso", by=MODERATOR_B, via="web")
    with pytest.raises(quiet.AlreadyNudged):  # the team's other pair: Tomás was nudged
        quiet.nudge(ctx, quiet.pair_key(ines.id, tomas.id), "valparaiso", by=MODERATOR_B, via="web")
    entries = [e for e in ctx.store.audit_log() if e["event"] == "nudged"]
    assert [(e["owing"], e["library"]) for e in entries] == [
        ([leo.id], "riverside"),
        ([sofia.id], "valparaiso"),
        ([tomas.id], "valparaiso"),
    ]
    outbox = ctx.config.relay.data_dir / "spool" / "outbox"
    to_tomas = {p.stem for p in outbox.rglob("nudge-*") if tomas.email in p.read_text()}
    assert len(to_tomas) == 1  # one nudge, not one per pair of the team

    quiet.rematch(ctx, quiet.pair_key(ines.id, tomas.id), "valparaiso", by=MODERATOR_B)
    (ended,) = [e for e in ctx.store.audit_log() if e["event"] == "unpaired"]
    assert (ended["library"], ended["by"], ended["via"]) == ("valparaiso", MODERATOR_B, "quiet")
    assert ctx.store.participant(ines.id).pals == ()  # type: ignore[union-attr]
