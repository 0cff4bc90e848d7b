"""Participants in one place: enrolment checks, lookups, pals, status, guardian, audit."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from relay import config as config_module
from relay import participants, replies
from relay.context import Context, open_context
from relay.errors import AlreadyEnrolled, InvalidField, NotFound, UserError
from relay.route import LetterRoute, Refusal, route_letter
from relay.store.records import Participant
from tests.conftest import DOMAIN, MAYA, TOMAS, config_text

EXTRA_LIBRARY = """
[[libraries]]
id = "lyon"
name = "Bibliothèque de Lyon"
country = "FR"
language = "fr"
timezone = "Europe/Paris"
staff = [ { email = "claire@bm-lyon.example.org", name = "Claire", roles = ["moderator"] } ]
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data", extra_libraries=EXTRA_LIBRARY))
    return open_context(config_module.load(path))


def _events(ctx: Context) -> list[tuple[str, str | list[str] | None]]:
    return [
        (e["event"], e.get("participant") or e.get("participants")) for e in ctx.store.audit_log()
    ]


def _route(ctx: Context, sender: Participant, recipient: Participant) -> object:
    return route_letter(
        ctx.config,
        sender.email,
        recipient.masked,
        by_masked=ctx.store.by_masked,
        by_email=ctx.store.by_email,
    )


# --- enrol ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("library", "name", "email", "language", "guardian", "field"),
    [
        ("atlantis", "Maya", MAYA, None, None, "library"),
        ("riverside", "  ", MAYA, None, None, "name"),
        ("riverside", "Maya", "not an address", None, None, "email"),
        ("riverside", "Maya", f"someone@{DOMAIN}", None, None, "email"),
        ("riverside", "Maya", MAYA, "English!", None, "language"),
        ("riverside", "Maya", MAYA, None, "mum at home", "guardian"),
        ("valparaiso", "Sofía", "sofía@correo.example.cl", None, None, "email"),
        ("riverside", "Maya", MAYA, None, "mamá@home.example.net", "guardian"),
    ],
)
def test_enrolment_errors_name_the_field(
    ctx: Context,
    library: str,
    name: str,
    email: str,
    language: str | None,
    guardian: str | None,
    field: str,
) -> None:
    with pytest.raises(InvalidField) as raised:
        participants.enroll(ctx, library, name, email, language=language, guardian=guardian)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert "--" not in str(raised.value)
    assert ctx.store.participants() == []
    assert ctx.store.audit_log() == []


def test_enrolment_uses_the_library_language_and_refuses_the_same_person_twice(
    ctx: Context,
) -> None:
    maya = participants.enroll(ctx, "riverside", " Maya ", "Maya.Smith@Family-Mail.example.net")
    assert (maya.id, maya.name, maya.email, maya.language, maya.status) == (
        "p1",
        "Maya",
        MAYA,
        "en",
        "active",
    )
    assert maya.masked.endswith(f"@{DOMAIN}")
    with pytest.raises(AlreadyEnrolled) as raised:
        participants.enroll(ctx, "riverside", "Maya", MAYA)
    assert raised.value.field == "email" and maya.masked in str(raised.value)
    sibling = participants.enroll(ctx, "riverside", "Leo", MAYA, language="es")
    assert sibling.language == "es"
    assert _events(ctx) == [("enrolled", "p1"), ("enrolled", "p2")]


def test_info_log_names_ids_and_masked_addresses_never_real_ones(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay")
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian="parent@example.net")
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", TOMAS)
    participants.pair(ctx, maya, tomas)
    participants.pause(ctx, maya)
    participants.set_guardian(ctx, maya, "other.parent@example.net")
    text = caplog.text
    assert f"participant={maya.id}" in text and maya.masked in text
    for real in (MAYA, TOMAS, "parent@example.net", "other.parent@example.net"):
        assert real not in text
        assert real not in str(ctx.store.audit_log())
    assert len([r for r in caplog.records if r.levelno == logging.INFO]) == 5


# --- find ----------------------------------------------------------------------------------


def test_find_by_id_masked_and_real_address(ctx: Context) -> None:
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA)
    assert participants.find(ctx, maya.id) == maya
    assert participants.find(ctx, f" {maya.masked.upper()} ") == maya
    assert participants.find(ctx, "Maya.Smith@family-mail.example.net") == maya
    with pytest.raises(NotFound):
        participants.find(ctx, MAYA, by_real_address=False)
    with pytest.raises(NotFound):
        participants.find(ctx, "p99")
    with pytest.raises(NotFound):
        participants.find(ctx, "nobody@example.net")


def test_find_by_a_shared_address_asks_for_an_id(ctx: Context) -> None:
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA)
    leo = participants.enroll(ctx, "riverside", "Leo", MAYA)
    with pytest.raises(UserError, match=f"several participants share this address .*{leo.id}"):
        participants.find(ctx, MAYA)
    assert participants.find(ctx, leo.id) == leo != maya


# --- pals ----------------------------------------------------------------------------------


def test_pair_and_unpair_across_partner_libraries_only(ctx: Context) -> None:
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA)
    leo = participants.enroll(ctx, "riverside", "Leo", "leo@example.net")
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", TOMAS)
    lucie = participants.enroll(ctx, "lyon", "Lucie", "lucie@example.fr")
    for first, second in ((maya, leo), (maya, lucie)):
        with pytest.raises(UserError, match="not in partner libraries"):
            participants.pair(ctx, first, second)
    participants.pair(ctx, maya, tomas)
    maya, tomas = participants.find(ctx, maya.id), participants.find(ctx, tomas.id)
    assert maya.pals == (tomas.id,) and tomas.pals == (maya.id,)
    assert isinstance(_route(ctx, maya, tomas), LetterRoute)

    participants.unpair(ctx, tomas, maya)
    maya, tomas = participants.find(ctx, maya.id), participants.find(ctx, tomas.id)
    assert maya.pals == () and tomas.pals == ()
    with pytest.raises(NotFound, match="not pals"):
        participants.unpair(ctx, maya, tomas)
    paired = [e for e in ctx.store.audit_log() if e["event"] in ("paired", "unpaired")]
    assert [(e["event"], e["participants"]) for e in paired] == [
        ("paired", ["p1", "p3"]),
        ("unpaired", ["p3", "p1"]),
    ]


# --- status and guardian -------------------------------------------------------------------


@pytest.fixture
def pair_of_pals(ctx: Context) -> tuple[Participant, Participant]:
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA)
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", TOMAS)
    participants.pair(ctx, maya, tomas)
    return participants.find(ctx, maya.id), participants.find(ctx, tomas.id)


def test_pause_and_resume_refuse_then_allow_letters(
    ctx: Context, pair_of_pals: tuple[Participant, Participant]
) -> None:
    maya, tomas = pair_of_pals
    assert participants.pause(ctx, maya, by="ana@example.org", via="web").status == "paused"
    participants.pause(ctx, maya)  # already paused: nothing changes, nothing audited
    assert _route(ctx, maya, tomas) == Refusal(replies.SENDER_PAUSED, "sender-paused")
    assert _route(ctx, tomas, maya) == Refusal(replies.PARTICIPANT_PAUSED, "recipient-paused")
    assert participants.resume(ctx, maya).status == "active"
    assert isinstance(_route(ctx, maya, tomas), LetterRoute)
    audited = [e for e in ctx.store.audit_log() if e["event"] in ("paused", "resumed")]
    assert [(e["event"], e.get("by"), e["via"]) for e in audited] == [
        ("paused", "ana@example.org", "web"),
        ("resumed", None, "cli"),
    ]


def test_a_participant_who_left_neither_sends_nor_receives(
    ctx: Context, pair_of_pals: tuple[Participant, Participant]
) -> None:
    maya, tomas = pair_of_pals
    left = participants.leave(ctx, maya)
    assert (left.status, left.pals, left.email) == ("left", (tomas.id,), MAYA)  # record kept
    assert participants.find(ctx, maya.masked).status == "left"
    assert _route(ctx, maya, tomas) == Refusal(replies.SENDER_PAUSED, "sender-paused")
    assert _route(ctx, tomas, maya) == Refusal(replies.PARTICIPANT_PAUSED, "recipient-paused")
    with pytest.raises(UserError, match="has left"):
        participants.pause(ctx, maya)
    leo = participants.enroll(ctx, "valparaiso", "Leo", "leo@example.net")
    with pytest.raises(UserError, match="has left"):
        participants.pair(ctx, left, leo)
    participants.resume(ctx, maya)
    assert isinstance(_route(ctx, maya, tomas), LetterRoute)
    assert [e for e, who in _events(ctx) if who == maya.id] == ["enrolled", "left", "resumed"]


def test_guardian_set_and_cleared(
    ctx: Context, pair_of_pals: tuple[Participant, Participant]
) -> None:
    maya, _ = pair_of_pals
    with pytest.raises(InvalidField) as raised:
        participants.set_guardian(ctx, maya, "mum")
    assert raised.value.field == "guardian"
    with pytest.raises(InvalidField):
        participants.set_guardian(ctx, maya, f"moderate@{DOMAIN}")
    changed = participants.set_guardian(ctx, maya, "Parent@Example.net")
    assert changed.guardian == "parent@example.net"
    assert participants.find(ctx, maya.id).guardian == "parent@example.net"
    assert participants.clear_guardian(ctx, maya).guardian == ""
    assert participants.find(ctx, maya.id).guardian == ""
    assert [e for e, _ in _events(ctx)] == [
        "enrolled",
        "enrolled",
        "paired",
        "guardian-set",
        "guardian-cleared",
    ]


def test_changing_an_unknown_participant_is_not_found(ctx: Context) -> None:
    ghost = Participant("p41", "riverside", "Ghost", MAYA, "en", f"ghost-owl-0001@{DOMAIN}")
    for change in (participants.pause, participants.resume, participants.leave):
        with pytest.raises(NotFound):
            change(ctx, ghost)
    assert ctx.store.audit_log() == []


def test_details_edited_keep_a_guardian_under_the_consent_age_and_audit_only_field_names(
    ctx: Context, pair_of_pals: tuple[Participant, Participant]
) -> None:
    maya, _ = pair_of_pals
    young = participants.Details(birth_year=2018, interests="Chess, football")
    with pytest.raises(InvalidField) as raised:
        participants.edit(ctx, maya, young)
    assert raised.value.field == "guardian"
    with pytest.raises(InvalidField) as raised:
        participants.edit(ctx, maya, participants.Details(birth_year="18"))
    assert raised.value.field == "birth_year"
    participants.set_guardian(ctx, maya, "parent@example.net", name="Ann  Smith", copies=False)
    edited = participants.edit(ctx, maya, young)
    assert (edited.birth_year, edited.interests, edited.consent) == (
        2018,
        ("chess", "football"),
        "pending",
    )
    assert (edited.guardian_name, edited.guardian_copies) == ("Ann Smith", False)
    asked = [e for e in ctx.store.audit_log() if e["event"] == "consent-requested"]
    assert [e["participant"] for e in asked] == [maya.id]  # the guardian is asked at once
    given = ctx.store.update_participant(maya.id, lambda p: p.but(consent="given"))[1]
    # Another guardian: consent was the first one's, so the new guardian is asked anew.
    moved = participants.edit(ctx, given, guardian="dad@example.net")
    assert (moved.consent, moved.consent_method) == ("pending", "")
    asked = [e for e in ctx.store.audit_log() if e["event"] == "consent-requested"]
    assert len(asked) == 2
    with pytest.raises(InvalidField) as raised:
        participants.clear_guardian(ctx, maya)
    assert raised.value.field == "guardian"
    corrected = participants.edit(ctx, maya, participants.Details(birth_year="", age_band="18+"))
    assert (corrected.birth_year, corrected.age_band, corrected.consent) == (0, "18+", "")
    assert participants.clear_guardian(ctx, maya).guardian_name == ""
    changes = [e for e in ctx.store.audit_log() if e["event"] == "details-changed"]
    assert [(e["fields"], e.get("consent")) for e in changes] == [
        ("birth_year,interests", "pending"),
        ("", "pending"),
        ("birth_year,age_band", "not-needed"),
    ]
    assert "parent@example.net" not in str(ctx.store.audit_log())
    assert "Ann" not in str(ctx.store.audit_log())
