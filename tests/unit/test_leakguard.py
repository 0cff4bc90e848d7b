"""The leak guard on final outgoing bytes: what it finds, what it redacts, when it stops."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage

import pytest

from relay.scrub.leakguard import CheckedMessage, check_outgoing, redact_outgoing

VALUES = ("jane@example.com", "Okonkwo", "+44 7700 900123")


def outgoing(text: str = "Hello pal!", *, subject: str = "A letter", html: str | None = None,
             sender: str = "quiet-heron-2841@pals.example.org") -> EmailMessage:  # fmt: skip
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "pal@library.example"
    message["Subject"] = subject
    message["Message-ID"] = "<letter-1@pals.example.org>"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def test_clean_bytes_come_back_checked_and_unchanged() -> None:
    data = bytes(outgoing())
    report = check_outgoing(data, VALUES)
    assert report.hits == () and not report.must_stop
    assert report.checked is not None and report.checked.data == data


def test_only_the_guard_makes_checked_messages() -> None:
    with pytest.raises(TypeError):
        CheckedMessage(b"anything", object())


@pytest.mark.parametrize(
    ("message", "where"),
    [
        (outgoing(subject="From Jane Okonkwo"), "header Subject"),
        (outgoing(subject="für jane@example.com ✓"), "header Subject"),
        (outgoing("write to JANE@EXAMPLE.COM"), "body text/plain"),
        (outgoing(html="<p>jane&#64;example&#46;com</p>"), "part 2 text/html"),
        (outgoing(html='<a href="x?m=jane%40example.com">me</a>'), "part 2 text/html"),
        (outgoing(html="<p>jane&amp;#64;example.com</p>"), "part 2 text/html"),
        (outgoing("call 07700 900 123"), "body text/plain"),
    ],
)
def test_hits_name_the_value_and_the_place(message: EmailMessage, where: str) -> None:
    report = check_outgoing(bytes(message), VALUES)
    assert report.checked is None
    assert where in {hit.where for hit in report.hits}


def test_transfer_encodings_do_not_hide_a_value() -> None:
    message = outgoing()
    message.set_content("my mail is jane@example.com", cte="quoted-printable")
    qp = bytes(message).replace(b"jane@example.com", b"jane=40exam=\nple.com")
    for data in (qp, bytes(outgoing("x " * 40 + "Okonkwo ✓"))):
        assert check_outgoing(data, VALUES).checked is None


def test_a_value_inside_a_picture_stops_the_letter() -> None:
    message = outgoing()
    message.add_attachment(b"\x89PNG....tEXtAuthor\x00Jane Okonkwo", maintype="image",
                           subtype="png", filename="drawing-1.png")  # fmt: skip
    report = redact_outgoing(bytes(message), VALUES)
    assert report.must_stop
    assert [hit.replaceable for hit in report.hits] == [False]


def test_a_value_in_an_address_header_stops_the_letter() -> None:
    report = redact_outgoing(bytes(outgoing(sender="Jane <jane@example.com>")), VALUES)
    assert report.must_stop
    assert report.hits[0].where == "header From"


def test_text_hits_are_redacted_and_the_result_is_checked_again() -> None:
    message = outgoing("Hi, I am Jane Okonkwo, +44 7700 900123", subject="from Okonkwo",
                       html="<p>mail jane&#64;example.com</p>")  # fmt: skip
    message.add_attachment(b"note for jane@example.com", maintype="text",
                           subtype="plain", filename="note.txt")  # fmt: skip
    report = redact_outgoing(bytes(message), VALUES)
    assert report.rebuilt and report.checked is not None
    assert check_outgoing(report.checked.data, VALUES).hits == ()
    data = report.checked.data
    assert b"Message-ID: <letter-1@pals.example.org>" in data
    assert b'filename="note.txt"' in data
    parsed = message_from_bytes(data)
    texts = [
        part.get_payload(decode=True)
        for part in parsed.walk()
        if part.get_content_type() == "text/plain" and part.get_filename() is None
    ]
    assert texts == [b"Hi, I am Jane [removed], [removed]\n"]
    assert str(parsed["Subject"]) == "from [removed]"


def test_nothing_to_look_for_passes() -> None:
    assert check_outgoing(b"Subject: hi\r\n\r\nbody", ["", " "]).checked is not None


def test_garbage_without_private_values_passes() -> None:
    assert check_outgoing(b"\xff\xfe garbage \x00", VALUES).checked is not None


def test_rebuilding_leaves_other_parts_byte_for_byte() -> None:
    message = outgoing("From Okonkwo with love")
    message.add_attachment(b"From the library:\nno change here", maintype="text",
                           subtype="plain", filename="poem.txt", cte="8bit")  # fmt: skip
    report = redact_outgoing(bytes(message), VALUES)
    assert report.checked is not None
    assert b"\nFrom the library:\nno change here" in report.checked.data
    assert b">From" not in report.checked.data


def test_a_surname_whose_letters_change_length_with_case_is_still_found() -> None:
    """ "ß" is "SS" in capitals and "İ" is two characters in small letters."""
    from relay.scrub.private import matcher_for, redact

    text, count = redact("Anna Weißenberg, ANNA WEISSENBERG", matcher_for(["Weißenberg"]))
    assert (text, count) == ("Anna [removed], ANNA [removed]", 2)
    text, count = redact("Ali Yİğit", matcher_for(["Yİğit"]))
    assert (text, count) == ("Ali [removed]", 1)
