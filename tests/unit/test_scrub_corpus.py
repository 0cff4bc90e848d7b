"""Sample letters as each mail client writes them, scrubbed: what survives and what must not.

Each `tests/messages/NAME.eml` has a sidecar `NAME.json` with the sender's private values,
strings that must survive, strings that must be gone, the kinds of removal staff should see
and, where it matters, the names of the attachments that are delivered.
"""

from __future__ import annotations

import html
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from relay.scrub import ScrubbedLetter, ScrubPolicy, scrub_letter
from relay.scrub.leakguard import check_outgoing
from relay.scrub.private import contains_private, matcher_for

MESSAGES = Path(__file__).resolve().parents[1] / "messages"
SAMPLES = sorted(path.stem for path in MESSAGES.glob("*.eml"))


def expectations(name: str) -> dict[str, list[str]]:
    loaded: dict[str, list[str]] = json.loads((MESSAGES / f"{name}.json").read_text("utf-8"))
    return loaded


def scrub_sample(name: str) -> ScrubbedLetter:
    policy = ScrubPolicy(private_values=tuple(expectations(name)["private_values"]))
    return scrub_letter((MESSAGES / f"{name}.eml").read_bytes(), policy)


def readable(letter: ScrubbedLetter) -> str:
    """Everything a pal could read, HTML both as markup and as entity-decoded text."""
    markup = letter.html or ""
    return "\n".join((letter.subject, letter.text or "", markup, html.unescape(markup)))


def compose(letter: ScrubbedLetter) -> bytes:
    """A stand-in for the composer: masked From, the scrubbed parts, the cleaned files."""
    message = EmailMessage()
    message["From"] = "quiet-heron-2841@pals.example.org"
    message["To"] = "pal@library.example"
    message["Subject"] = letter.subject
    message.set_content(letter.text or "")
    if letter.html:
        message.add_alternative(letter.html, subtype="html")
    for attachment in letter.attachments:
        maintype, _, subtype = attachment.content_type.partition(";")[0].partition("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return bytes(message)


def test_every_sample_has_expectations() -> None:
    assert len(SAMPLES) >= 12
    for name in SAMPLES:
        assert (MESSAGES / f"{name}.json").exists(), name


@pytest.mark.parametrize("name", SAMPLES)
def test_the_participants_words_survive(name: str) -> None:
    letter = scrub_sample(name)
    text = readable(letter)
    for wanted in expectations(name)["survive"]:
        assert wanted in text, wanted


@pytest.mark.parametrize("name", SAMPLES)
def test_quoted_history_signatures_and_private_details_are_gone(name: str) -> None:
    letter = scrub_sample(name)
    text = readable(letter).casefold()
    for unwanted in expectations(name)["gone"]:
        assert unwanted.casefold() not in text, unwanted


@pytest.mark.parametrize("name", SAMPLES)
def test_staff_are_told_what_was_removed(name: str) -> None:
    letter = scrub_sample(name)
    kinds = {removal.kind for removal in letter.removed}
    assert set(expectations(name)["removed_kinds"]) <= kinds


@pytest.mark.parametrize("name", SAMPLES)
def test_only_cleaned_files_travel(name: str) -> None:
    expected = expectations(name).get("attachments")
    letter = scrub_sample(name)
    if expected is not None:
        assert [a.filename for a in letter.attachments] == expected
    for attachment in letter.attachments:
        assert attachment.filename.startswith(("drawing-", "file-"))


@pytest.mark.parametrize("name", SAMPLES)
def test_no_private_value_in_any_form(name: str) -> None:
    values = expectations(name)["private_values"]
    letter = scrub_sample(name)
    matcher = matcher_for(values)
    for field in (letter.subject, letter.text or "", letter.html or ""):
        assert not contains_private(field, matcher, markup=True)
    report = check_outgoing(compose(letter), values)
    assert report.hits == ()
    assert report.checked is not None
