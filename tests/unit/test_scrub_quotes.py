"""Quoted history and signatures, as each client and language writes them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
            "<p>Hi!</p><p>Il giorno lun 4 mar 2024 alle ore 10:12 Pal &lt;p@x.org&gt; ha "
            "scritto:</p><p>old</p>",
            "Hi!",
            "old",
        ),
        (  # Proton
            '<div>Hi!</div><div class="protonmail_quote">On Monday, Pal wrote:<br>'
            '<blockquote class="protonmail_quote" type="cite">old</blockquote></div>',
            "Hi!",
            "old",
        ),
        (  # GMX and WEB.DE
            '<div>Hi!</div><div name="quote"><div><b>Gesendet:</b> Montag, 04. März 2024</div>'
            "<div>old</div></div>",
            "Hi!",
            "old",
        ),
        (  # mail.ru: a plain blockquote below the attribution
            "<div>Hi!</div><div>Понедельник, 4 марта 2024, 10:12 +03:00 от Pal "
            '&lt;p@pals.example.org&gt;:</div><blockquote style="border-left:1px solid #0857A6">'
            "<div>old</div></blockquote>",
            "Hi!",
            "old",
        ),
        (  # Outlook.com renders From: and Sent: on one line, with no marker around them
            "<div>Hi!</div><div><b>From:</b> Pal &lt;p@pals.example.org&gt; <b>Sent:</b> "
            "Monday, March 4, 2024 10:12 AM</div><div>old</div>",
            "Hi!",
            "old",
        ),
        (  # Outlook on phones
            '<div>Hi!</div><div id="mail-editor-reference-message-container"><div>old</div></div>',
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


# -- the property: a reply written above, below or between quoted blocks is kept whole ------

OWN_LINES = [
    "I made a kite today.",
    "Yes! A cat called Luna.",
    "My teacher wrote:",
    "From: my heart",
    "To: you",
    "Date: tomorrow",
    "Subject: my holidays",
    "On Sunday we went to the zoo.",
    "It was 10:30 when we left:",
    "Original message from my friend",
    "- my dog",
    "P.S. I love you <3",
    "Meine Oma schrieb mir:",
    "El libro escribió algo bonito.",
    "Mamá dijo: ¡hola!",
    "私は猫が好きです。",
    "Love,",
    "Maya",
]
ATTRIBUTIONS = [
    "On Mon, Mar 4, 2024 at 10:12 AM Quiet Heron <quiet-heron-2841@pals.example.org> wrote:",
    "On Mon, Mar 4, 2024 at 10:12 AM Quiet Heron <\nquiet-heron-2841@pals.example.org> wrote:",
    "On Mon, Mar 4, 2024 at 10:12 AM\nQuiet Heron\n<quiet-heron-2841@pals.example.org> wrote:",
    "On Mon, Mar 4, 2024 Quiet Heron wrote",
    "---- On Mon, 04 Mar 2024 10:12:00 +0100 Quiet Heron <q@pals.example.org> wrote ----",
    "2014-10-17 11:28 GMT+03:00 Quiet Heron <q@pals.example.org>:",
    "El lun, 4 mar 2024 a las 10:12, Quiet Heron (<q@pals.example.org>) escribió:",
    "Le 04/03/2024 à 10:12, Quiet Heron a écrit :",
    "Den 4 mars 2024 kl. 10:12 skrev Quiet Heron <q@pals.example.org>:",
    "W dniu 4.03.2024 o 10:12, Quiet Heron <q@pals.example.org> pisze:",
    "пн, 4 мар. 2024 г. в 10:12, Quiet Heron <q@pals.example.org>:",
    "2024年3月4日(月) 10:12 Quiet Heron <q@pals.example.org>:",
    "Quiet Heron <q@pals.example.org> 于2024年3月4日周一 10:12写道：",
    "2024년 3월 4일 (월) 오전 10:12, Quiet Heron <q@pals.example.org>님이 작성:",
    "",  # quoted lines with no attribution above them
]
QUOTED = [
    "> I live near the sea.",
    "> Do you have a pet?",
    ">",
    "> > Write to me at a.friend@example.net",
    ">> On Sun, Ms Kowalski <ms.k@school.example.org> wrote:",
]


@st.composite
def replies(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    """A reply of own paragraphs and quoted blocks in any order; its own lines; its quotes."""
    kinds = draw(st.lists(st.sampled_from(["own", "quote"]), min_size=1, max_size=6))
    blocks: list[str] = []
    own: list[str] = []
    quoted: list[str] = []
    previous = ""
    for kind in kinds:
        if kind == "own" and previous != "own":
            lines = draw(st.lists(st.sampled_from(OWN_LINES), min_size=1, max_size=3))
            own += lines
            blocks.append("\n".join(lines))
        elif kind == "quote":
            attribution = draw(st.sampled_from(ATTRIBUTIONS))
            lines = draw(st.lists(st.sampled_from(QUOTED), min_size=1, max_size=4))
            if not any(line.strip(">").strip() for line in lines):
                lines.append("> Bye!")
            quoted += lines
            blocks.append("\n".join([attribution, *lines] if attribution else lines))
        previous = kind
    return "\n\n".join(blocks), own, quoted


@settings(max_examples=300, deadline=None)
@given(replies())
def test_a_reply_around_quoted_blocks_is_kept_whole(
    reply: tuple[str, list[str], list[str]],
) -> None:
    text, own, quoted = reply
    kept, _ = remove_quotes(text)
    lines = [line for line in kept.split("\n") if line.strip()]
    answers = [line for line in lines if not line.startswith("> ")]
    assert answers == own
    contexts = [line for line in lines if line.startswith("> ")]
    for context in contexts:
        assert context in quoted  # only a line of the quote itself, at its first level
    assert "pals.example.org" not in kept
    attribution_lines = {line for a in ATTRIBUTIONS for line in a.split("\n") if line}
    assert not attribution_lines & set(lines)


def test_a_letter_that_is_all_history_by_its_shape_is_kept_for_staff_to_read() -> None:
    """A header block at the very top (a forward with no comment, or a writer who typed
    below one) would leave nothing: the text is kept and staff are told to read it."""
    from relay.scrub import ScrubPolicy, scrub_letter
    from relay.scrub.markup import UNSURE

    raw = (
        b"From: Maya <maya@family.example.net>\r\nTo: quiet-heron-2841@pals.example.org\r\n"
        b"Subject: Fw: hello\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"From: Quiet Heron <quiet-heron-2841@pals.example.org>\r\n"
        b"Sent: Monday, March 4, 2024 10:12 AM\r\nTo: Maya\r\nSubject: hello\r\n\r\n"
        b"I wrote this below because I did not know where to write.\r\n"
    )
    letter = scrub_letter(raw, ScrubPolicy(private_values=("maya@family.example.net",)))
    assert letter.text == "I wrote this below because I did not know where to write."
    assert UNSURE in letter.notes


def test_gmail_inline_answers_inside_its_quote_stay_with_the_line_they_answer() -> None:
    markup = (
        '<div>Hi!</div><div class="gmail_quote"><div class="gmail_attr">On Mon, Mar 4, 2024 '
        "at 10:12 AM Pal &lt;p@pals.example.org&gt; wrote:</div>"
        '<blockquote class="gmail_quote"><div>Hello.</div><div>Do you have a pet?</div>'
        "</blockquote><div>A cat!</div>"
        '<blockquote class="gmail_quote"><div>Bye</div><blockquote>older</blockquote>'
        "</blockquote><div>Love, Maya</div></div>"
    )
    cleaned = clean_html(markup, {}).html
    assert cleaned == (
        "<div>Hi!</div><div><blockquote>Do you have a pet?</blockquote><div>A cat!</div>"
        "<blockquote>Bye</blockquote><div>Love, Maya</div></div>"
    )


def test_a_gmail_forward_never_passes_as_the_writers_words() -> None:
    """Gmail puts a forwarded letter in its quote wrapper without a blockquote, and that
    letter may itself quote an older one."""
    markup = (
        '<div>Look at this!</div><div class="gmail_quote"><div class="gmail_attr">'
        "---------- Forwarded message ---------<br>From: <b>Ms K</b> &lt;k@school.example&gt;"
        "<br>Date: Mon, Mar 4, 2024 at 10:12 AM<br></div><br><div>The trip is on Friday.</div>"
        "<blockquote>older</blockquote><div>Ms K</div></div>"
    )
    cleaned = clean_html(markup, {})
    assert re.sub(r"<[^>]*>", " ", cleaned.html).split() == ["Look", "at", "this!"]
    assert "k@school.example" in " ".join(cleaned.history)


def test_the_end_of_a_quoted_line_wrapped_without_its_mark_stays_quoted() -> None:
    text = (
        "Yes, a cat.\n\nOn Mon, Mar 4, 2024 at 10:12 AM Pal <p@pals.example.org> wrote:\n"
        "> Do you have a pet? My teacher Ms Kowalski has two dogs and her address is\n"
        "k@school.example\n> Bye!\n"
    )
    assert remove_quotes(text) == ("Yes, a cat.", True)


def test_words_below_an_attribution_whose_quote_was_deleted_stay() -> None:
    markup = (
        '<div>Hi!</div><div class="moz-cite-prefix">On 04/03/2024 10:12, Pal wrote:<br></div>'
        "<div>PS: a cat!</div>"
    )
    cleaned = clean_html(markup, {}).html
    assert re.sub(r"<[^>]*>", " ", cleaned).split() == ["Hi!", "PS:", "a", "cat!"]


def test_every_shape_in_the_data_compiles_alone_and_is_bounded() -> None:
    """A shape that does not compile names its file here, and none may repeat without a
    bound (`.*`, `.+`, `{n,}`): reading a letter stays O(lines)."""
    from relay.scrub import quotes

    keys = ("attributions", "free_attributions", "attributions_above_quotes", "separators")
    for name, table in quotes.data_files().items():
        for key in keys:
            for shape in table.get(key, []):
                assert re.compile(quotes._fill(shape)), (name, shape)
                classes_out = re.sub(r"\[[^\]]*\]", "C", shape)
                unbounded = re.search(r"(?<!\\)[.C\)][*+]|\{\d+,\}", classes_out)
                assert unbounded is None, (name, shape)
        headers = table.get("headers", {})
        assert set(headers) <= {"from", "date", "to", "cc", "subject"}, name


def test_a_dashed_title_above_a_header_block_goes_with_it() -> None:
    text = (
        f"{OWN_WORDS}\n\n--- Alkuperäinen lähetys ---\nFrom: Pal <p@pals.example.org>\n"
        "Date: 4.3.2024 10.12\n\nold words"
    )
    assert remove_quotes(text) == (OWN_WORDS, True)
    assert remove_quotes("--- My holidays ---\nWe went to the sea.") == (
        "--- My holidays ---\nWe went to the sea.",
        False,
    )


def test_a_pretend_header_a_child_typed_is_their_own() -> None:
    text = "Hi!\n\nFrom: Agent Ana\nSent: 4 March 2024\nTo: Agent Tom\n\nThe secret is: I like you."
    assert remove_quotes(text) == (text, False)


def test_staff_are_told_when_a_letter_held_only_what_it_quoted() -> None:
    from relay.scrub import ONLY_HISTORY, ScrubPolicy, scrub_letter

    raw = (
        b"From: Maya <maya@family.example.net>\r\nTo: quiet-heron-2841@pals.example.org\r\n"
        b"Subject: Re: hello\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"On Mon, Mar 4, 2024 at 10:12 AM Quiet Heron <quiet-heron-2841@pals.example.org> "
        b"wrote:\r\n> Hello Maya!\r\n"
    )
    letter = scrub_letter(raw, ScrubPolicy())
    assert letter.text == ""
    assert ONLY_HISTORY in letter.notes


def test_an_address_from_the_history_is_removed_wherever_the_writer_repeats_it() -> None:
    from relay.scrub import ScrubPolicy, scrub_letter

    raw = (
        b"From: Maya <maya@family.example.net>\r\nTo: quiet-heron-2841@pals.example.org\r\n"
        b"Subject: Re: from dad@family.example.com\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Yes, write to DAD@family.example.com!\r\n\r\n"
        b"On Mon, Mar 4, 2024 at 10:12 AM Quiet Heron <quiet-heron-2841@pals.example.org> "
        b"wrote:\r\n> My dad (dad@family.example.com) says hello.\r\n"
    )
    policy = ScrubPolicy(own_domains=("pals.example.org",))
    letter = scrub_letter(raw, policy)
    assert letter.subject == "Re: from [removed]"
    assert letter.text == "Yes, write to [removed]!"
    assert letter.history_addresses == ("dad@family.example.com",)


def test_a_reply_in_preformatted_html_is_read_line_by_line() -> None:
    markup = (
        "<pre>Yes, a cat.\n\nOn Mon, Mar 4, 2024 at 10:12 AM Pal &lt;p@pals.example.org&gt; "
        "wrote:\n&gt; Do you have a pet?\n&gt; Bye\n\nLove, Maya</pre>"
    )
    cleaned = clean_html(markup, {}).html
    assert re.sub(r"<[^>]*>", " ", cleaned).split() == ["Yes,", "a", "cat.", "Love,", "Maya"]
