"""Quoted history and signatures, as each client and language writes them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.scrub.markup import clean_html
from relay.scrub.quotes import remove_quotes, remove_signature

# Lines of the kinds quotequail reads: own words, blank lines, attributions wrapped or not,
# forwarding markers, quoted lines, and lines ending in the characters its patterns end in.
QUOTE_LINES = [
    "",
    "I made a kite today.",
    "Hello:",
    "Op 3 mei 2024 schreef Jan <jan@example.nl>:",
    "Op 3 mei 2024 schreef Jan",
    "<jan@example.nl>:",
    "On Mon, Mar 4, 2024 at 10:12 AM Quiet Heron <q@pals.example.org> wrote:",
    "On Mon, Mar 4, 2024 at 10:12 AM Quiet Heron",
    "wrote:",
    "Den 4 mars 2024 skrev Anna:",
    "2024/3/4 Quiet Heron <q@pals.example.org>",
    "---------- Forwarded message ---------",
    "---- Original Message ----",
    "________________________________",
    "Begin forwarded message:",
    "> quoted line",
    "> On Mon wrote:",
    "see you -",
    "x >",
]

OWN_WORDS = "I made a kite today.\nIt is red."


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, Mar 4, 2024 at 10:12 AM Quiet Heron <quiet-heron@pals.example.org> wrote:",
        "On Mon, Mar 4, 2024 at 10:12 AM Quiet Heron <quiet-heron@pals.example.org>\nwrote:",
        "On Mar 4, 2024, at 10:12, Quiet Heron <quiet-heron@pals.example.org> wrote:",
        "On Monday, March 4, 2024, 10:12:00 AM GMT+1, Quiet Heron <q@pals.example.org> wrote:",
        "El lun, 4 mar 2024 a las 10:12, Quiet Heron (<q@pals.example.org>) escribió:",
        "El lunes, 4 de marzo de 2024, 10:12:00 CET, Quiet Heron escribió:",
        "Le lun. 4 mars 2024 à 10:12, Quiet Heron <q@pals.example.org> a écrit :",
        "Le 04/03/2024 à 10:12, Quiet Heron a écrit\u00a0:",
        "Am Mo., 4. März 2024 um 10:12 Uhr schrieb Quiet Heron <q@pals.example.org>:",
        "Am 04.03.2024 um 10:12 schrieb Quiet Heron <q@pals.example.org>:",
        "Em seg., 4 de mar. de 2024 às 10:12, Quiet Heron <q@pals.example.org> escreveu:",
        "Em 04/03/2024 10:12, Quiet Heron escreveu:",
        "Il giorno lun 4 mar 2024 alle ore 10:12 Quiet Heron <q@pals.example.org> ha scritto:",
        "Il 04/03/2024 10:12, Quiet Heron ha scritto:",
        "2024年3月4日(月) 10:12 Quiet Heron <q@pals.example.org>:",
        "2024/03/04 10:12、Quiet Heron <q@pals.example.org>のメール:",
        "Quiet Heron さんは書きました:",
        "-----Original Message-----",
        "-------- Mensaje original --------",
        "-------- Message d'origine --------",
        "-------- Ursprüngliche Nachricht --------",
        "-------- Messaggio originale --------",
        "-------- Mensagem original --------",
        "---------- Forwarded message ---------",
    ],
)
def test_text_attributions_cut_the_history(attribution: str) -> None:
    text = f"{OWN_WORDS}\n\n{attribution}\n> Hello, I live at 12 Elm Road.\nold words"
    assert remove_quotes(text) == (OWN_WORDS, True)


@pytest.mark.parametrize(
    ("sender", "sent"),
    [
        ("From:", "Sent:"),
        ("De:", "Enviado:"),
        ("De :", "Envoyé :"),
        ("Von:", "Gesendet:"),
        ("Da:", "Inviato:"),
        ("De:", "Enviada em:"),
        ("差出人:", "送信日時:"),
    ],
)
def test_outlook_header_blocks_cut_the_history(sender: str, sent: str) -> None:
    block = f"________________________________\n{sender} Quiet Heron <q@pals.example.org>\n"
    block += f"{sent} Monday, March 4, 2024 10:12\nTo: Pal\nSubject: Hi\n\nold words"
    assert remove_quotes(f"{OWN_WORDS}\n\n{block}") == (OWN_WORDS, True)


def test_interleaved_quote_lines_are_dropped_and_own_words_kept() -> None:
    text = "> where do you live?\nI will not say!\n> do you have a pet?\nA cat."
    assert remove_quotes(text) == ("I will not say!\nA cat.", True)


@pytest.mark.parametrize(
    "text",
    [
        "My teacher wrote:\nbe kind",
        "Meine Oma schrieb mir:\nliebe Grüße",
        "El libro escribió algo bonito.",
        "From: my heart\nTo: you",
        "- my dog\n- my cat",
    ],
)
def test_childrens_own_sentences_are_not_mistaken_for_quotes(text: str) -> None:
    assert remove_quotes(text) == (text, False)


def test_a_trailing_signature_is_removed() -> None:
    text = "See you!\nEmma\n-- \nEmma Whitfield\n07700 900461"
    assert remove_signature(text) == ("See you!\nEmma", True)
    assert remove_signature("a -- b") == ("a -- b", False)


@pytest.mark.parametrize(
    ("markup", "kept", "gone"),
    [
        (
            '<div>Hi!</div><div class="gmail_quote"><div class="gmail_attr">On Mon wrote:</div>'
            "<blockquote>old</blockquote></div>",
            "Hi!",
            "old",
        ),
        ('<p>Hi!</p><blockquote type="cite"><div>old</div></blockquote>', "Hi!", "old"),
        (
            '<p>Hi!</p><div class="moz-cite-prefix">On 04/03/2024, Pal wrote:<br></div>'
            '<blockquote type="cite">old</blockquote>',
            "Hi!",
            "wrote",
        ),
        (
            '<div>Hi!</div><div id="ydp123yahoo_quoted_99" class="ydp123yahoo_quoted">'
            "<div>On Monday, Pal wrote:</div><div>old</div></div>",
            "Hi!",
            "old",
        ),
        (
            '<p>Hi!</p><hr><div id="divRplyFwdMsg"><b>From:</b> Pal<br><b>Sent:</b> x</div>'
            "<div>old</div>",
            "Hi!",
            "old",
        ),
        (
            '<p>Hi!</p><div style="border:none;border-top:solid #E1E1E1 1.0pt;'
            'padding:3.0pt 0cm 0cm 0cm"><p><b>De:</b> Pal</p></div><p>old</p>',
            "Hi!",
            "old",
        ),
        (
            "<p>Hi!</p><div>On Mon, Mar 4, 2024 at 10:12 AM Pal &lt;p@x.org&gt; wrote:</div>"
            "<div>old</div>",
            "Hi!",
            "old",
        ),
        (
            "<p>Hi!</p><p>Il giorno lun 4 mar 2024 alle ore 10:12 Pal ha scritto:</p><p>old</p>",
            "Hi!",
            "old",
        ),
    ],
)
def test_html_quote_containers_and_attributions(markup: str, kept: str, gone: str) -> None:
    cleaned = clean_html(markup, {})
    assert kept in cleaned.html
    assert gone not in cleaned.html
    assert any(r.kind == "quoted-reply" for r in cleaned.removed)


def test_every_quotequail_pattern_ends_where_the_relay_looks() -> None:
    """Scrubbing asks quotequail only about lines that can end one of its patterns."""
    from quotequail._patterns import COMPILED_PATTERN_MAP, MAX_WRAP_LINES

    from relay.scrub import quotes

    assert MAX_WRAP_LINES == quotes._WRAP
    for regexes in COMPILED_PATTERN_MAP.values():
        for regex in regexes:
            tail = regex.pattern.removesuffix("$").rstrip("+)")
            assert tail.endswith(quotes._PATTERN_ENDINGS), regex.pattern


@given(st.lists(st.sampled_from(QUOTE_LINES), max_size=12))
def test_asking_only_about_candidate_lines_finds_what_a_full_scan_finds(lines: list[str]) -> None:
    from quotequail._enums import Position
    from quotequail._internal import find_quote_position

    from relay.scrub import quotes

    assert quotes._quotequail_cut(lines) == find_quote_position(lines, 2, position=Position.Begin)
