"""Every shipped language has every template English has: adding a language is adding a folder."""

from __future__ import annotations

import re

import jinja2
import pytest

from relay.scrub import SURNAME_IN_FILE
from relay.scrub.media.documents import HAS_TEXT as DOCUMENT_HAS_TEXT
from relay.scrub.media.text import HAS_TEXT as FILE_HAS_TEXT
from relay.wording import Templates, shipped_templates

ROOT = shipped_templates()
PARTS = ("_footer.txt", "_contents.txt", "_mark.txt", "_note.txt")


def _names(kind: str, language: str) -> set[str]:
    folder = ROOT / kind / language
    return {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()


def _languages(kind: str) -> list[str]:
    """Language folders (en, es, pt-BR...); web/ also has pages/ and static/, shared by all."""
    return sorted(
        p.name
        for p in (ROOT / kind).iterdir()
        if p.is_dir() and re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]+)?", p.name)
    )


@pytest.mark.parametrize("kind", [k.name for k in ROOT.iterdir() if k.is_dir()])
def test_every_language_has_every_english_template(kind: str) -> None:
    english = _names(kind, "en")
    assert english
    for language in _languages(kind):
        missing = english - _names(kind, language)
        assert not missing, f"{kind}/{language} lacks {sorted(missing)}"


@pytest.mark.parametrize("language", _languages("email"))
def test_email_templates_start_with_a_subject_line(language: str) -> None:
    """Whole messages start with `Subject:`; parts of messages (`*_footer`, `*_contents`)
    are the exception, as `relay.wording` documents."""
    for name in sorted(_names("email", language)):
        if name.endswith(".txt") and not name.endswith(PARTS):
            source = (ROOT / "email" / language / name).read_text("utf-8")
            first_line = source.split("\n", 1)[0]
            body_start = source.split("\n", 1)[1] if first_line.startswith("{% set") else source
            assert body_start.startswith("Subject:"), f"{language}/{name}"
    assert Templates().decision_words()[language]["approve"]


# The notes scrubbing writes beside a file, which staff read in their own language.
FILE_FLAGS = (SURNAME_IN_FILE, DOCUMENT_HAS_TEXT, FILE_HAS_TEXT)


@pytest.mark.parametrize("language", [lang for lang in _languages("email") if lang != "en"])
def test_every_note_on_a_file_is_said_in_every_language(language: str) -> None:
    """Each note reaches a moderator translated, in the held-letter email and the dashboard."""
    words = Templates().html.get_template(f"web/{language}/words.html").module
    for flag in FILE_FLAGS:
        said = words.file_flags.get(flag)  # type: ignore[attr-defined]
        assert said and said != flag, f"web/{language}/words.html does not say {flag!r}"
    files = [{"number": 1, "name": "document-1.pdf", "kind": "document", "size_text": "1 KB",
              "flags": FILE_FLAGS}]  # fmt: skip
    for name in ("held_notice.txt", "held_notice.html"):
        source = (ROOT / "email" / language / name).read_text("utf-8")
        plain = jinja2.Environment(autoescape=False)  # noqa: S701 -- to read it as written
        rendered = plain.from_string(source).render(
            files=files, letter={"id": 1, "subject": "Hi"}, flags=(), removed=(), notes=()
        )
        for flag in FILE_FLAGS:
            assert flag not in rendered, f"email/{language}/{name} says {flag!r} in English"
            assert words.file_flags[flag] in rendered  # type: ignore[attr-defined]
