"""Sample letters as each mail client writes them, scrubbed: what survives and what must not.

Each `tests/messages/NAME.eml` has a sidecar `NAME.json` with the sender's private values,
strings that must survive, strings that must be gone, the kinds of removal staff should see
and, where it matters, the names of the attachments that are delivered.
"""

from __future__ import annotations

import html
import json
import re
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from relay.scrub import ScrubbedLetter, ScrubPolicy, scrub_letter
from relay.scrub.leakguard import check_outgoing
from relay.scrub.private import contains_private, matcher_for

MESSAGES = Path(__file__).resolve().parents[1] / "messages"
SAMPLES = sorted(path.stem for path in MESSAGES.glob("*.eml"))


@cache
def expectations(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((MESSAGES / f"{name}.json").read_text("utf-8"))
    return loaded


@cache
def scrub_sample(name: str) -> ScrubbedLetter:
    """Scrubbed once per sample (a ScrubbedLetter is frozen), read by every test."""
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


def visible_words(markup: str) -> list[str]:
    """The words a reader sees in delivered HTML, in order (tags are word breaks)."""
    return html.unescape(re.sub(r"<[^>]*>", " ", markup)).split()


REPLIES = [name for name in SAMPLES if "language" in expectations(name)]


def test_every_language_we_read_has_replies_written_in_it() -> None:
    """Each data file of `relay/scrub/history` is checked against letters in its language."""
    history = Path(__file__).resolve().parents[2] / "relay" / "scrub" / "history"
    read = {path.stem for path in history.glob("*.toml")} - {"common"}
    languages = {str(expectations(name)["language"]) for name in REPLIES}
    assert len(read) >= 19
    assert read <= languages, sorted(read - languages)
    assert len(REPLIES) >= 60


@pytest.mark.parametrize("name", REPLIES)
def test_a_reply_delivers_exactly_the_writers_words(name: str) -> None:
    """Compared word by word: every word the writer wrote, in order, and nothing quoted."""
    expected = expectations(name)
    letter = scrub_sample(name)
    if "delivered_text" in expected:
        assert (letter.text or "").split() == str(expected["delivered_text"]).split()
    if "delivered_html_text" in expected:
        wanted = str(expected["delivered_html_text"]).split()
        assert visible_words(letter.html or "") == wanted
    assert letter.text or letter.html, "a reply is never delivered empty"
