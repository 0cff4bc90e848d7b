"""Retention's pure parts and the store's removals: month arithmetic, what a reduced letter
keeps, expired keys found and removed, archive files rewritten,
settings named by key, and the privacy notice as an email in every language."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from relay import cli, guardians, notices, participants
from relay import config as config_module
from relay.context import Context, open_context
from relay.errors import ConfigError
from relay.schedule import retention
from relay.schedule.retention import months_after, months_before
from relay.store import Store
from relay.store.files import append_line
from relay.store.records import (
    ConsentRequest,
    Letter,
    Participant,
    PendingCommand,
    SignInLink,
    Step,
)
from relay.web.pages import Pages
from relay.wording import Templates
from tests.conftest import MODERATOR_A, config_text

ROOT = Path(__file__).resolve().parents[2]


def _letter(letter_id: int, **changes: object) -> Letter:
    return Letter(
        id=letter_id,
        spool_id="18ecc8b7915e35e9-cbc42ea8",
        sender="p1",
        recipient="p2",
        sender_masked="quiet-heron-2841@pals.example.org",
        recipient_masked="jolly-tiger-5811@pals.example.org",
        sender_library="riverside",
        recipient_library="valparaiso",
        subject="My dog Rex",
        received_at="2026-01-05T10:00:00+00:00",
        message_id="<abc@maya-laptop.family-mail.example.net>",
        status="delivered",
        decided_by="ana@riverside-library.example.org",
        decided_at="2026-01-05T11:00:00+00:00",
        history=(
            Step("2026-01-05T10:00:00+00:00", "held"),
            Step("2026-01-05T11:00:00+00:00", "approved", "Ana"),
            Step("2026-01-05T11:00:05+00:00", "delivered"),
        ),
    ).but(**changes)


def test_months_are_counted_on_the_calendar() -> None:
    at = datetime(2027, 3, 31, 9, 30, tzinfo=UTC)
    assert months_before(at, 1) == datetime(2027, 2, 28, 9, 30, tzinfo=UTC)
    assert months_before(at, 12) == datetime(2026, 3, 31, 9, 30, tzinfo=UTC)
    assert months_after(datetime(2026, 12, 15, tzinfo=UTC), 2) == datetime(2027, 2, 15, tzinfo=UTC)


def test_a_reduced_letter_keeps_its_number_libraries_status_and_dates_only() -> None:
    kept = _letter(9).reduced("2027-02-01T00:00:00+00:00")
    assert kept.final_at == "2026-01-05T11:00:05+00:00"
    assert (kept.id, kept.status, kept.sender_library, kept.recipient_library) == (
        9,
        "delivered",
        "riverside",
        "valparaiso",
    )
    text = str(kept.to_dict())
    for private in ("Rex", "heron", "tiger", "maya-laptop", "Ana", "ana@", "p1", "18ecc8"):
        assert private not in text, private
    assert [step.event for step in kept.history] == ["held", "approved", "delivered"]


def test_letters_in_the_archive_are_reduced_with_every_earlier_state(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save_letter(_letter(3))
    store.save_letter(_letter(3, status="bounced"))  # a second line for the same letter
    store.save_letter(_letter(4, subject="Untouched"))
    before = store.reduce_letters([3], "2027-02-01T00:00:00+00:00")
    assert [letter.subject for letter in before] == ["My dog Rex"]
    archive = (tmp_path / "archive" / "letters-00000.jsonl").read_text()
    assert "Rex" not in archive and archive.count('"id":3,') == 1
    assert store.letter(4) is not None and store.letter(4).subject == "Untouched"  # type: ignore[union-attr]
    assert store.letter(3).status == "bounced"  # type: ignore[union-attr]
    assert store.reduce_letters([3], "2027-03-01T00:00:00+00:00") == []  # once only


def test_expired_links_and_old_counters_go_and_the_next_expiry_is_known(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record_sign_in_link("old-secret", SignInLink("ana@x.example", "riverside", expires=100))
    store.record_sign_in_link("new-secret", SignInLink("ana@x.example", "riverside", expires=900))
    store.notice_token(5, "ana@x.example", library="riverside", expires=200, new_token=lambda: "t")
    store.set_writer_notices("p1", date(2026, 1, 1), 3)
    store.set_writer_notices("p1", date(2026, 1, 9), 1)
    # A guardian's requests: the one they consented with withdraws consent until erasure.
    for token in ("given-token", "declined-token", "unanswered-token"):
        store.record_consent_request(token, ConsentRequest("p1", expires=300))
    store.answer_consent_request("given-token", "given", 250)
    store.answer_consent_request("declined-token", "declined", 250)
    counted = store.forget_expired(500, date(2026, 1, 8), dry_run=True)
    assert (counted.grants, counted.consent_requests) == (1, 2)
    assert (counted.sign_in_links, counted.counters) == (1, 1)
    assert counted.next_expiry == 900
    store.forget_expired(500, date(2026, 1, 8), dry_run=False)
    assert store.sign_in_link("old-secret") is None and store.grant("t") is None
    assert store._key("notice:5:ana@x.example") is None
    assert store.sign_in_link("new-secret") is not None
    assert store.writer_notices("p1", date(2026, 1, 9)) == 1
    kept = store.consent_request("given-token")
    assert kept is not None and kept.answer == "given"
    assert store.consent_request("declined-token") is None
    assert store.consent_request("unanswered-token") is None


def test_old_audit_entries_lose_the_reason_and_error_texts_only(tmp_path: Path) -> None:
    store = Store(tmp_path)
    old = {"at": "2025-01-10T10:00:00+00:00", "event": "rejected", "letter": 1}
    old |= {"by": "ana@x.example", "reason": "Your phone 555-0100 is there"}
    append_line(tmp_path / "audit" / "2025-01.jsonl", old)
    store.audit("rejected", letter=2, by="ana@x.example", reason="Kept this month")
    assert store.reduce_audit("2026-01", dry_run=False) == 1
    entries = store.audit_log()
    assert "555" not in str(entries) and "Kept this month" in str(entries)
    assert entries[0]["by"] == "ana@x.example" and entries[0]["event"] == "rejected"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("originals_days = 7", "originals_days = -1", "retention.originals_days: must be a whole"),
        ("letters_months = 12", "letters_months = 0", "retention.letters_months: must be a whole"),
        ("letters_months = 12", 'letters_months = "a year"', "retention.letters_months: must be"),
        ("letters_months = 12", "keep_forever = true", "retention.keep_forever: unknown key"),
        ("left_months = 12", "left_months = -1", "retention.left_months: must be a whole"),
        ("no_consent_months = 3", "no_consent_months = 121", "retention.no_consent_months: must"),
    ],
)
def test_retention_mistakes_are_named_by_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text((ROOT / "config.toml").read_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as error:
        config_module.load(path)
    assert any(p.startswith(expected) for p in error.value.problems), error.value.problems


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "removed 5 days after"), ("es", "se elimina 5 días"), ("fr", "supprimée 5 jours")],
)
def test_the_privacy_notice_email_says_the_configured_retention(
    tmp_path: Path, language: str, words: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        config_text(tmp_path / "data", extra_sections="[retention]\noriginals_days = 5\n")
    )
    ctx = open_context(config_module.load(path))
    subject, text = notices.privacy_words(ctx, language)
    assert "Test Pen Pals" in subject
    assert words in " ".join(text.split())
    assert "help@pals.example.org" in text and f"/privacy?lang={language}" in text
    assert {"en": '"erase"', "es": "«borrar»", "fr": "« effacer »"}[language] in text
    assert Templates().render("email", language, "privacy_footer.txt", privacy_url="U").strip()


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "no answer comes within 2 months"),
        ("es", "ninguna respuesta en 2 meses"),
        ("fr", "aucune réponse n'arrive dans les 2 mois"),
    ],
)
def test_the_consent_request_and_privacy_notice_say_when_no_consent_means_erasure(
    tmp_path: Path, language: str, words: str
) -> None:
    ctx = _context(tmp_path, "no_consent_months = 2")
    child = participants.enroll(
        ctx, "riverside", "Maya", "maya@family-mail.example.net", language=language,
        guardian="parent@family-mail.example.net",
        details=participants.Details(birth_year=date.today().year - 9),
    )  # fmt: skip
    values = guardians._request_values(ctx, child, "t")
    request = " ".join(ctx.templates.email(language, "consent_request", **values)[1].split())
    assert words in request and "Maya" in request.split(words)[1]
    said = {"en": "months of the request", "es": "meses desde la petición"}.get(
        language, "mois qui suivent la demande"
    )
    assert f"2 {said}" in " ".join(notices.privacy_words(ctx, language)[1].split())
    page = Pages(None).words(language)["privacy_no_consent"](2)
    assert f"2 {said}" in page
    quiet = _context(tmp_path / "quiet", "no_consent_months = 0")  # nothing is erased
    assert said not in " ".join(notices.privacy_words(quiet, language)[1].split())


def test_originals_no_letter_came_from_go_after_days_and_staff_posts_after_months(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data", extra_sections="[retention]\n"))
    ctx = open_context(config_module.load(path))
    arrived = datetime(2026, 1, 10, tzinfo=UTC)
    names = {}
    for kind in ("automatic-reply", "staff-post"):
        names[kind] = f"{int(arrived.timestamp() * 1e9):016x}-{len(names):08x}"
        ctx.spool.path("messages", names[kind]).write_bytes(b"Subject: x\n\nfrom " + kind.encode())
    posts = ctx.config.relay.data_dir / "newsletter" / "posts.jsonl"
    posts.parent.mkdir(parents=True)
    post = {"number": 1, "spool": names["staff-post"], "library": "riverside", "author": "a"}
    posts.write_text(json.dumps(post | {"author_name": "Ana", "subject": "News", "at": ""}) + "\n")

    week_later = retention.plan(ctx, datetime(2026, 1, 17, 1, tzinfo=UTC))
    assert week_later.originals == (names["automatic-reply"],)
    assert week_later.forecast_originals.next_day == date(2027, 1, 10)
    retention.purge(ctx, datetime(2026, 1, 17, 1, tzinfo=UTC))
    year_later = retention.plan(ctx, datetime(2027, 1, 10, 1, tzinfo=UTC))
    assert year_later.originals == (names["staff-post"],)


def _context(tmp_path: Path, retention_keys: str = "") -> Context:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "config.toml"
    path.write_text(
        config_text(tmp_path / "data", extra_sections=f"[retention]\n{retention_keys}\n")
    )
    return open_context(config_module.load(path))


def test_a_purge_interrupted_before_a_letter_is_reduced_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _context(tmp_path)
    letter = _letter(7)
    ctx.store.save_letter(letter)
    scrubbed = ctx.spool.path("scrubbed", f"{letter.spool_id}.{letter.recipient}", ".json")
    scrubbed.parent.mkdir(parents=True, exist_ok=True)
    scrubbed.write_text('{"subject": "My dog Rex"}')
    year_later = datetime(2027, 2, 1, tzinfo=UTC)

    def crash(*_: object) -> None:
        raise OSError("the disk went away")

    with monkeypatch.context() as patched:
        patched.setattr(ctx.spool, "remove_letter_versions", crash)
        with pytest.raises(OSError):
            retention.purge(ctx, year_later)
    assert retention.plan(ctx, year_later).letters == (letter,)  # still due, not forgotten
    assert retention.purge(ctx, year_later).letters == 1
    assert not scrubbed.exists()
    assert ctx.store.letter(7).reduced_at  # type: ignore[union-attr]


def test_set_aside_messages_go_after_letters_months(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "letters_months = 2")
    arrived = datetime(2026, 1, 10, tzinfo=UTC).timestamp()
    for suffix in (".eml", ".json"):
        path = ctx.spool.path("unprocessed", "18ecc8b7915e35e9-00000001", suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("From: maya@family-mail.example.net\n\nbroken")
        os.utime(path, (arrived, arrived))
    assert retention.plan(ctx, datetime(2026, 3, 9, tzinfo=UTC)).set_aside == ()
    assert retention.purge(ctx, datetime(2026, 3, 10, 1, tzinfo=UTC)).set_aside == 1
    assert ctx.spool.set_aside_ids() == []
    assert not ctx.spool.path("unprocessed", "18ecc8b7915e35e9-00000001").exists()


def test_participants_who_left_are_erased_left_months_after(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "left_months = 6")
    maya = participants.enroll(ctx, "riverside", "Maya", "maya@family-mail.example.net")
    leo = participants.enroll(ctx, "riverside", "Leo", "leo@family-mail.example.net")
    rosa = participants.enroll(ctx, "riverside", "Rosa", "rosa@family-mail.example.net")
    participants.leave(ctx, maya)
    left_at = ctx.store.participant(maya.id).left_at  # type: ignore[union-attr]
    assert datetime.fromisoformat(left_at) <= datetime.now(UTC)
    # Leo left before `left_at` was kept: the audit log's `left` entry says when.
    ctx.store.set_status(leo.id, "left")
    ctx.store.audit("left", participant=leo.id, library="riverside", via="cli")
    # Rosa's leaving is known nowhere: it counts from the first purge.
    ctx.store.set_status(rosa.id, "left")
    now = datetime.now(UTC)
    assert retention.plan(ctx, now).participants == ()
    assert retention.purge(ctx, now).participants == 0
    assert ctx.store.participant(rosa.id).left_at  # type: ignore[union-attr]

    later = months_after(now, 6) + timedelta(days=1)
    assert retention.plan(ctx, later).participants == tuple(sorted((maya.id, leo.id, rosa.id)))
    assert retention.purge(ctx, later, dry_run=True).participants == 3
    assert retention.purge(ctx, later).participants == 3
    assert ctx.store.participants() == []
    erased = [e for e in ctx.store.audit_log() if e["event"] == "erased"]
    assert {e["via"] for e in erased} == {"retention"} and len(erased) == 3
    assert "family-mail" not in str(ctx.store.audit_log())
    # They left long ago and their libraries knew then: no notice of the erasure goes out.
    assert not ctx.spool.queued_or_sent(f"erased-{maya.id}-own-0")


def test_left_months_zero_keeps_them_and_config_check_says_so(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "left_months = 0")
    maya = participants.enroll(ctx, "riverside", "Maya", "maya@family-mail.example.net")
    participants.leave(ctx, maya)
    much_later = datetime(2040, 1, 1, tzinfo=UTC)
    assert retention.purge(ctx, much_later).participants == 0
    assert ctx.store.participant(maya.id) is not None
    lines = cli._retention_forecast(ctx, much_later)
    assert "participants who left are kept until staff erase them (left_months = 0)" in lines

    kept = _context(tmp_path / "kept", "left_months = 1")
    pal = participants.enroll(kept, "riverside", "Leo", "leo@family-mail.example.net")
    participants.leave(kept, pal)
    lines = cli._retention_forecast(kept, much_later)
    assert "1 participant who left more than 1 month ago will be erased at the next purge" in (
        " ".join(lines)
    )


def test_children_whose_guardian_never_consents_are_erased_no_consent_months_after(
    tmp_path: Path,
) -> None:
    """Counted from their enrolment or the last request to their guardian; a guardian who
    declined is no different from one who never answered; consent given keeps them."""
    ctx = _context(tmp_path, "no_consent_months = 3")
    young = participants.Details(birth_year=date.today().year - 9)

    def child(name: str) -> Participant:
        guardian = f"parent.{name.lower()}@family-mail.example.net"
        return participants.enroll(
            ctx, "riverside", name, f"{name.lower()}@family-mail.example.net",
            guardian=guardian, details=young,
        )  # fmt: skip

    maya, leo, rosa, ines = child("Maya"), child("Leo"), child("Rosa"), child("Ines")
    guardians.decline(ctx, leo, method="reply")
    guardians.give(ctx, rosa, method="paper", by=MODERATOR_A)
    now = datetime.now(UTC)
    # Ines's guardian was asked again a month later: the three months start again.
    asked_again = months_after(now, 1).isoformat(timespec="seconds")
    again = {"at": asked_again, "event": "consent-requested", "participant": ines.id}
    append_line(ctx.store.root / "audit" / f"{asked_again[:7]}.jsonl", again)
    assert retention.plan(ctx, now).unconsented == ()

    later = months_after(now, 3) + timedelta(days=1)
    assert retention.plan(ctx, later).unconsented == (maya.id, leo.id)
    lines = " ".join(cli._retention_forecast(ctx, later))
    assert "2 participants whose guardian has not consented in 3 months will be erased" in lines
    assert "1 participant is erased on " in lines and "unless a guardian consents" in lines
    assert retention.purge(ctx, later, dry_run=True).unconsented == 2
    assert retention.purge(ctx, later).unconsented == 2
    assert [p.id for p in ctx.store.participants()] == [rosa.id, ines.id]
    erased = [e for e in ctx.store.audit_log() if e["event"] == "erased"]
    assert [(e["participant"], e["via"]) for e in erased] == [
        (maya.id, "retention"),
        (leo.id, "retention"),
    ]
    assert "parent.maya" not in str(ctx.store.audit_log())
    assert not ctx.spool.queued_or_sent(f"erased-{maya.id}-own-0")  # no notice of it
    assert retention.purge(ctx, months_after(now, 4) + timedelta(days=1)).unconsented == 1

    kept = _context(tmp_path / "kept", "no_consent_months = 0")
    participants.enroll(
        kept, "riverside", "Tom", "tom@family-mail.example.net",
        guardian="parent.tom@family-mail.example.net", details=young,
    )  # fmt: skip
    much_later = datetime(2040, 1, 1, tzinfo=UTC)
    assert retention.purge(kept, much_later).unconsented == 0
    assert len(kept.store.participants()) == 1
    assert (
        "participants whose guardian has not consented are kept until staff erase them "
        "(no_consent_months = 0)" in cli._retention_forecast(kept, much_later)
    )


def test_expired_links_are_counted_by_kind(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.notice_token(5, "ana@x.example", library="riverside", expires=200, new_token=lambda: "t")
    store.record_pending_command(
        PendingCommand("c", "erase", ("p1",), "maya@x.example", "participant", expires=200)
    )
    store.record_consent_request("g", ConsentRequest("p1", expires=200))
    counted = store.forget_expired(500, date(2026, 1, 8), dry_run=False)
    assert (counted.grants, counted.commands, counted.consent_requests) == (1, 1, 1)
    assert store.pending_command("c") is None and store.consent_request("g") is None


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ("parents' consent links", "erased 6 months later", "removed 12 months after it")),
        (
            "es",
            ("enlaces de consentimiento", "se borra 6 meses", "se elimina 12 meses después de su"),
        ),
        ("fr", ("liens de consentement", "effacé 6 mois", "supprimé 12 mois après son arrivée")),
    ],
)
def test_the_privacy_notice_says_links_set_aside_messages_and_leavers_are_purged(
    tmp_path: Path, language: str, words: tuple[str, ...]
) -> None:
    ctx = _context(tmp_path, "left_months = 6")
    text = " ".join(notices.privacy_words(ctx, language)[1].split())
    for said in words:
        assert said in text, said
