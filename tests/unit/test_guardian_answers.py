"""What a guardian's reply means, which consent addresses are taken at RCPT, the no-consent
note in every language staff read, and what a consent link does in turn."""

from __future__ import annotations

import email
import json
import time
from datetime import date
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from relay import cli, guardians, outcomes, participants, replies, rights
from relay import config as config_module
from relay.addresses import normalize
from relay.authresults import UNCHECKED, Verdict
from relay.consent import DECLINED, GIVEN, NO_CONSENT_NOTES, read_answer
from relay.context import Context, open_context
from relay.errors import UserError
from relay.mail_reading import from_address
from relay.outbox import GuardianCopy, LetterCopy, door, worker
from relay.route import Refusal, check_token, own_address
from relay.store.records import ConsentRequest, Letter, Participant, Step, address_digest
from relay.wording import Templates
from tests.conftest import DOMAIN, MAYA, MODERATOR_A, TOMAS, config_text

WORDS = Templates().consent_words()
TOKEN = "0123456789abcdef0123456789abcdef"
PARENT = "parent.smith@family-mail.example.net"


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("Sí", GIVEN),
        ("si, acepto.", GIVEN),
        ("Yes!", GIVEN),
        ("I agree", GIVEN),
        ("Oui, j’accepte", GIVEN),
        ("D'accord", GIVEN),
        ("No", DECLINED),
        ("No acepto", DECLINED),
        ("non merci", DECLINED),
        ("I don’t agree", DECLINED),
        ("sin comentarios", None),  # "si" is not "sin"
        ("nonsense", None),
        ("Who are you?", None),
        ("", None),
    ],
)
def test_a_guardians_first_line_reads_as_an_answer(line: str, answer: str | None) -> None:
    assert read_answer(line, WORDS) == answer


def _save_approved(
    ctx: Context, letter_id: int, spool_id: str, writer: Participant, pal: Participant, subject: str
) -> None:
    """An approved letter from `writer` (riverside) to `pal` (valparaiso), not yet sent."""
    ctx.store.save_letter(
        Letter(
            id=letter_id,
            spool_id=spool_id,
            sender=writer.id,
            recipient=pal.id,
            sender_masked=writer.masked,
            recipient_masked=pal.masked,
            sender_library="riverside",
            recipient_library="valparaiso",
            subject=subject,
            received_at="2026-01-05T10:00:00+00:00",
            status="approved",
            history=(
                Step("2026-01-05T10:00:00+00:00", "held"),
                Step("2026-01-05T11:00:00", "approved"),
            ),
        )
    )


def test_every_language_has_words_for_yes_and_no() -> None:
    for language in Templates().languages():
        assert WORDS[language]["yes"] and WORDS[language]["no"], language


def test_a_consent_address_is_taken_only_while_its_request_can_be_answered() -> None:
    own = own_address(f"consent+{TOKEN}")
    assert own is not None and own.kind == "consent"
    assert own_address("consent+not-a-token") is None

    def check(found: ConsentRequest | None) -> object:
        return check_token(
            own,
            grant=lambda _t: None,
            unsubscribe_signed=lambda _t: False,
            now=1000.0,
            consent_request=lambda token: found if token == TOKEN else None,
        )

    assert check(ConsentRequest("p1", expires=2000.0)) == own
    for found, reason in (
        (None, "unknown-token"),
        (ConsentRequest("p1", expires=2000.0, used=True), "used-token"),
        (ConsentRequest("p1", expires=999.0), "expired-token"),
    ):
        assert check(found) == Refusal(replies.UNKNOWN_ADDRESS, reason)


@pytest.mark.parametrize("language", ["en", "es", "fr"])
def test_the_no_consent_note_is_said_in_every_language(language: str) -> None:
    templates = Templates()
    words = templates.html.get_template(f"web/{language}/words.html").module
    known = words.known_notes  # type: ignore[attr-defined]
    for role, note in NO_CONSENT_NOTES.items():
        emailed = templates.render("email", language, "consent_note.txt", role=role).strip()
        assert known[note] == emailed
        assert (emailed == note) == (language == "en")


def test_a_consent_link_answers_once_then_offers_withdrawal(tmp_path: Path) -> None:
    """What the link's page shows and does, in turn, for one child (no relay running: the
    end-to-end test covers the page in a browser and the reply)."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    young = participants.Details(birth_year=date.today().year - 9)
    child = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=PARENT, details=young)
    assert [e["event"] for e in ctx.store.audit_log()] == ["enrolled", "consent-requested"]
    assert PARENT not in json.dumps(ctx.store.audit_log())

    later = time.time() + 3600
    for token, expires in (("a" * 32, later), ("b" * 32, later), ("c" * 32, time.time() - 1)):
        ctx.store.record_consent_request(token, guardians.request_for(child, expires))
    assert guardians.page(ctx, "d" * 32).state == "unknown"
    assert guardians.page(ctx, "c" * 32).state == "expired"
    assert guardians.page(ctx, "a" * 32).state == "ask"

    assert guardians.answer_by_link(ctx, "a" * 32, DECLINED).state == "answered"
    declined = ctx.store.participant(child.id)
    assert declined is not None and declined.consent == "pending"
    assert guardians.answer_by_link(ctx, "a" * 32, GIVEN).state == "answered"  # once only

    assert guardians.answer_by_link(ctx, "b" * 32, GIVEN).state == "given"
    assert guardians.page(ctx, "a" * 32).state == "given"  # any of its links can withdraw
    assert guardians.withdraw_by_link(ctx, "b" * 32).state == "withdrawn"
    withdrawn = ctx.store.participant(child.id)
    assert withdrawn is not None and (withdrawn.status, withdrawn.may_correspond) == (
        "paused",
        False,
    )
    with pytest.raises(UserError):
        participants.resume(ctx, withdrawn)
    again = guardians.give(ctx, withdrawn, method="paper", by=MODERATOR_A)
    assert (again.status, again.consent, again.consent_method) == ("active", "given", "paper")
    events = [e["event"] for e in ctx.store.audit_log()]
    assert events[2:] == ["consent-declined", "consent-given", "consent-withdrawn", "consent-given"]
    ctx.store.forget_consent_requests(child.id)  # as erasing the participant does
    assert {guardians.page(ctx, t * 32).state for t in "abc"} == {"unknown"}


def test_staff_record_a_withdrawal_only_with_their_own_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --by, a withdrawal recorded at the command line would read in the audit log
    as the guardian's own (and the moderators would be told the guardian withdrew)."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    young = participants.Details(birth_year=date.today().year - 9)
    child = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=PARENT, details=young)
    guardians.give(ctx, child, method="paper", by=MODERATOR_A)
    withdraw = ["--config", str(path), "participants", "consent", child.id, "--withdraw"]

    assert cli.main(withdraw) == 1
    assert capsys.readouterr().err.strip() == (
        "penpal-relay: --by: say which staff member recorded the withdrawal"
    )
    assert ctx.store.participant(child.id).consent == "given"  # type: ignore[union-attr]
    assert cli.main([*withdraw, "--by", MODERATOR_A]) == 0
    (entry,) = [e for e in ctx.store.audit_log() if e["event"] == "consent-withdrawn"]
    assert (entry["by"], entry["via"]) == (MODERATOR_A, "cli")


def test_a_reply_after_staff_corrected_the_year_of_birth_is_refused_not_a_crash(
    tmp_path: Path,
) -> None:
    """Staff corrected the child's year of birth after the request went out: consent is no
    longer needed, and the guardian's "yes" is set aside with a reason (serve goes on)."""
    path = tmp_path / "config.toml"
    unchecked = 'front_servers = ["127.0.0.1"]\nrequired = false'
    path.write_text(config_text(tmp_path / "data", authentication=unchecked))
    ctx = open_context(config_module.load(path))
    young = participants.Details(birth_year=date.today().year - 9)
    child = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=PARENT, details=young)
    ctx.store.record_consent_request(TOKEN, guardians.request_for(child, time.time() + 60))
    older = participants.Details(birth_year=date.today().year - 15)
    assert participants.edit(ctx, child, older).consent == ""

    reply = f"From: {PARENT}\r\nTo: consent+{TOKEN}@x\r\nSubject: Re\r\n\r\nYes\r\n".encode()
    verdict = Verdict("relay")
    guardians.handle_reply(ctx, reply, PARENT, f"consent+{TOKEN}@x", verdict)
    (refused,) = [e for e in ctx.store.audit_log() if e["event"] == "consent-reply-refused"]
    assert (refused["reason"], refused["participant"]) == ("not-needed", child.id)
    assert ctx.store.participant(child.id).consent == ""  # type: ignore[union-attr]
    assert guardians.page(ctx, TOKEN).state == "unknown"  # nothing to answer any more


def test_a_replaced_guardians_link_leads_nowhere(tmp_path: Path) -> None:
    """The earlier guardian's link (consent given, then staff set another guardian) neither
    shows nor withdraws anything; a request sent to them counts for no one else."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    young = participants.Details(birth_year=date.today().year - 9)
    child = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=PARENT, details=young)
    later = time.time() + 3600
    ctx.store.record_consent_request("a" * 32, guardians.request_for(child, later))
    assert guardians.answer_by_link(ctx, "a" * 32, GIVEN).state == "given"

    other = "grandma.smith@family-mail.example.net"
    changed = participants.set_guardian(ctx, child, other, by=MODERATOR_A)
    assert changed.consent == "pending"
    assert guardians.page(ctx, "a" * 32).state == "unknown"
    assert guardians.withdraw_by_link(ctx, "a" * 32).state == "unknown"
    # One sent to the earlier guardian as the change was made: theirs, not the new one's.
    ctx.store.record_consent_request("b" * 32, guardians.request_for(child, later))
    assert guardians.answer_by_link(ctx, "b" * 32, GIVEN).state == "unknown"
    ctx.store.record_consent_request("c" * 32, guardians.request_for(changed, later))
    assert guardians.page(ctx, "c" * 32).state == "ask"
    now = ctx.store.participant(child.id)
    assert now is not None and (now.consent, now.status) == ("pending", "active")


def test_moderators_hear_of_an_answer_once_and_erasure_takes_the_notice(tmp_path: Path) -> None:
    """The same answer read twice (a reply processed again after a restart) queues one
    notice per moderator; the notices name the child, so erasing the child removes them."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    young = participants.Details(birth_year=date.today().year - 9)
    child = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=PARENT, details=young)

    def notices_about(answer: str) -> list[str]:
        return [i.id for i in ctx.spool.outbox() if i.id.startswith(f"consent-{answer}-")]

    guardians.decline(ctx, child, method="reply", token=TOKEN)
    guardians.decline(ctx, child, method="reply", token=TOKEN)
    moderators = ctx.config.library("riverside").moderators  # type: ignore[union-attr]
    assert len(notices_about("declined")) == len(moderators) == 2
    guardians.decline(ctx, child, method="link", token="f" * 32)  # another request's answer
    assert len(notices_about("declined")) == 4

    given = guardians.give(ctx, child, method="link", token="f" * 32)
    guardians.withdraw(ctx, given, via="link", token="f" * 32)
    assert len(notices_about("withdrawn")) == 2
    rights.erase(ctx, ctx.store.participant(child.id), via="test")  # type: ignore[arg-type]
    assert not [i.id for i in ctx.spool.outbox() if i.id.startswith("consent-")]


def test_a_withdrawal_holds_an_approved_letter_whose_copies_have_not_gone(
    tmp_path: Path,
) -> None:
    """Consent withdrawn after a moderator approved Maya's letter, before the outbox handed
    it on: the letter is held again with the no-consent note, its copies are dropped
    unsent, and their names forgotten (approving it again, after consent, queues them)."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    young = participants.Details(birth_year=date.today().year - 9)
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=PARENT, details=young)
    maya = guardians.give(ctx, maya, method="paper", by=MODERATOR_A)
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", TOMAS)
    _save_approved(ctx, 7, "18ecc8b7915e35e9-cbc42ea8", maya, tomas, "My dog")
    copies = {"letter-7": (LetterCopy(7), TOMAS), "letter-7-guardian-p1": (GuardianCopy(7), PARENT)}
    for item, (purpose, to) in copies.items():
        message = door.program_message(ctx, Address("", addr_spec=to), "Letter", "Hello")
        door.queue(ctx, item, message, purpose, to=to)
    relay_outcomes = outcomes.for_relay(lambda: ctx)

    def ready_copies() -> list[str]:
        due = worker.ready(ctx, relay_outcomes, time.time())
        return sorted(entry.id for entry in due if entry.id.startswith("letter-"))

    assert ready_copies() == sorted(copies)
    guardians.withdraw(ctx, maya, via="link", token=TOKEN)
    assert ready_copies() == []
    held = ctx.store.letter(7)
    assert held is not None and held.status == "held"
    assert held.history[-1].event == "held-again"
    assert held.notes == (NO_CONSENT_NOTES["writer"],)
    assert [letter.id for letter in ctx.store.queue()] == [7]  # back in the moderators' queue
    (entry,) = [e for e in ctx.store.audit_log() if e["event"] == "held-again"]
    assert (entry["letter"], entry["not_sent"]) == (7, "writer-no-consent")
    assert not any(ctx.spool.queued_or_sent(item) for item in copies)


def test_a_guardian_at_an_internationalized_domain_answers_by_reply(tmp_path: Path) -> None:
    """Their address was stored normalized (Unicode domain); their mail program may write it
    in ASCII (punycode) and in capitals: it is the same address."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data", authentication="required = false"))
    ctx = open_context(config_module.load(path))
    enrolled = participants.enroll(ctx, "riverside", "Maya", MAYA)
    guardian = normalize("Ana@Bücher.example")
    _, child = ctx.store.update_participant(
        enrolled.id, lambda p: p.but(guardian=guardian, consent="pending")
    )
    assert child.guardian == "ana@bücher.example"
    request = ConsentRequest(child.id, time.time() + 3600, guardian=address_digest(guardian))
    ctx.store.record_consent_request(TOKEN, request)
    reply = EmailMessage(policy=SMTP)
    reply["From"] = "Ana <ANA@XN--BCHER-KVA.example>"
    reply["Subject"] = "Re: consent"
    reply.set_content("Yes\n")
    assert from_address(reply) == "ana@bücher.example"
    rcpt = f"consent+{TOKEN}@{DOMAIN}"
    guardians.handle_reply(ctx, reply.as_bytes(), "ana@xn--bcher-kva.example", rcpt, UNCHECKED)
    answered = ctx.store.participant(child.id)
    assert answered is not None and answered.consent == "given"


def test_a_guardian_at_an_internationalized_domain_is_sent_the_request(tmp_path: Path) -> None:
    """The header and the SMTP command carry the domain in its ASCII form; enrolling does not
    fail on it."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    young = participants.Details(birth_year=date.today().year - 9)
    child = participants.enroll(
        ctx, "riverside", "Maya", MAYA, guardian="Ana@Bücher.example", details=young
    )
    assert child.consent == "pending"
    (item,) = [i for i in ctx.spool.outbox() if i.id.startswith("consent-request-")]
    request = email.message_from_bytes(ctx.spool.message("outbox", item.id))
    assert request["To"] == "ana@xn--bcher-kva.example"


@pytest.mark.parametrize("change", ["paused", "left"])
def test_an_approved_letter_is_held_again_when_its_pal_stops(tmp_path: Path, change: str) -> None:
    """Tomás writes `pause` or `stop` (or staff pause him, or mark him left) after a
    moderator approved Maya's letter to him, before the outbox handed it on: the letter is
    held again, its copy dropped unsent, and the timeline says why (no consent note)."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    maya = participants.enroll(ctx, "riverside", "Maya", MAYA)
    tomas = participants.enroll(ctx, "valparaiso", "Tomás", TOMAS)
    _save_approved(ctx, 8, "18ecc8b7915e35e9-cbc42ea9", maya, tomas, "My cat")
    message = door.program_message(ctx, Address("", addr_spec=TOMAS), "Letter", "Hello")
    door.queue(ctx, "letter-8", message, LetterCopy(8), to=TOMAS)
    relay_outcomes = outcomes.for_relay(lambda: ctx)

    def ready_copies() -> list[str]:
        due = worker.ready(ctx, relay_outcomes, time.time())
        return [entry.id for entry in due if entry.id.startswith("letter-")]

    assert ready_copies() == ["letter-8"]
    if change == "paused":
        participants.pause(ctx, tomas, via="email", reason="asked")
    else:
        participants.leave(ctx, tomas, via="email")
    assert ready_copies() == []
    held = ctx.store.letter(8)
    assert held is not None and held.status == "held" and held.notes == ()
    assert held.history[-1].event == "held-again"
    (entry,) = [e for e in ctx.store.audit_log() if e["event"] == "held-again"]
    assert (entry["letter"], entry["not_sent"]) == (8, f"pal-{change}")
    assert not ctx.spool.queued_or_sent("letter-8")


def test_a_corrected_guardian_alone_is_asked_even_after_a_withdrawal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped guardian's request not yet sent is dropped when staff correct the address;
    after consent given and withdrawn, a new guardian is asked for their own; `show` gives a
    withdrawal its own time, without the method consent was given by."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))

    def requests() -> list[object]:
        return [i.meta.get("to") for i in ctx.spool.outbox() if i.id.startswith("consent-request-")]

    young = participants.Details(birth_year=date.today().year - 9)
    typo = "parent.smith@family-mial.example.net"
    child = participants.enroll(ctx, "riverside", "Maya", MAYA, guardian=typo, details=young)
    assert requests() == [[typo]]
    participants.set_guardian(ctx, child, PARENT, by=MODERATOR_A)
    assert requests() == [[PARENT]]

    given = guardians.give(ctx, child, method="paper", by=MODERATOR_A)
    guardians.withdraw(ctx, given, by=MODERATOR_A)
    show = ["--config", str(path), "participants", "show", child.id]
    assert cli.main(show) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("consent:")]
    assert line.split()[1] == "withdrawn" and "paper" not in line
    other = "grandma.smith@family-mail.example.net"
    asked = participants.set_guardian(ctx, child, other, by=MODERATOR_A)
    assert (asked.consent, asked.status) == ("pending", "paused")
    assert requests() == [[other]]
    again = guardians.give(ctx, asked, method="link")
    assert (again.consent, again.status) == ("given", "active")


def test_edit_says_which_command_sets_the_missing_guardian(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    adult = participants.enroll(ctx, "riverside", "Maya", MAYA)
    young = str(date.today().year - 9)
    edit = ["--config", str(path), "participants", "edit", adult.id, "--birth-year", young]
    assert cli.main(edit) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"penpal-relay: {adult.id}: under ")
    assert error.endswith(f"set one first with `participants guardian {adult.id} EMAIL`")
    assert "--guardian" not in error
