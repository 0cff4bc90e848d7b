"""What a guardian's reply means, which consent addresses are taken at RCPT, the no-consent
note in every language staff read, and what a consent link does in turn."""

from __future__ import annotations

import json
import time
from datetime import date
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from relay import config as config_module
from relay import guardians, participants, replies
from relay.addresses import normalize
from relay.authresults import UNCHECKED
from relay.consent import DECLINED, GIVEN, NO_CONSENT_NOTES, read_answer
from relay.context import open_context
from relay.errors import UserError
from relay.mail_reading import from_address
from relay.route import Refusal, check_token, own_address
from relay.store.records import ConsentRequest
from relay.wording import Templates
from tests.conftest import DOMAIN, MAYA, MODERATOR_A, config_text

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
        ctx.store.record_consent_request(token, ConsentRequest(child.id, expires))
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
    ctx.store.record_consent_request(TOKEN, ConsentRequest(child.id, time.time() + 3600))
    reply = EmailMessage(policy=SMTP)
    reply["From"] = "Ana <ANA@XN--BCHER-KVA.example>"
    reply["Subject"] = "Re: consent"
    reply.set_content("Yes\n")
    assert from_address(reply) == "ana@bücher.example"
    rcpt = f"consent+{TOKEN}@{DOMAIN}"
    guardians.handle_reply(ctx, reply.as_bytes(), "ana@xn--bcher-kva.example", rcpt, UNCHECKED)
    answered = ctx.store.participant(child.id)
    assert answered is not None and answered.consent == "given"
