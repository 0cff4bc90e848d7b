"""The writer's surname: derived from the names their mail uses, flagged where they typed it,
taken out where their mail program put it."""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from relay.screen import Flag, screen
from relay.scrub import SURNAME_IN_FILE, ScrubbedLetter, ScrubPolicy, scrub_letter
from relay.scrub.markup import WriterNames, clean_html
from relay.scrub.names import (
    MAX_KNOWN_NAMES,
    find_names,
    learnable,
    mask_names,
    remember,
    surname_values,
    typed_values,
)
from relay.store.records import Participant
from tests.support.media_files import make_pdf

MAYA = "maya.c@family-mail.example.net"
MASKED = "quiet-heron-2841@pals.example.org"


# --- deriving -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "known", "expected"),
    [
        ("Maya", "Maya Castellanos", {"Castellanos", "Maya Castellanos"}),
        (
            "María José",
            "María José García López",
            {"García", "López", "García López", "María José García López"},
        ),
        # Accents and case do not make the first name a surname.
        ("Maria jose", "MARÍA JOSÉ García", {"García", "MARÍA JOSÉ García"}),
        # Outlook's "Last, First"; an initial is no surname.
        ("Maya", "Castellanos, Maya C.", {"Castellanos", "Castellanos, Maya C."}),
        ("Maya", "Maya de la Cruz", {"Cruz", "de la Cruz", "Maya de la Cruz"}),
        (
            "Maya",
            "Maya Castellanos-Ruiz",
            {"Castellanos-Ruiz", "Castellanos", "Ruiz", "Maya Castellanos-Ruiz"},
        ),
        # Japanese: family name first, with or without a space between.
        ("花子", "山田 花子", {"山田", "山田 花子"}),
        ("花子", "山田花子", {"山田", "山田花子"}),
        ("Maya", "Maya", set()),
        ("Maya", "Maya C.", set()),
        ("Maya", "The Castellanos Family", {"Castellanos", "The Castellanos Family"}),
    ],
)
def test_surname_values_are_the_parts_not_in_the_first_name(
    first: str, known: str, expected: set[str]
) -> None:
    assert set(surname_values(first, [known])) == expected


def test_values_to_flag_leave_the_first_name_alone() -> None:
    values = surname_values("María José", ["María José García López"])
    assert set(typed_values("María José", values)) == {"García", "López", "García López"}
    assert typed_values("花子", surname_values("花子", ["山田花子"])) == ("山田",)


@pytest.mark.parametrize(
    "display",
    [
        "",
        MAYA,
        "maya.c",
        MASKED,
        "quiet-heron-2841",
        "Maya",
        "Maya C.",
        "Riverside Public Library",
        "Maya via Test Pen Pals",
        "x" * 200,
    ],
)
def test_names_that_are_not_worth_keeping(display: str) -> None:
    own = ("Test Pen Pals", "Riverside Public Library")
    assert learnable(display, address=MAYA, masked=MASKED, first_name="Maya", own_words=own) is None


def test_encoded_words_and_whitespace_are_read_as_a_person_reads_them() -> None:
    # Whitespace between two encoded words is not part of the text (RFC 2047, 6.2).
    encoded = '"=?utf-8?q?Mar=C3=ADa_Jos=C3=A9_?=   =?utf-8?q?Garc=C3=ADa?="  '
    found = learnable(encoded, address=MAYA, masked=MASKED, first_name="María José")
    assert found == "María José García"


def test_known_names_are_most_recent_first_and_bounded() -> None:
    known: tuple[str, ...] = ()
    for number in range(MAX_KNOWN_NAMES + 5):
        known = remember(known, f"Maya Name{number}")
    assert len(known) == MAX_KNOWN_NAMES
    assert known[0] == f"Maya Name{MAX_KNOWN_NAMES + 4}"
    again = remember(known, "MAYA NAME5")
    assert again[0] == "MAYA NAME5" and len(again) == MAX_KNOWN_NAMES
    assert sum(1 for name in again if name.casefold() == "maya name5") == 1


# --- finding and flagging -------------------------------------------------------------------


def test_found_in_any_case_with_or_without_accents_as_whole_words() -> None:
    values = ["García", "Castellanos", "Li"]
    text = "GARCIA, garcía, Castellanos! castellanosville like Li."
    assert [text[s:e] for s, e in find_names(text, values)] == [
        "GARCIA",
        "garcía",
        "Castellanos",
        "Li",
    ]
    assert find_names("Garcia", ["Garcia"]) == [(0, 6)]
    assert find_names("garcía", ["Garcia"])  # typed with an accent the known name lacks


def test_found_in_encoded_forms_and_across_markup() -> None:
    html = "<p>Cas<b>tel</b>lanos and &#67;astellanos</p>"
    spans = find_names(html, ["Castellanos"], markup=True)
    assert [html[s:e] for s, e in spans] == ["Cas<b>tel</b>lanos", "&#67;astellanos"]


def test_masking_replaces_each_place() -> None:
    assert mask_names("Hi, I am Maya GARCÍA.", ["García"], "[x]") == "Hi, I am Maya [x]."
    assert mask_names("山田花子です", ["山田"], "[x]") == "[x]花子です"


def _screened(subject: str, text: str | None, html: str | None, surnames: list[str]) -> list[Flag]:
    letter = ScrubbedLetter(subject=subject, text=text, html=html)
    return [
        f
        for f in screen(
            letter, languages=["en"], default_region="US", keywords={}, surnames=surnames
        )
        if f.kind == "surname"
    ]


def test_screening_flags_the_surname_with_exact_places_in_every_part() -> None:
    text = "My name is Maya Castellanos.\nLove, Maya CASTELLANOS"
    html = "<p>My name is Maya <b>Castellanos</b></p>"
    flags = _screened("From Maya Castellanos", text, html, ["Castellanos"])
    assert [(f.part, f.text) for f in flags] == [
        ("html", "Castellanos"),
        ("subject", "Castellanos"),
        ("text", "Castellanos"),
        ("text", "CASTELLANOS"),
    ]
    parts = {"subject": "From Maya Castellanos", "text": text, "html": html}
    for flag in flags:
        assert parts[flag.part][flag.start : flag.end] == flag.text
    # The first name itself is never flagged.
    assert all("Maya" not in f.text for f in flags)


def test_screening_flags_a_japanese_surname_inside_a_sentence() -> None:
    flags = _screened("", "わたしは山田花子です。", None, ["山田"])
    assert [(f.text, f.start, f.end) for f in flags] == [("山田", 4, 6)]


def test_no_surname_no_flag() -> None:
    assert _screened("Hello", "Castellanos is a town.", None, []) == []


# --- taken out where the mail program put it --------------------------------------------------


WRITER = WriterNames("Maya", surname_values("Maya", ["Maya Castellanos"]))


def test_mailto_link_text_with_the_full_name_becomes_the_first_name() -> None:
    cleaned = clean_html(
        f'<p>Write to <a href="mailto:{MAYA}">Maya Castellanos</a></p>', {}, WRITER
    )
    assert "Castellanos" not in cleaned.html and "Maya" in cleaned.html
    assert MAYA not in cleaned.html
    assert any("full name" in r.detail for r in cleaned.removed)


def test_mailto_link_text_without_a_name_is_kept_as_before() -> None:
    cleaned = clean_html('<p><a href="mailto:x@y.example">my school</a></p>', {}, WRITER)
    assert "my school" in cleaned.html


def test_an_html_signature_after_a_dash_dash_line_goes() -> None:
    cleaned = clean_html("<div>Hi Tomás!</div><div>-- <br>Maya Castellanos</div>", {}, WRITER)
    assert "Hi Tomás!" in cleaned.html and "Castellanos" not in cleaned.html
    assert any(r.kind == "signature" for r in cleaned.removed)


def _letter(text: str, html: str | None = None, attachment: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = f'"Maya Castellanos" <{MAYA}>'
    message["To"] = MASKED
    message["Subject"] = "Hi"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    if attachment is not None:
        message.add_attachment(attachment, filename="story.txt")
    return message.as_bytes(policy=SMTP)


POLICY = ScrubPolicy(
    private_values=(MAYA,),
    first_name="Maya",
    surnames=surname_values("Maya", ["Maya Castellanos"]),
    allowed_types=("image/*", "text/plain"),
)


@pytest.mark.parametrize(
    "reply",
    [
        f"Hi!\n\nOn Mon, Jan 5, 2026 at 10:00 AM Maya Castellanos <{MAYA}> wrote:\n> old",
        f"Hi!\n\nOn Mon, Jan 5, 2026 at 10:00 AM Maya Castellanos <\n{MAYA}> wrote:\n> old",
        f"Hi!\n\nEl lun, 5 ene 2026 a las 10:00, Maya Castellanos\n(<{MAYA}>) escribió:\n> viejo",
        f"Hi!\n\n-----Original Message-----\nFrom: Maya Castellanos <{MAYA}>\nSent: Monday\n",
        "Hi!\n\nFrom: Maya Castellanos\nSent: Monday, January 5, 2026\nTo: Tomás\nSubject: Hi",
    ],
)
def test_attribution_lines_with_the_writer_name_leave_no_remnant(reply: str) -> None:
    clean = scrub_letter(_letter(reply), POLICY)
    assert clean.text is not None and clean.text.startswith("Hi!")
    assert "Castellanos" not in clean.text


def test_signature_and_link_go_the_typed_name_stays_for_screening() -> None:
    text = "My name is Maya Castellanos.\n\n-- \nMaya Castellanos\n"
    html = (
        "<p>My name is Maya Castellanos.</p>"
        f'<p>Mail me: <a href="mailto:{MAYA}">Maya Castellanos</a></p>'
        "<div>-- <br>Maya Castellanos</div>"
    )
    clean = scrub_letter(_letter(text, html), POLICY)
    assert clean.text == "My name is Maya Castellanos."
    assert clean.html is not None and clean.html.count("Castellanos") == 1
    assert "Mail me: Maya" in clean.html


def test_a_text_file_with_the_surname_is_flagged_not_changed() -> None:
    story = "A story by Maya Castellanos"
    clean = scrub_letter(_letter("Hi", attachment=story), POLICY)
    (attached,) = clean.attachments
    assert SURNAME_IN_FILE in attached.flags
    assert b"Castellanos" in attached.data
    plain = scrub_letter(_letter("Hi", attachment="A story by Maya"), POLICY)
    assert SURNAME_IN_FILE not in plain.attachments[0].flags


def test_a_document_with_the_surname_in_its_text_is_flagged(tmp_path: Path) -> None:
    """Its metadata (where programs put the name) is gone; what she typed is for staff."""
    message = EmailMessage()
    message["From"] = f"<{MAYA}>"
    message["To"] = MASKED
    message["Subject"] = "My story"
    message.set_content("Here is my story.")
    for name, text in (("story.pdf", "A story by Maya Castellanos"), ("other.pdf", "By Maya")):
        data = make_pdf(tmp_path / name, text, pages=1).read_bytes()
        message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    policy = replace(POLICY, allowed_types=("application/pdf",))
    named, unnamed = scrub_letter(message.as_bytes(policy=SMTP), policy).attachments
    assert SURNAME_IN_FILE in named.flags
    assert SURNAME_IN_FILE not in unnamed.flags


# --- kept with the participant --------------------------------------------------------------


def test_participants_stored_before_known_names_still_load() -> None:
    stored = {
        "id": "p1",
        "library": "riverside",
        "name": "Maya",
        "email": MAYA,
        "language": "en",
        "masked": MASKED,
    }
    assert Participant.from_dict(stored).known_names == ()
    learned = Participant.from_dict(stored | {"known_names": ["Maya Castellanos"]})
    assert learned.known_names == ("Maya Castellanos",)
    assert Participant.from_dict(learned.to_dict()) == learned
