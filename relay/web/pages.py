"""Rendering dashboard pages: one page template per screen, words per language.

Page templates (`templates/web/pages/*.html`) hold structure only; every word comes from
`templates/web/<lang>/words.html`, a template of `{% set %}` strings and macros. Words are
merged English first, then the base language, then the staff member's own language, so a
language that lacks one phrase shows it in English instead of failing. A library can
reword a single file by copying it into `[relay] templates_dir`, as with email templates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from relay.wording import FALLBACK_LANGUAGE, environment, shipped_templates

LANGUAGES = ("en", "es", "fr")


def static_folder() -> Path:
    return shipped_templates() / "web" / "static"


class Pages:
    def __init__(self, override: Path | None) -> None:
        self.env = environment(override, html=True)
        self._words: dict[str, dict[str, Any]] = {}

    def words(self, language: str) -> dict[str, Any]:
        if language not in self._words:
            merged: dict[str, Any] = {}
            base = language.split("-")[0]
            for lang in dict.fromkeys((FALLBACK_LANGUAGE, base, language)):
                try:
                    module = self.env.get_template(f"web/{lang}/words.html").module
                except jinja2.TemplateNotFound:
                    continue
                merged |= {k: v for k, v in vars(module).items() if not k.startswith("_")}
            self._words[language] = merged
        return self._words[language]

    def render(self, page: str, language: str, **values: Any) -> str:
        template = self.env.get_template(f"web/pages/{page}.html")
        return template.render(w=self.words(language), lang=language, **values)


def preferred_language(accept_language: str) -> str:
    """For pages shown before sign-in: the browser's first language we have words for."""
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower().split("-")[0]
        if tag in LANGUAGES:
            return tag
    return FALLBACK_LANGUAGE
