"""Quoted history and signatures, as each client and language writes them."""

from __future__ import annotations

import pytest

from relay.scrub.markup import clean_html
from relay.scrub.quotes import remove_quotes, remove_signature

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
    text = f"{OWN_WORDS}\n\n{attribution}\n> Hello, I live at 12 Elm Road.\n> old words"
    assert remove_quotes(text) == (OWN_WORDS, True)
    # Below the quote, the writer's own words again: a bottom-posted answer or a sign-off.
    assert remove_quotes(f"{text}\n\nLove,\nMaya") == (f"{OWN_WORDS}\n\nLove,\nMaya", True)


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


def test_inline_answers_keep_the_line_they_answer_and_nothing_else_of_the_quote() -> None:
    text = (
        "On Mon, Mar 4, 2024 at 10:12 AM Quiet Heron <q@pals.example.org> wrote:\n"
        "> Hello! I live near the sea.\n> where do you live?\n\nI will not say!\n\n"
        ">> older history\n> do you have a pet?\nA cat.\n> Bye!\n>> older"
    )
    assert remove_quotes(text) == (
        "> where do you live?\nI will not say!\n\n> do you have a pet?\nA cat.",
        True,
    )


def test_unquoted_history_below_a_separator_is_removed_to_the_end() -> None:
    text = f"{OWN_WORDS}\n\n-----Original Message-----\nold words\n\nmore old words"
    assert remove_quotes(text) == (OWN_WORDS, True)


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
