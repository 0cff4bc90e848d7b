"""Redaction and an edit's HTML part, pure: spans in text, text nodes in HTML, pictures."""

from __future__ import annotations

from relay.letters import changes, redacting
from relay.screen import Flag, screen
from relay.scrub import Attachment, ScrubbedLetter


def _flags(letter: ScrubbedLetter) -> tuple[Flag, ...]:
    return screen(letter, languages=["en"], default_region="US", keywords={"en": ["secret"]})


def test_a_detail_split_over_tags_is_marked_once_and_markup_stays_whole() -> None:
    letter = ScrubbedLetter(
        subject="Call (555) 201-3344",
        text="It is a secret: call (555) 201-3344.",
        html="<p>It is a secret: call <b>(555)</b> 201-3344.</p>"
        '<p><a href="https://x.example.com/me">my page</a></p>',
    )
    done = redacting.redact(letter, _flags, "[removed]")
    assert done.letter.subject == "Call [removed]"
    assert done.letter.text == "It is a secret: call [removed]."  # a keyword stays
    assert done.letter.html == ("<p>It is a secret: call <b>[removed]</b>.</p><p>my page</p>")
    assert done.counts == {"phone": 1}


def test_text_with_markup_characters_is_escaped_again() -> None:
    letter = ScrubbedLetter(subject="", text=None, html="<p>1 &lt; 2 &amp; me@example.com</p>")
    done = redacting.redact(letter, _flags, "[removed]")
    assert done.letter.html == "<p>1 &lt; 2 &amp; [removed]</p>"
    assert done.counts == {"email": 1}


def _picture(number: int) -> Attachment:
    return Attachment(
        f"drawing-{number}.png", "image/png", b"png", f"drawing-{number}@letter.invalid", True
    )


def test_an_edit_gets_paragraphs_and_its_pictures_where_the_text_names_them() -> None:
    built = changes.html_from_text(
        "Tom & Jerry\nline two\n\n[drawing-2]\n\nbye <3", (_picture(1), _picture(2))
    )
    assert built == (
        "<p>Tom &amp; Jerry<br>line two</p>\n"
        '<p><img src="cid:drawing-2@letter.invalid" alt="drawing-2"></p>\n'
        "<p>bye &lt;3</p>\n"
        '<p><img src="cid:drawing-1@letter.invalid" alt="drawing-1"></p>'
    )


def test_a_removed_file_takes_its_picture_out_of_the_html() -> None:
    letter = ScrubbedLetter(
        subject="",
        text="two drawings",
        html='<p>a <img src="cid:drawing-1@letter.invalid" alt="drawing-1"> b '
        '<img src="cid:drawing-2@letter.invalid" alt="drawing-2"></p>',
        attachments=(_picture(1), _picture(2)),
    )
    record = changes.Changes(removed_files=("drawing-1.png",))
    shown = changes.applied(letter, record, with_bodies=True)
    assert [a.filename for a in shown.attachments] == ["drawing-2.png"]
    assert "drawing-1" not in (shown.html or "") and "cid:drawing-2@" in (shown.html or "")
    assert changes.decode(changes.encode(record)) == record
