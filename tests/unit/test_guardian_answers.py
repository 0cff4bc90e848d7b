"""What a guardian's reply means, which consent addresses are taken at RCPT, and the
no-consent note in every language staff read."""

from __future__ import annotations

import pytest

from relay import replies
from relay.consent import DECLINED, GIVEN, NO_CONSENT_NOTES, read_answer
from relay.route import Refusal, check_token, own_address
from relay.store.records import ConsentRequest
from relay.wording import Templates

WORDS = Templates().consent_words()
TOKEN = "0123456789abcdef0123456789abcdef"


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
