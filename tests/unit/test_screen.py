"""Screening flags what a moderator should look at, with exact places, in several languages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.screen import Flag, screen
from relay.scrub import ScrubbedLetter


def flags_in(
    text: str, *, region: str = "GB", subject: str = "", **keywords: list[str]
) -> list[Flag]:
    letter = ScrubbedLetter(subject=subject, text=text, html=None)
    return list(screen(letter, languages=list(keywords) or ["en"], default_region=region,
                       keywords=keywords))  # fmt: skip


def kinds_and_texts(text: str, region: str = "GB") -> set[tuple[str, str]]:
    return {(flag.kind, flag.text) for flag in flags_in(text, region=region)}


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("ring me on 07700 900123 tonight", "GB", "07700 900123"),
        ("mi móvil es 612 345 678", "ES", "612 345 678"),
        ("appelle-moi au 06 12 34 56 78", "FR", "06 12 34 56 78"),
        ("ruf an: 030 1234567", "DE", "030 1234567"),
        ("liga para +351 912 345 678", "PT", "+351 912 345 678"),
        ("chiamami al 347 123 4567", "IT", "347 123 4567"),
        ("電話は090-1234-5678です", "JP", "090-1234-5678"),
        ("call (415) 555-0132", "US", "(415) 555-0132"),
    ],
)
def test_phone_numbers_are_read_with_the_library_country(
    text: str, region: str, expected: str
) -> None:
    assert ("phone", expected) in kinds_and_texts(text, region=region)


def test_a_local_number_without_its_area_code_is_flagged() -> None:
    assert ("phone", "555-0142") in kinds_and_texts("Call me at 555-0142, ok?", region="US")


def test_a_foreign_number_is_still_flagged() -> None:
    assert any(kind == "phone" for kind, _ in kinds_and_texts("call +34 612 345 678", region="GB"))


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("write to jane.doe@example.com!", "email", "jane.doe@example.com"),
        ("jane (at) example (dot) com", "email", "jane (at) example (dot) com"),
        ("see https://example.org/page.", "link", "https://example.org/page"),
        ("go to www.example.es", "link", "www.example.es"),
        ("my blog is kids-blog.com/luna", "link", "kids-blog.com/luna"),
        ("follow @luna_rider", "social", "@luna_rider"),
        ("my instagram: luna.k", "social", "instagram: luna.k"),
        ("add me on Snapchat", "social", "Snapchat"),
        ("tiktok is fun", "social", "tiktok"),
        ("discord @luna_1", "social", "discord @luna_1"),
    ],
)
def test_contact_details_and_links(text: str, kind: str, expected: str) -> None:
    assert (kind, expected) in kinds_and_texts(text)


def test_an_email_address_is_not_also_a_link_or_a_handle() -> None:
    flags = flags_in("jane.doe@example.com")
    assert [(f.kind, f.text) for f in flags] == [("email", "jane.doe@example.com")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I live at 123 Main Street", "123 Main Street"),
        ("vivo en Calle Mayor 5", "Calle Mayor 5"),
        ("j'habite 12 rue de la Paix", "12 rue de la Paix"),
        ("wir wohnen Hauptstraße 5", "Hauptstraße 5"),
        ("moro na Rua das Flores, 12", "Rua das Flores, 12"),
        ("abito in Via Roma 10", "Via Roma 10"),
        ("住所は東京都千代田区千代田1-1です", "東京都千代田区千代田1-1"),
    ],
)
def test_street_addresses_in_seven_languages(text: str, expected: str) -> None:
    assert ("address", expected) in kinds_and_texts(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Springfield, IL 62704", "IL 62704"),
        ("London SW1A 1AA", "SW1A 1AA"),
        ("28013 Madrid", "28013 Madrid"),
        ("75002 Paris", "75002 Paris"),
        ("PLZ 10115", "PLZ 10115"),
        ("1100-148 Lisboa", "1100-148 Lisboa"),
        ("CAP 00184", "CAP 00184"),
        ("〒100-0001", "〒100-0001"),
    ],
)
def test_postal_codes(text: str, expected: str) -> None:
    assert ("postcode", expected) in kinds_and_texts(text)


def test_ordinary_letters_raise_no_flags() -> None:
    text = (
        "I have 3 cats and 2 dogs. On 2024-03-04 we went to the museum via the park. "
        "Mi perro tiene 5 años. Il fait beau. Ich habe 12 Bücher gelesen. 今日は晴れです。"
    )
    assert flags_in(text) == []


def test_keywords_are_whole_words_ignoring_case_and_accents() -> None:
    flags = flags_in("Meet me at the CAFÉ? The cafeteria is closed.", en=["cafe", "meet me"])
    assert [(f.text, f.start, f.end) for f in flags] == [("Meet me", 0, 7), ("CAFÉ", 15, 19)]


def test_keywords_of_the_given_languages_only() -> None:
    letter = ScrubbedLetter(subject="", text="secreto y Geheimnis", html=None)
    flags = screen(letter, languages=["es"], default_region="ES",
                   keywords={"es": ["secreto"], "de": ["geheimnis"]})  # fmt: skip
    assert [f.text for f in flags] == ["secreto"]


def test_japanese_keywords_match_without_spaces() -> None:
    assert [f.text for f in flags_in("ひみつの話", ja=["ひみつ"])] == ["ひみつ"]


def test_offsets_point_into_each_part_and_flags_are_ordered() -> None:
    letter = ScrubbedLetter(
        subject="my number 07700 900123",
        text="hi\nmail me: jane@example.com or 07700 900124",
        html='<p>see <a href="https://example.org">here</a>'
        '<img src="cid:drawing-1@letter.invalid"></p>',
    )
    flags = screen(letter, languages=["en"], default_region="GB", keywords={})
    parts = {"subject": letter.subject, "text": letter.text, "html": letter.html}
    for flag in flags:
        assert (parts[flag.part] or "")[flag.start : flag.end] == flag.text
    assert [(f.part, f.kind) for f in flags] == [
        ("html", "link"),
        ("subject", "phone"),
        ("text", "email"),
        ("text", "phone"),
    ]
    assert list(flags) == sorted(flags, key=lambda f: (f.part, f.start))


def test_flags_are_frozen_values() -> None:
    flag = Flag("phone", "07700 900123", "text", 0, 12)
    with pytest.raises(AttributeError):
        flag.text = "x"  # type: ignore[misc]


PHONE_PIECES = [
    "555-0142", "(555) 123-4567", "+44 20 7946 0958", "+1 415 555 2671", "020 7946 0958",
    "1-800-FLOWERS", "tel:+56 9 8765 4321", "call 5550142", "1.", "2024", "10/03/2024",
    " ", "\n", "my number is ", "abc", "x", "-", "(", ")", "+", "99", "12 34 56 78",
]  # fmt: skip


@settings(max_examples=400, deadline=None)  # the time of an example is no finding
@given(st.lists(st.sampled_from(PHONE_PIECES), max_size=14), st.sampled_from(["US", "CL", "GB"]))
def test_asking_phonenumbers_about_digit_regions_finds_what_the_whole_text_finds(
    pieces: list[str], region: str
) -> None:
    import phonenumbers

    from relay.screen import _phone_flags

    text = "".join(pieces)
    whole = {
        (m.start, m.end)
        for m in phonenumbers.PhoneNumberMatcher(text, region, phonenumbers.Leniency.VALID)
    }
    assert {(f.start, f.end) for f in _phone_flags(text, "text", region)} == whole


ADDRESS_PIECES = [
    "123 ", "4B ", "12 ", "3 bis ", "Main ", "Elm ", "Street", "St.", "Rd", " Road", "Avenue",
    "Calle Mayor ", "Rua das Flores, ", "Via Roma ", "via the park ", "rue de la Paix",
    "Hauptstraße ", "Berliner Str. ", "Am Weg ", "東京都千代田区千代田", "1-1", "1丁目2番3号",
    "Plaza ", "Piazza ", "Close", "Way", " ", ", ", "\n", "5", "10", "a", "Instagram: ",
    "@luna_rider", "snap ", "is ", "pony_12", "discord @luna_1", "tiktok", "x",
]  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(ADDRESS_PIECES), max_size=10))
def test_a_text_without_a_clue_has_no_address_or_handle(pieces: list[str]) -> None:
    """The address and social patterns are skipped on a text without their clue words; every
    match they make must contain one."""
    from relay import screen as screening

    text = "".join(pieces)
    for pattern, clues in (
        (screening._ADDRESS, screening._ADDRESS_CLUES),
        (screening._SOCIAL, screening._SOCIAL_CLUES),
    ):
        for found in pattern.finditer(text):
            assert screening._has_clue(found.group(), clues), found.group()


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("Call me at (555) 201-3344 tonight", "US", "(555) 201-3344"),
        ("x +(555)201-3344 y", "US", "+(555)201-3344"),
        ("call (415) 555-0132", "US", "(415) 555-0132"),
        ("ring +1 (212) 555-0142!", "US", "+1 (212) 555-0142"),
        ("(see 555-0142)", "US", "555-0142"),
    ],
)
def test_a_phone_flag_spans_the_number_with_its_opening_parenthesis(
    text: str, region: str, expected: str
) -> None:
    (flag,) = [f for f in flags_in(text, region=region) if f.kind == "phone"]
    assert text[flag.start : flag.end] == flag.text == expected


def test_the_held_notice_marks_the_phone_number_whole() -> None:
    from relay.notices import _highlighted

    text = "Call me at (555) 201-3344 tonight"
    pieces = _highlighted(text, flags_in(text, region="US"))
    assert ("(555) 201-3344", "phone") in pieces
    assert "".join(piece for piece, _ in pieces) == text
