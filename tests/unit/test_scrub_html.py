"""HTML bodies: what a pal may see is exactly what the moderator sees, and nothing spies."""

from __future__ import annotations

import pytest

from relay.scrub.markup import clean_html


def cleaned(markup: str, cids: dict[str, str] | None = None) -> str:
    return clean_html(markup, cids or {}).html


@pytest.mark.parametrize(
    "markup",
    [
        '<p style="display:none">hidden</p>',
        '<p style="font-size:0">hidden</p>',
        '<p style="color:#ffffff;background:#ffffff">hidden</p>',
        '<font color="white">hidden</font>',
        '<p class="x" id="y" hidden>hidden</p>',
    ],
)
def test_hiding_styles_are_dropped_so_the_text_shows(markup: str) -> None:
    result = cleaned(markup)
    assert "hidden" in result
    assert "style" not in result and "color" not in result and "class" not in result


def test_scripts_handlers_and_javascript_links_go() -> None:
    result = cleaned(
        '<p onclick="steal()">hi</p><script>steal()</script>'
        '<a href="javascript:steal()">x</a><a href="https://ok.example/">ok</a>'
    )
    assert "steal" not in result
    assert 'href="https://ok.example/"' in result
    assert 'rel="noopener noreferrer"' in result


def test_remote_images_and_tracking_pixels_go_with_a_note() -> None:
    outcome = clean_html(
        '<img src="https://t.example/o.gif" width="1" height="1">'
        '<img src="http://pics.example/cat.jpg">',
        {},
    )
    assert "<img" not in outcome.html
    details = [r.detail for r in outcome.removed]
    assert "a tracking pixel was removed" in details
    assert "a picture loaded from the web was removed" in details


def test_inline_pictures_are_pointed_at_their_new_names() -> None:
    result = cleaned(
        '<img src="cid:ii_LT9%40ABC" alt="IMG_0042 Jane.jpg"><img src="cid:unknown">',
        {"<ii_lt9@abc>": "drawing-1@letter.invalid"},
    )
    assert result == '<img src="cid:drawing-1@letter.invalid" alt="drawing-1">'


def test_mailto_links_lose_the_link_and_the_bare_address() -> None:
    result = cleaned(
        '<a href="mailto:kid@example.com">kid@example.com</a> and '
        '<a href="MAILTO:kid@example.com?subject=hi">write to me</a>'
    )
    assert result == "and write to me"


def test_forms_and_frames_go_but_their_neighbours_stay() -> None:
    result = cleaned(
        '<p>before</p><form><input value="x"><p>in form</p></form><iframe src="x"></iframe>'
        "<p>after</p>"
    )
    assert result == "<p>before</p><p>after</p>"
